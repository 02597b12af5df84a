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
use crate::registry::{JobRegistry, Registered, RegistryError};
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
    type Future = CallbackFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> CallbackFuture {
        let span = info_span!(
            "daglo_callback",
            job_key = field::Empty,
            rid = field::Empty,
            status = field::Empty
        );
        // Timed only when the line saying how long it took is wanted.
        let started = tracing::enabled!(tracing::Level::INFO).then(Instant::now);
        let checks = &self.inner;
        // The head's checks, at once where the registry answers at once: most rejections (and
        // callbacks of jobs no longer waited for) are answered here, with no future boxed.
        let admission = span.in_scope(|| admit(checks, &request, &span));
        let future: Pin<Box<dyn Future<Output = Answer> + Send>> = match admission {
            Head::Decided(Admission::Answered(answer)) => {
                span.in_scope(|| logged(&answer, started));
                return CallbackFuture::ready(answer);
            }
            Head::Decided(Admission::Admitted(admitted)) => {
                let checks = checks.clone();
                let body = request.into_body();
                let taken = async move {
                    let answer = take_body(&checks, admitted, body).await;
                    logged(&answer, started);
                    answer
                };
                instrumented(taken, span)
            }
            Head::LookUp(key) => {
                let checks = checks.clone();
                let looked_up = async move {
                    let answer = match checks.registry.lookup(&key).await {
                        Err(e) => unavailable(&e),
                        Ok(registered) => {
                            let span = tracing::Span::current();
                            match admit_registered(&checks, request.headers(), key, registered, &span) {
                                Admission::Admitted(admitted) => {
                                    take_body(&checks, admitted, request.into_body()).await
                                }
                                Admission::Answered(answer) => answer,
                            }
                        }
                    };
                    logged(&answer, started);
                    answer
                };
                instrumented(looked_up, span)
            }
        };
        CallbackFuture {
            state: Stage::Running(future),
        }
    }
}

/// A callback's future, boxed, in its span when a subscriber wants the span (entered on every
/// poll only then).
fn instrumented<F>(future: F, span: tracing::Span) -> Pin<Box<dyn Future<Output = Answer> + Send>>
where
    F: Future<Output = Answer> + Send + 'static,
{
    if span.is_disabled() {
        Box::pin(future)
    } else {
        Box::pin(future.instrument(span))
    }
}

/// Accepted callbacks at info; rejections at debug, so that a flood of forged or junk requests
/// cannot flood the logs.
fn logged(answer: &Answer, started: Option<Instant>) {
    let code = answer.status().as_u16();
    let handling_us = started.map_or(0, |started| started.elapsed().as_micros() as u64);
    if answer.status().is_success() {
        info!(answer = code, handling_us, "callback handled");
    } else {
        debug!(answer = code, handling_us, "callback rejected");
    }
}

/// The answer to one callback, as [`CallbackReceiver`]'s [`tower::Service`] gives it: ready at
/// once when the request's head alone decides it (a wrong method, path, job key, credential,
/// content type or size, a job no longer waited for), otherwise once the body has been read
/// and applied.
#[must_use = "futures do nothing unless polled"]
pub struct CallbackFuture {
    state: Stage,
}

enum Stage {
    Answered(Option<Answer>),
    Running(Pin<Box<dyn Future<Output = Answer> + Send>>),
}

impl CallbackFuture {
    fn ready(answer: Answer) -> Self {
        Self {
            state: Stage::Answered(Some(answer)),
        }
    }
}

impl fmt::Debug for CallbackFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            Stage::Answered(Some(_)) => "answered",
            Stage::Answered(None) => "taken",
            Stage::Running(_) => "reading the body",
        };
        f.debug_struct("CallbackFuture").field("state", &state).finish()
    }
}

impl Future for CallbackFuture {
    type Output = Result<Answer, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            Stage::Answered(answer) => match answer.take() {
                Some(answer) => Poll::Ready(Ok(answer)),
                // Polled again after its answer: as a finished future may, it says so.
                None => panic!("`CallbackFuture` polled after completion"),
            },
            Stage::Running(future) => future.as_mut().poll(cx).map(Ok),
        }
    }
}

/// What the head's checks decided.
enum Admission {
    /// Answered from the head alone.
    Answered(Answer),
    /// Past every check of the head: its body is read, checked and applied.
    Admitted(Admitted),
}

/// Where the head's checks stand once the job key is read.
enum Head {
    Decided(Admission),
    /// A key with a valid tag whose registration the registry must be asked for (its look-ups
    /// leave this process).
    LookUp(JobKey),
}

/// A callback whose head passed: its job key and the size its head declared.
struct Admitted {
    key: JobKey,
    declared: Option<u64>,
}

/// The checks of the head, in order: method, path and job key, credential (before reading
/// anything else, for pending and gone jobs alike), content type, declared size. The key is
/// looked up at once where the registry can ([`JobRegistry::lookup_now`]); otherwise its tag
/// is checked and the registry is asked ([`Head::LookUp`]).
fn admit<B>(checks: &Checks, request: &Request<B>, span: &tracing::Span) -> Head {
    if request.method() != Method::POST {
        let mut answer = error(StatusCode::METHOD_NOT_ALLOWED, "callbacks are POSTed");
        answer
            .headers_mut()
            .insert(ALLOW, http::HeaderValue::from_static("POST"));
        return Head::Decided(Admission::Answered(answer));
    }
    let segment = key_segment(checks, request.uri().path()).filter(|s| s.len() == KEY_CHARS);
    let Some(segment) = segment else {
        return Head::Decided(Admission::Answered(error(
            StatusCode::NOT_FOUND,
            UNKNOWN_KEY_REASON,
        )));
    };
    let key = JobKey::new(segment);
    // A registry that answers at once is asked first: a registered key needs no check of its
    // tag (see `JobRegistry::lookup_now`), and only one not found is checked. Otherwise the
    // tag first, so that keys this receiver never minted go no further.
    let registered = checks.registry.lookup_now(&key);
    let known = registered.is_some_and(|r| r.is_some());
    if !known && !checks.mint.minted(segment) {
        return Head::Decided(Admission::Answered(error(
            StatusCode::NOT_FOUND,
            UNKNOWN_KEY_REASON,
        )));
    }
    match registered {
        Some(registered) => Head::Decided(admit_registered(checks, request.headers(), key, registered, span)),
        None => Head::LookUp(key),
    }
}

/// The checks of the head once the key's registration is known: the credential, the job
/// waited for, the content type, the declared size.
fn admit_registered(
    checks: &Checks,
    headers: &http::HeaderMap,
    key: JobKey,
    registered: Option<Registered>,
    span: &tracing::Span,
) -> Admission {
    if !span.is_disabled() {
        span.record("job_key", key.as_str());
    }
    let digest = registered.as_ref().and_then(|r| r.digest);
    if !verify(&checks.auth, &checks.mint, headers, &key, digest.as_ref()) {
        return Admission::Answered(error(StatusCode::UNAUTHORIZED, UNAUTHORIZED_REASON));
    }
    if registered.is_none() && checks.inbox.is_none() {
        // A job that finished, was dropped or expired, and a credential that is its own:
        // nothing to change, and no reason for the sender to retry. With an inbox the body is
        // read and written down first (answered `ignored` all the same): a job whose submit was
        // cut off, or that is being settled, can still be recovered from it.
        debug!("callback for a job no longer waited for; ignored");
        return Admission::Answered(accepted("ignored"));
    }
    let is_json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Admission::Answered(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be application/json",
        ));
    }
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > checks.max_body_bytes as u64) {
        return Admission::Answered(too_large(checks.max_body_bytes));
    }
    Admission::Admitted(Admitted { key, declared })
}

/// The rest, for a callback whose head passed: the job's turn and the memory budget (for
/// bodies over [`SMALL_BODY_BYTES`]), actual size and time to deliver the body, JSON, the job's
/// state; the inbox, where there is one.
///
/// Its state is what every valid callback's future holds, so the rare paths — a large body, a
/// body that has not arrived with its head, a large decode, the inbox — are futures of their
/// own, boxed when taken: a small callback's future stays small enough for the allocator's
/// per-thread cache (`docs/architecture.md`, "A callback decided from its head").
async fn take_body<B>(checks: &Checks, admitted: Admitted, body: B) -> Answer
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let Admitted { key, declared } = admitted;
    let reserve = declared.map_or(checks.max_body_bytes, |len| len as usize);
    let (_held, read) = if declared.is_some_and(|len| len <= SMALL_BODY_BYTES as u64) {
        // A progress callback, say: read and decoded inline without a turn or a share of the
        // budget (see `SMALL_BODY_BYTES`).
        let read = within(checks.body_timeout, read_body(body, reserve, reserve)).await;
        (None, read)
    } else {
        Box::pin(read_large(checks, &key, body, reserve)).await
    };
    let bytes = match read {
        None => {
            debug!("callback body too slow; timed out");
            return error(StatusCode::REQUEST_TIMEOUT, "the body took too long to arrive");
        }
        Some(Err(ReadError::TooLarge)) => return too_large(checks.max_body_bytes),
        Some(Err(ReadError::Broken)) => {
            return error(StatusCode::BAD_REQUEST, "the body could not be read");
        }
        Some(Ok(bytes)) => bytes,
    };
    if let Some((inbox, cap)) = &checks.inbox {
        return Box::pin(settle_recorded(checks, (inbox.as_ref(), *cap), &key, bytes)).await;
    }
    settle(checks, &key, bytes).await.0.answer()
}

/// What a body's job turn and memory budget hold while it is read and applied.
type Held<'a> = (
    Turn<'a>,
    Result<tokio::sync::OwnedSemaphorePermit, tokio::sync::AcquireError>,
);

/// A body over [`SMALL_BODY_BYTES`] (or of no declared length), read in its job's turn with its
/// share of the memory budget, both held until it has been applied.
async fn read_large<'a, B>(
    checks: &'a Checks,
    key: &'a JobKey,
    body: B,
    reserve: usize,
) -> (Option<Held<'a>>, Option<Result<Bytes, ReadError>>)
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    // Waiting for the turn and the budget counts towards the body's time, as when the body was
    // read in one future.
    let read = async {
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
        let bytes = read_body(body, checks.max_body_bytes, reserve).await;
        ((turn, budget), bytes)
    };
    match within(checks.body_timeout, read).await {
        Some((held, bytes)) => (Some(held), Some(bytes)),
        None => (None, None),
    }
}

/// `read`'s output, or `None` if it took longer than `limit`. A small body has usually arrived
/// with its head: read at once, with no timer; only one still arriving gets a (boxed) timer.
async fn within<F: Future>(limit: Duration, read: F) -> Option<F::Output> {
    let mut read = std::pin::pin!(read);
    match std::future::poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx))).await {
        Poll::Ready(output) => Some(output),
        Poll::Pending => Box::pin(tokio::time::timeout(limit, read)).await.ok(),
    }
}

/// [`settle`], then the callback written down in `inbox` (bodies cut at `cap` bytes) before it
/// is answered.
async fn settle_recorded(
    checks: &Checks,
    (inbox, cap): (&dyn CallbackInbox, usize),
    key: &JobKey,
    bytes: Bytes,
) -> Answer {
    let (verdict, said) = settle(checks, key, bytes.clone()).await;
    let (code, answer) = match &verdict {
        Verdict::Applied(what) => (StatusCode::OK, *what),
        Verdict::Refused(code, _, what) => (*code, *what),
        // Not taken in: the sender retries, and the retry is written down.
        Verdict::Unavailable(e) => return unavailable(e),
    };
    let mut entry = InboxEntry::new(key.as_str(), &bytes, cap, code.as_u16(), answer);
    if let Some(said) = said {
        entry.status = Some(said.0);
        entry.progress = said.1;
        entry.rid = said.2;
    }
    if let Err(e) = inbox.record(entry).await {
        return unavailable(&e);
    }
    verdict.answer()
}

/// How a read body was taken: applied (`accepted`, `duplicate`, `stale`, `ignored`), refused
/// (the status, the reason, and the inbox's word for it), or not taken (the registry failed).
enum Verdict {
    Applied(&'static str),
    Refused(StatusCode, String, &'static str),
    Unavailable(RegistryError),
}

impl Verdict {
    /// The answer the sender gets.
    fn answer(self) -> Answer {
        match self {
            Self::Applied(what) => accepted(what),
            Self::Refused(code, reason, _) => error(code, &reason),
            Self::Unavailable(e) => unavailable(&e),
        }
    }
}

/// What a body said, kept for the inbox: its status, percent and rid.
type Said = (String, Option<u32>, Option<String>);

/// Decodes a body and applies it; also returns what it said for the inbox.
async fn settle(checks: &Checks, key: &JobKey, bytes: Bytes) -> (Verdict, Option<Said>) {
    let decode_results = checks.decode_results;
    let decoded = if bytes.len() <= DECODE_INLINE_BYTES {
        Some(decode_owned(bytes, decode_results))
    } else {
        tokio::task::spawn_blocking(move || decode_owned(bytes, decode_results))
            .await
            .ok()
    };
    let (body, said) = match understood(checks, decoded) {
        Ok(understood) => understood,
        Err(refused) => return (refused, None),
    };
    (verdict(checks.registry.apply(key, body).await), said)
}

/// [`decode`], the body let go of once read (so that no future holds it across an await).
fn decode_owned(bytes: Bytes, results: bool) -> Result<StatusBody, DecodeError> {
    let decoded = decode(&bytes, results);
    drop(bytes);
    decoded
}

/// A decoded body (`None`: its decode failed to finish), in the callback's span, and what it
/// said for the inbox; or why it is refused.
fn understood(
    checks: &Checks,
    decoded: Option<Result<StatusBody, DecodeError>>,
) -> Result<(StatusBody, Option<Said>), Verdict> {
    let Some(decoded) = decoded else {
        return Err(Verdict::Refused(
            StatusCode::BAD_REQUEST,
            "the body could not be decoded".to_owned(),
            "malformed",
        ));
    };
    let body = match decoded {
        Ok(body) => body,
        Err(e) => {
            // The path and the kind of mismatch, never the body's text: it may be a transcript.
            let reason = format!("malformed callback body at `{}`: {}", e.path(), e.message());
            debug!(reason = %reason, "callback rejected");
            return Err(Verdict::Refused(StatusCode::BAD_REQUEST, reason, "malformed"));
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
    Ok((body, said))
}

/// What the registry's answer to a body makes of the callback.
fn verdict(applied: Result<Option<Applied>, RegistryError>) -> Verdict {
    match applied {
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
    }
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
