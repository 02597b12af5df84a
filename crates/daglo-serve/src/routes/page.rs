//! The operator page at `/`: static files embedded in the binary (no build step). It shows no
//! data until given an API key, which it sends as `Authorization: Bearer` like any caller.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::problem::Problem;
use crate::server::App;

const INDEX: &str = include_str!("../page/index.html");
const SCRIPT: &str = include_str!("../page/app.js");
const STYLE: &str = include_str!("../page/app.css");

/// Only this origin's files; no inline script, no framing.
const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                      connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn file(kind: &'static str, body: &'static str) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, kind),
            (header::CONTENT_SECURITY_POLICY, POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// `/` and `/assets/{file}`.
pub(super) fn router() -> Router<App> {
    Router::new()
        .route("/", get(index))
        .route("/assets/{file}", get(asset))
}

async fn index() -> Response {
    file("text/html; charset=utf-8", INDEX)
}

async fn asset(Path(name): Path<String>) -> Response {
    match name.as_str() {
        "app.js" => file("text/javascript; charset=utf-8", SCRIPT),
        "app.css" => file("text/css; charset=utf-8", STYLE),
        _ => Problem::new(StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
