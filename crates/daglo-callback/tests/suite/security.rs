//! Forged, malformed and hostile callbacks are rejected and change nothing.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use daglo_callback::{
    CallbackAuth, CallbackConfig, CallbackDelivery, FinalCallbacks, InMemoryRegistry, JobKey, JobRegistry,
    JobView, Secret,
};
use daglo_core::{IgnoreProgress, JobOptions, Outcome, ResultDelivery, Rid, Ticket};
use serde_json::json;

const JSON: (&str, &str) = ("content-type", "application/json");

fn final_body(text: &str) -> String {
    json!({"status": "transcribed", "sttResults": [{"transcript": text}]}).to_string()
}

/// A delivery whose registry the test can inspect, served on loopback.
struct Receiver {
    registry: Arc<InMemoryRegistry>,
    callbacks: CallbackDelivery,
    http: reqwest::Client,
    base: String,
    _server: daglo_callback::CallbackServer,
}

struct Job {
    prepared: Box<dyn Ticket>,
    url: String,
    header: (String, String),
}

async fn receiver(configure: impl FnOnce(CallbackConfig) -> CallbackConfig) -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/hooks", listener.local_addr().unwrap());
    let registry = Arc::new(InMemoryRegistry::default());
    let callbacks =
        // These tests drive the state machine with hand-made bodies, so final bodies are taken as
        // sent; confirmation by the service is tested against the emulator.
        CallbackDelivery::with_registry(
            support::unused_client(),
            configure(CallbackConfig::new(&base).unwrap().finals(FinalCallbacks::TrustBody)),
            registry.clone(),
        )
            .unwrap();
    let server = callbacks.serve(listener).unwrap();
    Receiver {
        registry,
        callbacks,
        http: reqwest::Client::new(),
        base,
        _server: server,
    }
}

impl Receiver {
    async fn prepare(&self) -> Job {
        let mut options = JobOptions::default();
        let prepared = self.callbacks.prepare(&mut options).await.unwrap();
        let (url, name, value) = support::Rig::credential(&options);
        Job {
            prepared,
            url,
            header: (name, value),
        }
    }

    async fn view(&self, job: &Job) -> JobView {
        let key = JobKey::new(job.prepared.job_key().unwrap());
        self.registry
            .subscribe(&key)
            .await
            .unwrap()
            .unwrap()
            .borrow()
            .clone()
    }

    async fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> (u16, serde_json::Value) {
        support::post(&self.http, url, headers, body).await
    }

    async fn post_as(&self, job: &Job, body: impl Into<reqwest::Body>) -> (u16, serde_json::Value) {
        self.post(
            &job.url,
            &[(job.header.0.as_str(), job.header.1.as_str()), JSON],
            body,
        )
        .await
    }
}

#[tokio::test]
async fn forged_callbacks_are_401_and_change_nothing() {
    let r = receiver(|c| c).await;
    let job = r.prepare().await;
    let other = r.prepare().await;
    let forged = final_body("FORGED");
    let truncated = &job.header.1[..job.header.1.len() - 2];
    let random = format!("Bearer {}", "A".repeat(43));
    let huge = format!("Bearer {}", "A".repeat(1 << 20));
    let attempts: Vec<Vec<(&str, &str)>> = vec![
        vec![JSON],
        vec![JSON, ("authorization", random.as_str())],
        vec![JSON, ("authorization", other.header.1.as_str())],
        vec![JSON, ("authorization", truncated)],
        vec![JSON, ("authorization", "Basic dXNlcjpwYXNz")],
        vec![JSON, ("x-forwarded-authorization", job.header.1.as_str())],
    ];
    for headers in attempts {
        let (status, body) = r.post(&job.url, &headers, forged.clone()).await;
        assert_eq!(status, 401, "{headers:?}");
        assert!(body["error"].is_string());
    }
    // A megabyte-long header never reaches a comparison: the server refuses it outright.
    let answer = r
        .http
        .post(&job.url)
        .header("authorization", huge)
        .header("content-type", "application/json")
        .body(forged.clone())
        .send()
        .await;
    assert!(answer.map(|a| a.status().is_client_error()).unwrap_or(true));
    assert_eq!(r.view(&job).await, JobView::default(), "nothing changed");

    // The real credential still works, and the real body wins.
    let (status, _) = r.post_as(&job, final_body("the real words")).await;
    assert_eq!(status, 200);
    let outcome = job.prepared.wait(Rid::new("r-1"), &IgnoreProgress).await.unwrap();
    assert_eq!(outcome.transcript().as_deref(), Some("the real words"));
}

#[tokio::test]
async fn jwt_credentials_expire_and_bind_to_their_job() {
    let secret = Secret::new("a-test-secret-that-is-32-bytes-long!");
    let r = receiver(|c| {
        c.auth(CallbackAuth::Jwt {
            secret: secret.clone(),
            ttl: Duration::from_secs(600),
        })
    })
    .await;
    let job = r.prepare().await;
    let other = r.prepare().await;
    assert!(job.header.1.starts_with("Bearer ey"), "a JWT");

    // Another job's valid JWT.
    let (status, _) = r
        .post(
            &job.url,
            &[JSON, ("authorization", other.header.1.as_str())],
            final_body("x"),
        )
        .await;
    assert_eq!(status, 401);
    // An expired JWT for this very job, signed with the right secret.
    #[derive(serde::Serialize)]
    struct Claims<'a> {
        jti: &'a str,
        exp: u64,
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Made by hand (RFC 7515 compact form), not by the crate under test.
    let b64 = |bytes: &[u8]| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    };
    let claims = serde_json::to_vec(&Claims {
        jti: job.prepared.job_key().unwrap(),
        exp: now - 5,
    })
    .unwrap();
    let signed = format!("{}.{}", b64(br#"{"alg":"HS256","typ":"JWT"}"#), b64(&claims));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.expose().as_bytes());
    let expired = format!(
        "{signed}.{}",
        b64(ring::hmac::sign(&key, signed.as_bytes()).as_ref())
    );
    let expired = format!("Bearer {expired}");
    let (status, _) = r
        .post(
            &job.url,
            &[JSON, ("authorization", expired.as_str())],
            final_body("x"),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(r.view(&job).await, JobView::default());
    let (status, _) = r.post_as(&job, final_body("ok")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_static_header_is_checked_too() {
    let r = receiver(|c| {
        c.auth(CallbackAuth::StaticHeader {
            name: "x-hook-secret".into(),
            value: Secret::new("shared-value"),
        })
    })
    .await;
    let job = r.prepare().await;
    assert_eq!(
        job.header,
        ("x-hook-secret".to_owned(), "shared-value".to_owned())
    );
    let (status, _) = r
        .post(
            &job.url,
            &[JSON, ("x-hook-secret", "shared-valuf")],
            final_body("x"),
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = r.post_as(&job, final_body("x")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn bad_requests_get_the_documented_answers() {
    let r = receiver(|c| c.max_body_bytes(1024)).await;
    let job = r.prepare().await;
    let auth = (job.header.0.as_str(), job.header.1.as_str());

    let (status, _) = r
        .post(&job.url, &[auth, ("content-type", "text/plain")], final_body("x"))
        .await;
    assert_eq!(status, 415);
    let (status, _) = r.post(&job.url, &[auth], final_body("x")).await;
    assert_eq!(status, 415, "no content type");
    let (status, _) = r.post_as(&job, "x".repeat(2048)).await;
    assert_eq!(status, 413, "declared length over the cap");
    // Chunked, no declared length: reading stops at the cap.
    let chunks = futures_util::stream::iter((0..64).map(|_| Ok::<_, std::io::Error>(vec![b' '; 512])));
    let (status, _) = r.post_as(&job, reqwest::Body::wrap_stream(chunks)).await;
    assert_eq!(status, 413, "streamed over the cap");
    let (status, body) = r.post_as(&job, "{\"status\": ").await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("malformed"), "{body}");
    let (status, body) = r.post_as(&job, r#"{"status": 42, "progress": 5}"#).await;
    assert_eq!(status, 400, "a status that is not text cannot be read");
    assert!(body["error"].as_str().unwrap().contains("status"), "{body}");

    let (status, _) = r
        .post(
            &format!("{}/{}", r.base, "A".repeat(43)),
            &[auth, JSON],
            final_body("x"),
        )
        .await;
    assert_eq!(status, 404, "a key this receiver never minted");
    // A key's shape (64 characters), never minted; and the job's own key with one character
    // of its tag changed: refused, whether the receiver checks tags before or after looking a
    // key up (`JobRegistry::lookup_now`).
    let (status, _) = r
        .post(
            &format!("{}/{}", r.base, "A".repeat(64)),
            &[auth, JSON],
            final_body("x"),
        )
        .await;
    assert_eq!(status, 404, "a key's shape, never minted");
    let (base, key) = job.url.rsplit_once('/').unwrap();
    let mut tampered = key.as_bytes().to_vec();
    tampered[30] = if tampered[30] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{base}/{}", String::from_utf8(tampered).unwrap());
    let (status, _) = r.post(&tampered, &[auth, JSON], final_body("x")).await;
    assert_eq!(status, 404, "a minted key with its tag changed");
    let (status, _) = r
        .post(&format!("{}/nope", r.base), &[auth, JSON], final_body("x"))
        .await;
    assert_eq!(status, 404);
    let answer = r.http.get(&job.url).send().await.unwrap();
    assert_eq!(answer.status(), 405);
    assert_eq!(r.view(&job).await, JobView::default(), "nothing changed");
}

#[tokio::test]
async fn duplicates_reorders_and_rid_conflicts() {
    let r = receiver(|c| c).await;
    let job = r.prepare().await;
    // The submit answer named the rid: from now on a body naming another is refused.
    let key = JobKey::new(job.prepared.job_key().unwrap());
    assert_eq!(
        r.registry.set_rid(&key, Rid::new("r-1")).await.unwrap(),
        Some(Ok(()))
    );
    let progress = |status: &str, percent: u32, rid: &str| {
        json!({"rid": rid, "status": status, "progress": percent}).to_string()
    };
    assert_eq!(
        r.post_as(&job, progress("transcribing", 30, "r-1")).await.1["status"],
        "accepted"
    );
    let (status, body) = r.post_as(&job, progress("transcribing", 40, "r-2")).await;
    assert_eq!(
        (status, body["error"].is_string()),
        (400, true),
        "another job's rid"
    );
    assert_eq!(
        r.post_as(&job, progress("uploaded", 5, "r-1")).await.1["status"],
        "stale"
    );
    assert_eq!(r.post_as(&job, final_body("first")).await.1["status"], "accepted");
    let (status, body) = r.post_as(&job, final_body("second")).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("duplicate")));
    assert_eq!(
        r.post_as(&job, progress("post_processing", 90, "r-1")).await.1["status"],
        "stale"
    );
    let view = r.view(&job).await;
    assert_eq!(view.rid, Some(Rid::new("r-1")), "the submit answer's");
    let outcome = job.prepared.wait(Rid::new("r-1"), &IgnoreProgress).await.unwrap();
    assert_eq!(outcome.transcript().as_deref(), Some("first"));
}

#[tokio::test]
async fn dropped_waiters_free_their_slot_and_later_callbacks_answer_200() {
    let r = receiver(|c| c).await;
    let job = r.prepare().await;
    assert_eq!(r.callbacks.registered().await.unwrap(), 1);
    let (url, header) = (job.url.clone(), job.header.clone());
    drop(job.prepared);
    assert_eq!(r.callbacks.registered().await.unwrap(), 0);
    let (status, body) = r
        .post(
            &url,
            &[(header.0.as_str(), header.1.as_str()), JSON],
            final_body("late"),
        )
        .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ignored")));
    assert_eq!(
        r.callbacks.registered().await.unwrap(),
        0,
        "nothing stored for it"
    );

    // A cancelled wait frees the slot too.
    let job = r.prepare().await;
    let waiting = tokio::spawn(async move { job.prepared.wait(Rid::new("r"), &IgnoreProgress).await });
    waiting.abort();
    assert!(waiting.await.unwrap_err().is_cancelled());
    assert_eq!(r.callbacks.registered().await.unwrap(), 0);
}

#[tokio::test(start_paused = true)]
async fn registrations_expire_after_their_time_to_live() {
    let config = CallbackConfig::new("https://hooks.example.com/daglo")
        .unwrap()
        .job_ttl(Duration::from_secs(60));
    let callbacks = CallbackDelivery::new(support::unused_client(), config).unwrap();
    let mut options = JobOptions::default();
    let prepared = callbacks.prepare(&mut options).await.unwrap();
    let url = &options.callback.as_ref().unwrap().url;
    assert!(url.starts_with("https://hooks.example.com/daglo/"), "{url}");
    assert_eq!(callbacks.registered().await.unwrap(), 1);
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(
        callbacks.registered().await.unwrap(),
        0,
        "expired while nobody waited"
    );
    let outcome = prepared.wait(Rid::new("r"), &IgnoreProgress).await.unwrap();
    assert!(matches!(outcome, Outcome::GaveUp { .. }), "{outcome:?}");
}

/// A request body that only says whether it was read: it never yields a frame.
struct Untouched(Arc<std::sync::atomic::AtomicBool>);

impl http_body::Body for Untouched {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        std::task::Poll::Pending
    }
}

#[tokio::test]
async fn what_the_head_decides_is_answered_at_once_without_reading_the_body() {
    use futures_util::FutureExt;
    use tower::Service;

    let r = receiver(|c| c.max_body_bytes(1024)).await;
    let job = r.prepare().await;
    let other = r.prepare().await;
    let path = |url: &str| url::Url::parse(url).unwrap().path().to_owned();
    let credential = (job.header.0.as_str(), job.header.1.as_str());
    let forged = (job.header.0.as_str(), other.header.1.as_str());
    let never_minted = format!("{}/{}", path(&r.base), "A".repeat(64));
    // What is wrong, the path, the headers, the answer.
    type Case<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, u16);
    let cases: Vec<Case<'_>> = vec![
        ("forged credential", path(&job.url), vec![forged, JSON], 401),
        ("no credential", path(&job.url), vec![JSON], 401),
        ("a key never minted", never_minted, vec![credential, JSON], 404),
        (
            "not JSON",
            path(&job.url),
            vec![credential, ("content-type", "text/plain")],
            415,
        ),
        (
            "declared over the cap",
            path(&job.url),
            vec![credential, JSON, ("content-length", "4096")],
            413,
        ),
    ];
    let mut receiver = r.callbacks.receiver();
    let mut call = |path: &str, headers: &[(&str, &str)]| {
        let read = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut request = http::Request::post(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let answer = receiver
            .call(request.body(Untouched(read.clone())).unwrap())
            .now_or_never()
            .map(|answer| answer.unwrap().status().as_u16());
        (answer, read.load(std::sync::atomic::Ordering::SeqCst))
    };
    for (what, path, headers, status) in &cases {
        let (answer, read) = call(path, headers);
        assert_eq!(answer, Some(*status), "{what}: answered at once");
        assert!(!read, "{what}: the body was read");
    }
    let (answer, read) = call(&path(&job.url), &[credential, JSON, ("content-length", "40")]);
    assert_eq!(answer, None, "a valid callback waits for its body");
    assert!(read, "a valid callback's body is read");
    // A job no longer waited for, with its own credential: `ignored` at once.
    drop(job.prepared);
    let (answer, read) = call(&path(&job.url), &[credential, JSON]);
    assert_eq!(answer, Some(200), "a job no longer waited for");
    assert!(!read, "a job no longer waited for: the body was read");
    assert_eq!(
        r.registry.count().await.unwrap(),
        1,
        "only the other job is waited for"
    );
}
