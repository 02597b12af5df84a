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
    pub(crate) webhooks: Option<webhook::Webhooks>,
    pub(crate) uploads: PathBuf,
    pub(crate) max_upload_bytes: u64,
    pub(crate) draining: watch::Receiver<bool>,
    pub(crate) metrics: daglo::metrics::Prometheus,
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
}

impl Server {
    /// Starts the service: checks the configuration, opens the journal and results in
    /// `data_dir` (or the journal on Redis), takes up the jobs the journal holds
    /// ([`Transcriber::recover`]), and serves on `listen`. `token` is the Daglo API token.
    pub async fn start(config: Config, token: String) -> Result<Self, Error> {
        if config.api_keys.is_empty() {
            return Err(Error::config(
                "api_keys",
                "give at least one key callers send as Bearer",
            ));
        }
        if config.api_keys.iter().any(|k| k.expose().len() < 16) {
            return Err(Error::config("api_keys", "a key must be at least 16 characters"));
        }
        let strategy = config.strategy_config()?;
        if let Some(webhook) = &config.webhook {
            webhook.validate()?;
        }
        let metrics = exporter()?;
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| Error::start(&format!("the data directory {}", config.data_dir.display()), e))?;
        let uploads = config.data_dir.join("uploads");
        std::fs::create_dir_all(&uploads).map_err(|e| Error::start("the uploads directory", e))?;
        let mut builder = Client::builder().token(token).base_url(config.base_url.clone());
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
                builder = daglo::redis::SharedBudgets::new(&store, "daglo-serve").apply(builder);
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
            .build()
            .map_err(|e| Error::config("base_url", daglo::internal::error_chain(&e)))?;
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
        let webhooks = match &config.webhook {
            Some(webhook) => Some(webhook::Webhooks::new(
                webhook.clone(),
                log.clone(),
                transcriber.clone(),
            )?),
            None => None,
        };
        let (draining, watching) = watch::channel(false);
        let app = App {
            transcriber: transcriber.clone(),
            journal: journal.clone(),
            log,
            receiver: receiver.clone(),
            webhooks: webhooks.clone(),
            uploads,
            max_upload_bytes: config.max_upload_bytes,
            draining: watching,
            metrics,
        };
        let router = routes::router(app, auth::Keys::new(&config.api_keys), receiver)
            .layer(axum::middleware::from_fn(counted));
        let listener = daglo::callback::bind_with_backlog(config.listen, config.accept_backlog)
            .map_err(|e| Error::start(&format!("listen {}", config.listen), e))?;
        let local_addr = listener.local_addr().map_err(|e| Error::start("listen", e))?;
        let http = CallbackServer::serve(listener, router, ConnectionLimits::default())
            .map_err(|e| Error::start("serve", e))?;
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
    crate::metrics::api_request(&route, answer.status().as_u16(), started.elapsed().as_secs_f64());
    answer
}
