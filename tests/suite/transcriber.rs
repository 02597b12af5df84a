//! `Transcriber`: one API over every strategy, the front door of the crate.

use crate::support::{callbacks, fast_polling, sim};
use daglo::sim::SimConfig;
use daglo::{DeliveryError, JobOptions, Outcome, ProgressEvent, Rid, TranscribeError, Transcriber};

#[tokio::test]
async fn the_same_calls_work_with_polling_and_callbacks() {
    let (_sim, client) = sim(SimConfig::default()).await;
    let (callbacks, server) = callbacks(&client).await;
    for transcriber in [
        Transcriber::new(client.clone(), fast_polling(&client)),
        Transcriber::builder(client.clone())
            .delivery(callbacks)
            .receiver(server)
            .build()
            .await
            .unwrap(),
    ] {
        let outcome = transcriber
            .transcribe_url("https://a.example/a.wav", &JobOptions::default())
            .await
            .unwrap();
        assert!(
            matches!(outcome, Outcome::Transcript { .. }),
            "{}: {outcome:?}",
            transcriber.strategy()
        );
        transcriber.shutdown().await;
    }
}

#[tokio::test]
async fn submit_persist_wait_and_progress_reaches_the_observer() {
    let (_sim, client) = sim(SimConfig::default()).await;
    let transcriber = Transcriber::polling(client);
    let pending = transcriber
        .submit_url("https://a.example/a.wav", &JobOptions::default())
        .await
        .unwrap();
    // The rid is what a caller persists: it round-trips through serde as a plain string.
    let saved = serde_json::to_string(pending.rid()).unwrap();
    assert_eq!(serde_json::from_str::<Rid>(&saved).unwrap(), *pending.rid());
    assert!(!pending.is_resumed());

    let events = std::sync::Mutex::new(Vec::new());
    let observe = |event: &ProgressEvent| events.lock().unwrap().push(event.clone());
    let outcome = transcriber.wait_with(pending, &observe).await.unwrap();
    assert!(matches!(outcome, Outcome::Transcript { .. }));
    assert!(
        !events.into_inner().unwrap().is_empty(),
        "progress was observable"
    );
}

#[tokio::test]
async fn a_failed_submit_releases_the_callback_registration_and_says_why() {
    let (_sim, client) = sim(SimConfig::default().credits(0)).await;
    let (callbacks, _server) = callbacks(&client).await;
    let transcriber = Transcriber::new(client, callbacks.clone());
    let err = transcriber
        .submit_url("https://a.example/a.wav", &JobOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TranscribeError::Submit(e) if e.status() == Some(403)),
        "{err:?}"
    );
    assert_eq!(callbacks.registered().await.unwrap(), 0);
    // The message says what failed, the source why; the predicates say what to do about it.
    assert_eq!(err.to_string(), "the submit failed; no job was created");
    let cause = std::error::Error::source(&err).expect("the cause").to_string();
    assert!(cause.contains("403"), "{cause}");
    assert!(
        !cause.contains("the submit failed"),
        "the cause does not repeat the message: {cause}"
    );
    assert!(err.is_auth());
    assert!(!err.may_have_created_job(), "a 403 created nothing");
    assert_eq!(err.rid(), None);
}

#[tokio::test]
async fn dropping_a_pending_job_releases_its_registration() {
    let (_sim, client) = sim(SimConfig::default()).await;
    let (callbacks, _server) = callbacks(&client).await;
    let transcriber = Transcriber::new(client, callbacks.clone());
    let pending = transcriber
        .submit_url("https://a.example/a.wav", &JobOptions::default())
        .await
        .unwrap();
    assert_eq!(callbacks.registered().await.unwrap(), 1);
    drop(pending);
    assert_eq!(
        callbacks.registered().await.unwrap(),
        0,
        "the slot is free when drop returns"
    );
}

#[tokio::test]
async fn resume_polls_and_a_callback_only_strategy_says_it_cannot() {
    let (_sim, client) = sim(SimConfig::default()).await;
    let rid = client
        .submit_url("https://a.example/a.wav", &JobOptions::default())
        .await
        .unwrap()
        .rid;
    let transcriber = Transcriber::new(client.clone(), fast_polling(&client));
    let pending = transcriber.resume(rid.clone());
    assert!(pending.is_resumed());
    let outcome = transcriber.wait(pending).await.unwrap();
    assert!(matches!(outcome, Outcome::Transcript { .. }));

    let (callbacks, _server) = callbacks(&client).await;
    let callback_only = Transcriber::new(client, callbacks);
    let err = callback_only
        .wait(callback_only.resume(rid.clone()))
        .await
        .unwrap_err();
    assert_eq!(
        err.rid(),
        Some(&rid),
        "the rid survives the error, to resume elsewhere"
    );
    assert!(err.may_have_created_job());
    let cause = std::error::Error::source(&err).expect("the cause").to_string();
    assert!(
        cause.contains("not prepared for callback delivery"),
        "{err}: {cause}"
    );
    let TranscribeError::Wait { source, .. } = err else {
        panic!("{err:?}")
    };
    assert!(matches!(source, DeliveryError::NotPrepared { .. }));
}

#[tokio::test]
async fn an_unknown_rid_is_a_typed_wait_error() {
    let (_sim, client) = sim(SimConfig::default()).await;
    let transcriber = Transcriber::new(client.clone(), fast_polling(&client));
    let rid = Rid::new("no-such-job");
    let err = transcriber
        .wait(transcriber.resume(rid.clone()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TranscribeError::Wait { source: DeliveryError::UnknownJob { rid: r }, .. } if *r == rid),
        "{err:?}"
    );
    assert!(!err.is_auth());
}
