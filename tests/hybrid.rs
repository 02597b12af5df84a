//! The hybrid strategy: callbacks when they come, polling when they do not.

use std::time::Duration;

use daglo::poll::{PollPolicy, PollingConfig, PollingDelivery};
use daglo::sim::{Endpoint, Faults, SimConfig, Simulator};
use daglo::{HybridDelivery, JobOptions, Outcome, ResultDelivery, Transcriber};

mod support;

async fn rig(faults: Faults) -> (Simulator, Transcriber) {
    let (sim, client) = support::sim(SimConfig::default().faults(faults)).await;
    let (callbacks, server) = support::callbacks(&client).await;
    let polling = PollingDelivery::new(
        client.clone(),
        PollingConfig::default().policy(PollPolicy::Fixed(Duration::from_millis(50))),
    );
    let hybrid = HybridDelivery::new(callbacks, polling).window(Duration::from_millis(400));
    assert_eq!(hybrid.name(), "hybrid");
    (sim, Transcriber::new(client, hybrid).owning_receiver(server))
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
