//! The emulator's own behaviour over real HTTP: auth, rate limit, progression, both submit
//! kinds, records, and determinism.

use std::time::Duration;

use crate::support::{Raw, quick};
use daglo_core::Rid;
use daglo_sim::{Clock, Endpoint, ErrorBurst, Planner, SimConfig, Simulator};
use serde_json::{Value, json};

#[tokio::test]
async fn every_endpoint_requires_the_bearer_token() {
    let raw = Raw::start(quick()).await;
    let rid = raw.submit("https://a.example/x.wav", json!({})).await;
    for (method, path) in [
        (reqwest::Method::POST, String::new()),
        (reqwest::Method::GET, format!("/{rid}")),
        (reqwest::Method::GET, format!("/{rid}/srt")),
    ] {
        for auth in [
            None,
            Some("Bearer wrong"),
            Some("sim-token"),
            Some("Basic c2ltLXRva2Vu"),
        ] {
            let mut request = raw.http.request(method.clone(), raw.url(&path));
            if let Some(auth) = auth {
                request = request.header("authorization", auth);
            }
            let answer = request.send().await.unwrap();
            assert_eq!(answer.status(), 401, "{method} {path} with {auth:?}");
            let body: Value = answer.json().await.unwrap();
            assert!(body["error"].is_string());
        }
    }
}

#[tokio::test]
async fn rate_limit_is_20_per_second_per_endpoint() {
    let (clock, time) = Clock::manual();
    let raw = Raw::start(SimConfig::default().clock(clock).processing_time(Duration::ZERO)).await;
    let rid = raw.submit("https://a.example/x.wav", json!({})).await;
    let mut codes = Vec::new();
    for _ in 0..25 {
        codes.push(raw.get(&format!("/{rid}")).await.status().as_u16());
    }
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 20);
    assert!(codes[20..].iter().all(|c| *c == 429), "{codes:?}");
    // Another endpoint has its own budget.
    assert_eq!(raw.get(&format!("/{rid}/srt")).await.status(), 200);
    // Half a second later the window is still full; a full second later it has slid.
    time.advance(Duration::from_millis(500));
    assert_eq!(raw.get(&format!("/{rid}")).await.status(), 429);
    time.advance(Duration::from_millis(500));
    assert_eq!(raw.get(&format!("/{rid}")).await.status(), 200);
    let stats = raw.sim.stats();
    assert_eq!(stats.endpoint(Endpoint::Status).answered(429), 6);
    assert_eq!(stats.rate_limited(), 6);
    let answer = raw.get(&format!("/{rid}")).await;
    assert!(
        answer.headers().get("retry-after").is_none(),
        "the service sends no Retry-After"
    );
}

#[tokio::test]
async fn the_rate_limit_can_be_turned_off() {
    let raw = Raw::start(quick()).await;
    let rid = raw.submit("https://a.example/x.wav", json!({})).await;
    for _ in 0..60 {
        assert_eq!(raw.get(&format!("/{rid}")).await.status(), 200);
    }
}

#[tokio::test]
async fn jobs_progress_and_srt_answers_202_until_done() {
    let (clock, time) = Clock::manual();
    let raw = Raw::start(quick().clock(clock).processing_time(Duration::from_secs(60))).await;
    let rid = raw
        .submit("https://a.example/x.wav", json!({"custom": {"k": "v"}}))
        .await;
    let mut progress = Vec::new();
    for _ in 0..6 {
        let body: Value = raw.get(&format!("/{rid}")).await.json().await.unwrap();
        assert_eq!(body["custom"]["k"], "v");
        assert!(body.get("sttResults").is_none());
        progress.push((
            body["status"].as_str().unwrap().to_owned(),
            body["progress"].as_u64().unwrap(),
        ));
        let srt = raw.get(&format!("/{rid}/srt")).await;
        assert_eq!(srt.status(), 202);
        time.advance(Duration::from_secs(10));
    }
    let statuses: Vec<&str> = progress.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        statuses,
        [
            "ai_requested",
            "file_processing",
            "transcribing",
            "transcribing",
            "transcribing",
            "transcribing"
        ]
    );
    assert!(progress.windows(2).all(|w| w[0].1 < w[1].1), "{progress:?}");

    let record = raw.sim.job(&Rid::new(&rid)).unwrap();
    assert_eq!(record.completes_at, record.submitted_at + Duration::from_secs(60));
    assert_eq!(record.first_terminal_answer_at, None);
    let srt = raw.get(&format!("/{rid}/srt")).await;
    assert_eq!(srt.status(), 200);
    assert!(
        srt.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let done: Value = raw.get(&format!("/{rid}")).await.json().await.unwrap();
    assert_eq!(done["status"], "transcribed");
    assert_eq!(done["progress"], 100);
    let record = raw.sim.job(&Rid::new(&rid)).unwrap();
    assert_eq!(record.first_terminal_answer_at, Some(time.now()));
    assert_eq!((record.status_requests, record.srt_requests), (7, 7));
}

#[tokio::test]
async fn json_submits_are_checked() {
    let raw = Raw::start(quick()).await;
    let missing = raw.submit_json(json!({"audio": {}})).await;
    assert_eq!(missing.status(), 400);
    assert!(
        missing.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("audio.source.url")
    );
    let malformed = raw
        .http
        .post(raw.url(""))
        .bearer_auth("sim-token")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let wrong_type = raw
        .http
        .post(raw.url(""))
        .bearer_auth("sim-token")
        .header("content-type", "text/plain")
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), 415);
    let unknown = raw.get("/no-such-rid").await;
    assert_eq!(unknown.status(), 404);
    assert!(unknown.json::<Value>().await.unwrap()["error"].is_string());
}

#[tokio::test]
async fn invalid_option_values_end_the_job_in_input_error_naming_the_field() {
    let raw = Raw::start(quick()).await;
    let rid = raw
        .submit(
            "https://a.example/x.wav",
            json!({"sttConfig": {"keywordBoost": {"enable": true, "keywords": ["a"], "boost": 40}}}),
        )
        .await;
    let body: Value = raw.get(&format!("/{rid}")).await.json().await.unwrap();
    assert_eq!(body["status"], "input_error");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("sttConfig.keywordBoost.boost"),
        "{body}"
    );
    let rid = raw
        .submit(
            "https://a.example/x.wav",
            json!({"sttConfig": {"language": "ko-kr"}}),
        )
        .await;
    let body: Value = raw.get(&format!("/{rid}")).await.json().await.unwrap();
    assert_eq!(body["status"], "input_error");
    // A failed job has no subtitles: 204, a status the endpoint documents (see the crate docs).
    let srt = raw.get(&format!("/{rid}/srt")).await;
    assert_eq!(srt.status(), 204);
}

fn form_with_file(name: &str, bytes: Vec<u8>) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
    )
}

#[tokio::test]
async fn multipart_submits_are_streamed_and_checked() {
    // 10 s of audio at the emulator's 16,000 bytes a second: long enough to hold words.
    let raw = Raw::start(quick().max_upload_bytes(160_000)).await;
    let post = |form: reqwest::multipart::Form| {
        raw.http
            .post(raw.url(""))
            .bearer_auth("sim-token")
            .multipart(form)
            .send()
    };
    let ok = post(
        form_with_file("call.mp4", vec![7; 160_000])
            .text("sttConfig", r#"{"multiChannel": {"channelCount": 2}}"#)
            .text("custom", r#"{"n": 1}"#),
    )
    .await
    .unwrap();
    assert_eq!(ok.status(), 200);
    let answer: Value = ok.json().await.unwrap();
    assert_eq!(answer["fileName"], "call.mp4");
    assert_eq!(answer["custom"]["n"], 1);
    let rid = answer["rid"].as_str().unwrap();
    let body: Value = raw.get(&format!("/{rid}")).await.json().await.unwrap();
    assert_eq!(body["sttResults"].as_array().unwrap().len(), 2);

    assert_eq!(
        post(form_with_file("call.wav", vec![7; 160_001]))
            .await
            .unwrap()
            .status(),
        413
    );
    assert_eq!(
        post(form_with_file("call.exe", vec![7; 10]))
            .await
            .unwrap()
            .status(),
        415
    );
    let no_file = reqwest::multipart::Form::new().text("custom", "{}");
    assert_eq!(post(no_file).await.unwrap().status(), 400);
    let bad_json = form_with_file("a.wav", vec![1; 10]).text("sttConfig", "{oops");
    assert_eq!(post(bad_json).await.unwrap().status(), 400);
}

#[tokio::test]
async fn credits_run_out_with_403() {
    let raw = Raw::start(quick().credits(1)).await;
    raw.submit("https://a.example/x.wav", json!({})).await;
    let answer = raw
        .submit_json(json!({"audio": {"source": {"url": "https://a.example/y.wav"}}}))
        .await;
    assert_eq!(answer.status(), 403);
}

#[tokio::test]
async fn injected_bursts_global_and_per_job() {
    let planner = Planner::new(|submission, plan| {
        if submission.audio_name.contains("flaky") {
            plan.faults.status_error_burst = Some(ErrorBurst::new(503, 2));
        }
    });
    let raw = Raw::start(quick().planner(planner)).await;
    let flaky = raw.submit("https://a.example/flaky.wav", json!({})).await;
    let steady = raw.submit("https://a.example/steady.wav", json!({})).await;
    assert_eq!(raw.get(&format!("/{steady}")).await.status(), 200);
    assert_eq!(raw.get(&format!("/{flaky}")).await.status(), 503);
    assert_eq!(raw.get(&format!("/{flaky}")).await.status(), 503);
    assert_eq!(raw.get(&format!("/{flaky}")).await.status(), 200);

    raw.sim.inject_errors(Endpoint::Status, ErrorBurst::new(500, 2));
    assert_eq!(raw.get(&format!("/{steady}")).await.status(), 500);
    assert_eq!(raw.get(&format!("/{flaky}")).await.status(), 500);
    assert_eq!(raw.get(&format!("/{steady}")).await.status(), 200);
    assert_eq!(raw.sim.job(&Rid::new(&flaky)).unwrap().status_requests, 3);
}

#[tokio::test]
async fn slow_answers_hold_the_answer_back() {
    let planner = Planner::new(|submission, plan| {
        if submission.audio_name.contains("slow") {
            plan.faults.slow_answers = Some(Duration::from_secs(30));
        }
    });
    let raw = Raw::start(quick().planner(planner)).await;
    let rid = raw.submit("https://a.example/quick.wav", json!({})).await;
    let quick_rid = rid.clone();
    let slow_rid = {
        let mut config = json!({"audio": {"source": {"url": "https://a.example/slow.wav"}}});
        config["custom"] = json!({});
        let answer = tokio::time::timeout(Duration::from_millis(200), raw.submit_json(config)).await;
        assert!(answer.is_err(), "the slow job's submit answer is held back");
        raw.sim
            .jobs()
            .into_iter()
            .find(|j| j.rid.as_str() != quick_rid)
            .unwrap()
            .rid
    };
    let held = tokio::time::timeout(Duration::from_millis(200), raw.get(&format!("/{slow_rid}"))).await;
    assert!(held.is_err(), "the slow job's status answer is held back");
    // Other jobs are served meanwhile.
    assert_eq!(raw.get(&format!("/{rid}")).await.status(), 200);
}

#[tokio::test]
async fn same_seed_same_rids_and_transcripts() {
    async fn run(seed: u64) -> (String, Value) {
        let raw = Raw::start(quick().seed(seed)).await;
        let rid = raw
            .submit("https://a.example/standup.wav?duration=20", json!({}))
            .await;
        let body: Value = raw.get(&format!("/{rid}")).await.json().await.unwrap();
        (rid, body["sttResults"].clone())
    }
    let (rid_a, words_a) = run(7).await;
    let (rid_b, words_b) = run(7).await;
    let (rid_c, words_c) = run(8).await;
    assert_eq!((rid_a.as_str(), &words_a), (rid_b.as_str(), &words_b));
    assert_ne!(rid_a, rid_c);
    assert_ne!(words_a, words_c);
    let first = &words_a[0]["words"][0];
    assert!(
        first["startTime"]["seconds"].is_string(),
        "seconds travel as strings: {first}"
    );
}

#[tokio::test]
async fn silent_audio_answers_204_on_both_gets() {
    let raw = Raw::start(quick()).await;
    let rid = raw.submit("https://a.example/silent-room.wav", json!({})).await;
    assert_eq!(raw.get(&format!("/{rid}")).await.status(), 204);
    assert_eq!(raw.get(&format!("/{rid}/srt")).await.status(), 204);
    assert_eq!(
        raw.sim.job(&Rid::new(&rid)).unwrap().ending,
        daglo_sim::Ending::Silent
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json_errors() {
    let sim = Simulator::start(quick()).await.unwrap();
    let http = reqwest::Client::new();
    let answer = http
        .get(format!("{}/other", sim.base_url()))
        .bearer_auth("sim-token")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 404);
    let answer = http
        .delete(format!("{}/stt/v1/async/transcripts/x", sim.base_url()))
        .bearer_auth("sim-token")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 405);
    assert!(answer.json::<Value>().await.unwrap()["error"].is_string());
    sim.shutdown().await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_request_head_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sim = Simulator::start(SimConfig::default().header_timeout(Duration::from_millis(200)))
        .await
        .unwrap();
    let mut stream = tokio::net::TcpStream::connect(sim.local_addr()).await.unwrap();
    stream
        .write_all(b"GET /stt/v1/async/transcripts/r HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the connection was closed");
}
