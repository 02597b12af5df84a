//! What the status and SRT endpoints answer, beyond errors.

use daglo_core::{Outcome, Rid, StatusBody};

/// The answer to `GET …/transcripts/{rid}`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StatusAnswer {
    /// `200`: the job's state — running, finished or failed; the truth is in `status`.
    Body(Box<StatusBody>),
    /// `204`: the job finished with an empty result (silent audio). A success, not an error.
    Empty,
}

impl StatusAnswer {
    /// Whether the job has ended.
    pub fn is_terminal(&self) -> bool {
        match self {
            Self::Body(body) => body.status.is_terminal(),
            Self::Empty => true,
        }
    }

    /// The outcome this answer stands for, or `None` while the job runs.
    pub fn outcome(&self, rid: &Rid) -> Option<Outcome> {
        match self {
            Self::Body(body) => Outcome::from_terminal_body(rid.clone(), body.as_ref().clone()),
            Self::Empty => Some(Outcome::Empty { rid: rid.clone() }),
        }
    }
}

/// The answer to `GET …/transcripts/{rid}/srt`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SrtAnswer {
    /// `200`: the subtitles.
    Ready(String),
    /// `202`: the job has not finished; ask again later.
    NotReady,
    /// `204`: the job finished with an empty result.
    Empty,
}
