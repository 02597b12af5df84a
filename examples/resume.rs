//! Persist the rid, stop, restart, resume: a job survives the process that submitted it.
//!
//! Start the emulator as its own process (it must outlive this one), then submit and stop:
//!
//! ```text
//! daglo sim --port 8080 --processing-ms 15000 &        # or: cargo run -p daglo-sim -- …
//! cargo run --example resume -- submit http://127.0.0.1:8080     # prints the rid, saves it, exits
//! cargo run --example resume -- wait http://127.0.0.1:8080       # a new process picks it up
//! ```
//!
//! Against the real service, set `DAGLO_API_TOKEN` and give `https://apis.daglo.ai`. The rid is
//! saved in `target/daglo-resume.json` (serde), which is what your app would write to its
//! database between the submit and the wait.

use std::path::PathBuf;

use daglo::{Client, JobOptions, Outcome, ProgressEvent, Rid, Transcriber};

fn state_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/daglo-resume.json")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: resume (submit|wait) BASE_URL";
    let step = args.next().ok_or(usage)?;
    let base_url = args.next().ok_or(usage)?;
    // The emulator's token unless a real one is set.
    let token = std::env::var("DAGLO_API_TOKEN").unwrap_or_else(|_| daglo::sim::DEFAULT_TOKEN.to_owned());
    let client = Client::builder().token(token).base_url(base_url).build()?;
    let transcriber = Transcriber::polling(client);

    match step.as_str() {
        "submit" => {
            let pending = transcriber
                .submit_url("https://example.com/board-meeting.wav", &JobOptions::default())
                .await?;
            // Persist before waiting: from here on the job is billed whatever happens to us.
            std::fs::write(state_file(), serde_json::to_string(pending.rid())?)?;
            println!(
                "submitted job {}; saved to {}",
                pending.rid(),
                state_file().display()
            );
            println!("stopping without waiting — run `resume wait` to pick it up");
        }
        "wait" => {
            let rid: Rid = serde_json::from_str(&std::fs::read_to_string(state_file())?)?;
            println!("resuming job {rid}");
            let show = |event: &ProgressEvent| println!("  {event}");
            match transcriber.wait_with(transcriber.resume(rid), &show).await? {
                Outcome::Transcript { rid, body } => println!("{rid}: {}", body.full_transcript()),
                other => println!("{other:?}"),
            }
            std::fs::remove_file(state_file())?;
        }
        other => return Err(format!("unknown step `{other}`; {usage}").into()),
    }
    Ok(())
}
