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

use crate::auth::{Caller, Keys, require_key};
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

/// The job a path's `{id}` names, or `404` — also for another tenant's job, which the caller
/// cannot tell from one that does not exist.
pub(crate) async fn found(app: &App, caller: &Caller, id: &str) -> Result<daglo::JobSnapshot, Problem> {
    let id: daglo::JobId = id.parse().map_err(|_| Problem::no_job())?;
    match app.transcriber.job(&id).await {
        Ok(Some(job)) if caller.access.sees(&job) => Ok(job),
        Ok(_) => Err(Problem::no_job()),
        Err(e) => Err(Problem::unavailable(&e)),
    }
}

/// A query string as `(name, value)` pairs, every name one of `known` (else `422` naming it).
pub(crate) fn query_pairs(query: Option<&str>, known: &[&str]) -> Result<Vec<(String, String)>, Problem> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    for (name, _) in &pairs {
        if !known.contains(&name.as_str()) {
            return Err(Problem::invalid(format!(
                "unknown query parameter `{}` (known: {})",
                daglo::internal::safe(name),
                known.join(", ")
            )));
        }
    }
    Ok(pairs)
}

/// The one value of query parameter `name`, if given; given twice is `422`.
pub(crate) fn single<'a>(pairs: &'a [(String, String)], name: &str) -> Result<Option<&'a str>, Problem> {
    let mut values = pairs.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str());
    let first = values.next();
    if values.next().is_some() {
        return Err(Problem::invalid(format!("`{name}` is given more than once")));
    }
    Ok(first)
}
