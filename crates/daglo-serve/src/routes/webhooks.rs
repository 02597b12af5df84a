//! A job's webhook deliveries: `GET /v1/jobs/{id}/webhooks` lists them, `POST
//! /v1/jobs/{id}/webhook/retry` delivers its `job.finished` again.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use daglo::JobState;

use super::found;
use crate::auth::Caller;
use crate::problem::{Problem, json};
use crate::server::App;
use crate::webhook;

/// `/v1/jobs/{id}/webhooks` and `…/webhook/retry`.
pub(super) fn router() -> Router<App> {
    Router::new()
        .route("/v1/jobs/{id}/webhooks", get(deliveries))
        .route("/v1/jobs/{id}/webhook/retry", post(retry))
}

async fn deliveries(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let job = found(&app, &caller, &id).await?;
    let Some(webhooks) = app.webhooks.as_ref().and_then(|w| w.of(&job)) else {
        return Ok(json(
            StatusCode::OK,
            &serde_json::json!({ "configured": false, "deliveries": [] }),
        ));
    };
    let attempts = webhooks
        .attempts(&job.id)
        .await
        .map_err(|e| Problem::unavailable(&e))?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "configured": true, "deliveries": webhook::deliveries(attempts) }),
    ))
}

/// The job's `job.finished` delivered again (after a delivery that failed, or to send it once
/// more — receivers dedupe by `webhook-id`).
async fn retry(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let job = found(&app, &caller, &id).await?;
    let Some(webhooks) = app.webhooks.as_ref().and_then(|w| w.of(&job)) else {
        return Err(Problem::conflict(
            "no webhook is configured for this job's tenant (`[webhook]` or `[tenants.webhook]` in daglo.toml)",
        ));
    };
    if !job.state.is_ended() && job.state != JobState::GaveUp {
        return Err(Problem::conflict(format!(
            "the job is {}; its end is delivered when it ends",
            job.state
        )));
    }
    let id = job.id.clone();
    // One retry per job at a time: asking while one waits or runs adds none.
    let status = if webhooks.retry(job) {
        "delivering"
    } else {
        "already_delivering"
    };
    Ok(json(
        StatusCode::ACCEPTED,
        &serde_json::json!({ "job": id, "event_id": format!("msg_{id}_finished"), "status": status }),
    ))
}
