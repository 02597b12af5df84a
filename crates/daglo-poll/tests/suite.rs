//! Every integration test of `daglo-poll` in one binary but those that need a process of their own.
//!
//! One link instead of one per file, and tests that wait — on emulated jobs, on budgets of 20
//! requests a second, on child processes — wait beside each other instead of one file after
//! another (`docs/architecture.md`, "One test binary per package"). Each file is still a
//! target of its own, which `cargo test` does not run twice: `cargo test -p daglo-poll --test polling`.

// Each file declares the helpers it uses (`mod support;`), so it builds as a target of its own
// too; here they are compiled once per file that declares them.
#![allow(clippy::duplicate_mod)]

#[path = "polling.rs"]
mod polling;
#[path = "timing.rs"]
mod timing;
