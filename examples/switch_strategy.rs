//! Switching strategy is one value: the strategy comes from configuration (JSON here, any serde
//! format in your app), and nothing else in the program changes.
//!
//! ```text
//! cargo run --example switch_strategy                                   # polling
//! cargo run --example switch_strategy -- '{"strategy": "callback", "callback": {"listen": "127.0.0.1:0"}}'
//! cargo run --example switch_strategy -- '{"strategy": "hybrid", "callback": {"listen": "127.0.0.1:0"}, "window_secs": 5}'
//! ```
//!
//! The emulator runs in-process and on this machine, so a callback configuration without
//! `public_url` is called back on the receiver's own loopback address. In production give it
//! your https endpoint: `{"strategy": "callback", "callback": {"listen": "0.0.0.0:8443",
//! "public_url": "https://hooks.example.com/daglo"}`.

use std::time::Duration;

use daglo::sim::{Endpoint, SimConfig, Simulator};
use daglo::{JobOptions, Outcome, StrategyConfig, Transcriber};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let json = std::env::args()
        .nth(1)
        .unwrap_or_else(|| r#"{"strategy": "polling"}"#.to_owned());
    let strategy: StrategyConfig =
        serde_json::from_str(&json).map_err(|e| format!("not a strategy configuration ({e}): {json}"))?;

    let sim = Simulator::start(SimConfig::default().processing_time(Duration::from_secs(2))).await?;
    let transcriber = Transcriber::builder(daglo::sim::client(&sim)?)
        .config(&strategy)
        .build()
        .await?;

    // From here on the code is the same whatever the strategy.
    let urls = [
        "https://example.com/one.wav",
        "https://example.com/two.wav",
        "https://example.com/silent.wav",
    ];
    let mut pending = Vec::new();
    for url in urls {
        pending.push(transcriber.submit_url(url, &JobOptions::default()).await?);
    }
    for job in pending {
        let rid = job.rid().clone();
        match transcriber.wait(job).await? {
            Outcome::Transcript { body, .. } => {
                let text = body.full_transcript();
                let start: String = text.chars().take(60).collect();
                println!("{rid}: {start}…");
            }
            Outcome::Empty { .. } => println!("{rid}: no speech"),
            other => println!("{rid}: {other:?}"),
        }
    }
    let stats = sim.stats();
    println!(
        "{}: {} status requests, {} callbacks for {} jobs",
        transcriber.strategy(),
        stats.endpoint(Endpoint::Status).requests,
        sim.callback_log().len(),
        urls.len()
    );
    transcriber.shutdown().await;
    sim.shutdown().await;
    Ok(())
}
