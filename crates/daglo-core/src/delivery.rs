//! The delivery interface every strategy (polling, callback, hybrid) implements.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use crate::body::StatusBody;
use crate::options::JobOptions;
use crate::request::Rid;
use crate::status::Status;

/// How a job's result gets back to the caller: polling, callback, or both.
///
/// Most applications never call this trait themselves: `daglo::Transcriber` drives it. It is
/// the seam for choosing, wrapping or writing a strategy.
///
/// A strategy works in two phases so that nothing is lost between them:
///
/// 1. [`prepare`](ResultDelivery::prepare) runs **before** the submit. A strategy may amend the
///    request (the callback strategy adds `callback {url, headers}` with a fresh per-job
///    credential) and registers the job, so a callback that arrives before the submit answer is
///    kept, not dropped. It returns a [`Ticket`]: the strategy's own phase two.
/// 2. [`Ticket::wait`] runs **after** the submit, with the rid, until the job ends. It consumes
///    the ticket, so a preparation is waited on once, by the strategy that made it: handing one
///    strategy's preparation to another cannot be written.
///
/// A job submitted earlier (its rid saved before a restart) gets its ticket from
/// [`resume`](ResultDelivery::resume).
///
/// The trait is object-safe: application code can hold a `Box<dyn ResultDelivery>` and switch
/// strategy without touching anything else.
///
/// Implementations must make dropping a ticket, or its `wait` future, cancel the wait and free
/// everything it held (registry slot, timers, scheduler entry), and must never report a job as
/// lost while it may still finish: giving up yields [`Outcome::GaveUp`] with the rid, so the
/// caller can resume.
///
/// ```
/// use daglo::{DeliveryError, JobOptions, Outcome, ProgressEvent, ResultDelivery, Rid};
///
/// /// Runs a whole job with any strategy; `submit` performs the POST and returns the rid.
/// async fn run<F, Fut>(delivery: &dyn ResultDelivery, mut options: JobOptions, submit: F)
///     -> Result<Outcome, DeliveryError>
/// where
///     F: FnOnce(JobOptions) -> Fut,
///     Fut: std::future::Future<Output = Rid>,
/// {
///     let ticket = delivery.prepare(&mut options).await?;   // may amend `options`
///     let rid = submit(options).await;                      // a failed submit drops the ticket
///     let show = |event: &ProgressEvent| println!("{event}");
///     ticket.wait(rid, &show).await
/// }
/// ```
#[async_trait]
pub trait ResultDelivery: Send + Sync + fmt::Debug {
    /// A short name for logs and metrics, e.g. `"polling"`.
    fn name(&self) -> &'static str;

    /// Phase one, before the submit: amend `options` if the strategy needs to and register the
    /// job. Dropping the returned ticket without waiting (say, because the submit failed)
    /// releases whatever was registered.
    async fn prepare(&self, options: &mut JobOptions) -> Result<Box<dyn Ticket>, DeliveryError>;

    /// A ticket for a job submitted earlier, known only by its rid. Strategies that cannot wait
    /// without phase one's registration (callbacks alone) answer
    /// [`DeliveryError::NotPrepared`].
    fn resume(&self, rid: &Rid) -> Result<Box<dyn Ticket>, DeliveryError>;

    /// A ticket for a job submitted earlier — by this process before a restart, or by another
    /// — whose registration key ([`Ticket::job_key`]) was kept: a strategy that registers jobs
    /// registers it again, so the job's later callbacks are accepted. The default (and every
    /// strategy without registrations) is [`resume`](ResultDelivery::resume).
    async fn resume_registered(&self, rid: &Rid, job_key: &str) -> Result<Box<dyn Ticket>, DeliveryError> {
        let _ = job_key;
        self.resume(rid)
    }

    /// A ticket for a job whose submit answer never came (no rid), by its kept registration
    /// key, registered again: its [`claimed_rid`](Ticket::claimed_rid) settles the job when a
    /// callback names it. Strategies without registrations answer [`DeliveryError::Prepare`].
    async fn reattach(&self, job_key: &str) -> Result<Box<dyn Ticket>, DeliveryError> {
        let _ = job_key;
        Err(DeliveryError::Prepare {
            reason: format!("the {} strategy registers no jobs to reattach", self.name()),
        })
    }
}

/// A strategy behind a `Box` or an `Arc` is a strategy too.
macro_rules! forward_delivery {
    ($($pointer:ident)::+) => {
        #[async_trait]
        impl<T: ResultDelivery + ?Sized> ResultDelivery for $($pointer)::+<T> {
            fn name(&self) -> &'static str {
                (**self).name()
            }

            async fn prepare(&self, options: &mut JobOptions) -> Result<Box<dyn Ticket>, DeliveryError> {
                (**self).prepare(options).await
            }

            fn resume(&self, rid: &Rid) -> Result<Box<dyn Ticket>, DeliveryError> {
                (**self).resume(rid)
            }

            async fn resume_registered(&self, rid: &Rid, job_key: &str) -> Result<Box<dyn Ticket>, DeliveryError> {
                (**self).resume_registered(rid, job_key).await
            }

            async fn reattach(&self, job_key: &str) -> Result<Box<dyn Ticket>, DeliveryError> {
                (**self).reattach(job_key).await
            }
        }
    };
}

forward_delivery!(Box);
forward_delivery!(std::sync::Arc);

/// Phase two of one job, owned: what [`ResultDelivery::prepare`] (or
/// [`resume`](ResultDelivery::resume)) returns and [`wait`](Ticket::wait) consumes.
///
/// A ticket may hold a registration (a callback registry slot, for instance); dropping it
/// without waiting releases that registration.
#[async_trait]
pub trait Ticket: Send + fmt::Debug {
    /// The key the job was registered under, if the strategy registers jobs (not a secret).
    fn job_key(&self) -> Option<&str> {
        None
    }

    /// Waits until job `rid` ends, reporting progress to `observer`.
    async fn wait(
        self: Box<Self>,
        rid: Rid,
        observer: &dyn ProgressObserver,
    ) -> Result<Outcome, DeliveryError>;

    /// For a submit whose answer never came: waits until the job itself names its rid (a
    /// callback to its registration carries it), for as long as the registration lives. `None`
    /// at once for strategies that hear nothing before they know the rid (polling), or when the
    /// registration ends first.
    async fn claimed_rid(&mut self) -> Option<Rid> {
        None
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
    /// No final callback arrived within the job's time to live (the callback strategy's
    /// registration expired). Poll the rid to learn the outcome.
    CallbackTtlExpired(Duration),
}

impl Outcome {
    /// The outcome a terminal body stands for, or `None` while the job is still running.
    pub fn from_terminal_body(rid: Rid, body: StatusBody) -> Option<Self> {
        if body.status.is_success() {
            if body.has_no_text() {
                return Some(Self::Empty { rid });
            }
            return Some(Self::Transcript {
                rid,
                body: Box::new(body),
            });
        }
        if body.status.is_failure() {
            return Some(Self::Failed {
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
            Self::Transcript { rid, .. }
            | Self::Empty { rid }
            | Self::Failed { rid, .. }
            | Self::GaveUp { rid, .. } => rid,
        }
    }

    /// The transcript text, when the job finished with one.
    pub fn transcript(&self) -> Option<String> {
        match self {
            Self::Transcript { body, .. } => Some(body.full_transcript()),
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
            Self::Progress {
                rid,
                status,
                percent: Some(p),
            } => write!(f, "{rid}: {status} {p}%"),
            Self::Progress { rid, status, .. } => write!(f, "{rid}: {status}"),
            Self::Stalled { rid, unchanged_for } => {
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

impl DeliveryError {
    /// Whether the API token or the account is the problem (`401`, `403`).
    pub fn is_auth(&self) -> bool {
        matches!(self, Self::Unauthorized | Self::Forbidden)
    }

    /// The job the error is about, when known.
    pub fn rid(&self) -> Option<&Rid> {
        match self {
            Self::UnknownJob { rid } | Self::NotPrepared { rid, .. } => Some(rid),
            Self::Other { rid, .. } => rid.as_ref(),
            _ => None,
        }
    }
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
    fn the_trait_is_object_safe() {
        fn _takes(_: std::sync::Arc<dyn ResultDelivery>, _: Box<dyn Ticket>) {}
    }
}

/// How a job ended, as a journal keeps it: the kind of its [`Outcome`], without the transcript.
///
/// Stored as its [`as_str`](OutcomeKind::as_str) spelling — `transcript`, `empty`, or the
/// failure status (`input_error`, `file_error`, `transcript_error`) — and read back with
/// [`parse`](OutcomeKind::parse).
///
/// ```
/// use daglo::journal::OutcomeKind;
/// use daglo::models::Status;
///
/// assert_eq!(OutcomeKind::parse("empty"), OutcomeKind::Empty);
/// assert_eq!(OutcomeKind::parse("file_error"), OutcomeKind::Failed(Status::FileError));
/// assert_eq!(OutcomeKind::Failed(Status::FileError).as_str(), "file_error");
/// assert!(OutcomeKind::Transcript.is_success());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OutcomeKind {
    /// A transcript ([`Outcome::Transcript`]).
    Transcript,
    /// No speech ([`Outcome::Empty`]).
    Empty,
    /// The job failed with this status ([`Outcome::Failed`]).
    Failed(Status),
}

impl OutcomeKind {
    /// The kind of `outcome`; `None` for [`Outcome::GaveUp`], which is not an end (the job goes
    /// on).
    pub fn of(outcome: &Outcome) -> Option<Self> {
        match outcome {
            Outcome::Transcript { .. } => Some(Self::Transcript),
            Outcome::Empty { .. } => Some(Self::Empty),
            Outcome::Failed { status, .. } => Some(Self::Failed(status.clone())),
            Outcome::GaveUp { .. } => None,
        }
    }

    /// The stored spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Transcript => "transcript",
            Self::Empty => "empty",
            Self::Failed(status) => status.as_str(),
        }
    }

    /// Reads the stored spelling back; anything else is a failure with that status.
    pub fn parse(value: &str) -> Self {
        match value {
            "transcript" => Self::Transcript,
            "empty" => Self::Empty,
            other => Self::Failed(Status::parse(other)),
        }
    }

    /// Whether the job produced its result (a transcript, or an empty one).
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Transcript | Self::Empty)
    }
}

impl serde::Serialize for OutcomeKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for OutcomeKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(Self::parse(&text))
    }
}

impl fmt::Display for OutcomeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
