//! A job's callback inbox: `GET /v1/jobs/{id}/callbacks` lists what Daglo sent, and `POST
//! /v1/jobs/{id}/callbacks/replay` applies it again through the receiver's own checks and state
//! machine (`daglo callbacks replay --job ID`).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use daglo::callback::InboxEntry;

use super::found;
use crate::auth::Caller;
use crate::inbox::entries;
use crate::problem::{Problem, json};
use crate::server::App;

/// `/v1/jobs/{id}/callbacks` and `…/callbacks/replay`.
pub(super) fn router() -> Router<App> {
    Router::new()
        .route("/v1/jobs/{id}/callbacks", get(list))
        .route("/v1/jobs/{id}/callbacks/replay", post(replay))
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

async fn list(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let job = found(&app, &caller, &id).await?;
    let entries = entries(app.journal.as_ref(), app.log.as_ref(), &job.id)
        .await
        .map_err(|e| Problem::unavailable(&e))?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "callbacks": entries.iter().map(listed).collect::<Vec<_>>() }),
    ))
}

async fn replay(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let job = found(&app, &caller, &id).await?;
    let Some(receiver) = &app.receiver else {
        return Err(Problem::conflict(
            "this service polls: it receives no callbacks to replay",
        ));
    };
    let entries = entries(app.journal.as_ref(), app.log.as_ref(), &job.id)
        .await
        .map_err(|e| Problem::unavailable(&e))?;
    // Applied to the registry the waiting job follows — this process's, or the one every
    // replica shares — so whichever replica waits for the job sees it move.
    let mut replayed = Vec::with_capacity(entries.len());
    for entry in &entries {
        let (answer, error) = match receiver.replay(entry).await {
            Ok(answer) => (Some(answer), None),
            Err(e) => (None, Some(daglo::internal::error_chain(&e))),
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
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "job": job.id,
            "replayed": replayed,
            "state": now.map(|j| j.state),
        }),
    ))
}
