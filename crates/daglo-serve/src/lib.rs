//! `daglo-serve`: the Daglo job table as an HTTP service any language can use — submit, look
//! up, follow (Server-Sent Events) and fetch transcripts, with the Daglo callback receiver on the
//! same port, health, readiness and Prometheus metrics. `daglo serve` (the CLI) and the
//! `daglo-serve` binary run it; every key of its configuration is in `docs/serve.md`.
//!
//! ```no_run
//! use daglo_serve::{Config, Server};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let mut config = Config::from_toml(&std::fs::read_to_string("daglo.toml")?)?;
//!     config.apply_env(|name| std::env::var(name).ok())?;
//!     let server = Server::start(config, std::env::var("DAGLO_API_TOKEN")?).await?;
//!     println!("listening on {}", server.local_addr());
//!     server.drain(std::time::Duration::from_secs(30)).await;
//!     Ok(())
//! }
//! ```
//!
//! Inside, one file per concern: [`Config`] (`config`), the running [`Server`] (`server`: start
//! and drain), replica takeover (`takeover`), API-key auth as a layer (`auth`), the API's error
//! answers (`problem`), one `router()` per resource (`routes/`), signed webhooks (`webhook`),
//! the callback inbox (`inbox`) and the operator page with its assets.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod auth;
mod config;
mod error;
mod fair;
mod inbox;
mod limits;
mod metrics;
mod problem;
mod readiness;
mod retention;
mod routes;
mod run;
mod server;
mod takeover;
mod tenants;
mod webhook;

pub use config::{ApiKey, Config, DEFAULT_TENANT, Limits, Strategy, TenantConfig};
pub use error::Error;
pub use run::{RunError, run, serve};
pub use server::Server;
pub use webhook::{JOB_FINISHED, JOB_PROGRESS, WebhookConfig, WebhookSecret};

/// Where Daglo's callbacks arrive: `{public_url}/daglo/{key}`.
pub(crate) const CALLBACK_PATH: &str = "/daglo";
