//! What the service counts beyond the library's metrics (`docs/metrics.md`, "The service"):
//! answers by route template and status class, and webhook delivery attempts.

use daglo::telemetry::{Kind, Metric};
use metrics::{Unit, counter, histogram};

/// Requests the service answered, by route template and status class.
pub(crate) const API_REQUESTS: &str = "daglo_api_requests_total";
/// How long the service took to answer.
pub(crate) const API_SECONDS: &str = "daglo_api_request_seconds";
/// Webhook delivery attempts the service made, by event type and result.
pub(crate) const WEBHOOK_ATTEMPTS: &str = "daglo_webhook_attempts_total";

/// Jobs created, by tenant and how their submit ended.
pub(crate) const TENANT_JOBS: &str = "daglo_serve_jobs_created_total";

/// Requests refused at once because their kind of traffic was at its share.
pub(crate) const SHED: &str = "daglo_serve_shed_total";

/// The service's metrics, as `docs/metrics.md` lists them.
pub(crate) const METRICS: &[Metric] = &[
    Metric::new(
        API_REQUESTS,
        Kind::Counter,
        "route=the router's route templates (`/v1/jobs/{id}`, `/daglo/{key}`, …) or `other`, tenant=a configured tenant's name, `admin`, or `none` (no key: probes, callbacks, refusals), class=2xx|4xx|5xx",
        "Requests `daglo serve` answered (its API, probes and Daglo's callbacks).",
        None,
    ),
    Metric::new(
        API_SECONDS,
        Kind::Histogram,
        "route, tenant",
        "How long `daglo serve` took to answer (an event stream: until it ended).",
        Some(Unit::Seconds),
    ),
    Metric::new(
        WEBHOOK_ATTEMPTS,
        Kind::Counter,
        "type=job.finished|job.progress, result=delivered|failed",
        "Webhook delivery attempts `daglo serve` made (a failed attempt may be retried).",
        None,
    ),
    Metric::new(
        TENANT_JOBS,
        Kind::Counter,
        "tenant=a configured tenant's name, result=submitted|existing|failed|refused",
        "Job requests `daglo serve` took, by tenant: `submitted` (a new job at Daglo), `existing` (its key named a job already), `failed` (the submit failed), `refused` (`max_running` reached).",
        None,
    ),
    Metric::new(
        SHED,
        Kind::Counter,
        "kind=api|stream",
        "Requests `daglo serve` refused at once because their kind of traffic held its share of connections (`[limits]`).",
        None,
    ),
];

/// Registers the service's metrics with the installed recorder.
pub(crate) fn describe() {
    daglo::telemetry::describe_all(METRICS);
}

/// The service answered a request on `route` (a template of its router: a bounded set, never a
/// path) with `status` after `seconds`.
pub(crate) fn api_request(route: &str, tenant: &str, status: u16, seconds: f64) {
    let class = match status {
        200..=299 => "2xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "other",
    };
    counter!(API_REQUESTS, "route" => route.to_owned(), "tenant" => tenant.to_owned(), "class" => class)
        .increment(1);
    histogram!(API_SECONDS, "route" => route.to_owned(), "tenant" => tenant.to_owned()).record(seconds);
}

/// Every tenant's job counters at zero, so a dashboard sees each configured tenant from the
/// start (and only configured names ever appear).
pub(crate) fn tenants<'a>(names: impl Iterator<Item = &'a str>) {
    for name in names {
        for result in ["submitted", "existing", "failed", "refused"] {
            counter!(TENANT_JOBS, "tenant" => name.to_owned(), "result" => result).increment(0);
        }
    }
}

/// A job request of `tenant` ended `result` (`submitted`, `existing`, `failed`, `refused`).
pub(crate) fn tenant_job(tenant: &str, result: &'static str) {
    counter!(TENANT_JOBS, "tenant" => tenant.to_owned(), "result" => result).increment(1);
}

/// A request of `kind` (`api`, `stream`) was refused at its share.
pub(crate) fn shed(kind: &'static str) {
    counter!(SHED, "kind" => kind).increment(1);
}

/// The service tried to deliver a webhook event of `kind` (`job.finished`, `job.progress`).
pub(crate) fn webhook(kind: &str, delivered: bool) {
    let kind = if kind == "job.progress" {
        "job.progress"
    } else {
        "job.finished"
    };
    let result = if delivered { "delivered" } else { "failed" };
    counter!(WEBHOOK_ATTEMPTS, "type" => kind, "result" => result).increment(1);
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_metric_of_the_service_is_documented() {
        let docs =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/metrics.md")).unwrap();
        for metric in super::METRICS {
            assert!(
                docs.contains(&format!("`{}`", metric.name)),
                "{} is not in docs/metrics.md",
                metric.name
            );
        }
    }
}
