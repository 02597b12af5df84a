//! Every integration test of `daglo-serve` in one binary: the service run as an operator runs it
//! (the `daglo-serve` binary, a config file, SIGTERM and SIGKILL for real). One file runs with
//! `cargo test -p daglo-serve --test suite FILE::`.

mod support;

mod front_door;
mod product;
mod serve;
