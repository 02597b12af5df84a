//! The delivery interface every strategy (polling, callback, hybrid) implements.

use std::any::Any;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use crate::body::StatusBody;
use crate::options::JobOptions;
use crate::request::Rid;
use crate::status::Status;

/// How a job's result gets back to the caller: polling, callback, or both.
///
/// A strategy works in two phases so that nothing is lost between them:
///
/// 1. [`prepare`](ResultDelivery::prepare) runs **before** the submit. A strategy may amend the
///    request (the callback strategy adds `callback {url, headers}` with a fresh per-job
///    credential) and registers the job, so a callback that arrives before the submit answer is
///    kept, not dropped. What it returns travels to phase two in [`SubmittedJob`].
/// 2. [`wait`](ResultDelivery::wait) runs **after** the submit, with the rid, until the job
///    ends. Progress is reported to the observer while it waits.
///
/// The trait is object-safe: application code holds an `Arc<dyn ResultDelivery>` and switches
/// strategy without touching anything else.
///
/// Implementations must make dropping the `wait` future cancel the wait and free everything it
/// held (registry slot, timers, scheduler entry), and must never report a job as lost while it
/// may still finish: giving up yields [`Outcome::GaveUp`] with the rid, so the caller can resume.
///
/// ```
/// use daglo_core::{DeliveryError, JobOptions, Outcome, ProgressEvent, ResultDelivery, Rid, SubmittedJob};
///
/// /// Runs a whole job with any strategy; `submit` performs the POST and returns the rid.
/// async fn run<F, Fut>(delivery: &dyn ResultDelivery, mut options: JobOptions, submit: F)
///     -> Result<Outcome, DeliveryError>
/// where
///     F: FnOnce(JobOptions) -> Fut,
///     Fut: std::future::Future<Output = Rid>,
/// {
///     let prepared = delivery.prepare(&mut options).await?;
///     let rid = submit(options).await;
///     let show = |event: &ProgressEvent| println!("{event}");
///     delivery.wait(SubmittedJob::new(rid, prepared), &show).await
/// }
/// ```
#[async_trait]
pub trait ResultDelivery: Send + Sync + fmt::Debug {
    /// A short name for logs and metrics, e.g. `"polling"`.
    fn name(&self) -> &'static str;

    /// Phase one, before the submit: amend `options` if the strategy needs to and register the
    /// job. Dropping the returned [`Prepared`] without waiting (say, because the submit failed)
    /// releases whatever was registered.
    async fn prepare(&self, options: &mut JobOptions) -> Result<Prepared, DeliveryError>;

    /// Phase two, after the submit: wait until the job ends, reporting progress to `observer`.
    async fn wait(
        &self,
        job: SubmittedJob,
        observer: &dyn ProgressObserver,
    ) -> Result<Outcome, DeliveryError>;
}

/// What [`ResultDelivery::prepare`] hands to [`ResultDelivery::wait`].
///
/// It may hold a registration (a callback registry slot, for instance) that is released when it
/// is dropped. A job submitted earlier is resumed with [`Prepared::none`], which strategies that
/// cannot resume without their registration refuse with [`DeliveryError::NotPrepared`].
pub struct Prepared {
    job_key: Option<String>,
    registration: Option<Box<dyn Any + Send + Sync>>,
}

impl Prepared {
    /// Nothing was registered (polling needs nothing before the submit).
    pub fn none() -> Self {
        Prepared {
            job_key: None,
            registration: None,
        }
    }

    /// A registration under `job_key` (not a secret), released when dropped.
    pub fn registered(job_key: impl Into<String>, registration: impl Any + Send + Sync) -> Self {
        Prepared {
            job_key: Some(job_key.into()),
            registration: Some(Box::new(registration)),
        }
    }

    /// The key the job was registered under, if any.
    pub fn job_key(&self) -> Option<&str> {
        self.job_key.as_deref()
    }

    /// Takes the registration back as the strategy's own type; `None` if there is none or it is
    /// of another type (prepared by another strategy).
    pub fn take_registration<T: Any>(&mut self) -> Option<Box<T>> {
        let boxed = self.registration.take()?;
        match boxed.downcast::<T>() {
            Ok(registration) => Some(registration),
            Err(other) => {
                self.registration = Some(other);
                None
            }
        }
    }
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("job_key", &self.job_key)
            .field("registered", &self.registration.is_some())
            .finish()
    }
}

/// A submitted job: its rid and what phase one prepared for it.
#[derive(Debug)]
#[non_exhaustive]
pub struct SubmittedJob {
    /// The rid from the submit answer.
    pub rid: Rid,
    /// Phase one's registration.
    pub prepared: Prepared,
}

impl SubmittedJob {
    /// A job just submitted.
    pub fn new(rid: Rid, prepared: Prepared) -> Self {
        SubmittedJob { rid, prepared }
    }

    /// A job submitted earlier (its rid saved, say, before a restart), with nothing prepared.
    pub fn resume(rid: Rid) -> Self {
        SubmittedJob::new(rid, Prepared::none())
    }
}

/// How a job ended, as far as the waiter knows.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Outcome {
    /// The job finished with text.
    Transcript {
        /// The job.
        rid: Rid,
        /// The final body, with `sttResults`.
        body: Box<StatusBody>,
    },
    /// The job finished without text (silent audio; `204` when polled).
    Empty {
        /// The job.
        rid: Rid,
    },
    /// The job failed: `input_error`, `file_error` or `transcript_error`.
    Failed {
        /// The job.
        rid: Rid,
        /// The failure status.
        status: Status,
        /// The service's message, if any.
        message: Option<String>,
    },
    /// The waiter stopped before the job ended. **The job goes on and is billed**: resume it
    /// with the rid.
    GaveUp {
        /// The job, to resume.
        rid: Rid,
        /// The last status seen, if any.
        last_status: Option<Status>,
        /// Why the waiter stopped.
        reason: GaveUpReason,
    },
}

/// Why a waiter stopped before the job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GaveUpReason {
    /// The caller's overall deadline passed.
    Deadline(Duration),
    /// No final callback arrived within the window.
    CallbackWindow(Duration),
}

impl Outcome {
    /// The outcome a terminal body stands for, or `None` while the job is still running.
    pub fn from_terminal_body(rid: Rid, body: StatusBody) -> Option<Outcome> {
        if body.status.is_success() {
            if body.has_no_text() {
                return Some(Outcome::Empty { rid });
            }
            return Some(Outcome::Transcript {
                rid,
                body: Box::new(body),
            });
        }
        if body.status.is_failure() {
            return Some(Outcome::Failed {
                rid,
                status: body.status,
                message: body.message,
            });
        }
        None
    }

    /// The job this outcome is about.
    pub fn rid(&self) -> &Rid {
        match self {
            Outcome::Transcript { rid, .. }
            | Outcome::Empty { rid }
            | Outcome::Failed { rid, .. }
            | Outcome::GaveUp { rid, .. } => rid,
        }
    }

    /// The transcript text, when the job finished with one.
    pub fn transcript(&self) -> Option<String> {
        match self {
            Outcome::Transcript { body, .. } => Some(body.full_transcript()),
            _ => None,
        }
    }
}

/// Something worth showing while a job runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProgressEvent {
    /// The status or the percentage changed.
    Progress {
        /// The job.
        rid: Rid,
        /// Its status now.
        status: Status,
        /// Percent done, when the service said.
        percent: Option<u32>,
    },
    /// Nothing has moved for a while (the job may be queued or stuck).
    Stalled {
        /// The job.
        rid: Rid,
        /// How long nothing has moved.
        unchanged_for: Duration,
    },
}

impl fmt::Display for ProgressEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProgressEvent::Progress {
                rid,
                status,
                percent: Some(p),
            } => write!(f, "{rid}: {status} {p}%"),
            ProgressEvent::Progress { rid, status, .. } => write!(f, "{rid}: {status}"),
            ProgressEvent::Stalled { rid, unchanged_for } => {
                write!(f, "{rid}: no progress for {}s", unchanged_for.as_secs())
            }
        }
    }
}

/// Receives [`ProgressEvent`]s while a job is awaited. Any `Fn(&ProgressEvent)` closure is one.
///
/// It is called on the strategy's task: keep it quick and never block in it.
pub trait ProgressObserver: Send + Sync {
    /// Called for each event, in order.
    fn on_event(&self, event: &ProgressEvent);
}

impl<F> ProgressObserver for F
where
    F: Fn(&ProgressEvent) + Send + Sync,
{
    fn on_event(&self, event: &ProgressEvent) {
        self(event)
    }
}

/// An observer that ignores every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct IgnoreProgress;

impl ProgressObserver for IgnoreProgress {
    fn on_event(&self, _event: &ProgressEvent) {}
}

/// The error type a strategy reports when it cannot deliver an outcome.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why waiting for a job failed (as opposed to the job failing, which is an [`Outcome`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The service refused the API token (`401`).
    #[error("the service refused the API token (401)")]
    Unauthorized,
    /// The service forbids access, or the account's credits are exhausted (`403`).
    #[error("the service forbids this request (403): no access, or credits exhausted")]
    Forbidden,
    /// The service does not know the rid (`404`).
    #[error("the service knows no job `{rid}` (404)")]
    UnknownJob {
        /// The rid asked about.
        rid: Rid,
    },
    /// The strategy needs phase one's registration and the job has none (for example, a
    /// callback wait on a job that was submitted without its callback).
    #[error("job `{rid}` was not prepared for {strategy} delivery")]
    NotPrepared {
        /// The job.
        rid: Rid,
        /// The strategy that refused.
        strategy: &'static str,
    },
    /// Phase one failed; nothing was submitted.
    #[error("could not prepare delivery: {reason}")]
    Prepare {
        /// What went wrong.
        reason: String,
    },
    /// Anything else: transport, decoding, a stopped receiver.
    #[error("delivery failed{}", rid.as_ref().map(|r| format!(" for job `{r}`")).unwrap_or_default())]
    Other {
        /// The job, when known.
        rid: Option<Rid>,
        /// The cause.
        #[source]
        source: BoxError,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::SttResult;

    #[test]
    fn terminal_bodies_map_to_distinct_outcomes() {
        let rid = Rid::new("r1");
        let mut done = StatusBody::new(Status::Transcribed);
        done.stt_results = Some(vec![SttResult::new("hello")]);
        assert_eq!(
            Outcome::from_terminal_body(rid.clone(), done)
                .unwrap()
                .transcript()
                .as_deref(),
            Some("hello")
        );

        let mut silent = StatusBody::new(Status::Transcribed);
        silent.stt_results = Some(vec![SttResult::new("")]);
        assert_eq!(
            Outcome::from_terminal_body(rid.clone(), silent),
            Some(Outcome::Empty { rid: rid.clone() })
        );

        let mut failed = StatusBody::new(Status::FileError);
        failed.message = Some("corrupt".into());
        assert!(matches!(
            Outcome::from_terminal_body(rid.clone(), failed),
            Some(Outcome::Failed { status: Status::FileError, message: Some(m), .. }) if m == "corrupt"
        ));

        assert_eq!(
            Outcome::from_terminal_body(rid, StatusBody::new(Status::Transcribing)),
            None
        );
    }

    #[test]
    fn registrations_come_back_only_as_their_own_type() {
        let mut prepared = Prepared::registered("key-1", 42u64);
        assert!(prepared.take_registration::<String>().is_none());
        assert_eq!(*prepared.take_registration::<u64>().unwrap(), 42);
        assert!(prepared.take_registration::<u64>().is_none());
        assert_eq!(prepared.job_key(), Some("key-1"));
    }

    #[test]
    fn the_trait_is_object_safe() {
        fn _takes(_: std::sync::Arc<dyn ResultDelivery>) {}
    }
}
