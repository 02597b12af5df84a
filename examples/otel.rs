//! Tracing spans exported through OpenTelemetry: one `daglo.job` span per job, its submit,
//! status requests and journal writes as children, with OpenTelemetry's HTTP field names.
//!
//! `cargo run --example otel` runs two jobs against the built-in emulator and prints the span
//! trees the exporter received. In production, swap the in-memory exporter for
//! `opentelemetry-otlp`'s (`SpanExporter::builder().with_tonic().build()?`) and give the
//! provider a batch exporter instead of the simple one; nothing else changes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use daglo::journal::SqliteJournal;
use daglo::poll::{PollPolicy, PollingConfig, PollingDelivery};
use daglo::sim::{SimConfig, Simulator};
use daglo::{Input, JobOptions, Transcriber};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_subscriber::layer::SubscriberExt as _;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The OpenTelemetry pipeline, and tracing's spans fed into it.
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("daglo"))),
    )?;

    // Two jobs against the emulator, recorded in a journal.
    let sim = Simulator::start(SimConfig::default().processing_time(Duration::from_millis(400))).await?;
    let client = daglo::sim::client(&sim)?;
    let polling = PollingDelivery::new(
        client.clone(),
        PollingConfig::default().policy(PollPolicy::Fixed(Duration::from_millis(150))),
    );
    let dir = std::env::temp_dir().join(format!("daglo-otel-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let transcriber = Transcriber::builder(client)
        .delivery(polling)
        .journal(Arc::new(SqliteJournal::open(dir.join("jobs.sqlite"))?))
        .build()
        .await?;
    for key in ["standup", "retro"] {
        let job = transcriber
            .start(
                Input::url(format!("https://example.com/{key}.wav")).key(key),
                &JobOptions::default(),
            )
            .await?;
        transcriber.outcome(&job.id()).await?;
    }
    transcriber.shutdown().await;
    provider.force_flush()?;

    // What the exporter got, as trees.
    let spans = exporter.get_finished_spans()?;
    let mut children: HashMap<_, Vec<&SpanData>> = HashMap::new();
    for span in &spans {
        children.entry(span.parent_span_id).or_default().push(span);
    }
    for root in spans.iter().filter(|s| s.name == "daglo.job") {
        print_tree(root, &children, 0);
    }
    std::fs::remove_dir_all(dir)?;
    Ok(())
}

fn print_tree(
    span: &SpanData,
    children: &HashMap<opentelemetry::trace::SpanId, Vec<&SpanData>>,
    depth: usize,
) {
    let took = span.end_time.duration_since(span.start_time).unwrap_or_default();
    let fields: Vec<String> = span
        .attributes
        .iter()
        .filter(|kv| !kv.key.as_str().starts_with("code.") && !kv.key.as_str().starts_with("thread."))
        .map(|kv| format!("{}={}", kv.key, kv.value))
        .collect();
    println!(
        "{:indent$}{} {:.1} ms  {}",
        "",
        span.name,
        took.as_secs_f64() * 1000.0,
        fields.join(" "),
        indent = depth * 2
    );
    let mut mine = children
        .get(&span.span_context.span_id())
        .cloned()
        .unwrap_or_default();
    mine.sort_by_key(|s| s.start_time);
    for child in mine {
        print_tree(child, children, depth + 1);
    }
}
