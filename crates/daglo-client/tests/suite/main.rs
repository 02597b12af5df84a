//! Every integration test of `daglo-client` in one binary but those that need a process of their own.
//!
//! One link instead of one per file, and tests that wait — on emulated jobs, on budgets of 20
//! requests a second, on child processes — wait beside each other instead of one file after
//! another (`docs/architecture.md`, "One test binary per package"). One file runs with
//! `cargo test --test suite FILE::`.
//!
//! In binaries of their own, run by `cargo test` as well:
//! - `secrets`: no other test may touch tracing's callsite registrations while it captures;
//! - `streaming`: its peak resident set (VmHWM) must be its own.

#[path = "../support/mod.rs"]
mod support;

mod endpoints;
mod hostile;
mod pacing;
mod tls;
