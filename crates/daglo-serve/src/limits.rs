//! Capacity by kind of traffic (`[limits]`): API callers and event streams share all
//! connections but the reserved ones, which stay free for Daglo's callbacks and the probes; one
//! API key holds at most its share of streams; a request body lives while it makes progress.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use daglo::internal::lock;
use futures_util::Stream;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::auth::Caller;
use crate::config::Limits;
use crate::problem::Problem;

/// What the limits hold at run time.
#[derive(Debug, Clone)]
pub(crate) struct Shares {
    limits: Limits,
    /// One permit per API request in flight (its answer's body included).
    api: Arc<Semaphore>,
    streams: Arc<Semaphore>,
    per_key: Arc<Mutex<HashMap<[u8; 32], usize>>>,
}

impl Shares {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            api: Arc::new(Semaphore::new(limits.api_share())),
            streams: Arc::new(Semaphore::new(limits.max_streams)),
            per_key: Arc::default(),
            limits,
        }
    }

    /// The keep-alive interval of event streams.
    pub(crate) fn keepalive(&self) -> Duration {
        Duration::from_secs(self.limits.stream_keepalive_secs)
    }

    /// A stream slot for `caller`, held until the guard is dropped: `429` past the key's share,
    /// `503` past all streams.
    pub(crate) fn stream(&self, caller: &Caller) -> Result<StreamSlot, Problem> {
        let permit = self.streams.clone().try_acquire_owned().map_err(|_| {
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "{} event streams are open, the most this service holds; poll GET /v1/jobs/{{id}} or retry",
                    self.limits.max_streams
                ),
            )
            .retry_after(5)
        })?;
        let mut counts = lock(&self.per_key);
        let count = counts.entry(caller.key).or_default();
        if *count >= self.limits.max_streams_per_key {
            return Err(Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "this API key holds {} event streams, its most (limits.max_streams_per_key)",
                    self.limits.max_streams_per_key
                ),
            )
            .retry_after(5));
        }
        *count += 1;
        Ok(StreamSlot {
            _permit: permit,
            caller: caller.key,
            per_key: self.per_key.clone(),
        })
    }

    /// A request body that fails once it delivers fewer than `upload_min_bytes` in a window.
    pub(crate) fn progressing(&self, body: Body) -> Body {
        Body::new(Progressing {
            inner: body,
            min_bytes: self.limits.upload_min_bytes,
            window: Duration::from_secs(self.limits.upload_window_secs),
            seen: 0,
            sleep: Box::pin(tokio::time::sleep(Duration::from_secs(
                self.limits.upload_window_secs,
            ))),
        })
    }
}

/// An open event stream's slot.
#[derive(Debug)]
pub(crate) struct StreamSlot {
    _permit: OwnedSemaphorePermit,
    caller: [u8; 32],
    per_key: Arc<Mutex<HashMap<[u8; 32], usize>>>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut counts = lock(&self.per_key);
        if let Some(count) = counts.get_mut(&self.caller) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.caller);
            }
        }
    }
}

/// The API's share as a layer: a request over it is answered `503` at once (with
/// `Retry-After` and `Connection: close`, so its connection is freed); a request within it holds
/// its permit until its answer's body is sent or dropped — an event stream, a caller that does
/// not read, an upload — so they never reach the reserved connections.
pub(crate) async fn api_share(State(shares): State<Shares>, request: Request, next: Next) -> Response {
    let Ok(permit) = shares.api.clone().try_acquire_owned() else {
        crate::metrics::shed("api");
        let mut answer = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the API is at its share of connections (limits.max_connections - limits.reserved_connections); retry",
        )
        .retry_after(1)
        .into_response();
        answer
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return answer;
    };
    let answer = next.run(request).await;
    let (parts, body) = answer.into_parts();
    Response::from_parts(
        parts,
        Body::new(Holding {
            inner: body,
            _permit: permit,
        }),
    )
}

/// A body that holds a permit until it is dropped.
struct Holding {
    inner: Body,
    _permit: OwnedSemaphorePermit,
}

impl HttpBody for Holding {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body that must deliver `min_bytes` in every `window`.
struct Progressing {
    inner: Body,
    min_bytes: u64,
    window: Duration,
    /// Bytes in the current window.
    seen: u64,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

/// The error a stalled body fails with (multer and `to_bytes` pass it on).
#[derive(Debug, thiserror::Error)]
#[error(
    "the request body arrived slower than {min_bytes} bytes per {window_secs} s (limits.upload_min_bytes)"
)]
pub(crate) struct TooSlow {
    min_bytes: u64,
    window_secs: u64,
}

impl HttpBody for Progressing {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        // What has arrived is read first: a window is judged only when nothing more is
        // waiting, so a server that was slow to read (a busy machine) never blames the sender.
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            this.seen += data.len() as u64;
        }
        if this.sleep.as_mut().poll(cx).is_ready() {
            if polled.is_pending() && this.seen < this.min_bytes {
                return Poll::Ready(Some(Err(axum::Error::new(TooSlow {
                    min_bytes: this.min_bytes,
                    window_secs: this.window.as_secs(),
                }))));
            }
            this.seen = 0;
            this.sleep
                .as_mut()
                .reset(tokio::time::Instant::now() + this.window);
            // Register the new deadline with this task.
            let _ = this.sleep.as_mut().poll(cx);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether an error from reading a body (through multer or `to_bytes`) was a stalled body.
pub(crate) fn is_too_slow(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<TooSlow>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// Keeps `S` alive with `guard` until the stream is dropped.
pub(crate) struct Guarded<S, G> {
    pub(crate) inner: S,
    pub(crate) _guard: G,
}

impl<S: Stream + Unpin, G: Unpin> Stream for Guarded<S, G> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}
