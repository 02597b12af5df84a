//! `daglo-serve [--config FILE]`: the service alone — what `daglo serve` runs, for images and
//! hosts that need no CLI. Logs as text at `RUST_LOG`'s level (warn by default).

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let mut config = None;
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--config") => match args.next() {
                Some(path) => config = Some(std::path::PathBuf::from(path)),
                None => return usage("--config needs a FILE"),
            },
            Some("-h" | "--help") => {
                println!(
                    "daglo-serve [--config FILE]\n\nRuns the Daglo job service (the same as `daglo serve`). \
                     The token is read from DAGLO_API_TOKEN; every key of FILE is in crates/daglo-serve/docs/serve.md."
                );
                return ExitCode::SUCCESS;
            }
            _ => {
                return usage(&format!(
                    "unexpected argument {}",
                    arg.to_string_lossy().escape_debug()
                ));
            }
        }
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    match daglo_serve::run(config.as_deref()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "daglo-serve: {}",
                daglo::internal::escaped(&daglo::internal::error_chain(&e))
            );
            ExitCode::from(e.exit_code())
        }
    }
}

fn usage(message: &str) -> ExitCode {
    eprintln!("daglo-serve: {message}\nusage: daglo-serve [--config FILE]");
    ExitCode::from(2)
}
