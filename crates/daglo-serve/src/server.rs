//! The running service: [`Server::start`] checks the configuration, opens the stores, takes up
//! the journal's jobs and serves; [`Server::drain`] stops it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::response::Response;
use daglo::callback::{CallbackReceiver, CallbackServer, ConnectionLimits, JobRegistry};
use daglo::jobs::DirResults;
use daglo::journal::{JobLog, Journal, SqliteJournal};
use daglo::{Client, Transcriber};
use tokio::sync::watch;

use crate::config::Config;
use crate::error::Error;
use crate::fair::FairBudget;
use crate::limits::Shares;
use crate::readiness::Readiness;
use crate::tenants::Tenants;
use crate::{auth, inbox, routes, takeover, webhook};

/// What the handlers share.
#[derive(Clone)]
pub(crate) struct App {
    pub(crate) transcriber: Transcriber,
    pub(crate) journal: Arc<dyn Journal>,
    /// The callbacks received and the webhook deliveries, per job.
    pub(crate) log: Arc<dyn JobLog>,
    /// The callback receiver, for replays (none for polling).
    pub(crate) receiver: Option<CallbackReceiver>,
    pub(crate) webhooks: Option<webhook::WebhookSet>,
    /// The tenants, by name.
    pub(crate) tenants: crate::tenants::Tenants,
    pub(crate) uploads: PathBuf,
    pub(crate) max_upload_bytes: u64,
    pub(crate) draining: watch::Receiver<bool>,
    pub(crate) metrics: daglo::metrics::Prometheus,
    /// What each kind of traffic may hold (`[limits]`).
    pub(crate) shares: Shares,
    /// What `/readyz` asks.
    pub(crate) readiness: Readiness,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").finish_non_exhaustive()
    }
}

/// The metrics exporter, installed once per process (a process may run several servers).
fn exporter() -> Result<daglo::metrics::Prometheus, Error> {
    static INSTALLED: std::sync::OnceLock<daglo::metrics::Prometheus> = std::sync::OnceLock::new();
    if let Some(installed) = INSTALLED.get() {
        return Ok(installed.clone());
    }
    let prometheus =
        daglo::metrics::Prometheus::install().map_err(|e| Error::start("the metrics exporter", e))?;
    crate::metrics::describe();
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
    _takeover: Option<daglo::internal::AbortOnDrop>,
    /// Asks Daglo now and then whether it still takes the token.
    _token_watch: daglo::internal::AbortOnDrop,
    /// Deletes ended jobs' data after `retention_days`, when set.
    _retention: Option<daglo::internal::AbortOnDrop>,
}

impl Server {
    /// Starts the service: checks the configuration, opens the journal and results in
    /// `data_dir` (or the journal on Redis), takes up the jobs the journal holds
    /// ([`Transcriber::recover`]), and serves on `listen`. `token` is the Daglo API token.
    pub async fn start(config: Config, token: String) -> Result<Self, Error> {
        config.validate()?;
        let strategy = config.strategy_config()?;
        let metrics = exporter()?;
        daglo::internal::private_dir(&config.data_dir)
            .map_err(|e| Error::start(&format!("the data directory {}", config.data_dir.display()), e))?;
        let uploads = config.data_dir.join("uploads");
        // Uploads in flight belong to the process that receives them: whatever a previous run
        // left (a SIGKILL mid-upload) is removed.
        let _ = std::fs::remove_dir_all(&uploads);
        daglo::internal::private_dir(&uploads).map_err(|e| Error::start("the uploads directory", e))?;
        let tenants = Tenants::new(&config);
        crate::metrics::tenants(tenants.names());
        let mut builder = Client::builder().token(token).base_url(config.base_url.clone());
        // Daglo's submit budget, shared fairly by the tenants with submits waiting.
        let mut submit_budget: Arc<dyn daglo::client::RateBudget> =
            Arc::new(daglo::client::TokenBucket::default());
        // With Redis, the replicas share the journal (and its key secret), the rate budgets and
        // the callback registry: a callback that lands on any replica reaches its job.
        let mut replicas = None;
        let mut registry: Option<Arc<dyn JobRegistry>> = None;
        // The job log (inbox, webhook deliveries) lives with the journal: shared by replicas.
        let (journal, log): (Arc<dyn Journal>, Arc<dyn JobLog>) = match &config.redis_url {
            Some(url) => {
                let store = daglo::redis::RedisStore::connect(url)
                    .await
                    .map_err(|e| Error::start("Redis", e))?;
                trusted(&store, config.redis_allow_volatile).await?;
                let shared = daglo::redis::SharedBudgets::new(&store, "daglo-serve");
                builder = shared.apply(builder);
                submit_budget = shared.submit.clone();
                registry = Some(Arc::new(daglo::redis::RedisRegistry::new(store.clone()).await));
                replicas = Some(daglo::redis::Replicas::new(store.clone(), "daglo-serve"));
                let journal = Arc::new(daglo::redis::RedisJournal::new(store, "daglo-serve"));
                (journal.clone(), journal)
            }
            None => {
                let journal = Arc::new(
                    SqliteJournal::open(config.data_dir.join("journal.sqlite"))
                        .map_err(|e| Error::start("the journal", e))?,
                );
                (journal.clone(), journal)
            }
        };
        let client = builder
            .submit_budget(Arc::new(FairBudget::new(submit_budget, tenants.weights())))
            .build()
            .map_err(|e| Error::config("base_url", daglo::internal::error_chain(&e)))?;
        let readiness = Readiness::new(journal.clone(), &config.data_dir, client.clone());
        // Whether Daglo takes the token, before the first job (not ready while it refuses).
        let _ = tokio::time::timeout(Duration::from_secs(10), readiness.ask_token()).await;
        let token_watch = daglo::internal::AbortOnDrop::new(tokio::spawn(readiness.clone().watch_token()));
        let results =
            DirResults::open(config.data_dir.join("results")).map_err(|e| Error::start("the results", e))?;
        let mut transcriber = Transcriber::builder(client)
            .config(&strategy)
            .journal(journal.clone())
            .results(Arc::new(results));
        if let Some(registry) = registry {
            transcriber = transcriber.registry(registry);
        }
        let (transcriber, receiver) = transcriber
            .build_mounted()
            .await
            .map_err(|e| Error::start("the strategy", e))?;
        // Every callback written down before it is answered.
        let receiver = receiver.map(|receiver| {
            receiver.with_inbox(
                Arc::new(inbox::Inbox::new(log.clone())),
                daglo::callback::DEFAULT_INBOX_BODY_BYTES,
            )
        });
        let webhooks = webhook::WebhookSet::new(&config, &log, &transcriber)?;
        let (draining, watching) = watch::channel(false);
        let shares = Shares::new(config.limits);
        let app = App {
            transcriber: transcriber.clone(),
            journal: journal.clone(),
            log,
            receiver: receiver.clone(),
            webhooks: webhooks.clone(),
            tenants: tenants.clone(),
            uploads,
            max_upload_bytes: config.max_upload_bytes,
            draining: watching,
            metrics,
            shares: shares.clone(),
            readiness,
        };
        let retention = config.retention_days.map(|days| {
            daglo::internal::AbortOnDrop::new(tokio::spawn(crate::retention::run(
                app.clone(),
                Duration::from_secs_f64(days * 86_400.0),
            )))
        });
        let router = routes::router(app, auth::Keys::new(&config, &tenants), shares, receiver)
            .layer(axum::middleware::from_fn(counted));
        let listener = daglo::callback::bind_with_backlog(config.listen, config.accept_backlog)
            .map_err(|e| Error::start(&format!("listen {}", config.listen), e))?;
        let local_addr = listener.local_addr().map_err(|e| Error::start("listen", e))?;
        // No lifetime per connection: an upload lives while it makes progress and an event
        // stream until its job ends; the API's share (all but `reserved_connections`) bounds
        // what callers can hold, so Daglo's callbacks and the probes always find room.
        let limits = ConnectionLimits::default()
            .max_connections(config.limits.max_connections)
            .max_connection_time(Duration::MAX);
        let http = CallbackServer::serve(listener, router, limits).map_err(|e| Error::start("serve", e))?;
        let takeover = match replicas {
            // Replicas: each takes up only the running jobs of replicas that are gone.
            Some(replicas) => Some(daglo::internal::AbortOnDrop::new(tokio::spawn(takeover::run(
                replicas,
                transcriber.clone(),
                journal,
                webhooks,
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
                        tracing::warn!(error = %daglo::internal::error_chain(&e), "could not take up the journal's jobs");
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
            _token_watch: token_watch,
            _retention: retention,
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

/// Refuses a Redis that forgets (no persistence) or evicts, naming the setting, unless the
/// operator accepts it (`redis_allow_volatile`, then a warning at every start).
async fn trusted(store: &daglo::redis::RedisStore, allow_volatile: bool) -> Result<(), Error> {
    let problems = match store.durability().await {
        Ok(durability) => durability.problems(),
        Err(e) => vec![format!(
            "its settings could not be read (CONFIG GET: {})",
            daglo::internal::error_chain(&e)
        )],
    };
    if problems.is_empty() {
        return Ok(());
    }
    let said = problems.join("; ");
    if allow_volatile {
        tracing::warn!(
            problems = %said,
            "redis_allow_volatile = true: this Redis may forget submitted jobs, and a retried key may be billed twice"
        );
        return Ok(());
    }
    Err(Error::config(
        "redis_url",
        format!(
            "the Redis at {} cannot be trusted with jobs: {said}. Fix it, or set redis_allow_volatile = true to accept that a retried key may be billed twice",
            store.address()
        ),
    ))
}

/// Counts every answer by its route template (the router's own, so bounded: never the path
/// itself) and status.
async fn counted(request: Request, next: axum::middleware::Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("other", MatchedPath::as_str)
        .to_owned();
    let started = std::time::Instant::now();
    let answer = next.run(request).await;
    let tenant = answer
        .extensions()
        .get::<auth::AnsweredFor>()
        .map(|t| t.0.clone());
    crate::metrics::api_request(
        &route,
        tenant.as_deref().unwrap_or("none"),
        answer.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    answer
}
