//! The command both `daglo serve` and the `daglo-serve` binary run: the configuration read
//! (a file, then `DAGLO_*`), the token from `DAGLO_API_TOKEN`, the service started, SIGTERM (or
//! Ctrl-C) drained.

use std::path::Path;

use crate::{Config, Error, Server};

/// Why [`run`] ended without serving: a usage error (exit 2) or a failed start (exit 4).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The configuration file, a `DAGLO_*` variable or the token is wrong or missing.
    #[error("{0}")]
    Usage(String),
    /// The service could not start.
    #[error("could not start the service")]
    Start(#[source] Error),
}

impl RunError {
    /// The exit status a command reports: 2 for usage, 4 for a failed start.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            Self::Start(_) => 4,
        }
    }
}

/// Reads the configuration (`config`, or the defaults), applies `DAGLO_*`, starts the service,
/// prints `daglo serve: listening on http://ADDR` to stderr, and serves until SIGTERM or
/// Ctrl-C, then drains within `grace_secs`.
pub async fn run(config: Option<&Path>) -> Result<(), RunError> {
    let usage = |e: &dyn std::error::Error| RunError::Usage(daglo::internal::error_chain(e));
    let mut config = match config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| RunError::Usage(format!("--config {}: {e}", path.display())))?;
            Config::from_toml(&text).map_err(|e| {
                RunError::Usage(format!(
                    "{}: {}",
                    path.display(),
                    daglo::internal::error_chain(&e)
                ))
            })?
        }
        None => Config::from_toml("").map_err(|e| usage(&e))?,
    };
    config
        .apply_env(|name| std::env::var(name).ok())
        .map_err(|e| usage(&e))?;
    let token = std::env::var("DAGLO_API_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            RunError::Usage(
                "set DAGLO_API_TOKEN to the Daglo API token (it is read from there only)".to_owned(),
            )
        })?;
    serve(config, token).await
}

/// Starts the service on `config` with the Daglo API token `token`, prints `daglo serve:
/// listening on http://ADDR` to stderr, and serves until SIGTERM or Ctrl-C, then drains within
/// `grace_secs` — what [`run`] does once it has read the configuration (and `daglo serve
/// --emulate` with a configuration of its own).
pub async fn serve(config: Config, token: String) -> Result<(), RunError> {
    let usage = |e: &dyn std::error::Error| RunError::Usage(daglo::internal::error_chain(e));
    let grace = std::time::Duration::from_secs(config.grace_secs);
    // The handler first: a SIGTERM from the moment the address is printed drains.
    let stop = stopped();
    let server = Server::start(config, token).await.map_err(|e| match &e {
        Error::Config { .. } => usage(&e),
        _ => RunError::Start(e),
    })?;
    eprintln!("daglo serve: listening on http://{}", server.local_addr());
    eprintln!("daglo serve: the page is at http://{}/", server.local_addr());
    stop.await;
    eprintln!("daglo serve: draining (at most {} s)", grace.as_secs());
    server.drain(grace).await;
    eprintln!("daglo serve: stopped");
    Ok(())
}

/// SIGTERM or Ctrl-C. The SIGTERM handler is installed when this is called, not when the
/// future is first polled.
fn stopped() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        #[cfg(unix)]
        if let Some(mut term) = term {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
