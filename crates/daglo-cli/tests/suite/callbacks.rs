//! `daglo callbacks list|replay` against a running service (`daglo_serve::Server`, in-process),
//! which took a job's callbacks from the emulator.

use std::time::Duration;

use daglo::sim::{SimConfig, Simulator};
use serde_json::Value;

use crate::common::{temp, text};

const KEY: &str = "sk-test-callbacks-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callbacks_command_lists_and_replays_a_jobs_callbacks() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let sim = Simulator::start(SimConfig::default().processing_time(Duration::from_millis(600)))
            .await
            .unwrap();
        // The service's port, picked free here: Daglo must be told where to call before it starts.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data = temp("callbacks-cmd");
        let _ = std::fs::remove_dir_all(&data);
        let config = daglo_serve::Config::from_toml(&format!(
            "listen = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\nbase_url = \"{}\"\n\
             data_dir = \"{}\"\napi_keys = [\"{KEY}\"]\nstrategy = \"callback\"\n",
            sim.base_url(),
            data.display()
        ))
        .unwrap();
        let server = daglo_serve::Server::start(config, sim.token().to_owned())
            .await
            .unwrap();
        let base = format!("http://{}", server.local_addr());
        let http = reqwest::Client::new();
        let job: Value = http
            .post(format!("{base}/v1/jobs"))
            .bearer_auth(KEY)
            .json(&serde_json::json!({"url": "https://a.example/call.wav"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = job["id"].as_str().unwrap().to_owned();
        let mut events = http
            .get(format!("{base}/v1/jobs/{id}/events"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        // The stream ends after the job's outcome.
        while events.chunk().await.unwrap().is_some() {}

        let daglo = |args: Vec<String>, key: Option<&str>| {
            let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_daglo"));
            command.args(args).env_remove("DAGLO_SERVE_API_KEY");
            if let Some(key) = key {
                command.env("DAGLO_SERVE_API_KEY", key);
            }
            tokio::task::spawn_blocking(move || command.output().unwrap())
        };
        let args = |verb: &str| -> Vec<String> {
            ["callbacks", verb, "--job", &id, "--server", &base]
                .map(str::to_owned)
                .to_vec()
        };
        let list = daglo(args("list"), Some(KEY)).await.unwrap();
        assert!(list.status.success(), "{}", text(&list.stderr));
        assert!(
            text(&list.stdout).contains("200 accepted"),
            "{}",
            text(&list.stdout)
        );
        assert!(
            text(&list.stdout).contains("transcribed"),
            "{}",
            text(&list.stdout)
        );

        // The job ended: its final replayed changes nothing.
        let replay = daglo(args("replay"), Some(KEY)).await.unwrap();
        assert!(replay.status.success(), "{}", text(&replay.stderr));
        let said = text(&replay.stdout);
        assert!(!said.contains("replayed: accepted"), "{said}");
        assert!(said.contains("is now finished"), "{said}");

        let nokey = daglo(args("list"), None).await.unwrap();
        assert_eq!(nokey.status.code(), Some(2), "{}", text(&nokey.stderr));
        let wrong = daglo(args("list"), Some("sk-not-a-key-of-this-service"))
            .await
            .unwrap();
        assert_eq!(wrong.status.code(), Some(2), "{}", text(&wrong.stderr));
        assert_eq!(sim.jobs().len(), 1);
        server.drain(Duration::from_secs(5)).await;
        let _ = std::fs::remove_dir_all(data);
    })
    .await
    .expect("within the deadline");
}
