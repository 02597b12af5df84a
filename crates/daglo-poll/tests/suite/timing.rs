//! Scheduling logic under tokio's paused clock, against a scripted source (no I/O): exact and
//! instant.

use std::sync::Arc;
use std::time::Duration;

use daglo_core::{AdaptivePolicy, DeliveryError, Outcome, PollPolicy, ProgressEvent};
use daglo_poll::{PollingConfig, PollingDelivery, TokenBucket, WatchOptions};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::support::{Events, scripted};
use daglo_poll::RateBudget;

/// A token bucket that counts the 429s it is told about.
#[derive(Debug, Default)]
struct CountingBudget {
    bucket: TokenBucket,
    cuts: AtomicUsize,
}

impl RateBudget for CountingBudget {
    fn try_acquire(&self, now: std::time::Instant) -> Result<(), Duration> {
        self.bucket.try_acquire(now)
    }
    fn on_rate_limited(&self, now: std::time::Instant) {
        self.cuts.fetch_add(1, Ordering::Relaxed);
        self.bucket.on_rate_limited(now);
    }
    fn on_success(&self, now: std::time::Instant) {
        self.bucket.on_success(now);
    }
    fn current_rate(&self) -> f64 {
        self.bucket.current_rate()
    }
}
use tokio::time::Instant;

fn config(policy: PollPolicy) -> PollingConfig {
    PollingConfig::default().policy(policy).seed(7)
}

/// Runs `jobs` jobs of `length` under `policy`; returns (requests per job, mean detection
/// latency in seconds).
async fn run(policy: PollPolicy, jobs: usize, length: Duration) -> (f64, f64) {
    let source = scripted();
    let polling = PollingDelivery::with_source(source.clone(), config(policy));
    let mut waits = Vec::new();
    for i in 0..jobs {
        let rid = source.add(
            &format!("job-{i}"),
            length + Duration::from_millis(137 * i as u64),
        );
        let watch = polling.follow(rid.clone());
        waits.push(tokio::spawn(async move {
            (rid, watch.outcome().await, Instant::now())
        }));
    }
    let mut latency = 0.0;
    for wait in waits {
        let (rid, outcome, seen_at) = wait.await.unwrap();
        assert!(matches!(outcome, Ok(Outcome::Transcript { .. })), "{outcome:?}");
        latency += seen_at.duration_since(source.end_of(&rid)).as_secs_f64();
    }
    (
        source.total_requests() as f64 / jobs as f64,
        latency / jobs as f64,
    )
}

#[tokio::test(start_paused = true)]
async fn adaptive_asks_less_than_fixed_for_the_same_detection_latency() {
    let length = Duration::from_secs(120);
    let (fixed_requests, fixed_latency) = run(PollPolicy::Fixed(Duration::from_secs(1)), 20, length).await;
    let (adaptive_requests, adaptive_latency) = run(PollPolicy::default(), 20, length).await;
    let (exp_requests, _) = run(
        PollPolicy::Exponential {
            initial: Duration::from_secs(1),
            factor: 2.0,
            max: Duration::from_secs(60),
        },
        20,
        length,
    )
    .await;
    println!(
        "requests/job: fixed {fixed_requests:.1}, exponential {exp_requests:.1}, adaptive {adaptive_requests:.1}; \
         latency: fixed {fixed_latency:.2}s, adaptive {adaptive_latency:.2}s"
    );
    assert!(
        adaptive_requests * 5.0 < fixed_requests,
        "{adaptive_requests} vs {fixed_requests}"
    );
    // Comparable: no worse than Fixed(1 s)'s latency plus a margin well under its interval.
    assert!(
        adaptive_latency <= fixed_latency + 0.25,
        "{adaptive_latency} vs {fixed_latency}"
    );
}

#[tokio::test(start_paused = true)]
async fn progress_events_arrive_in_order_then_the_outcome() {
    let source = scripted();
    let rid = source.add("r", Duration::from_secs(60));
    let polling =
        PollingDelivery::with_source(source.clone(), config(PollPolicy::Fixed(Duration::from_secs(5))));
    let events = Events::default();
    let outcome = polling.follow(rid.clone()).outcome_with(&events).await.unwrap();
    assert!(matches!(outcome, Outcome::Transcript { .. }));
    let events = events.0.into_inner().unwrap();
    let percents: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            ProgressEvent::Progress { percent, .. } => *percent,
            _ => None,
        })
        .collect();
    assert!(percents.len() >= 10, "{events:?}");
    assert!(percents.windows(2).all(|w| w[0] < w[1]), "{percents:?}");
    assert_eq!(percents.last(), Some(&100));
}

#[tokio::test(start_paused = true)]
async fn a_stuck_job_reports_stalled_once() {
    let source = scripted();
    let rid = source.add("stuck", Duration::from_secs(60));
    source.edit(&rid, |job| job.stuck_at = Some(40));
    let polling = PollingDelivery::with_source(
        source.clone(),
        config(PollPolicy::Fixed(Duration::from_secs(5))).stall_after(Duration::from_secs(30)),
    );
    let mut watch = polling.watch(
        rid.clone(),
        WatchOptions::default().deadline(Duration::from_secs(300)),
    );
    let mut stalls = Vec::new();
    while let Some(event) = watch.next_event().await {
        if let ProgressEvent::Stalled { unchanged_for, .. } = event {
            stalls.push(unchanged_for);
        }
    }
    assert_eq!(stalls.len(), 1, "{stalls:?}");
    assert!(stalls[0] >= Duration::from_secs(30));
    let outcome = watch.outcome().await.unwrap();
    assert!(
        matches!(
            outcome,
            Outcome::GaveUp {
                last_status: Some(_),
                ..
            }
        ),
        "{outcome:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_the_only_waiter_stops_polling_and_frees_the_job() {
    let source = scripted();
    let rid = source.add("long", Duration::from_secs(3600));
    let polling =
        PollingDelivery::with_source(source.clone(), config(PollPolicy::Fixed(Duration::from_secs(2))));
    let mut watch = polling.follow(rid.clone());
    watch.next_event().await.expect("a first poll");
    drop(watch);
    let stats = polling.stats().await;
    assert_eq!((stats.jobs, stats.waiters), (0, 0));
    let polled = source.requests_for(&rid);
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(source.requests_for(&rid), polled, "no poll after the waiter left");
}

#[tokio::test(start_paused = true)]
async fn watchers_of_one_rid_share_one_poll() {
    let source = scripted();
    let rid = source.add("shared", Duration::from_secs(30));
    let polling =
        PollingDelivery::with_source(source.clone(), config(PollPolicy::Fixed(Duration::from_secs(3))));
    let first = polling.follow(rid.clone());
    let second = polling.follow(rid.clone());
    let third = polling.follow(rid.clone());
    drop(third);
    assert_eq!(polling.stats().await.jobs, 1);
    let (a, b) = tokio::join!(first.outcome(), second.outcome());
    assert_eq!(a.unwrap(), b.unwrap());
    // One poll every ~3 s for 30 s: one sequence, not two.
    assert!(source.requests_for(&rid) <= 13, "{}", source.requests_for(&rid));
    assert_eq!(polling.stats().await.jobs, 0);
}

#[tokio::test(start_paused = true)]
async fn jobs_watched_together_do_not_poll_in_lockstep() {
    let source = scripted();
    let polling =
        PollingDelivery::with_source(source.clone(), config(PollPolicy::Fixed(Duration::from_secs(3))));
    let start = Instant::now();
    let mut watches = Vec::new();
    for i in 0..60 {
        watches.push(polling.follow(source.add(&format!("j{i}"), Duration::from_secs(3600))));
    }
    // The budget (16/s) alone would spread 60 polls over ~4 s; give them time, then look at
    // each job's first poll.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut first_by_rid = std::collections::HashMap::new();
    for (rid, at) in source.requests.lock().unwrap().iter() {
        first_by_rid
            .entry(rid.clone())
            .or_insert(at.duration_since(start).as_secs_f64());
    }
    let firsts: Vec<f64> = first_by_rid.into_values().collect();
    assert_eq!(firsts.len(), 60);
    let busiest_tenth = (0..30)
        .map(|slot| firsts.iter().filter(|t| (**t / 0.1) as usize == slot).count())
        .max()
        .unwrap();
    assert!(
        busiest_tenth <= 8,
        "{busiest_tenth} of 60 first polls in one 100 ms slot"
    );
}

#[tokio::test(start_paused = true)]
async fn more_jobs_than_budget_stretch_intervals_and_stay_under_it() {
    let source = scripted();
    let budget = Arc::new(TokenBucket::new(4.0, 1));
    let polling = PollingDelivery::with_source(
        source.clone(),
        config(PollPolicy::Fixed(Duration::from_secs(1))).budget(budget),
    );
    let mut waits = Vec::new();
    for i in 0..100 {
        let watch = polling.follow(source.add(&format!("j{i}"), Duration::from_secs(20 + i)));
        waits.push(tokio::spawn(watch.outcome()));
    }
    for wait in waits {
        assert!(matches!(wait.await.unwrap(), Ok(Outcome::Transcript { .. })));
    }
    let times: Vec<Instant> = source.requests.lock().unwrap().iter().map(|(_, t)| *t).collect();
    for (i, t) in times.iter().enumerate() {
        let window = times[i..]
            .iter()
            .take_while(|u| **u < *t + Duration::from_secs(1))
            .count();
        assert!(window <= 5, "{window} requests within one second");
    }
}

#[tokio::test(start_paused = true)]
async fn the_deadline_gives_up_with_the_rid_and_resume_finishes() {
    let source = scripted();
    let rid = source.add("slow", Duration::from_secs(120));
    let polling = PollingDelivery::with_source(
        source.clone(),
        config(PollPolicy::default()).deadline(Some(Duration::from_secs(30))),
    );
    let outcome = polling.follow(rid.clone()).outcome().await.unwrap();
    let Outcome::GaveUp {
        rid: gave_up,
        last_status,
        reason,
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(gave_up, rid);
    assert!(last_status.is_some());
    assert_eq!(
        reason,
        daglo_core::GaveUpReason::Deadline(Duration::from_secs(30))
    );
    // The job goes on; resuming without a deadline gets the result.
    let watch = polling.watch(rid.clone(), WatchOptions::default().no_deadline());
    assert!(matches!(
        watch.outcome().await.unwrap(),
        Outcome::Transcript { .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn errors_429_and_5xx_are_retried_401_403_404_end_the_wait() {
    let source = scripted();
    let flaky = source.add("flaky", Duration::from_secs(10));
    source.edit(&flaky, |job| job.errors = vec![429, 429, 503, 500, 502, 429]);
    let budget = Arc::new(CountingBudget::default());
    let polling = PollingDelivery::with_source(
        source.clone(),
        config(PollPolicy::Fixed(Duration::from_secs(1))).budget(budget.clone()),
    );
    assert!(matches!(
        polling.follow(flaky).outcome().await,
        Ok(Outcome::Transcript { .. })
    ));
    assert_eq!(polling.stats().await.rate_limited, 3);
    assert_eq!(
        budget.cuts.load(Ordering::Relaxed),
        3,
        "every 429 reached the budget"
    );

    for (status, check) in [
        (
            401,
            (|e: &DeliveryError| matches!(e, DeliveryError::Unauthorized)) as fn(&DeliveryError) -> bool,
        ),
        (403, |e| matches!(e, DeliveryError::Forbidden)),
        (404, |e| matches!(e, DeliveryError::UnknownJob { .. })),
    ] {
        let rid = source.add(&format!("denied-{status}"), Duration::from_secs(10));
        source.edit(&rid, |job| job.errors = vec![status]);
        let err = polling.follow(rid.clone()).outcome().await.unwrap_err();
        assert!(check(&err), "{status}: {err:?}");
        assert_eq!(source.requests_for(&rid), 1, "{status} was not retried");
    }
}

#[tokio::test(start_paused = true)]
async fn ten_thousand_waiting_jobs_are_one_task_and_cheap() {
    let source = scripted();
    let policy = PollPolicy::Adaptive(AdaptivePolicy::default());
    let polling = PollingDelivery::with_source(source.clone(), config(policy));
    let mut watches = Vec::new();
    for i in 0..10_000 {
        watches.push(polling.follow(source.add(&format!("j{i}"), Duration::from_secs(3600))));
    }
    let stats = polling.stats().await;
    assert_eq!((stats.jobs, stats.waiters), (10_000, 10_000));
    drop(watches);
    assert_eq!(polling.stats().await.jobs, 0);
}
