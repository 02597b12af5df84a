//! What a run shows to those who watch it: `--metrics-listen` serves the library's metrics,
//! parsed here by the Prometheus client library's own parser (Python `prometheus-client`, in
//! the venv CI makes), and every run ends with one line of what it cost.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use crate::common::*;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The interpreter with `prometheus_client`, or why there is none.
fn python() -> Result<PathBuf, String> {
    let candidate =
        std::env::var_os("DAGLO_TEST_PYTHON").map_or_else(|| PathBuf::from("python3"), PathBuf::from);
    match std::process::Command::new(&candidate)
        .args(["-c", "import prometheus_client"])
        .output()
    {
        Ok(out) if out.status.success() => Ok(candidate),
        _ => Err(format!(
            "{} cannot import prometheus_client (set DAGLO_TEST_PYTHON to a venv with it)",
            candidate.display()
        )),
    }
}

const PARSER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/parse_metrics.py");

/// Every sample the parser read from `source` (a URL), as JSON values.
fn parse(python: &PathBuf, url: &str) -> Vec<serde_json::Value> {
    let out = std::process::Command::new(python)
        .args([PARSER, url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn value(samples: &[serde_json::Value], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .filter(|s| s["name"] == name && labels.iter().all(|(k, v)| s["labels"][k] == *v))
        .map(|s| s["value"].as_f64().unwrap())
        .reduce(|a, b| a + b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_listen_serves_prometheus_text_and_the_run_ends_with_its_cost() {
    let python = match python() {
        Ok(python) => python,
        Err(why) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must parse the metrics: {why}"
            );
            let _ = writeln!(std::io::stderr(), "SKIPPED metrics parsing: {why}");
            return;
        }
    };
    tokio::time::timeout(Duration::from_secs(120), async {
        let (sim, inputs, out) = outliving_service("metrics", 4, 3).await;
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_daglo"))
            .args([
                "transcribe",
                inputs.to_str().unwrap(),
                "--out-dir",
                out.to_str().unwrap(),
                "--base-url",
                &sim.base_url(),
                "--metrics-listen",
                "127.0.0.1:0",
            ])
            .env("DAGLO_API_TOKEN", sim.token())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let url = loop {
            let line = lines.next_line().await.unwrap().expect("the address is printed");
            if let Some(url) = line.strip_prefix("daglo: metrics at ") {
                break url.to_owned();
            }
        };
        let rest = tokio::spawn(async move {
            let mut rest = Vec::new();
            while let Ok(Some(line)) = lines.next_line().await {
                rest.push(line);
            }
            rest
        });
        all_submitted(&out, 4).await;
        let python_for_scrape = python.clone();
        let samples = tokio::task::spawn_blocking(move || parse(&python_for_scrape, &url))
            .await
            .unwrap();
        assert_eq!(
            value(
                &samples,
                "daglo_requests_total",
                &[("endpoint", "submit"), ("class", "2xx")]
            ),
            Some(4.0),
            "{samples:#?}"
        );
        assert_eq!(
            value(&samples, "daglo_submits_total", &[("result", "created")]),
            Some(4.0)
        );
        assert_eq!(
            value(&samples, "daglo_jobs_in_flight", &[("strategy", "polling")]),
            Some(4.0),
            "{samples:#?}"
        );
        assert!(
            samples
                .iter()
                .any(|s| s["family"] == "daglo_requests" && s["type"] == "counter")
        );
        assert!(samples.iter().any(|s| s["name"] == "daglo_budget_rate"));
        assert!(
            samples
                .iter()
                .any(|s| s["name"] == "daglo_budget_wait_seconds_bucket")
        );
        let status = child.wait().await.unwrap();
        let rest = rest.await.unwrap().join("\n");
        assert_eq!(status.code(), Some(0), "{rest}");
        let cost = rest
            .lines()
            .find(|l| l.starts_with("daglo: cost: "))
            .unwrap_or_else(|| panic!("{rest}"));
        assert!(cost.contains("(submit 4, status "), "{cost}");
        assert!(cost.contains("0 answered 429"), "{cost}");
        // `daglo jobs` shows what each job cost in status requests.
        let listed = text(&daglo(&["jobs", "--out-dir", out.to_str().unwrap()]).stdout);
        let header = listed.lines().next().unwrap();
        assert!(header.contains("requests"), "{listed}");
        let finished: Vec<&str> = listed.lines().filter(|l| l.contains("finished")).collect();
        assert_eq!(finished.len(), 4, "{listed}");
        for line in finished {
            let requests: u64 = line
                .split_whitespace()
                .nth(4)
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{line}"));
            assert!(requests >= 1, "{line}");
        }
        let _ = std::fs::remove_dir_all(inputs);
        let _ = std::fs::remove_dir_all(out);
    })
    .await
    .expect("within the deadline");

    // The parser is a real one: it refuses text that is not the format.
    let mut refused = std::process::Command::new(&python)
        .arg(PARSER)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    refused
        .stdin
        .take()
        .unwrap()
        .write_all(b"# TYPE x counter\nx{a=\"1\" 1\n")
        .unwrap();
    assert!(!refused.wait().unwrap().success());
}

#[test]
fn log_format_json_writes_one_json_object_a_line() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_daglo"))
        .args([
            "transcribe",
            SAMPLE,
            "--emulate",
            "--emulate-processing-ms",
            "300",
            "--log-format",
            "json",
        ])
        .env_remove("DAGLO_API_TOKEN")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let logs: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        logs.iter()
            .any(|l| l["fields"]["message"] == "job submitted" || l["fields"]["message"] == "job accepted"),
        "{stderr}"
    );
    for log in &logs {
        assert!(log["level"].is_string() && log["target"].is_string(), "{log}");
    }
    // The human lines stay as they were, outside the JSON.
    assert!(stderr.lines().any(|l| l.starts_with("daglo: cost: ")), "{stderr}");
}
