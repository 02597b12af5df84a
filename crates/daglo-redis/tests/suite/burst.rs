//! A burst: 1,000 jobs finishing within the same 100 ms, their callbacks through a round-robin
//! forwarder to three receiver replicas sharing one Redis. None is lost; the detection latency
//! (the emulator's completion → the waiter has the outcome) is printed as p50/p99.
//!
//! Every listener here asks for a 1,024-connection accept queue (`daglo::callback::bind`). The
//! emulator retries a refused callback (`callback_retries(3)`: a 503 while Redis lags), which
//! the real service does not document; the forwarder tries the next replica when one does not
//! answer, as a load balancer does.

use crate::support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use daglo::callback::{CallbackConfig, CallbackDelivery, CallbackServer, FinalCallbacks, Secret};
use daglo::client::TokenBucket;
use daglo::delivery::IgnoreProgress;
use daglo::redis::{RedisRegistry, RedisStore};
use daglo::sim::{Planner, SimConfig, Simulator};
use daglo::{JobOptions, Outcome, ResultDelivery};

const REPLICAS: usize = 3;
const JOBS: usize = 1000;
/// Every job completes within this window.
const WINDOW_MS: u64 = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_jobs_finishing_in_the_same_100_ms_lose_no_callback() {
    let Some(redis) = support::redis("a_thousand_jobs_finishing_in_the_same_100_ms_lose_no_callback").await
    else {
        return;
    };
    let namespace = support::namespace("burst");
    // All submits go out first (at 500/s, about 2 s); the jobs then complete together.
    let finish_at = Instant::now() + Duration::from_secs(if cfg!(debug_assertions) { 10 } else { 6 });
    let planner = Planner::new(move |submission, plan| {
        let n: u64 = submission
            .audio_name
            .rsplit('-')
            .next()
            .and_then(|tail| tail.trim_end_matches(".wav").parse().ok())
            .unwrap_or(0);
        let at = finish_at + Duration::from_millis(n * WINDOW_MS / JOBS as u64);
        plan.processing_time = at
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(50));
    });
    let sim = Arc::new(
        Simulator::start(
            SimConfig::default()
                .rate_limit(None)
                .callback_retries(3)
                .planner(planner),
        )
        .await
        .unwrap(),
    );
    let client = daglo::Client::builder()
        .token(sim.token())
        .base_url(sim.base_url())
        .submit_budget(Arc::new(TokenBucket::new(500.0, 50)))
        .request_timeout(Duration::from_secs(120))
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
    let mut replicas: Vec<(CallbackDelivery, CallbackServer)> = Vec::new();
    for listener in listeners {
        let store = RedisStore::connect_with(
            &redis.url,
            daglo::redis::RedisOptions::default()
                .namespace(&namespace)
                .timeouts(Duration::from_secs(10)),
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
        replicas.push((delivery, server));
    }

    let mut waiters = Vec::new();
    for n in 0..JOBS {
        let delivery = replicas[n % REPLICAS].0.clone();
        let (client, sim) = (client.clone(), sim.clone());
        waiters.push(tokio::spawn(async move {
            let mut options = JobOptions::default();
            let ticket = delivery.prepare(&mut options).await.expect("prepare");
            let rid = client
                .submit_url(&format!("https://example.com/burst-{n}.wav"), &options)
                .await
                .expect("submit")
                .rid;
            let outcome = ticket.wait(rid.clone(), &IgnoreProgress).await.expect("wait");
            let had_it = tokio::time::Instant::now();
            let completed = sim.job(&rid).expect("known").completes_at;
            (
                rid,
                outcome,
                had_it.saturating_duration_since(completed),
                completed,
            )
        }));
    }
    let all = async {
        let mut ended = Vec::new();
        for waiter in waiters {
            ended.push(waiter.await.expect("waiter"));
        }
        ended
    };
    // A deadline: a lost final would otherwise wait out the registrations' six-hour TTL.
    let ended = tokio::time::timeout(Duration::from_secs(120), all)
        .await
        .unwrap_or_else(|_| {
            let refused = sim.callback_log().iter().filter(|c| c.answer != Ok(200)).count();
            panic!(
                "not every job of the burst ended within two minutes ({refused} callbacks not answered 200)"
            )
        });
    let (first, last) = ended
        .iter()
        .fold((None, None), |(lo, hi): (Option<tokio::time::Instant>, _), e| {
            (
                Some(lo.map_or(e.3, |lo| lo.min(e.3))),
                Some(hi.map_or(e.3, |hi: tokio::time::Instant| hi.max(e.3))),
            )
        });
    let spread = last.unwrap().duration_since(first.unwrap());
    let mut latencies = Vec::new();
    let mut lost = 0;
    for (rid, outcome, latency, _) in ended {
        match outcome {
            Outcome::Transcript { rid: got, .. } if got == rid => {}
            other => {
                lost += 1;
                eprintln!("job {rid} ended {other:?}");
            }
        }
        latencies.push(latency);
    }
    latencies.sort();
    let ms = |p| support::quantile(&latencies, p).as_secs_f64() * 1000.0;
    let log = sim.callback_log();
    // Where the time went: the emulator records a callback once it is answered.
    let mut answered: Vec<Duration> = log
        .iter()
        .filter(|c| c.is_final)
        .filter_map(|c| {
            sim.job(&c.rid)
                .map(|j| c.sent_at.saturating_duration_since(j.completes_at))
        })
        .collect();
    answered.sort();
    eprintln!(
        "burst: finals answered after completion p50 {:.1} ms, p99 {:.1} ms",
        support::quantile(&answered, 0.5).as_secs_f64() * 1000.0,
        support::quantile(&answered, 0.99).as_secs_f64() * 1000.0
    );
    let refused = log.iter().filter(|c| c.answer != Ok(200)).count();
    eprintln!(
        "burst: {JOBS} jobs completing within {:.0} ms, {} callbacks ({refused} refused and resent) \
         over {REPLICAS} replicas: lost {lost}; detection p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        spread.as_secs_f64() * 1000.0,
        log.len(),
        ms(0.5),
        ms(0.99),
        ms(1.0)
    );
    assert!(
        spread <= Duration::from_millis(WINDOW_MS + 50),
        "the jobs completed together: {spread:?}"
    );
    assert_eq!(lost, 0);
    assert_eq!(latencies.len(), JOBS);
    for (delivery, server) in replicas {
        assert_eq!(delivery.registered().await.unwrap(), 0);
        server.shutdown().await;
    }
}
