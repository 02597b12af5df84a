//! Polling delivery for Daglo STT jobs: [`PollingDelivery`] implements
//! [`ResultDelivery`](daglo_core::ResultDelivery) by polling `GET …/transcripts/{rid}`.
//!
//! What it does better than a loop per job:
//!
//! - **One scheduler for all jobs.** A single task keeps a due-time queue; 10,000 waiting jobs
//!   cost a few hundred bytes each, not a task and a timer each.
//! - **A shared rate budget.** Daglo allows 20 requests/s per endpoint and sends no
//!   `Retry-After`; 61 jobs polled every 3 s already exceed it. Every status request here spends
//!   from one [`RateBudget`] (by default a [`TokenBucket`] at 80 % of the limit). When jobs want
//!   more than the budget gives, their intervals stretch: jobs predicted to finish soonest go
//!   first, and none waits more than [`PollingConfig::max_queueing`] past its due time. A `429`
//!   halves the budget, which then recovers gradually; it never fails a job.
//! - **Policies** ([`PollPolicy`](daglo_core::PollPolicy)): `Fixed`, `Exponential`, and the
//!   default `Adaptive`, which predicts completion from the smoothed rise of `progress` (or the
//!   audio's length) and polls sparsely early and densely near the predicted end. First polls
//!   are jittered so jobs submitted together do not poll in lockstep.
//! - **Errors**: `429`, `5xx` and connection failures are retried inside the budget with
//!   backoff; `401`, `403` and `404` end the wait at once with the typed
//!   [`DeliveryError`](daglo_core::DeliveryError).
//! - **Progress**: status and percent changes reach the caller while it waits, and a
//!   `Stalled` event when nothing moves for [`PollingConfig::stall_after`].
//! - **Sharing and cancelling**: several watches of one rid share one poll; dropping the last
//!   stops polling it and frees its state. An optional deadline gives
//!   [`Outcome::GaveUp`](daglo_core::Outcome::GaveUp) with the rid, to [`follow`](PollingDelivery::follow) again later.
//!
//! ```
//! use std::time::Duration;
//! use daglo_client::Client;
//! use daglo_core::{JobOptions, Outcome, ProgressEvent};
//! use daglo_poll::{PollingConfig, PollingDelivery};
//! use daglo_sim::{SimConfig, Simulator};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sim = Simulator::start(SimConfig::default().processing_time(Duration::from_millis(300))).await?;
//! let client = Client::builder().token(sim.token()).base_url(sim.base_url()).build()?;
//! let polling = PollingDelivery::new(client.clone(), PollingConfig::default());
//!
//! let job = client.submit_url("https://example.com/call.wav", &JobOptions::default()).await?;
//! let show = |event: &ProgressEvent| println!("{event}");
//! let outcome = polling.follow(job.rid).outcome_with(&show).await?;
//! assert!(matches!(outcome, Outcome::Transcript { .. }));
//! # Ok(())
//! # }
//! ```

mod clock;
mod config;
mod delivery;
mod mailbox;
mod scheduler;
mod source;

#[cfg(feature = "test-util")]
pub use clock::PollClock;
pub use config::{DEFAULT_ERROR_BACKOFF, PollingConfig};
pub use daglo_client::{RateBudget, TokenBucket};
pub use delivery::{PollingDelivery, Watch, WatchOptions};
pub use scheduler::SchedulerStats;
pub use source::StatusSource;
