//! A small meeting-transcription service on the job table: upload, status with progress, a
//! Server-Sent Events stream of a job's events, and a restart that loses nothing.
//!
//! ```text
//! cargo run --example jobs_service
//! ```
//!
//! Routes (axum), the Daglo callback receiver mounted beside them:
//! - `PUT /meetings/{id}` — the request body is the audio (`x-file-name` names it), streamed to
//!   the service as it arrives, never held whole; the meeting id is the job's key, so a retried
//!   upload is the same job, never a second (billed) submit;
//! - `GET /meetings/{id}` — the job as JSON (state, progress, ETA, rid, …);
//! - `GET /meetings/{id}/events` — `text/event-stream` of the job's events, ending after the
//!   outcome;
//! - `GET /meetings/{id}/transcript` — the text, from the result store.
//!
//! The demo runs against the in-process emulator and plays the client itself: it uploads a
//! meeting, follows its events, then "restarts" (a new transcriber on the same data directory)
//! and shows the job and its transcript again, from the journal and the result store.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use daglo::jobs::{DirResults, JobFilter};
use daglo::journal::SqliteJournal;
use daglo::sim::{SimConfig, Simulator};
use daglo::{Input, JobOptions, StrategyConfig, Transcriber};
use futures_util::StreamExt;

/// One meeting's job, found by its key (the meeting id).
async fn meeting(transcriber: &Transcriber, id: &str) -> Option<daglo::JobSnapshot> {
    let found = transcriber
        .jobs(JobFilter::default().key(id).limit(1))
        .await
        .ok()?;
    found.into_iter().next()
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response {
    let body = serde_json::to_string(value).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn problem(status: StatusCode, message: &str) -> Response {
    json(status, &serde_json::json!({ "error": message }))
}

async fn upload(
    State(transcriber): State<Transcriber>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let name = headers
        .get("x-file-name")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("upload.wav")
        .to_owned();
    let Some(length) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
    else {
        return problem(StatusCode::LENGTH_REQUIRED, "send Content-Length");
    };
    // The body, streamed as it arrives: never held whole.
    let stream = body
        .into_data_stream()
        .map(|chunk| chunk.map_err(std::io::Error::other));
    let reader = tokio_util::io::StreamReader::new(stream);
    let input = Input::stream(name, length, reader)
        .key(id)
        .label("kind", "meeting");
    match transcriber.start(input, &JobOptions::default()).await {
        Ok(job) if job.is_new() => json(StatusCode::CREATED, job.snapshot()),
        Ok(job) => json(StatusCode::OK, job.snapshot()),
        Err(e) => problem(StatusCode::BAD_GATEWAY, &daglo::internal::error_chain(&e)),
    }
}

async fn status(State(transcriber): State<Transcriber>, Path(id): Path<String>) -> Response {
    match meeting(&transcriber, &id).await {
        Some(job) => json(StatusCode::OK, &job),
        None => problem(StatusCode::NOT_FOUND, "no such meeting"),
    }
}

async fn events(State(transcriber): State<Transcriber>, Path(id): Path<String>) -> Response {
    let Some(job) = meeting(&transcriber, &id).await else {
        return problem(StatusCode::NOT_FOUND, "no such meeting");
    };
    // Server-Sent Events: `event: <name>` and `data: <json>` per event, ending after the outcome.
    let stream = transcriber.events(&job.id).map(|event| {
        let data = serde_json::to_string(&event).unwrap_or_default();
        Ok::<_, Infallible>(Event::default().event(event.name()).data(data))
    });
    Sse::new(stream).into_response()
}

async fn transcript(State(transcriber): State<Transcriber>, Path(id): Path<String>) -> Response {
    let Some(job) = meeting(&transcriber, &id).await else {
        return problem(StatusCode::NOT_FOUND, "no such meeting");
    };
    match transcriber.result(&job.id).await {
        Ok(Some(outcome)) => outcome.transcript().unwrap_or_default().into_response(),
        Ok(None) => problem(StatusCode::CONFLICT, "not finished yet"),
        Err(e) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            &daglo::internal::error_chain(&e),
        ),
    }
}

/// The transcriber of one run of the service: hybrid delivery, its receiver mounted on the
/// app, the journal and the results in `data`.
async fn service(
    client: daglo::Client,
    data: &std::path::Path,
    public_url: &str,
) -> Result<(Transcriber, Router), Box<dyn std::error::Error>> {
    let config: StrategyConfig = serde_json::from_value(serde_json::json!({
        "strategy": "hybrid",
        "callback": { "public_url": public_url },
        "window_secs": 10,
    }))?;
    let journal = Arc::new(SqliteJournal::open(data.join("jobs.sqlite"))?);
    // The journal keeps the callback key secret beside itself: after a restart, the callbacks
    // of the jobs it resumes are still accepted.
    let (transcriber, receiver) = Transcriber::builder(client)
        .config(&config)
        .journal(journal)
        .results(Arc::new(DirResults::open(data.join("results"))?))
        .build_mounted()
        .await?;
    let mut app = Router::new()
        .route("/meetings/{id}", put(upload).get(status))
        .route("/meetings/{id}/events", get(events))
        .route("/meetings/{id}/transcript", get(transcript))
        .with_state(transcriber.clone());
    if let Some(receiver) = receiver {
        app = app.route_service("/daglo/{key}", receiver);
    }
    Ok((transcriber, app))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sim = Simulator::start(SimConfig::default().processing_time(Duration::from_secs(2))).await?;
    let data = std::env::temp_dir().join(format!("daglo-jobs-service-{}", std::process::id()));
    std::fs::create_dir_all(&data)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let public_url = format!("http://{addr}/daglo");

    let (transcriber, app) = service(daglo::sim::client(&sim)?, &data, &public_url).await?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    println!("service on http://{addr}, data in {}", data.display());

    // The service's user: upload a meeting, then follow it.
    let http = reqwest::Client::new();
    let audio = tokio::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/standup.wav")).await?;
    let meeting_url = format!("http://{addr}/meetings/standup-0412");
    for attempt in ["first upload", "retried upload"] {
        let answer = http
            .put(&meeting_url)
            .header("x-file-name", "standup.wav")
            .body(audio.clone())
            .send()
            .await?;
        println!("{attempt}: {} {}", answer.status(), answer.text().await?);
    }
    let mut events = http
        .get(format!("{meeting_url}/events"))
        .send()
        .await?
        .bytes_stream();
    while let Some(chunk) = events.next().await {
        for line in String::from_utf8_lossy(&chunk?)
            .lines()
            .filter(|l| l.starts_with("data: "))
        {
            println!("event {}", &line[6..]);
        }
    }
    let text = http
        .get(format!("{meeting_url}/transcript"))
        .send()
        .await?
        .text()
        .await?;
    println!("transcript: {text}");

    // A restart: a new transcriber on the same data directory knows the meeting and its text.
    transcriber.shutdown().await;
    server.abort();
    let (restarted, _app) = service(daglo::sim::client(&sim)?, &data, &public_url).await?;
    let report = restarted.recover().await?;
    println!(
        "after the restart: {} resumed, {} uncertain",
        report.resumed.len(),
        report.uncertain.len()
    );
    let job = meeting(&restarted, "standup-0412")
        .await
        .ok_or("the meeting is known after the restart")?;
    let outcome = restarted.result(&job.id).await?.ok_or("the result was kept")?;
    println!(
        "{} is {} (rid {:?}): {}",
        job.key.unwrap_or_default(),
        job.state,
        job.rid,
        outcome.transcript().unwrap_or_default()
    );
    println!("emulator: {} job(s) submitted", sim.jobs().len());
    restarted.shutdown().await;
    let _ = std::fs::remove_dir_all(&data);
    Ok(())
}
