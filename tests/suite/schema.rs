//! Everything the client sends is what the published schema allows: every option, alone and
//! together, in JSON bodies and multipart parts, checked by the `jsonschema` Python package
//! against `tests/fixtures/daglo-async-openapi.yml` (the provider's excerpt from `../shared/docs`) — an implementation this project did not
//! write.
//!
//! The Python interpreter is `DAGLO_TEST_PYTHON` (CI sets it to a venv with `jsonschema` and
//! `pyyaml`), else `python3` when it has both; without either the test says so on the terminal
//! and passes — except under CI, where it fails.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use daglo::models::{Callback, Model};
use daglo::{JobOptions, Language};
use serde_json::{Value, json};

/// The provider's OpenAPI excerpt, kept in the repository so a checkout alone runs the suite.
const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/daglo-async-openapi.yml"
);

/// Where the team's shared copy lives, when this checkout sits beside it.
const SHARED_SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/docs/daglo-async-openapi.yml"
);

#[test]
fn the_kept_schema_is_the_shared_one() {
    // Only where the shared copy exists (the team's machines); a bare checkout has the kept one.
    if let Ok(shared) = std::fs::read_to_string(SHARED_SPEC) {
        assert_eq!(
            std::fs::read_to_string(SPEC).unwrap(),
            shared,
            "tests/fixtures/daglo-async-openapi.yml differs from ../shared: copy it again"
        );
    }
}

/// Every submit the client makes, as it arrived.
type Captured = Arc<Mutex<Vec<Value>>>;

/// A stand-in for the service that records each submit: JSON bodies whole, multipart text parts
/// by name, and answers with a rid.
async fn capture(
    State(captured): State<Captured>,
    request: Request,
) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Bytes = axum::body::to_bytes(request.into_body(), 64 << 20).await.unwrap();
    let mut items = Vec::new();
    if content_type.starts_with("application/json") {
        items.push(json!({"kind": "json", "body": serde_json::from_slice::<Value>(&body).unwrap()}));
    } else {
        let boundary = multer::parse_boundary(&content_type).unwrap();
        let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
        let mut form = multer::Multipart::new(stream, boundary);
        while let Some(field) = form.next_field().await.unwrap() {
            let name = field.name().unwrap_or_default().to_owned();
            if name != "file" {
                items.push(json!({"kind": "part", "name": name, "text": field.text().await.unwrap()}));
            }
        }
    }
    captured.lock().unwrap().extend(items);
    (
        [(CONTENT_TYPE, "application/json")],
        json!({"rid": "r-1"}).to_string(),
    )
}

/// Every option alone, then all of them together, then each language.
fn option_sets() -> Vec<JobOptions> {
    let callback = Callback::new("https://hooks.example.com/daglo/k").header("x-daglo-token", "t");
    let mut sets = vec![
        JobOptions::default(),
        JobOptions::builder().model(Model::General).build().unwrap(),
        JobOptions::builder()
            .keyword_boost(["다글로"], 12)
            .build()
            .unwrap(),
        JobOptions::builder()
            .keyword_boost(["다글로", "회의"], None)
            .build()
            .unwrap(),
        JobOptions::builder().channel_count(2).build().unwrap(),
        JobOptions::builder()
            .speaker_diarization(Some(3))
            .build()
            .unwrap(),
        JobOptions::builder().speaker_diarization(None).build().unwrap(),
        JobOptions::builder().keyword_extraction(5).build().unwrap(),
        JobOptions::builder().sentiment_analysis(true).build().unwrap(),
        JobOptions::builder().callback(callback.clone()).build().unwrap(),
        JobOptions::builder()
            .custom("app_id", "a-1")
            .custom("n", 3)
            .build()
            .unwrap(),
        JobOptions::builder()
            .model(Model::General)
            .language(Language::Mixed)
            .keyword_boost(["a"], 1)
            .channel_count(1)
            .speaker_diarization(Some(2))
            .keyword_extraction(1)
            .sentiment_analysis(true)
            .callback(callback)
            .custom("app_id", json!({"nested": [1, 2]}))
            .build()
            .unwrap(),
    ];
    for language in Language::ALL {
        sets.push(JobOptions::builder().language(*language).build().unwrap());
    }
    sets
}

/// The interpreter with `jsonschema` and `yaml`, or why there is none.
fn python() -> Result<PathBuf, String> {
    let candidate =
        std::env::var_os("DAGLO_TEST_PYTHON").map_or_else(|| PathBuf::from("python3"), PathBuf::from);
    let probe = std::process::Command::new(&candidate)
        .args(["-c", "import jsonschema, yaml"])
        .output();
    match probe {
        Ok(out) if out.status.success() => Ok(candidate),
        _ => Err(format!(
            "{} cannot import jsonschema and yaml (set DAGLO_TEST_PYTHON to a venv with them)",
            candidate.display()
        )),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_body_the_client_builds_is_valid_against_the_published_schema() {
    let python = match python() {
        Ok(python) => python,
        Err(why) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must validate request bodies: {why}"
            );
            let _ = writeln!(std::io::stderr(), "SKIPPED request-body schema validation: {why}");
            return;
        }
    };
    let captured: Captured = Arc::default();
    let app = axum::Router::new().fallback(capture).with_state(captured.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let client = daglo::Client::builder()
        .token("t")
        .base_url(base_url)
        .build()
        .unwrap();
    let audio = std::env::temp_dir().join(format!("daglo-schema-{}.wav", std::process::id()));
    std::fs::write(&audio, vec![1_u8; 4_000]).unwrap();
    let sets = option_sets();
    for options in &sets {
        let submitted = tokio::time::timeout(Duration::from_secs(30), async {
            client
                .submit_url("https://a.example/a.wav", options)
                .await
                .unwrap();
            client.submit_file(&audio, options).await.unwrap();
        })
        .await;
        assert!(submitted.is_ok(), "the submits finished");
    }
    server.abort();
    let _ = std::fs::remove_file(&audio);
    let captured = captured.lock().unwrap().clone();
    assert!(captured.len() > sets.len(), "JSON bodies and parts were captured");
    let file = std::env::temp_dir().join(format!("daglo-schema-{}.json", std::process::id()));
    std::fs::write(&file, serde_json::to_vec(&captured).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/validate_requests.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(SPEC)
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    let report = String::from_utf8_lossy(&out.stdout);
    println!("{report}");
    assert!(
        out.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
