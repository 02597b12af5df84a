//! The callback inbox of `daglo serve`: every callback the receiver took in is written to the
//! job log before it is answered, listed at `GET /v1/jobs/{id}/callbacks`, and replayed through
//! the receiver's own checks and state machine at `POST /v1/jobs/{id}/callbacks/replay`
//! (`daglo callbacks replay --job ID`).

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::callback::{CallbackInbox, InboxEntry, RegistryError};
use crate::{JobId, JobLog};

use super::{App, found, json, problem};

/// The job log list that holds a job's callbacks.
const CALLBACKS: &str = "callbacks";
/// Callbacks kept per job (the newest).
pub(super) const KEEP: usize = 100;

/// The inbox over the service's job log.
#[derive(Debug)]
pub(super) struct Inbox {
    log: Arc<dyn JobLog>,
}

impl Inbox {
    pub(super) fn new(log: Arc<dyn JobLog>) -> Self {
        Self { log }
    }
}

/// Where a job key's callbacks are listed: a name derived from the key (which the journal
/// keeps with the job), so the write needs no lookup.
pub(super) fn list_of(job_key: &str) -> JobId {
    format!("cb-{:016x}", daglo_core::fnv1a64(job_key.as_bytes()))
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
            .append(CALLBACKS, &list, &text, KEEP)
            .await
            .map_err(|e| RegistryError::new("write the callback inbox", e))
    }
}

/// The callbacks written down for `job`, oldest first.
async fn entries(app: &App, job: &JobId) -> Result<Vec<InboxEntry>, Response> {
    let unavailable =
        |e: &dyn std::error::Error| problem(StatusCode::SERVICE_UNAVAILABLE, &daglo_core::error_chain(e));
    let entry = app.journal.by_job(job).await.map_err(|e| unavailable(&e))?;
    let Some(key) = entry.and_then(|e| e.intent.callback_key) else {
        // Polled, or not submitted: no callback could come.
        return Ok(Vec::new());
    };
    let records = app
        .log
        .read(CALLBACKS, &list_of(&key))
        .await
        .map_err(|e| unavailable(&e))?;
    Ok(records
        .iter()
        .filter_map(|record| serde_json::from_str::<InboxEntry>(record).ok())
        .filter(|entry| entry.job_key == key)
        .collect())
}

/// One callback as `GET /v1/jobs/{id}/callbacks` lists it: the entry without its job key.
fn listed(entry: &InboxEntry) -> serde_json::Value {
    serde_json::json!({
        "received_at": entry.received_at,
        "status": entry.status,
        "progress": entry.progress,
        "rid": entry.rid,
        "answer_code": entry.answer_code,
        "answer": entry.answer,
        "body": entry.body,
        "body_bytes": entry.body_bytes,
        "truncated": entry.truncated,
    })
}

pub(super) async fn list(State(app): State<App>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let job = match found(&app, &headers, &id).await {
        Ok(job) => job,
        Err(answer) => return answer,
    };
    match entries(&app, &job.id).await {
        Ok(entries) => json(
            StatusCode::OK,
            &serde_json::json!({ "callbacks": entries.iter().map(listed).collect::<Vec<_>>() }),
        ),
        Err(answer) => answer,
    }
}

pub(super) async fn replay(State(app): State<App>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let job = match found(&app, &headers, &id).await {
        Ok(job) => job,
        Err(answer) => return answer,
    };
    let Some(receiver) = &app.receiver else {
        return problem(
            StatusCode::CONFLICT,
            "this service polls: it receives no callbacks to replay",
        );
    };
    let entries = match entries(&app, &job.id).await {
        Ok(entries) => entries,
        Err(answer) => return answer,
    };
    // Applied to the registry the waiting job follows — this process's, or the one every
    // replica shares — so whichever replica waits for the job sees it move.
    let mut replayed = Vec::with_capacity(entries.len());
    for entry in &entries {
        let (answer, error) = match receiver.replay(entry).await {
            Ok(answer) => (Some(answer), None),
            Err(e) => (None, Some(daglo_core::error_chain(&e))),
        };
        replayed.push(serde_json::json!({
            "received_at": entry.received_at,
            "status": entry.status,
            "progress": entry.progress,
            "answer": answer,
            "error": error,
        }));
    }
    let now = app.transcriber.job(&job.id).await.ok().flatten();
    json(
        StatusCode::OK,
        &serde_json::json!({
            "job": job.id,
            "replayed": replayed,
            "state": now.map(|j| j.state),
        }),
    )
}
