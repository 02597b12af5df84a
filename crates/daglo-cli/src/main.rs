//! `daglo`: transcribe a file or URL with the Daglo asynchronous API, with a progress bar, by
//! polling, callback or both.
//!
//! ```text
//! DAGLO_API_TOKEN=… daglo transcribe meeting.m4a --language ko-KR --speakers 3 --srt meeting.srt
//! daglo transcribe https://example.com/call.wav --strategy hybrid \
//!       --listen 0.0.0.0:8443 --public-url https://hooks.example.com/daglo
//! daglo resume 3f2a9c1e-…                     # a job an earlier run stopped waiting for
//! daglo transcribe sample.wav --emulate        # offline, against the built-in emulator
//! ```
//!
//! Exit status: 0 transcript or empty result, 1 the job failed, 2 bad input, 3 stopped waiting
//! (the rid is printed; resume it), 4 the service or the network failed.

mod args;
mod batch;
mod callbacks;
mod cost;
mod failure;
mod gate;
mod jobs;
mod outputs;
mod progress;
mod serve;
mod setup;
mod single;
mod terminal;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command, LogFormat};

/// The library's log lines on stderr: as JSON objects with `--log-format json` (at RUST_LOG's
/// level, info by default), as text only when RUST_LOG asks. Values from the network are
/// escaped by the formatter (JSON strings; text fields are debug-quoted by the library).
fn logs(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter =
        |default: &str| EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let installed = match format {
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter("info"))
            .with_writer(std::io::stderr)
            .try_init(),
        LogFormat::Text if std::env::var_os("RUST_LOG").is_some() => tracing_subscriber::fmt()
            .with_env_filter(filter("warn"))
            .with_writer(std::io::stderr)
            .try_init(),
        LogFormat::Text => Ok(()),
    };
    if let Err(e) = installed {
        eprintln!("daglo: logs are off: {e}");
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    logs(cli.log_format);
    let listen = match &cli.command {
        Command::Transcribe(args) => Some(args.service.metrics_listen),
        Command::Resume(args) => Some(args.service.metrics_listen),
        Command::Jobs(_) | Command::Serve(_) | Command::Callbacks(_) | Command::Sim(_) => None,
    };
    // Every run that talks to the service ends with what it cost.
    let cost = match listen {
        Some(listen) => match cost::Cost::start(listen).await {
            Ok(cost) => Some(cost),
            Err(failure) => return failure.report(),
        },
        None => None,
    };
    let result = match cli.command {
        Command::Transcribe(args) if batch::is_batch(&args) => batch::run(*args).await,
        Command::Transcribe(args) => single::transcribe(*args).await,
        Command::Resume(args) => single::resume(args).await,
        Command::Jobs(args) => jobs::run(args).await,
        Command::Serve(args) => serve::run(args).await,
        Command::Callbacks(args) => callbacks::run(args).await,
        Command::Sim(args) => Ok(match daglo_sim::cli::run(args.args.into_iter()).await {
            code if code == ExitCode::SUCCESS => failure::exit::OK,
            code if code == ExitCode::from(2) => failure::exit::USAGE,
            _ => 4,
        }),
    };
    // (Not after bad input: nothing was asked of the service.)
    if let Some(cost) = &cost
        && !matches!(&result, Err(failure) if failure.code == failure::exit::USAGE)
    {
        eprintln!("{}", cost.line());
    }
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => failure.report(),
    }
}
