//! What each strategy costs and how fast it learns the result, on the same emulated jobs.
//!
//! ```text
//! cargo bench --bench strategies
//! cargo bench --bench strategies -- redis      # only some groups: virtual, real-time, redis
//! ```
//!
//! Diagnostics of the Redis rows: `DAGLO_BENCH_CALLBACK_ANSWERS=1` prints what the receivers
//! answered the emulator and how long after each job's completion its final was answered (late
//! answers, not late wake-ups, made the tail before the writer stopped looking for work in a
//! loop and long states went by name), a timeline of the row in 100 ms steps (submits, callbacks
//! answered, the latest final in each step), and how long each kind of thread of the process ran
//! and waited for a core during the row (Linux schedstat).
//!
//! Every strategy runs the same seeded jobs on a fresh emulator with Daglo's 20 req/s limit on,
//! twice: a light load (10 jobs, under the polling budget) and a heavy one (200 jobs, far over
//! it). Time is virtual and runs faster than real time, shared by the emulator and the client
//! side, so the rate limit holds in virtual seconds on both sides and a run takes seconds.
//! Reported per strategy: status requests per job, 429s, callback POSTs per job, and detection
//! latency — from the instant the emulator completed the job to the instant the waiter had its
//! outcome — as p50/p95/max in virtual seconds.

use std::time::{Duration, Instant};

use daglo::callback::CallbackDelivery;
use daglo::client::{RateBudget, TokenBucket};
use daglo::poll::{PollPolicy, PollingConfig, PollingDelivery};
use daglo::sim::{Clock, Endpoint, Planner, SimConfig, Simulator};
use daglo::test_util::{PollClock, TimeScale};
use daglo::{Client, HybridDelivery, JobOptions, Outcome, Transcriber};

struct Report {
    name: String,
    jobs: usize,
    requests_per_job: f64,
    rate_limited: u64,
    callbacks_per_job: f64,
    /// Jobs whose waiter did not get the transcript.
    lost: usize,
    /// Detection latencies, virtual seconds, sorted.
    latencies: Vec<f64>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

impl Report {
    /// The latency at percentile `p` (0.5: the median), in milliseconds.
    fn ms(&self, p: f64) -> f64 {
        percentile(&self.latencies, p) * 1000.0
    }

    /// The longest latency, in milliseconds.
    fn max_ms(&self) -> f64 {
        self.latencies.last().copied().unwrap_or_default() * 1000.0
    }
}

/// How a scenario's jobs run.
#[derive(Clone, Copy)]
struct Setup {
    /// Virtual time runs this much faster than real time (1: real time).
    speedup: f64,
    /// Job lengths spread evenly over `shortest .. shortest + spread` milliseconds.
    shortest_ms: u64,
    spread_ms: u64,
    /// The emulator's limit per endpoint (`None`: off, to measure this library's own path).
    rate_limit: Option<u32>,
}

impl Setup {
    /// 30-90 s jobs under Daglo's 20 req/s, in virtual time.
    fn virtual_time(speedup: f64) -> Self {
        Self {
            speedup,
            shortest_ms: 30_000,
            spread_ms: 60_001,
            rate_limit: Some(20),
        }
    }

    fn label(&self) -> &'static str {
        if self.speedup == 1.0 {
            "real time"
        } else {
            "virtual"
        }
    }
}

async fn run(
    name: &str,
    jobs: usize,
    setup: Setup,
    make: impl AsyncFnOnce(Client, TimeScale) -> Transcriber,
) -> Report {
    let scale = TimeScale::new(setup.speedup);
    // Job lengths vary over the setup's range, the same for every strategy.
    let sim = Simulator::start(
        SimConfig::default()
            .seed(7)
            .rate_limit(setup.rate_limit)
            .clock(if setup.speedup == 1.0 {
                Clock::Real
            } else {
                Clock::Scaled(scale)
            })
            .planner(Planner::new(move |submission, plan| {
                let n: u64 = submission.audio_name.bytes().map(u64::from).sum::<u64>() * 7919;
                plan.processing_time = Duration::from_millis(setup.shortest_ms + n % setup.spread_ms);
            })),
    )
    .await
    .expect("emulator starts");
    // The run paces its submits itself, in virtual time; the client's own (real-time) submit
    // budget would stretch them tenfold. The client's status budget paces the confirmations of
    // final callbacks on the real clock, so its rate is scaled with the clock (16 per virtual
    // second); pollers get a budget of their own on the virtual clock (`polling`).
    let status_budget = match setup.rate_limit {
        Some(limit) => TokenBucket::new(f64::from(limit) * 0.8 * scale.factor(), 2),
        None => TokenBucket::new(1e9, 1_000_000),
    };
    let client = Client::builder()
        .token(sim.token())
        .base_url(sim.base_url())
        .submit_budget(std::sync::Arc::new(TokenBucket::new(1e9, 1_000_000)))
        .status_budget(std::sync::Arc::new(status_budget))
        .build()
        .unwrap();
    let transcriber = make(client, scale).await;
    let submit_budget = TokenBucket::under_limit(setup.rate_limit.unwrap_or(1_000_000));
    let mut waits = Vec::with_capacity(jobs);
    for i in 0..jobs {
        while let Err(wait) = submit_budget.try_acquire(scale.now()) {
            tokio::time::sleep(scale.real_duration(wait)).await;
        }
        let pending = transcriber
            .submit_url(
                &format!("https://bench.example/job-{i}.wav"),
                &JobOptions::default(),
            )
            .await
            .unwrap();
        let transcriber = transcriber.clone();
        waits.push(tokio::spawn(async move {
            let rid = pending.rid().clone();
            let outcome = transcriber.wait(pending).await;
            (rid, outcome, scale.now())
        }));
    }
    let (latencies, lost) = detection_latencies(name, &sim, waits).await;
    transcriber.shutdown().await;
    let stats = sim.stats();
    let records = sim.jobs();
    sim.shutdown().await;
    Report {
        name: format!("{name} ({})", setup.label()),
        jobs,
        lost,
        requests_per_job: stats.endpoint(Endpoint::Status).requests as f64 / jobs as f64,
        rate_limited: stats.rate_limited(),
        callbacks_per_job: records.iter().map(|r| f64::from(r.callbacks_sent)).sum::<f64>() / jobs as f64,
        latencies,
    }
}

/// One job's wait: its rid, how it ended, and when the wait had it.
type JobWait<E> = tokio::task::JoinHandle<(daglo::Rid, Result<Outcome, E>, Instant)>;

/// Each job's detection latency in seconds (the emulator's completion instant → when its wait
/// had the outcome), sorted, and how many jobs ended without a transcript.
async fn detection_latencies<E: std::fmt::Debug>(
    name: &str,
    sim: &Simulator,
    waits: Vec<JobWait<E>>,
) -> (Vec<f64>, usize) {
    let mut latencies = Vec::with_capacity(waits.len());
    let mut lost = 0;
    for wait in waits {
        // A deadline: a lost final would otherwise leave a callback-only job waiting for ever.
        let Ok(done) = tokio::time::timeout(Duration::from_secs(120), wait).await else {
            let log = sim.callback_log();
            let unanswered: Vec<_> = sim
                .jobs()
                .into_iter()
                .filter(|j| {
                    !log.iter()
                        .any(|c| c.rid == j.rid && c.is_final && c.answer == Ok(200))
                })
                .map(|j| j.rid)
                .collect();
            panic!(
                "{name}: a job did not end within two minutes; {} jobs have no final answered 200, e.g. {:?}",
                unanswered.len(),
                unanswered.first()
            );
        };
        let (rid, outcome, seen_at) = done.unwrap();
        if !matches!(outcome, Ok(Outcome::Transcript { .. })) {
            eprintln!("{name}: {outcome:?}");
            lost += 1;
            continue;
        }
        let completed: Instant = sim.job(&rid).unwrap().completes_at.into_std();
        latencies.push(seen_at.saturating_duration_since(completed).as_secs_f64());
    }
    latencies.sort_by(f64::total_cmp);
    (latencies, lost)
}

/// Callbacks on a loopback receiver the transcriber owns and shuts down. Final callbacks are
/// confirmed with one GET each (the default), paced by the client's status budget at 16 per
/// *virtual* second like polling (see `run`).
async fn callbacks(client: Client, hybrid: Option<PollingDelivery>) -> Transcriber {
    let (callbacks, server) = CallbackDelivery::loopback(client.clone(), |config| config)
        .await
        .unwrap();
    let builder = match hybrid {
        None => Transcriber::builder(client).delivery(callbacks),
        Some(safety_net) => Transcriber::builder(client)
            .delivery(HybridDelivery::new(callbacks, safety_net).window(Duration::from_secs(120))),
    };
    builder.receiver(server).build().await.unwrap()
}

fn polling(client: Client, scale: TimeScale, policy: PollPolicy) -> PollingDelivery {
    PollingDelivery::new(
        client,
        PollingConfig::default()
            .policy(policy)
            // On the virtual clock: a budget of its own (the client's runs on real time).
            .budget(std::sync::Arc::new(TokenBucket::default()))
            .clock(PollClock::Scaled(scale))
            .seed(7),
    )
}

async fn scenario(jobs: usize, speedup: f64) -> Vec<Report> {
    println!("\n{jobs} jobs per strategy, 30-90 s each, 20 req/s limit, virtual time x{speedup}");
    let setup = Setup::virtual_time(speedup);
    let fixed = |secs| PollPolicy::Fixed(Duration::from_secs(secs));
    let exponential = |initial, max| PollPolicy::Exponential {
        initial: Duration::from_secs(initial),
        factor: 2.0,
        max: Duration::from_secs(max),
    };
    let as_transcriber = |client: Client, delivery: PollingDelivery| Transcriber::new(client, delivery);
    let reports = vec![
        run("polling fixed 1 s", jobs, setup, async |c, s| {
            as_transcriber(c.clone(), polling(c, s, fixed(1)))
        })
        .await,
        run("polling fixed 3 s", jobs, setup, async |c, s| {
            as_transcriber(c.clone(), polling(c, s, fixed(3)))
        })
        .await,
        run("polling exponential 1 s x2 <= 60 s", jobs, setup, async |c, s| {
            as_transcriber(c.clone(), polling(c, s, exponential(1, 60)))
        })
        .await,
        run("polling adaptive", jobs, setup, async |c, s| {
            as_transcriber(c.clone(), polling(c, s, PollPolicy::default()))
        })
        .await,
        run("callback", jobs, setup, async |c, _| callbacks(c, None).await).await,
        run("hybrid (window 120 s)", jobs, setup, async |c, s| {
            let safety_net = polling(c.clone(), s, exponential(30, 300));
            callbacks(c, Some(safety_net)).await
        })
        .await,
    ];
    print_table(&reports);
    reports
}

fn print_table(reports: &[Report]) {
    println!(
        "{:<36} {:>9} {:>6} {:>10} {:>9} {:>9} {:>9} {:>9}",
        "strategy", "GETs/job", "429s", "POSTs/job", "p50 ms", "p95 ms", "p99 ms", "max ms"
    );
    for r in reports {
        println!(
            "{:<36} {:>9.2} {:>6} {:>10.2} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            r.name.trim_end_matches(" (virtual)"),
            r.requests_per_job,
            r.rate_limited,
            r.callbacks_per_job,
            r.ms(0.5),
            r.ms(0.95),
            r.ms(0.99),
            r.max_ms()
        );
    }
}

/// The real-time scenario: the emulator on the real clock on loopback. Callbacks: 1,000 jobs at
/// once, 0.5-1.5 s each, the emulator's rate limit off (so all 1,000 run concurrently and what is
/// measured is this library's path: the emulator's POST, the receiver, the registry, the waiter,
/// and for `Confirm` one status GET). Adaptive polling: 50 jobs of 2-6 s under the real 20 req/s.
/// Latency is `tokio::time::Instant` at the waiter's outcome minus the emulator's `completes_at`
/// for the job (the same clock: both sides run in this process).
async fn real_time() -> Vec<Report> {
    let concurrent = Setup {
        speedup: 1.0,
        shortest_ms: 500,
        spread_ms: 1001,
        rate_limit: None,
    };
    println!(
        "\nReal time on loopback: 1000 concurrent callback jobs of 0.5-1.5 s (no rate limit); 50 polled jobs of 2-6 s at 20 req/s"
    );
    let trusting = async |client: Client, _scale: TimeScale| {
        let (callbacks, server) = CallbackDelivery::loopback(client.clone(), |config| {
            config.finals(daglo::callback::FinalCallbacks::TrustBody)
        })
        .await
        .unwrap();
        Transcriber::builder(client)
            .delivery(callbacks)
            .receiver(server)
            .build()
            .await
            .unwrap()
    };
    let confirming = async |client: Client, _scale: TimeScale| {
        // The emulator's limit is off, and so is the client's status budget (see `run`).
        let (callbacks, server) = CallbackDelivery::loopback(client.clone(), |config| config)
            .await
            .unwrap();
        Transcriber::builder(client)
            .delivery(callbacks)
            .receiver(server)
            .build()
            .await
            .unwrap()
    };
    let polled = Setup {
        speedup: 1.0,
        shortest_ms: 2000,
        spread_ms: 4001,
        rate_limit: Some(20),
    };
    let reports = vec![
        run("callback trusting bodies", 1000, concurrent, trusting).await,
        run("callback", 1000, concurrent, confirming).await,
        run("polling adaptive", 50, polled, async |c, _s| {
            Transcriber::new(c.clone(), PollingDelivery::new(c, PollingConfig::default()))
        })
        .await,
    ];
    print_table(&reports);
    reports
}

// The Redis tests' own helpers: a private `redis-server` (or `DAGLO_TEST_REDIS_URL`) — one copy.
#[path = "../crates/daglo-redis/tests/support/mod.rs"]
mod redis_support;

/// Three receiver replicas sharing one Redis registry on one port (`SO_REUSEPORT`: the kernel
/// balances connections, like a layer-4 load balancer; an HTTP forwarder in this same 2-core
/// process doubled the HTTP work, and a TCP one was still a tenth of it), 1,000 callback jobs
/// (finals trusted, as in the in-memory row beside it), on the real clock, the emulator on a
/// runtime of its own (one worker thread), 32 jobs being submitted at a time. With `burst`,
/// every job completes within the same 100 ms.
async fn redis_replicas(name: &str, redis: &redis_support::TestRedis, burst: bool) -> Report {
    use daglo::ResultDelivery;
    use daglo::callback::{CallbackConfig, FinalCallbacks, Secret};
    use daglo::delivery::IgnoreProgress;
    const JOBS: usize = 1000;
    const REPLICAS: usize = 3;
    const SUBMITS_IN_FLIGHT: usize = 32;
    let finish_at = Instant::now() + Duration::from_secs(4);
    let sim_config = SimConfig::default()
        .rate_limit(None)
        .callback_retries(3)
        .planner(Planner::new(move |submission, plan| {
            let n: u64 = submission.audio_name.bytes().map(u64::from).sum::<u64>() * 7919;
            plan.processing_time = if burst {
                (finish_at + Duration::from_millis(n % 100))
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(50))
            } else {
                Duration::from_millis(500 + n % 1001)
            };
        }));
    // The emulator on a runtime of its own, one worker thread: Daglo is another system, and on
    // the replicas' runtime its timers and sends queued behind their tasks, so that its own
    // lateness was counted as the replicas' (in interleaved pairs of runs, 10 of 11 had a lower p99
    // this way). It still shares the two cores.
    let sim_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bench-daglo")
        .enable_all()
        .build()
        .unwrap();
    let sim = std::sync::Arc::new(
        sim_runtime
            .spawn(Simulator::start(sim_config))
            .await
            .unwrap()
            .unwrap(),
    );
    let client = Client::builder()
        .token(sim.token())
        .base_url(sim.base_url())
        .submit_budget(std::sync::Arc::new(TokenBucket::new(1e9, 1_000_000)))
        .status_budget(std::sync::Arc::new(TokenBucket::new(1e9, 1_000_000)))
        .build()
        .unwrap();
    let namespace = format!("bench-{}", daglo::JobId::random());
    // Three listeners on one port (`SO_REUSEPORT`): the kernel spreads the emulator's
    // connections over the replicas, as a layer-4 load balancer would, without a forwarder in
    // this process doing the copying (which, on these two cores, was itself a tenth of the work).
    let listeners = reuseport_listeners(REPLICAS);
    let front = listeners[0].local_addr().unwrap();
    let mut replicas = Vec::new();
    for listener in listeners {
        let store = daglo::redis::RedisStore::connect_with(
            &redis.url,
            daglo::redis::RedisOptions::default().namespace(&namespace),
        )
        .await
        .unwrap();
        let registry = std::sync::Arc::new(daglo::redis::RedisRegistry::new(store).await);
        let config = CallbackConfig::new(&format!("http://{front}/daglo"))
            .unwrap()
            .key_secret(Secret::new("the bench's replicas share one key secret"))
            .finals(FinalCallbacks::TrustBody);
        let delivery = CallbackDelivery::with_registry(client.clone(), config, registry).unwrap();
        let server = delivery.serve(listener).unwrap();
        replicas.push((delivery, server));
    }
    // Each thread's time on a core and waiting for one, for the diagnostics.
    let threads_before = std::env::var_os("DAGLO_BENCH_CALLBACK_ANSWERS")
        .is_some()
        .then(thread_times);
    let mut waits = Vec::with_capacity(JOBS);
    // At most `SUBMITS_IN_FLIGHT` jobs being registered and submitted at once, as an application
    // submits a batch (the CLI's `--concurrency`; the in-memory rows submit one after another).
    // All 1,000 at once opened 1,000 connections to the emulator in the first few hundred
    // milliseconds: setup work that pushed the first progress callbacks into the first finals.
    let in_flight = std::sync::Arc::new(tokio::sync::Semaphore::new(SUBMITS_IN_FLIGHT));
    for i in 0..JOBS {
        let delivery = replicas[i % REPLICAS].0.clone();
        let client = client.clone();
        let in_flight = in_flight.clone();
        waits.push(tokio::spawn(async move {
            let submitting = in_flight.acquire_owned().await.unwrap();
            let mut options = JobOptions::default();
            let ticket = delivery.prepare(&mut options).await.unwrap();
            let rid = client
                .submit_url(&format!("https://bench.example/redis-{i}.wav"), &options)
                .await
                .unwrap()
                .rid;
            drop(submitting);
            let outcome = ticket.wait(rid.clone(), &IgnoreProgress).await;
            (rid, outcome, tokio::time::Instant::now().into_std())
        }));
    }
    let (latencies, lost) = detection_latencies(name, &sim, waits).await;
    if let Some(threads_before) = threads_before {
        print_diagnostics(name, &sim, &threads_before);
    }
    for (_, server) in replicas {
        server.shutdown().await;
    }
    // Its tasks end with it (a runtime cannot be dropped inside an async context).
    sim_runtime.shutdown_background();
    let stats = sim.stats();
    let records = sim.jobs();
    Report {
        name: format!("{name} (real time)"),
        jobs: JOBS,
        lost,
        requests_per_job: stats.endpoint(Endpoint::Status).requests as f64 / JOBS as f64,
        rate_limited: stats.rate_limited(),
        callbacks_per_job: records.iter().map(|r| f64::from(r.callbacks_sent)).sum::<f64>() / JOBS as f64,
        latencies,
    }
}

/// The Redis rows' diagnostics (`DAGLO_BENCH_CALLBACK_ANSWERS=1`): what the receivers answered
/// the emulator; how long after its job completed each final was answered; a timeline in 100 ms
/// steps from the first submit (submits accepted, callbacks answered, the latest final answered
/// in each step); and what each kind of thread of this process did during the row — time on a
/// core, time runnable but waiting for one (Linux schedstat), how many times it was scheduled.
fn print_diagnostics(
    name: &str,
    sim: &Simulator,
    threads_before: &std::collections::HashMap<String, ThreadTime>,
) {
    let records = sim.jobs();
    let log = sim.callback_log();
    let mut answers: std::collections::BTreeMap<String, usize> = Default::default();
    for record in &log {
        let answer = match &record.answer {
            Ok(code) => code.to_string(),
            Err(e) => format!("error: {e}"),
        };
        *answers.entry(answer).or_default() += 1;
    }
    println!("{name}: callback answers {answers:?}");
    let completed: std::collections::HashMap<_, _> =
        records.iter().map(|j| (j.rid.clone(), j.completes_at)).collect();
    // How long after its job completed a final was answered, in milliseconds.
    let late = |c: &daglo_sim::CallbackRecord| {
        let done = completed.get(&c.rid).filter(|_| c.is_final)?;
        Some(c.sent_at.saturating_duration_since(*done).as_secs_f64() * 1000.0)
    };
    let mut answered: Vec<f64> = log.iter().filter_map(late).collect();
    answered.sort_by(f64::total_cmp);
    let q = |p: f64| {
        answered
            .get(((answered.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    println!(
        "{name}: finals answered after completion p50 {:.1} p99 {:.1} max {:.1} ms",
        q(0.5),
        q(0.99),
        q(1.0)
    );
    if let Some(t0) = records.iter().map(|j| j.submitted_at).min() {
        let step = |at: tokio::time::Instant| (at.saturating_duration_since(t0).as_millis() / 100) as usize;
        let mut rows: std::collections::BTreeMap<usize, (usize, usize, f64)> = Default::default();
        for job in &records {
            rows.entry(step(job.submitted_at)).or_default().0 += 1;
        }
        for c in &log {
            let row = rows.entry(step(c.sent_at)).or_default();
            row.1 += 1;
            if let Some(late) = late(c) {
                row.2 = row.2.max(late);
            }
        }
        for (at, (submits, callbacks, late)) in rows {
            println!(
                "{name}: t={:>5} ms submits {submits:>4} callbacks {callbacks:>4} latest final {late:>7.1} ms",
                at * 100
            );
        }
    }
    let mut by_name: std::collections::BTreeMap<String, (u64, u64, u64)> = Default::default();
    for (tid, after) in thread_times() {
        let before = threads_before.get(&tid).cloned().unwrap_or_default();
        let sum = by_name.entry(after.name).or_default();
        sum.0 += after.ran_ns.saturating_sub(before.ran_ns);
        sum.1 += after.waited_ns.saturating_sub(before.waited_ns);
        sum.2 += after.slices.saturating_sub(before.slices);
    }
    for (thread, (ran, waited, slices)) in by_name {
        println!(
            "{name}: threads {thread:<16} ran {:>7.1} ms, waited for a core {:>7.1} ms, {slices} slices",
            ran as f64 / 1e6,
            waited as f64 / 1e6
        );
    }
}

/// `n` listeners on one loopback port with `SO_REUSEPORT`, each with the receiver's deep accept
/// queue.
fn reuseport_listeners(n: usize) -> Vec<tokio::net::TcpListener> {
    let mut port = 0;
    (0..n)
        .map(|_| {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.set_reuseaddr(true).unwrap();
            socket.set_reuseport(true).unwrap();
            socket
                .bind(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
                .unwrap();
            let listener = socket.listen(daglo::callback::DEFAULT_ACCEPT_BACKLOG).unwrap();
            port = listener.local_addr().unwrap().port();
            listener
        })
        .collect()
}

async fn redis_rows() -> Vec<Report> {
    let Some(redis) = redis_support::redis("the strategies bench's Redis rows").await else {
        return Vec::new();
    };
    println!(
        "
Real time on loopback, Redis: 3 receiver replicas on one port (SO_REUSEPORT), 1000 jobs submitted 32 at a time"
    );
    let reports = vec![
        redis_replicas("callback trusting bodies via Redis: 3 replicas", &redis, false).await,
        redis_replicas(
            "burst of 1000 finals in 100 ms via Redis: 3 replicas",
            &redis,
            true,
        )
        .await,
    ];
    print_table(&reports);
    reports
}

/// Where the results go: `target/daglo-bench/` (or under `CARGO_TARGET_DIR`).
fn output_dir() -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("daglo-bench")
}

/// One row per strategy and load; latencies in milliseconds of the time the name says.
fn write_csv(path: &std::path::Path, reports: &[Report]) -> std::io::Result<()> {
    let mut csv =
        String::from("strategy,jobs,p50_ms,p95_ms,p99_ms,max_ms,requests_per_job,rate_limited,lost\n");
    for r in reports {
        csv.push_str(&format!(
            "{},{},{:.1},{:.1},{:.1},{:.1},{:.2},{},{}\n",
            r.name,
            r.jobs,
            r.ms(0.5),
            r.ms(0.95),
            r.ms(0.99),
            r.max_ms(),
            r.requests_per_job,
            r.rate_limited,
            r.lost
        ));
    }
    std::fs::write(path, csv)
}

/// Requests per job against detection latency: a point per strategy and load at its p50, a
/// whisker to its p99; one colour per strategy, circles for the light load, triangles for the
/// heavy one; both axes logarithmic so the cheap and the slow both stay readable.
fn draw_tradeoff(path: &std::path::Path, reports: &[Report]) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    let root = SVGBackend::new(path, (1000, 640)).into_drawing_area();
    root.fill(&WHITE)?;
    let light = reports.iter().map(|r| r.jobs).min().unwrap_or(0);
    let heavy = reports.iter().map(|r| r.jobs).max().unwrap_or(0);
    let caption = format!(
        "Status requests per job against detection latency (virtual time; ● {light} jobs, ▲ {heavy} jobs)"
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 18))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d((10f64..100_000f64).log_scale(), (0.5f64..150f64).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("detection latency, ms: p50 point, whisker to p99 (log scale)")
        .y_desc("status requests per job (log scale)")
        .draw()?;
    let strategies: Vec<&str> = reports
        .iter()
        .filter(|r| r.jobs == light)
        .map(|r| r.name.as_str())
        .collect();
    for r in reports.iter().filter(|r| !r.latencies.is_empty()) {
        let index = strategies.iter().position(|n| *n == r.name).unwrap_or(0);
        let color = Palette99::pick(index).to_rgba();
        let p50 = r.ms(0.5).max(10.0);
        let p99 = r.ms(0.99).max(10.0);
        let y = r.requests_per_job.max(0.5);
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(p50, y), (p99, y)],
            color.stroke_width(2),
        )))?;
        if r.jobs == light {
            let name = r.name.trim_end_matches(" (virtual)").to_owned();
            chart
                .draw_series(std::iter::once(Circle::new((p50, y), 6, color.filled())))?
                .label(name)
                .legend(move |(x, y)| Circle::new((x + 10, y), 5, color.filled()));
        } else {
            chart.draw_series(std::iter::once(TriangleMarker::new((p50, y), 7, color.filled())))?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// The groups of rows a full run has; `cargo bench --bench strategies -- redis` runs only those
/// named (and writes no CSV or chart, which come from full runs only).
const GROUPS: [&str; 3] = ["virtual", "real-time", "redis"];

/// The groups named on the command line (none: all of them).
fn named_groups() -> Vec<String> {
    let named: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    for name in &named {
        assert!(
            GROUPS.contains(&name.as_str()),
            "no group of rows is called {name:?}; the groups are {GROUPS:?}"
        );
    }
    named
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let named = named_groups();
    let selected = |group: &str| named.is_empty() || named.iter().any(|n| n == group);
    let mut reports = Vec::new();
    if selected("virtual") {
        reports.extend(scenario(10, 20.0).await);
        reports.extend(scenario(200, 10.0).await);
        println!(
            "\nLatencies are virtual milliseconds: at xN, each real millisecond of local overhead reads as N ms."
        );
    }
    if selected("real-time") {
        reports.extend(real_time().await);
    }
    if selected("redis") {
        reports.extend(redis_rows().await);
    }
    if !named.is_empty() {
        // Only some groups ran: the CSV and the chart are written from a full run only.
        return;
    }
    let dir = output_dir();
    std::fs::create_dir_all(&dir).expect("the output directory");
    write_csv(&dir.join("strategies.csv"), &reports).expect("the CSV");
    draw_tradeoff(&dir.join("tradeoff.svg"), &reports).expect("the SVG");
    println!("wrote {0}/strategies.csv and {0}/tradeoff.svg", dir.display());
}

/// A thread's scheduling so far, from `/proc/self/task/<tid>/schedstat`.
#[derive(Clone, Default)]
struct ThreadTime {
    name: String,
    ran_ns: u64,
    waited_ns: u64,
    slices: u64,
}

/// Every thread of this process by id (empty where the platform has no `/proc` schedstat).
fn thread_times() -> std::collections::HashMap<String, ThreadTime> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Default::default();
    };
    tasks
        .flatten()
        .filter_map(|task| {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            let mut fields = stat.split_whitespace().map(str::parse::<u64>);
            let (Some(Ok(ran_ns)), Some(Ok(waited_ns)), Some(Ok(slices))) =
                (fields.next(), fields.next(), fields.next())
            else {
                return None;
            };
            let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            Some((
                task.file_name().to_string_lossy().into_owned(),
                ThreadTime {
                    name: name.trim().to_owned(),
                    ran_ns,
                    waited_ns,
                    slices,
                },
            ))
        })
        .collect()
}
