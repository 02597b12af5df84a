//! Mount the callback receiver next to your own routes in an axum app.
//!
//! ```text
//! cargo run --example axum_receiver
//! ```
//!
//! Your app already serves HTTP; the receiver is a `tower::Service`, so it is one more route
//! (`/daglo/{key}`). Daglo calls `https://<your host>/daglo/<job key>`; here the in-process
//! emulator calls the app directly on loopback. The app's own routes are untouched, and
//! everything about a job's credential is checked before its body is read.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use daglo::callback::{CallbackConfig, CallbackDelivery};
use daglo::sim::{SimConfig, Simulator};
use daglo::{JobOptions, Outcome, Transcriber};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sim = Simulator::start(SimConfig::default().processing_time(Duration::from_secs(1))).await?;
    let client = daglo::sim::client(&sim)?; // in production: Client::new(token)

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    // In production: CallbackConfig::new("https://hooks.example.com/daglo"). The client confirms
    // each final callback with one authenticated GET (Daglo signs nothing).
    let callbacks = CallbackDelivery::new(
        client.clone(),
        CallbackConfig::new(&format!("http://{addr}/daglo"))?,
    )?;

    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route_service("/daglo/{key}", callbacks.receiver());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    println!("app listening on http://{addr} (routes: /health, /daglo/{{key}})");

    let transcriber = Transcriber::new(client, callbacks);
    let outcome = transcriber
        .transcribe_url("https://example.com/all-hands.wav", &JobOptions::default())
        .await?;
    match outcome {
        Outcome::Transcript { rid, body } => println!("{rid} by callback: {}", body.full_transcript()),
        other => println!("{other:?}"),
    }
    println!("callbacks received: {}", sim.callback_log().len());

    server.abort();
    sim.shutdown().await;
    Ok(())
}
