//! The REST client for the Daglo asynchronous speech-to-text API.
//!
//! [`Client`] speaks the three endpoints of the contract: submit by URL (JSON) or by local file
//! (multipart, streamed from disk), the job's status and result, and its SRT subtitles. Errors are
//! typed by cause ([`Error`]); `GET`s retry `429`, `5xx` and connection failures with jittered
//! backoff ([`RetryPolicy`]); submits are **never** retried once they may have reached the
//! service, because the service has no idempotency and a second POST bills a second job.
//! The token is marked sensitive and never appears in an error, a log line or `Debug` output.
//!
//! TLS is rustls; no OpenSSL is needed.
//!
//! ```
//! use std::time::Duration;
//! use daglo_client::{Client, StatusAnswer};
//! use daglo_core::{JobOptions, Language, Status};
//! use daglo_sim::{SimConfig, Simulator};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The local emulator stands in for the service.
//! let sim = Simulator::start(SimConfig::default().processing_time(Duration::ZERO)).await?;
//! let client = Client::builder().token(sim.token()).base_url(sim.base_url()).build()?;
//!
//! let options = JobOptions::builder().language(Language::EnUs).build()?;
//! let job = client.submit_url("https://example.com/standup.wav", &options).await?;
//! match client.status(&job.rid).await? {
//!     StatusAnswer::Body(body) => assert_eq!(body.status, Status::Transcribed),
//!     StatusAnswer::Empty => println!("nothing was said"),
//!     _ => {}
//! }
//! # Ok(())
//! # }
//! ```

mod answers;
mod budget;
mod client;
mod error;
mod retry;
mod tls;
mod upload;

pub use answers::{SrtAnswer, StatusAnswer};
pub use budget::{RateBudget, TokenBucket};
pub use client::{Client, ClientBuilder, DEFAULT_BASE_URL, DEFAULT_MAX_ANSWER_BYTES, SRT_BACKOFF};
pub use error::{Error, ErrorKind};
pub use retry::{DEFAULT_RETRY_BACKOFF, RetryPolicy};
pub use tls::install_crypto_provider;
