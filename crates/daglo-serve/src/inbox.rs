//! The callback inbox: every callback the receiver took in is written to the job log before it
//! is answered (listed and replayed by `routes/callbacks.rs`).

use std::sync::Arc;

use async_trait::async_trait;
use daglo::JobId;
use daglo::callback::{CallbackInbox, InboxEntry, RegistryError};
use daglo::journal::{JobLog, Journal};

/// The job log list that holds a job's callbacks.
pub(crate) const LIST: &str = "callbacks";
/// Callbacks kept per job (the newest).
pub(crate) const KEEP: usize = 100;

/// The inbox over the service's job log.
#[derive(Debug)]
pub(crate) struct Inbox {
    log: Arc<dyn JobLog>,
}

impl Inbox {
    pub(crate) fn new(log: Arc<dyn JobLog>) -> Self {
        Self { log }
    }
}

/// Where a job key's callbacks are listed: a name derived from the key (which the journal
/// keeps with the job), so the write needs no lookup.
pub(crate) fn list_of(job_key: &str) -> JobId {
    format!("cb-{:016x}", daglo::internal::fnv1a64(job_key.as_bytes()))
        .parse()
        .unwrap_or_else(|_| JobId::random())
}

#[async_trait]
impl CallbackInbox for Inbox {
    async fn record(&self, entry: InboxEntry) -> Result<(), RegistryError> {
        let list = list_of(&entry.job_key);
        let text =
            serde_json::to_string(&entry).map_err(|e| RegistryError::new("encode an inbox entry", e))?;
        self.log
            .append(LIST, &list, &text, KEEP)
            .await
            .map_err(|e| RegistryError::new("write the callback inbox", e))
    }
}

/// The callbacks written down for `job`, oldest first.
pub(crate) async fn entries(
    journal: &dyn Journal,
    log: &dyn JobLog,
    job: &JobId,
) -> Result<Vec<InboxEntry>, daglo::journal::JournalError> {
    let entry = journal.by_job(job).await?;
    let Some(key) = entry.and_then(|e| e.intent.callback_key) else {
        // Polled, or not submitted: no callback could come.
        return Ok(Vec::new());
    };
    let records = log.read(LIST, &list_of(&key)).await?;
    Ok(records
        .iter()
        .filter_map(|record| serde_json::from_str::<InboxEntry>(record).ok())
        .filter(|entry| entry.job_key == key)
        .collect())
}
