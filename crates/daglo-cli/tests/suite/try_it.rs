//! Trying it as a new user does: `daglo serve --emulate` (no token, a printed key) and
//! `daglo sim` (the emulator on its own), each a real child process.

use std::time::Duration;

use tokio::io::AsyncBufReadExt as _;

/// Reads `child`'s stderr until a line starting with each of `prefixes` was seen; the rests.
async fn said(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStderr>>,
    prefixes: &[&str],
) -> Vec<String> {
    let mut found = vec![String::new(); prefixes.len()];
    while found.iter().any(String::is_empty) {
        let line = lines.next_line().await.unwrap().expect("the process says it");
        for (i, prefix) in prefixes.iter().enumerate() {
            if let Some(rest) = line.strip_prefix(prefix) {
                found[i] = rest.trim().to_owned();
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_emulate_runs_the_service_with_a_printed_key_and_no_token() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_daglo"))
            .args(["serve", "--emulate"])
            .env("DAGLO_LISTEN", "127.0.0.1:0")
            .env_remove("DAGLO_API_TOKEN")
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let found = said(
            &mut lines,
            &[
                "daglo serve --emulate: API key (for this run only):",
                "daglo serve: listening on ",
            ],
        )
        .await;
        let (key, base) = (&found[0], &found[1]);
        assert!(key.len() >= 16, "{key}");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        daglo::client::install_crypto_provider();
        let http = reqwest::Client::new();
        let job: serde_json::Value = http
            .post(format!("{base}/v1/jobs"))
            .bearer_auth(key)
            .json(&serde_json::json!({"url": "https://example.com/meeting.mp3"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = job["id"].as_str().unwrap_or_else(|| panic!("{job}")).to_owned();
        loop {
            let now: serde_json::Value = http
                .get(format!("{base}/v1/jobs/{id}"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if now["state"] == "finished" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let transcript = http
            .get(format!("{base}/v1/jobs/{id}/transcript"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!transcript.is_empty());
        let pid = child.id().unwrap();
        let data = std::env::temp_dir().join(format!("daglo-serve-emulate-{pid}"));
        assert!(data.exists(), "its data in a temporary directory");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = child.wait().await.unwrap();
        assert!(exit.success(), "{exit:?}");
        assert!(!data.exists(), "the temporary data is removed at exit");
    })
    .await
    .expect("within the deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daglo_sim_runs_the_emulator_on_its_own() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_daglo"))
            .args(["sim", "--port", "0", "--processing-ms", "100"])
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let base = loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("it says where it listens");
            if let Some(rest) = line.strip_prefix("daglo emulator on ") {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        daglo::client::install_crypto_provider();
        let answer = reqwest::Client::new()
            .get(format!("{base}/stt/v1/async/transcripts/no-such-rid"))
            .bearer_auth("sim-token")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 404);
        let bad = std::process::Command::new(env!("CARGO_BIN_EXE_daglo"))
            .args(["sim", "--port", "x"])
            .output()
            .unwrap();
        assert_eq!(bad.status.code(), Some(2), "a usage error");
        child.kill().await.unwrap();
    })
    .await
    .expect("within the deadline");
}
