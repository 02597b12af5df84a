//! The receiver: checks and applies one callback, as a `tower::Service`.

use daglo_core::internal::lock;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use daglo_core::{BoxError, DecodeError, Rid, Status, StatusBody, excerpt};
use http::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use serde_json::json;
use tokio::sync::Semaphore;
use tracing::{Instrument, debug, field, info, info_span};

use crate::auth::verify;
use crate::config::CallbackAuth;
use crate::inbox::{CallbackInbox, InboxEntry, ReplayError};
use crate::keys::{JobKey, KEY_CHARS, KeyMint};
use crate::registry::{JobRegistry, RegistryError};
use crate::state::Applied;

/// The receiver as a [`tower::Service`]: mount it in an axum or hyper app
/// (`Router::route_service("/daglo/{key}", receiver)`), or let
/// [`CallbackDelivery::serve`](crate::CallbackDelivery::serve) run it standalone.
///
/// It answers only at `<receiver path>/<job key>`, where the receiver path is the public URL's
/// path unless [`CallbackConfig::receiver_path`](crate::CallbackConfig::receiver_path) says
/// otherwise (a proxy that rewrites paths).
#[derive(Clone)]
pub struct CallbackReceiver {
    inner: Arc<Checks>,
}

#[derive(Clone)]
pub(crate) struct Checks {
    pub(crate) auth: CallbackAuth,
    pub(crate) mint: Arc<KeyMint>,
    pub(crate) registry: Arc<dyn JobRegistry>,
    /// The path before the job key, without a trailing `/` (`""` for the root).
    pub(crate) path_prefix: String,
    pub(crate) max_body_bytes: usize,
    pub(crate) body_timeout: Duration,
    /// Bodies being read or decoded share this many KiB at most.
    pub(crate) body_memory: Arc<Semaphore>,
    /// The budget's size, in KiB.
    pub(crate) body_memory_kib: usize,
    /// Whose turn it is to read a body, per job key.
    pub(crate) turns: Arc<Turns>,
    /// Decode whole final bodies (transcripts trusted from the callback), or only what moves
    /// the job (status, progress, rid) when finals are confirmed by a `GET`.
    pub(crate) decode_results: bool,
    /// Where each callback is written down before it is answered, and the most of a body kept.
    pub(crate) inbox: Option<(Arc<dyn CallbackInbox>, usize)>,
}

impl fmt::Debug for CallbackReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackReceiver")
            .field("auth", &self.inner.auth)
            .field("path_prefix", &self.inner.path_prefix)
            .field("max_body_bytes", &self.inner.max_body_bytes)
            .field("body_timeout", &self.inner.body_timeout)
            .finish_non_exhaustive()
    }
}

impl CallbackReceiver {
    pub(crate) fn new(checks: Checks) -> Self {
        Self {
            inner: Arc::new(checks),
        }
    }

    /// This receiver writing every callback it takes in — past the job key and its credential,
    /// with its body read — to `inbox` before answering it: the body (cut at `max_body_bytes`,
    /// see [`DEFAULT_INBOX_BODY_BYTES`](crate::DEFAULT_INBOX_BODY_BYTES)), what it said and the
    /// answer; never a header, so never the credential. A failed write is answered `503`.
    #[must_use]
    pub fn with_inbox(self, inbox: Arc<dyn CallbackInbox>, max_body_bytes: usize) -> Self {
        let mut checks = (*self.inner).clone();
        checks.inbox = Some((inbox, max_body_bytes));
        Self::new(checks)
    }

    /// Applies a callback written down earlier (an [`InboxEntry`]) again, through the same
    /// decoding and the same state machine as when it arrived — a job still waiting moves (and a
    /// final is confirmed with the service, where finals are confirmed); one that already moved
    /// past it does not. The credential is not checked again: the entry was checked when it
    /// arrived, and only the application holding the inbox can replay it. Returns what the
    /// receiver would have answered: `accepted`, `duplicate`, `stale`, `ignored` (the job is no
    /// longer waited for) or `rid mismatch`.
    pub async fn replay(&self, entry: &InboxEntry) -> Result<&'static str, ReplayError> {
        let checks = &self.inner;
        let key = checks
            .mint
            .recognise(&entry.job_key)
            .ok_or(ReplayError::UnknownKey)?;
        let bytes = entry.body.as_bytes();
        let body = if entry.truncated {
            // What the body said, as written down when it arrived whole.
            let status = entry
                .status
                .as_deref()
                .ok_or_else(|| ReplayError::Malformed("the cut body's status was not read".to_owned()))?;
            let mut head = StatusBody::new(Status::parse(status));
            head.progress = entry.progress;
            head.rid = entry.rid.as_deref().map(Rid::new);
            if head.status.is_terminal() && checks.decode_results {
                return Err(ReplayError::Truncated);
            }
            head
        } else {
            decode(bytes, checks.decode_results).map_err(|e| ReplayError::Malformed(e.to_string()))?
        };
        match checks.registry.apply(&key, body).await {
            Err(e) => Err(ReplayError::Registry(e)),
            Ok(None) => Ok("ignored"),
            Ok(Some(applied)) => Ok(applied.as_str()),
        }
    }
}

type Answer = Response<Full<Bytes>>;

/// Longest status or rid text put in a log field.
const LOG_FIELD_CHARS: usize = 64;

/// Bodies above this size are decoded on a blocking thread, off the reactor.
const DECODE_INLINE_BYTES: usize = 64 << 10;

/// Bodies declared at most this long — progress callbacks, finals without a long transcript —
/// take neither their job's turn nor a share of the body memory budget: the turn and the
/// budget bound what maximum bodies hold while they trickle in and are decoded, and a small
/// body holds at most this much while it arrives (at most this times the connection cap
/// together: 8 MiB at the default 512), then is decoded inline within
/// [`DECODE_RATIO`](daglo_core::DECODE_RATIO) times its size. Taking a turn cost a map entry,
/// two locks and, when a job's callbacks came at once, a hand-off from task to task per
/// callback (`docs/architecture.md`, "Small bodies take no turn").
pub(crate) const SMALL_BODY_BYTES: usize = 16 << 10;

/// One body over [`SMALL_BODY_BYTES`] at a time per job key: a job's credential — leaked, say,
/// and used to trickle many maximum bodies at once — holds at most one body's share of the
/// memory budget, and the other jobs' callbacks keep the rest.
#[derive(Debug, Default)]
pub(crate) struct Turns {
    keys: std::sync::Mutex<std::collections::HashMap<String, Arc<Semaphore>>>,
}

/// A job key's turn to read a body; the next waiter's when dropped.
struct Turn<'a> {
    turns: &'a Turns,
    key: &'a str,
    semaphore: Arc<Semaphore>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Turns {
    async fn take<'a>(&'a self, key: &'a str) -> Turn<'a> {
        let semaphore = {
            let mut keys = lock(&self.keys);
            match keys.get(key) {
                Some(semaphore) => semaphore.clone(),
                None => {
                    let semaphore = Arc::new(Semaphore::new(1));
                    keys.insert(key.to_owned(), semaphore.clone());
                    semaphore
                }
            }
        };
        // Uncontended (the usual case: one sender, one callback of a job at a time) without
        // waiting; otherwise in turn.
        let permit = match semaphore.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => semaphore.clone().acquire_owned().await.ok(),
        };
        Turn {
            turns: self,
            key,
            semaphore,
            permit,
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        drop(self.permit.take());
        let mut keys = lock(&self.turns.keys);
        // Nobody else holds or waits for this key's turn (the map's and this one are the only
        // references, and new ones are taken under this lock): forget the key.
        if Arc::strong_count(&self.semaphore) == 2 {
            keys.remove(self.key);
        }
    }
}

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
        let handled = async move {
            // Timed only when the line saying how long it took is wanted.
            let started = tracing::enabled!(tracing::Level::INFO).then(Instant::now);
            let answer = receive(&checks, request).await;
            let code = answer.status().as_u16();
            let handling_us = started.map_or(0, |started| started.elapsed().as_micros() as u64);
            // Accepted callbacks at info; rejections at debug, so that a flood of forged or
            // junk requests cannot flood the logs.
            if answer.status().is_success() {
                info!(answer = code, handling_us, "callback handled");
            } else {
                debug!(answer = code, handling_us, "callback rejected");
            }
            Ok(answer)
        };
        // Entered on every poll only when a subscriber wants the span.
        if span.is_disabled() {
            Box::pin(handled)
        } else {
            Box::pin(handled.instrument(span))
        }
    }
}

/// The checks, in order: method, path and job key, credential (before reading anything else,
/// for pending and gone jobs alike), content type, declared size, the job's turn and the memory
/// budget (for bodies over [`SMALL_BODY_BYTES`]), actual size and time to deliver the body,
/// JSON, the job's state.
async fn receive<B>(checks: &Checks, request: Request<B>) -> Answer
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    if request.method() != Method::POST {
        let mut answer = error(StatusCode::METHOD_NOT_ALLOWED, "callbacks are POSTed");
        answer
            .headers_mut()
            .insert(ALLOW, http::HeaderValue::from_static("POST"));
        return answer;
    }
    let Some(segment) = key_segment(checks, request.uri().path()) else {
        return error(StatusCode::NOT_FOUND, UNKNOWN_KEY_REASON);
    };
    // With a registry whose look-ups are local a key is looked up before its tag is checked: a
    // registered key needs none (see `JobRegistry::lookups_are_local`), and only one not found
    // is checked. Otherwise the tag first, so that keys this receiver never minted go no
    // further.
    let local = checks.registry.lookups_are_local();
    let key = if local {
        (segment.len() == KEY_CHARS).then(|| JobKey::new(segment))
    } else {
        checks.mint.recognise(segment)
    };
    let Some(key) = key else {
        return error(StatusCode::NOT_FOUND, UNKNOWN_KEY_REASON);
    };
    let registered = match checks.registry.lookup(&key).await {
        Ok(registered) => registered,
        Err(e) => return unavailable(&e),
    };
    if local && registered.is_none() && !checks.mint.minted(segment) {
        return error(StatusCode::NOT_FOUND, UNKNOWN_KEY_REASON);
    }
    tracing::Span::current().record("job_key", key.as_str());

    let digest = registered.as_ref().and_then(|r| r.digest);
    if !verify(
        &checks.auth,
        &checks.mint,
        request.headers(),
        &key,
        digest.as_ref(),
    ) {
        return error(StatusCode::UNAUTHORIZED, UNAUTHORIZED_REASON);
    }
    if registered.is_none() && checks.inbox.is_none() {
        // A job that finished, was dropped or expired, and a credential that is its own:
        // nothing to change, and no reason for the sender to retry. With an inbox the body is
        // read and written down first (answered `ignored` all the same): a job whose submit was
        // cut off, or that is being settled, can still be recovered from it.
        debug!("callback for a job no longer waited for; ignored");
        return accepted("ignored");
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

    let reserve = declared.map_or(checks.max_body_bytes, |len| len as usize);
    let small = declared.is_some_and(|len| len <= SMALL_BODY_BYTES as u64);
    let read = async {
        if small {
            // A progress callback, say: read and decoded inline without a turn or a share of the
            // budget (see `SMALL_BODY_BYTES`).
            let bytes = read_body(request.into_body(), reserve, reserve).await;
            return (None, bytes);
        }
        // This job's turn first: one body of a job at a time, whatever its credential sends.
        let turn = checks.turns.take(key.as_str()).await;
        // Reserve the body's memory first — for reading it, and for decoding it — from the one
        // budget every body in flight shares; capped at the whole budget, so one always fits.
        let factor = if checks.decode_results {
            crate::config::FULL_DECODE_FACTOR
        } else {
            1
        };
        let kib = reserve.saturating_mul(factor).div_ceil(1024).max(1);
        let permits = u32::try_from(kib.min(checks.body_memory_kib)).unwrap_or(u32::MAX);
        let budget = checks.body_memory.clone().acquire_many_owned(permits).await;
        let bytes = read_body(request.into_body(), checks.max_body_bytes, reserve).await;
        (Some((turn, budget)), bytes)
    };
    // A small body has usually arrived with the head: read at once, no timer; otherwise the
    // rest within the body timeout.
    let mut read = std::pin::pin!(read);
    let read = match std::future::poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx))).await {
        Poll::Ready(read) => Ok(read),
        Poll::Pending => tokio::time::timeout(checks.body_timeout, read).await,
    };
    let (_budget, bytes) = match read {
        Err(_) => {
            debug!("callback body too slow; timed out");
            return error(StatusCode::REQUEST_TIMEOUT, "the body took too long to arrive");
        }
        Ok((_, Err(ReadError::TooLarge))) => return too_large(checks.max_body_bytes),
        Ok((_, Err(ReadError::Broken))) => {
            return error(StatusCode::BAD_REQUEST, "the body could not be read");
        }
        Ok((budget, Ok(bytes))) => (budget, bytes),
    };
    let kept = checks.inbox.as_ref().map(|_| bytes.clone());
    let (verdict, said) = settle(checks, &key, bytes).await;
    if let (Some((inbox, cap)), Some(bytes)) = (&checks.inbox, kept) {
        let (code, answer) = match &verdict {
            Verdict::Applied(what) => (StatusCode::OK, *what),
            Verdict::Refused(code, _, what) => (*code, *what),
            // Not taken in: the sender retries, and the retry is written down.
            Verdict::Unavailable(e) => return unavailable(e),
        };
        let mut entry = InboxEntry::new(key.as_str(), &bytes, *cap, code.as_u16(), answer);
        if let Some(said) = said {
            entry.status = Some(said.0);
            entry.progress = said.1;
            entry.rid = said.2;
        }
        if let Err(e) = inbox.record(entry).await {
            return unavailable(&e);
        }
    }
    match verdict {
        Verdict::Applied(what) => accepted(what),
        Verdict::Refused(code, reason, _) => error(code, &reason),
        Verdict::Unavailable(e) => unavailable(&e),
    }
}

/// How a read body was taken: applied (`accepted`, `duplicate`, `stale`, `ignored`), refused
/// (the status, the reason, and the inbox's word for it), or not taken (the registry failed).
enum Verdict {
    Applied(&'static str),
    Refused(StatusCode, String, &'static str),
    Unavailable(RegistryError),
}

/// Decodes a body and applies it; also returns what it said (status, percent, rid) for the
/// inbox.
async fn settle(
    checks: &Checks,
    key: &JobKey,
    bytes: Bytes,
) -> (Verdict, Option<(String, Option<u32>, Option<String>)>) {
    let decode_results = checks.decode_results;
    let decoded = if bytes.len() <= DECODE_INLINE_BYTES {
        decode(&bytes, decode_results)
    } else {
        match tokio::task::spawn_blocking(move || decode(&bytes, decode_results)).await {
            Ok(decoded) => decoded,
            Err(_) => {
                return (
                    Verdict::Refused(
                        StatusCode::BAD_REQUEST,
                        "the body could not be decoded".to_owned(),
                        "malformed",
                    ),
                    None,
                );
            }
        }
    };
    let body = match decoded {
        Ok(body) => body,
        Err(e) => {
            // The path and the kind of mismatch, never the body's text: it may be a transcript.
            let reason = format!("malformed callback body at `{}`: {}", e.path(), e.message());
            debug!(reason = %reason, "callback rejected");
            return (
                Verdict::Refused(StatusCode::BAD_REQUEST, reason, "malformed"),
                None,
            );
        }
    };
    let span = tracing::Span::current();
    if !span.is_disabled() {
        span.record("status", excerpt(body.status.as_str(), LOG_FIELD_CHARS).as_str());
        if let Some(rid) = &body.rid {
            span.record("rid", excerpt(rid.as_str(), LOG_FIELD_CHARS).as_str());
        }
    }
    let said = checks.inbox.as_ref().map(|_| {
        (
            body.status.as_str().to_owned(),
            body.progress,
            body.rid.as_ref().map(|r| r.as_str().to_owned()),
        )
    });
    let verdict = match checks.registry.apply(key, body).await {
        Err(e) => Verdict::Unavailable(e),
        Ok(None) => Verdict::Applied("ignored"),
        Ok(Some(Applied::RidMismatch)) => {
            debug!("callback names another job's rid; rejected");
            Verdict::Refused(
                StatusCode::BAD_REQUEST,
                "the body's rid does not match this job".to_owned(),
                "rid mismatch",
            )
        }
        Ok(Some(applied)) => {
            debug!(applied = applied.as_str(), "callback applied");
            Verdict::Applied(applied.as_str())
        }
    };
    (verdict, said)
}

/// What stands for the job key, if the path is `<prefix>/<one segment>`.
fn key_segment<'a>(checks: &Checks, path: &'a str) -> Option<&'a str> {
    path.strip_prefix(checks.path_prefix.as_str())?.strip_prefix('/')
}

enum ReadError {
    TooLarge,
    Broken,
}

/// Reads the body, stopping as soon as it passes `max`. A body that comes in one piece (a
/// small one arrives with its head) is kept as it came, without a copy; one in pieces is
/// gathered into one buffer of `expected` bytes.
async fn read_body<B>(body: B, max: usize, expected: usize) -> Result<Bytes, ReadError>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let mut body = std::pin::pin!(body);
    let mut first: Option<Bytes> = None;
    let mut gathered: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ReadError::Broken)?;
        let Ok(mut data) = frame.into_data() else {
            continue;
        };
        let so_far = first.as_ref().map_or(0, Bytes::len) + gathered.len();
        if so_far + data.remaining() > max {
            return Err(ReadError::TooLarge);
        }
        if !data.has_remaining() {
            continue;
        }
        if so_far == 0 {
            // Free for hyper's `Bytes`: a share of its read buffer.
            first = Some(data.copy_to_bytes(data.remaining()));
            continue;
        }
        if let Some(first) = first.take() {
            gathered.reserve(expected.min(max));
            gathered.extend_from_slice(&first);
        }
        while data.has_remaining() {
            let chunk = data.chunk();
            gathered.extend_from_slice(chunk);
            let n = chunk.len();
            data.advance(n);
        }
    }
    Ok(first.unwrap_or_else(|| Bytes::from(gathered)))
}

/// What a callback body says. A small body's head first — status, progress, rid, message —
/// which is all a progress callback's decode, and all of a final's when its transcript is read
/// from the service (`results` off); a final whose results are trusted is then read whole. A
/// larger body with results trusted is a final's transcript: read whole at once, not skimmed
/// for its head first.
///
/// A final whose results cannot be read is still taken for its status (the results are then
/// fetched from the service), so a final callback is never lost to one odd value.
fn decode(bytes: &[u8], results: bool) -> Result<StatusBody, DecodeError> {
    let head = || daglo_core::decode_status_head(bytes);
    if results && bytes.len() > SMALL_BODY_BYTES {
        return daglo_core::decode_status_body(bytes).or_else(|whole| head().map_err(|_| whole));
    }
    let head = head()?;
    if !results || !head.status.is_terminal() {
        return Ok(head);
    }
    Ok(daglo_core::decode_status_body(bytes).unwrap_or(head))
}

fn too_large(max: usize) -> Answer {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("the body is larger than {max} bytes"),
    )
}

/// A JSON answer: `body` as written (the common ones are static bytes, written once).
fn json_answer(status: StatusCode, body: impl Into<Bytes>) -> Answer {
    let mut answer = Response::new(Full::new(body.into()));
    *answer.status_mut() = status;
    answer
        .headers_mut()
        .insert(CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    answer
}

fn accepted(what: &str) -> Answer {
    daglo_core::telemetry::callback(match what {
        "accepted" => "accepted",
        "duplicate" => "duplicate",
        "stale" => "stale_progress",
        _ => "late",
    });
    // The answers a sender gets most, written once.
    let body: &'static [u8] = match what {
        "accepted" => br#"{"status":"accepted"}"#,
        "duplicate" => br#"{"status":"duplicate"}"#,
        "stale" => br#"{"status":"stale"}"#,
        "ignored" => br#"{"status":"ignored"}"#,
        _ => return json_answer(StatusCode::OK, json!({ "status": what }).to_string()),
    };
    json_answer(StatusCode::OK, body)
}

/// The registry could not store or check the callback: `503` with `Retry-After`, so the sender
/// tries again rather than taking the callback as delivered.
fn unavailable(cause: &RegistryError) -> Answer {
    tracing::warn!(error = %cause, "callback not stored: the registry is unavailable; answered 503");
    let mut answer = error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the callback could not be stored now; retry later",
    );
    answer
        .headers_mut()
        .insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("1"));
    answer
}

fn error(status: StatusCode, reason: &str) -> Answer {
    daglo_core::telemetry::callback(match status {
        StatusCode::UNAUTHORIZED => "bad_credential",
        StatusCode::NOT_FOUND => "unknown_key",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        _ => "malformed",
    });
    // The rejections a flood of forged or stray requests gets, written once.
    let body: &'static [u8] = match reason {
        UNAUTHORIZED_REASON => br#"{"error":"missing or invalid credential"}"#,
        UNKNOWN_KEY_REASON => br#"{"error":"unknown job key"}"#,
        _ => return json_answer(status, json!({ "error": reason }).to_string()),
    };
    json_answer(status, body)
}

/// Why a request without a valid credential is refused.
const UNAUTHORIZED_REASON: &str = "missing or invalid credential";
/// Why a request to a path that is not a job key of this receiver is refused.
const UNKNOWN_KEY_REASON: &str = "unknown job key";

#[cfg(test)]
mod tests {
    use super::*;

    /// Small and large bodies, results trusted or not: the same readings, whichever is read
    /// first.
    #[test]
    fn bodies_small_and_large_read_alike() {
        let padding = "x".repeat(SMALL_BODY_BYTES);
        for pad in ["", padding.as_str()] {
            let final_body = format!(
                r#"{{"status":"transcribed","progress":100,"pad":"{pad}","sttResults":[{{"transcript":"hi","words":[]}}]}}"#
            );
            let trusted = decode(final_body.as_bytes(), true).unwrap();
            assert_eq!(trusted.full_transcript(), "hi");
            let confirmed = decode(final_body.as_bytes(), false).unwrap();
            assert!(confirmed.stt_results.is_none());
            assert_eq!(confirmed.status, Status::Transcribed);
            // Results that cannot be read: the status is still taken.
            let odd = format!(r#"{{"status":"transcribed","pad":"{pad}","sttResults":"not a list"}}"#);
            let taken = decode(odd.as_bytes(), true).unwrap();
            assert_eq!((taken.status, taken.stt_results), (Status::Transcribed, None));
            let progress = format!(r#"{{"status":"transcribing","progress":40,"pad":"{pad}"}}"#);
            assert_eq!(decode(progress.as_bytes(), true).unwrap().progress, Some(40));
            let broken = format!(r#"{{"progress":40,"pad":"{pad}"}}"#);
            let err = decode(broken.as_bytes(), true).unwrap_err();
            assert!(err.message().contains("status"), "{err}");
        }
    }
}
