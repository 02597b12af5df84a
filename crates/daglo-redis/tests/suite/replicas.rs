//! Three receiver replicas behind a round-robin forwarder, one Redis: 1,000 jobs whose waiters
//! are spread over the replicas, the emulator's callback faults on. Every job gets exactly one
//! outcome, wherever its callbacks landed.

use crate::support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use daglo::callback::{CallbackConfig, CallbackDelivery, CallbackServer, FinalCallbacks, Secret};
use daglo::client::TokenBucket;
use daglo::delivery::IgnoreProgress;
use daglo::redis::{RedisRegistry, RedisStore};
use daglo::sim::{JobPlan, Planner, SimConfig, Simulator, Submission};
use daglo::{JobOptions, Outcome, ResultDelivery};

const REPLICAS: usize = 3;
const JOBS: usize = 1000;

/// Faults by job number: duplicated finals, stale progress after the final, no rid in bodies,
/// and callbacks that beat the submit answer, alone and together.
fn faults_for(submission: &Submission, plan: &mut JobPlan) {
    let n: usize = submission
        .audio_name
        .rsplit('-')
        .next()
        .and_then(|tail| tail.trim_end_matches(".wav").parse().ok())
        .unwrap_or(0);
    plan.faults.duplicate_final_callback = n.is_multiple_of(2);
    plan.faults.late_progress_after_final = n.is_multiple_of(3);
    plan.faults.omit_rid_in_callbacks = n % 4 < 2;
    plan.faults.callback_before_submit_answer = n.is_multiple_of(5);
    // Spread the completions over a second, so callbacks of many jobs interleave.
    plan.processing_time = Duration::from_millis(400 + (n as u64 * 7) % 1000);
}

struct Replica {
    delivery: CallbackDelivery,
    server: CallbackServer,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_deliver_a_thousand_jobs_with_faults_exactly_once() {
    let Some(redis) = support::redis("three_replicas_deliver_a_thousand_jobs_with_faults_exactly_once").await
    else {
        return;
    };
    let url = redis.url.clone();
    let namespace = support::namespace("replicas");
    let sim = Simulator::start(
        SimConfig::default()
            .rate_limit(None)
            // A sender that retries a refused callback (a 503 while Redis is slow under load);
            // the real service documents no retry — the hybrid strategy covers that case.
            .callback_retries(3)
            .planner(Planner::new(faults_for)),
    )
    .await
    .unwrap();
    let sim = Arc::new(sim);
    // The emulator has no rate limit here: this test is about delivery, not pacing.
    let client = daglo::Client::builder()
        .token(sim.token())
        .base_url(sim.base_url())
        .submit_budget(Arc::new(TokenBucket::new(500.0, 50)))
        // Patient, like the Redis connections below: on two busy cores a debug-build burst
        // can keep an answer waiting longer than the default 30 s.
        .request_timeout(std::time::Duration::from_secs(120))
        .build()
        .unwrap();

    let mut listeners = Vec::new();
    for _ in 0..REPLICAS {
        listeners.push(
            daglo::callback::bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
                .await
                .unwrap(),
        );
    }
    let forwarder =
        support::Forwarder::start(listeners.iter().map(|l| l.local_addr().unwrap()).collect()).await;
    let public_url = format!("http://{}/daglo", forwarder.addr);
    let mut replicas = Vec::new();
    for listener in listeners {
        // Each replica: its own connection to Redis, the same namespace and key secret.
        let store = RedisStore::connect_with(
            &url,
            // Patient: the suite runs this burst beside other tests on two cores.
            daglo::redis::RedisOptions::default()
                .namespace(&namespace)
                .timeouts(std::time::Duration::from_secs(10)),
        )
        .await
        .unwrap();
        let registry = Arc::new(RedisRegistry::new(store).await);
        let config = CallbackConfig::new(&public_url)
            .unwrap()
            .key_secret(Secret::new("one key secret shared by the three replicas"))
            .finals(FinalCallbacks::TrustBody);
        let delivery = CallbackDelivery::with_registry(client.clone(), config, registry).unwrap();
        let server = delivery.serve(listener).unwrap();
        replicas.push(Replica { delivery, server });
    }

    let mut waiters = Vec::new();
    for n in 0..JOBS {
        let delivery = replicas[n % REPLICAS].delivery.clone();
        let client = client.clone();
        let sim_jobs = sim.clone();
        waiters.push(tokio::spawn(async move {
            let mut options = JobOptions::default();
            let ticket = delivery.prepare(&mut options).await.expect("prepare");
            let rid = client
                .submit_url(&format!("https://example.com/job-{n}.wav"), &options)
                .await
                .expect("submit")
                .rid;
            let outcome = ticket.wait(rid.clone(), &IgnoreProgress).await.expect("wait");
            let had_it = tokio::time::Instant::now();
            let completed = sim_jobs
                .job(&rid)
                .expect("the emulator knows the job")
                .completes_at;
            (rid, outcome, had_it.saturating_duration_since(completed))
        }));
    }
    let mut rids = HashSet::new();
    let mut latencies = Vec::new();
    let mut lost = 0;
    // A deadline: a lost final would otherwise wait out the registrations' six-hour TTL.
    let all = async {
        let mut ended = Vec::new();
        for waiter in waiters {
            ended.push(waiter.await.expect("waiter"));
        }
        ended
    };
    let Ok(ended) = tokio::time::timeout(std::time::Duration::from_secs(180), all).await else {
        let log = sim.callback_log();
        let failed: Vec<_> = log.iter().filter(|c| c.answer != Ok(200)).collect();
        let mut finals_ok = HashSet::new();
        for c in log.iter().filter(|c| c.is_final && c.answer == Ok(200)) {
            finals_ok.insert(c.rid.clone());
        }
        let without_final: Vec<_> = sim
            .jobs()
            .into_iter()
            .filter(|j| !finals_ok.contains(&j.rid))
            .map(|j| j.rid)
            .collect();
        panic!(
            "not every job of the burst ended within three minutes; {} callbacks not answered 200: {:?}; \
             jobs with no final answered 200: {without_final:?}",
            failed.len(),
            failed
                .iter()
                .take(20)
                .map(|c| (&c.rid, &c.status, c.is_final, &c.answer))
                .collect::<Vec<_>>()
        );
    };
    for (rid, outcome, latency) in ended {
        match outcome {
            Outcome::Transcript { rid: got, .. } => assert_eq!(got, rid),
            other => {
                lost += 1;
                eprintln!("job {rid} ended {other:?}");
            }
        }
        assert!(rids.insert(rid), "a job had two outcomes");
        latencies.push(latency);
    }
    latencies.sort();
    let quantile = |p| support::quantile(&latencies, p).as_secs_f64() * 1000.0;
    eprintln!(
        "{JOBS} jobs over {REPLICAS} replicas, {} callbacks forwarded round-robin: lost {lost}; \
         detection latency (emulator completion -> waiter has the outcome) p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        forwarder.forwarded.load(std::sync::atomic::Ordering::Relaxed),
        quantile(0.5),
        quantile(0.99),
        quantile(1.0),
    );
    assert_eq!(lost, 0);
    assert_eq!(rids.len(), JOBS);
    let sent_finals = sim.callback_log().iter().filter(|c| c.is_final).count();
    assert!(
        sent_finals > JOBS,
        "duplicated finals were sent ({sent_finals}) and each counted once"
    );
    for replica in replicas {
        assert_eq!(
            replica.delivery.registered().await.unwrap(),
            0,
            "every job forgotten once delivered"
        );
        replica.server.shutdown().await;
    }
}
