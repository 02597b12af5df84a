//! Jobs: `POST /v1/jobs` (by URL as JSON, or a file as multipart), `GET /v1/jobs` (a page,
//! newest first), `GET` and `DELETE /v1/jobs/{id}`, its transcript and its events (Server-Sent
//! Events). Every job is its tenant's: another tenant's is `404`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::{Path as FsPath, PathBuf};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, http::Uri};
use daglo::client::SrtAnswer;
use daglo::jobs::JobFilter;
use daglo::{Input, JobEvent, JobId, JobOptions, JobState, Outcome, TranscribeError};
use futures_util::StreamExt as _;
use serde::Deserialize;
use tokio::io::AsyncWriteExt as _;

use super::{found, query_pairs, single};
use crate::DEFAULT_TENANT;
use crate::auth::Caller;
use crate::problem::{Problem, json};
use crate::server::App;
use crate::tenants::{RESERVED_PREFIX, TENANT_LABEL, Tenant, namespaced, present};
use crate::webhook;

/// `/v1/jobs`, `/v1/jobs/{id}`, `…/transcript`, `…/events`.
pub(super) fn router() -> Router<App> {
    Router::new()
        .route("/v1/jobs", get(list).post(create))
        .route("/v1/jobs/{id}", get(job).delete(delete))
        .route("/v1/jobs/{id}/transcript", get(transcript))
        .route("/v1/jobs/{id}/events", get(events))
        .route("/v1/jobs/{id}/resolve", post(resolve))
}

/// A failed start, as an answer: what went wrong, and whether a job may exist. A local store
/// that failed (the journal, the results, the uploads) is `503` with `Retry-After` — never
/// blamed on Daglo.
fn failed_start(error: &TranscribeError) -> Problem {
    let message = daglo::internal::error_chain(error);
    match error {
        TranscribeError::Invalid(_)
        | TranscribeError::Prepare(_)
        | TranscribeError::Submit(daglo::client::Error::Invalid(_) | daglo::client::Error::File { .. }) => {
            Problem::invalid(message)
        }
        TranscribeError::Journal { .. }
        | TranscribeError::Results(_)
        | TranscribeError::Unsaved { .. }
        | TranscribeError::Unrecorded { .. } => {
            Problem::unavailable(error).with("may_have_created_job", error.may_have_created_job())
        }
        _ => Problem::new(StatusCode::BAD_GATEWAY, message)
            .with("may_have_created_job", error.may_have_created_job()),
    }
}

/// The most labels a job carries, and the longest name and value (bytes).
pub(crate) const MAX_LABELS: usize = 32;
pub(crate) const MAX_LABEL_NAME: usize = 64;
pub(crate) const MAX_LABEL_VALUE: usize = 256;
/// The longest input URL (bytes).
pub(crate) const MAX_URL: usize = 8192;
/// The longest file name kept as given (bytes); a longer one is shortened, its extension kept.
pub(crate) const MAX_FILE_NAME: usize = 200;
/// The largest JSON job request, and the largest text part of a multipart one (bytes).
pub(crate) const MAX_REQUEST_TEXT: usize = 64 * 1024;

/// A job request's fields, as JSON or as multipart parts.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobRequest {
    url: Option<String>,
    key: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    options: Option<JobOptions>,
}

/// Reads JSON text as `T`, a failure naming where (`options.sttConfig.speakerDiarisation: unknown
/// field …`): the library's own types refuse unknown fields.
fn parsed<T: serde::de::DeserializeOwned>(what: &str, text: &[u8]) -> Result<T, Problem> {
    let mut reader = serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(&mut reader)
        .map_err(|e| {
            let path = e.path().to_string();
            let at = match (what, path.as_str()) {
                ("", ".") => String::new(),
                ("", path) => format!("`{path}`: "),
                (what, ".") => format!("`{what}`: "),
                (what, path) => format!("`{what}.{path}`: "),
            };
            Problem::invalid(format!("{at}{}", e.into_inner()))
        })
        .and_then(|value| {
            reader
                .end()
                .map_err(|e| Problem::invalid(format!("{what}: {e}")))
                .map(|()| value)
        })
}

impl JobRequest {
    /// Checks what the service bounds (labels, the URL) and owns (`options.callback`).
    fn check(&self) -> Result<(), Problem> {
        if self.labels.len() > MAX_LABELS {
            return Err(Problem::invalid(format!(
                "`labels`: {} labels, at most {MAX_LABELS}",
                self.labels.len()
            )));
        }
        for (name, value) in &self.labels {
            if name.starts_with(RESERVED_PREFIX) {
                return Err(Problem::invalid(format!(
                    "`labels`: names starting `{RESERVED_PREFIX}` are the service's own (`{}`)",
                    daglo::internal::safe(name)
                )));
            }
            if name.is_empty() || name.contains('=') {
                return Err(Problem::invalid(format!(
                    "`labels`: a name is not empty and has no `=` (`{}`)",
                    daglo::internal::safe(name)
                )));
            }
            if name.len() > MAX_LABEL_NAME || value.len() > MAX_LABEL_VALUE {
                return Err(Problem::invalid(format!(
                    "`labels`: a name is at most {MAX_LABEL_NAME} bytes and a value at most {MAX_LABEL_VALUE} (`{}`)",
                    daglo::internal::safe(name)
                )));
            }
        }
        if let Some(url) = &self.url
            && url.len() > MAX_URL
        {
            return Err(Problem::invalid(format!(
                "`url`: {} bytes, at most {MAX_URL}",
                url.len()
            )));
        }
        if let Some(options) = &self.options {
            if options.callback.is_some() {
                return Err(Problem::invalid(
                    "`options.callback`: the service owns its callbacks (follow a job with GET /v1/jobs/{id}/events or a webhook)",
                ));
            }
            options
                .validate()
                .map_err(|e| Problem::invalid(daglo::internal::error_chain(&e)))?;
        }
        Ok(())
    }

    /// The input for `tenant`: its key namespaced, its tenant a reserved label.
    fn into_input(self, source: Input, tenant: &Tenant) -> (Input, Option<JobOptions>) {
        let mut input = source;
        if let Some(key) = self.key {
            input = input.key(namespaced(&tenant.name, &key));
        }
        for (name, value) in self.labels {
            input = input.label(name, value);
        }
        input = input.label(TENANT_LABEL, &*tenant.name);
        (input, self.options)
    }
}

/// An upload spooled to the uploads directory: removed when dropped, whatever happened.
#[derive(Debug)]
struct Spooled(PathBuf);

impl Drop for Spooled {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

async fn create(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Result<Response, Problem> {
    let tenant = caller.access.creating_for(&app.tenants, request.headers())?;
    let kind = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mime = kind.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    // The body lives while it makes progress (limits.upload_min_bytes per window), however long.
    let body = app.shares.progressing(request.into_body());
    let (input, options, spooled) = match mime.as_str() {
        "application/json" => {
            let bytes = axum::body::to_bytes(body, MAX_REQUEST_TEXT)
                .await
                .map_err(|e| body_failed(&e, "a JSON job request"))?;
            let fields: JobRequest = parsed("", &bytes)?;
            fields.check()?;
            let Some(url) = fields.url.clone() else {
                return Err(Problem::invalid(
                    "`url` is required (or send multipart with a `file`)",
                ));
            };
            let (input, options) = fields.into_input(Input::url(url), &tenant);
            (input, options, None)
        }
        "multipart/form-data" => multipart(&app, &kind, body, &tenant).await?,
        _ => {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send application/json or multipart/form-data",
            ));
        }
    };
    let options = options.unwrap_or_default();
    let described = input.describe();
    let digest = options.digest();
    // A key of the default tenant may name a job made before tenants existed (its key not
    // namespaced, no tenant label): that job is the key's, never submitted again.
    if let Some(own) = input_key(&input)
        .as_deref()
        .and_then(|k| k.strip_prefix(&format!("{DEFAULT_TENANT}/")))
        .filter(|_| &*tenant.name == DEFAULT_TENANT)
        && let Some(entry) = held(&app, own).await?
        && !entry.intent.labels.contains_key(TENANT_LABEL)
    {
        let mut labels = input.labels().clone();
        labels.remove(TENANT_LABEL);
        let job = entry.snapshot();
        if let Some(different) = differs(&entry.intent, &described, &digest, &labels) {
            return Err(key_reused(&job.id, different));
        }
        let now = app.transcriber.job(&job.id).await.ok().flatten().unwrap_or(job);
        crate::metrics::tenant_job(&tenant.name, "existing");
        return Ok(json(StatusCode::OK, &present(&now)));
    }
    // A key names one request: the same again is its job, another request under it is `409`.
    let mut known = false;
    if let Some(key) = input_key(&input)
        && let Some(entry) = held(&app, &key).await?
    {
        if let Some(different) = differs(&entry.intent, &described, &digest, input.labels()) {
            crate::metrics::tenant_job(&tenant.name, "existing");
            return Err(key_reused(&entry.intent.job, different));
        }
        known = true;
    }
    if let Some(max) = tenant.max_running {
        let running = running(&app, &tenant.name, max).await?;
        if running >= max && !known {
            crate::metrics::tenant_job(&tenant.name, "refused");
            return Err(Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "tenant `{}` has {running} jobs running, its max_running is {max}: retry when one ends",
                    tenant.name
                ),
            )
            .code("too_many_running")
            .retry_after(crate::readiness::RETRY_AFTER_SECS));
        }
    }
    // Detached: once the submit may reach Daglo it runs to its end on a task of the service's
    // own, whatever happens to this request (a caller who hangs up, a proxy that times out), so
    // its rid is always recorded and the same key later answers with the job. The upload's
    // copy and the webhook subscription go with it. The task is the tenant's: its submit waits
    // its fair turn at Daglo's budget.
    let transcriber = app.transcriber.clone();
    let webhooks = app.webhooks.clone();
    let name = tenant.name.clone();
    let submit = tokio::spawn(crate::fair::for_tenant(name, async move {
        let started = transcriber.start(input, &options).await;
        // The upload went out with the submit (or was not needed): the copy goes.
        drop(spooled);
        if let (Ok(job), Some(webhooks)) = (&started, &webhooks) {
            // Its events go to the application (once per job, whoever asked first).
            webhooks.follow(job.snapshot()).await;
        }
        started
    }));
    let started = submit.await.map_err(|e| {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the submit task failed: {e}"),
        )
    })?;
    let job = match started {
        Ok(job) => job,
        Err(e) => {
            crate::metrics::tenant_job(&tenant.name, "failed");
            return Err(failed_start(&e));
        }
    };
    let status = if job.is_new() {
        crate::metrics::tenant_job(&tenant.name, "submitted");
        StatusCode::CREATED
    } else {
        crate::metrics::tenant_job(&tenant.name, "existing");
        StatusCode::OK
    };
    Ok(json(status, &present(job.snapshot())))
}

/// How many of `tenant`'s jobs are submitting or running, counted up to `max` (pages of the
/// journal's index of those stages: a check costs what runs, at most `max`, never the table).
async fn running(app: &App, tenant: &str, max: usize) -> Result<usize, Problem> {
    let filter = JobFilter::default()
        .state(JobState::Submitting)
        .state(JobState::Running)
        .label(TENANT_LABEL, tenant)
        .limit((max + 1).min(500));
    let mut counted = 0;
    let mut after = None;
    loop {
        let page = app
            .transcriber
            .page(filter.clone(), after.as_ref())
            .await
            .map_err(|e| Problem::unavailable(&e))?;
        counted += page.jobs.len();
        match page.next {
            Some(next) if counted < max => after = Some(next),
            _ => return Ok(counted),
        }
    }
}

/// The key an input carries (namespaced already).
fn input_key(input: &Input) -> Option<String> {
    input.idempotency_key().map(str::to_owned)
}

/// The journal entry holding `key`, unless it provably submitted nothing (which frees the key).
async fn held(app: &App, key: &str) -> Result<Option<daglo::journal::Entry>, Problem> {
    match app.journal.by_key(key).await {
        Ok(entry) => {
            Ok(entry.filter(|e| !matches!(e.state, daglo::journal::EntryState::NotSubmitted { .. })))
        }
        Err(e) => Err(Problem::unavailable(&e)),
    }
}

/// `409 key_reused` naming the job the key holds.
fn key_reused(job: &JobId, different: &str) -> Problem {
    Problem::conflict(format!(
        "the key names job {job} made by another request ({different} differ): send the same request, or another key"
    ))
    .code("key_reused")
    .with("job_id", job.to_string())
}

/// What differs between the request a key's entry recorded and this one — its input as the
/// journal describes it, its options' digest, its labels (`None`: the same request).
fn differs(
    recorded: &daglo::journal::Intent,
    input: &str,
    options_digest: &str,
    labels: &BTreeMap<String, String>,
) -> Option<&'static str> {
    let input = recorded.input != input;
    let options = recorded.options_digest != options_digest;
    let labels = &recorded.labels != labels;
    match (input, options, labels) {
        (false, false, false) => None,
        (true, false, false) => Some("input"),
        (false, true, false) => Some("options"),
        (false, false, true) => Some("labels"),
        (true, true, false) => Some("input and options"),
        (true, false, true) => Some("input and labels"),
        (false, true, true) => Some("options and labels"),
        (true, true, true) => Some("input, options and labels"),
    }
}

/// A request body that could not be read: `408` when it stalled, `413` when too large, `422`
/// otherwise.
fn body_failed(error: &(dyn std::error::Error + 'static), what: &str) -> Problem {
    if crate::limits::is_too_slow(error) {
        return Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            format!("{what}: {}", daglo::internal::error_chain(error)),
        );
    }
    let chain = daglo::internal::error_chain(error);
    if chain.contains("length limit") {
        return Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{what} is at most {MAX_REQUEST_TEXT} bytes"),
        );
    }
    Problem::invalid(format!("{what}: {chain}"))
}

/// Reads a multipart job request: the one `file` part written to the uploads directory as it
/// arrives (never held whole; over the limit is `413` before anything is submitted), the
/// other fields as parts of at most [`MAX_REQUEST_TEXT`] bytes each.
async fn multipart(
    app: &App,
    content_type: &str,
    body: Body,
    tenant: &Tenant,
) -> Result<(Input, Option<JobOptions>, Option<Spooled>), Problem> {
    let boundary =
        multer::parse_boundary(content_type).map_err(|e| Problem::invalid(format!("multipart: {e}")))?;
    let mut parts = multer::Multipart::new(body.into_data_stream(), boundary);
    let mut fields = JobRequest::default();
    let mut file: Option<(String, Spooled, u64)> = None;
    while let Some(part) = parts
        .next_field()
        .await
        .map_err(|e| body_failed(&e, "multipart"))?
    {
        let name = part.name().unwrap_or("").to_owned();
        match name.as_str() {
            "file" => {
                if file.is_some() {
                    return Err(Problem::invalid("one `file` part per job; this request has more"));
                }
                let given = part
                    .file_name()
                    .and_then(|n| n.rsplit(['/', '\\']).next())
                    .unwrap_or("upload")
                    .to_owned();
                daglo::internal::check_media_file_name(&given)
                    .map_err(|e| Problem::invalid(daglo::internal::error_chain(&e)))?;
                let original = shortened(&given);
                let dir = app.uploads.join(JobId::random().as_str());
                daglo::internal::private_dir(&dir).map_err(|e| Problem::uploads(&e))?;
                let spooled = Spooled(dir.join(&original));
                let length = spool(part, &spooled.0, app.max_upload_bytes).await?;
                file = Some((original, spooled, length));
            }
            "url" | "key" | "labels" | "options" => {
                let text = text_part(part, &name).await?;
                match name.as_str() {
                    "url" => fields.url = Some(text),
                    "key" => fields.key = Some(text),
                    "labels" => fields.labels = parsed("labels", text.as_bytes())?,
                    _ => fields.options = Some(parsed("options", text.as_bytes())?),
                }
            }
            other => {
                return Err(Problem::invalid(format!(
                    "unknown part `{}`",
                    daglo::internal::safe(other)
                )));
            }
        }
    }
    fields.check()?;
    match (file, fields.url.take()) {
        (Some((name, spooled, length)), None) => {
            let opened = tokio::fs::File::open(&spooled.0)
                .await
                .map_err(|e| Problem::uploads(&e))?;
            let (input, options) = fields.into_input(Input::stream(name, length, opened), tenant);
            Ok((input, options, Some(spooled)))
        }
        (None, Some(url)) => {
            let (input, options) = fields.into_input(Input::url(url), tenant);
            Ok((input, options, None))
        }
        (Some(_), Some(_)) => Err(Problem::invalid("send a `file` or a `url`, not both")),
        (None, None) => Err(Problem::invalid("a `file` part or a `url` is required")),
    }
}

/// A text part, read up to [`MAX_REQUEST_TEXT`] bytes: past that `413`, before more is held.
async fn text_part(mut part: multer::Field<'_>, name: &str) -> Result<String, Problem> {
    let mut bytes = Vec::new();
    while let Some(chunk) = part
        .chunk()
        .await
        .map_err(|e| body_failed(&e, &format!("multipart `{name}`")))?
    {
        if bytes.len() + chunk.len() > MAX_REQUEST_TEXT {
            return Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("multipart `{name}` is at most {MAX_REQUEST_TEXT} bytes"),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| Problem::invalid(format!("multipart `{name}` is not UTF-8")))
}

/// `name` as stored and sent: whole up to [`MAX_FILE_NAME`] bytes, else its stem cut (at a
/// character boundary) and its extension kept.
fn shortened(name: &str) -> String {
    if name.len() <= MAX_FILE_NAME {
        return name.to_owned();
    }
    let (stem, extension) = name.rsplit_once('.').unwrap_or((name, ""));
    let room = MAX_FILE_NAME.saturating_sub(extension.len() + 1).max(1);
    let mut cut = room.min(stem.len());
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}.{extension}", &stem[..cut])
}

/// How much of a refused upload is read (and dropped) before the `413`, so the caller gets the
/// answer rather than a connection closed mid-upload.
const DRAIN_AFTER_REFUSAL: u64 = 64 << 20;

/// Writes a part to `path` as it arrives; `413` past `max` bytes.
async fn spool(mut part: multer::Field<'_>, path: &FsPath, max: u64) -> Result<u64, Problem> {
    let mut out =
        tokio::fs::File::from_std(daglo::internal::private_file(path).map_err(|e| Problem::uploads(&e))?);
    let mut length = 0_u64;
    while let Some(chunk) = part
        .chunk()
        .await
        .map_err(|e| body_failed(&e, "multipart `file`"))?
    {
        length += chunk.len() as u64;
        if length > max {
            // Read (and drop) what the caller is still sending, up to a bound, so the answer
            // reaches it instead of a broken pipe.
            let mut drained = 0_u64;
            while drained < DRAIN_AFTER_REFUSAL {
                match part.chunk().await {
                    Ok(Some(more)) => drained += more.len() as u64,
                    _ => break,
                }
            }
            return Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the file is larger than {max} bytes; nothing was submitted"),
            ));
        }
        out.write_all(&chunk).await.map_err(|e| Problem::uploads(&e))?;
    }
    out.sync_all().await.map_err(|e| Problem::uploads(&e))?;
    if length == 0 {
        return Err(Problem::invalid("the `file` part is empty"));
    }
    Ok(length)
}

async fn job(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let job = found(&app, &caller, &id).await?;
    let mut value = present(&job);
    // With webhooks, the job lists its deliveries (as `GET …/webhooks` does).
    if let Some(webhooks) = app.webhooks.as_ref().and_then(|w| w.of(&job))
        && let Ok(attempts) = webhooks.attempts(&job.id).await
    {
        value["webhook_deliveries"] = serde_json::to_value(webhook::deliveries(attempts)).unwrap_or_default();
    }
    Ok(json(StatusCode::OK, &value))
}

/// `DELETE /v1/jobs/{id}`: an ended job's transcript, subtitles, inbox, labels and input record
/// removed (`204`); its key may then make a new job. `409` while it runs.
async fn delete(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let job = found(&app, &caller, &id).await?;
    forget(&app, &job.id).await.map_err(|e| match e {
        TranscribeError::NotEnded { state, .. } => Problem::conflict(format!(
            "the job is {state}: only a job that ended (finished, failed, not submitted) can be deleted"
        ))
        .code("not_ended")
        .with("state", state.as_str()),
        e => Problem::unavailable(&e),
    })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Deletes an ended job everywhere the service keeps something of it: the library's stores
/// (result, subtitles, journal entry) and the job log (inbox, webhook deliveries).
async fn forget(app: &App, id: &JobId) -> Result<(), TranscribeError> {
    let journal_error = |source| TranscribeError::Journal { rid: None, source };
    let job = app.transcriber.job(id).await?;
    if let Some(job) = &job
        && !matches!(
            job.state,
            JobState::Finished | JobState::Failed | JobState::NotSubmitted
        )
    {
        return Err(TranscribeError::NotEnded {
            id: id.clone(),
            state: job.state,
        });
    }
    // The logs first: a failure after them leaves a job listed that can be deleted again.
    // Its callbacks are listed under its callback key, which the journal holds.
    if let Some(entry) = app.journal.by_job(id).await.map_err(journal_error)?
        && let Some(key) = &entry.intent.callback_key
    {
        app.log
            .clear(crate::inbox::LIST, &crate::inbox::list_of(key))
            .await
            .map_err(journal_error)?;
    }
    app.log
        .clear(webhook::DELIVERIES, id)
        .await
        .map_err(journal_error)?;
    app.log
        .mark(webhook::PENDING, id, false)
        .await
        .map_err(|source| TranscribeError::Journal { rid: None, source })?;
    app.transcriber.delete(id).await.map(drop)
}

/// The formats `/transcript` serves.
const FORMATS: &str = "text, json, srt, vtt";

async fn transcript(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, Problem> {
    let pairs = query_pairs(uri.query(), &["format"])?;
    let format = single(&pairs, "format")?.unwrap_or("text").to_owned();
    if !matches!(format.as_str(), "text" | "txt" | "json" | "srt" | "vtt") {
        return Err(Problem::invalid(format!(
            "`format`: `{}` is not one of {FORMATS}",
            daglo::internal::safe(&format)
        )));
    }
    let job = found(&app, &caller, &id).await?;
    match job.state {
        JobState::Finished => {}
        JobState::Failed => {
            let reason = job.reason.clone().unwrap_or_else(|| "failed".to_owned());
            return Err(Problem::conflict(format!("the job failed: {reason}"))
                .code("job_failed")
                .with("state", job.state.as_str())
                .with("reason", reason));
        }
        state => {
            return Err(
                Problem::conflict(format!("the job is {state}; no transcript yet"))
                    .code("not_ended")
                    .with("state", state.as_str()),
            );
        }
    }
    let text = |kind: &'static str, body: String| {
        (StatusCode::OK, [(header::CONTENT_TYPE, kind)], body).into_response()
    };
    let result =
        if matches!(format.as_str(), "text" | "txt" | "json" | "vtt") {
            // The result as kept here — or, for a job another replica finished (its result is in
            // that replica's data directory), as Daglo still has it: one status request, nothing
            // billed.
            let kept = app
                .transcriber
                .result(&job.id)
                .await
                .map_err(|e| Problem::unavailable(&e))?;
            let result = match (kept, &job.rid) {
                (Some(outcome), _) => Some(outcome),
                (None, Some(rid)) => app
                    .transcriber
                    .client()
                    .status(rid)
                    .await
                    .map_err(|e| Problem::upstream(&e))?
                    .outcome(rid),
                (None, None) => None,
            };
            Some(result.ok_or_else(|| {
                Problem::new(StatusCode::NOT_FOUND, "the result is not known here or at Daglo")
            })?)
        } else {
            None
        };
    Ok(match format.as_str() {
        "text" | "txt" => text(
            "text/plain; charset=utf-8",
            result.and_then(|o| o.transcript()).unwrap_or_default(),
        ),
        // WebVTT from the word timings (Daglo serves SRT only): a cue per sentence of one
        // speaker, voiced by speaker.
        "vtt" => text(
            "text/vtt; charset=utf-8",
            match result {
                Some(Outcome::Transcript { body, .. }) => body.to_vtt(),
                _ => "WEBVTT\n\n".to_owned(),
            },
        ),
        "json" => match result {
            Some(Outcome::Transcript { body, .. }) => json(StatusCode::OK, body.as_ref()),
            _ => json(
                StatusCode::OK,
                &serde_json::json!({"status": "transcribed", "sttResults": []}),
            ),
        },
        _ => match app
            .transcriber
            .srt(&job.id)
            .await
            .map_err(|e| Problem::upstream(&e))?
        {
            SrtAnswer::Ready(srt) => text("application/x-subrip; charset=utf-8", srt),
            SrtAnswer::Empty => text("application/x-subrip; charset=utf-8", String::new()),
            _ => {
                return Err(Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the subtitles are not ready yet; ask again",
                )
                .retry_after(crate::readiness::RETRY_AFTER_SECS));
            }
        },
    })
}

/// An event's place in its job's life, sent as its `id:`: it only grows along one job's
/// events (the submit, each stage and percent, the end), so a client that reconnects with
/// `Last-Event-ID` is sent only what came after.
fn position(event: &JobEvent, last: u64) -> u64 {
    match event {
        JobEvent::Submitted { .. } => 1,
        JobEvent::Progress { status, progress, .. } => {
            10 + u64::from(status.stage().unwrap_or(0)) * 1000 + u64::from((*progress).unwrap_or(0).min(100))
        }
        JobEvent::Ended { .. } => ENDED,
        // `stalled` (said about where the job is) and kinds this version does not know: the
        // last event's place.
        _ => last,
    }
}

/// The `id:` of a job's last event.
const ENDED: u64 = 999_999;

/// Server-Sent Events: `id: <position>`, `event: <name>` and `data: <json>` per event, a
/// keep-alive comment every `limits.stream_keepalive_secs`, ending after the outcome — however
/// long the job runs. `Last-Event-ID` resumes after that event (`204` once the job's end was
/// seen, which tells `EventSource` to stop). One API key holds at most
/// `limits.max_streams_per_key` streams.
async fn events(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<Response, Problem> {
    let job = found(&app, &caller, &id).await?;
    let after: u64 = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    if after >= ENDED {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let job_id = job.id.clone();
    let slot = app
        .shares
        .stream(&caller)
        .inspect_err(|_| crate::metrics::shed("stream"))?;
    let mut last = 0_u64;
    let transcriber = app.transcriber.clone();
    let stream = app.transcriber.events(&job.id).filter_map(move |event| {
        let at = position(&event, last);
        last = at;
        let transcriber = transcriber.clone();
        let job_id = job_id.clone();
        async move {
            if at <= after && !matches!(event, JobEvent::Ended { .. }) {
                return None;
            }
            let mut data = serde_json::to_value(&event).unwrap_or_default();
            // The end says why a job failed (or was not submitted, or stopped), as the job does.
            if let JobEvent::Ended { .. } = &event
                && let Ok(Some(job)) = transcriber.job(&job_id).await
            {
                data["reason"] = serde_json::to_value(&job.reason).unwrap_or_default();
            }
            let data = serde_json::to_string(&data).unwrap_or_default();
            Some(Ok::<_, Infallible>(
                Event::default().id(at.to_string()).event(event.name()).data(data),
            ))
        }
    });
    // A draining service ends its streams (their clients resume elsewhere with
    // `Last-Event-ID`) instead of holding the drain until every job ends.
    let mut draining = app.draining.clone();
    let stream = stream.take_until(async move {
        let _ = draining.wait_for(|draining| *draining).await;
    });
    let stream = crate::limits::Guarded {
        inner: Box::pin(stream),
        _guard: slot,
    };
    let mut answer = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(app.shares.keepalive()))
        .into_response();
    answer.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    Ok(answer)
}

/// `POST /v1/jobs/{id}/resolve`'s body: exactly one of `rid` (the job exists at Daglo: follow
/// it) or `"submitted": false` (it does not: release its key).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResolveRequest {
    rid: Option<String>,
    submitted: Option<bool>,
}

/// Settles an uncertain job with what an operator found in the Daglo console.
async fn resolve(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    let job = found(&app, &caller, &id).await?;
    let request: ResolveRequest = parsed("", &body)?;
    let resolution = match (request.rid, request.submitted) {
        (Some(rid), None | Some(true)) => {
            let rid = rid.trim();
            if rid.is_empty() || rid.len() > 256 || rid.chars().any(char::is_control) {
                return Err(Problem::invalid(
                    "`rid`: 1 to 256 characters, no control characters",
                ));
            }
            daglo::jobs::Resolution::Submitted(daglo::Rid::new(rid))
        }
        (None, Some(false)) => daglo::jobs::Resolution::NotSubmitted,
        _ => {
            return Err(Problem::invalid(
                "send {\"rid\": \"…\"} (the job exists at Daglo) or {\"submitted\": false} (it does not)",
            ));
        }
    };
    match app.transcriber.resolve(&job.id, resolution).await {
        Ok(snapshot) => {
            if let (Some(webhooks), JobState::Running) = (&app.webhooks, snapshot.state) {
                webhooks.follow(&snapshot).await;
            }
            Ok(json(StatusCode::OK, &present(&snapshot)))
        }
        Err(e @ TranscribeError::NotUncertain { .. }) => {
            Err(Problem::conflict(daglo::internal::error_chain(&e)).with("state", job.state.as_str()))
        }
        Err(e) => Err(Problem::unavailable(&e)),
    }
}

/// Jobs per page unless `limit` says otherwise, and at most.
const PAGE: usize = 50;
const MAX_PAGE: usize = 500;

/// `GET /v1/jobs?state=&label=&limit=&cursor=&tenant=`: a page of the caller's jobs, newest
/// first. `state` is one state or several comma-separated; `label` is `name=value`, repeated
/// for every one of several; `limit` 1–500 (default 50); `cursor` the `next_cursor` of the page
/// before; `tenant` (admin keys only) one tenant's jobs.
async fn list(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
) -> Result<Response, Problem> {
    let pairs = query_pairs(uri.query(), &["state", "label", "limit", "cursor", "tenant"])?;
    let mut filter = JobFilter::default();
    if let Some(states) = single(&pairs, "state")? {
        for state in states.split(',') {
            let state: JobState = state
                .trim()
                .parse()
                .map_err(|e| Problem::invalid(format!("`state`: {}", daglo::internal::error_chain(&e))))?;
            filter = filter.state(state);
        }
    }
    for (_, label) in pairs.iter().filter(|(name, _)| name == "label") {
        let Some((name, value)) = label.split_once('=') else {
            return Err(Problem::invalid(format!(
                "`label`: `{}` is not name=value",
                daglo::internal::safe(label)
            )));
        };
        if name.starts_with(RESERVED_PREFIX) {
            return Err(Problem::invalid(format!(
                "`label`: names starting `{RESERVED_PREFIX}` are the service's own"
            )));
        }
        filter = filter.label(name, value);
    }
    let tenant = match (&caller.access, single(&pairs, "tenant")?) {
        (crate::tenants::Access::Tenant(own), None) => Some(own.name.to_string()),
        (crate::tenants::Access::Tenant(_), Some(_)) => {
            return Err(Problem::invalid("`tenant`: only an admin key chooses a tenant"));
        }
        (crate::tenants::Access::Admin, named) => named.map(str::to_owned),
    };
    let limit = match single(&pairs, "limit")? {
        None => PAGE,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                Problem::invalid(format!(
                    "`limit`: `{}` is not a number from 1 to {MAX_PAGE}",
                    daglo::internal::safe(text)
                ))
            })?,
    };
    let after = match single(&pairs, "cursor")? {
        Some(text) => Some(
            text.parse::<daglo::jobs::JobCursor>()
                .map_err(|e| Problem::invalid(format!("`cursor`: {e}")))?,
        ),
        None => None,
    };
    // One tenant's jobs are those carrying its label, read on the journal's index of it. With
    // no tenant but the default configured, every job is the default tenant's — those made
    // before tenants existed too, which carry no label — so none is asked for.
    if let Some(tenant) = &tenant
        && (tenant != DEFAULT_TENANT || app.tenants.names().any(|name| name != DEFAULT_TENANT))
    {
        filter = filter.label(TENANT_LABEL, tenant);
    }
    let page = app
        .transcriber
        .page(filter.limit(limit), after.as_ref())
        .await
        .map_err(|e| match e {
            daglo::TranscribeError::Cursor { .. } => Problem::invalid(format!("`cursor`: {e}")),
            e => Problem::unavailable(&e),
        })?;
    let jobs: Vec<serde_json::Value> = page
        .jobs
        .iter()
        .filter(|job| {
            tenant
                .as_deref()
                .is_none_or(|t| crate::tenants::tenant_of(job) == t)
        })
        .map(present)
        .collect();
    let next_cursor = page.next.map(|cursor| cursor.to_string());
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "jobs": jobs, "next_cursor": next_cursor }),
    ))
}
