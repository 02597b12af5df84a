//! Callback delivery for Daglo STT jobs: [`CallbackDelivery`] implements
//! [`ResultDelivery`](daglo_core::ResultDelivery) by receiving the service's callbacks, with a
//! receiver nobody can forge and that loses nothing.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use daglo_callback::{CallbackConfig, CallbackDelivery};
//! use daglo_client::Client;
//! use daglo_core::{JobOptions, Outcome, ResultDelivery};
//! use daglo_sim::{SimConfig, Simulator};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sim = Simulator::start(SimConfig::default().processing_time(Duration::from_millis(200))).await?;
//! let client = Client::builder().token(sim.token()).base_url(sim.base_url()).build()?;
//!
//! // The receiver listens here; Daglo is told to call the public URL (behind your proxy).
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let public = format!("http://{}/hooks/daglo", listener.local_addr()?);
//! let callbacks = CallbackDelivery::new(client.clone(), CallbackConfig::new(&public)?)?;
//! let server = callbacks.serve(listener)?;
//!
//! let mut options = JobOptions::default();
//! let prepared = callbacks.prepare(&mut options).await?;   // key, credential, registration
//! let job = client.submit_url("https://example.com/call.wav", &options).await?;
//! let outcome = prepared.wait(job.rid, &daglo_core::IgnoreProgress).await?;
//! assert!(matches!(outcome, Outcome::Transcript { .. }));
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! The threat model and the logging policy follow (`docs/threat-model.md` in this crate, also
//! shown on the facade's `daglo::callback` page).
//!
#![doc = include_str!("../docs/threat-model.md")]

mod auth;
mod config;
mod confirm;
#[cfg(any(test, feature = "test-util"))]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod conformance;
mod delivery;
mod error;
mod inbox;
mod jwt;
mod keys;
mod receiver;
mod registry;
mod server;
mod state;

pub use config::{
    CallbackAuth, CallbackConfig, DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT, DEFAULT_JOB_TTL,
    DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_CONNECTION_TIME, DEFAULT_MAX_CONNECTIONS, FinalCallbacks,
};
pub use delivery::CallbackDelivery;
pub use error::CallbackError;
pub use inbox::{CallbackInbox, DEFAULT_INBOX_BODY_BYTES, InboxEntry, ReplayError};
pub use keys::{JobKey, Secret, TokenDigest};
pub use receiver::{CallbackFuture, CallbackReceiver};
pub use registry::{InMemoryRegistry, JobRegistry, Registered, RegistryError};
pub use server::{CallbackServer, ConnectionLimits, DEFAULT_ACCEPT_BACKLOG, bind, bind_with_backlog};
pub use state::{Applied, JobView};
