//! Probes and metrics: `/healthz` (the process answers), `/readyz` (it can take jobs) and
//! `/metrics` (Prometheus's text format).

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::problem::{Problem, json};
use crate::server::App;

/// `/healthz`, `/readyz`, `/metrics`.
pub(super) fn router() -> Router<App> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn healthz() -> Response {
    json(StatusCode::OK, &serde_json::json!({ "status": "alive" }))
}

/// Ready: not draining, the journal answers and is not gone (deleted, flushed, restarted
/// without its data), the data directory takes a write, and Daglo takes the token.
async fn readyz(State(app): State<App>) -> Result<Response, Problem> {
    if *app.draining.borrow() {
        return Err(Problem::new(StatusCode::SERVICE_UNAVAILABLE, "draining"));
    }
    match app.readiness.check().await {
        Ok(()) => Ok(json(StatusCode::OK, &serde_json::json!({ "status": "ready" }))),
        Err(reason) => Err(Problem::new(StatusCode::SERVICE_UNAVAILABLE, reason)),
    }
}

async fn metrics(State(app): State<App>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        app.metrics.render(),
    )
        .into_response()
}
