//! The one task that polls every job: a due-time queue, a ready queue ranked by predicted
//! completion, and the shared rate budget.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use daglo_client::{Error, ErrorKind, RateBudget, StatusAnswer, TokenBucket};
use daglo_core::{Outcome, PollPolicy, ProgressEvent, ProgressTracker, Rid, SplitMix64, Status, StatusBody};
use futures_util::future::{AbortHandle, Abortable, Aborted, BoxFuture};
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use crate::config::PollingConfig;
use crate::mailbox::{Mailbox, WaitResult};
use crate::source::StatusSource;

/// Consecutive undecodable answers tolerated before a wait fails.
const MAX_DECODE_FAILURES: u32 = 5;

/// One caller waiting for a job.
#[derive(Debug)]
pub(crate) struct Waiter {
    pub(crate) id: u64,
    pub(crate) mailbox: Arc<Mailbox>,
}

#[derive(Debug)]
pub(crate) enum Command {
    Watch {
        rid: Rid,
        audio: Option<Duration>,
        waiter: Waiter,
        span: tracing::Span,
    },
    Detach {
        rid: Rid,
        waiter: u64,
    },
    Stats(oneshot::Sender<SchedulerStats>),
}

/// What the scheduler is doing, for tests, metrics and benchmarks.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct SchedulerStats {
    /// Jobs being polled.
    pub jobs: usize,
    /// Callers waiting on them.
    pub waiters: usize,
    /// Status requests on the wire.
    pub in_flight: usize,
    /// Status requests started since the poller was created.
    pub requests: u64,
    /// `429` answers received.
    pub rate_limited: u64,
    /// Requests that failed and were retried (`5xx`, transport, undecodable).
    pub retried_failures: u64,
    /// The budget's current rate, requests per second.
    pub budget_rate: f64,
}

/// Everything the scheduler keeps per job: a few hundred bytes, plus the rid's text and one
/// small entry per waiter.
#[derive(Debug)]
pub(crate) struct Job {
    rid: Rid,
    started: Instant,
    audio: Option<Duration>,
    tracker: ProgressTracker,
    last_status: Option<Status>,
    last_percent: Option<u32>,
    last_change: Instant,
    stall_reported: bool,
    failures: u32,
    waiters: Vec<Waiter>,
    /// The first waiter's span: each status request is made in it.
    span: tracing::Span,
    /// The token of the job's live queue entry; entries carrying another token are stale.
    token: u64,
    in_flight: Option<AbortHandle>,
}

struct Fetched {
    job: u64,
    result: Result<Result<StatusAnswer, Error>, Aborted>,
}

pub(crate) struct Scheduler {
    config: PollingConfig,
    /// The configured budget, or else the source's (the client's status budget).
    budget: Arc<dyn RateBudget>,
    source: Arc<dyn StatusSource>,
    jobs: HashMap<u64, Job>,
    by_rid: HashMap<Rid, u64>,
    /// Jobs waiting for their due time: (due, job, token).
    timers: BinaryHeap<Reverse<(Instant, u64, u64)>>,
    /// Due jobs waiting for budget: (rank, job, token); lower rank goes first.
    ready: BinaryHeap<Reverse<(Instant, u64, u64)>>,
    in_flight: FuturesUnordered<BoxFuture<'static, Fetched>>,
    next_id: u64,
    next_token: u64,
    rng: SplitMix64,
    stats: SchedulerStats,
}

impl Scheduler {
    pub(crate) fn new(config: PollingConfig, source: Arc<dyn StatusSource>) -> Self {
        let seed = config.seed.unwrap_or_else(rand::random);
        let budget = config
            .budget
            .clone()
            .or_else(|| source.budget())
            .unwrap_or_else(|| Arc::new(TokenBucket::default()));
        Self {
            config,
            budget,
            source,
            jobs: HashMap::new(),
            by_rid: HashMap::new(),
            timers: BinaryHeap::new(),
            ready: BinaryHeap::new(),
            in_flight: FuturesUnordered::new(),
            next_id: 1,
            next_token: 1,
            rng: SplitMix64::new(seed),
            stats: SchedulerStats::default(),
        }
    }

    /// Runs until every handle (the delivery and all watches) is gone.
    pub(crate) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        loop {
            let now = self.config.clock.now();
            self.promote_due(now);
            let budget_wait = self.dispatch(now);
            let wake = self.next_wake(now, budget_wait);
            let clock = self.config.clock;
            tokio::select! {
                biased;
                command = commands.recv() => match command {
                    Some(command) => self.handle(command),
                    None => break,
                },
                Some(fetched) = self.in_flight.next(), if !self.in_flight.is_empty() => self.on_fetched(fetched),
                () = async move {
                    match wake {
                        Some(at) => clock.sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => {}
            }
        }
        for job in self.jobs.values() {
            if let Some(handle) = &job.in_flight {
                handle.abort();
            }
            for waiter in &job.waiters {
                waiter.mailbox.close();
            }
        }
    }

    fn next_wake(&self, now: Instant, budget_wait: Option<Duration>) -> Option<Instant> {
        let timer = self.timers.peek().map(|Reverse((due, _, _))| *due);
        let budget = budget_wait.map(|wait| now + wait);
        match (timer, budget) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Watch {
                rid,
                audio,
                waiter,
                span,
            } => self.watch(rid, audio, waiter, span),
            Command::Detach { rid, waiter } => self.detach(&rid, waiter),
            Command::Stats(reply) => {
                let mut stats = self.stats.clone();
                stats.jobs = self.jobs.len();
                stats.waiters = self.jobs.values().map(|j| j.waiters.len()).sum();
                stats.in_flight = self.in_flight.len();
                stats.budget_rate = self.budget.current_rate();
                let _ = reply.send(stats);
            }
        }
    }

    fn watch(&mut self, rid: Rid, audio: Option<Duration>, waiter: Waiter, span: tracing::Span) {
        if let Some(job) = self.by_rid.get(&rid).and_then(|id| self.jobs.get_mut(id)) {
            // Share the poll already running; tell the newcomer where the job stands.
            if let Some(status) = &job.last_status {
                waiter.mailbox.push_event(ProgressEvent::Progress {
                    rid: rid.clone(),
                    status: status.clone(),
                    percent: job.last_percent,
                });
            }
            job.waiters.push(waiter);
            return;
        }
        let now = self.config.clock.now();
        let id = self.next_id;
        self.next_id += 1;
        self.by_rid.insert(rid.clone(), id);
        self.jobs.insert(
            id,
            Job {
                rid,
                started: now,
                audio,
                tracker: ProgressTracker::default(),
                last_status: None,
                last_percent: None,
                last_change: now,
                stall_reported: false,
                failures: 0,
                waiters: vec![waiter],
                span,
                token: 0,
                in_flight: None,
            },
        );
        let first = self.config.policy.first_delay(audio, self.rng.unit());
        self.schedule(id, now + first);
    }

    fn detach(&mut self, rid: &Rid, waiter: u64) {
        let Some(&id) = self.by_rid.get(rid) else { return };
        let Some(job) = self.jobs.get_mut(&id) else { return };
        job.waiters.retain(|w| w.id != waiter);
        if job.waiters.is_empty() {
            debug!(%rid, "last waiter left; polling stops");
            self.remove(id);
        }
    }

    fn remove(&mut self, id: u64) -> Option<Job> {
        let job = self.jobs.remove(&id)?;
        self.by_rid.remove(&job.rid);
        if let Some(handle) = &job.in_flight {
            handle.abort();
        }
        Some(job)
    }

    fn schedule(&mut self, id: u64, due: Instant) {
        let Some(job) = self.jobs.get_mut(&id) else { return };
        let token = self.next_token;
        self.next_token += 1;
        job.token = token;
        self.timers.push(Reverse((due, id, token)));
    }

    fn is_live(&self, id: u64, token: u64) -> bool {
        self.jobs.get(&id).is_some_and(|job| job.token == token)
    }

    /// Moves jobs whose time has come into the ready queue, ranked so that jobs predicted to
    /// finish soonest go first, but none waits more than `max_queueing` past its due time.
    fn promote_due(&mut self, now: Instant) {
        while let Some(Reverse((due, id, token))) = self.timers.peek().copied() {
            if due > now {
                break;
            }
            self.timers.pop();
            if !self.is_live(id, token) {
                continue;
            }
            let job = &self.jobs[&id];
            let bound = due + self.config.max_queueing;
            let predicted = job
                .tracker
                .predicted_remaining(now.saturating_duration_since(job.started))
                .map(|remaining| now + remaining);
            let rank = predicted.map_or(bound, |finish| finish.min(bound));
            self.ready.push(Reverse((rank, id, token)));
        }
    }

    /// Starts requests for ready jobs while budget and the in-flight limit allow; returns how
    /// long until the budget allows the next one, if it is what holds them back.
    fn dispatch(&mut self, now: Instant) -> Option<Duration> {
        while self.in_flight.len() < self.config.max_in_flight {
            let Reverse((_, id, token)) = *self.ready.peek()?;
            if !self.is_live(id, token) {
                self.ready.pop();
                continue;
            }
            if let Err(wait) = self.budget.try_acquire(now) {
                return Some(wait.max(Duration::from_micros(100)));
            }
            self.ready.pop();
            self.start_fetch(id);
        }
        None
    }

    fn start_fetch(&mut self, id: u64) {
        let Some(job) = self.jobs.get_mut(&id) else { return };
        let source = self.source.clone();
        let rid = job.rid.clone();
        let (handle, registration) = AbortHandle::new_pair();
        let request = Abortable::new(
            tracing::Instrument::instrument(async move { source.fetch(&rid).await }, job.span.clone()),
            registration,
        );
        job.in_flight = Some(handle);
        job.token = 0;
        self.stats.requests += 1;
        self.in_flight.push(Box::pin(async move {
            Fetched {
                job: id,
                result: request.await,
            }
        }));
    }

    fn on_fetched(&mut self, fetched: Fetched) {
        let Ok(result) = fetched.result else { return };
        let id = fetched.job;
        let Some(job) = self.jobs.get_mut(&id) else { return };
        job.in_flight = None;
        let rid = job.rid.clone();
        let now = self.config.clock.now();
        match result {
            Ok(StatusAnswer::Empty) => {
                self.budget.on_success(now);
                self.rate_now();
                self.finish(id, Ok(Outcome::Empty { rid }));
            }
            Ok(StatusAnswer::Body(body)) => {
                self.budget.on_success(now);
                self.rate_now();
                self.on_body(id, *body, now);
            }
            Ok(_) => self.retry_later(id, now),
            Err(error) => self.on_error(id, error, now),
        }
    }

    fn on_body(&mut self, id: u64, body: StatusBody, now: Instant) {
        let smoothing = match &self.config.policy {
            PollPolicy::Adaptive(adaptive) => adaptive.smoothing,
            _ => 0.5,
        };
        let stall_after = self.config.stall_after;
        let Some(job) = self.jobs.get_mut(&id) else { return };
        job.failures = 0;
        report_progress(job, &body, now, stall_after);
        let rid = job.rid.clone();
        let (status, progress) = (body.status.clone(), body.progress);
        if let Some(outcome) = Outcome::from_terminal_body(rid, body) {
            self.finish(id, Ok(outcome));
            return;
        }
        let elapsed = now.saturating_duration_since(job.started);
        job.tracker.observe(elapsed, progress, smoothing);
        let wait = self
            .config
            .policy
            .next_interval(&job.tracker, elapsed, job.audio, self.rng.unit());
        debug!(rid = %job.rid, %status, ?progress, wait_ms = wait.as_millis() as u64, "next poll");
        self.schedule(id, now + wait);
    }

    fn on_error(&mut self, id: u64, error: Error, now: Instant) {
        let Some(job) = self.jobs.get(&id) else { return };
        match error.kind() {
            ErrorKind::RateLimited => {
                self.stats.rate_limited += 1;
                self.budget.on_rate_limited(now);
                warn!(rid = %job.rid, rate = self.budget.current_rate(), "429 from the service; budget cut");
                daglo_core::telemetry::budget_rate("status", self.budget.scope(), self.budget.current_rate());
                // Straight back in line: the slowed budget paces the retry.
                self.schedule(id, now);
            }
            ErrorKind::Unauthorized | ErrorKind::Forbidden | ErrorKind::UnknownJob => {
                self.finish(id, Err(Arc::new(error)))
            }
            ErrorKind::Transient => {
                debug!(rid = %job.rid, %error, "status request failed; retrying");
                self.retry_later(id, now);
            }
            ErrorKind::Malformed if job.failures + 1 < MAX_DECODE_FAILURES => {
                warn!(rid = %job.rid, %error, "undecodable status answer; retrying");
                self.retry_later(id, now);
            }
            _ => self.finish(id, Err(Arc::new(error))),
        }
    }

    /// Backs off after a failed request, by the configured [`Backoff`](daglo_core::Backoff).
    fn retry_later(&mut self, id: u64, now: Instant) {
        let Some(job) = self.jobs.get_mut(&id) else { return };
        job.failures += 1;
        self.stats.retried_failures += 1;
        let wait = self.config.retry_backoff.delay(job.failures, self.rng.unit());
        self.schedule(id, now + wait);
    }

    /// The budget's rate now, for the `daglo_budget_rate` gauge.
    fn rate_now(&self) {
        daglo_core::telemetry::budget_rate("status", self.budget.scope(), self.budget.current_rate());
    }

    fn finish(&mut self, id: u64, result: WaitResult) {
        let Some(job) = self.remove(id) else { return };
        debug!(rid = %job.rid, ok = result.is_ok(), polls = job.tracker.polls(), "job settled");
        daglo_core::telemetry::status_requests_per_job(u64::from(job.tracker.polls()));
        let mut waiters = job.waiters.into_iter().peekable();
        while let Some(waiter) = waiters.next() {
            if waiters.peek().is_none() {
                waiter.mailbox.settle(result);
                break;
            }
            waiter.mailbox.settle(result.clone());
        }
    }
}

/// Sends a progress event when status or percent moved, or a stall event once when nothing has
/// moved for `stall_after`.
fn report_progress(job: &mut Job, body: &StatusBody, now: Instant, stall_after: Duration) {
    let moved = job.last_status.as_ref() != Some(&body.status) || job.last_percent != body.progress;
    let event = if moved {
        job.last_status = Some(body.status.clone());
        job.last_percent = body.progress;
        job.last_change = now;
        job.stall_reported = false;
        ProgressEvent::Progress {
            rid: job.rid.clone(),
            status: body.status.clone(),
            percent: body.progress,
        }
    } else {
        let unchanged_for = now.saturating_duration_since(job.last_change);
        if job.stall_reported || unchanged_for < stall_after {
            return;
        }
        job.stall_reported = true;
        ProgressEvent::Stalled {
            rid: job.rid.clone(),
            unchanged_for,
        }
    };
    for waiter in &job.waiters {
        waiter.mailbox.push_event(event.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_job_state_is_well_under_a_kibibyte() {
        use std::mem::size_of;
        let rid_text = 36; // a UUID, held by the job and by the rid index
        let arc_header = 2 * size_of::<usize>();
        let per_job = size_of::<(u64, Job)>()            // the job map's entry
            + size_of::<(Rid, u64)>()                    // the rid index's entry
            + 2 * rid_text
            + 2 * size_of::<(Instant, u64, u64)>()       // a timer and a ready entry
            + size_of::<Waiter>() * 4                    // the waiter list's first allocation
            + arc_header + size_of::<Mailbox>(); // one waiter's mailbox
        assert!(per_job < 768, "{per_job} bytes per job");
    }
}
