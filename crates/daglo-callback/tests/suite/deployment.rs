//! Running the receiver: slow senders, graceful shutdown, mounting in axum, and its logs.

use crate::support;

use std::time::Duration;

use crate::support::Rig;
use daglo_callback::{CallbackConfig, CallbackDelivery};
use daglo_core::{IgnoreProgress, JobOptions, Outcome, ResultDelivery};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends a request head and the first part of its body, leaving the rest unsent.
async fn start_request(url: &str, header: &(String, String), body: &str, sent: usize) -> TcpStream {
    let url = url::Url::parse(url).unwrap();
    let mut stream = TcpStream::connect((url.host_str().unwrap(), url.port().unwrap()))
        .await
        .unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\n{}: {}\r\ncontent-length: {}\r\n\r\n",
        url.path(),
        header.0,
        header.1,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body.as_bytes()[..sent]).await.unwrap();
    stream
}

async fn read_status(stream: &mut TcpStream) -> u16 {
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn body(text: &str) -> String {
    serde_json::json!({"status": "transcribed", "sttResults": [{"transcript": text}]}).to_string()
}

#[tokio::test]
async fn a_slow_sender_times_out_while_others_are_served() {
    let rig = Rig::start(Rig::sim_config(), |c| c.body_timeout(Duration::from_millis(300))).await;
    let mut slow_options = JobOptions::default();
    let _slow_job = rig.callbacks.prepare(&mut slow_options).await.unwrap();
    let (slow_url, name, value) = Rig::credential(&slow_options);
    let payload = body("slow");
    let mut slow = start_request(&slow_url, &(name, value), &payload, 10).await;

    // While it stalls, a whole job is called back and delivered.
    let outcome = rig.run("https://a.example/a.wav").await;
    assert!(matches!(outcome, Outcome::Transcript { .. }));

    assert_eq!(read_status(&mut slow).await, 408);
}

#[tokio::test]
async fn graceful_shutdown_lets_in_flight_callbacks_finish() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let callbacks = CallbackDelivery::new(
        support::unused_client(),
        CallbackConfig::new(&format!("http://{addr}/cb"))
            .unwrap()
            .finals(daglo_callback::FinalCallbacks::TrustBody),
    )
    .unwrap();
    let server = callbacks.serve(listener).unwrap();
    let mut options = JobOptions::default();
    let prepared = callbacks.prepare(&mut options).await.unwrap();
    let (url, name, value) = Rig::credential(&options);
    let payload = body("finished during shutdown");
    let mut in_flight = start_request(&url, &(name, value), &payload, 20).await;

    let shutdown = tokio::spawn(server.shutdown());
    // The server stops accepting: wait until a new connection is refused.
    while TcpStream::connect(addr).await.is_ok() {
        tokio::task::yield_now().await;
    }
    in_flight.write_all(&payload.as_bytes()[20..]).await.unwrap();
    assert_eq!(read_status(&mut in_flight).await, 200);
    shutdown.await.unwrap();
    let outcome = prepared.wait("r".into(), &IgnoreProgress).await.unwrap();
    assert_eq!(outcome.transcript().as_deref(), Some("finished during shutdown"));
}

#[tokio::test]
async fn mounted_inside_an_axum_router() {
    let sim = daglo_sim::Simulator::start(Rig::sim_config()).await.unwrap();
    let client = daglo::sim::client(&sim).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public = format!("http://{}/integrations/daglo", listener.local_addr().unwrap());
    let callbacks = CallbackDelivery::new(client.clone(), CallbackConfig::new(&public).unwrap()).unwrap();
    let app = axum::Router::new()
        .route("/health", axum::routing::get(|| async { "ok" }))
        .route_service("/integrations/daglo/{key}", callbacks.receiver());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut options = JobOptions::default();
    let prepared = callbacks.prepare(&mut options).await.unwrap();
    let rid = client
        .submit_url("https://a.example/a.wav", &options)
        .await
        .unwrap()
        .rid;
    let outcome = prepared.wait(rid, &IgnoreProgress).await.unwrap();
    assert!(matches!(outcome, Outcome::Transcript { .. }));
    let health = reqwest::get(public.replace("/integrations/daglo", "/health"))
        .await
        .unwrap();
    assert_eq!(health.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn connections_are_bounded() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = CallbackConfig::new(&format!("http://{addr}/cb"))
        .unwrap()
        .max_connections(1);
    let callbacks = CallbackDelivery::new(support::unused_client(), config).unwrap();
    let _server = callbacks.serve(listener).unwrap();
    let mut options = JobOptions::default();
    let _prepared = callbacks.prepare(&mut options).await.unwrap();
    let (url, name, value) = Rig::credential(&options);
    let payload = body("holding the only slot");
    let mut first = start_request(&url, &(name.clone(), value.clone()), &payload, 5).await;

    // With the only connection slot taken, a second sender is not served…
    let second = tokio::spawn({
        let (url, name, value) = (url.clone(), name.clone(), value.clone());
        async move {
            reqwest::Client::new()
                .post(url)
                .header(name, value)
                .header("content-type", "application/json")
                .body(body("second"))
                .send()
                .await
                .map(|answer| answer.status().as_u16())
        }
    });
    let mut second = second;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut second)
            .await
            .is_err(),
        "served beyond the connection limit"
    );
    // …until the first one is done.
    first.write_all(&payload.as_bytes()[5..]).await.unwrap();
    assert_eq!(read_status(&mut first).await, 200);
    assert_eq!(second.await.unwrap().unwrap(), 200);
}
