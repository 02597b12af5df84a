//! The client: configuration, the three endpoints, and the request plumbing they share.

use daglo_core::internal::lock;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use daglo_core::{
    JobOptions, MAX_UPLOAD_BYTES, Rid, SubmitRequest, SubmitResponse, ValidationError, check_media_file_name,
    decode_error_body, decode_status_body, decode_submit_response, excerpt,
};
use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use tracing::{debug, warn};
use url::Url;

use crate::answers::{SrtAnswer, StatusAnswer};
use crate::budget::{RateBudget, TokenBucket, pace};
use crate::error::Error;
use crate::retry::RetryPolicy;
use crate::upload::{self, UploadProgress};
use tracing::Instrument as _;

/// The production endpoint.
pub const DEFAULT_BASE_URL: &str = "https://apis.daglo.ai";

const DEFAULT_USER_AGENT: &str = concat!("daglo-rs/", env!("CARGO_PKG_VERSION"));

/// How much of an error body is kept in an error's message.
const ERROR_TEXT_CHARS: usize = 300;

/// The largest submit or error answer read: both are a few dozen bytes of JSON.
const SMALL_ANSWER_BYTES: usize = 64 << 10;

/// The default cap on a status or SRT answer: a 4-hour transcript with word timings is a few
/// MB; this leaves ample room and still stops an endless answer.
pub const DEFAULT_MAX_ANSWER_BYTES: usize = 64 << 20;

/// The waits between `/srt` requests answered `202` ([`Client::srt_ready`]): 500 ms doubling to
/// 5 s, full jitter (at least 250 ms).
pub const SRT_BACKOFF: daglo_core::Backoff =
    daglo_core::Backoff::new(Duration::from_millis(500), 2.0, Duration::from_secs(5));

/// A client for the Daglo async STT API. Cheap to clone: clones share one connection pool.
///
/// ```no_run
/// use daglo_client::{Client, StatusAnswer};
/// use daglo_core::JobOptions;
///
/// # async fn run() -> Result<(), daglo_client::Error> {
/// let client = Client::new(std::env::var("DAGLO_API_TOKEN").unwrap_or_default())?;
/// let job = client.submit_file("meeting.m4a", &JobOptions::default()).await?;
/// if let StatusAnswer::Body(body) = client.status(&job.rid).await? {
///     println!("{}: {:?}%", body.status, body.progress);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// `…/stt/v1/async/transcripts`, ready to have segments pushed.
    transcripts: Url,
    /// `Bearer <token>`, marked sensitive so the HTTP stack never prints it.
    authorization: HeaderValue,
    request_timeout: Duration,
    upload_timeout: Option<Duration>,
    max_answer_bytes: usize,
    retry: RetryPolicy,
    budgets: Budgets,
    submit_deadline: Duration,
    /// Status requests made per rid, for what a job cost ([`Client::status_requests`]).
    status_counts: std::sync::Mutex<std::collections::HashMap<Rid, u64>>,
}

/// The most rids whose status requests are counted at once; past it the counts start afresh
/// (they are for display: a job's cost).
const COUNTED_RIDS: usize = 100_000;

/// One budget per endpoint: the service's limit is per endpoint.
#[derive(Debug, Clone)]
struct Budgets {
    submit: Arc<dyn RateBudget>,
    status: Arc<dyn RateBudget>,
    srt: Arc<dyn RateBudget>,
}

impl Default for Budgets {
    fn default() -> Self {
        Self {
            submit: Arc::new(TokenBucket::default()),
            status: Arc::new(TokenBucket::default()),
            srt: Arc::new(TokenBucket::default()),
        }
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.transcripts.as_str())
            .field("token", &"<redacted>")
            .field("request_timeout", &self.inner.request_timeout)
            .field("retry", &self.inner.retry)
            .finish()
    }
}

/// Configures a [`Client`]. Obtain one with [`Client::builder`].
pub struct ClientBuilder {
    token: Option<String>,
    base_url: String,
    connect_timeout: Duration,
    request_timeout: Duration,
    upload_timeout: Option<Duration>,
    max_answer_bytes: usize,
    user_agent: String,
    retry: RetryPolicy,
    budgets: Budgets,
    submit_deadline: Duration,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("base_url", &self.base_url)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("upload_timeout", &self.upload_timeout)
            .field("user_agent", &self.user_agent)
            .field("retry", &self.retry)
            .finish()
    }
}

impl ClientBuilder {
    /// The API token from the Daglo developer console (required).
    #[must_use]
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Where the service is (default [`DEFAULT_BASE_URL`]; an emulator's URL in tests).
    #[must_use]
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// How long to wait for a connection (default 10 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one status, SRT or URL-submit request may take (default 30 s). For a file
    /// upload it bounds a stall (no byte taken for this long) and the wait for the answer once
    /// the last byte is sent, so no request can hang for ever.
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How long a file upload may take in all (default: unlimited, since 2 GB take a while; a
    /// stalled upload still ends after [`request_timeout`](ClientBuilder::request_timeout)).
    #[must_use]
    pub fn upload_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.upload_timeout = timeout;
        self
    }

    /// The budget submits draw from (default: a [`TokenBucket`] at 16/s, 80 % of the service's
    /// 20/s per endpoint). Pass one `Arc` to several clients to share it.
    #[must_use]
    pub fn submit_budget(mut self, budget: Arc<dyn RateBudget>) -> Self {
        self.budgets.submit = budget;
        self
    }

    /// The budget [`Client::status`] draws from (default 16/s). A poller paces its own requests
    /// with `PollingConfig::budget`; give both the same `Arc` to share the endpoint's limit.
    #[must_use]
    pub fn status_budget(mut self, budget: Arc<dyn RateBudget>) -> Self {
        self.budgets.status = budget;
        self
    }

    /// The budget SRT requests draw from (default 16/s).
    #[must_use]
    pub fn srt_budget(mut self, budget: Arc<dyn RateBudget>) -> Self {
        self.budgets.srt = budget;
        self
    }

    /// How long a submit keeps retrying `429` answers (default 5 minutes). A `429` creates no
    /// job, so retrying it is safe; past the deadline the submit fails with
    /// [`Error::RateLimited`].
    #[must_use]
    pub fn submit_deadline(mut self, deadline: Duration) -> Self {
        self.submit_deadline = deadline;
        self
    }

    /// The largest status or SRT answer read (default [`DEFAULT_MAX_ANSWER_BYTES`]); a larger
    /// one fails with [`Error::AnswerTooLarge`] without being held in memory. Submit and error
    /// answers are capped at 64 KiB.
    ///
    /// What it costs in memory: an answer is held while it is decoded, and decoding takes at
    /// most [`DECODE_RATIO`](daglo_core::DECODE_RATIO) (4) times its size — a body that would
    /// take more is refused with a decode error, never built. So each status request in flight
    /// can take up to 5 × this (320 MiB at the default 64 MiB; a real 4-hour transcript of a
    /// few MB takes under 2× its size).
    #[must_use]
    pub fn max_answer_bytes(mut self, bytes: usize) -> Self {
        self.max_answer_bytes = bytes.max(1);
        self
    }

    /// The `User-Agent` header (default `daglo-rs/<version>`).
    #[must_use]
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// How status and SRT requests are retried (default [`RetryPolicy::default`]).
    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Builds the client, checking the token and the base URL.
    pub fn build(self) -> Result<Client, Error> {
        let token = self
            .token
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| ValidationError::new("token", "an API token is required"))?;
        // Never echo the token: the message names the problem only.
        let mut authorization = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            ValidationError::new("token", "contains characters not allowed in an HTTP header")
        })?;
        authorization.set_sensitive(true);

        let mut transcripts = Url::parse(&self.base_url).map_err(|e| {
            ValidationError::new("base_url", format!("`{}` is not a URL ({e})", self.base_url))
        })?;
        if !matches!(transcripts.scheme(), "http" | "https") || transcripts.cannot_be_a_base() {
            return Err(ValidationError::new(
                "base_url",
                format!("`{}` is not an http(s) URL", self.base_url),
            )
            .into());
        }
        transcripts
            .path_segments_mut()
            .map_err(|_| ValidationError::new("base_url", "cannot carry a path"))?
            .pop_if_empty()
            .extend(["stt", "v1", "async", "transcripts"]);

        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            // The API never redirects; following one would send the token, the audio and the
            // callback credential wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(self.user_agent)
            .build()
            .map_err(|e| Error::Transport {
                request_sent: false,
                source: Box::new(e),
            })?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                transcripts,
                authorization,
                request_timeout: self.request_timeout,
                upload_timeout: self.upload_timeout,
                max_answer_bytes: self.max_answer_bytes,
                retry: self.retry,
                budgets: self.budgets,
                submit_deadline: self.submit_deadline,
                status_counts: std::sync::Mutex::default(),
            }),
        })
    }
}

impl Client {
    /// A client for the production service with default settings.
    pub fn new(token: impl Into<String>) -> Result<Self, Error> {
        Self::builder().token(token).build()
    }

    /// The status requests this client (and its clones) sent about `rid` so far — polls,
    /// confirmations and retries alike: what the job cost in requests.
    pub fn status_requests(&self, rid: &Rid) -> u64 {
        lock(&self.inner.status_counts).get(rid).copied().unwrap_or(0)
    }

    /// [`status_requests`](Client::status_requests), and forgets the count (the job ended).
    pub fn take_status_requests(&self, rid: &Rid) -> u64 {
        lock(&self.inner.status_counts).remove(rid).unwrap_or(0)
    }

    fn count_status_request(&self, rid: &Rid) {
        let mut counts = lock(&self.inner.status_counts);
        if counts.len() >= COUNTED_RIDS && !counts.contains_key(rid) {
            counts.clear();
        }
        *counts.entry(rid.clone()).or_default() += 1;
    }

    /// The budget status requests draw from; give it to a poller
    /// (`PollingConfig::budget`) so the client and the poller share the endpoint's limit.
    pub fn status_budget(&self) -> Arc<dyn RateBudget> {
        self.inner.budgets.status.clone()
    }

    /// A builder with default settings and no token yet.
    pub fn builder() -> ClientBuilder {
        ClientBuilder {
            token: None,
            base_url: DEFAULT_BASE_URL.to_owned(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            upload_timeout: None,
            max_answer_bytes: DEFAULT_MAX_ANSWER_BYTES,
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            retry: RetryPolicy::default(),
            budgets: Budgets::default(),
            submit_deadline: Duration::from_secs(300),
        }
    }

    /// Submits audio that sits at a public URL (JSON body).
    ///
    /// **Never retried once the request may have reached the service**: the service has no
    /// idempotency, so a second POST creates and bills a second job. Only a refused connection
    /// (nothing sent) or a `429` (refused before processing) is retried. On any other failure,
    /// [`Error::may_have_created_job`] says whether a job may exist anyway.
    pub async fn submit(&self, request: &SubmitRequest) -> Result<SubmitResponse, Error> {
        request.validate()?;
        let body = Bytes::from(
            serde_json::to_vec(request).map_err(|e| ValidationError::new("request", e.to_string()))?,
        );
        let response = self
            .send_submit(|| async {
                let request = self
                    .request(Method::POST, self.inner.transcripts.clone())
                    .timeout(self.inner.request_timeout)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
                Ok((request, None))
            })
            .await?;
        Ok(decode_submit_response(&response)?)
    }

    /// Submits audio at `url` with `options`; shorthand for [`submit`](Client::submit).
    pub async fn submit_url(&self, url: &str, options: &JobOptions) -> Result<SubmitResponse, Error> {
        self.submit(&SubmitRequest::new(url, options.clone())?).await
    }

    /// Uploads a local file (multipart), **streamed from disk**: memory use does not grow with
    /// the file's size. The extension is checked against the accepted containers and the size
    /// against 2 GB before anything is sent. Retried only as [`submit`](Client::submit) is.
    pub async fn submit_file(
        &self,
        path: impl AsRef<Path>,
        options: &JobOptions,
    ) -> Result<SubmitResponse, Error> {
        let path = path.as_ref();
        options.validate()?;
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| {
                ValidationError::new("file", format!("`{}` has no usable file name", path.display()))
            })?
            .to_owned();
        check_media_file_name(&file_name)?;
        let metadata = tokio::fs::metadata(path).await.map_err(|source| Error::File {
            path: path.to_owned(),
            source,
        })?;
        if !metadata.is_file() {
            return Err(
                ValidationError::new("file", format!("`{}` is not a regular file", path.display())).into(),
            );
        }
        self.submit_upload(
            &file_name,
            metadata.len(),
            upload::UploadSource::File(path.to_owned()),
            options,
        )
        .await
    }

    /// Uploads `bytes` as a file called `file_name` (multipart, sent in chunks; the extension
    /// is checked as [`submit_file`](Client::submit_file) checks it). Retried only as
    /// [`submit`](Client::submit) is.
    pub async fn submit_bytes(
        &self,
        file_name: &str,
        bytes: Bytes,
        options: &JobOptions,
    ) -> Result<SubmitResponse, Error> {
        options.validate()?;
        check_media_file_name(file_name)?;
        let length = bytes.len() as u64;
        self.submit_upload(file_name, length, upload::UploadSource::Bytes(bytes), options)
            .await
    }

    /// Uploads `length` bytes read from `reader` as a file called `file_name`, **streamed**:
    /// never held whole. A stream can be read once, so a submit refused before its upload
    /// finished (a `429`, a connection that failed) is reported — no job was created — rather
    /// than retried. `length` must be exact: the multipart body declares it.
    pub async fn submit_reader(
        &self,
        file_name: &str,
        length: u64,
        reader: impl tokio::io::AsyncRead + Send + Unpin + 'static,
        options: &JobOptions,
    ) -> Result<SubmitResponse, Error> {
        options.validate()?;
        check_media_file_name(file_name)?;
        let reader: Box<dyn tokio::io::AsyncRead + Send + Unpin> = Box::new(reader);
        self.submit_upload(
            file_name,
            length,
            upload::UploadSource::Reader(std::sync::Mutex::new(Some(reader))),
            options,
        )
        .await
    }

    /// The multipart submit every upload shares: the size checked against 2 GB first.
    async fn submit_upload(
        &self,
        file_name: &str,
        length: u64,
        source: upload::UploadSource,
        options: &JobOptions,
    ) -> Result<SubmitResponse, Error> {
        if length > MAX_UPLOAD_BYTES {
            return Err(ValidationError::new(
                "file",
                format!("{length} bytes is over the service's 2 GB limit"),
            )
            .into());
        }
        let fields = upload::option_fields(options)?;
        let response = self
            .send_submit(|| async {
                let progress = Arc::new(UploadProgress::default());
                let form = upload::form(&source, file_name, length, &fields, progress.clone()).await?;
                let mut request = self
                    .request(Method::POST, self.inner.transcripts.clone())
                    .multipart(form);
                if let Some(timeout) = self.inner.upload_timeout {
                    request = request.timeout(timeout);
                }
                Ok((request, Some(progress)))
            })
            .await?;
        Ok(decode_submit_response(&response)?)
    }

    /// The job's state (`200`) or its empty result (`204`). Retried on `429`, `5xx` and
    /// connection failures per the [`RetryPolicy`]; never on `401`, `403` or `404`.
    pub async fn status(&self, rid: &Rid) -> Result<StatusAnswer, Error> {
        let budget = self.inner.budgets.status.clone();
        self.status_with(rid, self.inner.retry, Some(budget.as_ref()))
            .await
    }

    /// Like [`status`](Client::status) with exactly one attempt and no pacing, for callers that
    /// pace and retry on their own (a poller with its rate budget).
    pub async fn status_once(&self, rid: &Rid) -> Result<StatusAnswer, Error> {
        self.status_with(rid, RetryPolicy::none(), None).await
    }

    /// One status request, paced by the client's status budget (which a `429` it meets slows
    /// down) and not retried: for callers that retry on their own but must share the budget,
    /// like the confirmation of a final callback.
    pub async fn status_paced(&self, rid: &Rid) -> Result<StatusAnswer, Error> {
        let budget = self.inner.budgets.status.clone();
        self.status_with(rid, RetryPolicy::none(), Some(budget.as_ref()))
            .await
    }

    async fn status_with(
        &self,
        rid: &Rid,
        retry: RetryPolicy,
        budget: Option<&dyn RateBudget>,
    ) -> Result<StatusAnswer, Error> {
        let url = self.job_url(rid, None)?;
        let (status, body) = self.get(url, "status", Some(rid), retry, budget).await?;
        match status {
            StatusCode::OK => Ok(StatusAnswer::Body(Box::new(decode_status_body(&body)?))),
            StatusCode::NO_CONTENT => Ok(StatusAnswer::Empty),
            other => Err(unexpected(other, &body)),
        }
    }

    /// The job's subtitles (`200`), not yet (`202`), or an empty result (`204`). Retried as
    /// [`status`](Client::status) is.
    pub async fn srt(&self, rid: &Rid) -> Result<SrtAnswer, Error> {
        let url = self.job_url(rid, Some("srt"))?;
        let budget = self.inner.budgets.srt.clone();
        let (status, body) = self
            .get(url, "srt", None, self.inner.retry, Some(budget.as_ref()))
            .await?;
        match status {
            StatusCode::OK => Ok(SrtAnswer::Ready(String::from_utf8_lossy(&body).into_owned())),
            StatusCode::ACCEPTED => Ok(SrtAnswer::NotReady),
            StatusCode::NO_CONTENT => Ok(SrtAnswer::Empty),
            other => Err(unexpected(other, &body)),
        }
    }

    /// The job's subtitles, asking again while the service answers `202` (not finished yet —
    /// subtitles may lag the status) with [`SRT_BACKOFF`]'s waits, every request under the srt
    /// budget, for at most `within`. Returns [`SrtAnswer::Ready`] or [`SrtAnswer::Empty`], or
    /// [`SrtAnswer::NotReady`] when `within` ran out first.
    ///
    /// ```no_run
    /// # async fn run(client: daglo_client::Client, rid: daglo_core::Rid) -> Result<(), daglo_client::Error> {
    /// use std::time::Duration;
    /// use daglo_client::SrtAnswer;
    ///
    /// match client.srt_ready(&rid, Duration::from_secs(60)).await? {
    ///     SrtAnswer::Ready(srt) => std::fs::write("meeting.srt", srt).expect("written"),
    ///     SrtAnswer::Empty => println!("no speech, no subtitles"),
    ///     _ => println!("subtitles not ready yet; ask again later"),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn srt_ready(&self, rid: &Rid, within: Duration) -> Result<SrtAnswer, Error> {
        let deadline = tokio::time::Instant::now() + within;
        let mut attempt = 0;
        loop {
            let answer = self.srt(rid).await?;
            if !matches!(answer, SrtAnswer::NotReady) {
                return Ok(answer);
            }
            attempt += 1;
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Ok(SrtAnswer::NotReady);
            }
            let wait = SRT_BACKOFF
                .delay(attempt, rand::random::<f64>())
                .max(SRT_BACKOFF.initial / 2);
            debug!(rid = %rid, attempt, wait_ms = wait.as_millis() as u64, "subtitles not ready (202); asking again");
            tokio::time::sleep(wait.min(left)).await;
        }
    }

    fn job_url(&self, rid: &Rid, suffix: Option<&str>) -> Result<Url, Error> {
        if rid.as_str().trim().is_empty() {
            return Err(ValidationError::new("rid", "must not be empty").into());
        }
        let mut url = self.inner.transcripts.clone();
        {
            // Pushing a segment percent-encodes it, so a rid can never step outside its path.
            let mut segments = url
                .path_segments_mut()
                .map_err(|_| ValidationError::new("base_url", "cannot carry a path"))?;
            segments.push(rid.as_str());
            if let Some(suffix) = suffix {
                segments.push(suffix);
            }
        }
        Ok(url)
    }

    fn request(&self, method: Method, url: Url) -> RequestBuilder {
        self.inner
            .http
            .request(method, url)
            .header(AUTHORIZATION, self.inner.authorization.clone())
    }

    /// A GET with retries, each attempt paced by `budget` when there is one; returns a `2xx`
    /// status and its body, or the typed error.
    async fn get(
        &self,
        url: Url,
        endpoint: &'static str,
        about: Option<&Rid>,
        retry: RetryPolicy,
        budget: Option<&dyn RateBudget>,
    ) -> Result<(StatusCode, Bytes), Error> {
        let mut attempt = 1;
        loop {
            if let Some(budget) = budget {
                pace(budget, endpoint).await;
            }
            let span = request_span(endpoint, "GET", url.path());
            if let Some(rid) = about {
                self.count_status_request(rid);
            }
            let outcome = async {
                match self
                    .request(Method::GET, url.clone())
                    .timeout(self.inner.request_timeout)
                    .send()
                    .await
                {
                    Ok(response) => read(response, attempt, self.inner.max_answer_bytes).await,
                    Err(e) => Err(Error::transport(e)),
                }
            }
            .instrument(span.clone())
            .await;
            counted(&span, endpoint, &outcome);
            if let Some(budget) = budget {
                feedback(budget, endpoint, &outcome);
            }
            match outcome {
                Err(e) if e.is_retryable() && attempt < retry.max_attempts => {
                    let wait = retry.delay(attempt);
                    debug!(path = url.path(), attempt, error = %e, wait_ms = wait.as_millis() as u64, "retrying GET");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Sends a submit, retrying only where no job can have been created. `make` builds each
    /// attempt, with the progress of its upload when it streams a file.
    async fn send_submit<F, Fut>(&self, make: F) -> Result<Bytes, Error>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<(RequestBuilder, Option<Arc<UploadProgress>>), Error>>,
    {
        let retry = self.inner.retry;
        let budget = self.inner.budgets.submit.clone();
        let deadline = tokio::time::Instant::now() + self.inner.submit_deadline;
        let mut attempt = 1;
        loop {
            pace(budget.as_ref(), "submit").await;
            let (request, upload) = make().await?;
            let span = request_span("submit", "POST", self.inner.transcripts.path());
            let outcome = async {
                match upload {
                    None => match request.send().await {
                        Ok(response) => read(response, attempt, SMALL_ANSWER_BYTES).await,
                        Err(e) => Err(Error::transport(e)),
                    },
                    Some(progress) => self.send_upload(request, &progress, attempt).await,
                }
            }
            .instrument(span.clone())
            .await;
            counted(&span, "submit", &outcome);
            feedback(budget.as_ref(), "submit", &outcome);
            // Only what provably created no job is repeated: a 429 (refused before processing)
            // until the submit deadline, a request that never left (or an upload that stopped
            // before its last byte) up to the retry policy's attempts.
            let repeat = match &outcome {
                Err(Error::RateLimited { .. }) => tokio::time::Instant::now() < deadline,
                Err(Error::Transport {
                    request_sent: false, ..
                }) => attempt < retry.max_attempts,
                _ => false,
            };
            match outcome {
                Err(e) if repeat => {
                    // Never past the submit deadline: a refusal there is reported as such.
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    let wait = retry.delay(attempt.min(8)).min(left);
                    debug!(attempt, error = %e, wait_ms = wait.as_millis() as u64, "retrying a submit that created no job");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(Error::RateLimited { .. }) => {
                    daglo_core::telemetry::submitted("refused");
                    return Err(Error::RateLimited { attempts: attempt });
                }
                Err(e) => {
                    if e.may_have_created_job() {
                        daglo_core::telemetry::submitted("may_have_created");
                        warn!(error = %e, "submit failed after it may have reached the service; not retried (no idempotency)");
                    } else {
                        daglo_core::telemetry::submitted("refused");
                    }
                    return Err(e);
                }
                Ok((_, body)) => {
                    daglo_core::telemetry::submitted("created");
                    return Ok(body);
                }
            }
        }
    }

    /// Sends a file upload under a watchdog: it fails when no byte is taken for a request
    /// timeout, or when no answer comes within one after the last byte. A failure before the
    /// last byte left counts as not sent: the service cannot have created a job from half a
    /// file.
    async fn send_upload(
        &self,
        request: RequestBuilder,
        progress: &UploadProgress,
        attempt: u32,
    ) -> Result<(StatusCode, Bytes), Error> {
        let limit = self.inner.request_timeout;
        let watchdog = async {
            let step = (limit / 8).max(Duration::from_millis(5));
            let (mut last_sent, mut quiet_since) = (progress.sent(), tokio::time::Instant::now());
            let mut finished_at = None;
            loop {
                tokio::time::sleep(step).await;
                let now = tokio::time::Instant::now();
                if progress.finished() {
                    let since = *finished_at.get_or_insert(now);
                    if now - since >= limit {
                        return "no answer came after the upload";
                    }
                } else if progress.sent() != last_sent {
                    (last_sent, quiet_since) = (progress.sent(), now);
                } else if now - quiet_since >= limit {
                    return "the upload stalled: the other side stopped taking bytes";
                }
            }
        };
        tokio::select! {
            sent = request.send() => match sent {
                Ok(response) => read(response, attempt, SMALL_ANSWER_BYTES).await,
                Err(e) => Err(Error::Transport {
                    request_sent: !e.is_connect() && progress.finished(),
                    source: Box::new(e),
                }),
            },
            reason = watchdog => Err(Error::Transport {
                request_sent: progress.finished(),
                source: format!("{reason} within {} ms", limit.as_millis()).into(),
            }),
        }
    }
}

/// One request's span, with OpenTelemetry's HTTP field names: the method, the path (a rid at
/// most; the token travels in a header and is never a field), and the answer's status once
/// known. A child of the caller's span (a job's `daglo.job`).
fn request_span(endpoint: &'static str, method: &'static str, path: &str) -> tracing::Span {
    match endpoint {
        "submit" => tracing::info_span!(
            "daglo.submit",
            http.request.method = method,
            url.path = path,
            http.response.status_code = tracing::field::Empty,
            "error.type" = tracing::field::Empty,
        ),
        "srt" => tracing::info_span!(
            "daglo.srt",
            http.request.method = method,
            url.path = path,
            http.response.status_code = tracing::field::Empty,
            "error.type" = tracing::field::Empty,
        ),
        _ => tracing::info_span!(
            "daglo.status",
            http.request.method = method,
            url.path = path,
            http.response.status_code = tracing::field::Empty,
            "error.type" = tracing::field::Empty,
        ),
    }
}

/// Counts a request to `endpoint` by the class of its answer, and puts the answer on its span.
fn counted(span: &tracing::Span, endpoint: &'static str, outcome: &Result<(StatusCode, Bytes), Error>) {
    let status = match outcome {
        Ok((status, _)) => Some(status.as_u16()),
        Err(Error::RateLimited { .. }) => Some(429),
        Err(e) => e.status(),
    };
    match status {
        Some(status) => {
            span.record("http.response.status_code", status);
            tracing::debug!(parent: span, endpoint, status, "answered");
        }
        None => {
            span.record("error.type", "network");
            tracing::debug!(parent: span, endpoint, "no answer");
        }
    }
    daglo_core::telemetry::request(endpoint, status);
}

/// Tells a budget how a request went: a `429` slows it, a success lets it recover. The rate
/// it allows then is the budget gauge.
fn feedback<T>(budget: &dyn RateBudget, endpoint: &'static str, outcome: &Result<T, Error>) {
    let now = std::time::Instant::now();
    match outcome {
        Err(Error::RateLimited { .. }) => budget.on_rate_limited(now),
        Ok(_) => budget.on_success(now),
        Err(_) => {}
    }
    daglo_core::telemetry::budget_rate(endpoint, budget.scope(), budget.current_rate());
}

/// Reads an answer of at most `limit` bytes: a `2xx` with its body, or the typed error for its
/// status. A redirect is reported, not followed; its body is not read.
async fn read(mut response: Response, attempts: u32, limit: usize) -> Result<(StatusCode, Bytes), Error> {
    let status = response.status();
    if status.is_redirection() {
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .map(|v| excerpt(&String::from_utf8_lossy(v.as_bytes()), ERROR_TEXT_CHARS));
        return Err(Error::Redirect {
            status: status.as_u16(),
            location,
        });
    }
    let limit = if status.is_success() {
        limit
    } else {
        SMALL_ANSWER_BYTES
    };
    if response
        .content_length()
        .is_some_and(|declared| declared > limit as u64)
    {
        return Err(Error::AnswerTooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Error::transport)? {
        if body.len() + chunk.len() > limit {
            return Err(Error::AnswerTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    let body = Bytes::from(body);
    if status.is_success() {
        return Ok((status, body));
    }
    let message = decode_error_body(&body)
        .map(|b| excerpt(&b.error, ERROR_TEXT_CHARS))
        .unwrap_or_else(|_| excerpt(&String::from_utf8_lossy(&body), ERROR_TEXT_CHARS));
    Err(match status.as_u16() {
        400 => Error::BadRequest { message },
        401 => Error::Unauthorized { message },
        403 => Error::Forbidden { message },
        404 => Error::NotFound { message },
        413 => Error::PayloadTooLarge { message },
        415 => Error::UnsupportedMediaType { message },
        429 => Error::RateLimited { attempts },
        code @ 500..=599 => Error::Server {
            status: code,
            message,
            attempts,
        },
        code => Error::UnexpectedStatus {
            status: code,
            message,
        },
    })
}

fn unexpected(status: StatusCode, body: &[u8]) -> Error {
    Error::UnexpectedStatus {
        status: status.as_u16(),
        message: excerpt(&String::from_utf8_lossy(body), ERROR_TEXT_CHARS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_a_base_path_and_escape_rids() {
        let client = Client::builder()
            .token("t")
            .base_url("https://proxy.example/daglo/")
            .build()
            .unwrap();
        let url = client.job_url(&Rid::new("../x y"), Some("srt")).unwrap();
        assert_eq!(
            url.as_str(),
            "https://proxy.example/daglo/stt/v1/async/transcripts/..%2Fx%20y/srt"
        );
        assert!(client.job_url(&Rid::new(" "), None).is_err());
    }

    #[test]
    fn the_token_never_shows() {
        let client = Client::new("super-secret-token").unwrap();
        assert!(!format!("{client:?}").contains("super-secret"));
        let builder = Client::builder().token("super-secret-token");
        assert!(!format!("{builder:?}").contains("super-secret"));
        let err = Client::new("bad\ntoken-secret").unwrap_err();
        assert!(!err.to_string().contains("token-secret"), "{err}");
        assert!(!format!("{err:?}").contains("token-secret"));
        assert!(matches!(Client::new("  "), Err(Error::Invalid(e)) if e.field() == "token"));
        assert!(matches!(
            Client::builder().token("t").base_url("ftp://x").build(),
            Err(Error::Invalid(e)) if e.field() == "base_url"
        ));
    }
}
