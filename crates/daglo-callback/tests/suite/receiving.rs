//! Callback delivery against the emulator's callbacks over real HTTP: outcomes and faults.

use std::time::Duration;

use crate::support::{Rig, faults};
use daglo_core::{GaveUpReason, Outcome, ProgressEvent, ResultDelivery, Status};
use daglo_sim::SimConfig;

#[tokio::test]
async fn a_transcript_arrives_with_progress_on_the_way() {
    let rig = Rig::start(
        Rig::sim_config().processing_time(Duration::from_millis(300)),
        |c| c,
    )
    .await;
    let (rid, prepared, options) = rig.submit("https://a.example/talk.wav").await;
    let callback = options.callback.as_ref().unwrap();
    assert!(callback.url.starts_with(&rig.public_url), "{}", callback.url);
    assert!(callback.headers["Authorization"].starts_with("Bearer "));
    assert_eq!(prepared.job_key(), callback.url.rsplit('/').next());

    let events = std::sync::Mutex::new(Vec::new());
    let observe = |event: &ProgressEvent| events.lock().unwrap().push(event.clone());
    let outcome = prepared.wait(rid.clone(), &observe).await.unwrap();
    assert!(matches!(&outcome, Outcome::Transcript { rid: r, .. } if *r == rid));
    assert!(!outcome.transcript().unwrap().is_empty());
    let events = events.into_inner().unwrap();
    assert!(events.len() >= 2, "progress was observable: {events:?}");
    assert!(
        matches!(
            events.last(),
            Some(ProgressEvent::Progress {
                status: Status::Transcribed,
                ..
            })
        ),
        "the terminal status is reported as polling reports it: {events:?}"
    );
    assert_eq!(
        rig.callbacks.registered().await.unwrap(),
        0,
        "the finished job's slot is freed"
    );
}

#[tokio::test]
async fn empty_and_failed_jobs() {
    let rig = Rig::start(Rig::sim_config(), |c| c).await;
    let outcome = rig.run("https://a.example/silent.wav").await;
    assert!(matches!(outcome, Outcome::Empty { .. }), "{outcome:?}");
    let outcome = rig.run("https://a.example/file-error.wav").await;
    assert!(
        matches!(
            outcome,
            Outcome::Failed {
                status: Status::FileError,
                message: Some(_),
                ..
            }
        ),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_dropped_final_callback_gives_up_after_the_window() {
    let sim = Rig::sim_config().faults(faults(|f| f.drop_final_callback = true));
    let rig = Rig::start(sim, |c| c.job_ttl(Duration::from_millis(500))).await;
    let outcome = rig.run("https://a.example/a.wav").await;
    let Outcome::GaveUp {
        rid,
        last_status,
        reason,
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        reason,
        GaveUpReason::CallbackTtlExpired(Duration::from_millis(500))
    );
    assert!(last_status.is_some(), "progress came, the final did not");
    // The job itself finished: polling the rid gets the result.
    let answer = rig.client.status(&rid).await.unwrap();
    assert!(answer.is_terminal());
}

#[tokio::test]
async fn duplicated_finals_count_once_and_answer_200() {
    let sim = Rig::sim_config().faults(faults(|f| f.duplicate_final_callback = true));
    let rig = Rig::start(sim, |c| c).await;
    let (rid, prepared, _) = rig.submit("https://a.example/a.wav").await;
    // Hold the registration so the duplicate meets a live job, then wait.
    rig.sim.callbacks_done(&rid).await;
    let outcome = rig.wait(rid.clone(), prepared).await;
    assert!(matches!(outcome, Outcome::Transcript { .. }));
    let finals: Vec<_> = rig
        .sim
        .callback_log()
        .into_iter()
        .filter(|c| c.is_final)
        .collect();
    assert_eq!(finals.len(), 2);
    assert!(finals.iter().all(|c| c.answer == Ok(200)));
}

#[tokio::test]
async fn late_progress_after_the_final_is_ignored() {
    let sim = Rig::sim_config().faults(faults(|f| f.late_progress_after_final = true));
    let rig = Rig::start(sim, |c| c).await;
    let (rid, prepared, _) = rig.submit("https://a.example/a.wav").await;
    rig.sim.callbacks_done(&rid).await;
    let log = rig.sim.callback_log();
    assert_eq!(log.last().unwrap().status, Status::PostProcessing);
    assert!(log.iter().all(|c| c.answer == Ok(200)));
    let outcome = rig.wait(rid, prepared).await;
    assert!(matches!(outcome, Outcome::Transcript { .. }));
}

#[tokio::test]
async fn delayed_early_and_rid_less_callbacks_all_deliver() {
    for fault in [
        faults(|f| f.delay_final_callback = Some(Duration::from_millis(200))),
        faults(|f| f.callback_before_submit_answer = true),
        faults(|f| f.omit_rid_in_callbacks = true),
    ] {
        let rig = Rig::start(Rig::sim_config().faults(fault.clone()), |c| c).await;
        let (rid, prepared, _) = rig.submit("https://a.example/a.wav").await;
        let outcome = prepared
            .wait(rid.clone(), &daglo_core::IgnoreProgress)
            .await
            .unwrap();
        assert!(
            matches!(&outcome, Outcome::Transcript { rid: r, .. } if *r == rid),
            "{fault:?}: {outcome:?}"
        );
    }
}

#[tokio::test]
async fn the_final_body_can_arrive_before_the_submit_answer() {
    // Instant jobs with the early-callback fault: everything, the final body included, is
    // delivered before the submit returns; the registration keeps it for the waiter.
    let sim = SimConfig::default()
        .rate_limit(None)
        .processing_time(Duration::ZERO)
        .faults(faults(|f| f.callback_before_submit_answer = true));
    let rig = Rig::start(sim, |c| c).await;
    let (rid, prepared, _) = rig.submit("https://a.example/a.wav").await;
    assert!(
        rig.sim
            .callback_log()
            .iter()
            .any(|c| c.is_final && c.answer == Ok(200))
    );
    let outcome = rig.wait(rid, prepared).await;
    assert!(matches!(outcome, Outcome::Transcript { .. }));
}

#[tokio::test]
async fn waiting_without_a_registration_is_refused() {
    let rig = Rig::start(Rig::sim_config(), |c| c).await;
    let err = rig.callbacks.resume(&daglo_core::Rid::new("r")).unwrap_err();
    assert!(matches!(
        err,
        daglo_core::DeliveryError::NotPrepared {
            strategy: "callback",
            ..
        }
    ));
}
