//! `daglo-sim`: run the emulator as a standalone server (the same as `daglo sim`).
//!
//! ```text
//! daglo-sim --port 8080 [--host 127.0.0.1] [--token sim-token] [--seed N]
//!           [--processing-ms 3000] [--rate-limit 20|off]
//! ```

use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    daglo_sim::cli::run(std::env::args().skip(1)).await
}
