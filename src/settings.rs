//! Choosing a strategy from configuration: one serde-friendly value builds polling, callbacks
//! (with their receiver, run by the transcriber or mounted in your app) or hybrid, so switching
//! strategy is changing that value.
//!
//! The settings are derived from the real configuration types — the policy is a
//! [`PollPolicy`](daglo_core::PollPolicy), the callback limits default to
//! [`CallbackConfig`](daglo_callback::CallbackConfig)'s constants, the hybrid window to
//! [`HybridDelivery`](crate::HybridDelivery)'s — so there is one set of defaults.
//! `docs/configuration.md` lists every key.

#[cfg(feature = "callback")]
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::builder::StrategyError;

#[cfg(feature = "callback")]
use daglo_callback::{
    CallbackConfig, CallbackDelivery, CallbackServer, ConnectionLimits, DEFAULT_BODY_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT, DEFAULT_JOB_TTL, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_CONNECTION_TIME,
    DEFAULT_MAX_CONNECTIONS, FinalCallbacks, Secret,
};
#[cfg(feature = "poll")]
use daglo_core::PollPolicy;
#[cfg(feature = "poll")]
use daglo_poll::{PollingConfig, PollingDelivery, TokenBucket};

/// Which strategy a [`Transcriber`](crate::Transcriber) uses, as configuration. Build one in
/// code or read it from a file (any serde format); durations are seconds, unknown keys are
/// refused. `docs/configuration.md` lists every key with its default.
///
/// ```
/// use daglo::StrategyConfig;
///
/// let polling: StrategyConfig = serde_json::from_str(r#"{"strategy": "polling"}"#)?;
/// assert_eq!(polling, StrategyConfig::polling());
///
/// let hybrid: StrategyConfig = serde_json::from_str(r#"{
///     "strategy": "hybrid",
///     "callback": {"listen": "0.0.0.0:8443", "public_url": "https://hooks.example.com/daglo"},
///     "window_secs": 120
/// }"#)?;
/// assert_eq!(hybrid.name(), "hybrid");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "strategy", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StrategyConfig {
    /// Poll `GET …/transcripts/{rid}` until the job ends.
    #[cfg(feature = "poll")]
    #[cfg_attr(docsrs, doc(cfg(feature = "poll")))]
    Polling(PollingSettings),
    /// Receive the service's callbacks on a receiver the transcriber runs (or you mount).
    /// Its settings are the `callback` table, as in hybrid:
    /// `{"strategy": "callback", "callback": {"public_url": …}}`.
    #[cfg(feature = "callback")]
    #[cfg_attr(docsrs, doc(cfg(feature = "callback")))]
    #[serde(
        serialize_with = "callback_table::serialize",
        deserialize_with = "callback_table::deserialize"
    )]
    Callback(CallbackSettings),
    /// Callbacks first; polling too for a job whose final callback is late.
    #[cfg(all(feature = "poll", feature = "callback"))]
    #[cfg_attr(docsrs, doc(cfg(all(feature = "poll", feature = "callback"))))]
    Hybrid(HybridSettings),
}

/// The callback strategy's settings as a `callback` table — the shape hybrid takes them in.
#[cfg(feature = "callback")]
mod callback_table {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::CallbackSettings;

    #[derive(Serialize)]
    struct Out<'a> {
        callback: &'a CallbackSettings,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct In {
        callback: CallbackSettings,
    }

    pub(super) fn serialize<S: Serializer>(settings: &CallbackSettings, to: S) -> Result<S::Ok, S::Error> {
        Out { callback: settings }.serialize(to)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(from: D) -> Result<CallbackSettings, D::Error> {
        In::deserialize(from).map(|table| table.callback)
    }
}

impl StrategyConfig {
    /// Polling with the default (adaptive) policy.
    #[cfg(feature = "poll")]
    #[cfg_attr(docsrs, doc(cfg(feature = "poll")))]
    pub fn polling() -> Self {
        Self::Polling(PollingSettings::default())
    }

    /// Callbacks: the receiver listens on `listen`; the service is told to call `public_url`.
    #[cfg(feature = "callback")]
    #[cfg_attr(docsrs, doc(cfg(feature = "callback")))]
    pub fn callback(listen: SocketAddr, public_url: impl Into<String>) -> Self {
        Self::Callback(CallbackSettings::new(listen, Some(public_url.into())))
    }

    /// Hybrid: callbacks as [`callback`](StrategyConfig::callback), polling sparsely after a
    /// two-minute window without a final callback.
    #[cfg(all(feature = "poll", feature = "callback"))]
    #[cfg_attr(docsrs, doc(cfg(all(feature = "poll", feature = "callback"))))]
    pub fn hybrid(listen: SocketAddr, public_url: impl Into<String>) -> Self {
        Self::Hybrid(HybridSettings::new(CallbackSettings::new(
            listen,
            Some(public_url.into()),
        )))
    }

    /// The strategy's name, as [`ResultDelivery::name`](crate::ResultDelivery::name) reports it.
    pub fn name(&self) -> &'static str {
        match self {
            #[cfg(feature = "poll")]
            Self::Polling(_) => "polling",
            #[cfg(feature = "callback")]
            Self::Callback(_) => "callback",
            #[cfg(all(feature = "poll", feature = "callback"))]
            Self::Hybrid(_) => "hybrid",
        }
    }

    /// Sets an overall deadline: polling gives up after it, and callback registrations live
    /// that long. The job goes on after it; the outcome is
    /// [`Outcome::GaveUp`](crate::Outcome::GaveUp) with the rid.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        match &mut self {
            #[cfg(feature = "poll")]
            Self::Polling(polling) => polling.deadline = Some(deadline),
            #[cfg(feature = "callback")]
            Self::Callback(callback) => callback.job_ttl = deadline,
            #[cfg(all(feature = "poll", feature = "callback"))]
            Self::Hybrid(hybrid) => {
                hybrid.callback.job_ttl = deadline;
                hybrid.polling.deadline = Some(deadline);
            }
        }
        self
    }
}

/// Polling, as configuration.
#[cfg(feature = "poll")]
#[cfg_attr(docsrs, doc(cfg(feature = "poll")))]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PollingSettings {
    /// How polls are spaced (default adaptive): a [`PollPolicy`] in its configuration form,
    /// `{"kind": "fixed", "interval_secs": 3}` say.
    pub policy: PollPolicy,
    /// A status budget of this poller's own, in requests per second (burst 2). Left out (the
    /// default), the poller draws from the client's status budget
    /// ([`ClientBuilder::status_budget`](crate::client::ClientBuilder::status_budget), 16/s unless the
    /// client was given another, a Redis-shared one included), which every other status request
    /// of the process — confirmations of final callbacks among them — draws from too.
    pub requests_per_second: Option<f64>,
    /// Give up waiting after this many seconds (default: never).
    #[serde(rename = "deadline_secs", with = "daglo_core::secs::option")]
    pub deadline: Option<Duration>,
}

#[cfg(feature = "poll")]
impl PollingSettings {
    /// Polling with `policy`, the other settings at their defaults.
    pub fn with_policy(policy: PollPolicy) -> Self {
        Self {
            policy,
            ..Self::default()
        }
    }

    pub(crate) fn build(&self, client: &crate::Client) -> Result<PollingDelivery, StrategyError> {
        let mut config = PollingConfig::default()
            .policy(self.policy.clone())
            .deadline(self.deadline);
        if let Some(rate) = self.requests_per_second {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(StrategyError::Invalid(format!(
                    "polling.requests_per_second must be a positive number, not {rate}"
                )));
            }
            config = config.budget(std::sync::Arc::new(TokenBucket::new(rate, 2)));
        }
        Ok(PollingDelivery::new(client.clone(), config))
    }
}

/// Callbacks and their receiver, as configuration.
#[cfg(feature = "callback")]
#[cfg_attr(docsrs, doc(cfg(feature = "callback")))]
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CallbackSettings {
    /// Where the receiver listens when the transcriber runs it
    /// ([`TranscriberBuilder::build`](crate::TranscriberBuilder::build); `127.0.0.1:0` picks a
    /// free loopback port). Not needed when you mount the receiver
    /// ([`TranscriberBuilder::build_mounted`](crate::TranscriberBuilder::build_mounted)).
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// The URL the service is told to call, before the job key: your https endpoint behind a
    /// proxy. Leave it out only when the service runs on this machine (the emulator) and the
    /// transcriber runs the receiver: the receiver's own address is used, with
    /// [`path`](CallbackSettings::path).
    #[serde(default)]
    pub public_url: Option<String>,
    /// The path under the receiver's own address when there is no public URL (default `/daglo`).
    #[serde(default = "default_path")]
    pub path: String,
    /// How long a job may wait for its final callback, seconds (default 6 hours,
    /// [`DEFAULT_JOB_TTL`](crate::callback::DEFAULT_JOB_TTL)).
    #[serde(rename = "job_ttl_secs", with = "daglo_core::secs", default = "default_ttl")]
    pub job_ttl: Duration,
    /// How a final callback becomes the outcome: `confirm` (the default: one authenticated GET
    /// of the rid) or `trust_body`.
    #[serde(default)]
    pub finals: FinalCallbacks,
    /// At most this many connections at once (default 512,
    /// [`DEFAULT_MAX_CONNECTIONS`](crate::callback::DEFAULT_MAX_CONNECTIONS)). Enforced by the
    /// receiver the transcriber runs; mounted, by [`CallbackServer::serve`] or your server.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// The largest accepted callback body, bytes (default 16 MiB).
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// How long a connection may take to send its request head, seconds (default 10).
    #[serde(
        rename = "header_timeout_secs",
        with = "daglo_core::secs",
        default = "default_header_timeout"
    )]
    pub header_timeout: Duration,
    /// How long a sender may take to deliver a body, seconds (default 10).
    #[serde(
        rename = "body_timeout_secs",
        with = "daglo_core::secs",
        default = "default_body_timeout"
    )]
    pub body_timeout: Duration,
    /// The longest a connection may stay open, seconds (default 30).
    #[serde(
        rename = "max_connection_time_secs",
        with = "daglo_core::secs",
        default = "default_max_connection_time"
    )]
    pub max_connection_time: Duration,
    /// The name of an environment variable holding the secret that signs job keys. Give every
    /// replica behind one public URL the same one (default: a random secret per process).
    #[serde(default)]
    pub key_secret_env: Option<String>,
}

#[cfg(feature = "callback")]
fn default_path() -> String {
    "/daglo".to_owned()
}

#[cfg(feature = "callback")]
fn default_ttl() -> Duration {
    DEFAULT_JOB_TTL
}

#[cfg(feature = "callback")]
fn default_max_connections() -> usize {
    DEFAULT_MAX_CONNECTIONS
}

#[cfg(feature = "callback")]
fn default_max_body_bytes() -> usize {
    DEFAULT_MAX_BODY_BYTES
}

#[cfg(feature = "callback")]
fn default_header_timeout() -> Duration {
    DEFAULT_HEADER_TIMEOUT
}

#[cfg(feature = "callback")]
fn default_body_timeout() -> Duration {
    DEFAULT_BODY_TIMEOUT
}

#[cfg(feature = "callback")]
fn default_max_connection_time() -> Duration {
    DEFAULT_MAX_CONNECTION_TIME
}

#[cfg(feature = "callback")]
impl std::fmt::Debug for CallbackSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackSettings")
            .field("listen", &self.listen)
            .field("public_url", &self.public_url)
            .field("job_ttl", &self.job_ttl)
            .field("finals", &self.finals)
            .field("key_secret_env", &self.key_secret_env)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "callback")]
impl CallbackSettings {
    /// A receiver on `listen`, called at `public_url` (or at its own address when `None`); the
    /// rest at the defaults.
    pub fn new(listen: SocketAddr, public_url: Option<String>) -> Self {
        Self {
            listen: Some(listen),
            public_url,
            path: default_path(),
            job_ttl: default_ttl(),
            finals: FinalCallbacks::default(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            max_connection_time: DEFAULT_MAX_CONNECTION_TIME,
            key_secret_env: None,
        }
    }

    /// A receiver you mount in your own app, called at `public_url`: nothing is bound.
    pub fn mounted(public_url: impl Into<String>) -> Self {
        Self {
            listen: None,
            ..Self::new(SocketAddr::from(([127, 0, 0, 1], 0)), Some(public_url.into()))
        }
    }

    /// A receiver on a free loopback port that the service calls directly: for the emulator
    /// (`daglo::sim`) and tests, never for the real service.
    pub fn loopback() -> Self {
        Self::new(SocketAddr::from(([127, 0, 0, 1], 0)), None)
    }

    /// The per-connection bounds of these settings, for [`CallbackServer::serve`].
    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits::default()
            .max_connections(self.max_connections)
            .header_timeout(self.header_timeout)
            .max_connection_time(self.max_connection_time)
    }

    /// The one mapping from these settings to the delivery's configuration. `kept` is the key
    /// secret a journal keeps, used when `key_secret_env` names none.
    fn callback_config(
        &self,
        public_url: &str,
        kept: Option<&Secret>,
    ) -> Result<CallbackConfig, StrategyError> {
        let mut config = CallbackConfig::new(public_url)?
            .job_ttl(self.job_ttl)
            .finals(self.finals)
            .max_connections(self.max_connections)
            .max_body_bytes(self.max_body_bytes)
            .header_timeout(self.header_timeout)
            .body_timeout(self.body_timeout)
            .max_connection_time(self.max_connection_time);
        if let Some(variable) = &self.key_secret_env {
            let secret = std::env::var(variable).map_err(|_| {
                StrategyError::Invalid(format!(
                    "callback.key_secret_env names `{variable}`, which is not set in the environment"
                ))
            })?;
            config = config.key_secret(Secret::new(secret));
        } else if let Some(kept) = kept {
            config = config.key_secret(kept.clone());
        }
        Ok(config)
    }

    /// Binds the listener, builds the delivery and starts its receiver.
    pub(crate) async fn start(
        &self,
        client: &crate::Client,
        kept: Option<&Secret>,
        registry: Option<std::sync::Arc<dyn daglo_callback::JobRegistry>>,
    ) -> Result<(CallbackDelivery, CallbackServer), StrategyError> {
        let Some(listen) = self.listen else {
            return Err(StrategyError::Invalid(
                "callback.listen is required when the transcriber runs the receiver \
                 (TranscriberBuilder::build); mount the receiver with \
                 TranscriberBuilder::build_mounted to leave it out"
                    .to_owned(),
            ));
        };
        let listener = daglo_callback::bind(listen)
            .await
            .map_err(|source| StrategyError::Bind { addr: listen, source })?;
        let public_url = match &self.public_url {
            Some(url) => url.clone(),
            None => {
                let bound = listener
                    .local_addr()
                    .map_err(|source| StrategyError::Bind { addr: listen, source })?;
                format!("http://{bound}/{}", self.path.trim_start_matches('/'))
            }
        };
        let config = self.callback_config(&public_url, kept)?;
        let delivery = match registry {
            Some(registry) => CallbackDelivery::with_registry(client.clone(), config, registry)?,
            None => CallbackDelivery::new(client.clone(), config)?,
        };
        let server = delivery.serve(listener)?;
        Ok((delivery, server))
    }

    /// Builds the delivery for a receiver the caller mounts; binds nothing.
    pub(crate) fn mount(
        &self,
        client: &crate::Client,
        kept: Option<&Secret>,
        registry: Option<std::sync::Arc<dyn daglo_callback::JobRegistry>>,
    ) -> Result<CallbackDelivery, StrategyError> {
        let Some(public_url) = &self.public_url else {
            return Err(StrategyError::Invalid(
                "callback.public_url is required for a mounted receiver: it is where the service \
                 sends callbacks"
                    .to_owned(),
            ));
        };
        let config = self.callback_config(public_url, kept)?;
        Ok(match registry {
            Some(registry) => CallbackDelivery::with_registry(client.clone(), config, registry)?,
            None => CallbackDelivery::new(client.clone(), config)?,
        })
    }
}

/// Hybrid delivery, as configuration.
#[cfg(all(feature = "poll", feature = "callback"))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "poll", feature = "callback"))))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HybridSettings {
    /// The callback side.
    pub callback: CallbackSettings,
    /// The safety net (default: exponential from 30 s, doubling, at most 5 minutes,
    /// [`HYBRID_SAFETY_NET`](crate::strategy::HYBRID_SAFETY_NET)).
    #[serde(default = "sparse_polling")]
    pub polling: PollingSettings,
    /// Seconds to wait for a final callback before polling too (default 120,
    /// [`DEFAULT_HYBRID_WINDOW`](crate::strategy::DEFAULT_HYBRID_WINDOW)). Set it a little above the processing
    /// time you expect.
    #[serde(rename = "window_secs", with = "daglo_core::secs", default = "default_window")]
    pub window: Duration,
}

#[cfg(all(feature = "poll", feature = "callback"))]
fn sparse_polling() -> PollingSettings {
    PollingSettings::with_policy(crate::strategy::HYBRID_SAFETY_NET)
}

#[cfg(all(feature = "poll", feature = "callback"))]
fn default_window() -> Duration {
    crate::strategy::DEFAULT_HYBRID_WINDOW
}

#[cfg(all(feature = "poll", feature = "callback"))]
impl HybridSettings {
    /// Callbacks through `callback`, the default sparse safety net and window.
    pub fn new(callback: CallbackSettings) -> Self {
        Self {
            callback,
            polling: sparse_polling(),
            window: default_window(),
        }
    }
}
