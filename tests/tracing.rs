//! The spans a job makes, exported through `tracing-opentelemetry` to OpenTelemetry's in-memory
//! exporter: one `daglo.job` per job, with its submit, status requests, confirmation and journal
//! writes as children, OpenTelemetry's HTTP field names, and no secret anywhere. In a binary of
//! its own: the subscriber is the process's global one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use daglo::journal::SqliteJournal;
use daglo::poll::{PollPolicy, PollingConfig, PollingDelivery};
use daglo::sim::SimConfig;
use daglo::{Input, JobOptions, Outcome, Transcriber};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_subscriber::layer::SubscriberExt as _;

mod support;

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_job_is_one_span_tree_without_secrets() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("daglo-test")));
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this binary");

    let dir = std::env::temp_dir().join(format!("daglo-tracing-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (sim, client) = support::sim(SimConfig::default()).await;
    let journal = Arc::new(SqliteJournal::open(dir.join("jobs.sqlite")).unwrap());
    // A polled job, and a callback job whose final is confirmed.
    let polled = Transcriber::builder(client.clone())
        .delivery(PollingDelivery::new(
            client.clone(),
            PollingConfig::default().policy(PollPolicy::Fixed(Duration::from_millis(40))),
        ))
        .journal(journal.clone())
        .build()
        .await
        .unwrap();
    let (callbacks, server) = support::callbacks(&client).await;
    let called = Transcriber::builder(client.clone())
        .delivery(callbacks)
        .receiver(server)
        .journal(journal)
        .build()
        .await
        .unwrap();
    let mut transcripts = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        for (transcriber, key) in [(&polled, "polled-job"), (&called, "called-job")] {
            let job = transcriber
                .start(
                    Input::url("https://a.example/a.wav").key(key),
                    &JobOptions::default(),
                )
                .await
                .unwrap();
            let Outcome::Transcript { body, .. } = transcriber.outcome(&job.id()).await.unwrap() else {
                panic!("a transcript");
            };
            transcripts.push(body.full_transcript());
        }
    })
    .await
    .expect("within the deadline");
    polled.shutdown().await;
    called.shutdown().await;
    let _ = provider.force_flush();
    let spans = exporter.get_finished_spans().unwrap();

    let by_id: HashMap<_, _> = spans.iter().map(|s| (s.span_context.span_id(), s)).collect();
    let children = |parent: &SpanData, name: &str| {
        spans
            .iter()
            .filter(|s| s.parent_span_id == parent.span_context.span_id() && s.name == name)
            .count()
    };
    let jobs: Vec<&SpanData> = spans.iter().filter(|s| s.name == "daglo.job").collect();
    assert_eq!(
        jobs.len(),
        2,
        "{:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    for job in &jobs {
        let key = attribute(job, "key").unwrap();
        assert!(["polled-job", "called-job"].contains(&key.as_str()), "{key}");
        assert!(attribute(job, "rid").is_some_and(|rid| sim.job(&daglo::Rid::new(rid)).is_some()));
        assert_eq!(children(job, "daglo.submit"), 1, "{key}");
        assert!(
            children(job, "daglo.journal") >= 3,
            "claim, submitted, finished: {key}"
        );
        if key == "polled-job" {
            assert_eq!(attribute(job, "strategy").as_deref(), Some("polling"));
            assert!(children(job, "daglo.status") >= 1, "polls are the job's children");
        } else {
            assert_eq!(attribute(job, "strategy").as_deref(), Some("callback"));
            let confirms: Vec<&SpanData> = spans
                .iter()
                .filter(|s| s.name == "daglo.confirm" && s.parent_span_id == job.span_context.span_id())
                .collect();
            assert_eq!(confirms.len(), 1);
            assert_eq!(children(confirms[0], "daglo.status"), 1, "the confirming GET");
        }
    }
    let submit = spans.iter().find(|s| s.name == "daglo.submit").unwrap();
    assert_eq!(attribute(submit, "http.request.method").as_deref(), Some("POST"));
    assert_eq!(
        attribute(submit, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert!(attribute(submit, "url.path").is_some_and(|p| p.ends_with("/stt/v1/async/transcripts")));
    let status = spans.iter().find(|s| s.name == "daglo.status").unwrap();
    assert_eq!(attribute(status, "http.request.method").as_deref(), Some("GET"));
    assert!(by_id.contains_key(&status.parent_span_id));

    // No secret and no transcript text anywhere: not the token, not a callback credential.
    let token = sim.token().to_owned();
    for span in &spans {
        for kv in &span.attributes {
            let value = kv.value.to_string();
            assert!(!value.contains(&token), "{}: {}={value}", span.name, kv.key);
            assert!(
                !value.to_ascii_lowercase().contains("bearer"),
                "{}: {}",
                span.name,
                kv.key
            );
            for text in &transcripts {
                assert!(
                    text.len() < 8 || !value.contains(text.as_str()),
                    "{}: {}",
                    span.name,
                    kv.key
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}
