//! Redis stopped and started in the middle of a run (a private `redis-server`, no persistence:
//! everything in it is lost). Nothing panics, every failure is a typed error or a retryable
//! answer, and no result is lost: the job whose final callback could not be stored still ends
//! with its transcript, through the hybrid strategy's polling.

use crate::support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use daglo::callback::{CallbackConfig, CallbackDelivery, FinalCallbacks, Secret};
use daglo::client::RateBudget;
use daglo::delivery::IgnoreProgress;
use daglo::journal::{Intent, Journal};
use daglo::poll::{PollPolicy, PollingConfig, PollingDelivery};
use daglo::redis::{BudgetOptions, RedisBudget, RedisJournal, RedisOptions, RedisRegistry, RedisStore};
use daglo::sim::{SimConfig, Simulator};
use daglo::{DeliveryError, HybridDelivery, JobOptions, Outcome, ResultDelivery};

/// Waits (bounded) until `check` holds: for states of other components there is no event.
async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_and_started_mid_run_loses_nothing_and_panics_nowhere() {
    let Some(mut redis) =
        support::OwnRedis::start("redis_stopped_and_started_mid_run_loses_nothing_and_panics_nowhere").await
    else {
        return;
    };
    let options = RedisOptions::default()
        .namespace("outage")
        .timeouts(Duration::from_millis(500));
    let store = RedisStore::connect_with(&redis.url(), options).await.unwrap();
    let sim = Simulator::start(
        SimConfig::default()
            .rate_limit(None)
            .processing_time(Duration::from_millis(1500)),
    )
    .await
    .unwrap();
    let client = daglo::sim::client(&sim).unwrap();

    let registry = Arc::new(RedisRegistry::new(store.clone()).await);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = CallbackConfig::new(&format!("http://{}/daglo", listener.local_addr().unwrap()))
        .unwrap()
        .key_secret(Secret::new("a key secret for the outage test, long enough"))
        .finals(FinalCallbacks::TrustBody);
    let callbacks = CallbackDelivery::with_registry(client.clone(), config, registry.clone()).unwrap();
    let server = callbacks.serve(listener).unwrap();
    let polling = PollingDelivery::new(
        client.clone(),
        PollingConfig::default().policy(PollPolicy::Fixed(Duration::from_millis(200))),
    );
    let hybrid = HybridDelivery::new(callbacks.clone(), polling).window(Duration::from_secs(3));
    let budget = RedisBudget::new(&store, "acct", "status", BudgetOptions::default());
    let journal = RedisJournal::new(store.clone(), "outage");

    // A job prepared, submitted and waited for while Redis is up.
    let mut job_options = JobOptions::default();
    let ticket = hybrid.prepare(&mut job_options).await.unwrap();
    let job_key = ticket.job_key().unwrap().to_owned();
    let rid = client
        .submit_url("https://example.com/during-outage.wav", &job_options)
        .await
        .unwrap()
        .rid;
    let waiter = tokio::spawn({
        let rid = rid.clone();
        async move { ticket.wait(rid, &IgnoreProgress).await }
    });
    // Its rid is stored (the waiter is set up) before Redis goes away.
    let hash = format!("outage:cb:{job_key}");
    let direct = redis::Client::open(redis.url()).unwrap();
    let mut conn = direct.get_multiplexed_async_connection().await.unwrap();
    until("the waiter recorded the rid", async || {
        redis::cmd("HGET")
            .arg(&hash)
            .arg("view")
            .query_async::<Option<String>>(&mut conn)
            .await
            .ok()
            .flatten()
            .is_some_and(|view| view.contains(rid.as_str()))
    })
    .await;

    redis.stop().await;

    // While it is down: typed errors, a retryable answer, a budget that goes on slowly.
    let mut other = JobOptions::default();
    let refused = hybrid.prepare(&mut other).await;
    assert!(
        matches!(refused, Err(DeliveryError::Prepare { .. })),
        "{refused:?}"
    );
    let write = journal.intend(Intent::new("x.wav", "d", "hybrid")).await;
    assert!(write.is_err(), "a journal write while Redis is down is an error");
    until("the budget fell back", async || {
        let _ = budget.try_acquire(Instant::now());
        budget.fallen_back()
    })
    .await;
    until("the fallback budget granted a request", async || {
        budget.try_acquire(Instant::now()).is_ok()
    })
    .await;
    sim.callbacks_done(&rid).await;
    let answers: Vec<_> = sim
        .callback_log()
        .into_iter()
        .filter(|c| c.rid == rid && c.is_final)
        .map(|c| c.answer)
        .collect();
    assert_eq!(
        answers,
        vec![Ok(503)],
        "the final callback could not be stored: 503, retryable"
    );

    redis.resume().await;

    // Back: the job's registration went with Redis's memory, so its wait falls back on polling
    // and still ends with the transcript.
    let outcome = waiter.await.unwrap().unwrap();
    assert!(
        matches!(&outcome, Outcome::Transcript { rid: r, .. } if *r == rid),
        "{outcome:?}"
    );
    until("the wake-up subscription is back", async || registry.subscribed()).await;
    until("the budget is shared again", async || {
        let _ = budget.try_acquire(Instant::now());
        !budget.fallen_back()
    })
    .await;
    // And a new job runs end to end by callback.
    let mut fresh = JobOptions::default();
    let ticket = hybrid.prepare(&mut fresh).await.unwrap();
    let fresh_rid = client
        .submit_url("https://example.com/after.wav", &fresh)
        .await
        .unwrap()
        .rid;
    let outcome = ticket.wait(fresh_rid.clone(), &IgnoreProgress).await.unwrap();
    assert!(matches!(outcome, Outcome::Transcript { .. }));
    let fresh_status_requests = sim.job(&fresh_rid).unwrap().status_requests;
    assert_eq!(
        fresh_status_requests, 0,
        "delivered by its callback, not by polling"
    );
    journal.intend(Intent::new("y.wav", "d", "hybrid")).await.unwrap();
    eprintln!(
        "outage: prepare refused with a typed error, journal write failed, budget fell back and returned, \
         final callback answered 503 and the job was still delivered by polling"
    );
    server.shutdown().await;
}
