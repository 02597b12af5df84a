//! The hybrid strategy: callbacks when they come, polling when they do not.

use std::sync::Arc;
use std::time::Duration;

use daglo::{
    Client, HybridDelivery, IgnoreProgress, JobOptions, Outcome, PollPolicy, PollingConfig, PollingDelivery,
    ResultDelivery, SubmittedJob,
};
use daglo_sim::{Endpoint, Faults, SimConfig, Simulator};

mod support;

async fn rig(faults: Faults) -> (Simulator, Client, Arc<dyn ResultDelivery>, daglo::CallbackServer) {
    let (sim, client) = support::sim(SimConfig::default().faults(faults)).await;
    let (callbacks, server) = support::callbacks().await;
    let polling = PollingDelivery::new(
        client.clone(),
        PollingConfig::default().policy(PollPolicy::Fixed(Duration::from_millis(50))),
    );
    let hybrid = HybridDelivery::new(callbacks, polling).window(Duration::from_millis(400));
    (sim, client, Arc::new(hybrid), server)
}

async fn run(client: &Client, delivery: &dyn ResultDelivery) -> Outcome {
    let mut options = JobOptions::default();
    let prepared = delivery.prepare(&mut options).await.unwrap();
    assert!(options.callback.is_some());
    let rid = client
        .submit_url("https://a.example/a.wav", &options)
        .await
        .unwrap()
        .rid;
    delivery
        .wait(SubmittedJob::new(rid, prepared), &IgnoreProgress)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_timely_callback_costs_no_status_request() {
    let (sim, client, hybrid, _server) = rig(Faults::default()).await;
    assert_eq!(hybrid.name(), "hybrid");
    assert!(matches!(
        run(&client, hybrid.as_ref()).await,
        Outcome::Transcript { .. }
    ));
    assert_eq!(sim.stats().endpoint(Endpoint::Status).requests, 0);
}

#[tokio::test]
async fn a_lost_final_callback_is_caught_by_polling() {
    let mut faults = Faults::default();
    faults.drop_final_callback = true;
    let (sim, client, hybrid, _server) = rig(faults).await;
    assert!(matches!(
        run(&client, hybrid.as_ref()).await,
        Outcome::Transcript { .. }
    ));
    assert!(sim.stats().endpoint(Endpoint::Status).requests >= 1);
}

#[tokio::test]
async fn a_resumed_job_is_polled_at_once() {
    let (_sim, client, hybrid, _server) = rig(Faults::default()).await;
    let rid = client
        .submit_url("https://a.example/a.wav", &JobOptions::default())
        .await
        .unwrap()
        .rid;
    let outcome = hybrid
        .wait(SubmittedJob::resume(rid), &IgnoreProgress)
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Transcript { .. }));
}
