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
//! let callbacks = CallbackDelivery::new(CallbackConfig::new(&public)?)?;
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
//! # Threat model
//! Daglo signs nothing, documents no retries, ordering or deduplication, may leave `rid` out of
//! the body, and may call back before the submitter has read the rid. The receiver is on the
//! public internet. What could go wrong, and what the receiver does:
//!
//! | threat | what the receiver does |
//! |---|---|
//! | **Forged callback** (anyone can POST to a public URL) | Every job carries its own credential in `callback.headers`: by default a 256-bit random bearer token, of which only the SHA-256 digest is kept; or a short-lived HS256 JWT bound to the job (`jti`) with `exp`; or, if you must, one static header. The credential is checked **before the body is read**, with a length check first and a constant-time comparison; anything else is `401` and changes nothing. |
//! | **Replaying one job's credential on another job** | The token's digest, or the JWT's `jti`, belongs to one job key; another key's callback fails the check. |
//! | **Guessing job keys** | Keys are 128 random bits plus a 128-bit tag under the receiver's secret. Keys it did not mint are `404` with no registry look-up; keys are not secrets, the credential is. |
//! | **Leaked credential** | A per-job token opens only its job and dies with it; a JWT dies at `exp`; tokens never appear in logs, `Debug` or errors. |
//! | **Oversized or slow bodies** (memory, connection exhaustion) | `Content-Length` over the cap is `413` at once; reading stops as soon as the cap (default 16 MiB, configurable) is passed; a body slower than the body timeout is `408`; header reading is timed out; connections are bounded. |
//! | **Malformed or hostile JSON** | Decoding with a depth-limited parser into typed models; `400` with the reason (never the body) as JSON. Nothing panics on any input. |
//! | **Duplicates, reordering, late progress** | Statuses only move forward; the first terminal body wins atomically; duplicates answer `200` and change nothing; a late progress body after the final one is ignored. |
//! | **Callback before the submit answer** | The job is registered before the submit is sent, so the callback is applied and waits for the waiter. |
//! | **Body without `rid`** | Correlation is by the job key in the path, never by the body. A body whose `rid` contradicts the job's is rejected (`400`). |
//! | **Lost final callback** | The waiter gives up after the job's time to live with [`Outcome::GaveUp`](daglo_core::Outcome::GaveUp) and the rid, so the caller can poll it (the hybrid strategy does this automatically). |
//! | **Memory held for abandoned jobs** | Dropping a waiter (or its `Prepared`) unregisters the job; registrations expire after the time to live; later callbacks for a minted key answer `200` without storing anything. |
//! | **Status codes the sender might act on** | Only `200`, `400`, `401`, `404`, `405`, `408`, `413`, `415`; never `410`. |
//!
//! Not covered: a credential stolen from the machine that sends the submit, and TLS — terminate
//! https at your proxy and configure the public URL as `https://…`.
//!
//! # Logging
//! Each request gets a `tracing` span `daglo_callback` with the job key, rid and status, and an
//! event with the answer and the handling time. Credentials and transcript text are never
//! logged.

mod auth;
mod config;
mod delivery;
mod error;
mod keys;
mod receiver;
mod registry;
mod server;
mod state;

pub use config::{CallbackAuth, CallbackConfig, DEFAULT_MAX_BODY_BYTES};
pub use delivery::CallbackDelivery;
pub use error::CallbackError;
pub use keys::{JobKey, Secret, TokenDigest};
pub use receiver::CallbackReceiver;
pub use registry::{InMemoryRegistry, JobRegistry, Registered};
pub use server::CallbackServer;
pub use state::{Applied, JobView};
