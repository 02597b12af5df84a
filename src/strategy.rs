//! Choosing a strategy from configuration: one serde-friendly value builds polling, callbacks
//! (with their receiver) or hybrid, so switching strategy is changing that value.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[cfg(feature = "callback")]
use daglo_callback::{CallbackConfig, CallbackDelivery, CallbackError, CallbackServer, Secret};
#[cfg(feature = "poll")]
use daglo_core::PollPolicy;
#[cfg(feature = "poll")]
use daglo_poll::{PollingConfig, PollingDelivery, TokenBucket};

/// Which strategy a [`Transcriber`](crate::Transcriber) uses, as configuration. Build one in
/// code or read it from a file (any serde format); durations are seconds.
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
    /// Receive the service's callbacks on a receiver the transcriber runs.
    #[cfg(feature = "callback")]
    #[cfg_attr(docsrs, doc(cfg(feature = "callback")))]
    Callback(CallbackSettings),
    /// Callbacks first; polling too for a job whose final callback is late.
    #[cfg(all(feature = "poll", feature = "callback"))]
    #[cfg_attr(docsrs, doc(cfg(all(feature = "poll", feature = "callback"))))]
    Hybrid(HybridSettings),
}

impl StrategyConfig {
    /// Polling with the default (adaptive) policy.
    #[cfg(feature = "poll")]
    #[cfg_attr(docsrs, doc(cfg(feature = "poll")))]
    pub fn polling() -> Self {
        StrategyConfig::Polling(PollingSettings::default())
    }

    /// Callbacks: the receiver listens on `listen`; the service is told to call `public_url`.
    #[cfg(feature = "callback")]
    #[cfg_attr(docsrs, doc(cfg(feature = "callback")))]
    pub fn callback(listen: SocketAddr, public_url: impl Into<String>) -> Self {
        StrategyConfig::Callback(CallbackSettings::new(listen, Some(public_url.into())))
    }

    /// Hybrid: callbacks as [`callback`](StrategyConfig::callback), polling sparsely after a
    /// two-minute window without a final callback.
    #[cfg(all(feature = "poll", feature = "callback"))]
    #[cfg_attr(docsrs, doc(cfg(all(feature = "poll", feature = "callback"))))]
    pub fn hybrid(listen: SocketAddr, public_url: impl Into<String>) -> Self {
        StrategyConfig::Hybrid(HybridSettings::new(CallbackSettings::new(
            listen,
            Some(public_url.into()),
        )))
    }

    /// The strategy's name, as [`ResultDelivery::name`](crate::ResultDelivery::name) reports it.
    pub fn name(&self) -> &'static str {
        match self {
            #[cfg(feature = "poll")]
            StrategyConfig::Polling(_) => "polling",
            #[cfg(feature = "callback")]
            StrategyConfig::Callback(_) => "callback",
            #[cfg(all(feature = "poll", feature = "callback"))]
            StrategyConfig::Hybrid(_) => "hybrid",
        }
    }

    /// Sets an overall deadline: polling gives up after it, and callback registrations live
    /// that long. The job goes on after it; the outcome is
    /// [`Outcome::GaveUp`](crate::Outcome::GaveUp) with the rid.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        match &mut self {
            #[cfg(feature = "poll")]
            StrategyConfig::Polling(polling) => polling.deadline = Some(deadline),
            #[cfg(feature = "callback")]
            StrategyConfig::Callback(callback) => callback.job_ttl = deadline,
            #[cfg(all(feature = "poll", feature = "callback"))]
            StrategyConfig::Hybrid(hybrid) => {
                hybrid.callback.job_ttl = deadline;
                hybrid.polling.deadline = Some(deadline);
            }
        }
        self
    }
}

/// How often to poll, as configuration.
#[cfg(feature = "poll")]
#[cfg_attr(docsrs, doc(cfg(feature = "poll")))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum PolicySetting {
    /// [`PollPolicy::Adaptive`] with its defaults: fewest requests whenever the service reports
    /// progress.
    #[default]
    Adaptive,
    /// [`PollPolicy::Fixed`].
    Fixed {
        /// Seconds between polls.
        #[serde(rename = "interval_secs", with = "secs")]
        interval: Duration,
    },
    /// [`PollPolicy::Exponential`].
    Exponential {
        /// The first interval, seconds.
        #[serde(rename = "initial_secs", with = "secs")]
        initial: Duration,
        /// Growth per poll.
        factor: f64,
        /// The largest interval, seconds.
        #[serde(rename = "max_secs", with = "secs")]
        max: Duration,
    },
}

#[cfg(feature = "poll")]
impl PolicySetting {
    fn policy(&self) -> PollPolicy {
        match self {
            PolicySetting::Adaptive => PollPolicy::default(),
            PolicySetting::Fixed { interval } => PollPolicy::Fixed(*interval),
            PolicySetting::Exponential { initial, factor, max } => PollPolicy::Exponential {
                initial: *initial,
                factor: *factor,
                max: *max,
            },
        }
    }
}

/// Polling, as configuration.
#[cfg(feature = "poll")]
#[cfg_attr(docsrs, doc(cfg(feature = "poll")))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PollingSettings {
    /// How polls are spaced (default adaptive).
    pub policy: PolicySetting,
    /// Status requests per second for this process (default 16: 80 % of the service's 20).
    /// At the default the poller draws from the client's own status budget
    /// ([`ClientBuilder::status_budget`](crate::ClientBuilder::status_budget)), so one budget
    /// paces every status request — a budget shared by several processes (Redis) included;
    /// any other value gives the poller a budget of its own at that rate.
    pub requests_per_second: f64,
    /// Give up waiting after this many seconds (default: never).
    #[serde(rename = "deadline_secs", with = "secs_opt")]
    pub deadline: Option<Duration>,
}

#[cfg(feature = "poll")]
impl Default for PollingSettings {
    fn default() -> Self {
        PollingSettings {
            policy: PolicySetting::Adaptive,
            requests_per_second: 16.0,
            deadline: None,
        }
    }
}

#[cfg(feature = "poll")]
impl PollingSettings {
    fn validate(&self) -> Result<(), StrategyError> {
        let rate = self.requests_per_second;
        if !(rate.is_finite() && rate > 0.0) {
            return Err(StrategyError::Invalid(format!(
                "requests_per_second must be a positive number, not {rate}"
            )));
        }
        if let PolicySetting::Exponential { factor, .. } = self.policy {
            if !(factor.is_finite() && factor >= 1.0) {
                return Err(StrategyError::Invalid(format!(
                    "an exponential policy's factor must be at least 1, not {factor}"
                )));
            }
        }
        Ok(())
    }

    pub(crate) fn build(&self, client: &crate::Client) -> Result<PollingDelivery, StrategyError> {
        self.validate()?;
        let default_rate = PollingSettings::default().requests_per_second;
        let budget: std::sync::Arc<dyn daglo_poll::RateBudget> = if self.requests_per_second == default_rate {
            client.status_budget()
        } else {
            std::sync::Arc::new(TokenBucket::new(self.requests_per_second, 2))
        };
        let config = PollingConfig::default()
            .policy(self.policy.policy())
            .budget(budget)
            .deadline(self.deadline);
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
    /// Where the receiver listens (`127.0.0.1:0` picks a free loopback port).
    pub listen: SocketAddr,
    /// The URL the service is told to call, before the job key: your https endpoint behind a
    /// proxy. Leave it out only when the service runs on this machine (the emulator): the
    /// receiver's own address is used, with [`path`](CallbackSettings::path).
    #[serde(default)]
    pub public_url: Option<String>,
    /// The path under the receiver's own address when there is no public URL (default `/daglo`).
    #[serde(default = "default_path")]
    pub path: String,
    /// How long a job may wait for its final callback, seconds (default 6 hours).
    #[serde(rename = "job_ttl_secs", with = "secs", default = "default_ttl")]
    pub job_ttl: Duration,
    /// At most this many connections at once (default 1024).
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// The largest accepted callback body, bytes (default 16 MiB).
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
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
    Duration::from_secs(6 * 3600)
}

#[cfg(feature = "callback")]
impl std::fmt::Debug for CallbackSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackSettings")
            .field("listen", &self.listen)
            .field("public_url", &self.public_url)
            .field("job_ttl", &self.job_ttl)
            .field("key_secret_env", &self.key_secret_env)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "callback")]
impl CallbackSettings {
    /// A receiver on `listen`, called at `public_url` (or at its own address when `None`).
    pub fn new(listen: SocketAddr, public_url: Option<String>) -> Self {
        CallbackSettings {
            listen,
            public_url,
            path: default_path(),
            job_ttl: default_ttl(),
            max_connections: None,
            max_body_bytes: None,
            key_secret_env: None,
        }
    }

    /// A receiver on a free loopback port that the service calls directly: for the emulator
    /// (`daglo::sim`) and tests, never for the real service.
    pub fn loopback() -> Self {
        CallbackSettings::new(SocketAddr::from(([127, 0, 0, 1], 0)), None)
    }

    /// Binds the listener, builds the delivery and starts its receiver.
    pub(crate) async fn start(
        &self,
        client: &crate::Client,
    ) -> Result<(CallbackDelivery, CallbackServer), StrategyError> {
        let listener = tokio::net::TcpListener::bind(self.listen)
            .await
            .map_err(|source| StrategyError::Bind {
                addr: self.listen,
                source,
            })?;
        let public_url = match &self.public_url {
            Some(url) => url.clone(),
            None => {
                let bound = listener.local_addr().map_err(|source| StrategyError::Bind {
                    addr: self.listen,
                    source,
                })?;
                format!("http://{bound}/{}", self.path.trim_start_matches('/'))
            }
        };
        let mut config = CallbackConfig::new(&public_url)?.job_ttl(self.job_ttl);
        if let Some(max) = self.max_connections {
            config = config.max_connections(max);
        }
        if let Some(max) = self.max_body_bytes {
            config = config.max_body_bytes(max);
        }
        if let Some(variable) = &self.key_secret_env {
            let secret = std::env::var(variable).map_err(|_| {
                StrategyError::Invalid(format!(
                    "key_secret_env names `{variable}`, which is not set in the environment"
                ))
            })?;
            config = config.key_secret(Secret::new(secret));
        }
        let delivery = CallbackDelivery::new(client.clone(), config)?;
        let server = delivery.serve(listener)?;
        Ok((delivery, server))
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
    /// The safety net (default: exponential from 30 s, doubling, at most 5 minutes).
    #[serde(default = "sparse_polling")]
    pub polling: PollingSettings,
    /// Seconds to wait for a final callback before polling too (default 120). Set it a little
    /// above the processing time you expect.
    #[serde(rename = "window_secs", with = "secs", default = "default_window")]
    pub window: Duration,
}

#[cfg(all(feature = "poll", feature = "callback"))]
fn sparse_polling() -> PollingSettings {
    PollingSettings {
        policy: PolicySetting::Exponential {
            initial: Duration::from_secs(30),
            factor: 2.0,
            max: Duration::from_secs(300),
        },
        ..PollingSettings::default()
    }
}

#[cfg(all(feature = "poll", feature = "callback"))]
fn default_window() -> Duration {
    Duration::from_secs(120)
}

#[cfg(all(feature = "poll", feature = "callback"))]
impl HybridSettings {
    /// Callbacks through `callback`, the default sparse safety net and window.
    pub fn new(callback: CallbackSettings) -> Self {
        HybridSettings {
            callback,
            polling: sparse_polling(),
            window: default_window(),
        }
    }
}

/// Why a strategy could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StrategyError {
    /// A setting is out of range or refers to something missing.
    #[error("invalid strategy configuration: {0}")]
    Invalid(String),
    /// The receiver could not listen where it was told to.
    #[error("the callback receiver cannot listen on {addr}: {source}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The callback settings were refused.
    #[cfg(feature = "callback")]
    #[cfg_attr(docsrs, doc(cfg(feature = "callback")))]
    #[error(transparent)]
    Callback(#[from] CallbackError),
}

/// Durations as a number of seconds.
mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(value.as_secs_f64())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let seconds = f64::deserialize(deserializer)?;
        Duration::try_from_secs_f64(seconds).map_err(|_| {
            serde::de::Error::custom(format!(
                "expected a non-negative number of seconds, got {seconds}"
            ))
        })
    }
}

/// Optional durations as a number of seconds (absent or `null`: none).
#[cfg(feature = "poll")]
mod secs_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(duration) => super::secs::serialize(duration, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        struct Seconds(#[serde(with = "super::secs")] Duration);
        Ok(Option::<Seconds>::deserialize(deserializer)?.map(|Seconds(d)| d))
    }
}
