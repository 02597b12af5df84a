//! The one way to build a [`Transcriber`]: [`Transcriber::builder`].

use std::net::SocketAddr;
use std::sync::Arc;

use daglo_client::Client;
use daglo_core::{Journal, ResultDelivery};

#[cfg(any(feature = "poll", feature = "callback"))]
use crate::settings::StrategyConfig;
use crate::table::ResultStore;
use crate::transcriber::Transcriber;

/// Builds a [`Transcriber`]: the strategy (from configuration, or any [`ResultDelivery`]), and
/// optionally a durable journal, a store for results and — for replicas — a shared callback
/// registry. The calls may come in any order.
///
/// ```
/// use daglo::{StrategyConfig, Transcriber};
/// use daglo::sim::{SimConfig, Simulator};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let sim = Simulator::start(SimConfig::default()).await?;
/// let config: StrategyConfig = serde_json::from_str(r#"{"strategy": "callback",
///     "callback": {"listen": "127.0.0.1:0"}}"#)?;
/// let transcriber = Transcriber::builder(daglo::sim::client(&sim)?).config(&config).build().await?;
/// assert_eq!(transcriber.strategy(), "callback");
/// transcriber.shutdown().await;
/// # sim.shutdown().await;
/// # Ok(())
/// # }
/// ```
///
/// With a [`journal`](TranscriberBuilder::journal), callback keys are signed with the secret the
/// journal keeps (unless the configuration names one, `callback.key_secret_env`), so a process
/// restarted on the same journal takes back its jobs **and** their callbacks
/// ([`Transcriber::recover`]). A delivery given ready-made with
/// [`delivery`](TranscriberBuilder::delivery) is used as it is: its keys are its own.
#[must_use = "a builder does nothing until built"]
pub struct TranscriberBuilder {
    client: Client,
    strategy: Choice,
    journal: Option<Arc<dyn Journal>>,
    results: Option<Arc<dyn ResultStore>>,
    #[cfg(feature = "callback")]
    registry: Option<Arc<dyn daglo_callback::JobRegistry>>,
    #[cfg(feature = "callback")]
    server: Option<daglo_callback::CallbackServer>,
}

/// The strategy a builder was given.
enum Choice {
    /// None: polling with its defaults.
    Default,
    #[cfg(any(feature = "poll", feature = "callback"))]
    Config(Box<StrategyConfig>),
    Delivery(Arc<dyn ResultDelivery>),
}

impl std::fmt::Debug for TranscriberBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let strategy = match &self.strategy {
            Choice::Default => "default",
            #[cfg(any(feature = "poll", feature = "callback"))]
            Choice::Config(config) => config.name(),
            Choice::Delivery(delivery) => delivery.name(),
        };
        f.debug_struct("TranscriberBuilder")
            .field("client", &self.client)
            .field("strategy", &strategy)
            .field("journal", &self.journal.is_some())
            .field("results", &self.results.is_some())
            .finish_non_exhaustive()
    }
}

impl Transcriber {
    /// Starts building a transcriber that submits through `client` (see
    /// [`TranscriberBuilder`]). Without a strategy it polls with the defaults.
    pub fn builder(client: Client) -> TranscriberBuilder {
        TranscriberBuilder {
            client,
            strategy: Choice::Default,
            journal: None,
            results: None,
            #[cfg(feature = "callback")]
            registry: None,
            #[cfg(feature = "callback")]
            server: None,
        }
    }
}

impl TranscriberBuilder {
    /// The strategy `config` names (read it from a file with serde). Callback and hybrid run
    /// their receiver with [`build`](Self::build), or hand it to you with
    /// [`build_mounted`](Self::build_mounted).
    #[cfg(any(feature = "poll", feature = "callback"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "poll", feature = "callback"))))]
    pub fn config(mut self, config: &StrategyConfig) -> Self {
        self.strategy = Choice::Config(Box::new(config.clone()));
        self
    }

    /// Any strategy, built by you (a [`HybridDelivery`](crate::HybridDelivery) with a window of
    /// your own, say, or your own [`ResultDelivery`]).
    pub fn delivery(mut self, delivery: impl ResultDelivery + 'static) -> Self {
        self.strategy = Choice::Delivery(Arc::new(delivery));
        self
    }

    /// Keeps a durable journal of every job: the intent before the submit, the rid as soon as
    /// the answer arrives, the outcome at the end — so a crash at any point loses nothing
    /// ([`Transcriber::recover`] takes the jobs back). The journal gets a digest of the options,
    /// never a token, a callback credential or a transcript.
    pub fn journal(mut self, journal: Arc<dyn Journal>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// Keeps each finished job's result in `store` (say [`DirResults`](crate::jobs::DirResults)), so
    /// [`Transcriber::result`] and [`Transcriber::outcome`] answer after a restart. Without
    /// one, results live only in memory, for the jobs this process ran.
    pub fn results(mut self, store: Arc<dyn ResultStore>) -> Self {
        self.results = Some(store);
        self
    }

    /// The callback registry the receiver records into — a
    /// [`RedisRegistry`](https://docs.rs/daglo/latest/daglo/redis/struct.RedisRegistry.html) every replica shares, so a callback that
    /// lands on any replica reaches the job's waiter. Give the replicas one journal (whose key
    /// secret they then share) or one `key_secret_env`. Used by configured callback and hybrid
    /// strategies.
    #[cfg(feature = "callback")]
    #[cfg_attr(docsrs, doc(cfg(feature = "callback")))]
    pub fn registry(mut self, registry: Arc<dyn daglo_callback::JobRegistry>) -> Self {
        self.registry = Some(registry);
        self
    }

    /// The running receiver of a callback delivery given with [`delivery`](Self::delivery)
    /// ([`CallbackDelivery::serve`](crate::callback::CallbackDelivery::serve)): the transcriber
    /// then owns it — reports its address ([`Transcriber::receiver_addr`]) and stops it in
    /// [`Transcriber::shutdown`] or when the last clone is dropped.
    #[cfg(feature = "callback")]
    #[cfg_attr(docsrs, doc(cfg(feature = "callback")))]
    pub fn receiver(mut self, server: daglo_callback::CallbackServer) -> Self {
        self.server = Some(server);
        self
    }

    /// Builds it, binding and starting the callback receiver when the configured strategy
    /// needs one (`callback.listen`); the transcriber then owns it
    /// ([`Transcriber::receiver_addr`], stopped by [`Transcriber::shutdown`]).
    pub async fn build(self) -> Result<Transcriber, StrategyError> {
        let (strategy, journal, results, client) = (self.strategy, self.journal, self.results, self.client);
        #[cfg(feature = "callback")]
        let (registry, server) = (self.registry, self.server);
        let transcriber = match strategy {
            Choice::Default => default_strategy(client)?,
            Choice::Delivery(delivery) => {
                let transcriber = Transcriber::from_shared(client, delivery);
                #[cfg(feature = "callback")]
                let transcriber = match server {
                    Some(server) => transcriber.owning_receiver(server),
                    None => transcriber,
                };
                transcriber
            }
            #[cfg(any(feature = "poll", feature = "callback"))]
            Choice::Config(config) => {
                let kept = kept(&config, journal.as_deref()).await?;
                let _ = &kept;
                match *config {
                    #[cfg(feature = "poll")]
                    StrategyConfig::Polling(settings) => {
                        let polling = settings.build(&client)?;
                        Transcriber::new(client, polling)
                    }
                    #[cfg(feature = "callback")]
                    StrategyConfig::Callback(settings) => {
                        let (callbacks, server) = settings.start(&client, kept.as_ref(), registry).await?;
                        Transcriber::new(client, callbacks).owning_receiver(server)
                    }
                    #[cfg(all(feature = "poll", feature = "callback"))]
                    StrategyConfig::Hybrid(settings) => {
                        let polling = settings.polling.build(&client)?;
                        let (callbacks, server) =
                            settings.callback.start(&client, kept.as_ref(), registry).await?;
                        let hybrid = crate::HybridDelivery::new(callbacks, polling).window(settings.window);
                        Transcriber::new(client, hybrid).owning_receiver(server)
                    }
                }
            }
        };
        Ok(finish(transcriber, journal, results))
    }

    /// Builds it for a receiver **you mount** in your own router: the transcriber, and — for
    /// the callback and hybrid strategies — the receiver, a `tower` service to route
    /// `{public_url path}/{key}` to. Nothing is bound, so `callback.listen` may be left out;
    /// `callback.public_url` is required. The standalone server's per-connection protections
    /// are then your server's job: serve your app with
    /// [`CallbackServer::serve`](crate::callback::CallbackServer::serve) and
    /// [`CallbackSettings::connection_limits`](crate::strategy::CallbackSettings::connection_limits)
    /// to keep them (`docs/configuration.md`, "Mounting the receiver").
    ///
    /// ```no_run
    /// use daglo::{Client, StrategyConfig, Transcriber};
    ///
    /// # async fn run(client: Client) -> Result<(), Box<dyn std::error::Error>> {
    /// let config: StrategyConfig = serde_json::from_str(r#"{"strategy": "hybrid",
    ///     "callback": {"public_url": "https://app.example.com/daglo"}}"#)?;
    /// let (transcriber, receiver) = Transcriber::builder(client).config(&config).build_mounted().await?;
    /// let mut app = axum::Router::<()>::new().route("/health", axum::routing::get(|| async { "ok" }));
    /// if let Some(receiver) = receiver {
    ///     app = app.route_service("/daglo/{key}", receiver);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "callback")]
    #[cfg_attr(docsrs, doc(cfg(feature = "callback")))]
    pub async fn build_mounted(
        self,
    ) -> Result<(Transcriber, Option<daglo_callback::CallbackReceiver>), StrategyError> {
        let (strategy, journal, results, client, registry) = (
            self.strategy,
            self.journal,
            self.results,
            self.client,
            self.registry,
        );
        let (transcriber, receiver) = match strategy {
            Choice::Default => (default_strategy(client)?, None),
            Choice::Delivery(delivery) => (Transcriber::from_shared(client, delivery), None),
            Choice::Config(config) => {
                let kept = kept(&config, journal.as_deref()).await?;
                match *config {
                    #[cfg(feature = "poll")]
                    StrategyConfig::Polling(settings) => {
                        let polling = settings.build(&client)?;
                        (Transcriber::new(client, polling), None)
                    }
                    StrategyConfig::Callback(settings) => {
                        let callbacks = settings.mount(&client, kept.as_ref(), registry)?;
                        let receiver = callbacks.receiver();
                        (Transcriber::new(client, callbacks), Some(receiver))
                    }
                    #[cfg(feature = "poll")]
                    StrategyConfig::Hybrid(settings) => {
                        let polling = settings.polling.build(&client)?;
                        let callbacks = settings.callback.mount(&client, kept.as_ref(), registry)?;
                        let receiver = callbacks.receiver();
                        let hybrid = crate::HybridDelivery::new(callbacks, polling).window(settings.window);
                        (Transcriber::new(client, hybrid), Some(receiver))
                    }
                }
            }
        };
        Ok((finish(transcriber, journal, results), receiver))
    }
}

/// The journal's key secret, when there is a journal.
#[cfg(any(feature = "poll", feature = "callback"))]
async fn kept(
    config: &StrategyConfig,
    journal: Option<&dyn Journal>,
) -> Result<Option<KeptSecret>, StrategyError> {
    match journal {
        Some(journal) => kept_secret(config, journal).await,
        None => Ok(None),
    }
}

fn finish(
    mut transcriber: Transcriber,
    journal: Option<Arc<dyn Journal>>,
    results: Option<Arc<dyn ResultStore>>,
) -> Transcriber {
    if let Some(journal) = journal {
        transcriber = transcriber.with_journal(journal);
    }
    if let Some(results) = results {
        transcriber = transcriber.with_results(results);
    }
    transcriber
}

#[cfg(feature = "poll")]
fn default_strategy(client: Client) -> Result<Transcriber, StrategyError> {
    Ok(Transcriber::polling(client))
}

#[cfg(not(feature = "poll"))]
fn default_strategy(_: Client) -> Result<Transcriber, StrategyError> {
    Err(StrategyError::Invalid(
        "no strategy: give .config(..) or .delivery(..) (feature `poll` polls by default)".to_owned(),
    ))
}

/// Why a strategy could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StrategyError {
    /// A setting is out of range or refers to something missing.
    #[error("invalid strategy configuration: {0}")]
    Invalid(String),
    /// The receiver could not listen where it was told to.
    #[error("the callback receiver cannot listen on {addr}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The journal could not give the callback key secret it keeps.
    #[error("the journal's callback key secret is unavailable")]
    Journal(#[source] daglo_core::JournalError),
    /// The callback settings were refused.
    #[cfg(feature = "callback")]
    #[cfg_attr(docsrs, doc(cfg(feature = "callback")))]
    #[error("the callback settings were refused")]
    Callback(#[from] daglo_callback::CallbackError),
}

/// The key secret a journal keeps, in the form the callback settings take.
#[cfg(feature = "callback")]
pub(crate) type KeptSecret = daglo_callback::Secret;
#[cfg(all(feature = "poll", not(feature = "callback")))]
pub(crate) type KeptSecret = ();

/// The journal's key secret, when `config` uses callbacks and names none of its own.
#[cfg(any(feature = "poll", feature = "callback"))]
pub(crate) async fn kept_secret(
    config: &StrategyConfig,
    journal: &dyn Journal,
) -> Result<Option<KeptSecret>, StrategyError> {
    #[cfg(feature = "callback")]
    {
        let settings = match config {
            StrategyConfig::Callback(settings) => Some(settings),
            #[cfg(feature = "poll")]
            StrategyConfig::Hybrid(settings) => Some(&settings.callback),
            #[cfg(feature = "poll")]
            StrategyConfig::Polling(_) => None,
        };
        if let Some(settings) = settings
            && settings.key_secret_env.is_none()
            && let Some(bytes) = journal.key_secret().await.map_err(StrategyError::Journal)?
        {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            return Ok(Some(daglo_callback::Secret::new(hex)));
        }
        Ok(None)
    }
    #[cfg(not(feature = "callback"))]
    {
        let _ = (config, journal);
        Ok(None)
    }
}
