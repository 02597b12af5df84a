//! Quickstart: transcribe a sample file end to end against the embedded emulator.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! It starts the Daglo emulator in-process (no token, no network), uploads
//! `examples/data/standup.wav`, follows the job's progress until it ends, and prints the
//! transcript with word timings and the SRT subtitles. Against the real service, build the
//! client with `Client::new(token)` instead and leave the emulator out.

use std::path::Path;
use std::time::Duration;

use daglo::{Client, JobOptions, Language, Outcome, SrtAnswer, StatusAnswer};
use daglo_sim::{SimConfig, Simulator};

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/standup.wav");

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sim = Simulator::start(SimConfig::default().processing_time(Duration::from_secs(2))).await?;
    println!("emulator listening on {}", sim.base_url());

    let client = Client::builder()
        .token(sim.token())
        .base_url(sim.base_url())
        .build()?;
    let options = JobOptions::builder()
        .language(Language::EnUs)
        .speaker_diarization(Some(2))
        .keyword_extraction(3)
        .build()?;

    let job = client.submit_file(Path::new(SAMPLE), &options).await?;
    println!(
        "submitted {} as job {}",
        job.file_name.as_deref().unwrap_or("file"),
        job.rid
    );

    // Poll politely until the job ends (the polling strategy of daglo-poll does this for many
    // jobs under the rate limit; this loop is the minimal version).
    let outcome = loop {
        let answer = client.status(&job.rid).await?;
        if let Some(outcome) = answer.outcome(&job.rid) {
            break outcome;
        }
        if let StatusAnswer::Body(body) = &answer {
            println!("  {:<16} {:>3}%", body.status, body.progress.unwrap_or(0));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };

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
    sim.shutdown().await;
    Ok(())
}
