//! What the library counts, through the [`metrics`] facade: every metric's name, kind, labels
//! and meaning in one table ([`METRICS`], which `docs/metrics.md` follows), and one function per
//! thing counted, which the crates of this project call.
//!
//! The library installs no recorder: with none installed (the default) every call is a no-op
//! that costs an atomic load. An application installs one — `daglo::metrics::install_prometheus`
//! behind the `prometheus` feature, or any `metrics` recorder — and calls [`describe`] so the
//! exporter knows each metric's help text and unit.
//!
//! Labels are bounded: endpoints, answer classes, results, strategies, states and backends,
//! each from a short fixed list. Never a rid, a key, a URL, a token or a credential.

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

/// What kind of metric a [`Metric`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// A distribution of observations.
    Histogram,
}

/// One metric the library records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metric {
    /// Its name, as exported.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// Its labels, and the values each takes.
    pub labels: &'static str,
    /// What it counts.
    pub help: &'static str,
    /// Its unit, when it has one.
    pub unit: Option<Unit>,
}

impl Metric {
    /// A metric's row: what [`describe_all`] registers and the docs list.
    pub const fn new(
        name: &'static str,
        kind: Kind,
        labels: &'static str,
        help: &'static str,
        unit: Option<Unit>,
    ) -> Self {
        Self {
            name,
            kind,
            labels,
            help,
            unit,
        }
    }
}

const fn metric(
    name: &'static str,
    kind: Kind,
    labels: &'static str,
    help: &'static str,
    unit: Option<Unit>,
) -> Metric {
    Metric {
        name,
        kind,
        labels,
        help,
        unit,
    }
}

/// Requests to the service by endpoint and answer class.
pub const REQUESTS: &str = "daglo_requests_total";
/// `429` answers by endpoint.
pub const RATE_LIMITED: &str = "daglo_rate_limited_total";
/// Time spent waiting for the rate budget before a request.
pub const BUDGET_WAIT: &str = "daglo_budget_wait_seconds";
/// The rate a budget allows now.
pub const BUDGET_RATE: &str = "daglo_budget_rate";
/// Submits by result.
pub const SUBMITS: &str = "daglo_submits_total";
/// Jobs followed now, by strategy and state.
pub const JOBS_IN_FLIGHT: &str = "daglo_jobs_in_flight";
/// Jobs ended, by strategy and outcome.
pub const JOBS_ENDED: &str = "daglo_jobs_ended_total";
/// Submit-to-outcome time.
pub const JOB_DURATION: &str = "daglo_job_duration_seconds";
/// Status requests spent on one job, observed when it ends.
pub const STATUS_REQUESTS_PER_JOB: &str = "daglo_status_requests_per_job";
/// Callbacks received, by result.
pub const CALLBACKS: &str = "daglo_callbacks_total";
/// Confirmations of final callbacks, by result.
pub const CONFIRMATIONS: &str = "daglo_confirmations_total";
/// Hybrid jobs whose final callback did not come in time (polling took over).
pub const HYBRID_FALLBACKS: &str = "daglo_hybrid_fallbacks_total";
/// Time from a final callback's arrival to the job's outcome.
pub const CALLBACK_TO_OUTCOME: &str = "daglo_callback_to_outcome_seconds";
/// Journal operations by backend, operation and result.
pub const JOURNAL_OPERATIONS: &str = "daglo_journal_operations_total";
/// Journal operation latency.
pub const JOURNAL_SECONDS: &str = "daglo_journal_operation_seconds";
/// Redis operations (registry, budget, wake-ups) by component and result.
pub const REDIS_OPERATIONS: &str = "daglo_redis_operations_total";
/// Redis operation latency.
pub const REDIS_SECONDS: &str = "daglo_redis_operation_seconds";
/// Callback registry changes on Redis that had to go round again, by why.
pub const REDIS_REGISTRY_RETRIES: &str = "daglo_redis_registry_retries_total";

/// Every metric the library records: what `docs/metrics.md` lists and [`describe`] registers.
pub const METRICS: &[Metric] = &[
    metric(
        REQUESTS,
        Kind::Counter,
        "endpoint=submit|status|srt, class=2xx|4xx|5xx|network",
        "Requests sent to the service, by the class of their answer (`network`: no answer).",
        None,
    ),
    metric(
        RATE_LIMITED,
        Kind::Counter,
        "endpoint=submit|status|srt",
        "Answers `429` (also counted in daglo_requests_total as 4xx). Above zero: the budgets are set too high, or another client shares the account.",
        None,
    ),
    metric(
        BUDGET_WAIT,
        Kind::Histogram,
        "endpoint=submit|status|srt",
        "How long a request waited for its endpoint's rate budget.",
        Some(Unit::Seconds),
    ),
    metric(
        BUDGET_RATE,
        Kind::Gauge,
        "endpoint=submit|status|srt, scope=local|shared",
        "The requests per second a budget allows now (halved after a 429, climbing back); `shared`: the Redis budget every process draws from.",
        None,
    ),
    metric(
        SUBMITS,
        Kind::Counter,
        "result=created|refused|may_have_created",
        "Submits by result: a job created, refused with no job created, or failed in a way that may have created (and billed) a job.",
        None,
    ),
    metric(
        JOBS_IN_FLIGHT,
        Kind::Gauge,
        "strategy=polling|callback|hybrid, state=submitting|running|uncertain",
        "Jobs a transcriber follows now, by state.",
        None,
    ),
    metric(
        JOBS_ENDED,
        Kind::Counter,
        "strategy=polling|callback|hybrid, outcome=transcript|empty|failed|gave_up",
        "Jobs whose outcome arrived.",
        None,
    ),
    metric(
        JOB_DURATION,
        Kind::Histogram,
        "strategy=polling|callback|hybrid",
        "From the submit's answer to the job's outcome.",
        Some(Unit::Seconds),
    ),
    metric(
        STATUS_REQUESTS_PER_JOB,
        Kind::Histogram,
        "",
        "Status requests the poller spent on one job, observed when it ends (a hybrid job's included; confirmations of final callbacks are daglo_confirmations_total).",
        None,
    ),
    metric(
        CALLBACKS,
        Kind::Counter,
        "result=accepted|duplicate|late|stale_progress|unknown_key|bad_credential|too_large|malformed|unavailable",
        "Callbacks the receiver answered, by what it made of them.",
        None,
    ),
    metric(
        CONFIRMATIONS,
        Kind::Counter,
        "result=agreed|still_running|differed",
        "Final callbacks checked with a GET: the service agreed, still reported the job running (a forged or early final), or ended it differently.",
        None,
    ),
    metric(
        HYBRID_FALLBACKS,
        Kind::Counter,
        "",
        "Hybrid jobs whose final callback did not come within the window: polling found the outcome.",
        None,
    ),
    metric(
        CALLBACK_TO_OUTCOME,
        Kind::Histogram,
        "",
        "From a final callback's arrival to the job's outcome (its confirmation included).",
        Some(Unit::Seconds),
    ),
    metric(
        JOURNAL_OPERATIONS,
        Kind::Counter,
        "backend=sqlite|redis, operation=claim|intend|submitted|not_submitted|finished|progressed|requested|renew|read|prune|append|mark, result=ok|error",
        "Journal operations.",
        None,
    ),
    metric(
        JOURNAL_SECONDS,
        Kind::Histogram,
        "backend=sqlite|redis, operation=…",
        "How long a journal operation took.",
        Some(Unit::Seconds),
    ),
    metric(
        REDIS_OPERATIONS,
        Kind::Counter,
        "component=registry|budget, result=ok|error",
        "Redis commands of the shared registry and budgets (the journal's are in daglo_journal_operations_total).",
        None,
    ),
    metric(
        REDIS_SECONDS,
        Kind::Histogram,
        "component=registry|budget",
        "How long a Redis operation took.",
        Some(Unit::Seconds),
    ),
    metric(
        REDIS_REGISTRY_RETRIES,
        Kind::Counter,
        "why=conflict|recheck",
        "Registry changes that took a second round trip: the state this replica knew was behind (conflict), or a callback that changed nothing on it was checked against the stored one (recheck).",
        None,
    ),
];

/// Registers every metric's help text and unit with the installed recorder (call it once after
/// installing one; without a recorder it does nothing).
pub fn describe() {
    describe_all(METRICS);
}

/// Registers the help text and unit of each of `metrics` (a program's own, `daglo serve`'s say)
/// with the installed recorder.
pub fn describe_all(metrics: &[Metric]) {
    for m in metrics {
        match (m.kind, m.unit) {
            (Kind::Counter, Some(unit)) => describe_counter!(m.name, unit, m.help),
            (Kind::Counter, None) => describe_counter!(m.name, m.help),
            (Kind::Gauge, Some(unit)) => describe_gauge!(m.name, unit, m.help),
            (Kind::Gauge, None) => describe_gauge!(m.name, m.help),
            (Kind::Histogram, Some(unit)) => describe_histogram!(m.name, unit, m.help),
            (Kind::Histogram, None) => describe_histogram!(m.name, m.help),
        }
    }
}

/// A request to `endpoint` answered with `status` (`None`: no answer).
pub fn request(endpoint: &'static str, status: Option<u16>) {
    let class = match status {
        Some(200..=299) => "2xx",
        Some(400..=499) => "4xx",
        Some(500..=599) => "5xx",
        Some(_) => "other",
        None => "network",
    };
    counter!(REQUESTS, "endpoint" => endpoint, "class" => class).increment(1);
    if status == Some(429) {
        counter!(RATE_LIMITED, "endpoint" => endpoint).increment(1);
    }
}

/// A request to `endpoint` waited `seconds` for its budget, which now allows `rate` per second.
pub fn budget_waited(endpoint: &'static str, seconds: f64) {
    histogram!(BUDGET_WAIT, "endpoint" => endpoint).record(seconds);
}

/// The budget of `endpoint` (`scope` `local` or `shared`) allows `rate` requests a second now.
pub fn budget_rate(endpoint: &'static str, scope: &'static str, rate: f64) {
    gauge!(BUDGET_RATE, "endpoint" => endpoint, "scope" => scope).set(rate);
}

/// A submit ended: `created`, `refused` or `may_have_created`.
pub fn submitted(result: &'static str) {
    counter!(SUBMITS, "result" => result).increment(1);
}

/// A followed job left state `from` (if any) for state `to` (if any): the in-flight gauge.
pub fn job_moved(strategy: &'static str, from: Option<&'static str>, to: Option<&'static str>) {
    if from == to {
        return;
    }
    if let Some(from) = from {
        gauge!(JOBS_IN_FLIGHT, "strategy" => strategy, "state" => from).decrement(1.0);
    }
    if let Some(to) = to {
        gauge!(JOBS_IN_FLIGHT, "strategy" => strategy, "state" => to).increment(1.0);
    }
}

/// A job ended with `outcome` after `seconds` since its submit was answered.
pub fn job_ended(strategy: &'static str, outcome: &'static str, seconds: f64) {
    counter!(JOBS_ENDED, "strategy" => strategy, "outcome" => outcome).increment(1);
    histogram!(JOB_DURATION, "strategy" => strategy).record(seconds);
}

/// The poller is done with a job that cost it `requests` status requests.
pub fn status_requests_per_job(requests: u64) {
    histogram!(STATUS_REQUESTS_PER_JOB).record(requests as f64);
}

/// The receiver answered a callback: `result` is one of [`CALLBACKS`]'s results.
pub fn callback(result: &'static str) {
    // Each known result's labels written once (static): counting one builds no key on the heap,
    // which the receiver's every answer paid for.
    macro_rules! count {
        ($($known:literal)|*) => {
            match result {
                $($known => counter!(CALLBACKS, "result" => $known).increment(1),)*
                other => counter!(CALLBACKS, "result" => other).increment(1),
            }
        };
    }
    count!(
        "accepted"
            | "duplicate"
            | "late"
            | "stale_progress"
            | "unknown_key"
            | "bad_credential"
            | "too_large"
            | "malformed"
            | "unavailable"
    );
}

/// A final callback's confirmation: `agreed`, `still_running` or `differed`.
pub fn confirmation(result: &'static str) {
    counter!(CONFIRMATIONS, "result" => result).increment(1);
}

/// A hybrid job's final callback did not come in time; polling took over.
pub fn hybrid_fallback() {
    counter!(HYBRID_FALLBACKS).increment(1);
}

/// A final callback became the job's outcome `seconds` after it arrived.
pub fn callback_to_outcome(seconds: f64) {
    histogram!(CALLBACK_TO_OUTCOME).record(seconds);
}

/// A journal operation on `backend` took `seconds` and succeeded or not.
pub fn journal_operation(backend: &'static str, operation: &'static str, ok: bool, seconds: f64) {
    let result = if ok { "ok" } else { "error" };
    counter!(JOURNAL_OPERATIONS, "backend" => backend, "operation" => operation, "result" => result)
        .increment(1);
    histogram!(JOURNAL_SECONDS, "backend" => backend, "operation" => operation).record(seconds);
}

/// A change of the Redis callback registry went round again: `why` is `conflict` (the
/// compare-and-set found a newer state) or `recheck` (a no-op on the known state is checked on
/// the stored one).
pub fn redis_registry_retry(why: &'static str) {
    counter!(REDIS_REGISTRY_RETRIES, "why" => why).increment(1);
}

/// A Redis operation of `component` took `seconds` and succeeded or not.
pub fn redis_operation(component: &'static str, ok: bool, seconds: f64) {
    let result = if ok { "ok" } else { "error" };
    counter!(REDIS_OPERATIONS, "component" => component, "result" => result).increment(1);
    histogram!(REDIS_SECONDS, "component" => component).record(seconds);
}
