//! The service's front door under the faults that used to lose billed jobs (issue #38): a caller
//! who hangs up mid-submit, slow and stalled uploads, long event streams and their resumption,
//! callers that take every connection, a Redis that forgets, a full disk, uncertain jobs, and
//! input that must be bounded. Each with the real mechanism: a cut connection, a throttled
//! socket, a private `redis-server`, a tmpfs.

use std::path::Path;
use std::time::Duration;

use crate::serve::{KEY, Serve, config, dir, wait_finished};
use crate::support::*;
use daglo::sim::{Planner, SimConfig, Simulator};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const DEADLINE: Duration = Duration::from_secs(120);

/// A polling service with `extra` lines appended to its configuration.
async fn polling(sim: &Simulator, name: &str, extra: &str) -> (Serve, std::path::PathBuf) {
    let dir = dir(name);
    let mut config = config(sim, "http://127.0.0.1:9", &dir.join("data"), "polling");
    config.push_str(extra);
    (Serve::start(sim, &dir, &config, &[]).await, dir)
}

/// Sends `head` then `body` in `chunks` pieces with `pause` between them over a connection of
/// its own, and reads the answer (whole, until the service closes or `Content-Length` is met).
async fn raw(addr: std::net::SocketAddr, head: &str, body: &[u8], chunks: usize, pause: Duration) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let size = body.len().div_ceil(chunks.max(1)).max(1);
    for piece in body.chunks(size) {
        if stream.write_all(piece).await.is_err() {
            break; // The service answered (and closed) before the body was sent.
        }
        tokio::time::sleep(pause).await;
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer)).await;
    text(&answer)
}

/// A multipart body with one `file` part named `name`.
fn multipart(name: &str, bytes: &[u8], extra: &[(&str, &str)]) -> (String, Vec<u8>) {
    let boundary = "daglo-test-boundary";
    let mut body = Vec::new();
    for (field, value) in extra {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
             Content-Type: audio/wav\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn post_head(path: &str, content_type: &str, length: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: daglo\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Type: {content_type}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    )
}

async fn post_multipart(http: &reqwest::Client, base: &str, kind: &str, body: Vec<u8>) -> reqwest::Response {
    http.post(format!("{base}/v1/jobs"))
        .bearer_auth(KEY)
        .header("content-type", kind)
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn post(http: &reqwest::Client, base: &str, body: Value) -> reqwest::Response {
    http.post(format!("{base}/v1/jobs"))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_hangs_up_mid_submit_leaves_a_recorded_job_its_key_returns() {
    tokio::time::timeout(DEADLINE, async {
        // Daglo creates (and bills) the job at once but answers the submit 2 s later.
        let sim = Simulator::start(
            SimConfig::default()
                .processing_time(Duration::from_millis(500))
                .planner(Planner::new(|_, plan| {
                    plan.faults.slow_answers = Some(Duration::from_secs(2));
                })),
        )
        .await
        .unwrap();
        let (serve, dir) = polling(&sim, "hang-up", "").await;
        let impatient = reqwest::Client::builder()
            .timeout(Duration::from_millis(300))
            .build()
            .unwrap();
        let cut = impatient
            .post(format!("{}/v1/jobs", serve.base))
            .bearer_auth(KEY)
            .json(&json!({"url": "https://a.example/call.wav", "key": "hung-up"}))
            .send()
            .await;
        assert!(cut.is_err(), "the caller hung up before the answer: {cut:?}");
        // The submit ran to its end on the service's own task: the same key is the job, with
        // its rid, and it finishes; nothing is submitted twice.
        let http = reqwest::Client::new();
        let again = post(
            &http,
            &serve.base,
            json!({"url": "https://a.example/call.wav", "key": "hung-up"}),
        )
        .await;
        assert_eq!(
            again.status(),
            200,
            "the key names the job the cut request started"
        );
        let job: Value = again.json().await.unwrap();
        assert_eq!(job["key"], "hung-up");
        let finished = wait_finished(&http, &serve.base, job["id"].as_str().unwrap()).await;
        assert!(finished["rid"].is_string(), "its rid was recorded: {finished}");
        assert_eq!(finished["outcome"], "transcript");
        assert_eq!(sim.jobs().len(), 1, "one submit for one key");
        drop(serve);
        let _ = std::fs::remove_dir_all(dir);
    })
    .await
    .expect("within the deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_lives_while_it_progresses_and_a_stalled_one_is_408_and_removed() {
    tokio::time::timeout(DEADLINE, async {
        let sim = Simulator::start(SimConfig::default().processing_time(Duration::from_millis(200)))
            .await
            .unwrap();
        let (serve, dir) = polling(
            &sim,
            "uploads",
            "[limits]\nupload_min_bytes = 1000\nupload_window_secs = 1\n",
        )
        .await;
        // 24 KB in 12 pieces, one every 250 ms: three windows, each well over the minimum.
        let (kind, body) = multipart("slow.wav", &[7_u8; 24_000], &[]);
        let head = post_head("/v1/jobs", &kind, body.len());
        let answer = raw(serve.addr, &head, &body, 12, Duration::from_millis(250)).await;
        assert!(
            answer.starts_with("HTTP/1.1 201"),
            "a slow, steady upload is taken: {answer}"
        );

        // 500 bytes, then nothing: 408 within about a window, and no partial file kept.
        let (kind, body) = multipart("stalled.wav", &[7_u8; 24_000], &[]);
        let head = post_head("/v1/jobs", &kind, body.len());
        let mut stream = tokio::net::TcpStream::connect(serve.addr).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&body[..500]).await.unwrap();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer)).await;
        let answer = text(&answer);
        assert!(
            answer.starts_with("HTTP/1.1 408"),
            "a stalled upload is cut: {answer}"
        );
        assert!(answer.contains("upload_min_bytes"), "{answer}");
        let uploads = dir.join("data").join("uploads");
        let left: Vec<_> = std::fs::read_dir(&uploads).unwrap().collect();
        assert!(left.is_empty(), "no partial upload is kept: {left:?}");
        assert_eq!(sim.jobs().len(), 1, "only the whole upload was submitted");
        drop(serve);
        let _ = std::fs::remove_dir_all(dir);
    })
    .await
    .expect("within the deadline");
}

/// Reads `answer`'s body until `until` is seen in it (or the stream ends).
async fn read_until(answer: &mut reqwest::Response, until: &str) -> String {
    let mut seen = String::new();
    while !seen.contains(until) {
        match answer.chunk().await {
            Ok(Some(chunk)) => seen.push_str(&text(&chunk)),
            _ => break,
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_carry_ids_and_keepalives_resume_and_hold_a_share_per_key() {
    tokio::time::timeout(DEADLINE, async {
        let sim = Simulator::start(SimConfig::default().processing_time(Duration::from_secs(4)))
            .await
            .unwrap();
        let (serve, dir) = polling(
            &sim,
            "streams",
            "[limits]\nstream_keepalive_secs = 1\nmax_streams_per_key = 2\n",
        )
        .await;
        let http = reqwest::Client::new();
        let job: Value = post(&http, &serve.base, json!({"url": "https://a.example/long.wav"}))
            .await
            .json()
            .await
            .unwrap();
        let id = job["id"].as_str().unwrap().to_owned();
        let events = format!("{}/v1/jobs/{id}/events", serve.base);
        let open = |last: Option<&str>| {
            let mut request = http.get(&events).bearer_auth(KEY);
            if let Some(last) = last {
                request = request.header("Last-Event-ID", last);
            }
            request.send()
        };
        let mut first = open(None).await.unwrap();
        assert_eq!(first.status(), 200);
        let mut second = open(None).await.unwrap();
        assert_eq!(second.status(), 200);
        let third = open(None).await.unwrap();
        assert_eq!(third.status(), 429, "a key holds at most its share of streams");
        assert!(third.headers().contains_key("retry-after"));
        let seen = read_until(&mut first, "event: submitted").await;
        assert!(seen.contains("id: 1\n"), "every event has an id: {seen}");
        // Idle between progress callbacks: a keep-alive comment within a second or so.
        let idle = read_until(&mut second, "\n:").await;
        assert!(
            idle.contains("\n:") || idle.starts_with(':'),
            "keep-alive comments: {idle}"
        );
        drop(second);
        let rest = read_until(&mut first, "event: ended").await;
        assert!(rest.contains("id: 999999\nevent: ended"), "{rest}");
        // Resumed after `submitted`: the rest, never `submitted` again; after `ended`: 204.
        let mut resumed = open(Some("1")).await.unwrap();
        let body = read_until(&mut resumed, "event: ended").await;
        assert!(!body.contains("event: submitted"), "{body}");
        assert!(body.contains("event: ended"), "{body}");
        let done = open(Some("999999")).await.unwrap();
        assert_eq!(
            done.status(),
            204,
            "a stream whose end was seen is not opened again"
        );
        drop(serve);
        let _ = std::fs::remove_dir_all(dir);
    })
    .await
    .expect("within the deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_holding_every_api_connection_leave_the_probes_and_callbacks_room() {
    tokio::time::timeout(DEADLINE, async {
        let sim = Simulator::start(SimConfig::default().processing_time(Duration::from_secs(30)))
            .await
            .unwrap();
        let (serve, dir) = polling(
            &sim,
            "reserved",
            "[limits]\nmax_connections = 24\nreserved_connections = 8\n",
        )
        .await;
        let http = reqwest::Client::new();
        let job: Value = post(&http, &serve.base, json!({"url": "https://a.example/long.wav"}))
            .await
            .json()
            .await
            .unwrap();
        let id = job["id"].as_str().unwrap();
        // 16 streams (the API's whole share), each on a connection of its own.
        let mut held = Vec::new();
        for _ in 0..16 {
            let mut stream = tokio::net::TcpStream::connect(serve.addr).await.unwrap();
            let request = format!(
                "GET /v1/jobs/{id}/events HTTP/1.1\r\nHost: daglo\r\nAuthorization: Bearer {KEY}\r\n\r\n"
            );
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut head = [0_u8; 12];
            stream.read_exact(&mut head).await.unwrap();
            assert_eq!(&head, b"HTTP/1.1 200", "a stream within the share");
            held.push(stream);
        }
        // One more API request: refused at once, its connection freed.
        let over = raw(
            serve.addr,
            &format!("GET /v1/jobs HTTP/1.1\r\nHost: daglo\r\nAuthorization: Bearer {KEY}\r\n\r\n"),
            b"",
            1,
            Duration::ZERO,
        )
        .await;
        assert!(over.starts_with("HTTP/1.1 503"), "over the API's share: {over}");
        assert!(over.to_ascii_lowercase().contains("retry-after: 1"), "{over}");
        // The probes (and Daglo's callbacks, on the same reserved room) still answer.
        for probe in ["/healthz", "/readyz", "/metrics"] {
            let answer = http.get(format!("{}{probe}", serve.base)).send().await.unwrap();
            assert_eq!(answer.status(), 200, "{probe} beside 16 held streams");
        }
        drop(held);
        drop(serve);
        let _ = std::fs::remove_dir_all(dir);
    })
    .await
    .expect("within the deadline");
}

/// Runs the binary on `config` until it says where it listens or exits; its exit code (or
/// `None` when it started) and its stderr.
async fn start_or_exit(sim: &Simulator, dir: &Path, config: &str) -> (Option<i32>, String) {
    std::fs::create_dir_all(dir).unwrap();
    let file = dir.join("daglo.toml");
    std::fs::write(&file, config).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_daglo-serve"))
        .args(["--config", file.to_str().unwrap()])
        .env("DAGLO_API_TOKEN", sim.token())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut said = Vec::new();
    let mut buffer = [0_u8; 4096];
    loop {
        let n = stderr.read(&mut buffer).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        said.extend_from_slice(&buffer[..n]);
        if text(&said).contains("listening on") {
            let _ = child.kill().await;
            return (None, text(&said));
        }
    }
    let status = child.wait().await.unwrap();
    (status.code(), text(&said))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_forgets_or_evicts_is_refused_unless_the_operator_accepts_it() {
    tokio::time::timeout(DEADLINE, async {
        let sim = Simulator::start(SimConfig::default()).await.unwrap();
        let root = dir("volatile");
        let aof = root.join("aof");
        std::fs::create_dir_all(&aof).unwrap();
        let Some((forgetful, _a)) = private_redis("a_redis_that_forgets_…") else {
            return;
        };
        let Some((evicting, _b)) = private_redis_with(
            "a_redis_that_forgets_…",
            &[
                "--appendonly",
                "yes",
                "--dir",
                aof.to_str().unwrap(),
                "--maxmemory-policy",
                "allkeys-lru",
            ],
        ) else {
            return;
        };
        let with = |redis: &str, extra: &str| {
            let mut text = config(&sim, "http://127.0.0.1:9", &root.join("data"), "polling");
            text.push_str(&format!("redis_url = \"{redis}\"\n{extra}"));
            text
        };
        let (code, stderr) = start_or_exit(&sim, &root, &with(&forgetful, "")).await;
        assert_eq!(code, Some(2), "{stderr}");
        assert!(
            stderr.contains("appendonly") && stderr.contains("redis_allow_volatile"),
            "{stderr}"
        );
        let (code, stderr) = start_or_exit(&sim, &root, &with(&evicting, "")).await;
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains("maxmemory-policy allkeys-lru"), "{stderr}");
        let (code, stderr) =
            start_or_exit(&sim, &root, &with(&forgetful, "redis_allow_volatile = true\n")).await;
        assert_eq!(code, None, "accepted when the operator says so: {stderr}");
        assert!(
            stderr.contains("redis_allow_volatile"),
            "and warned about: {stderr}"
        );
        let _ = std::fs::remove_dir_all(root);
    })
    .await
    .expect("within the deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flushed_redis_makes_the_service_unready_and_submits_503_not_502() {
    let root = dir("flushed");
    let aof = root.join("aof");
    std::fs::create_dir_all(&aof).unwrap();
    let Some((redis, _guard)) = private_redis_with(
        "a_flushed_redis_…",
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
    tokio::time::timeout(DEADLINE, async {
        let sim = Simulator::start(SimConfig::default().processing_time(Duration::from_millis(300)))
            .await
            .unwrap();
        let mut text = config(&sim, "http://127.0.0.1:9", &root.join("data"), "polling");
        text.push_str(&format!("redis_url = \"{redis}\"\n"));
        let serve = Serve::start(&sim, &root.join("svc"), &text, &[]).await;
        let http = reqwest::Client::new();
        let first = post(
            &http,
            &serve.base,
            json!({"url": "https://a.example/1.wav", "key": "one"}),
        )
        .await;
        assert_eq!(first.status(), 201);
        let ready = http.get(format!("{}/readyz", serve.base)).send().await.unwrap();
        assert_eq!(ready.status(), 200);
        let flushed = std::process::Command::new("redis-cli")
            .args(["-u", &redis, "FLUSHALL"])
            .output()
            .unwrap();
        assert!(flushed.status.success());
        let ready = http.get(format!("{}/readyz", serve.base)).send().await.unwrap();
        assert_eq!(ready.status(), 503, "a flushed journal cannot be trusted");
        let body: Value = ready.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains("flushed"), "{body}");
        let refused = post(
            &http,
            &serve.base,
            json!({"url": "https://a.example/2.wav", "key": "two"}),
        )
        .await;
        assert_eq!(refused.status(), 503, "a local store's failure, not Daglo's");
        assert!(refused.headers().contains_key("retry-after"));
        assert_eq!(
            sim.jobs().len(),
            1,
            "nothing submitted without a journal to record it"
        );
        drop(serve);
    })
    .await
    .expect("within the deadline");
    let _ = std::fs::remove_dir_all(root);
}

/// Unmounts a tmpfs when dropped.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let unmounted = std::process::Command::new("umount").arg(&self.0).status();
        if !unmounted.is_ok_and(|s| s.success()) {
            // Still busy (a process not yet reaped): detached now, freed when it lets go.
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_makes_the_service_unready_within_a_probe_and_uploads_503() {
    let root = dir("full-disk");
    let data = root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&data)
        .output();
    if !mounted.as_ref().is_ok_and(|m| m.status.success()) {
        assert!(std::env::var_os("CI").is_none(), "CI runs as root: {mounted:?}");
        eprintln!("SKIPPED a_full_disk_…: cannot mount a tmpfs here (needs root): {mounted:?}");
        return;
    }
    let _unmount = Unmount(data.clone());
    tokio::time::timeout(DEADLINE, async {
        let sim = Simulator::start(SimConfig::default()).await.unwrap();
        let text = config(&sim, "http://127.0.0.1:9", &data, "polling");
        let serve = Serve::start(&sim, &root.join("svc"), &text, &[]).await;
        // A connection per request: a refused upload's connection is closed by the service
        // before its body is read, and must not be picked up again from the pool.
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let ready = http.get(format!("{}/readyz", serve.base)).send().await.unwrap();
        assert_eq!(ready.status(), 200);
        // Fill the disk.
        {
            use std::io::Write as _;
            let mut filler = std::fs::File::create(data.join("filler.bin")).unwrap();
            while filler
                .write_all(&[0_u8; 4096])
                .and_then(|()| filler.sync_all())
                .is_ok()
            {}
        }
        let filled = std::time::Instant::now();
        let ready = http.get(format!("{}/readyz", serve.base)).send().await.unwrap();
        let took = filled.elapsed();
        assert_eq!(ready.status(), 503, "the next probe after the disk filled");
        eprintln!("readiness 503 {took:?} after the disk filled (one probe)");
        let (kind, body) = multipart("full.wav", &[7_u8; 64_000], &[]);
        let answer = post_multipart(&http, &serve.base, &kind, body).await;
        assert_eq!(answer.status(), 503, "a local failure: {:?}", answer.text().await);
        assert_eq!(sim.jobs().len(), 0);
        std::fs::remove_file(data.join("filler.bin")).unwrap();
        let ready = http.get(format!("{}/readyz", serve.base)).send().await.unwrap();
        assert_eq!(ready.status(), 200, "ready again once there is room");
        // Gone before the unmount: its open journal would keep the tmpfs busy.
        let mut serve = serve;
        serve.child.kill().await.unwrap();
    })
    .await
    .expect("within the deadline");
    drop(_unmount);
    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_bounded_and_the_service_owns_its_callbacks() {
    tokio::time::timeout(DEADLINE, async {
        let sim = Simulator::start(SimConfig::default().processing_time(Duration::from_millis(200)))
            .await
            .unwrap();
        let (serve, dir) = polling(&sim, "bounded", "").await;
        // A connection per request: a refused upload's connection is closed by the service
        // before its body is read, and must not be picked up again from the pool.
        let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        let status = |answer: reqwest::Response| answer.status().as_u16();
        // Two `file` parts.
        let boundary = "b";
        let part = |name: &str| {
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\r\nRIFF\r\n"
            )
        };
        let body = format!("{}{}--{boundary}--\r\n", part("a.wav"), part("b.wav"));
        let two = http
            .post(format!("{}/v1/jobs", serve.base))
            .bearer_auth(KEY)
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(two.status(), 422);
        assert!(two.text().await.unwrap().contains("one `file` part"));
        // A 1 MB `labels` part: refused before it is held.
        let huge = "x".repeat(1 << 20);
        let (kind, body) = multipart("a.wav", b"RIFF", &[("labels", &huge)]);
        let answer = post_multipart(&http, &serve.base, &kind, body).await;
        assert_eq!(status(answer), 413);
        // Too many labels, a URL too long, a callback of the caller's own.
        let labels: serde_json::Map<String, Value> = (0..33).map(|i| (format!("l{i}"), json!("v"))).collect();
        let url = format!("https://a.example/{}.wav", "a".repeat(9000));
        for (body, what) in [
            (json!({"url": "https://a.example/a.wav", "labels": labels}), "labels"),
            (json!({"url": url}), "url"),
            (
                json!({"url": "https://a.example/a.wav", "options": {"callback": {"url": "https://evil.example/"}}}),
                "options.callback",
            ),
        ] {
            let answer = post(&http, &serve.base, body).await;
            assert_eq!(answer.status(), 422, "{what}");
            let error: Value = answer.json().await.unwrap();
            assert!(error["error"].as_str().unwrap().contains(what), "{what}: {error}");
        }
        // A 300-character file name: taken, shortened, its extension kept.
        let long = format!("{}.wav", "n".repeat(300));
        let (kind, body) = multipart(&long, &[7_u8; 2000], &[]);
        let answer = post_multipart(&http, &serve.base, &kind, body).await;
        assert_eq!(answer.status(), 201);
        assert_eq!(sim.jobs().len(), 1, "only the valid request was submitted");
        // The data directory is this user's alone.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let data = dir.join("data");
            let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&data), 0o700);
            assert_eq!(mode(&data.join("journal.sqlite")), 0o600);
            assert_eq!(mode(&data.join("uploads")), 0o700);
        }
        // What a killed process left in `uploads/` is removed at the next start.
        drop(serve);
        let stray = dir.join("data").join("uploads").join("job_stray");
        std::fs::create_dir_all(&stray).unwrap();
        std::fs::write(stray.join("half.wav"), b"RIFF").unwrap();
        let config = std::fs::read_to_string(dir.join("daglo.toml")).unwrap();
        let again = Serve::start(&sim, &dir, &config, &[]).await;
        assert!(!stray.exists(), "a partial upload left by a killed process is removed at start");
        drop(again);
        let _ = std::fs::remove_dir_all(dir);
    })
    .await
    .expect("within the deadline");
}

#[test]
fn plain_http_off_loopback_and_a_public_url_with_a_query_are_exit_2() {
    let dir = dir("insecure");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("daglo.toml");
    let base = format!(
        "listen = \"127.0.0.1:0\"\napi_keys = [\"{KEY}\"]\ndata_dir = \"{}\"\n",
        dir.join("data").display()
    );
    for (extra, key) in [
        (
            "strategy = \"polling\"\nbase_url = \"http://daglo.example\"\n",
            "base_url",
        ),
        (
            "strategy = \"hybrid\"\npublic_url = \"http://203.0.113.7:8080\"\n",
            "public_url",
        ),
        (
            "strategy = \"hybrid\"\npublic_url = \"https://svc.example/?a=1\"\n",
            "public_url",
        ),
    ] {
        std::fs::write(&file, format!("{base}{extra}")).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_daglo-serve"))
            .args(["--config", file.to_str().unwrap()])
            .env("DAGLO_API_TOKEN", "t")
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra}: {stderr}");
        assert!(stderr.contains(key), "{key}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_daglo_refuses_makes_the_service_unready() {
    tokio::time::timeout(DEADLINE, async {
        let sim = Simulator::start(SimConfig::default()).await.unwrap();
        let dir = dir("bad-token");
        let text = config(&sim, "http://127.0.0.1:9", &dir.join("data"), "polling");
        let serve = Serve::start(&sim, &dir, &text, &[("DAGLO_API_TOKEN", "not-the-token")]).await;
        let ready = reqwest::get(format!("{}/readyz", serve.base)).await.unwrap();
        assert_eq!(ready.status(), 503);
        let body: Value = ready.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains("token"), "{body}");
        assert_eq!(sim.jobs().len(), 0);
        drop(serve);
        let _ = std::fs::remove_dir_all(dir);
    })
    .await
    .expect("within the deadline");
}

/// Daglo behind a proxy that loses every submit's answer: the job is created (and billed) at
/// the emulator, the service gets a `500`. Other requests pass. Returns the proxy's URL and the
/// rids whose answers were lost.
async fn answer_losing_proxy(sim: &Simulator) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::extract::Request;
    let lost = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (upstream, kept) = (sim.base_url(), lost.clone());
    let forward = move |request: Request| {
        let (upstream, kept) = (upstream.clone(), kept.clone());
        async move {
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
            let mut out =
                reqwest::Client::new().request(parts.method.clone(), format!("{upstream}{}", parts.uri));
            for name in ["authorization", "content-type"] {
                if let Some(value) = parts.headers.get(name) {
                    out = out.header(name, value.as_bytes());
                }
            }
            let answer = out.body(body).send().await.unwrap();
            let status = answer.status().as_u16();
            let bytes = answer.bytes().await.unwrap_or_default();
            if parts.method == axum::http::Method::POST && parts.uri.path().ends_with("/transcripts") {
                let created: Value = serde_json::from_slice(&bytes).unwrap_or_default();
                kept.lock()
                    .unwrap()
                    .push(created["rid"].as_str().unwrap_or_default().to_owned());
                return (
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "{\"error\":\"lost\"}".to_owned(),
                );
            }
            (axum::http::StatusCode::from_u16(status).unwrap(), text(&bytes))
        }
    };
    let app = axum::Router::new().fallback(forward);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), lost)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncertain_job_is_settled_by_the_operator_either_way() {
    tokio::time::timeout(DEADLINE, async {
        let sim = Simulator::start(SimConfig::default().processing_time(Duration::from_millis(300)))
            .await
            .unwrap();
        let (proxy, lost) = answer_losing_proxy(&sim).await;
        let dir = dir("resolve");
        let text =
            config(&sim, "http://127.0.0.1:9", &dir.join("data"), "polling").replace(&sim.base_url(), &proxy);
        let serve = Serve::start(&sim, &dir, &text, &[]).await;
        let http = reqwest::Client::new();
        let mut ids = Vec::new();
        for key in ["exists", "gone"] {
            let answer = post(
                &http,
                &serve.base,
                json!({"url": "https://a.example/a.wav", "key": key}),
            )
            .await;
            assert_eq!(answer.status(), 502);
            let body: Value = answer.json().await.unwrap();
            assert_eq!(body["may_have_created_job"], true, "{body}");
            let job: Value = http
                .get(format!("{}/v1/jobs", serve.base))
                .bearer_auth(KEY)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let job = job["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|j| j["key"] == key)
                .unwrap()
                .clone();
            assert_eq!(job["state"], "uncertain");
            ids.push(job["id"].as_str().unwrap().to_owned());
        }
        let resolve = |id: &str, body: Value| {
            http.post(format!("{}/v1/jobs/{id}/resolve", serve.base))
                .bearer_auth(KEY)
                .json(&body)
                .send()
        };
        // The operator found the first in the Daglo console: followed to its end, not resubmitted.
        let rid = lost.lock().unwrap()[0].clone();
        let followed = resolve(&ids[0], json!({"rid": rid})).await.unwrap();
        assert_eq!(followed.status(), 200);
        let finished = wait_finished(&http, &serve.base, &ids[0]).await;
        assert_eq!(finished["rid"], rid.as_str());
        // The second: "no such job" — its key is free again.
        let released = resolve(&ids[1], json!({"submitted": false})).await.unwrap();
        assert_eq!(released.status(), 200);
        let job: Value = released.json().await.unwrap();
        assert_eq!(job["state"], "not_submitted");
        let again = resolve(&ids[1], json!({"submitted": false})).await.unwrap();
        assert_eq!(again.status(), 409, "nothing left to settle");
        let neither = resolve(&ids[0], json!({"rid": "x", "submitted": false}))
            .await
            .unwrap();
        assert_eq!(neither.status(), 422);
        assert_eq!(sim.jobs().len(), 2, "two submits, never repeated");
        drop(serve);
        let _ = std::fs::remove_dir_all(dir);
    })
    .await
    .expect("within the deadline");
}
