//! What a run cost, for people: the requests per endpoint, the `429`s, the callbacks received
//! and refused, and the time — one line at the end of every run. Counted by this program's
//! metrics recorder, which also feeds the Prometheus exporter when `--metrics-listen` asks.

use daglo::internal::lock;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use daglo::callback::CallbackServer;
use daglo::metrics::Prometheus;
use daglo::telemetry;
use metrics::{Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};

use crate::failure::Failure;

/// The counters the cost line reads, by name and labels.
#[derive(Debug, Default)]
struct Tally {
    counters: Mutex<HashMap<Key, Arc<AtomicU64>>>,
}

impl Tally {
    /// The sum of counter `name` over the labels `select` accepts.
    fn sum(&self, name: &str, select: impl Fn(&Key) -> bool) -> u64 {
        lock(&self.counters)
            .iter()
            .filter(|(key, _)| key.name() == name && select(key))
            .map(|(_, value)| value.load(Ordering::Relaxed))
            .sum()
    }
}

/// A counter counted here and, when there is one, by the exporter too.
#[derive(Debug)]
struct Tee {
    ours: Arc<AtomicU64>,
    theirs: Option<Counter>,
}

impl CounterFn for Tee {
    fn increment(&self, value: u64) {
        self.ours.fetch_add(value, Ordering::Relaxed);
        if let Some(theirs) = &self.theirs {
            theirs.increment(value);
        }
    }

    fn absolute(&self, value: u64) {
        self.ours.fetch_max(value, Ordering::Relaxed);
        if let Some(theirs) = &self.theirs {
            theirs.absolute(value);
        }
    }
}

/// The recorder: counters tallied, everything passed on to the exporter when there is one.
#[derive(Debug)]
struct Recording {
    tally: Arc<Tally>,
    exporter: Option<daglo::metrics::PrometheusRecorder>,
}

impl Recorder for Recording {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        if let Some(exporter) = &self.exporter {
            exporter.describe_counter(key, unit, description);
        }
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        if let Some(exporter) = &self.exporter {
            exporter.describe_gauge(key, unit, description);
        }
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        if let Some(exporter) = &self.exporter {
            exporter.describe_histogram(key, unit, description);
        }
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        let ours = lock(&self.tally.counters).entry(key.clone()).or_default().clone();
        let theirs = self.exporter.as_ref().map(|e| e.register_counter(key, metadata));
        Counter::from_arc(Arc::new(Tee { ours, theirs }))
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.exporter
            .as_ref()
            .map_or_else(Gauge::noop, |e| e.register_gauge(key, metadata))
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        self.exporter
            .as_ref()
            .map_or_else(Histogram::noop, |e| e.register_histogram(key, metadata))
    }
}

/// A run's cost, counted from its start.
pub(crate) struct Cost {
    tally: Arc<Tally>,
    started: Instant,
    /// The `/metrics` server, while the run lasts.
    _server: Option<CallbackServer>,
}

impl std::fmt::Debug for Cost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cost").finish_non_exhaustive()
    }
}

impl Cost {
    /// Starts counting; with `listen`, serves the metrics at `http://ADDR/metrics` too.
    pub(crate) async fn start(listen: Option<SocketAddr>) -> Result<Self, Failure> {
        let tally = Arc::new(Tally::default());
        let (exporter, prometheus) = match listen {
            Some(_) => {
                let (recorder, prometheus) = Prometheus::build();
                (Some(recorder), Some(prometheus))
            }
            None => (None, None),
        };
        let recording = Recording {
            tally: tally.clone(),
            exporter,
        };
        metrics::set_global_recorder(recording)
            .map_err(|e| Failure::usage(format!("cannot record metrics: {e}")))?;
        telemetry::describe();
        let server = match (listen, prometheus) {
            (Some(addr), Some(prometheus)) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| Failure::usage(format!("--metrics-listen {addr}: {e}")))?;
                let server = prometheus
                    .serve(listener)
                    .map_err(|e| Failure::usage(format!("--metrics-listen {addr}: {e}")))?;
                eprintln!("daglo: metrics at http://{}/metrics", server.local_addr());
                Some(server)
            }
            _ => None,
        };
        Ok(Self {
            tally,
            started: Instant::now(),
            _server: server,
        })
    }

    /// The run's cost in one line.
    pub(crate) fn line(&self) -> String {
        let label =
            |key: &Key, name: &str, value: &str| key.labels().any(|l| l.key() == name && l.value() == value);
        let requests = |endpoint: &str| {
            self.tally
                .sum(telemetry::REQUESTS, |k| label(k, "endpoint", endpoint))
        };
        let (submit, status, srt) = (requests("submit"), requests("status"), requests("srt"));
        let limited = self.tally.sum(telemetry::RATE_LIMITED, |_| true);
        let received = self.tally.sum(telemetry::CALLBACKS, |_| true);
        let refused = self.tally.sum(telemetry::CALLBACKS, |k| {
            [
                "bad_credential",
                "unknown_key",
                "too_large",
                "malformed",
                "unavailable",
            ]
            .iter()
            .any(|r| label(k, "result", r))
        });
        let total = submit + status + srt;
        let mut line = format!(
            "daglo: cost: {} (submit {submit}, status {status}, srt {srt}), {limited} answered 429",
            crate::terminal::plural(
                usize::try_from(total).unwrap_or(usize::MAX),
                "request",
                "requests"
            )
        );
        if received > 0 {
            line.push_str(&format!("; callbacks {received} received, {refused} refused"));
        }
        line.push_str(&format!("; {:.1} s", self.started.elapsed().as_secs_f64()));
        line
    }
}
