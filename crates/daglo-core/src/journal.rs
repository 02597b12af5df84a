//! The job journal: what was about to be submitted, what was submitted, and how it ended —
//! written down as it happens, so a process that dies between the submit (billed) and the
//! result loses neither.

use std::fmt;
use std::time::SystemTime;

use async_trait::async_trait;

use crate::delivery::{BoxError, Outcome};
use crate::request::Rid;

/// Identifies one entry of a journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryId(pub i64);

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What is about to be submitted: recorded **before** the submit, so a crash during it leaves a
/// trace. It holds no secret: the options are kept as a digest, taken before a strategy adds
/// its callback credential.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Intent {
    /// The input: a file path or a URL, as the caller named it.
    pub input: String,
    /// A digest of the options the caller chose (SHA-256 hex of their JSON, say).
    pub options_digest: String,
    /// The strategy's name.
    pub strategy: String,
    /// When it was recorded.
    pub at: SystemTime,
}

impl Intent {
    /// An intent to submit `input` now.
    pub fn new(
        input: impl Into<String>,
        options_digest: impl Into<String>,
        strategy: impl Into<String>,
    ) -> Self {
        Intent {
            input: input.into(),
            options_digest: options_digest.into(),
            strategy: strategy.into(),
            at: SystemTime::now(),
        }
    }
}

/// Where an entry stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryState {
    /// Recorded, and no rid yet: the submit was about to happen, is under way, or happened and
    /// its answer was lost. **Uncertain** after a crash: a job may exist and be billed. Never
    /// resubmit such an entry automatically.
    Intended,
    /// The submit was refused in a way that created no job (a `4xx`, a request never sent).
    NotSubmitted {
        /// Why, in a line.
        reason: String,
    },
    /// Submitted: the job runs (and is billed). Resume it by its rid.
    Submitted {
        /// The job.
        rid: Rid,
    },
    /// The job ended.
    Finished {
        /// The job.
        rid: Rid,
        /// How: `transcript`, `empty`, or the failure status (`file_error`, …).
        outcome: String,
        /// Where the caller put the result, or a digest of it (never the transcript itself).
        result: Option<String>,
    },
}

/// One entry: the intent and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Entry {
    /// The entry.
    pub id: EntryId,
    /// What was to be submitted.
    pub intent: Intent,
    /// Where it stands.
    pub state: EntryState,
}

impl Entry {
    /// A fresh entry for `intent`, not yet submitted.
    pub fn new(id: EntryId, intent: Intent) -> Self {
        Entry {
            id,
            intent,
            state: EntryState::Intended,
        }
    }
}

/// What a journal holds after a restart, sorted for action.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recovery {
    /// Submitted and not finished: resume each by its rid.
    pub pending: Vec<Entry>,
    /// Recorded with no rid: a job may or may not exist. Report them; never resubmit blindly.
    pub uncertain: Vec<Entry>,
}

/// The short name of how an outcome ended, as a journal stores it; `None` for
/// [`Outcome::GaveUp`], which is not an end (the job goes on).
pub fn outcome_name(outcome: &Outcome) -> Option<String> {
    match outcome {
        Outcome::Transcript { .. } => Some("transcript".to_owned()),
        Outcome::Empty { .. } => Some("empty".to_owned()),
        Outcome::Failed { status, .. } => Some(status.as_str().to_owned()),
        Outcome::GaveUp { .. } => None,
    }
}

/// Why the journal could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("the job journal failed: {what}")]
pub struct JournalError {
    what: String,
    #[source]
    source: Option<BoxError>,
}

impl JournalError {
    /// An error saying `what` went wrong, with its cause.
    pub fn new(what: impl Into<String>, source: impl Into<BoxError>) -> Self {
        JournalError {
            what: what.into(),
            source: Some(source.into()),
        }
    }

    /// An error saying `what` went wrong.
    pub fn message(what: impl Into<String>) -> Self {
        JournalError {
            what: what.into(),
            source: None,
        }
    }
}

/// A durable record of jobs, written at each step of a submit so a crash loses nothing: the
/// intent **before** the submit, the rid as soon as the answer arrives, the outcome at the end.
///
/// Implementations: `daglo-journal`'s SQLite journal (embedded, the default), and shared
/// backends for several replicas. Each write must be durable when its future completes.
#[async_trait]
pub trait Journal: Send + Sync + fmt::Debug {
    /// Records what is about to be submitted.
    async fn intend(&self, intent: Intent) -> Result<EntryId, JournalError>;
    /// Records that the submit created no job (so the entry is not uncertain).
    async fn not_submitted(&self, id: EntryId, reason: &str) -> Result<(), JournalError>;
    /// Records the rid from the submit answer.
    async fn submitted(&self, id: EntryId, rid: &Rid) -> Result<(), JournalError>;
    /// Records how the job ended, and where its result went (never the transcript itself).
    async fn finished(&self, id: EntryId, outcome: &str, result: Option<&str>) -> Result<(), JournalError>;
    /// Every entry, oldest first.
    async fn entries(&self) -> Result<Vec<Entry>, JournalError>;

    /// The newest entry for `input` (as [`Intent::input`] named it), if any: what a rerun of
    /// the same batch consults before submitting that input again. The default scans
    /// [`entries`](Journal::entries); a store with an index should answer directly.
    async fn latest_for(&self, input: &str) -> Result<Option<Entry>, JournalError> {
        Ok(self
            .entries()
            .await?
            .into_iter()
            .rev()
            .find(|entry| entry.intent.input == input))
    }

    /// What needs attention after a restart.
    async fn recover(&self) -> Result<Recovery, JournalError> {
        let mut recovery = Recovery::default();
        for entry in self.entries().await? {
            match entry.state {
                EntryState::Submitted { .. } => recovery.pending.push(entry),
                EntryState::Intended => recovery.uncertain.push(entry),
                _ => {}
            }
        }
        Ok(recovery)
    }
}
