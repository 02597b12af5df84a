//! Quickstart: transcribe a sample file end to end against the embedded emulator.
//!
//! ```text
//! cargo run --example quickstart                # polling
//! cargo run --example quickstart -- callback    # the emulator calls a local receiver back
//! cargo run --example quickstart -- hybrid      # callback first, polling as the safety net
//! ```
//!
//! It starts the Daglo emulator in-process (no token, no network), uploads
//! `examples/data/standup.wav`, follows the job's progress through the chosen strategy, and
//! prints the transcript with word timings and the SRT subtitles. Only `strategy()` differs
//! between the three: the rest of the code talks to a `Transcriber` over a `dyn ResultDelivery`. Against the real
//! service, build the client with `Client::new(token)` and leave the emulator out.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use daglo::{
    CallbackConfig, CallbackDelivery, CallbackServer, Client, HybridDelivery, JobOptions, Language, Outcome,
    PollingConfig, PollingDelivery, ProgressEvent, ResultDelivery, SrtAnswer, Transcriber,
};
use daglo_sim::{SimConfig, Simulator};

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/standup.wav");

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sim = Simulator::start(SimConfig::default().processing_time(Duration::from_secs(3))).await?;
    println!("emulator listening on {}", sim.base_url());

    let client = Client::builder()
        .token(sim.token())
        .base_url(sim.base_url())
        .build()?;
    let name = std::env::args().nth(1).unwrap_or_else(|| "polling".to_owned());
    let (delivery, receiver) = strategy(&name, &client).await?;
    let transcriber = Transcriber::new(client.clone(), delivery);
    println!("strategy: {}", transcriber.strategy());

    let options = JobOptions::builder()
        .language(Language::EnUs)
        .speaker_diarization(Some(2))
        .keyword_extraction(3)
        .build()?;
    let pending = transcriber.submit_file(Path::new(SAMPLE), &options).await?;
    let rid = pending.rid().clone();
    println!("submitted {} as job {rid}", pending.file_name().unwrap_or("file"));

    let show = |event: &ProgressEvent| println!("  {event}");
    let outcome = transcriber.wait(pending, &show).await?;

    match &outcome {
        Outcome::Transcript { body, .. } => {
            for (channel, result) in body.stt_results.iter().flatten().enumerate() {
                println!("\ntranscript (channel {}):\n{}", channel + 1, result.transcript);
                if let Some(keywords) = &result.keywords {
                    println!("keywords: {}", keywords.join(", "));
                }
                for word in result.words.iter().take(5) {
                    let start = word.start_time.as_duration().as_secs_f64();
                    let end = word.end_time.as_duration().as_secs_f64();
                    let speaker = word.speaker.as_deref().unwrap_or("-");
                    println!(
                        "  [{start:6.2}s – {end:6.2}s] speaker {speaker}: {}",
                        word.word.trim()
                    );
                }
            }
            if let SrtAnswer::Ready(srt) = client.srt(&rid).await? {
                println!(
                    "\nsubtitles:\n{}",
                    srt.lines().take(8).collect::<Vec<_>>().join("\n")
                );
            }
        }
        Outcome::Empty { .. } => println!("the audio held no speech"),
        Outcome::Failed { status, message, .. } => {
            println!("the job failed: {status} {}", message.as_deref().unwrap_or(""))
        }
        other => println!("{other:?}"),
    }
    let record = sim.job(&rid);
    let (requests, callbacks) = record.map_or((0, 0), |r| (r.status_requests, r.callbacks_sent));
    println!("\n{requests} status requests and {callbacks} callbacks for the whole job");
    if let Some(receiver) = receiver {
        receiver.shutdown().await;
    }
    sim.shutdown().await;
    Ok(())
}

/// The one place that knows which strategy runs.
async fn strategy(
    name: &str,
    client: &Client,
) -> Result<(Arc<dyn ResultDelivery>, Option<CallbackServer>), Box<dyn std::error::Error>> {
    let polling = || PollingDelivery::new(client.clone(), PollingConfig::default());
    let callbacks = || async {
        // In production the public URL is your https endpoint behind a proxy; here the
        // emulator calls the receiver directly on loopback.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let public = format!("http://{}/daglo/callbacks", listener.local_addr()?);
        let callbacks = CallbackDelivery::new(CallbackConfig::new(&public)?)?;
        let server = callbacks.serve(listener)?;
        Ok::<_, Box<dyn std::error::Error>>((callbacks, server))
    };
    Ok(match name {
        "polling" => (Arc::new(polling()), None),
        "callback" => {
            let (callbacks, server) = callbacks().await?;
            (Arc::new(callbacks), Some(server))
        }
        "hybrid" => {
            let (callbacks, server) = callbacks().await?;
            let hybrid = HybridDelivery::new(callbacks, polling()).window(Duration::from_secs(10));
            (Arc::new(hybrid), Some(server))
        }
        other => return Err(format!("unknown strategy `{other}`: use polling, callback or hybrid").into()),
    })
}
