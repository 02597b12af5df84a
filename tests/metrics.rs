//! The metrics the library records, counted by `metrics-util`'s debugging recorder while jobs
//! run against the emulator with faults on: a duplicated final, a dropped final (the hybrid
//! falls back to polling), a late progress body, a forged callback and an unknown key. In a
//! binary of its own: the recorder is the process's one global recorder.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use daglo::journal::SqliteJournal;
use daglo::poll::{PollPolicy, PollingConfig, PollingDelivery};
use daglo::sim::{Planner, SimConfig};
use daglo::{HybridDelivery, Input, JobOptions, Outcome, Transcriber};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

mod support;

/// Every counter of `snapshot` by name and labels (`name{k=v,…}` with labels sorted).
fn counters(snapshotter: &Snapshotter) -> (HashMap<String, u64>, Vec<(String, String)>) {
    let mut counters = HashMap::new();
    let mut labels = Vec::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let mut pairs: Vec<(String, String)> = key
            .key()
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        pairs.sort();
        labels.extend(pairs.iter().cloned());
        let name = format!(
            "{}{{{}}}",
            key.key().name(),
            pairs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        if let DebugValue::Counter(count) = value {
            counters.insert(name, count);
        }
    }
    (counters, labels)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_with_faults_are_counted_with_bounded_labels() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().expect("the only recorder of this binary");
    daglo::telemetry::describe();

    tokio::time::timeout(Duration::from_secs(60), async {
        let planner = Planner::new(|submission, plan| match submission.audio_name.as_str() {
            name if name.ends_with("dup.wav") => plan.faults.duplicate_final_callback = true,
            name if name.ends_with("drop.wav") => plan.faults.drop_final_callback = true,
            name if name.ends_with("late.wav") => plan.faults.late_progress_after_final = true,
            _ => {}
        });
        let (sim, client) = support::sim(SimConfig::default().planner(planner)).await;
        let (callbacks, server) = support::callbacks(&client).await;
        let polling = PollingDelivery::new(
            client.clone(),
            PollingConfig::default().policy(PollPolicy::Fixed(Duration::from_millis(50))),
        );
        let hybrid = HybridDelivery::new(callbacks.clone(), polling).window(Duration::from_millis(600));
        let dir = std::env::temp_dir().join(format!("daglo-metrics-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let journal = Arc::new(SqliteJournal::open(dir.join("jobs.sqlite")).unwrap());
        let transcriber = Transcriber::builder(client.clone())
            .delivery(hybrid)
            .receiver(server)
            .journal(journal)
            .build()
            .await
            .unwrap();

        // A forged callback (a registered job's URL, a wrong credential) and an unknown key.
        let mut options = JobOptions::default();
        let ticket = daglo::ResultDelivery::prepare(&callbacks, &mut options)
            .await
            .unwrap();
        let callback = options.callback.clone().unwrap();
        let (name, _) = callback.headers.iter().next().unwrap();
        let http = reqwest::Client::new();
        let forged = http
            .post(&callback.url)
            .header(name.as_str(), "forged")
            .header("content-type", "application/json")
            .body(r#"{"status":"transcribed"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 401);
        let base = callback.url.rsplit_once('/').unwrap().0.to_owned();
        let unknown = http
            .post(format!("{base}/not-a-key"))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(unknown.status(), 404);
        drop(ticket);

        let mut ids = Vec::new();
        for audio in ["dup.wav", "drop.wav", "late.wav"] {
            let job = transcriber
                .start(
                    Input::url(format!("https://a.example/{audio}")).key(audio),
                    &JobOptions::default(),
                )
                .await
                .unwrap();
            ids.push(job.id());
        }
        for id in &ids {
            assert!(matches!(
                transcriber.outcome(id).await.unwrap(),
                Outcome::Transcript { .. }
            ));
        }
        // The duplicate and the late progress arrive after the outcome: wait for the emulator
        // to have sent everything.
        for job in sim.jobs() {
            sim.callbacks_done(&job.rid).await;
        }
        let (counted, labels) = counters(&snapshotter);
        let count = |name: &str| counted.get(name).copied().unwrap_or(0);
        assert_eq!(count("daglo_submits_total{result=created}"), 3, "{counted:#?}");
        assert_eq!(
            count("daglo_requests_total{class=2xx,endpoint=submit}"),
            3,
            "{counted:#?}"
        );
        assert!(
            count("daglo_requests_total{class=2xx,endpoint=status}") >= 3,
            "{counted:#?}"
        );
        assert_eq!(
            count("daglo_callbacks_total{result=bad_credential}"),
            1,
            "{counted:#?}"
        );
        assert_eq!(
            count("daglo_callbacks_total{result=unknown_key}"),
            1,
            "{counted:#?}"
        );
        assert!(
            count("daglo_callbacks_total{result=accepted}") >= 2,
            "{counted:#?}"
        );
        assert!(
            count("daglo_callbacks_total{result=duplicate}") + count("daglo_callbacks_total{result=late}")
                >= 1,
            "the duplicated final: {counted:#?}"
        );
        assert_eq!(
            count("daglo_confirmations_total{result=agreed}"),
            2,
            "{counted:#?}"
        );
        assert_eq!(
            count("daglo_hybrid_fallbacks_total{}"),
            1,
            "the dropped final: {counted:#?}"
        );
        assert_eq!(
            count("daglo_jobs_ended_total{outcome=transcript,strategy=hybrid}"),
            3,
            "{counted:#?}"
        );
        assert_eq!(
            count("daglo_journal_operations_total{backend=sqlite,operation=claim,result=ok}"),
            3,
            "{counted:#?}"
        );
        assert!(count("daglo_journal_operations_total{backend=sqlite,operation=finished,result=ok}") == 3);

        // Bounded labels: names from the documented lists, never a rid, a key or a URL.
        let allowed = [
            "endpoint",
            "class",
            "scope",
            "result",
            "strategy",
            "state",
            "outcome",
            "backend",
            "operation",
            "component",
        ];
        for (key, value) in &labels {
            assert!(allowed.contains(&key.as_str()), "label {key}");
            assert!(
                value.len() <= 20 && !value.contains('/') && !value.contains('.'),
                "{key}={value}"
            );
            for job in sim.jobs() {
                assert!(!value.contains(job.rid.as_str()));
            }
            assert!(!value.contains("wav") && value != sim.token(), "{key}={value}");
        }
        let _ = std::fs::remove_dir_all(dir);
    })
    .await
    .expect("within the deadline");
}

#[test]
fn every_metric_is_documented() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md")).unwrap();
    for metric in daglo::telemetry::METRICS {
        assert!(
            docs.contains(&format!("`{}`", metric.name)),
            "{} is not in docs/metrics.md",
            metric.name
        );
    }
}
