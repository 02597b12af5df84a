//! The HTTP face of the emulator: routing, auth, rate limit, and the three endpoints.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use daglo_core::{ErrorBody, Rid, SubmitResponse};
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::sync::{oneshot, watch};
use tracing::{debug, info};

use crate::callbacks;
use crate::plan::{Ending, JobPlan, Submission, default_ending_and_duration};
use crate::rng::hash;
use crate::state::{Endpoint, Job, JobOutput, Phase, Shared};
use crate::submit::{ReadSubmit, Refusal, read_json, read_multipart};
use daglo_core::Status;
use daglo_core::internal::lock;

type Answer = Response<Full<Bytes>>;

const PREFIX: &str = "/stt/v1/async/transcripts";

enum Route {
    Submit,
    Status(Rid),
    Srt(Rid),
}

/// Why a request has no endpoint: the status, the text, and for `405` the method allowed.
type Unrouted = (u16, String, Option<Method>);

/// The endpoint a request is for, or why there is none.
fn route(method: &Method, path: &str) -> Result<Route, Unrouted> {
    let not_found = || (404, "no such endpoint".to_owned(), None);
    let rest = path.strip_prefix(PREFIX).ok_or_else(not_found)?;
    // `/transcriptsXYZ` is not the collection followed by a rid.
    if !(rest.is_empty() || rest.starts_with('/')) {
        return Err(not_found());
    }
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let (route, allowed) = match segments.as_slice() {
        [] => (Route::Submit, Method::POST),
        [rid] => (Route::Status(Rid::new(*rid)), Method::GET),
        [rid, "srt"] => (Route::Srt(Rid::new(*rid)), Method::GET),
        _ => return Err(not_found()),
    };
    if *method != allowed {
        return Err((405, format!("{method} is not allowed here"), Some(allowed)));
    }
    Ok(route)
}

/// Answers one request; every answer is counted per endpoint.
pub(crate) async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Result<Answer, Infallible> {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let (endpoint, answer) = match route(&method, &path) {
        Err((status, message, allowed)) => {
            let mut answer = error(status, message);
            if let Some(allowed) = allowed.and_then(|m| http::HeaderValue::from_str(m.as_str()).ok()) {
                answer.headers_mut().insert(http::header::ALLOW, allowed);
            }
            (None, answer)
        }
        Ok(route) => {
            let endpoint = match &route {
                Route::Submit => Endpoint::Submit,
                Route::Status(_) => Endpoint::Status,
                Route::Srt(_) => Endpoint::Srt,
            };
            (Some(endpoint), guarded(&shared, endpoint, route, request).await)
        }
    };
    if let Some(endpoint) = endpoint {
        lock(&shared.stats).record(endpoint, answer.status().as_u16());
    }
    info!(
        %method, %path, status = answer.status().as_u16(),
        elapsed_us = started.elapsed().as_micros() as u64, "answered"
    );
    Ok(answer)
}

/// The most of a refused request's body read before its early answer (a refusal is not worth
/// reading gigabytes for).
const EARLY_DRAIN_BYTES: u64 = 64 << 20;

/// Reads and drops a request body, at most `limit` bytes of it.
async fn drain(mut body: Incoming, limit: u64) {
    use http_body_util::BodyExt;
    let mut seen = 0u64;
    while let Some(Ok(frame)) = body.frame().await {
        if let Some(data) = frame.data_ref() {
            seen += data.len() as u64;
            if seen > limit {
                return;
            }
        }
    }
}

/// Auth, then the rate limit, then injected error bursts, then the endpoint itself.
async fn guarded(
    shared: &Arc<Shared>,
    endpoint: Endpoint,
    route: Route,
    request: Request<Incoming>,
) -> Answer {
    let expected = format!("Bearer {}", shared.config.token);
    let authorized = request
        .headers()
        .get(AUTHORIZATION)
        .is_some_and(|value| value.as_bytes() == expected.as_bytes());
    let early = if !authorized {
        Some(error(401, "missing or invalid API token"))
    } else if !shared.within_rate_limit(endpoint) {
        Some(error(429, "too many requests"))
    } else {
        shared
            .take_injected(endpoint)
            .map(|status| error(status, "injected failure"))
    };
    if let Some(answer) = early {
        // Read what the client is still sending, as a server that reads its requests does:
        // the answer then reaches it, rather than a connection reset mid-upload.
        drain(
            request.into_body(),
            shared.config.max_upload_bytes.min(EARLY_DRAIN_BYTES),
        )
        .await;
        return answer;
    }
    match route {
        Route::Submit => submit(shared, request).await,
        Route::Status(rid) => status(shared, &rid).await,
        Route::Srt(rid) => srt(shared, &rid).await,
    }
}

async fn submit(shared: &Arc<Shared>, request: Request<Incoming>) -> Answer {
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let body = request.into_body();
    let read = match mime.as_str() {
        "application/json" => read_json(body, shared.config.max_json_bytes, !shared.config.lenient).await,
        "multipart/form-data" => {
            read_multipart(
                body,
                &content_type,
                shared.config.max_upload_bytes,
                !shared.config.lenient,
            )
            .await
        }
        _ => Err(Refusal {
            status: 415,
            message: "send application/json or multipart/form-data".to_owned(),
        }),
    };
    let read = match read {
        Ok(read) => read,
        Err(refusal) => return error(refusal.status, refusal.message),
    };
    if !shared.take_credit() {
        return error(403, "credits exhausted");
    }
    let file_name = read.file_name.clone();
    let (mut job, callback) = new_job(shared, read);
    let rid = job.output.rid.clone();
    let mut answer = SubmitResponse::new(rid.clone());
    answer.file_name = file_name;
    answer.custom = job.output.custom.clone();
    let before_answer = job.plan.faults.callback_before_submit_answer;
    let slow = job.plan.faults.slow_answers;
    let (done_tx, done_rx) = watch::channel(callback.is_none());
    job.callbacks_done = done_rx;
    lock(&shared.jobs).insert(rid.clone(), job);
    info!(%rid, "job accepted");

    if let Some(callback) = callback {
        let (flushed_tx, flushed_rx) = oneshot::channel();
        let driver = tokio::spawn(callbacks::drive(
            shared.clone(),
            rid,
            callback,
            flushed_tx,
            done_tx,
        ));
        {
            let mut drivers = lock(&shared.drivers);
            // Forget finished drivers so a long-running emulator does not accumulate handles —
            // when the list is full, not at every submit (a thousand submits at once scanned
            // half a million handles).
            if drivers.len() == drivers.capacity() {
                drivers.retain(|handle| !handle.is_finished());
            }
            drivers.push(driver.abort_handle());
        }
        if before_answer {
            let _ = flushed_rx.await;
        }
    }
    slow_down(slow).await;
    json(200, &answer)
}

/// Turns a read submit into a planned job, and the callback to drive if it asked for one.
fn new_job(shared: &Shared, read: ReadSubmit) -> (Job, Option<daglo_core::Callback>) {
    let rid = shared.next_rid();
    let name_hash = hash(read.audio_name.as_bytes());
    let submission = Submission {
        audio_name: read.audio_name.clone(),
        file_bytes: read.file_bytes,
        options: read.options.as_ref().ok().cloned(),
    };
    let (mut ending, audio_duration) = default_ending_and_duration(&submission, name_hash);
    if read.silent_upload {
        ending = Ending::Silent;
    }
    if let Err(reason) = &read.options {
        ending = Ending::Failed {
            status: Status::InputError,
            message: reason.clone(),
        };
    }
    let mut plan = JobPlan {
        processing_time: shared.processing_time(),
        audio_duration,
        ending,
        faults: shared.config.faults.clone(),
    };
    if let Some(planner) = &shared.config.planner {
        (planner.0)(&submission, &mut plan);
    }
    let options = read.options.unwrap_or_default();
    let results = match plan.ending {
        Ending::Transcript => {
            crate::transcript::generate(shared.config.seed ^ name_hash, plan.audio_duration, &options)
        }
        _ => Vec::new(),
    };
    // Audio too short to hold a word is an empty result, as silence is: 204, not an empty 200.
    if plan.ending == Ending::Transcript && results.iter().all(|r| r.transcript.trim().is_empty()) {
        plan.ending = Ending::Silent;
    }
    debug!(%rid, ?plan, "planned");
    let job = Job {
        output: Arc::new(JobOutput {
            rid,
            ending: plan.ending.clone(),
            results,
            custom: options.custom,
        }),
        status_errors_left: plan.faults.status_error_burst.map_or(0, |b| b.count),
        srt_not_ready_left: plan.faults.srt_not_ready_answers,
        plan,
        submitted_at: shared.now(),
        status_requests: 0,
        srt_requests: 0,
        first_terminal_answer_at: None,
        callbacks_sent: 0,
        callbacks_done: watch::channel(true).1,
    };
    (job, options.callback)
}

async fn slow_down(delay: Option<Duration>) {
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
}

/// What a status or SRT request learned about a job, read under one lock.
enum Seen {
    Unknown,
    Injected(u16),
    Running(Arc<JobOutput>, Status, u32),
    Done(Arc<JobOutput>),
}

/// Looks the job up, counts the request, and consumes an injected error if one is pending.
fn observe(shared: &Shared, rid: &Rid, endpoint: Endpoint) -> (Seen, Option<Duration>) {
    let now = shared.now();
    let mut jobs = lock(&shared.jobs);
    let Some(job) = jobs.get_mut(rid) else {
        return (Seen::Unknown, None);
    };
    let slow = job.plan.faults.slow_answers;
    match endpoint {
        Endpoint::Srt => job.srt_requests += 1,
        _ => job.status_requests += 1,
    }
    if endpoint == Endpoint::Status && job.status_errors_left > 0 {
        job.status_errors_left -= 1;
        let status = job.plan.faults.status_error_burst.map_or(500, |b| b.status);
        return (Seen::Injected(status), slow);
    }
    let seen = match job.phase_at(now) {
        Phase::Running { status, progress } => Seen::Running(job.output.clone(), status, progress),
        Phase::Done => {
            if endpoint == Endpoint::Status {
                job.first_terminal_answer_at.get_or_insert(now);
            }
            let lagging = job
                .plan
                .faults
                .srt_lag
                .is_some_and(|lag| now < job.completes_at() + lag);
            let mut counted_lag = false;
            if endpoint == Endpoint::Srt && job.srt_not_ready_left > 0 {
                job.srt_not_ready_left -= 1;
                counted_lag = true;
            }
            if endpoint == Endpoint::Srt && (lagging || counted_lag) {
                Seen::Running(job.output.clone(), Status::PostProcessing, 99)
            } else {
                Seen::Done(job.output.clone())
            }
        }
    };
    (seen, slow)
}

async fn status(shared: &Shared, rid: &Rid) -> Answer {
    let (seen, slow) = observe(shared, rid, Endpoint::Status);
    slow_down(slow).await;
    match seen {
        Seen::Unknown => error(404, format!("rid {rid} not found")),
        Seen::Injected(status) => error(status, "injected failure"),
        Seen::Running(job, status, progress) => json(200, &job.running_body(status, progress)),
        Seen::Done(job) => match job.ending {
            Ending::Silent => empty(204),
            _ => json(200, &job.final_body()),
        },
    }
}

async fn srt(shared: &Shared, rid: &Rid) -> Answer {
    let (seen, slow) = observe(shared, rid, Endpoint::Srt);
    slow_down(slow).await;
    match seen {
        Seen::Unknown => error(404, format!("rid {rid} not found")),
        Seen::Injected(status) => error(status, "injected failure"),
        Seen::Running(..) => empty(202),
        Seen::Done(job) => match &job.ending {
            Ending::Transcript => {
                let mut answer = Response::new(Full::new(Bytes::from(crate::transcript::srt(&job.results))));
                answer.headers_mut().insert(
                    CONTENT_TYPE,
                    http::HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                answer
            }
            // Silence has no subtitles: 204. A failed job neither — unstated by the provider: the
            // endpoint documents only 200/202/204 and the errors of a GET (401/403/404/429/500), and
            // 204, "nothing to give", is the one that fits; the failure itself is what the status
            // endpoint reports.
            Ending::Silent | Ending::Failed { .. } => empty(204),
        },
    }
}

fn json(status: u16, body: &impl serde::Serialize) -> Answer {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut answer = Response::new(Full::new(Bytes::from(bytes)));
    *answer.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    answer
        .headers_mut()
        .insert(CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    answer
}

fn error(status: u16, message: impl Into<String>) -> Answer {
    json(status, &ErrorBody::new(message))
}

fn empty(status: u16) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::new()));
    *answer.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    answer
}
