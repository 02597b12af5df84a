//! The library's metrics in Prometheus's text format: install the exporter as the process's
//! `metrics` recorder, then render or serve `/metrics`. Every metric, label and alert worth
//! setting is in `docs/metrics.md`.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let prometheus = daglo::metrics::Prometheus::install()?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9464").await?;
//! let server = prometheus.serve(listener)?; // GET /metrics
//! // … run jobs …
//! println!("{}", prometheus.render());
//! # server.shutdown().await;
//! # Ok(())
//! # }
//! ```

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
pub use metrics_exporter_prometheus::PrometheusRecorder;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::callback::{CallbackServer, ConnectionLimits};

/// Histogram buckets for times, in seconds: from a callback's milliseconds to a long job's hour.
const SECONDS: &[f64] = &[
    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

/// Histogram buckets for status requests per job.
const REQUESTS: &[f64] = &[1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0, 55.0, 89.0];

/// Why the exporter could not be installed.
#[derive(Debug, thiserror::Error)]
#[error("the Prometheus exporter could not be installed")]
pub struct MetricsError(#[source] Box<dyn std::error::Error + Send + Sync>);

/// The Prometheus exporter, installed as the process's metrics recorder. Cheap to clone.
#[derive(Clone)]
pub struct Prometheus {
    handle: PrometheusHandle,
}

impl std::fmt::Debug for Prometheus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prometheus").finish_non_exhaustive()
    }
}

impl Prometheus {
    /// Installs the exporter as the process's global recorder (histograms with buckets for
    /// seconds and request counts) and registers every metric's description. Fails when
    /// another recorder is installed already.
    pub fn install() -> Result<Self, MetricsError> {
        let handle = Self::builder()
            .install_recorder()
            .map_err(|e| MetricsError(Box::new(e)))?;
        crate::telemetry::describe();
        Ok(Self { handle })
    }

    /// The exporter's recorder, not installed, and the exporter that renders what it records:
    /// for an application that wraps the recorder (to tally some metrics itself, say) before
    /// installing it with `metrics::set_global_recorder`. Call
    /// [`telemetry::describe`](crate::telemetry::describe) once it is installed.
    pub fn build() -> (PrometheusRecorder, Self) {
        let recorder = Self::builder().build_recorder();
        let handle = recorder.handle();
        (recorder, Self { handle })
    }

    /// The builder [`install`](Prometheus::install) uses, for an application that adds its
    /// own settings or layers before installing.
    pub fn builder() -> PrometheusBuilder {
        PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS)
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(crate::telemetry::STATUS_REQUESTS_PER_JOB.to_owned()),
                    REQUESTS,
                )
            })
            .unwrap_or_else(|_| PrometheusBuilder::new())
    }

    /// Everything recorded so far, in Prometheus's text format.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// A `tower` service answering `GET /metrics` (and `HEAD`) with [`render`](Prometheus::render),
    /// to mount in an application's router.
    pub fn service(&self) -> MetricsService {
        MetricsService {
            prometheus: self.clone(),
        }
    }

    /// Serves `/metrics` on `listener`, with the callback receiver's connection protections.
    pub fn serve(&self, listener: tokio::net::TcpListener) -> std::io::Result<CallbackServer> {
        CallbackServer::serve(listener, self.service(), ConnectionLimits::default())
    }
}

/// Answers `GET /metrics` with the exporter's text; `404` elsewhere, `405` for other methods.
#[derive(Debug, Clone)]
pub struct MetricsService {
    prometheus: Prometheus,
}

impl<B> tower::Service<Request<B>> for MetricsService {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let answer = |status: StatusCode, kind: &'static str, body: Bytes| {
            let mut response = Response::new(Full::new(body));
            *response.status_mut() = status;
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, http::HeaderValue::from_static(kind));
            response
        };
        let response = match (request.method(), request.uri().path()) {
            (&Method::GET | &Method::HEAD, "/metrics") => answer(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                Bytes::from(self.prometheus.render()),
            ),
            (_, "/metrics") => answer(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain; charset=utf-8",
                Bytes::from_static(b"GET /metrics\n"),
            ),
            _ => answer(
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                Bytes::from_static(b"metrics are at /metrics\n"),
            ),
        };
        ready(Ok(response))
    }
}
