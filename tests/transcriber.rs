//! `Transcriber`: one API over every strategy.

use std::sync::Arc;
use std::time::Duration;

use daglo::{
    DeliveryError, IgnoreProgress, JobOptions, Outcome, PollPolicy, PollingConfig, PollingDelivery,
    TranscribeError, Transcriber,
};
use daglo_sim::SimConfig;
use support::{callbacks, sim};

mod support;

#[tokio::test]
async fn the_same_calls_work_with_polling_and_callbacks() {
    let (_sim, client) = sim(SimConfig::default()).await;
    let polling = PollingDelivery::new(
        client.clone(),
        PollingConfig::default().policy(PollPolicy::Fixed(Duration::from_millis(30))),
    );
    let (callbacks, _server) = callbacks().await;
    for transcriber in [
        Transcriber::new(client.clone(), Arc::new(polling)),
        Transcriber::new(client.clone(), Arc::new(callbacks)),
    ] {
        let outcome = transcriber
            .transcribe_url("https://a.example/a.wav", &JobOptions::default(), &IgnoreProgress)
            .await
            .unwrap();
        assert!(
            matches!(outcome, Outcome::Transcript { .. }),
            "{}: {outcome:?}",
            transcriber.strategy()
        );
    }
}

#[tokio::test]
async fn a_failed_submit_releases_the_callback_registration() {
    let (_sim, client) = sim(SimConfig::default().credits(0)).await;
    let (callbacks, _server) = callbacks().await;
    let transcriber = Transcriber::new(client, Arc::new(callbacks.clone()));
    let err = transcriber
        .submit_url("https://a.example/a.wav", &JobOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TranscribeError::Submit(e) if e.status() == Some(403)),
        "{err:?}"
    );
    assert_eq!(callbacks.registered().await, 0);
}

#[tokio::test]
async fn resume_polls_and_a_callback_only_strategy_says_it_cannot() {
    let (_sim, client) = sim(SimConfig::default()).await;
    let rid = client
        .submit_url("https://a.example/a.wav", &JobOptions::default())
        .await
        .unwrap()
        .rid;
    let polling = PollingDelivery::new(
        client.clone(),
        PollingConfig::default().policy(PollPolicy::Fixed(Duration::from_millis(30))),
    );
    let transcriber = Transcriber::new(client.clone(), Arc::new(polling));
    let outcome = transcriber.resume(rid.clone(), &IgnoreProgress).await.unwrap();
    assert!(matches!(outcome, Outcome::Transcript { .. }));

    let (callbacks, _server) = callbacks().await;
    let err = Transcriber::new(client, Arc::new(callbacks))
        .resume(rid.clone(), &IgnoreProgress)
        .await
        .unwrap_err();
    let TranscribeError::Wait { rid: kept, source } = err else {
        panic!("{err:?}")
    };
    assert_eq!(kept, rid, "the rid survives the error, to resume elsewhere");
    assert!(matches!(source, DeliveryError::NotPrepared { .. }));
}
