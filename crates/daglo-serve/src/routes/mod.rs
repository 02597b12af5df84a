//! The route table, once: one `router()` per resource, merged here. API-key auth is a layer on
//! the `/v1` routers; metrics label answers by the router's own templates (`MatchedPath`).

mod callbacks;
mod health;
mod jobs;
mod page;
mod webhooks;

use axum::Router;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use daglo::callback::CallbackReceiver;

use crate::auth::{Keys, require_key};
use crate::limits::{Shares, api_share};
use crate::problem::Problem;
use crate::server::App;

/// Every route of the service: the API behind the keys, the page, the probes and metrics, and
/// Daglo's callbacks when the strategy takes them.
///
/// The API and the page hold the API's share of connections (`limits::api_share`); the probes
/// and Daglo's callbacks do not, so they find room whatever callers hold.
pub(crate) fn router(app: App, keys: Keys, shares: Shares, receiver: Option<CallbackReceiver>) -> Router {
    let api = jobs::router()
        .merge(callbacks::router())
        .merge(webhooks::router())
        .route_layer(from_fn_with_state(keys, require_key))
        .merge(page::router())
        .route_layer(from_fn_with_state(shares, api_share));
    let mut router = api
        .merge(health::router())
        .fallback(|| async { Problem::new(StatusCode::NOT_FOUND, "no such route") })
        .with_state(app);
    if let Some(receiver) = receiver {
        router = router.route_service(&format!("{}/{{key}}", crate::CALLBACK_PATH), receiver);
    }
    router
}

/// The job a path's `{id}` names, or `404`.
pub(crate) async fn found(app: &App, id: &str) -> Result<daglo::JobSnapshot, Problem> {
    let id: daglo::JobId = id.parse().map_err(|_| Problem::no_job())?;
    match app.transcriber.job(&id).await {
        Ok(Some(job)) => Ok(job),
        Ok(None) => Err(Problem::no_job()),
        Err(e) => Err(Problem::unavailable(&e)),
    }
}
