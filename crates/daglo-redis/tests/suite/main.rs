//! Every integration test of `daglo-redis` in one binary but those that need a process of their own.
//!
//! One link instead of one per file, and tests that wait — on emulated jobs, on budgets of 20
//! requests a second, on child processes — wait beside each other instead of one file after
//! another (`docs/architecture.md`, "One test binary per package"). One file runs with
//! `cargo test --test suite FILE::`.
//!
//! In binaries of their own, run by `cargo test` as well:
//! - `retries_metric`: the debugging recorder is the process's one global recorder.

#[path = "../support/mod.rs"]
mod support;

mod budget;
mod burst;
mod outage;
mod replicas;
mod scale;
mod shared;
