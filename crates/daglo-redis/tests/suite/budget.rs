//! Three pollers, each with its own client and `RedisBudget`s (three processes in all but
//! name), on 150 jobs against one emulator that enforces 20 requests/s per endpoint: not one
//! `429`, and together they use at least 80 % of the shared budget.

use crate::support;

use std::time::Duration;

use daglo::delivery::IgnoreProgress;
use daglo::poll::{PollPolicy, PollingConfig, PollingDelivery};
use daglo::redis::{BudgetOptions, SharedBudgets};
use daglo::sim::{Endpoint, SimConfig, Simulator};
use daglo::{JobOptions, Outcome, ResultDelivery};

const PROCESSES: usize = 3;
const JOBS: usize = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_pollers_share_one_budget_without_a_429_and_without_starving() {
    let Some(redis) =
        support::redis("three_pollers_share_one_budget_without_a_429_and_without_starving").await
    else {
        return;
    };
    let url = redis.url.clone();
    let namespace = support::namespace("pollers");
    let sim = std::sync::Arc::new(
        Simulator::start(
            SimConfig::default()
                .rate_limit(Some(20))
                .processing_time(Duration::from_millis(1500)),
        )
        .await
        .unwrap(),
    );
    let options = BudgetOptions::default();
    let started = tokio::time::Instant::now();
    let mut waiters = Vec::new();
    for process in 0..PROCESSES {
        let store = support::store(&url, &namespace).await;
        let budgets = SharedBudgets::with_options(&store, "account", &options);
        let client = budgets
            .apply(
                daglo::Client::builder()
                    .token(sim.token())
                    .base_url(sim.base_url()),
            )
            .build()
            .unwrap();
        // Polls every 250 ms: far more than the budget allows, so the budget is what paces.
        let polling = PollingDelivery::new(
            client.clone(),
            PollingConfig::default()
                .policy(PollPolicy::Fixed(Duration::from_millis(250)))
                .budget(budgets.status.clone()),
        );
        for n in (process..JOBS).step_by(PROCESSES) {
            let polling = polling.clone();
            let client = client.clone();
            let budgets = budgets.clone();
            waiters.push(tokio::spawn(async move {
                let _keep = budgets;
                let mut options = JobOptions::default();
                let ticket = polling.prepare(&mut options).await.expect("prepare");
                let rid = client
                    .submit_url(&format!("https://example.com/p{process}-{n}.wav"), &options)
                    .await
                    .expect("submit")
                    .rid;
                ticket.wait(rid, &IgnoreProgress).await.expect("wait")
            }));
        }
    }
    for waiter in waiters {
        assert!(matches!(waiter.await.unwrap(), Outcome::Transcript { .. }));
    }
    let elapsed = started.elapsed();
    let stats = sim.stats();
    let (submits, statuses) = (stats.endpoint(Endpoint::Submit), stats.endpoint(Endpoint::Status));
    let status_rate = statuses.requests as f64 / elapsed.as_secs_f64();
    let used = status_rate / options.per_second;
    eprintln!(
        "{PROCESSES} pollers, {JOBS} jobs in {:.1} s: {} submits, {} status requests ({status_rate:.1}/s, \
         {:.0} % of the shared {}/s, {:.0} % of the service's 20/s), 429s: {}",
        elapsed.as_secs_f64(),
        submits.requests,
        statuses.requests,
        used * 100.0,
        options.per_second,
        status_rate / 20.0 * 100.0,
        stats.rate_limited(),
    );
    assert_eq!(stats.rate_limited(), 0, "no process met a 429");
    assert!(
        used >= 0.8,
        "together they used {:.0} % of the budget",
        used * 100.0
    );
}
