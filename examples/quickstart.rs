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
//! prints the transcript with word timings and the SRT subtitles. Only the `StrategyConfig`
//! differs between the three. Against the real service, build the client with
//! `Client::new(token)` and leave the emulator out.

use std::time::Duration;

use daglo::client::SrtAnswer;
use daglo::sim::{SimConfig, Simulator};
use daglo::strategy::{CallbackSettings, HybridSettings};
use daglo::{JobOptions, Language, Outcome, ProgressEvent, StrategyConfig, Transcriber};

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/standup.wav");

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sim = Simulator::start(SimConfig::default().processing_time(Duration::from_secs(3))).await?;
    println!("emulator listening on {}", sim.base_url());
    let client = daglo::sim::client(&sim)?;

    // The one place that knows which strategy runs. The emulator is on this machine, so the
    // callback receiver listens on a free loopback port and is called there directly; in
    // production it is `StrategyConfig::callback(listen, "https://hooks.example.com/daglo")`.
    let strategy = match std::env::args().nth(1).as_deref().unwrap_or("polling") {
        "polling" => StrategyConfig::polling(),
        "callback" => StrategyConfig::Callback(CallbackSettings::loopback()),
        "hybrid" => StrategyConfig::Hybrid(HybridSettings::new(CallbackSettings::loopback())),
        other => return Err(format!("unknown strategy `{other}`: use polling, callback or hybrid").into()),
    };
    let transcriber = Transcriber::builder(client).config(&strategy).build().await?;
    println!("strategy: {}", transcriber.strategy());

    let options = JobOptions::builder()
        .language(Language::EnUs)
        .speaker_diarization(Some(2))
        .keyword_extraction(3)
        .build()?;
    let pending = transcriber.submit_file(SAMPLE, &options).await?;
    let rid = pending.rid().clone();
    println!("submitted {} as job {rid}", pending.file_name().unwrap_or("file"));

    let show = |event: &ProgressEvent| println!("  {event}");
    match transcriber.wait_with(pending, &show).await? {
        Outcome::Transcript { body, .. } => {
            for (channel, result) in body.stt_results.iter().flatten().enumerate() {
                println!("\ntranscript (channel {}):\n{}", channel + 1, result.transcript);
                if let Some(keywords) = &result.keywords {
                    println!("keywords: {}", keywords.join(", "));
                }
                for word in result.words.iter().take(5) {
                    let start = word.start_time.unwrap_or_default().as_duration().as_secs_f64();
                    let end = word.end_time.unwrap_or_default().as_duration().as_secs_f64();
                    let speaker = word.speaker.as_deref().unwrap_or("-");
                    println!(
                        "  [{start:6.2}s – {end:6.2}s] speaker {speaker}: {}",
                        word.word.trim()
                    );
                }
            }
            if let SrtAnswer::Ready(srt) = transcriber.client().srt(&rid).await? {
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
    let (requests, callbacks) = sim
        .job(&rid)
        .map_or((0, 0), |r| (r.status_requests, r.callbacks_sent));
    println!("\n{requests} status requests and {callbacks} callbacks for the whole job");
    transcriber.shutdown().await;
    sim.shutdown().await;
    Ok(())
}
