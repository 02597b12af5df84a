//! The inbox: every callback past its credential is written down before it is answered (a
//! failed write is `503`, so the sender retries), never with a header; and a written-down
//! callback replayed moves a waiting job through the same state machine.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{post, unused_client};
use async_trait::async_trait;
use daglo_callback::{
    CallbackConfig, CallbackDelivery, CallbackInbox, CallbackServer, ConnectionLimits, FinalCallbacks,
    InboxEntry, RegistryError, ReplayError,
};
use daglo_core::{IgnoreProgress, JobOptions, Outcome, ResultDelivery, Rid};

#[derive(Debug, Default)]
struct Kept {
    entries: Mutex<Vec<InboxEntry>>,
    failing: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl CallbackInbox for Kept {
    async fn record(&self, entry: InboxEntry) -> Result<(), RegistryError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(RegistryError::message("the disk is full"));
        }
        self.entries.lock().unwrap().push(entry);
        Ok(())
    }
}

/// A delivery (finals trusted, so nothing is asked of the service) whose receiver writes to
/// `inbox` with bodies cut at `cap` bytes.
async fn rig(inbox: Arc<Kept>, cap: usize) -> (CallbackDelivery, CallbackServer, String) {
    let listener = daglo_callback::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let public = format!("http://{}/daglo", listener.local_addr().unwrap());
    let config = CallbackConfig::new(&public)
        .unwrap()
        .finals(FinalCallbacks::TrustBody);
    let delivery = CallbackDelivery::new(unused_client(), config).unwrap();
    let receiver = delivery.receiver().with_inbox(inbox, cap);
    let server = CallbackServer::serve(listener, receiver, ConnectionLimits::default()).unwrap();
    (delivery, server, public)
}

fn final_body(rid: &str, text: &str) -> String {
    serde_json::json!({
        "rid": rid, "status": "transcribed", "progress": 100,
        "sttResults": [{"transcript": text, "words": []}]
    })
    .to_string()
}

#[tokio::test]
async fn every_callback_is_written_down_before_it_is_answered_and_a_failed_write_is_503() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let inbox = Arc::new(Kept::default());
        let (delivery, _server, _) = rig(inbox.clone(), 64 << 10).await;
        let mut options = JobOptions::default();
        let ticket = delivery.prepare(&mut options).await.unwrap();
        let callback = options.callback.clone().unwrap();
        let (name, value) = callback.headers.iter().next().unwrap();
        let http = reqwest::Client::new();
        let json = ("content-type", "application/json");
        let progress = r#"{"rid":"r-1","status":"transcribing","progress":40}"#;

        // No credential: refused, and not written down.
        let (status, _) = post(&http, &callback.url, &[json], progress).await;
        assert_eq!(status, 401);
        assert!(inbox.entries.lock().unwrap().is_empty());

        let (status, _) = post(&http, &callback.url, &[json, (name, value)], progress).await;
        assert_eq!(status, 200);
        let (status, _) = post(&http, &callback.url, &[json, (name, value)], "{not json").await;
        assert_eq!(status, 400);
        {
            let entries = inbox.entries.lock().unwrap();
            assert_eq!(entries.len(), 2, "{entries:?}");
            assert_eq!(entries[0].status.as_deref(), Some("transcribing"));
            assert_eq!(entries[0].progress, Some(40));
            assert_eq!(entries[0].rid.as_deref(), Some("r-1"));
            assert_eq!(
                (entries[0].answer_code, entries[0].answer.as_str()),
                (200, "accepted")
            );
            assert_eq!(entries[0].body, progress);
            assert_eq!(
                (entries[1].answer_code, entries[1].answer.as_str()),
                (400, "malformed")
            );
            let all = format!("{entries:?}");
            assert!(!all.contains(value.as_str()), "never the credential: {all}");
            assert_eq!(Some(entries[0].job_key.as_str()), ticket.job_key());
        }

        // The inbox cannot write: the sender is told to retry, whatever the body was.
        inbox.failing.store(true, std::sync::atomic::Ordering::SeqCst);
        let answer = http
            .post(&callback.url)
            .header("content-type", "application/json")
            .header(name, value)
            .body(r#"{"rid":"r-1","status":"transcribing","progress":60}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 503);
        assert!(answer.headers().contains_key("retry-after"));
        inbox.failing.store(false, std::sync::atomic::Ordering::SeqCst);
        let (status, _) = post(
            &http,
            &callback.url,
            &[json, (name, value)],
            final_body("r-1", "hello"),
        )
        .await;
        assert_eq!(status, 200);
        let outcome = ticket.wait(Rid::new("r-1"), &IgnoreProgress).await.unwrap();
        assert_eq!(outcome.transcript().as_deref(), Some("hello"));
        assert_eq!(inbox.entries.lock().unwrap().len(), 3);
    })
    .await
    .expect("within the deadline");
}

#[tokio::test]
async fn a_written_down_final_replayed_moves_a_waiting_job_once() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let inbox = Arc::new(Kept::default());
        let (delivery, _server, _) = rig(inbox.clone(), 64 << 10).await;
        let receiver = delivery.receiver();
        let mut options = JobOptions::default();
        let ticket = delivery.prepare(&mut options).await.unwrap();
        let key = ticket.job_key().unwrap().to_owned();
        // As a restarted service has it: the final in its inbox, the job still waiting.
        let entry = InboxEntry::new(
            &key,
            final_body("r-2", "replayed").as_bytes(),
            64 << 10,
            200,
            "accepted",
        );
        assert_eq!(receiver.replay(&entry).await.unwrap(), "accepted");
        let outcome = ticket.wait(Rid::new("r-2"), &IgnoreProgress).await.unwrap();
        assert!(matches!(&outcome, Outcome::Transcript { .. }));
        assert_eq!(outcome.transcript().as_deref(), Some("replayed"));
        // Again: the job is no longer waited for.
        assert_eq!(receiver.replay(&entry).await.unwrap(), "ignored");

        // A key this receiver never minted, and a body that is no callback.
        let forged = InboxEntry::new("not-a-key", b"{}", 1024, 200, "accepted");
        assert!(matches!(
            receiver.replay(&forged).await,
            Err(ReplayError::UnknownKey)
        ));
        let mut options = JobOptions::default();
        let other = delivery.prepare(&mut options).await.unwrap();
        let junk = InboxEntry::new(other.job_key().unwrap(), b"[1,2]", 1024, 400, "malformed");
        assert!(matches!(
            receiver.replay(&junk).await,
            Err(ReplayError::Malformed(_))
        ));
        // A final cut at the inbox's cap cannot be trusted whole.
        let mut cut = InboxEntry::new(
            other.job_key().unwrap(),
            final_body("r-3", &"a".repeat(500)).as_bytes(),
            100,
            200,
            "accepted",
        );
        assert!(cut.truncated);
        cut.status = Some("transcribed".to_owned());
        assert!(matches!(receiver.replay(&cut).await, Err(ReplayError::Truncated)));
        // A cut progress body is replayed from what was read of it when it arrived.
        let mut progress = InboxEntry::new(other.job_key().unwrap(), &[b'{'; 300], 100, 200, "accepted");
        (progress.status, progress.progress) = (Some("transcribing".to_owned()), Some(30));
        assert_eq!(receiver.replay(&progress).await.unwrap(), "accepted");
        assert_eq!(receiver.replay(&progress).await.unwrap(), "stale");
    })
    .await
    .expect("within the deadline");
}
