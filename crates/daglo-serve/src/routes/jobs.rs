//! Jobs: `POST /v1/jobs` (by URL as JSON, or a file as multipart), `GET /v1/jobs` (a page,
//! newest first), `GET /v1/jobs/{id}`, its transcript and its events (Server-Sent Events).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::{Path as FsPath, PathBuf};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use daglo::client::SrtAnswer;
use daglo::jobs::JobFilter;
use daglo::{Input, JobEvent, JobId, JobOptions, JobSnapshot, JobState, Outcome, TranscribeError};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt as _;

use super::found;
use crate::auth::Caller;
use crate::problem::{Problem, json};
use crate::server::App;
use crate::webhook;

/// `/v1/jobs`, `/v1/jobs/{id}`, `…/transcript`, `…/events`.
pub(super) fn router() -> Router<App> {
    Router::new()
        .route("/v1/jobs", get(list).post(create))
        .route("/v1/jobs/{id}", get(job))
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

    fn into_input(self, source: Input) -> (Input, Option<JobOptions>) {
        let mut input = source;
        if let Some(key) = self.key {
            input = input.key(key);
        }
        for (name, value) in self.labels {
            input = input.label(name, value);
        }
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

async fn create(State(app): State<App>, request: Request) -> Result<Response, Problem> {
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
            let fields: JobRequest = serde_json::from_slice(&bytes)
                .map_err(|e| Problem::invalid(format!("the job request: {e}")))?;
            fields.check()?;
            let Some(url) = fields.url.clone() else {
                return Err(Problem::invalid(
                    "`url` is required (or send multipart with a `file`)",
                ));
            };
            let (input, options) = fields.into_input(Input::url(url));
            (input, options, None)
        }
        "multipart/form-data" => multipart(&app, &kind, body).await?,
        _ => {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send application/json or multipart/form-data",
            ));
        }
    };
    // Detached: once the submit may reach Daglo it runs to its end on a task of the service's
    // own, whatever happens to this request (a caller who hangs up, a proxy that times out), so
    // its rid is always recorded and the same key later answers with the job. The upload's
    // copy and the webhook subscription go with it.
    let transcriber = app.transcriber.clone();
    let webhooks = app.webhooks.clone();
    let submit = tokio::spawn(async move {
        let started = transcriber.start(input, &options.unwrap_or_default()).await;
        // The upload went out with the submit (or was not needed): the copy goes.
        drop(spooled);
        if let (Ok(job), Some(webhooks)) = (&started, &webhooks) {
            // Its events go to the application (once per job, whoever asked first).
            webhooks.follow(job.id()).await;
        }
        started
    });
    let job = submit
        .await
        .map_err(|e| {
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the submit task failed: {e}"),
            )
        })?
        .map_err(|e| failed_start(&e))?;
    let status = if job.is_new() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json(status, job.snapshot()))
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
                    "labels" => {
                        fields.labels = serde_json::from_str(&text)
                            .map_err(|e| Problem::invalid(format!("`labels`: {e}")))?;
                    }
                    _ => {
                        fields.options = Some(
                            serde_json::from_str(&text)
                                .map_err(|e| Problem::invalid(format!("`options`: {e}")))?,
                        );
                    }
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
            let (input, options) = fields.into_input(Input::stream(name, length, opened));
            Ok((input, options, Some(spooled)))
        }
        (None, Some(url)) => {
            let (input, options) = fields.into_input(Input::url(url));
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

async fn job(State(app): State<App>, Path(id): Path<String>) -> Result<Response, Problem> {
    let job = found(&app, &id).await?;
    let Some(webhooks) = &app.webhooks else {
        return Ok(json(StatusCode::OK, &job));
    };
    // With webhooks, the job lists its deliveries (as `GET …/webhooks` does).
    let mut value = serde_json::to_value(&job).unwrap_or_default();
    if let Ok(attempts) = webhooks.attempts(&job.id).await {
        value["webhook_deliveries"] = serde_json::to_value(webhook::deliveries(attempts)).unwrap_or_default();
    }
    Ok(json(StatusCode::OK, &value))
}

/// `?format=` of a transcript.
#[derive(Debug, Deserialize)]
struct Format {
    format: Option<String>,
}

async fn transcript(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(format): Query<Format>,
) -> Result<Response, Problem> {
    let job = found(&app, &id).await?;
    if !matches!(job.state, JobState::Finished | JobState::Failed) {
        return Err(Problem::conflict(format!(
            "the job is {}; no transcript yet",
            job.state
        )));
    }
    let text = |kind: &'static str, body: String| {
        (StatusCode::OK, [(header::CONTENT_TYPE, kind)], body).into_response()
    };
    let format = format.format.as_deref().unwrap_or("text");
    let result =
        if matches!(format, "text" | "txt" | "json") {
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
    Ok(match format {
        "text" | "txt" => text(
            "text/plain; charset=utf-8",
            result.and_then(|o| o.transcript()).unwrap_or_default(),
        ),
        "json" => match result {
            Some(Outcome::Transcript { body, .. }) => json(StatusCode::OK, body.as_ref()),
            Some(Outcome::Failed { status, message, .. }) => json(
                StatusCode::OK,
                &serde_json::json!({"status": status.as_str(), "message": message}),
            ),
            _ => json(
                StatusCode::OK,
                &serde_json::json!({"status": "transcribed", "sttResults": []}),
            ),
        },
        "srt" => match app
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
                ));
            }
        },
        other => {
            return Err(Problem::invalid(format!(
                "format `{}` is not one of text, json, srt",
                other.escape_debug()
            )));
        }
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
    Path(id): Path<String>,
    caller: Option<axum::Extension<Caller>>,
    headers: axum::http::HeaderMap,
) -> Result<Response, Problem> {
    let job = found(&app, &id).await?;
    let after: u64 = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    if after >= ENDED {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let caller = caller.map_or(Caller([0; 32]), |c| c.0);
    let slot = app
        .shares
        .stream(&caller)
        .inspect_err(|_| crate::metrics::shed("stream"))?;
    let mut last = 0_u64;
    let stream = app.transcriber.events(&job.id).filter_map(move |event| {
        let at = position(&event, last);
        last = at;
        let sent = (at > after || matches!(event, JobEvent::Ended { .. })).then(|| {
            let data = serde_json::to_string(&event).unwrap_or_default();
            Ok::<_, Infallible>(Event::default().id(at.to_string()).event(event.name()).data(data))
        });
        std::future::ready(sent)
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
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    let job = found(&app, &id).await?;
    let request: ResolveRequest =
        serde_json::from_slice(&body).map_err(|e| Problem::invalid(format!("the resolve request: {e}")))?;
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
                webhooks.follow(snapshot.id.clone()).await;
            }
            Ok(json(StatusCode::OK, &snapshot))
        }
        Err(e @ TranscribeError::NotUncertain { .. }) => {
            Err(Problem::conflict(daglo::internal::error_chain(&e)))
        }
        Err(e) => Err(Problem::unavailable(&e)),
    }
}

/// `GET /v1/jobs`'s query.
#[derive(Debug, Deserialize)]
struct ListQuery {
    state: Option<String>,
    label: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// A page of jobs, newest first.
#[derive(Debug, Serialize)]
struct Page {
    jobs: Vec<JobSnapshot>,
    /// Pass as `cursor` for the next page; `null` on the last.
    next_cursor: Option<String>,
}

/// Jobs per page unless `limit` says otherwise, and at most.
const PAGE: usize = 50;
const MAX_PAGE: usize = 500;

async fn list(State(app): State<App>, Query(query): Query<ListQuery>) -> Result<Response, Problem> {
    let mut filter = JobFilter::default();
    if let Some(state) = &query.state {
        for state in state.split(',') {
            let state: JobState = state
                .parse()
                .map_err(|e| Problem::invalid(daglo::internal::error_chain(&e)))?;
            filter = filter.state(state);
        }
    }
    if let Some(label) = &query.label {
        let Some((name, value)) = label.split_once(':') else {
            return Err(Problem::invalid("`label` is name:value"));
        };
        filter = filter.label(name, value);
    }
    let limit = query.limit.unwrap_or(PAGE).clamp(1, MAX_PAGE);
    let all = app
        .transcriber
        .jobs(filter)
        .await
        .map_err(|e| Problem::unavailable(&e))?;
    let start = match &query.cursor {
        Some(cursor) => {
            all.iter()
                .position(|j| j.id.as_str() == cursor)
                .ok_or_else(|| Problem::invalid("`cursor` names no job of this list"))?
                + 1
        }
        None => 0,
    };
    let jobs: Vec<JobSnapshot> = all.iter().skip(start).take(limit).cloned().collect();
    let next_cursor = (start + jobs.len() < all.len())
        .then(|| jobs.last().map(|j| j.id.to_string()))
        .flatten();
    Ok(json(StatusCode::OK, &Page { jobs, next_cursor }))
}
