//! Jobs: `POST /v1/jobs` (by URL as JSON, or a file as multipart), `GET /v1/jobs` (a page,
//! newest first), `GET /v1/jobs/{id}`, its transcript and its events (Server-Sent Events).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::{Path as FsPath, PathBuf};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use daglo::client::SrtAnswer;
use daglo::jobs::JobFilter;
use daglo::{Input, JobId, JobOptions, JobSnapshot, JobState, Outcome, TranscribeError};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt as _;

use super::found;
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
}

/// A failed start, as an answer: what went wrong, and whether a job may exist.
fn failed_start(error: &TranscribeError) -> Problem {
    let message = daglo::internal::error_chain(error);
    match error {
        TranscribeError::Invalid(_)
        | TranscribeError::Prepare(_)
        | TranscribeError::Submit(daglo::client::Error::Invalid(_) | daglo::client::Error::File { .. }) => {
            Problem::invalid(message)
        }
        _ => Problem::new(StatusCode::BAD_GATEWAY, message)
            .with("may_have_created_job", error.may_have_created_job()),
    }
}

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
    let (input, options, spooled) = match mime.as_str() {
        "application/json" => {
            let Ok(bytes) = axum::body::to_bytes(request.into_body(), 1 << 20).await else {
                return Err(Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "a JSON job request is at most 1 MiB",
                ));
            };
            let fields: JobRequest = serde_json::from_slice(&bytes)
                .map_err(|e| Problem::invalid(format!("the job request: {e}")))?;
            let Some(url) = fields.url.clone() else {
                return Err(Problem::invalid(
                    "`url` is required (or send multipart with a `file`)",
                ));
            };
            let (input, options) = fields.into_input(Input::url(url));
            (input, options, None)
        }
        "multipart/form-data" => multipart(&app, &kind, request.into_body()).await?,
        _ => {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send application/json or multipart/form-data",
            ));
        }
    };
    if let Some(options) = &options {
        options
            .validate()
            .map_err(|e| Problem::invalid(daglo::internal::error_chain(&e)))?;
    }
    let started = app.transcriber.start(input, &options.unwrap_or_default()).await;
    // The upload went out with the submit (or was not needed): the copy goes.
    drop(spooled);
    let job = started.map_err(|e| failed_start(&e))?;
    if let Some(webhooks) = &app.webhooks {
        // Its events go to the application (once per job, whoever asked first).
        webhooks.follow(job.id()).await;
    }
    let status = if job.is_new() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json(status, job.snapshot()))
}

/// Reads a multipart job request: the `file` part written to the uploads directory as it
/// arrives (never held whole; over the limit is `413` before anything is submitted), the
/// other fields as parts.
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
        .map_err(|e| Problem::invalid(format!("multipart: {e}")))?
    {
        let name = part.name().unwrap_or("").to_owned();
        match name.as_str() {
            "file" => {
                let original = part
                    .file_name()
                    .and_then(|n| n.rsplit(['/', '\\']).next())
                    .unwrap_or("upload")
                    .to_owned();
                daglo::internal::check_media_file_name(&original)
                    .map_err(|e| Problem::invalid(daglo::internal::error_chain(&e)))?;
                let dir = app.uploads.join(JobId::random().as_str());
                tokio::fs::create_dir_all(&dir)
                    .await
                    .map_err(|e| Problem::uploads(&e))?;
                let spooled = Spooled(dir.join(&original));
                let length = spool(part, &spooled.0, app.max_upload_bytes).await?;
                file = Some((original, spooled, length));
            }
            "url" | "key" | "labels" | "options" => {
                let text = part
                    .text()
                    .await
                    .map_err(|e| Problem::invalid(format!("multipart `{name}`: {e}")))?;
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
                    other.escape_debug()
                )));
            }
        }
    }
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

/// How much of a refused upload is read (and dropped) before the `413`, so the caller gets the
/// answer rather than a connection closed mid-upload.
const DRAIN_AFTER_REFUSAL: u64 = 64 << 20;

/// Writes a part to `path` as it arrives; `413` past `max` bytes.
async fn spool(mut part: multer::Field<'_>, path: &FsPath, max: u64) -> Result<u64, Problem> {
    let mut out = tokio::fs::File::create(path)
        .await
        .map_err(|e| Problem::uploads(&e))?;
    let mut length = 0_u64;
    while let Some(chunk) = part
        .chunk()
        .await
        .map_err(|e| Problem::invalid(format!("multipart `file`: {e}")))?
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

/// Server-Sent Events: `event: <name>` and `data: <json>` per event, ending after the outcome.
async fn events(State(app): State<App>, Path(id): Path<String>) -> Result<Response, Problem> {
    let job = found(&app, &id).await?;
    let stream = app.transcriber.events(&job.id).map(|event| {
        let data = serde_json::to_string(&event).unwrap_or_default();
        Ok::<_, Infallible>(Event::default().event(event.name()).data(data))
    });
    let mut answer = Sse::new(stream).into_response();
    answer.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    Ok(answer)
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
