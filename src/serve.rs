//! `daglo serve`: the job table as an HTTP service any language can use — submit, look up,
//! follow (Server-Sent Events) and fetch transcripts, the Daglo callback receiver on the same
//! port, health, readiness and Prometheus metrics. Every key of its configuration is in
//! `docs/serve.md`.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use daglo::serve::{ServeConfig, Server};
//!
//! let mut config = ServeConfig::from_toml(&std::fs::read_to_string("daglo.toml")?)?;
//! config.apply_env(|name| std::env::var(name).ok())?;
//! let server = Server::start(config, std::env::var("DAGLO_API_TOKEN")?).await?;
//! println!("listening on {}", server.local_addr());
//! server.drain(std::time::Duration::from_secs(30)).await;
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::watch;

use crate::callback::{CallbackReceiver, CallbackServer, ConnectionLimits};
use crate::client::SrtAnswer;
use crate::journal::{Journal, SqliteJournal};
use crate::strategy::{CallbackSettings, HybridSettings};
use crate::{
    DirResults, Input, JobFilter, JobId, JobLog, JobOptions, JobSnapshot, JobState, Outcome, StrategyConfig,
    TranscribeError, Transcriber,
};

mod inbox;
mod page;
mod webhook;

pub use webhook::{JOB_FINISHED, JOB_PROGRESS, WebhookConfig, WebhookSecret};

/// The path under the public URL where Daglo's callbacks arrive.
pub const CALLBACK_PATH: &str = "/daglo";

/// Why the service could not be configured or started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The configuration is wrong: `key` names the setting.
    #[error("configuration `{key}`: {reason}")]
    Config {
        /// The setting (`listen`, `api_keys`, …; `DAGLO_*` for an environment variable).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The service could not start (the port, the data directory, the journal, Redis…).
    #[error("cannot start: {what}")]
    Start {
        /// What failed.
        what: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

fn config_error(key: &str, reason: impl Into<String>) -> ServeError {
    ServeError::Config {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

fn start_error(what: &str, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> ServeError {
    ServeError::Start {
        what: what.to_owned(),
        source: source.into(),
    }
}

/// A caller's API key. Its text never appears in `Debug`, logs or answers; the service keeps
/// only its SHA-256 digest.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct ApiKey(String);

impl ApiKey {
    /// A key.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// The service's configuration (`daglo.toml`; see `docs/serve.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ServeConfig {
    /// Where the API and Daglo's callbacks are served (default `0.0.0.0:8080`).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// How Daglo reaches this service; callbacks go to `<public_url>/daglo/…`. Needed by the
    /// `callback` and `hybrid` strategies.
    #[serde(default)]
    pub public_url: Option<String>,
    /// The Daglo API (default `https://apis.daglo.ai`; the emulator's URL in tests).
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The SQLite journal, the results and the callback key secret (default `./daglo-data`).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// The keys callers send as `Authorization: Bearer <key>`; at least one.
    #[serde(default)]
    pub api_keys: Vec<ApiKey>,
    /// `polling`, `callback` or `hybrid` (the default).
    #[serde(default = "default_strategy")]
    pub strategy: String,
    /// A Redis every replica shares: jobs (the journal), rate budgets and callbacks.
    #[serde(default)]
    pub redis_url: Option<String>,
    /// How long SIGTERM waits for requests in flight before the process exits (default 30 s).
    #[serde(default = "default_grace")]
    pub grace_secs: u64,
    /// The largest upload accepted (default Daglo's 2 GB); larger is `413` before anything is
    /// submitted.
    #[serde(default = "default_max_upload")]
    pub max_upload_bytes: u64,
    /// How many connections may wait to be accepted (default 1,024,
    /// [`DEFAULT_ACCEPT_BACKLOG`](crate::callback::DEFAULT_ACCEPT_BACKLOG)): a burst of
    /// callbacks is queued, not refused.
    #[serde(default = "default_backlog")]
    pub accept_backlog: u32,
    /// Signed webhooks to the application (`[webhook]`; none without it).
    #[serde(default)]
    pub webhook: Option<WebhookConfig>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 8080))
}
fn default_base_url() -> String {
    crate::client::DEFAULT_BASE_URL.to_owned()
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("daglo-data")
}
fn default_strategy() -> String {
    "hybrid".to_owned()
}
fn default_grace() -> u64 {
    30
}
fn default_backlog() -> u32 {
    crate::callback::DEFAULT_ACCEPT_BACKLOG
}
fn default_max_upload() -> u64 {
    daglo_core::MAX_UPLOAD_BYTES
}

impl ServeConfig {
    /// Reads a configuration from TOML text; an unknown key is an error naming it.
    pub fn from_toml(text: &str) -> Result<Self, ServeError> {
        toml::from_str(text).map_err(|e| config_error("daglo.toml", e.message().to_owned()))
    }

    /// Applies the `DAGLO_*` environment overrides `var` reports: `DAGLO_LISTEN`,
    /// `DAGLO_PUBLIC_URL`, `DAGLO_BASE_URL`, `DAGLO_DATA_DIR`, `DAGLO_API_KEYS` (comma-separated),
    /// `DAGLO_STRATEGY`, `DAGLO_REDIS_URL`, `DAGLO_GRACE_SECS`, `DAGLO_MAX_UPLOAD_BYTES`,
    /// `DAGLO_ACCEPT_BACKLOG`, `DAGLO_WEBHOOK_URL` and `DAGLO_WEBHOOK_SECRET` (with a `[webhook]`
    /// table).
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), ServeError> {
        if let Some(listen) = var("DAGLO_LISTEN") {
            self.listen = listen
                .parse()
                .map_err(|e| config_error("DAGLO_LISTEN", format!("{e}")))?;
        }
        if let Some(url) = var("DAGLO_PUBLIC_URL") {
            self.public_url = Some(url);
        }
        if let Some(url) = var("DAGLO_BASE_URL") {
            self.base_url = url;
        }
        if let Some(dir) = var("DAGLO_DATA_DIR") {
            self.data_dir = PathBuf::from(dir);
        }
        if let Some(keys) = var("DAGLO_API_KEYS") {
            self.api_keys = keys
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(ApiKey::new)
                .collect();
        }
        if let Some(strategy) = var("DAGLO_STRATEGY") {
            self.strategy = strategy;
        }
        if let Some(url) = var("DAGLO_REDIS_URL") {
            self.redis_url = Some(url).filter(|u| !u.is_empty());
        }
        if let Some(secs) = var("DAGLO_GRACE_SECS") {
            self.grace_secs = secs
                .parse()
                .map_err(|e| config_error("DAGLO_GRACE_SECS", format!("{e}")))?;
        }
        if let Some(backlog) = var("DAGLO_ACCEPT_BACKLOG") {
            self.accept_backlog = backlog
                .parse()
                .map_err(|e| config_error("DAGLO_ACCEPT_BACKLOG", format!("{e}")))?;
        }
        if let Some(url) = var("DAGLO_WEBHOOK_URL") {
            match &mut self.webhook {
                Some(webhook) => webhook.url = url,
                None => {
                    return Err(config_error(
                        "DAGLO_WEBHOOK_URL",
                        "set only with a `[webhook]` table (its secret belongs in the file or DAGLO_WEBHOOK_SECRET)",
                    ));
                }
            }
        }
        if let Some(secret) = var("DAGLO_WEBHOOK_SECRET") {
            let secret =
                WebhookSecret::parse(&secret).map_err(|e| config_error("DAGLO_WEBHOOK_SECRET", e))?;
            match &mut self.webhook {
                Some(webhook) => webhook.secret = Some(secret),
                None => {
                    return Err(config_error(
                        "DAGLO_WEBHOOK_SECRET",
                        "set only with a `[webhook]` table that names the url",
                    ));
                }
            }
        }
        if let Some(bytes) = var("DAGLO_MAX_UPLOAD_BYTES") {
            self.max_upload_bytes = bytes
                .parse()
                .map_err(|e| config_error("DAGLO_MAX_UPLOAD_BYTES", format!("{e}")))?;
        }
        Ok(())
    }

    /// The strategy these settings name, its callbacks under [`public_url`](Self::public_url).
    fn strategy_config(&self) -> Result<StrategyConfig, ServeError> {
        let callback = || -> Result<CallbackSettings, ServeError> {
            let public = self.public_url.as_deref().ok_or_else(|| {
                config_error(
                    "public_url",
                    format!(
                        "the `{}` strategy needs it: how Daglo reaches this service",
                        self.strategy
                    ),
                )
            })?;
            let url = url::Url::parse(public).map_err(|e| config_error("public_url", e.to_string()))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(config_error("public_url", "must be an http(s) URL"));
            }
            let mut settings = CallbackSettings::new(self.listen, None);
            settings.listen = None;
            settings.public_url = Some(format!("{}{CALLBACK_PATH}", public.trim_end_matches('/')));
            Ok(settings)
        };
        match self.strategy.as_str() {
            "polling" => Ok(StrategyConfig::polling()),
            "callback" => Ok(StrategyConfig::Callback(callback()?)),
            "hybrid" => Ok(StrategyConfig::Hybrid(HybridSettings::new(callback()?))),
            other => Err(config_error(
                "strategy",
                format!(
                    "`{}` is not one of polling, callback, hybrid",
                    other.escape_debug()
                ),
            )),
        }
    }
}

/// The keys, as SHA-256 digests compared in constant time.
#[derive(Clone)]
struct Keys(Arc<Vec<[u8; 32]>>);

impl Keys {
    fn new(keys: &[ApiKey]) -> Self {
        Self(Arc::new(keys.iter().map(|k| digest(k.0.as_bytes())).collect()))
    }

    /// Whether `headers` carry `Authorization: Bearer <one of the keys>`.
    fn admit(&self, headers: &HeaderMap) -> bool {
        let Some(presented) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        else {
            return false;
        };
        let presented = digest(presented.trim().as_bytes());
        // Every key compared, whatever matched: the time says nothing about which.
        self.0
            .iter()
            .fold(subtle::Choice::from(0), |found, key| {
                found | subtle::ConstantTimeEq::ct_eq(key.as_slice(), presented.as_slice())
            })
            .into()
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0_u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    out
}

/// What the handlers share.
#[derive(Clone)]
struct App {
    transcriber: Transcriber,
    journal: Arc<dyn Journal>,
    /// The callbacks received and the webhook deliveries, per job.
    log: Arc<dyn JobLog>,
    /// The callback receiver, for replays (none for polling).
    receiver: Option<CallbackReceiver>,
    webhooks: Option<webhook::Webhooks>,
    keys: Keys,
    uploads: PathBuf,
    max_upload_bytes: u64,
    draining: watch::Receiver<bool>,
    metrics: crate::metrics::Prometheus,
}

/// The metrics exporter, installed once per process (a process may run several servers).
fn exporter() -> Result<crate::metrics::Prometheus, ServeError> {
    static INSTALLED: std::sync::OnceLock<crate::metrics::Prometheus> = std::sync::OnceLock::new();
    if let Some(installed) = INSTALLED.get() {
        return Ok(installed.clone());
    }
    let prometheus =
        crate::metrics::Prometheus::install().map_err(|e| start_error("the metrics exporter", e))?;
    Ok(INSTALLED.get_or_init(|| prometheus).clone())
}

/// A running service.
#[derive(Debug)]
pub struct Server {
    local_addr: SocketAddr,
    http: CallbackServer,
    transcriber: Transcriber,
    draining: watch::Sender<bool>,
    /// With replicas: the task that keeps this one alive and takes over gone replicas' jobs.
    _takeover: Option<AbortOnDrop>,
}

/// Aborts its task when dropped.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How often a replica says it is alive, and looks for gone replicas' jobs.
const HEARTBEAT: Duration = Duration::from_secs(2);
/// How long a replica counts as alive after its last heartbeat (and a job hold lasts).
const ALIVE: Duration = Duration::from_secs(6);

/// A replica's loop: its heartbeat, and every running job of a gone replica held (by one
/// replica only) and followed — resumed by its rid, never submitted again.
async fn take_over(
    replicas: crate::redis::Replicas,
    transcriber: Transcriber,
    journal: Arc<dyn Journal>,
    webhooks: Option<webhook::Webhooks>,
) {
    let me = transcriber.owner();
    let mut held: std::collections::HashSet<JobId> = std::collections::HashSet::new();
    loop {
        if let Err(e) = replicas.heartbeat(&me, ALIVE).await {
            tracing::warn!(error = %daglo_core::error_chain(&e), "replica heartbeat failed");
        }
        match journal.entries().await {
            Ok(entries) => {
                for entry in entries {
                    if !matches!(entry.state, crate::journal::EntryState::Submitted { .. }) {
                        held.remove(&entry.intent.job);
                        continue;
                    }
                    let job = entry.intent.job.clone();
                    if held.contains(&job) {
                        // Still ours: keep the hold.
                        let _ = replicas.hold(job.as_str(), &me, ALIVE).await;
                        continue;
                    }
                    let owner = entry.intent.owner.clone().unwrap_or_default();
                    if owner == me {
                        continue;
                    }
                    let gone = match replicas.is_alive(&owner).await {
                        Ok(alive) => !alive,
                        Err(_) => false,
                    };
                    if gone && matches!(replicas.hold(job.as_str(), &me, ALIVE).await, Ok(true)) {
                        match transcriber.adopt_job(&job).await {
                            Ok(_) => {
                                tracing::info!(job = %job, from = %owner, "took over a gone replica's job");
                                if let Some(webhooks) = &webhooks {
                                    webhooks.follow(job.clone()).await;
                                }
                                held.insert(job);
                            }
                            Err(e) => {
                                tracing::warn!(job = %job, error = %daglo_core::error_chain(&e), "could not take over a job")
                            }
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %daglo_core::error_chain(&e), "could not read the journal for gone replicas' jobs")
            }
        }
        // Webhooks a gone replica had not delivered yet (its job may have ended before it
        // died): delivered by the one replica that holds them.
        if let Some(webhooks) = &webhooks {
            for job in webhooks.pending().await {
                if webhooks.follows(&job) {
                    continue;
                }
                let owner = match journal.by_job(&job).await {
                    Ok(Some(entry)) => entry.intent.owner.unwrap_or_default(),
                    _ => continue,
                };
                if owner == me || !matches!(replicas.is_alive(&owner).await, Ok(false)) {
                    continue;
                }
                let hold = format!("webhook-{job}");
                if matches!(replicas.hold(&hold, &me, ALIVE).await, Ok(true)) {
                    tracing::info!(job = %job, from = %owner, "took over a gone replica's webhook");
                    webhooks.follow(job).await;
                }
            }
        }
        tokio::time::sleep(HEARTBEAT).await;
    }
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").finish_non_exhaustive()
    }
}

impl Server {
    /// Starts the service: checks the configuration, opens the journal and results in
    /// `data_dir` (or the journal on Redis), takes up the jobs the journal holds
    /// ([`Transcriber::recover`]), and serves on `listen`. `token` is the Daglo API token.
    pub async fn start(config: ServeConfig, token: String) -> Result<Self, ServeError> {
        if config.api_keys.is_empty() {
            return Err(config_error(
                "api_keys",
                "give at least one key callers send as Bearer",
            ));
        }
        if config.api_keys.iter().any(|k| k.0.len() < 16) {
            return Err(config_error("api_keys", "a key must be at least 16 characters"));
        }
        let strategy = config.strategy_config()?;
        let metrics = exporter()?;
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| start_error(&format!("the data directory {}", config.data_dir.display()), e))?;
        let uploads = config.data_dir.join("uploads");
        std::fs::create_dir_all(&uploads).map_err(|e| start_error("the uploads directory", e))?;
        let mut builder = crate::Client::builder()
            .token(token)
            .base_url(config.base_url.clone());
        // With Redis, the replicas share the journal (and its key secret), the rate budgets and
        // the callback registry: a callback that lands on any replica reaches its job.
        let mut replicas = None;
        let mut registry: Option<Arc<dyn crate::callback::JobRegistry>> = None;
        // The job log (inbox, webhook deliveries) lives with the journal: shared by replicas.
        let (journal, log): (Arc<dyn Journal>, Arc<dyn JobLog>) = match &config.redis_url {
            Some(url) => {
                let store = crate::redis::RedisStore::connect(url)
                    .await
                    .map_err(|e| start_error("Redis", e))?;
                builder = crate::redis::SharedBudgets::new(&store, "daglo-serve").apply(builder);
                registry = Some(Arc::new(crate::redis::RedisRegistry::new(store.clone()).await));
                replicas = Some(crate::redis::Replicas::new(store.clone(), "daglo-serve"));
                let journal = Arc::new(crate::redis::RedisJournal::new(store, "daglo-serve"));
                (journal.clone(), journal)
            }
            None => {
                let journal = Arc::new(
                    SqliteJournal::open(config.data_dir.join("journal.sqlite"))
                        .map_err(|e| start_error("the journal", e))?,
                );
                (journal.clone(), journal)
            }
        };
        if let Some(webhook) = &config.webhook {
            webhook.validate()?;
        }
        let client = builder
            .build()
            .map_err(|e| config_error("base_url", daglo_core::error_chain(&e)))?;
        let (transcriber, receiver) = match registry {
            Some(registry) => {
                Transcriber::from_config_mounted_shared(client, &strategy, journal.clone(), registry).await
            }
            None => Transcriber::from_config_mounted_with_journal(client, &strategy, journal.clone()).await,
        }
        .map_err(|e| start_error("the strategy", e))?;
        let results =
            DirResults::open(config.data_dir.join("results")).map_err(|e| start_error("the results", e))?;
        let transcriber = transcriber.with_results(Arc::new(results));
        // Every callback written down before it is answered.
        let receiver = receiver.map(|receiver| {
            receiver.with_inbox(
                Arc::new(inbox::Inbox::new(log.clone())),
                crate::callback::DEFAULT_INBOX_BODY_BYTES,
            )
        });
        let webhooks = match &config.webhook {
            Some(webhook) => Some(webhook::Webhooks::new(
                webhook.clone(),
                log.clone(),
                transcriber.clone(),
            )?),
            None => None,
        };
        let (draining, watching) = watch::channel(false);
        let app_journal = journal.clone();
        let app = App {
            transcriber: transcriber.clone(),
            journal,
            log,
            receiver: receiver.clone(),
            webhooks: webhooks.clone(),
            keys: Keys::new(&config.api_keys),
            uploads,
            max_upload_bytes: config.max_upload_bytes,
            draining: watching,
            metrics,
        };
        let mut router = Router::new()
            .route("/v1/jobs", post(create).get(list))
            .route("/v1/jobs/{id}", get(job))
            .route("/v1/jobs/{id}/transcript", get(transcript))
            .route("/v1/jobs/{id}/events", get(events))
            .route("/v1/jobs/{id}/callbacks", get(inbox::list))
            .route("/v1/jobs/{id}/callbacks/replay", post(inbox::replay))
            .route("/v1/jobs/{id}/webhooks", get(webhook_deliveries))
            .route("/v1/jobs/{id}/webhook/retry", post(webhook_retry))
            .route("/", get(page::index))
            .route("/assets/{file}", get(page::asset))
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics_text))
            .fallback(|| async { problem(StatusCode::NOT_FOUND, "no such route") })
            .with_state(app);
        if let Some(receiver) = receiver {
            router = router.route_service(&format!("{CALLBACK_PATH}/{{key}}"), receiver);
        }
        let router = router.layer(axum::middleware::from_fn(counted));
        let listener = crate::callback::bind_with_backlog(config.listen, config.accept_backlog)
            .map_err(|e| start_error(&format!("listen {}", config.listen), e))?;
        let local_addr = listener.local_addr().map_err(|e| start_error("listen", e))?;
        let http = CallbackServer::serve(listener, router, ConnectionLimits::default())
            .map_err(|e| start_error("serve", e))?;
        let takeover = match replicas {
            // Replicas: each takes up only the running jobs of replicas that are gone.
            Some(replicas) => Some(AbortOnDrop(tokio::spawn(take_over(
                replicas,
                transcriber.clone(),
                app_journal.clone(),
                webhooks.clone(),
            )))),
            // Alone: every running job in the journal is this service's.
            None => {
                match transcriber.recover().await {
                    Ok(report) => tracing::info!(
                        resumed = report.resumed.len(),
                        uncertain = report.uncertain.len(),
                        "jobs taken up from the journal"
                    ),
                    Err(e) => {
                        tracing::warn!(error = %daglo_core::error_chain(&e), "could not take up the journal's jobs");
                    }
                }
                // And every webhook not yet delivered: this service's alone.
                if let Some(webhooks) = &webhooks {
                    webhooks.resume().await;
                }
                None
            }
        };
        tracing::info!(%local_addr, strategy = %config.strategy, "daglo serve listening");
        Ok(Self {
            local_addr,
            http,
            transcriber,
            draining,
            _takeover: takeover,
        })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The transcriber behind the API.
    pub fn transcriber(&self) -> &Transcriber {
        &self.transcriber
    }

    /// Drains: readiness off at once, no new connections, requests and callbacks in flight
    /// finish (within `grace`); the jobs still running are left to the journal, which the next
    /// start takes up.
    pub async fn drain(self, grace: Duration) {
        self.draining.send_replace(true);
        let _ = tokio::time::timeout(grace, self.http.shutdown()).await;
        self.transcriber.shutdown().await;
    }
}

/// Counts every answer by its route template (bounded: never the path itself) and status.
async fn counted(request: Request, next: axum::middleware::Next) -> Response {
    let route = match request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(axum::extract::MatchedPath::as_str)
    {
        Some("/v1/jobs") => "/v1/jobs",
        Some("/v1/jobs/{id}") => "/v1/jobs/{id}",
        Some("/v1/jobs/{id}/transcript") => "/v1/jobs/{id}/transcript",
        Some("/v1/jobs/{id}/events") => "/v1/jobs/{id}/events",
        Some("/v1/jobs/{id}/callbacks") => "/v1/jobs/{id}/callbacks",
        Some("/v1/jobs/{id}/callbacks/replay") => "/v1/jobs/{id}/callbacks/replay",
        Some("/v1/jobs/{id}/webhooks") => "/v1/jobs/{id}/webhooks",
        Some("/v1/jobs/{id}/webhook/retry") => "/v1/jobs/{id}/webhook/retry",
        Some("/") => "/",
        Some("/assets/{file}") => "/assets/{file}",
        Some("/healthz") => "/healthz",
        Some("/readyz") => "/readyz",
        Some("/metrics") => "/metrics",
        Some(path) if path.starts_with(CALLBACK_PATH) => "/daglo/{key}",
        _ => "other",
    };
    let started = std::time::Instant::now();
    let answer = next.run(request).await;
    daglo_core::telemetry::api_request(route, answer.status().as_u16(), started.elapsed().as_secs_f64());
    answer
}

fn json(status: StatusCode, value: &impl Serialize) -> Response {
    let body = serde_json::to_string(value).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn problem(status: StatusCode, message: &str) -> Response {
    json(status, &serde_json::json!({ "error": message }))
}

fn unauthorized() -> Response {
    let mut answer = problem(StatusCode::UNAUTHORIZED, "send Authorization: Bearer <api key>");
    answer.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    answer
}

/// A failed start, as an answer: what went wrong, and whether a job may exist.
fn failed_start(error: &TranscribeError) -> Response {
    let message = daglo_core::error_chain(error);
    match error {
        TranscribeError::Invalid(_)
        | TranscribeError::Prepare(_)
        | TranscribeError::Submit(daglo_client::Error::Invalid(_) | daglo_client::Error::File { .. }) => {
            problem(StatusCode::UNPROCESSABLE_ENTITY, &message)
        }
        _ if error.may_have_created_job() => json(
            StatusCode::BAD_GATEWAY,
            &serde_json::json!({ "error": message, "may_have_created_job": true }),
        ),
        _ => json(
            StatusCode::BAD_GATEWAY,
            &serde_json::json!({ "error": message, "may_have_created_job": false }),
        ),
    }
}

/// A job request's fields, as JSON or as multipart parts.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobRequest {
    url: Option<String>,
    key: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    options: Option<JobOptions>,
}

impl JobRequest {
    fn into_input(self, source: Input) -> (Input, Option<JobOptions>) {
        let mut input = source;
        if let Some(key) = self.key {
            input = input.key(key);
        }
        for (name, value) in self.labels {
            input = input.label(name, value);
        }
        (input, self.options)
    }
}

async fn create(State(app): State<App>, request: Request) -> Response {
    if !app.keys.admit(request.headers()) {
        return unauthorized();
    }
    let kind = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mime = kind.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let (input, options, spooled) = match mime.as_str() {
        "application/json" => {
            let Ok(bytes) = axum::body::to_bytes(request.into_body(), 1 << 20).await else {
                return problem(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "a JSON job request is at most 1 MiB",
                );
            };
            let fields: JobRequest = match serde_json::from_slice(&bytes) {
                Ok(fields) => fields,
                Err(e) => return problem(StatusCode::UNPROCESSABLE_ENTITY, &format!("the job request: {e}")),
            };
            let Some(url) = fields.url.clone() else {
                return problem(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "`url` is required (or send multipart with a `file`)",
                );
            };
            let (input, options) = fields.into_input(Input::url(url));
            (input, options, None)
        }
        "multipart/form-data" => match multipart(&app, &kind, request.into_body()).await {
            Ok(parts) => parts,
            Err(answer) => return answer,
        },
        _ => {
            return problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send application/json or multipart/form-data",
            );
        }
    };
    if let Some(options) = &options
        && let Err(e) = options.validate()
    {
        return problem(StatusCode::UNPROCESSABLE_ENTITY, &daglo_core::error_chain(&e));
    }
    let started = app.transcriber.start(input, &options.unwrap_or_default()).await;
    if let Some(path) = spooled {
        // The upload went out with the submit (or was not needed): the copy goes.
        let _ = tokio::fs::remove_file(&path).await;
        if let Some(dir) = path.parent() {
            let _ = tokio::fs::remove_dir(dir).await;
        }
    }
    if let (Ok(job), Some(webhooks)) = (&started, &app.webhooks) {
        // Its events go to the application (once per job, whoever asked first).
        webhooks.follow(job.id()).await;
    }
    match started {
        Ok(job) if job.is_new() => json(StatusCode::CREATED, job.snapshot()),
        Ok(job) => json(StatusCode::OK, job.snapshot()),
        Err(e) => failed_start(&e),
    }
}

/// Reads a multipart job request: the `file` part written to the uploads directory as it
/// arrives (never held whole; over the limit is `413` before anything is submitted), the
/// other fields as parts.
async fn multipart(
    app: &App,
    content_type: &str,
    body: Body,
) -> Result<(Input, Option<JobOptions>, Option<PathBuf>), Response> {
    let boundary = multer::parse_boundary(content_type)
        .map_err(|e| problem(StatusCode::UNPROCESSABLE_ENTITY, &format!("multipart: {e}")))?;
    let mut parts = multer::Multipart::new(body.into_data_stream(), boundary);
    let mut fields = JobRequest::default();
    let mut file: Option<(String, PathBuf, u64)> = None;
    let bad = |what: String| problem(StatusCode::UNPROCESSABLE_ENTITY, &what);
    loop {
        let part = match parts.next_field().await {
            Ok(Some(part)) => part,
            Ok(None) => break,
            Err(e) => return Err(bad(format!("multipart: {e}"))),
        };
        let name = part.name().unwrap_or("").to_owned();
        match name.as_str() {
            "file" => {
                let original = part
                    .file_name()
                    .and_then(|n| n.rsplit(['/', '\\']).next())
                    .unwrap_or("upload")
                    .to_owned();
                daglo_core::check_media_file_name(&original).map_err(|e| bad(daglo_core::error_chain(&e)))?;
                let dir = app.uploads.join(JobId::random().as_str());
                tokio::fs::create_dir_all(&dir)
                    .await
                    .map_err(|e| problem(StatusCode::INTERNAL_SERVER_ERROR, &format!("uploads: {e}")))?;
                let path = dir.join(&original);
                let written = spool(part, &path, app.max_upload_bytes).await;
                match written {
                    Ok(length) => file = Some((original, path, length)),
                    Err(answer) => {
                        let _ = tokio::fs::remove_file(&path).await;
                        let _ = tokio::fs::remove_dir(&dir).await;
                        return Err(answer);
                    }
                }
            }
            "url" | "key" | "labels" | "options" => {
                let text = part
                    .text()
                    .await
                    .map_err(|e| bad(format!("multipart `{name}`: {e}")))?;
                match name.as_str() {
                    "url" => fields.url = Some(text),
                    "key" => fields.key = Some(text),
                    "labels" => {
                        fields.labels =
                            serde_json::from_str(&text).map_err(|e| bad(format!("`labels`: {e}")))?;
                    }
                    _ => {
                        fields.options =
                            Some(serde_json::from_str(&text).map_err(|e| bad(format!("`options`: {e}")))?);
                    }
                }
            }
            other => return Err(bad(format!("unknown part `{}`", other.escape_debug()))),
        }
    }
    match (file, fields.url.take()) {
        (Some((name, path, length)), None) => {
            let opened = tokio::fs::File::open(&path)
                .await
                .map_err(|e| problem(StatusCode::INTERNAL_SERVER_ERROR, &format!("uploads: {e}")))?;
            let (input, options) = fields.into_input(Input::stream(name, length, opened));
            Ok((input, options, Some(path)))
        }
        (None, Some(url)) => {
            let (input, options) = fields.into_input(Input::url(url));
            Ok((input, options, None))
        }
        (Some((_, path, _)), Some(_)) => {
            let _ = tokio::fs::remove_file(&path).await;
            Err(bad("send a `file` or a `url`, not both".to_owned()))
        }
        (None, None) => Err(bad("a `file` part or a `url` is required".to_owned())),
    }
}

/// How much of a refused upload is read (and dropped) before the `413`, so the caller gets the
/// answer rather than a connection closed mid-upload.
const DRAIN_AFTER_REFUSAL: u64 = 64 << 20;

/// Writes a part to `path` as it arrives; `413` past `max` bytes.
async fn spool(mut part: multer::Field<'_>, path: &std::path::Path, max: u64) -> Result<u64, Response> {
    let internal = |e: std::io::Error| problem(StatusCode::INTERNAL_SERVER_ERROR, &format!("uploads: {e}"));
    let mut out = tokio::fs::File::create(path).await.map_err(internal)?;
    let mut length = 0_u64;
    loop {
        match part.chunk().await {
            Ok(Some(chunk)) => {
                length += chunk.len() as u64;
                if length > max {
                    // Read (and drop) what the caller is still sending, up to a bound, so the
                    // answer reaches it instead of a broken pipe.
                    let mut drained = 0_u64;
                    while drained < DRAIN_AFTER_REFUSAL {
                        match part.chunk().await {
                            Ok(Some(more)) => drained += more.len() as u64,
                            _ => break,
                        }
                    }
                    return Err(problem(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        &format!("the file is larger than {max} bytes; nothing was submitted"),
                    ));
                }
                out.write_all(&chunk).await.map_err(internal)?;
            }
            Ok(None) => break,
            Err(e) => {
                return Err(problem(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &format!("multipart `file`: {e}"),
                ));
            }
        }
    }
    out.sync_all().await.map_err(internal)?;
    if length == 0 {
        return Err(problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the `file` part is empty",
        ));
    }
    Ok(length)
}

/// The job `id` names, or the answer saying why not.
async fn found(app: &App, headers: &HeaderMap, id: &str) -> Result<JobSnapshot, Response> {
    if !app.keys.admit(headers) {
        return Err(unauthorized());
    }
    let id: JobId = id
        .parse()
        .map_err(|_| problem(StatusCode::NOT_FOUND, "no such job"))?;
    match app.transcriber.job(&id).await {
        Ok(Some(job)) => Ok(job),
        Ok(None) => Err(problem(StatusCode::NOT_FOUND, "no such job")),
        Err(e) => Err(problem(
            StatusCode::SERVICE_UNAVAILABLE,
            &daglo_core::error_chain(&e),
        )),
    }
}

async fn job(State(app): State<App>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let job = match found(&app, &headers, &id).await {
        Ok(job) => job,
        Err(answer) => return answer,
    };
    let Some(webhooks) = &app.webhooks else {
        return json(StatusCode::OK, &job);
    };
    // With webhooks, the job lists its deliveries (as `GET …/webhooks` does).
    let mut value = serde_json::to_value(&job).unwrap_or_default();
    if let Ok(attempts) = webhooks.attempts(&job.id).await {
        value["webhook_deliveries"] = serde_json::to_value(webhook::deliveries(attempts)).unwrap_or_default();
    }
    json(StatusCode::OK, &value)
}

/// `?format=` of a transcript.
#[derive(Debug, Deserialize)]
struct Format {
    format: Option<String>,
}

async fn transcript(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(format): Query<Format>,
    headers: HeaderMap,
) -> Response {
    let job = match found(&app, &headers, &id).await {
        Ok(job) => job,
        Err(answer) => return answer,
    };
    if !matches!(job.state, JobState::Finished | JobState::Failed) {
        return problem(
            StatusCode::CONFLICT,
            &format!("the job is {}; no transcript yet", job.state),
        );
    }
    let text = |kind: &'static str, body: String| {
        (StatusCode::OK, [(header::CONTENT_TYPE, kind)], body).into_response()
    };
    // The result as kept here — or, for a job another replica finished (its result is in that
    // replica's data directory), as Daglo still has it: one status request, nothing billed.
    let result = match app.transcriber.result(&job.id).await {
        Ok(Some(outcome)) => Ok(Some(outcome)),
        Ok(None) => match &job.rid {
            Some(rid) => match app.transcriber.client().status(rid).await {
                Ok(answer) => Ok(answer.outcome(rid)),
                Err(e) => Err(problem(StatusCode::BAD_GATEWAY, &daglo_core::error_chain(&e))),
            },
            None => Ok(None),
        },
        Err(e) => Err(problem(
            StatusCode::SERVICE_UNAVAILABLE,
            &daglo_core::error_chain(&e),
        )),
    };
    let format = format.format.as_deref().unwrap_or("text");
    let result = if matches!(format, "text" | "txt" | "json") {
        match result {
            Ok(Some(outcome)) => Some(outcome),
            Ok(None) => return problem(StatusCode::NOT_FOUND, "the result is not known here or at Daglo"),
            Err(answer) => return answer,
        }
    } else {
        None
    };
    match format {
        "text" | "txt" => text(
            "text/plain; charset=utf-8",
            result.and_then(|o| o.transcript()).unwrap_or_default(),
        ),
        "json" => match result {
            Some(Outcome::Transcript { body, .. }) => json(StatusCode::OK, body.as_ref()),
            Some(Outcome::Failed { status, message, .. }) => json(
                StatusCode::OK,
                &serde_json::json!({"status": status.as_str(), "message": message}),
            ),
            _ => json(
                StatusCode::OK,
                &serde_json::json!({"status": "transcribed", "sttResults": []}),
            ),
        },
        "srt" => match app.transcriber.srt(&job.id).await {
            Ok(SrtAnswer::Ready(srt)) => text("application/x-subrip; charset=utf-8", srt),
            Ok(SrtAnswer::Empty) => text("application/x-subrip; charset=utf-8", String::new()),
            Ok(_) => problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "the subtitles are not ready yet; ask again",
            ),
            Err(e) => problem(StatusCode::BAD_GATEWAY, &daglo_core::error_chain(&e)),
        },
        other => problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("format `{}` is not one of text, json, srt", other.escape_debug()),
        ),
    }
}

async fn events(State(app): State<App>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let job = match found(&app, &headers, &id).await {
        Ok(job) => job,
        Err(answer) => return answer,
    };
    // Server-Sent Events: `event: <name>` and `data: <json>` per event, ending after the outcome.
    let stream = app
        .transcriber
        .events(&job.id)
        .map(|event| Ok::<_, Infallible>(event.to_sse()));
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// `GET /v1/jobs`'s query.
#[derive(Debug, Deserialize)]
struct ListQuery {
    state: Option<String>,
    label: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// A page of jobs, newest first.
#[derive(Debug, Serialize)]
struct Page {
    jobs: Vec<JobSnapshot>,
    /// Pass as `cursor` for the next page; `null` on the last.
    next_cursor: Option<String>,
}

/// Jobs per page unless `limit` says otherwise, and at most.
const PAGE: usize = 50;
const MAX_PAGE: usize = 500;

async fn list(State(app): State<App>, Query(query): Query<ListQuery>, headers: HeaderMap) -> Response {
    if !app.keys.admit(&headers) {
        return unauthorized();
    }
    let mut filter = JobFilter::default();
    if let Some(state) = &query.state {
        for state in state.split(',') {
            match state.parse::<JobState>() {
                Ok(state) => filter = filter.state(state),
                Err(e) => return problem(StatusCode::UNPROCESSABLE_ENTITY, &daglo_core::error_chain(&e)),
            }
        }
    }
    if let Some(label) = &query.label {
        let Some((name, value)) = label.split_once(':') else {
            return problem(StatusCode::UNPROCESSABLE_ENTITY, "`label` is name:value");
        };
        filter = filter.label(name, value);
    }
    let limit = query.limit.unwrap_or(PAGE).clamp(1, MAX_PAGE);
    let all = match app.transcriber.jobs(filter).await {
        Ok(all) => all,
        Err(e) => return problem(StatusCode::SERVICE_UNAVAILABLE, &daglo_core::error_chain(&e)),
    };
    let start = match &query.cursor {
        Some(cursor) => match all.iter().position(|j| j.id.as_str() == cursor) {
            Some(at) => at + 1,
            None => {
                return problem(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "`cursor` names no job of this list",
                );
            }
        },
        None => 0,
    };
    let jobs: Vec<JobSnapshot> = all.iter().skip(start).take(limit).cloned().collect();
    let next_cursor = (start + jobs.len() < all.len())
        .then(|| jobs.last().map(|j| j.id.to_string()))
        .flatten();
    json(StatusCode::OK, &Page { jobs, next_cursor })
}

async fn healthz() -> Response {
    json(StatusCode::OK, &serde_json::json!({ "status": "alive" }))
}

/// Ready: not draining, and the journal answers.
async fn readyz(State(app): State<App>) -> Response {
    if *app.draining.borrow() {
        return problem(StatusCode::SERVICE_UNAVAILABLE, "draining");
    }
    match app.journal.by_key("daglo-readyz-probe").await {
        Ok(_) => json(StatusCode::OK, &serde_json::json!({ "status": "ready" })),
        Err(e) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("the journal: {}", daglo_core::error_chain(&e)),
        ),
    }
}

async fn metrics_text(State(app): State<App>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        app.metrics.render(),
    )
        .into_response()
}

async fn webhook_deliveries(State(app): State<App>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let job = match found(&app, &headers, &id).await {
        Ok(job) => job,
        Err(answer) => return answer,
    };
    let Some(webhooks) = &app.webhooks else {
        return json(
            StatusCode::OK,
            &serde_json::json!({ "configured": false, "deliveries": [] }),
        );
    };
    match webhooks.attempts(&job.id).await {
        Ok(attempts) => json(
            StatusCode::OK,
            &serde_json::json!({ "configured": true, "deliveries": webhook::deliveries(attempts) }),
        ),
        Err(e) => problem(StatusCode::SERVICE_UNAVAILABLE, &daglo_core::error_chain(&e)),
    }
}

/// `POST /v1/jobs/{id}/webhook/retry`: the job's `job.finished` delivered again (after a
/// delivery that failed, or to send it once more — receivers dedupe by `webhook-id`).
async fn webhook_retry(State(app): State<App>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let job = match found(&app, &headers, &id).await {
        Ok(job) => job,
        Err(answer) => return answer,
    };
    let Some(webhooks) = &app.webhooks else {
        return problem(
            StatusCode::CONFLICT,
            "no webhook is configured (`[webhook]` in daglo.toml)",
        );
    };
    if !job.state.is_ended() && job.state != JobState::GaveUp {
        return problem(
            StatusCode::CONFLICT,
            &format!("the job is {}; its end is delivered when it ends", job.state),
        );
    }
    let id = job.id.clone();
    webhooks.retry(job);
    json(
        StatusCode::ACCEPTED,
        &serde_json::json!({ "job": id, "event_id": format!("msg_{id}_finished"), "status": "delivering" }),
    )
}
