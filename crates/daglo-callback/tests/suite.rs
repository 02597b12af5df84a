//! Every integration test of `daglo-callback` in one binary but those that need a process of their own.
//!
//! One link instead of one per file, and tests that wait — on emulated jobs, on budgets of 20
//! requests a second, on child processes — wait beside each other instead of one file after
//! another (`docs/architecture.md`, "One test binary per package"). Each file is still a
//! target of its own, which `cargo test` does not run twice: `cargo test -p daglo-callback --test hardening`.
//!
//! In binaries of their own, run by `cargo test` as well:
//! - `flood`: it runs its receiver in a child process under `ulimit -n 256`;
//! - `logs`: no other test may touch tracing's callsite registrations while it captures;
//! - `memory`: no other test may move the process's resident set.

// Each file declares the helpers it uses (`mod support;`), so it builds as a target of its own
// too; here they are compiled once per file that declares them.
#![allow(clippy::duplicate_mod)]

#[path = "deployment.rs"]
mod deployment;
#[path = "hardening.rs"]
mod hardening;
#[path = "hostile.rs"]
mod hostile;
#[path = "inbox.rs"]
mod inbox;
#[path = "receiving.rs"]
mod receiving;
#[path = "security.rs"]
mod security;
