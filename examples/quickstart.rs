//! Quickstart: transcribe a sample file end to end against the embedded emulator.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! It starts the Daglo emulator in-process (no token, no network), uploads
//! `examples/data/standup.wav`, follows the job's progress through the polling strategy, and
//! prints the transcript with word timings and the SRT subtitles. Against the real service,
//! build the client with `Client::new(token)` and leave the emulator out.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use daglo::{
    Client, JobOptions, Language, Outcome, PollingConfig, PollingDelivery, ProgressEvent, ResultDelivery,
    SrtAnswer, SubmittedJob,
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
    // Any strategy fits here; switching to callbacks changes only this line.
    let delivery: Arc<dyn ResultDelivery> =
        Arc::new(PollingDelivery::new(client.clone(), PollingConfig::default()));

    let mut options = JobOptions::builder()
        .language(Language::EnUs)
        .speaker_diarization(Some(2))
        .keyword_extraction(3)
        .build()?;
    let prepared = delivery.prepare(&mut options).await?;
    let job = client.submit_file(Path::new(SAMPLE), &options).await?;
    println!(
        "submitted {} as job {}",
        job.file_name.as_deref().unwrap_or("file"),
        job.rid
    );

    let show = |event: &ProgressEvent| println!("  {event}");
    let outcome = delivery
        .wait(SubmittedJob::new(job.rid.clone(), prepared), &show)
        .await?;

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
            if let SrtAnswer::Ready(srt) = client.srt(&job.rid).await? {
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
    let requests = sim.job(&job.rid).map_or(0, |record| record.status_requests);
    println!("\n{requests} status requests for the whole job");
    sim.shutdown().await;
    Ok(())
}
