//! Every integration test of `daglo` in one binary but those that need a process of their own.
//!
//! One link instead of one per file, and tests that wait — on emulated jobs, on budgets of 20
//! requests a second, on child processes — wait beside each other instead of one file after
//! another (`docs/architecture.md`, "One test binary per package"). Each file is still a
//! target of its own, which `cargo test` does not run twice: `cargo test -p daglo --test hybrid`.
//!
//! In binaries of their own, run by `cargo test` as well:
//! - `metrics`: the debugging recorder is the process's one global recorder;
//! - `tracing`: its subscriber is the process's global default.

// Each file declares the helpers it uses (`mod support;`), so it builds as a target of its own
// too; here they are compiled once per file that declares them.
#![allow(clippy::duplicate_mod)]

#[path = "configuration.rs"]
mod configuration;
#[path = "hybrid.rs"]
mod hybrid;
#[path = "jobs.rs"]
mod jobs;
#[path = "journal.rs"]
mod journal;
#[path = "readme_figures.rs"]
mod readme_figures;
#[path = "schema.rs"]
mod schema;
#[path = "strategy.rs"]
mod strategy;
#[path = "tolerant.rs"]
mod tolerant;
#[path = "transcriber.rs"]
mod transcriber;
