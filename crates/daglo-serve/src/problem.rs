//! The API's answers: JSON bodies, and every error as `{"error": …, "code": …}` with its status —
//! one type that is `IntoResponse`, so handlers return `Result<_, Problem>` and use `?`.
//!
//! `code` is one of [`CODES`] (documented in `docs/serve.md` and the API document): what a
//! program branches on, while `error` is for people.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A JSON answer with a status.
pub(crate) fn json(status: StatusCode, value: &impl Serialize) -> Response {
    let body = serde_json::to_string(value).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Every `code` an error answer carries, with what it means. The default of a status is the
/// first listed for it; the others are set where they apply.
pub(crate) const CODES: &[(&str, u16, &str)] = &[
    (
        "invalid_request",
        422,
        "the request (its body, a field, the query) is not valid; `error` names what",
    ),
    ("unauthorized", 401, "no API key, or not one of the service's"),
    ("not_found", 404, "no such job for this tenant, or no such route"),
    ("request_timeout", 408, "the request body stopped arriving"),
    ("conflict", 409, "the job is not in a state that allows this"),
    (
        "key_reused",
        409,
        "the idempotency key names a job made by a different request (`job_id`)",
    ),
    (
        "job_failed",
        409,
        "the job failed: it has no transcript (`state`, `reason`)",
    ),
    ("not_ended", 409, "the job has not ended yet (`state`)"),
    (
        "payload_too_large",
        413,
        "the upload or a text part is larger than allowed",
    ),
    (
        "unsupported_media_type",
        415,
        "send application/json or multipart/form-data",
    ),
    (
        "too_many_requests",
        429,
        "this API key holds as many event streams as it may",
    ),
    (
        "too_many_running",
        429,
        "the tenant has `max_running` jobs running: retry after `Retry-After`",
    ),
    ("internal", 500, "the service failed unexpectedly"),
    (
        "upstream_failed",
        502,
        "Daglo failed or answered what it should not",
    ),
    (
        "unavailable",
        503,
        "the service cannot serve this now (store, disk, draining, overload): retry after `Retry-After`",
    ),
];

/// The default code of `status`.
fn default_code(status: StatusCode) -> &'static str {
    CODES.iter().find(|(_, code, _)| *code == status.as_u16()).map_or(
        if status.is_client_error() {
            "invalid_request"
        } else {
            "internal"
        },
        |(name, _, _)| name,
    )
}

/// An error answer: its status, code and message, and any further fields of its JSON body.
#[derive(Debug)]
pub(crate) struct Problem {
    status: StatusCode,
    body: serde_json::Map<String, serde_json::Value>,
    challenge: bool,
    retry_after: Option<u64>,
}

impl Problem {
    /// `status` with `message` as its `error`.
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        let mut body = serde_json::Map::new();
        body.insert("error".to_owned(), message.into().into());
        body.insert("code".to_owned(), default_code(status).into());
        Self {
            status,
            body,
            challenge: false,
            retry_after: None,
        }
    }

    /// `404 no such job` (also for a job the caller may not see).
    pub(crate) fn no_job() -> Self {
        Self::new(StatusCode::NOT_FOUND, "no such job")
    }

    /// `422` with `message`.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    /// `409` with `message`.
    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// `503` with `Retry-After`: the journal or another store of the service failed — a
    /// local failure, never blamed on Daglo.
    pub(crate) fn unavailable(error: &dyn std::error::Error) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            daglo::internal::error_chain(error),
        )
        .retry_after(crate::readiness::RETRY_AFTER_SECS)
    }

    /// Adds `Retry-After: secs`.
    pub(crate) fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// `502`: Daglo failed.
    pub(crate) fn upstream(error: &dyn std::error::Error) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, daglo::internal::error_chain(error))
    }

    /// `503` with `Retry-After` for a local file operation that failed (a full disk, say).
    pub(crate) fn uploads(error: &std::io::Error) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, format!("uploads: {error}"))
            .retry_after(crate::readiness::RETRY_AFTER_SECS)
    }

    /// `401` with a `WWW-Authenticate: Bearer` challenge.
    pub(crate) fn unauthorized() -> Self {
        Self {
            challenge: true,
            ..Self::new(StatusCode::UNAUTHORIZED, "send Authorization: Bearer <api key>")
        }
    }

    /// Sets the `code` (one of [`CODES`]).
    pub(crate) fn code(mut self, code: &'static str) -> Self {
        debug_assert!(
            CODES.iter().any(|(name, _, _)| *name == code),
            "undocumented code {code}"
        );
        self.body.insert("code".to_owned(), code.into());
        self
    }

    /// Adds `name: value` to the body.
    pub(crate) fn with(mut self, name: &str, value: impl Into<serde_json::Value>) -> Self {
        self.body.insert(name.to_owned(), value.into());
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut answer = json(self.status, &self.body);
        if self.challenge {
            answer
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after {
            answer
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        answer
    }
}
