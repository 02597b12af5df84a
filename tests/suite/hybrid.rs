//! The hybrid strategy: callbacks when they come, polling when they do not.

use std::time::Duration;

use daglo::poll::{PollPolicy, PollingConfig, PollingDelivery};
use daglo::sim::{Endpoint, Faults, SimConfig, Simulator};
use daglo::{HybridDelivery, JobOptions, Outcome, ResultDelivery, Transcriber};

use crate::support;

async fn rig(faults: Faults) -> (Simulator, Transcriber) {
    let (sim, client) = support::sim(SimConfig::default().faults(faults)).await;
    let (callbacks, server) = support::callbacks(&client).await;
    let polling = PollingDelivery::new(
        client.clone(),
        PollingConfig::default().policy(PollPolicy::Fixed(Duration::from_millis(50))),
    );
    let hybrid = HybridDelivery::new(callbacks, polling).window(Duration::from_millis(400));
    assert_eq!(hybrid.name(), "hybrid");
    let transcriber = Transcriber::builder(client)
        .delivery(hybrid)
        .receiver(server)
        .build()
        .await
        .unwrap();
    (sim, transcriber)
}

async fn run(transcriber: &Transcriber) -> Outcome {
    transcriber
        .transcribe_url("https://a.example/a.wav", &JobOptions::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_timely_callback_costs_one_confirming_status_request() {
    let (sim, hybrid) = rig(Faults::default()).await;
    assert!(matches!(run(&hybrid).await, Outcome::Transcript { .. }));
    assert_eq!(
        sim.stats().endpoint(Endpoint::Status).requests,
        1,
        "the final callback is confirmed with one GET, nothing is polled"
    );
}

#[tokio::test]
async fn a_lost_final_callback_is_caught_by_polling() {
    let mut faults = Faults::default();
    faults.drop_final_callback = true;
    let (sim, hybrid) = rig(faults).await;
    assert!(matches!(run(&hybrid).await, Outcome::Transcript { .. }));
    assert!(sim.stats().endpoint(Endpoint::Status).requests >= 1);
}

#[tokio::test]
async fn a_resumed_job_is_polled_at_once() {
    let (sim, hybrid) = rig(Faults::default()).await;
    let rid = hybrid
        .client()
        .submit_url("https://a.example/a.wav", &JobOptions::default())
        .await
        .unwrap()
        .rid;
    let outcome = hybrid.wait(hybrid.resume(rid.clone())).await.unwrap();
    assert!(matches!(outcome, Outcome::Transcript { .. }));
    assert!(sim.job(&rid).unwrap().status_requests >= 1);
}

/// One budget per endpoint: the hybrid's safety-net polls and the confirmations of its final
/// callbacks draw from the client's one status budget, so a busy hybrid process never meets the
/// service's limit. 200 jobs of 4 s, every second final callback lost, a 0.5 s safety net after
/// a 1 s window, the emulator's 20 req/s limit on: every transcript, and not one `429`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_and_confirmations_share_one_budget_and_meet_no_429() {
    let planner = daglo::sim::Planner::new(|submission, plan| {
        plan.processing_time = Duration::from_secs(4);
        let index: u32 = submission
            .audio_name
            .trim_start_matches("job-")
            .trim_end_matches(".wav")
            .parse()
            .unwrap_or(0);
        plan.faults.drop_final_callback = index % 2 == 1;
    });
    let sim = Simulator::start(SimConfig::default().rate_limit(Some(20)).planner(planner))
        .await
        .unwrap();
    let client = daglo::sim::client(&sim).unwrap();
    let (callbacks, server) = support::callbacks(&client).await;
    let safety_net = PollingDelivery::new(
        client.clone(),
        PollingConfig::default().policy(PollPolicy::Fixed(Duration::from_millis(500))),
    );
    let hybrid = HybridDelivery::new(callbacks, safety_net).window(Duration::from_secs(1));
    let transcriber = Transcriber::builder(client)
        .delivery(hybrid)
        .receiver(server)
        .build()
        .await
        .unwrap();
    let jobs: Vec<_> = (0..200)
        .map(|i| {
            let transcriber = transcriber.clone();
            tokio::spawn(async move {
                transcriber
                    .transcribe_url(&format!("https://a.example/job-{i}.wav"), &JobOptions::default())
                    .await
            })
        })
        .collect();
    let all = async {
        let mut outcomes = Vec::new();
        for job in jobs {
            outcomes.push(job.await);
        }
        outcomes
    };
    let outcomes = tokio::time::timeout(Duration::from_secs(240), all)
        .await
        .expect("200 jobs end within four minutes");
    let transcripts = outcomes
        .into_iter()
        .filter(|outcome| matches!(outcome, Ok(Ok(Outcome::Transcript { .. }))))
        .count();
    let stats = sim.stats();
    println!(
        "200 hybrid jobs: {transcripts} transcripts, {} status GETs, {} x 429",
        stats.endpoint(Endpoint::Status).requests,
        stats.rate_limited()
    );
    assert_eq!(transcripts, 200);
    assert_eq!(stats.rate_limited(), 0, "{stats:?}");
    transcriber.shutdown().await;
    sim.shutdown().await;
}
