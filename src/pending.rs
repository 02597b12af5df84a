//! `Pending`: a submitted job, waited for once.

use daglo_core::{EntryId, Rid, Ticket};

/// A job that has been submitted and not yet waited for. Save [`rid`](Pending::rid) somewhere
/// durable (it is serde-serialisable) before waiting, so a restart can
/// [`resume`](crate::Transcriber::resume) it.
///
/// It owns the strategy's preparation for this job; dropping it without waiting releases that
/// preparation (the job itself goes on at the service).
#[must_use = "a Pending job is only waited for by Transcriber::wait"]
#[derive(Debug)]
pub struct Pending {
    pub(crate) rid: Rid,
    pub(crate) file_name: Option<String>,
    /// `None` for a resumed job: the strategy makes its ticket when the wait starts.
    pub(crate) ticket: Option<Box<dyn Ticket>>,
    /// The journal entry to finish when the wait ends, when there is a journal.
    pub(crate) entry: Option<EntryId>,
}

impl Pending {
    /// The job's rid.
    pub fn rid(&self) -> &Rid {
        &self.rid
    }

    /// The uploaded file's name, as the service reported it.
    pub fn file_name(&self) -> Option<&str> {
        self.file_name.as_deref()
    }

    /// Whether this job was resumed by rid rather than submitted by this process.
    pub fn is_resumed(&self) -> bool {
        self.ticket.is_none()
    }

    /// Its journal entry, when the transcriber keeps a journal.
    pub fn entry(&self) -> Option<EntryId> {
        self.entry
    }
}
