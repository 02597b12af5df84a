//! Every endpoint is paced, and a submit refused with `429` (which creates no job) is retried
//! until its deadline: many concurrent submits against the service's real limit all succeed,
//! each exactly once.

use crate::support;

use std::time::Duration;

use daglo_client::Client;
use daglo_core::JobOptions;
use daglo_sim::{Endpoint, SimConfig, Simulator};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_submits_under_the_real_limit_all_succeed_once() {
    const JOBS: usize = 50;
    let sim = Simulator::start(SimConfig::default().processing_time(Duration::from_secs(60)))
        .await
        .unwrap();
    let client = Client::builder()
        .token(sim.token())
        .base_url(sim.base_url())
        .build()
        .unwrap();
    let dir = support::TempDir::new("pacing");
    let file = dir.file("call.wav", &vec![7u8; 16_000 * 3]);
    let submits = (0..JOBS).map(|i| {
        let (client, file) = (client.clone(), file.clone());
        tokio::spawn(async move {
            if i % 2 == 0 {
                client
                    .submit_url(&format!("https://a.example/call-{i}.wav"), &JobOptions::default())
                    .await
            } else {
                client.submit_file(&file, &JobOptions::default()).await
            }
        })
    });
    let mut rids = Vec::new();
    for submit in submits {
        let answer = submit.await.unwrap();
        rids.push(
            answer
                .expect("no submit fails: 429s are retried, the rest is paced")
                .rid,
        );
    }
    rids.sort();
    rids.dedup();
    let stats = sim.stats().endpoint(Endpoint::Submit);
    assert_eq!(rids.len(), JOBS);
    assert_eq!(
        sim.jobs().len(),
        JOBS,
        "the service saw exactly one job per submit"
    );
    println!(
        "{JOBS} concurrent submits: {} requests, {} answered 429",
        stats.requests,
        stats.answered(429)
    );
}
