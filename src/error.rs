//! `TranscribeError`: why a transcription could not be carried out.

use std::sync::Arc;

use daglo_core::{DeliveryError, JobId, JournalError, Outcome, Rid, ValidationError};

use crate::table::ResultError;

/// Why a transcription could not be carried out (as opposed to a job that failed, which is an
/// [`Outcome::Failed`]).
///
/// Its message says what failed; [`source`](std::error::Error::source) gives the cause (print the
/// chain). Before acting on it, ask
/// [`may_have_created_job`](TranscribeError::may_have_created_job) (never submit again blindly:
/// the service has no idempotency and bills every job) and [`rid`](TranscribeError::rid) (a job
/// that exists can be resumed).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TranscribeError {
    /// The strategy could not prepare the job; nothing was submitted.
    #[error("could not prepare the job")]
    Prepare(#[source] DeliveryError),
    /// The submit failed. Its message says what is known of the job: none was created (a
    /// refusal: `429`, another `4xx`, a request that never left), or one may exist (a `5xx`, a
    /// connection lost after sending) — check before submitting again.
    #[error("the submit failed; {}", submit_known(.0))]
    Submit(#[source] daglo_client::Error),
    /// The job was submitted (its rid is here, to resume) but waiting for it failed.
    #[error("waiting for job `{rid}` failed")]
    Wait {
        /// The job, still running and billed: resume it.
        rid: Rid,
        /// Why waiting failed.
        #[source]
        source: DeliveryError,
    },
    /// The job was not started: its key or a label is malformed. Nothing was sent.
    #[error("the job was not started")]
    Invalid(#[source] ValidationError),
    /// No job has this id, in this process or in the journal.
    #[error("no job `{id}` is known")]
    UnknownJob {
        /// The id asked for.
        id: JobId,
    },
    /// The job ended before this process started, and no result store keeps its result
    /// ([`TranscriberBuilder::results`](crate::TranscriberBuilder::results)).
    #[error("job `{id}` ended, and its result was not kept (no result store)")]
    ResultNotKept {
        /// The job.
        id: JobId,
    },
    /// The job's submit may have created a job whose rid was never recorded: a job may exist
    /// (and be billed). It is never submitted again by itself; check at the service.
    #[error("job `{id}` may have been submitted, but no rid was recorded")]
    Uncertain {
        /// The job.
        id: JobId,
    },
    /// The job's submit was refused and created no job.
    #[error("job `{id}` was not submitted: {reason}")]
    NotSubmitted {
        /// The job.
        id: JobId,
        /// Why, as recorded.
        reason: String,
    },
    /// Following the job stopped without an outcome (the wait failed, or the transcriber shut
    /// down); the job may still run at the service: [`recover`](crate::Transcriber::recover) resumes it.
    #[error("following job `{id}` stopped: {reason}")]
    Stopped {
        /// The job.
        id: JobId,
        /// The service's job id, when it was submitted.
        rid: Option<Rid>,
        /// Why.
        reason: String,
    },
    /// The subtitles could not be fetched.
    #[error("the subtitles of job `{rid}` could not be fetched")]
    Srt {
        /// The job.
        rid: Rid,
        /// Why.
        #[source]
        source: daglo_client::Error,
    },
    /// The result store could not be read or written.
    #[error("the result store failed")]
    Results(#[source] ResultError),
    /// The job ended and its result was fetched, but the result store could not keep it, even
    /// after retries (a full disk, say). The result is here ([`TranscribeError::fetched`]);
    /// the journal does not call the job finished, so a restart fetches it again (not billed
    /// again) instead of finding nothing.
    #[error("job `{id}` ended, but its result could not be kept")]
    Unsaved {
        /// The job.
        id: JobId,
        /// What was fetched.
        outcome: Box<Outcome>,
        /// Why the store failed.
        #[source]
        source: Arc<ResultError>,
    },
    /// The job ended and its result was fetched (and kept, when there is a result store), but
    /// the journal could not record its end. The result is here
    /// ([`TranscribeError::fetched`]); the journal still lists the job as running, so a
    /// restart fetches it again.
    #[error("job `{id}` ended, but the journal could not record it")]
    Unrecorded {
        /// The job.
        id: JobId,
        /// What was fetched.
        outcome: Box<Outcome>,
        /// Why the journal failed.
        #[source]
        source: Arc<JournalError>,
    },
    /// [`Transcriber::resolve`](crate::Transcriber::resolve) was asked about a job that is
    /// not uncertain: nothing to settle.
    #[error("job `{id}` is {state}, not uncertain: nothing to resolve")]
    NotUncertain {
        /// The job.
        id: JobId,
        /// Its state.
        state: daglo_core::JobState,
    },
    /// [`Transcriber::delete`](crate::Transcriber::delete) was asked about a job that has not
    /// ended (running, submitting, stopped waiting, or uncertain): its data is still needed.
    #[error("job `{id}` is {state}: only a job that ended can be deleted")]
    NotEnded {
        /// The job.
        id: JobId,
        /// Its state.
        state: daglo_core::JobState,
    },
    /// A cursor from another kind of list: one made by a transcriber with a journal given to
    /// one without, or the other way round ([`Transcriber::page`](crate::Transcriber::page)).
    #[error("the cursor `{cursor}` is not a position in this transcriber's list of jobs")]
    Cursor {
        /// The cursor, as text.
        cursor: String,
    },
    /// The job journal could not be written. Before the submit, nothing was sent; after it,
    /// the rid is here: the job runs, but the journal does not know it.
    #[error("the job journal could not be written{}", rid.as_ref().map(|r| format!(" for job `{r}`")).unwrap_or_default())]
    Journal {
        /// The job, when it was already submitted.
        rid: Option<Rid>,
        /// Why.
        #[source]
        source: JournalError,
    },
}

/// What a failed submit leaves known of its job, for the message.
fn submit_known(error: &daglo_client::Error) -> &'static str {
    if error.may_have_created_job() {
        "a job may exist (and be billed) — check before submitting again"
    } else {
        "no job was created"
    }
}

impl TranscribeError {
    /// The job's rid, when it was submitted: it is running (and billed), so resume it rather
    /// than submitting again.
    pub fn rid(&self) -> Option<&Rid> {
        match self {
            Self::Wait { rid, .. } | Self::Srt { rid, .. } => Some(rid),
            Self::Journal { rid, .. } | Self::Stopped { rid, .. } => rid.as_ref(),
            Self::Unsaved { outcome, .. } | Self::Unrecorded { outcome, .. } => Some(outcome.rid()),
            _ => None,
        }
    }

    /// The outcome that was fetched although keeping or recording it failed
    /// ([`Unsaved`](TranscribeError::Unsaved), [`Unrecorded`](TranscribeError::Unrecorded)):
    /// never dropped — write it somewhere.
    pub fn fetched(&self) -> Option<&Outcome> {
        match self {
            Self::Unsaved { outcome, .. } | Self::Unrecorded { outcome, .. } => Some(outcome),
            _ => None,
        }
    }

    /// Whether the journal is gone (its file deleted, its Redis keys flushed): no start can be
    /// trusted not to submit twice until it is back. See [`JournalError::is_gone`].
    pub fn is_journal_gone(&self) -> bool {
        match self {
            Self::Journal { source, .. } => source.is_gone(),
            Self::Unrecorded { source, .. } => source.is_gone(),
            _ => false,
        }
    }

    /// Whether a job may exist (and be billed) although this call failed. `true` for every
    /// failure after the submit, and for a submit whose request may have reached the service;
    /// `false` only when nothing can have been created.
    pub fn may_have_created_job(&self) -> bool {
        match self {
            Self::Prepare(_)
            | Self::Invalid(_)
            | Self::UnknownJob { .. }
            | Self::NotSubmitted { .. }
            | Self::NotUncertain { .. }
            | Self::NotEnded { .. }
            | Self::Cursor { .. }
            | Self::Results(_) => false,
            Self::Submit(error) => error.may_have_created_job(),
            Self::Wait { .. }
            | Self::ResultNotKept { .. }
            | Self::Uncertain { .. }
            | Self::Srt { .. }
            | Self::Unsaved { .. }
            | Self::Unrecorded { .. } => true,
            Self::Journal { rid, .. } | Self::Stopped { rid, .. } => rid.is_some(),
        }
    }

    /// Whether the API token or the account is the problem (`401`, `403`): no other request will
    /// succeed until it is fixed.
    pub fn is_auth(&self) -> bool {
        match self {
            Self::Submit(error) | Self::Srt { source: error, .. } => error.is_auth(),
            Self::Wait { source, .. } => source.is_auth(),
            _ => false,
        }
    }
}
