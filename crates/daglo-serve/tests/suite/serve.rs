//! `daglo serve` as an operator runs it: the binary (`daglo-serve`, what `daglo serve` runs) with a config file, against an emulator
//! that outlives it; its HTTP API used as any language would (reqwest here); SIGTERM and
//! SIGKILL for real.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::*;
use daglo::sim::{SimConfig, Simulator};
use serde_json::{Value, json};

pub(crate) const KEY: &str = "sk-test-0123456789abcdef";

/// The backends a test proxy forwards to, set once the services say where they listen.
pub(crate) type Backends = std::sync::Arc<std::sync::Mutex<Vec<std::net::SocketAddr>>>;

/// A running `daglo serve`, killed when dropped.
pub(crate) struct Serve {
    pub(crate) child: tokio::process::Child,
    pub(crate) base: String,
    pub(crate) addr: std::net::SocketAddr,
}

impl Serve {
    /// Starts the binary on `config` (written to `dir/daglo.toml`) and waits until it is ready.
    pub(crate) async fn start(sim: &Simulator, dir: &Path, config: &str, env: &[(&str, &str)]) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let file = dir.join("daglo.toml");
        std::fs::write(&file, config).unwrap();
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_daglo-serve"));
        command
            .args(["--config", file.to_str().unwrap()])
            .env("DAGLO_API_TOKEN", sim.token())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stderr));
        let base = loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("the service says where it listens");
            if let Some(url) = line.strip_prefix("daglo serve: listening on ") {
                break url.to_owned();
            }
        };
        // The rest of its stderr, drained so it never blocks.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let addr = base.trim_start_matches("http://").parse().unwrap();
        Self { child, base, addr }
    }
}

/// A configuration on a port of its own (`127.0.0.1:0`), reached by Daglo at `public`.
pub(crate) fn config(sim: &Simulator, public: &str, data: &Path, strategy: &str) -> String {
    format!(
        "listen = \"127.0.0.1:0\"\npublic_url = \"{public}\"\nbase_url = \"{}\"\n\
         data_dir = \"{}\"\napi_keys = [\"{KEY}\"]\nstrategy = \"{strategy}\"\ngrace_secs = 5\n",
        sim.base_url(),
        data.display()
    )
}

pub(crate) fn dir(name: &str) -> PathBuf {
    let dir = temp(&format!("serve-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

pub(crate) async fn wait_finished(http: &reqwest::Client, base: &str, id: &str) -> Value {
    loop {
        let job: Value = http
            .get(format!("{base}/v1/jobs/{id}"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if job["state"] == "finished" {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_api_submits_follows_and_serves_transcripts() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let sim = Simulator::start(SimConfig::default().processing_time(Duration::from_millis(800)))
            .await
            .unwrap();
        let dir = dir("api");
        // Daglo reaches the service through a proxy that learns its address once it listens.
        let backends = Backends::default();
        let proxy = round_robin(backends.clone()).await;
        let serve = Serve::start(
            &sim,
            &dir,
            &config(&sim, &format!("http://{proxy}"), &dir.join("data"), "hybrid"),
            &[("DAGLO_MAX_UPLOAD_BYTES", "100000")],
        )
        .await;
        backends.lock().unwrap().push(serve.addr);
        let base = serve.base.clone();
        let http = reqwest::Client::new();
        let post = |body: Value| http.post(format!("{base}/v1/jobs")).bearer_auth(KEY).json(&body);

        // Refusals, each with its status and a JSON error, before anything is submitted.
        let anonymous = http
            .post(format!("{base}/v1/jobs"))
            .json(&json!({"url": "https://a.example/a.wav"}))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), 401);
        assert!(anonymous.json::<Value>().await.unwrap()["error"].is_string());
        let wrong = http
            .post(format!("{base}/v1/jobs"))
            .bearer_auth("sk-test-not-the-key-at-all")
            .json(&json!({"url": "https://a.example/a.wav"}))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401);
        let text = http
            .post(format!("{base}/v1/jobs"))
            .bearer_auth(KEY)
            .body("url=x")
            .send()
            .await
            .unwrap();
        assert_eq!(text.status(), 415);
        let invalid = post(json!({"url": "https://a.example/a.wav", "options": {"sttConfig": {"keywordBoost": {"enable": true, "keywords": ["a"], "boost": 99}}}}))
            .send()
            .await
            .unwrap();
        assert_eq!(invalid.status(), 422, "{}", invalid.text().await.unwrap());
        let unknown = post(json!({"url": "https://a.example/a.wav", "colour": "blue"})).send().await.unwrap();
        assert_eq!(unknown.status(), 422);
        let big = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(vec![1_u8; 200_000]).file_name("big.wav"),
        );
        let too_large = http
            .post(format!("{base}/v1/jobs"))
            .bearer_auth(KEY)
            .multipart(big)
            .send()
            .await
            .unwrap();
        assert_eq!(too_large.status(), 413);
        assert!(sim.jobs().is_empty(), "nothing was submitted by a refused request");

        // A job by URL, idempotent by key.
        let created = post(json!({"url": "https://a.example/a.wav", "key": "meeting-1", "labels": {"team": "sales"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        let job: Value = created.json().await.unwrap();
        for field in ["id", "key", "labels", "state", "status", "progress", "eta_secs", "rid", "created_at", "updated_at"] {
            assert!(job.get(field).is_some(), "{field} in {job}");
        }
        let id = job["id"].as_str().unwrap().to_owned();
        let again = post(json!({"url": "https://a.example/a.wav", "key": "meeting-1", "labels": {"team": "sales"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 200);
        assert_eq!(again.json::<Value>().await.unwrap()["id"], job["id"]);
        // The same key with another request is a conflict naming the job, never the old job.
        let other = post(json!({"url": "https://a.example/b.wav", "key": "meeting-1", "labels": {"team": "sales"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(other.status(), 409);
        let conflict: Value = other.json().await.unwrap();
        assert_eq!(conflict["code"], "key_reused", "{conflict}");
        assert_eq!(conflict["job_id"], job["id"], "{conflict}");
        assert!(conflict["error"].as_str().unwrap().contains("input"), "{conflict}");
        assert_eq!(sim.jobs().len(), 1, "the same key is never a second submit");

        // Its events, to the end.
        let events = http
            .get(format!("{base}/v1/jobs/{id}/events"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(events.headers()["content-type"], "text/event-stream");
        let stream = events.text().await.unwrap();
        assert!(stream.contains("event: ended"), "{stream}");
        let finished = wait_finished(&http, &base, &id).await;
        assert_eq!(finished["progress"], 100);
        let transcript = http
            .get(format!("{base}/v1/jobs/{id}/transcript"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(transcript.status(), 200);
        assert!(transcript.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
        assert!(!transcript.text().await.unwrap().is_empty());
        for (format, kind) in [
            ("json", "application/json"),
            ("srt", "application/x-subrip"),
            ("vtt", "text/vtt"),
        ] {
            let answer = http
                .get(format!("{base}/v1/jobs/{id}/transcript?format={format}"))
                .bearer_auth(KEY)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 200, "{format}");
            assert!(answer.headers()["content-type"].to_str().unwrap().starts_with(kind), "{format}");
            if format == "vtt" {
                let vtt = answer.text().await.unwrap();
                assert!(vtt.starts_with("WEBVTT\n\n1\n") && vtt.contains(" --> "), "{vtt}");
            }
        }

        // An upload, streamed to a file and on to the service.
        let audio = std::fs::read(SAMPLE).unwrap();
        let form = reqwest::multipart::Form::new()
            .part("file", reqwest::multipart::Part::bytes(audio[..60_000].to_vec()).file_name("standup.wav"))
            .text("key", "upload-1")
            .text("labels", r#"{"team":"ops"}"#);
        let uploaded = http
            .post(format!("{base}/v1/jobs"))
            .bearer_auth(KEY)
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(uploaded.status(), 201, "{}", uploaded.text().await.unwrap());
        assert_eq!(sim.jobs().len(), 2);

        // Lists, filtered and paged.
        let sales: Value = http
            .get(format!("{base}/v1/jobs?label=team=sales"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(sales["jobs"].as_array().unwrap().len(), 1);
        let first: Value = http
            .get(format!("{base}/v1/jobs?limit=1"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let cursor = first["next_cursor"].as_str().expect("a second page").to_owned();
        let second: Value = http
            .get(format!("{base}/v1/jobs?limit=1&cursor={cursor}"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(second["jobs"].as_array().unwrap().len(), 1);
        assert!(second["next_cursor"].is_null());
        assert_ne!(first["jobs"][0]["id"], second["jobs"][0]["id"]);
        let missing = http
            .get(format!("{base}/v1/jobs/job_00000000000000000000000000"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 404);

        // Operations.
        assert_eq!(http.get(format!("{base}/healthz")).send().await.unwrap().status(), 200);
        assert_eq!(http.get(format!("{base}/readyz")).send().await.unwrap().status(), 200);
        let metrics = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(metrics.contains("daglo_requests_total"), "{metrics}");
        assert!(!metrics.contains(KEY) && !metrics.contains(sim.token()));
        drop(serve);
        let _ = std::fs::remove_dir_all(dir);
    })
    .await
    .expect("within the deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_job_then_restart_resumes_it_and_takes_its_callbacks() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let sim = Simulator::start(SimConfig::default().processing_time(Duration::from_secs(4)))
            .await
            .unwrap();
        let dir = dir("restart");
        let backends = Backends::default();
        let proxy = round_robin(backends.clone()).await;
        let config = config(&sim, &format!("http://{proxy}"), &dir.join("data"), "callback");
        let mut serve = Serve::start(&sim, &dir, &config, &[]).await;
        backends.lock().unwrap().push(serve.addr);
        let http = reqwest::Client::new();
        let job: Value = http
            .post(format!("{}/v1/jobs", serve.base))
            .bearer_auth(KEY)
            .json(&json!({"url": "https://a.example/a.wav", "key": "kill-me"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = job["id"].as_str().unwrap().to_owned();
        serve.child.kill().await.unwrap(); // SIGKILL: no drain, no goodbye
        let restarted = Serve::start(&sim, &dir, &config, &[]).await;
        *backends.lock().unwrap() = vec![restarted.addr];
        let finished = wait_finished(&http, &restarted.base, &id).await;
        assert_eq!(finished["outcome"], "transcript");
        let rid = daglo::Rid::new(finished["rid"].as_str().unwrap());
        sim.callbacks_done(&rid).await;
        let finals: Vec<_> = sim
            .callback_log()
            .into_iter()
            .filter(|c| c.rid == rid && c.is_final)
            .collect();
        assert!(
            finals.iter().any(|c| c.answer == Ok(200)),
            "the final callback, after the restart, was accepted: {finals:?}"
        );
        assert_eq!(sim.jobs().len(), 1, "resumed, not submitted again");
        let transcript = http
            .get(format!("{}/v1/jobs/{id}/transcript", restarted.base))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(transcript.status(), 200);
        drop(restarted);
        let _ = std::fs::remove_dir_all(dir);
    })
    .await
    .expect("within the deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_exits_within_the_grace() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let sim = Simulator::start(SimConfig::default()).await.unwrap();
        let dir = dir("term");
        let mut serve = Serve::start(
            &sim,
            &dir,
            &config(&sim, "http://127.0.0.1:9", &dir.join("data"), "polling"),
            &[],
        )
        .await;
        let pid = serve.child.id().unwrap();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exited = tokio::time::timeout(Duration::from_secs(10), serve.child.wait())
            .await
            .expect("exits within the grace")
            .unwrap();
        assert_eq!(exited.code(), Some(0));
        let _ = std::fs::remove_dir_all(dir);
    })
    .await
    .expect("within the deadline");
}

#[test]
fn a_bad_configuration_is_exit_2_naming_the_key() {
    let dir = dir("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("daglo.toml");
    for (toml, key) in [
        (
            "listen = \"127.0.0.1:0\"\napi_keys = []\nstrategy = \"polling\"\n",
            "api_keys",
        ),
        (
            "listen = \"127.0.0.1:0\"\napi_keys = [\"sk-test-0123456789abcdef\"]\nstrategy = \"hybrid\"\n",
            "public_url",
        ),
        (
            "listen = \"127.0.0.1:0\"\napi_keys = [\"sk-test-0123456789abcdef\"]\nstrategy = \"carrier-pigeon\"\n",
            "strategy",
        ),
        ("lisen = \"127.0.0.1:0\"\n", "lisen"),
    ] {
        std::fs::write(&file, toml).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_daglo-serve"))
            .args(["--config", file.to_str().unwrap()])
            .env("DAGLO_API_TOKEN", "t")
            .env("DAGLO_DATA_DIR", dir.join("data"))
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(key), "{key}: {stderr}");
        assert!(!stderr.contains("sk-test-0123456789abcdef"), "{stderr}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// One answer, as the OpenAPI checker reads it.
struct Captured {
    method: String,
    path: String,
    status: u16,
    content_type: String,
    body: Value,
}

impl Captured {
    fn json(&self) -> Value {
        json!({
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "content_type": self.content_type,
            "body": self.body,
        })
    }
}

async fn capture(out: &mut Vec<Captured>, method: &str, path: &str, answer: reqwest::Response) -> Value {
    let status = answer.status().as_u16();
    let content_type = answer
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = answer.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    out.push(Captured {
        method: method.to_owned(),
        path: path.to_owned(),
        status,
        content_type,
        body: body.clone(),
    });
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_server_answers_as_its_openapi_document_says() {
    let Some(python) = python_with("jsonschema, yaml, prometheus_client", "the OpenAPI check") else {
        return;
    };
    let mut captured = Vec::new();
    tokio::time::timeout(Duration::from_secs(120), async {
        let sim = Simulator::start(SimConfig::default().processing_time(Duration::from_millis(500)))
            .await
            .unwrap();
        let dir = dir("openapi");
        let serve = Serve::start(
            &sim,
            &dir,
            &config(&sim, "http://127.0.0.1:9", &dir.join("data"), "polling"),
            &[],
        )
        .await;
        let base = &serve.base;
        let http = reqwest::Client::new();
        let c = &mut captured;
        let jobs = format!("{base}/v1/jobs");
        let answer = http
            .post(&jobs)
            .json(&json!({"url": "https://a.example/a.wav"}))
            .send()
            .await
            .unwrap();
        capture(c, "POST", "/v1/jobs", answer).await;
        let answer = http.post(&jobs).bearer_auth(KEY).body("x").send().await.unwrap();
        capture(c, "POST", "/v1/jobs", answer).await;
        let answer = http
            .post(&jobs)
            .bearer_auth(KEY)
            .json(&json!({"key": "no-url"}))
            .send()
            .await
            .unwrap();
        capture(c, "POST", "/v1/jobs", answer).await;
        let body = json!({"url": "https://a.example/a.wav", "key": "doc-1", "labels": {"team": "docs"}});
        let answer = http
            .post(&jobs)
            .bearer_auth(KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        let job = capture(c, "POST", "/v1/jobs", answer).await;
        let answer = http
            .post(&jobs)
            .bearer_auth(KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        capture(c, "POST", "/v1/jobs", answer).await;
        let id = job["id"].as_str().unwrap().to_owned();
        let answer = http
            .get(format!("{jobs}/{id}/transcript"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        capture(c, "GET", "/v1/jobs/{id}/transcript", answer).await;
        wait_finished(&http, base, &id).await;
        for query in ["", "?format=json", "?format=srt", "?format=vtt", "?format=pdf"] {
            let answer = http
                .get(format!("{jobs}/{id}/transcript{query}"))
                .bearer_auth(KEY)
                .send()
                .await
                .unwrap();
            capture(c, "GET", "/v1/jobs/{id}/transcript", answer).await;
        }
        let answer = http
            .get(format!("{jobs}/{id}"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        capture(c, "GET", "/v1/jobs/{id}", answer).await;
        let answer = http
            .get(format!("{jobs}/job_00000000000000000000000000"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        capture(c, "GET", "/v1/jobs/{id}", answer).await;
        let answer = http
            .get(format!("{jobs}/{id}/events"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        capture(c, "GET", "/v1/jobs/{id}/events", answer).await;
        // The inbox, the deliveries and the page (this service polls: no callbacks, no webhook).
        for (method, path) in [
            ("GET", "/v1/jobs/{id}/callbacks"),
            ("POST", "/v1/jobs/{id}/callbacks/replay"),
            ("GET", "/v1/jobs/{id}/webhooks"),
            ("POST", "/v1/jobs/{id}/webhook/retry"),
        ] {
            let url = format!("{base}{}", path.replace("{id}", &id));
            let request = if method == "GET" {
                http.get(url)
            } else {
                http.post(url)
            };
            let answer = request.bearer_auth(KEY).send().await.unwrap();
            capture(c, method, path, answer).await;
        }
        let answer = http.get(format!("{base}/")).send().await.unwrap();
        capture(c, "GET", "/", answer).await;
        for query in ["?state=finished&label=team=docs&limit=10", "?state=sleeping"] {
            let answer = http
                .get(format!("{jobs}{query}"))
                .bearer_auth(KEY)
                .send()
                .await
                .unwrap();
            capture(c, "GET", "/v1/jobs", answer).await;
        }
        let answer = http.get(&jobs).send().await.unwrap();
        capture(c, "GET", "/v1/jobs", answer).await;
        for path in ["/healthz", "/readyz", "/metrics"] {
            let answer = http.get(format!("{base}{path}")).send().await.unwrap();
            capture(c, "GET", path, answer).await;
        }
        // The metrics, read by the Prometheus client library's own parser (prometheus-client).
        let python_for_metrics = python.clone();
        let url = format!("{base}/metrics");
        let parsed = tokio::task::spawn_blocking(move || {
            std::process::Command::new(python_for_metrics)
                .arg(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../scripts/parse_metrics.py"
                ))
                .arg(url)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(parsed.status.success(), "{}", text(&parsed.stderr));
        let samples = text(&parsed.stdout);
        assert!(
            samples
                .lines()
                .any(|l| l.contains("\"daglo_api_requests_total\"") && l.contains("\"/v1/jobs\"")),
            "the API's own metrics: {samples}"
        );
        assert!(samples.contains("\"daglo_submits_total\""), "{samples}");
        drop(serve);
        let _ = std::fs::remove_dir_all(dir);
    })
    .await
    .expect("within the deadline");
    let file = temp("serve-openapi-captured.json");
    let all: Vec<Value> = captured.iter().map(Captured::json).collect();
    std::fs::write(&file, serde_json::to_vec_pretty(&all).unwrap()).unwrap();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let out = std::process::Command::new(python)
        .arg(format!("{root}/crates/daglo-serve/scripts/check_serve_api.py"))
        .arg(format!("{root}/crates/daglo-serve/docs/serve-openapi.yaml"))
        .arg(&file)
        .output()
        .unwrap();
    let report = text(&out.stdout);
    assert!(out.status.success(), "{report}{}", text(&out.stderr));
    assert!(
        report.contains(&format!("{} passed, 0 failed", captured.len())),
        "{report}"
    );
    let _ = std::fs::remove_file(file);
}

/// A round-robin TCP proxy in front of `backends`: each connection goes to the next backend
/// that accepts it (a dead one is skipped), as a load balancer would.
pub(crate) async fn round_robin(backends: Backends) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let (backends, next) = (backends.clone(), next.clone());
            tokio::spawn(async move {
                let first = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let backends = backends.lock().unwrap().clone();
                for i in 0..backends.len() {
                    let backend = backends[(first + i) % backends.len()];
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(backend).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_redis_one_killed_mid_batch_finish_every_job_once() {
    // A Redis the service trusts with jobs: it keeps them across its restart.
    let aof = dir("replicas-aof");
    std::fs::create_dir_all(&aof).unwrap();
    let Some((redis, _guard)) = private_redis_with(
        "two_replicas_on_redis_…",
        &[
            "--appendonly",
            "yes",
            "--save",
            "",
            "--dir",
            aof.to_str().unwrap(),
        ],
    ) else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(240), async {
        // A sender that sends a refused callback again (Daglo may not: then the hybrid's
        // polling finds the outcome, later): the callbacks cut off by the kill reach the other
        // replica.
        let sim = Simulator::start(
            SimConfig::default()
                .processing_time(Duration::from_secs(3))
                .callback_retries(3),
        )
        .await
        .unwrap();
        let backends = Backends::default();
        let proxy = round_robin(backends.clone()).await;
        let root = dir("replicas");
        let config = |name: &str| {
            format!(
                "listen = \"127.0.0.1:0\"\npublic_url = \"http://{proxy}\"\nbase_url = \"{}\"\n\
                 data_dir = \"{}\"\napi_keys = [\"{KEY}\"]\nstrategy = \"hybrid\"\nredis_url = \"{redis}\"\n",
                sim.base_url(),
                root.join(name).display()
            )
        };
        let mut a = Serve::start(&sim, &root.join("a"), &config("a"), &[]).await;
        let b = Serve::start(&sim, &root.join("b"), &config("b"), &[]).await;
        *backends.lock().unwrap() = vec![a.addr, b.addr];
        let base = format!("http://{proxy}");
        // A connection per request, so the proxy spreads them.
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let mut ids = Vec::new();
        let started = std::time::Instant::now();
        for n in 0..100 {
            if n == 50 {
                a.child.kill().await.unwrap(); // one replica dies mid-batch, its jobs running
            }
            let answer = http
                .post(format!("{base}/v1/jobs"))
                .bearer_auth(KEY)
                .json(&json!({"url": format!("https://a.example/{n}.wav"), "key": format!("batch-{n}")}))
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 201, "{}", answer.text().await.unwrap());
            ids.push(
                answer.json::<Value>().await.unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        println!("100 submitted in {:?}", started.elapsed());
        let submitted = std::time::Instant::now();
        for id in &ids {
            wait_finished(&http, &base, id).await;
        }
        println!("all 100 finished {:?} after the last submit", submitted.elapsed());
        assert_eq!(
            sim.jobs().len(),
            100,
            "100 submits: none repeated by the replica that took over"
        );
        let submits = sim.stats().endpoint(daglo::sim::Endpoint::Submit);
        let status = sim.stats().endpoint(daglo::sim::Endpoint::Status);
        assert_eq!(
            submits.answered(429) + status.answered(429),
            0,
            "the shared budgets kept under the limit"
        );
        // Any replica answers any job: a new one, with nothing of its own, serves a transcript.
        let c = Serve::start(&sim, &root.join("c"), &config("c"), &[]).await;
        let answer = http
            .get(format!("{}/v1/jobs/{}/transcript", c.base, ids[0]))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        assert!(!answer.text().await.unwrap().is_empty());
        assert_eq!(sim.jobs().len(), 100);
        drop((b, c));
        let _ = std::fs::remove_dir_all(root);
    })
    .await
    .expect("within the deadline");
}

/// The interpreter `DAGLO_TEST_PYTHON` names (else `python3`) if it imports every module of
/// `modules`; in CI its absence fails the test, elsewhere it is skipped with a message.
pub(crate) fn python_with(modules: &str, test: &str) -> Option<PathBuf> {
    let candidate =
        std::env::var_os("DAGLO_TEST_PYTHON").map_or_else(|| PathBuf::from("python3"), PathBuf::from);
    let ok = std::process::Command::new(&candidate)
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|out| out.status.success());
    if ok {
        return Some(candidate);
    }
    let why = format!("{} cannot import {modules}", candidate.display());
    assert!(std::env::var_os("CI").is_none(), "CI must run {test}: {why}");
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
    None
}

/// A webhook receiver that verifies with the `standardwebhooks` package
/// (`scripts/webhook_receiver.py`): its port, and its report lines as they come.
async fn webhook_receiver(
    python: &Path,
    secrets: &[String],
    fail_first: u32,
) -> (
    tokio::process::Child,
    u16,
    tokio::sync::mpsc::UnboundedReceiver<Value>,
) {
    let mut child = tokio::process::Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/webhook_receiver.py"
        ))
        .arg(secrets.join(","))
        .arg(fail_first.to_string())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let first: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    let port = first["port"].as_u64().unwrap() as u16;
    let (send, receive) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(value) = serde_json::from_str::<Value>(&line) {
                let _ = send.send(value);
            }
        }
    });
    (child, port, receive)
}

async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    http.get(url)
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_as_standard_webhooks_retried_and_listed_on_the_job() {
    let Some(python) = python_with("standardwebhooks", "the webhook test") else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(120), async {
        // Long enough that the first poll (at 1.5-3 s) sees the job under way: progress events.
        let sim = Simulator::start(SimConfig::default().processing_time(Duration::from_secs(6)))
            .await
            .unwrap();
        // Two secrets, as during a rotation: every delivery carries a signature for each.
        let secrets = [
            daglo_serve::WebhookSecret::generate(),
            daglo_serve::WebhookSecret::generate(),
        ];
        let (_receiver, port, mut reports) = webhook_receiver(&python, &secrets, 1).await;
        let dir = dir("webhooks");
        // Polled: what is tested is the way out, and polling reports progress too (a callback
        // lost on a loaded machine would leave a hybrid job to its safety net, minutes later).
        let config = format!(
            "{}\n[webhook]\nurl = \"http://127.0.0.1:{port}/hooks/stt\"\nsecrets = [\"{}\", \"{}\"]\n\
             events = [\"job.finished\", \"job.progress\"]\ninclude_transcript = true\n\
             first_retry_ms = 200\nretry_for_secs = 60\n",
            config(&sim, "http://127.0.0.1:9/unused", &dir.join("data"), "polling"),
            secrets[0],
            secrets[1]
        );
        let serve = Serve::start(&sim, &dir, &config, &[]).await;
        let base = serve.base.clone();
        let http = reqwest::Client::new();
        let mut ids = Vec::new();
        for n in 0..2 {
            let job: Value = http
                .post(format!("{base}/v1/jobs"))
                .bearer_auth(KEY)
                .json(&json!({"url": format!("https://a.example/{n}.wav"), "key": format!("hook-{n}"), "labels": {"n": n.to_string()}}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            ids.push(job["id"].as_str().unwrap().to_owned());
        }
        // Every delivery until each job's `job.finished` was answered 204.
        let mut all = Vec::new();
        let mut delivered = std::collections::HashSet::new();
        while delivered.len() < ids.len() {
            let Ok(report) = tokio::time::timeout(Duration::from_secs(90), reports.recv()).await else {
                let mut states = Vec::new();
                for id in &ids {
                    states.push(get_json(&http, &format!("{base}/v1/jobs/{id}")).await);
                }
                panic!("no delivery for 90 s; delivered {delivered:?}; seen {all:?}; jobs {states:?}");
            };
            let report = report.expect("the receiver reports");
            if report["payload"]["type"] == "job.finished" && report["answer"] == 204 {
                delivered.insert(report["payload"]["data"]["id"].as_str().unwrap().to_owned());
            }
            all.push(report);
        }
        for report in &all {
            assert_eq!(
                report["verified"],
                json!([true, true]),
                "standardwebhooks verifies every delivery with each secret: {report}"
            );
            assert_eq!(report["signatures"], 2, "{report}");
            let text = report.to_string();
            assert!(!text.contains(sim.token()), "never the Daglo token: {text}");
        }
        assert!(
            all.iter().any(|r| r["payload"]["type"] == "job.progress"),
            "progress events were asked for: {all:?}"
        );
        for id in &ids {
            let finals: Vec<&Value> = all
                .iter()
                .filter(|r| r["payload"]["type"] == "job.finished" && r["payload"]["data"]["id"] == id.as_str())
                .collect();
            // Refused once (500), then delivered — possibly after a transport failure on a
            // loaded machine, which is retried too.
            assert!(finals.len() >= 2, "refused once (500), then delivered: {finals:?}");
            assert_eq!(finals[0]["answer"], 500);
            let last = finals[finals.len() - 1];
            assert!(
                finals.iter().all(|f| f["id"] == finals[0]["id"]),
                "one webhook-id per event, so receivers dedupe: {finals:?}"
            );
            assert_eq!(last["answer"], 204);
            assert_eq!(last["delivery"], finals.len());
            let data = &last["payload"]["data"];
            assert_eq!(data["state"], "finished");
            assert_eq!(data["outcome"], "transcript");
            assert!(data["rid"].is_string() && data["key"].is_string(), "{data}");
            assert!(data["labels"]["n"].is_string(), "{data}");
            let transcript = http
                .get(format!("{base}/v1/jobs/{id}/transcript"))
                .bearer_auth(KEY)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert_eq!(data["transcript"], transcript.as_str(), "include_transcript = true");
        }

        // The attempts, listed on the job.
        let id = &ids[0];
        let listed = get_json(&http, &format!("{base}/v1/jobs/{id}/webhooks")).await;
        let deliveries = listed["deliveries"].as_array().unwrap();
        let finished = deliveries.iter().find(|d| d["type"] == "job.finished").unwrap();
        assert_eq!(finished["state"], "delivered", "{listed}");
        let attempts = finished["attempts"].as_array().unwrap().len();
        assert!(attempts >= 2, "{listed}");
        assert_eq!(finished["attempts"][0]["result"], "retrying");
        assert_eq!(finished["attempts"][0]["code"], 500);
        assert_eq!(finished["attempts"][attempts - 1]["result"], "delivered");
        let received = all
            .iter()
            .filter(|r| r["payload"]["type"] == "job.finished" && r["payload"]["data"]["id"] == id.as_str())
            .count();
        let on_the_job = get_json(&http, &format!("{base}/v1/jobs/{id}")).await;
        assert_eq!(on_the_job["webhook_deliveries"], listed["deliveries"], "listed on the job too");

        // Delivered again on demand, with the same id.
        let retry = http
            .post(format!("{base}/v1/jobs/{id}/webhook/retry"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(retry.status(), 202);
        let again = loop {
            let report = reports.recv().await.unwrap();
            if report["payload"]["type"] == "job.finished" {
                break report;
            }
        };
        assert_eq!(again["id"], finished["event_id"]);
        assert_eq!(again["delivery"], received + 1);
        assert_eq!(again["verified"], json!([true, true]));
        loop {
            let listed = get_json(&http, &format!("{base}/v1/jobs/{id}/webhooks")).await;
            let finished = listed["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["type"] == "job.finished")
                .cloned()
                .unwrap();
            if finished["attempts"].as_array().unwrap().len() > attempts {
                assert_eq!(finished["state"], "delivered");
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // A running job's end is not for retrying.
        let unknown = http
            .post(format!("{base}/v1/jobs/no-such-job/webhook/retry"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(unknown.status(), 404);
        drop(serve);
        let _ = std::fs::remove_dir_all(dir);
    })
    .await
    .expect("within the deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_nobody_answers_is_marked_failed_and_can_be_retried() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let sim = Simulator::start(SimConfig::default().processing_time(Duration::from_millis(300)))
            .await
            .unwrap();
        // A port nothing listens on any more: every attempt is refused.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let dir = dir("webhook-failed");
        let config = format!(
            "{}\n[webhook]\nurl = \"http://{closed}/hooks\"\nsecret = \"{}\"\nfirst_retry_ms = 50\nretry_for_secs = 1\n",
            config(&sim, "http://127.0.0.1:9/unused", &dir.join("data"), "polling"),
            daglo_serve::WebhookSecret::generate()
        );
        let serve = Serve::start(&sim, &dir, &config, &[]).await;
        let base = serve.base.clone();
        let http = reqwest::Client::new();
        let job: Value = http
            .post(format!("{base}/v1/jobs"))
            .bearer_auth(KEY)
            .json(&json!({"url": "https://a.example/a.wav"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = job["id"].as_str().unwrap();
        let failed = loop {
            let listed = get_json(&http, &format!("{base}/v1/jobs/{id}/webhooks")).await;
            if let Some(finished) = listed["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["type"] == "job.finished" && d["state"] == "failed")
            {
                break finished.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let attempts = failed["attempts"].as_array().unwrap();
        assert!(attempts.len() >= 2, "retried before giving up: {failed}");
        assert!(attempts.iter().all(|a| a["code"].is_null() && a["error"].is_string()), "{failed}");
        let retry = http
            .post(format!("{base}/v1/jobs/{id}/webhook/retry"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(retry.status(), 202);
        let said: Value = retry.json().await.unwrap();
        assert_eq!(said["status"], "delivering");
        // Asked again at once, while that retry runs (it lasts `retry_for_secs`): coalesced.
        let again: Value = http
            .post(format!("{base}/v1/jobs/{id}/webhook/retry"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(again["status"], "already_delivering", "{again}");
        loop {
            let listed = get_json(&http, &format!("{base}/v1/jobs/{id}/webhooks")).await;
            let finished = &listed["deliveries"][0];
            let now = finished["attempts"].as_array().unwrap().len();
            if now > attempts.len() && finished["state"] == "failed" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drop(serve);
        let _ = std::fs::remove_dir_all(dir);
    })
    .await
    .expect("within the deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_are_written_down_before_answered_and_replayed_after_a_crash() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let sim = Simulator::start(SimConfig::default().processing_time(Duration::from_millis(1500)))
            .await
            .unwrap();
        let dir = dir("inbox");
        let backends = Backends::default();
        let proxy = round_robin(backends.clone()).await;
        // Callbacks alone: nothing polls a job whose final callback was lost.
        let config = config(&sim, &format!("http://{proxy}"), &dir.join("data"), "callback");
        let mut serve = Serve::start(&sim, &dir, &config, &[]).await;
        backends.lock().unwrap().push(serve.addr);
        let http = reqwest::Client::new();
        let job: Value = http
            .post(format!("{}/v1/jobs", serve.base))
            .bearer_auth(KEY)
            .json(&json!({"url": "https://a.example/a.wav", "key": "inbox"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = job["id"].as_str().unwrap().to_owned();
        // The service cannot confirm the final: it is taken in (and written down), and the
        // process dies while it asks Daglo.
        sim.inject_errors(
            daglo::sim::Endpoint::Status,
            daglo::sim::ErrorBurst::new(500, 10_000),
        );
        let listed = loop {
            let listed = get_json(&http, &format!("{}/v1/jobs/{id}/callbacks", serve.base)).await;
            let callbacks = listed["callbacks"].as_array().unwrap();
            if callbacks.iter().any(|c| c["status"] == "transcribed") {
                break listed;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        serve.child.kill().await.unwrap();
        let callbacks = listed["callbacks"].as_array().unwrap();
        for callback in callbacks {
            assert_eq!(callback["answer_code"], 200, "{callback}");
            assert!(callback["received_at"].is_string() && callback["body"].is_string());
            assert!(
                !callback.to_string().to_lowercase().contains("authorization"),
                "no header, so no credential: {callback}"
            );
        }
        let last = callbacks.last().unwrap();
        assert_eq!(last["status"], "transcribed");
        assert_eq!(last["answer"], "accepted");
        assert!(
            callbacks.iter().any(|c| c["progress"].is_number()),
            "progress callbacks too: {listed}"
        );
        // Confirmation works again (after one more 500).
        sim.inject_errors(daglo::sim::Endpoint::Status, daglo::sim::ErrorBurst::new(500, 1));
        let restarted = Serve::start(&sim, &dir, &config, &[]).await;
        *backends.lock().unwrap() = vec![restarted.addr];
        let job = get_json(&http, &format!("{}/v1/jobs/{id}", restarted.base)).await;
        assert_eq!(
            job["state"], "running",
            "its final was taken before the crash: {job}"
        );

        // `POST …/callbacks/replay` (what `daglo callbacks replay` sends): the written-down final
        // goes through the state machine and its confirmation again.
        let replay_url = format!("{}/v1/jobs/{id}/callbacks/replay", restarted.base);
        let replayed: Value = http
            .post(&replay_url)
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let answers = |body: &Value| -> Vec<String> {
            body["replayed"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["answer"].as_str().unwrap_or("-").to_owned())
                .collect()
        };
        assert!(
            replayed["replayed"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["status"] == "transcribed"),
            "{replayed}"
        );
        assert!(
            answers(&replayed).iter().any(|a| a == "accepted"),
            "the final moved the job: {replayed}"
        );
        let finished = wait_finished(&http, &restarted.base, &id).await;
        assert_eq!(finished["outcome"], "transcript");
        assert_eq!(sim.jobs().len(), 1, "never submitted again");

        // A second replay changes nothing; the list says how each was answered; no key is 401.
        let again: Value = http
            .post(&replay_url)
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(!answers(&again).iter().any(|a| a == "accepted"), "{again}");
        let list_url = format!("{}/v1/jobs/{id}/callbacks", restarted.base);
        let list: Value = http
            .get(&list_url)
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            list["callbacks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["answer_code"] == 200 && c["answer"] == "accepted"),
            "{list}"
        );
        let nokey = http.get(&list_url).send().await.unwrap();
        assert_eq!(nokey.status(), 401);
        drop(restarted);
        let _ = std::fs::remove_dir_all(dir);
    })
    .await
    .expect("within the deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_uploads_a_file_shows_progress_to_100_and_its_transcript_in_chromium_and_each_state_at_1280_and_420_px()
 {
    let Some(python) = python_with("selenium", "the page test") else {
        return;
    };
    let chromium = ["chromium", "chromium-browser"].iter().any(|b| {
        std::process::Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !chromium {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must drive the page: no chromium"
        );
        eprintln!("SKIPPED the page test: no chromium");
        return;
    }
    tokio::time::timeout(Duration::from_secs(180), async {
        let sim = Simulator::start(
            SimConfig::default()
                .processing_time(Duration::from_secs(4))
                .callback_retries(3),
        )
        .await
        .unwrap();
        let dir = dir("page");
        // Callbacks with polling as the safety net: the job's detail lists its callbacks.
        let backends = Backends::default();
        let proxy = round_robin(backends.clone()).await;
        let config = config(&sim, &format!("http://{proxy}"), &dir.join("data"), "hybrid");
        let serve = Serve::start(&sim, &dir, &config, &[]).await;
        backends.lock().unwrap().push(serve.addr);
        let http = reqwest::Client::new();
        let page = http.get(format!("{}/", serve.base)).send().await.unwrap();
        assert_eq!(page.status(), 200, "the page needs no key");
        assert!(
            page.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'self'")
        );
        let html = page.text().await.unwrap();
        assert!(html.contains("/assets/app.js"));
        let screenshot = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/serve-page.png");
        let _ = std::fs::remove_file(screenshot);
        let base = serve.base.clone();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(python)
                .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/drive_page.py"))
                .args([base.as_str(), KEY, SAMPLE, screenshot])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
        let report: Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
        let seen: Vec<u64> = report["progress_seen"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(seen.last(), Some(&100), "{report}");
        assert!(seen.len() >= 2, "the bar moved on its way: {report}");
        assert!(report["transcript_chars"].as_u64().unwrap() > 0);
        let png = std::fs::read(screenshot).unwrap();
        assert!(
            png.starts_with(b"\x89PNG"),
            "a screenshot is kept at {screenshot}"
        );
        let narrow = std::fs::read(screenshot.replace(".png", "-420.png")).unwrap();
        assert!(narrow.starts_with(b"\x89PNG"), "a screenshot at 420 px");
        assert_eq!(
            report["checked"],
            json!([
                "times with a zone",
                "replay says what it did",
                "a failed job is red with its reason",
                "delete says what it did",
                "420 px",
                "offline said and recovered"
            ]),
            "{report}"
        );
        // The job the page made carries the label it typed.
        let id = report["job"].as_str().unwrap();
        let job = get_json(&http, &format!("{}/v1/jobs/{id}", serve.base)).await;
        assert_eq!(job["labels"]["source"], "browser", "{job}");
        drop(serve);
        let _ = std::fs::remove_dir_all(dir);
    })
    .await
    .expect("within the deadline");
}
