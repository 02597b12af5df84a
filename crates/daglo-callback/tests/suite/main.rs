//! Every integration test of `daglo-callback` in one binary but those that need a process of their own.
//!
//! One link instead of one per file, and tests that wait — on emulated jobs, on budgets of 20
//! requests a second, on child processes — wait beside each other instead of one file after
//! another (`docs/architecture.md`, "One test binary per package"). One file runs with
//! `cargo test --test suite FILE::`.
//!
//! In binaries of their own, run by `cargo test` as well:
//! - `flood`: it runs its receiver in a child process under `ulimit -n 256`;
//! - `logs`: no other test may touch tracing's callsite registrations while it captures;
//! - `memory`: no other test may move the process's resident set.

#[path = "../support/mod.rs"]
mod support;

mod deployment;
mod hardening;
mod hostile;
mod inbox;
mod receiving;
mod security;
