//! The receiver: checks and applies one callback, as a `tower::Service`.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full, Limited};
use serde_json::json;
use tracing::{Instrument, debug, field, info, info_span, warn};

use crate::auth::verify;
use daglo_core::BoxError;

use crate::config::CallbackAuth;
use crate::keys::KeyMint;
use crate::registry::JobRegistry;
use crate::state::Applied;

/// The receiver as a [`tower::Service`]: mount it in an axum or hyper app
/// (`Router::route_service("/daglo/{key}", receiver)`), or let
/// [`CallbackDelivery::serve`](crate::CallbackDelivery::serve) run it standalone.
///
/// It takes the job key from the last path segment, so it works under any prefix.
#[derive(Clone)]
pub struct CallbackReceiver {
    inner: Arc<Checks>,
}

pub(crate) struct Checks {
    pub(crate) auth: CallbackAuth,
    pub(crate) mint: Arc<KeyMint>,
    pub(crate) registry: Arc<dyn JobRegistry>,
    pub(crate) max_body_bytes: usize,
    pub(crate) body_timeout: Duration,
}

impl fmt::Debug for CallbackReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackReceiver")
            .field("auth", &self.inner.auth)
            .field("max_body_bytes", &self.inner.max_body_bytes)
            .field("body_timeout", &self.inner.body_timeout)
            .finish_non_exhaustive()
    }
}

impl CallbackReceiver {
    pub(crate) fn new(checks: Checks) -> Self {
        CallbackReceiver {
            inner: Arc::new(checks),
        }
    }
}

type Answer = Response<Full<Bytes>>;

impl<B> tower::Service<Request<B>> for CallbackReceiver
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Answer;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Answer, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let checks = self.inner.clone();
        let span = info_span!(
            "daglo_callback",
            job_key = field::Empty,
            rid = field::Empty,
            status = field::Empty
        );
        Box::pin(
            async move {
                let started = Instant::now();
                let answer = receive(&checks, request).await;
                info!(
                    answer = answer.status().as_u16(),
                    handling_us = started.elapsed().as_micros() as u64,
                    "callback handled"
                );
                Ok(answer)
            }
            .instrument(span),
        )
    }
}

/// The checks, in order: method, job key, credential (before reading anything else), content
/// type, declared and actual size, time to deliver the body, JSON, the job's state.
async fn receive<B>(checks: &Checks, request: Request<B>) -> Answer
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    if request.method() != Method::POST {
        return error(StatusCode::METHOD_NOT_ALLOWED, "callbacks are POSTed");
    }
    let segment = request.uri().path().rsplit('/').next().unwrap_or_default();
    let Some(key) = checks.mint.recognise(segment) else {
        debug!("no job key this receiver minted in the path");
        return error(StatusCode::NOT_FOUND, "unknown job key");
    };
    tracing::Span::current().record("job_key", key.as_str());

    let Some(registered) = checks.registry.lookup(&key).await else {
        // A key we minted for a job that finished, was dropped or expired: nothing to change,
        // and no reason for the sender to retry.
        info!("callback for a job no longer waited for; ignored");
        return accepted("ignored");
    };
    if !verify(&checks.auth, request.headers(), &key, registered.digest.as_ref()) {
        warn!("callback with a missing or invalid credential; rejected");
        return error(StatusCode::UNAUTHORIZED, "missing or invalid credential");
    }
    let is_json = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be application/json",
        );
    }
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > checks.max_body_bytes as u64) {
        return too_large(checks.max_body_bytes);
    }

    let reading = Limited::new(request.into_body(), checks.max_body_bytes).collect();
    let bytes = match tokio::time::timeout(checks.body_timeout, reading).await {
        Err(_) => {
            warn!("callback body too slow; timed out");
            return error(StatusCode::REQUEST_TIMEOUT, "the body took too long to arrive");
        }
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return too_large(checks.max_body_bytes),
        Ok(Err(_)) => return error(StatusCode::BAD_REQUEST, "the body could not be read"),
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let body = match daglo_core::decode_status_body(&bytes) {
        Ok(body) => body,
        Err(e) => {
            // The reason, not the body: it may hold transcript text.
            let reason = format!("malformed callback body at `{}`: {}", e.path(), e.message());
            warn!(reason = %reason, "callback rejected");
            return error(StatusCode::BAD_REQUEST, &reason);
        }
    };
    let span = tracing::Span::current();
    span.record("status", body.status.as_str());
    if let Some(rid) = &body.rid {
        span.record("rid", rid.as_str());
    }
    match checks.registry.apply(&key, body).await {
        None => accepted("ignored"),
        Some(Applied::RidMismatch) => {
            warn!("callback names another job's rid; rejected");
            error(StatusCode::BAD_REQUEST, "the body's rid does not match this job")
        }
        Some(applied) => {
            debug!(applied = applied.as_str(), "callback applied");
            accepted(applied.as_str())
        }
    }
}

fn too_large(max: usize) -> Answer {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("the body is larger than {max} bytes"),
    )
}

fn json_answer(status: StatusCode, body: serde_json::Value) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::from(body.to_string())));
    *answer.status_mut() = status;
    answer
        .headers_mut()
        .insert(CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    answer
}

fn accepted(what: &str) -> Answer {
    json_answer(StatusCode::OK, json!({ "status": what }))
}

fn error(status: StatusCode, reason: &str) -> Answer {
    json_answer(status, json!({ "error": reason }))
}
