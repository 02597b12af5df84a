//! `daglo serve`: the configuration read, the service started, SIGTERM (or Ctrl-C) drained.

use daglo::serve::{ServeConfig, Server};

use crate::failure::{Failure, chain, exit};

pub(crate) async fn run(args: crate::args::Serve) -> Result<u8, Failure> {
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::usage(format!("--config {}: {e}", path.display())))?;
            ServeConfig::from_toml(&text)
                .map_err(|e| Failure::usage(format!("{}: {}", path.display(), chain(&e))))?
        }
        None => ServeConfig::from_toml("").map_err(|e| Failure::usage(chain(&e)))?,
    };
    config
        .apply_env(|name| std::env::var(name).ok())
        .map_err(|e| Failure::usage(chain(&e)))?;
    let token = std::env::var("DAGLO_API_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            Failure::usage("set DAGLO_API_TOKEN to the Daglo API token (it is read from there only)")
        })?;
    let grace = std::time::Duration::from_secs(config.grace_secs);
    // The handler first: a SIGTERM from the moment the address is printed drains.
    let stop = stopped();
    let server = Server::start(config, token).await.map_err(|e| match &e {
        daglo::serve::ServeError::Config { .. } => Failure::usage(chain(&e)),
        _ => Failure {
            code: exit::SERVICE,
            message: chain(&e),
        },
    })?;
    eprintln!("daglo serve: listening on http://{}", server.local_addr());
    stop.await;
    eprintln!("daglo serve: draining (at most {} s)", grace.as_secs());
    server.drain(grace).await;
    eprintln!("daglo serve: stopped");
    Ok(exit::OK)
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
