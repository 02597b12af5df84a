//! Callbacks: what a receiver gets, normally and under each fault mode.

use std::time::Duration;

use crate::support::{Raw, Received, Receiver, quick};
use daglo_core::Rid;
use daglo_sim::{Clock, Faults, SimConfig};
use serde_json::json;

fn with_callback(receiver: &Receiver) -> serde_json::Value {
    json!({
        "callback": {"url": receiver.url, "headers": {"X-Callback-Token": "per-job-secret"}},
        "custom": {"job": "42"}
    })
}

/// Submits one job with a callback and returns everything the receiver got.
async fn run(config: SimConfig, audio: &str) -> (Raw, Rid, Vec<Received>) {
    let raw = Raw::start(config).await;
    let mut receiver = Receiver::start().await;
    let rid = Rid::new(raw.submit(audio, with_callback(&receiver)).await);
    raw.sim.callbacks_done(&rid).await;
    let received = receiver.drain();
    (raw, rid, received)
}

fn faults(set: impl FnOnce(&mut Faults)) -> Faults {
    let mut faults = Faults::default();
    set(&mut faults);
    faults
}

#[tokio::test]
async fn progress_bodies_then_the_final_one_with_the_callers_headers() {
    let (raw, rid, received) = run(
        quick().processing_time(Duration::from_millis(50)),
        "https://a.example/x.wav",
    )
    .await;
    assert!(received.len() >= 2, "{received:?}");
    let (last, progress) = received.split_last().unwrap();
    assert_eq!(last.status(), "transcribed");
    assert!(
        last.body["sttResults"][0]["words"]
            .as_array()
            .is_some_and(|w| !w.is_empty())
    );
    assert!(
        progress
            .iter()
            .all(|r| !r.is_final() && r.body["progress"].is_u64())
    );
    let percents: Vec<u64> = progress
        .iter()
        .map(|r| r.body["progress"].as_u64().unwrap())
        .collect();
    assert!(percents.windows(2).all(|w| w[0] < w[1]), "{percents:?}");
    for r in &received {
        assert_eq!(r.path, "/hooks/daglo");
        assert_eq!(r.content_type.as_deref(), Some("application/json"));
        assert_eq!(r.headers["x-callback-token"], "per-job-secret");
        assert_eq!(r.body["rid"], rid.as_str());
        assert_eq!(r.body["custom"]["job"], "42");
    }
    let log = raw.sim.callback_log();
    assert_eq!(log.len(), received.len());
    assert!(log.iter().all(|c| c.answer == Ok(200)));
    assert_eq!(log.iter().filter(|c| c.is_final).count(), 1);
    assert_eq!(raw.sim.job(&rid).unwrap().callbacks_sent as usize, received.len());
}

#[tokio::test]
async fn failures_and_silence_are_called_back_too() {
    let (_, _, received) = run(quick(), "https://a.example/file-error.wav").await;
    let last = received.last().unwrap();
    assert_eq!(last.status(), "file_error");
    assert!(last.body["message"].is_string());
    let (_, _, received) = run(quick(), "https://a.example/silent.wav").await;
    let last = received.last().unwrap();
    assert_eq!(last.status(), "transcribed");
    assert_eq!(last.body["sttResults"], json!([]));
}

#[tokio::test]
async fn dropped_final_callback_never_comes() {
    let config = quick().faults(faults(|f| f.drop_final_callback = true));
    let (raw, rid, received) = run(config, "https://a.example/x.wav").await;
    assert!(!received.is_empty());
    assert!(received.iter().all(|r| !r.is_final()), "{received:?}");
    // Polling still sees the result: the job itself finished.
    let body: serde_json::Value = raw.get(&format!("/{rid}")).await.json().await.unwrap();
    assert_eq!(body["status"], "transcribed");

    let config = quick().faults(faults(|f| f.drop_all_callbacks = true));
    let (_, _, received) = run(config, "https://a.example/x.wav").await;
    assert!(received.is_empty());
}

#[tokio::test]
async fn duplicated_final_callback_comes_twice() {
    let config = quick().faults(faults(|f| f.duplicate_final_callback = true));
    let (_, _, received) = run(config, "https://a.example/x.wav").await;
    let finals: Vec<_> = received.iter().filter(|r| r.is_final()).collect();
    assert_eq!(finals.len(), 2);
    assert_eq!(finals[0].body, finals[1].body);
}

#[tokio::test]
async fn reordered_progress_arrives_after_the_final() {
    let config = quick().faults(faults(|f| f.late_progress_after_final = true));
    let (_, _, received) = run(config, "https://a.example/x.wav").await;
    let final_at = received.iter().position(Received::is_final).unwrap();
    assert_eq!(final_at, received.len() - 2);
    assert_eq!(received.last().unwrap().status(), "post_processing");
}

#[tokio::test]
async fn callbacks_without_rid() {
    let config = quick().faults(faults(|f| f.omit_rid_in_callbacks = true));
    let (_, _, received) = run(config, "https://a.example/x.wav").await;
    assert!(received.iter().any(Received::is_final));
    assert!(
        received.iter().all(|r| r.body.get("rid").is_none()),
        "{received:?}"
    );
}

#[tokio::test]
async fn callback_arrives_before_the_submit_answer() {
    let (clock, _time) = Clock::manual();
    let config = quick()
        .clock(clock)
        .processing_time(Duration::from_secs(60))
        .faults(faults(|f| f.callback_before_submit_answer = true));
    let raw = Raw::start(config).await;
    let mut receiver = Receiver::start().await;
    let rid = raw
        .submit("https://a.example/x.wav", with_callback(&receiver))
        .await;
    // The submit has just answered; the first callback was already delivered.
    let first = receiver
        .received
        .try_recv()
        .expect("a callback before the submit answer");
    assert_eq!(first.status(), "ai_requested");
    assert_eq!(first.body["rid"], rid.as_str());

    // With instant jobs even the final body beats the submit answer.
    let config = quick().faults(faults(|f| f.callback_before_submit_answer = true));
    let raw = Raw::start(config).await;
    let mut receiver = Receiver::start().await;
    raw.submit("https://a.example/x.wav", with_callback(&receiver))
        .await;
    assert!(receiver.drain().iter().any(Received::is_final));
}

#[tokio::test]
async fn delayed_final_callback_waits_past_completion() {
    let (clock, time) = Clock::manual();
    let config = quick()
        .clock(clock)
        .processing_time(Duration::from_secs(10))
        .faults(faults(|f| f.delay_final_callback = Some(Duration::from_secs(30))));
    let raw = Raw::start(config).await;
    let mut receiver = Receiver::start().await;
    let rid = raw
        .submit("https://a.example/x.wav", with_callback(&receiver))
        .await;
    time.advance(Duration::from_secs(10));
    // Every progress body arrives; the job is done when polled, yet no final body came.
    for _ in 0..6 {
        let progress = receiver.received.recv().await.unwrap();
        assert!(!progress.is_final());
    }
    assert_eq!(raw.get(&format!("/{rid}")).await.status(), 200);
    assert!(receiver.received.try_recv().is_err());
    time.advance(Duration::from_secs(30));
    let last = receiver.received.recv().await.unwrap();
    assert!(last.is_final());
}

#[tokio::test]
async fn the_deprecated_callback_url_field_is_honoured() {
    let raw = Raw::start(quick()).await;
    let mut receiver = Receiver::start().await;
    let rid = Rid::new(
        raw.submit("https://a.example/x.wav", json!({"callbackUrl": receiver.url}))
            .await,
    );
    raw.sim.callbacks_done(&rid).await;
    assert!(receiver.drain().iter().any(Received::is_final));
}

#[tokio::test]
async fn an_unreachable_receiver_is_logged_not_fatal() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/cb", listener.local_addr().unwrap());
    drop(listener);
    let raw = Raw::start(quick()).await;
    let rid = Rid::new(
        raw.submit("https://a.example/x.wav", json!({"callback": {"url": dead}}))
            .await,
    );
    raw.sim.callbacks_done(&rid).await;
    let log = raw.sim.callback_log();
    assert!(!log.is_empty() && log.iter().all(|c| c.answer.is_err()));
    assert_eq!(raw.get(&format!("/{rid}")).await.status(), 200);
}
