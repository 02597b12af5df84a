//! The service's configuration: `daglo.toml` and its `DAGLO_*` overrides.

use std::net::SocketAddr;
use std::path::PathBuf;

use daglo::StrategyConfig;
use daglo::strategy::{CallbackSettings, HybridSettings};
use serde::Deserialize;

use crate::CALLBACK_PATH;
use crate::error::Error;
use crate::webhook::{WebhookConfig, WebhookSecret};

/// How the service learns each job's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Strategy {
    /// Status requests only: no public URL needed.
    Polling,
    /// Daglo's callbacks, each final one confirmed by one status request.
    Callback,
    /// Callbacks, with sparse polling as the safety net (the default).
    #[default]
    Hybrid,
}

impl Strategy {
    /// Its name in `daglo.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Polling => "polling",
            Self::Callback => "callback",
            Self::Hybrid => "hybrid",
        }
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Strategy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "polling" => Ok(Self::Polling),
            "callback" => Ok(Self::Callback),
            "hybrid" => Ok(Self::Hybrid),
            other => Err(format!(
                "`{}` is not one of polling, callback, hybrid",
                other.escape_debug()
            )),
        }
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

    /// The key's text, for the digest the service keeps.
    pub(crate) fn expose(&self) -> &str {
        &self.0
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
pub struct Config {
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
    #[serde(default)]
    pub strategy: Strategy,
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
    /// [`DEFAULT_ACCEPT_BACKLOG`](daglo::callback::DEFAULT_ACCEPT_BACKLOG)): a burst of
    /// callbacks is queued, not refused.
    #[serde(default = "default_backlog")]
    pub accept_backlog: u32,
    /// Signed webhooks to the application (`[webhook]`; none without it).
    #[serde(default)]
    pub webhook: Option<WebhookConfig>,
    /// Start on a Redis whose data does not survive its restart (no `appendonly`, no `save`)
    /// or that may evict keys (`maxmemory-policy` other than `noeviction`). Off by default:
    /// such a Redis forgets which jobs were submitted, and a retried key is billed again. When
    /// on, every start logs a warning naming the setting.
    #[serde(default)]
    pub redis_allow_volatile: bool,
    /// Accept plain `http://` for `base_url`, `public_url` and `webhook.url` to hosts other
    /// than loopback (default off: tokens, transcripts and signed URLs would cross the network
    /// in clear text).
    #[serde(default)]
    pub allow_insecure_http: bool,
    /// How connections are shared between API callers, event streams, Daglo's callbacks and
    /// the probes (`[limits]`; every key has a default).
    #[serde(default)]
    pub limits: Limits,
}

/// `[limits]`: what each kind of traffic may hold. Connections have no fixed lifetime: an
/// upload lives while it makes progress, an event stream until its job ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct Limits {
    /// Connections open at once (default 1,024; lowered to what the open-file limit allows).
    pub max_connections: usize,
    /// Of those, how many API callers and event streams can never take: kept for Daglo's
    /// callbacks and the probes (`/healthz`, `/readyz`, `/metrics`) (default 128). An API
    /// request over its share is answered `503` with `Retry-After` at once.
    pub reserved_connections: usize,
    /// Event streams open at once, all keys together (default 512).
    pub max_streams: usize,
    /// Event streams one API key may hold open (default 64); one more is `429`.
    pub max_streams_per_key: usize,
    /// Seconds between keep-alive comments on an idle event stream (default 15).
    pub stream_keepalive_secs: u64,
    /// The slowest a request body (an upload) may arrive: at least this many bytes in every
    /// window of `upload_window_secs` (default 16,384 bytes, i.e. ~550 B/s over 30 s windows
    /// would fail; any upload at 16 KiB per 30 s or more lives as long as it needs).
    pub upload_min_bytes: u64,
    /// The window `upload_min_bytes` is measured over, in seconds (default 30).
    pub upload_window_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            reserved_connections: 128,
            max_streams: 512,
            max_streams_per_key: 64,
            stream_keepalive_secs: 15,
            upload_min_bytes: 16 * 1024,
            upload_window_secs: 30,
        }
    }
}

impl Limits {
    /// The connections API callers and streams may hold: all but the reserved ones.
    pub(crate) fn api_share(&self) -> usize {
        self.max_connections.saturating_sub(self.reserved_connections)
    }

    fn validate(&self) -> Result<(), Error> {
        if self.max_connections < 2 {
            return Err(Error::config("limits.max_connections", "must be at least 2"));
        }
        if self.reserved_connections == 0 || self.reserved_connections >= self.max_connections {
            return Err(Error::config(
                "limits.reserved_connections",
                format!(
                    "must be at least 1 and below max_connections ({})",
                    self.max_connections
                ),
            ));
        }
        if self.max_streams == 0 || self.max_streams_per_key == 0 {
            return Err(Error::config(
                "limits.max_streams",
                "max_streams and max_streams_per_key must be at least 1",
            ));
        }
        if self.stream_keepalive_secs == 0 {
            return Err(Error::config(
                "limits.stream_keepalive_secs",
                "must be at least 1",
            ));
        }
        if self.upload_window_secs == 0 {
            return Err(Error::config("limits.upload_window_secs", "must be at least 1"));
        }
        Ok(())
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 8080))
}
fn default_base_url() -> String {
    daglo::client::DEFAULT_BASE_URL.to_owned()
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("daglo-data")
}
fn default_grace() -> u64 {
    30
}
fn default_backlog() -> u32 {
    daglo::callback::DEFAULT_ACCEPT_BACKLOG
}
fn default_max_upload() -> u64 {
    daglo_core::MAX_UPLOAD_BYTES
}

impl Config {
    /// Reads a configuration from TOML text; an unknown key is an error naming it.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        toml::from_str(text).map_err(|e| {
            // The key the error is about: the start of the line its span points into.
            let key = e
                .span()
                .and_then(|span| text.get(..span.start))
                .map(|before| before.rsplit('\n').next().unwrap_or(""))
                .and_then(|line| line.split('=').next())
                .map(str::trim)
                .filter(|key| !key.is_empty() && !key.starts_with('['))
                .unwrap_or("daglo.toml");
            Error::config(key, e.message().to_owned())
        })
    }

    /// Applies the `DAGLO_*` environment overrides `var` reports: `DAGLO_LISTEN`,
    /// `DAGLO_PUBLIC_URL`, `DAGLO_BASE_URL`, `DAGLO_DATA_DIR`, `DAGLO_API_KEYS` (comma-separated),
    /// `DAGLO_STRATEGY`, `DAGLO_REDIS_URL`, `DAGLO_GRACE_SECS`, `DAGLO_MAX_UPLOAD_BYTES`,
    /// `DAGLO_ACCEPT_BACKLOG`, `DAGLO_WEBHOOK_URL` and `DAGLO_WEBHOOK_SECRET` (with a `[webhook]`
    /// table).
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), Error> {
        if let Some(listen) = var("DAGLO_LISTEN") {
            self.listen = listen
                .parse()
                .map_err(|e| Error::config("DAGLO_LISTEN", format!("{e}")))?;
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
            self.strategy = strategy
                .parse()
                .map_err(|e: String| Error::config("DAGLO_STRATEGY", e))?;
        }
        if let Some(url) = var("DAGLO_REDIS_URL") {
            self.redis_url = Some(url).filter(|u| !u.is_empty());
        }
        if let Some(secs) = var("DAGLO_GRACE_SECS") {
            self.grace_secs = secs
                .parse()
                .map_err(|e| Error::config("DAGLO_GRACE_SECS", format!("{e}")))?;
        }
        if let Some(backlog) = var("DAGLO_ACCEPT_BACKLOG") {
            self.accept_backlog = backlog
                .parse()
                .map_err(|e| Error::config("DAGLO_ACCEPT_BACKLOG", format!("{e}")))?;
        }
        if let Some(url) = var("DAGLO_WEBHOOK_URL") {
            match &mut self.webhook {
                Some(webhook) => webhook.url = url,
                None => {
                    return Err(Error::config(
                        "DAGLO_WEBHOOK_URL",
                        "set only with a `[webhook]` table (its secret belongs in the file or DAGLO_WEBHOOK_SECRET)",
                    ));
                }
            }
        }
        if let Some(secret) = var("DAGLO_WEBHOOK_SECRET") {
            let secret =
                WebhookSecret::parse(&secret).map_err(|e| Error::config("DAGLO_WEBHOOK_SECRET", e))?;
            match &mut self.webhook {
                Some(webhook) => webhook.secret = Some(secret),
                None => {
                    return Err(Error::config(
                        "DAGLO_WEBHOOK_SECRET",
                        "set only with a `[webhook]` table that names the url",
                    ));
                }
            }
        }
        if let Some(bytes) = var("DAGLO_MAX_UPLOAD_BYTES") {
            self.max_upload_bytes = bytes
                .parse()
                .map_err(|e| Error::config("DAGLO_MAX_UPLOAD_BYTES", format!("{e}")))?;
        }
        Ok(())
    }

    /// Checks what can be checked without a network: the URLs (an `http(s)` URL each; plain
    /// `http://` only to loopback unless [`allow_insecure_http`](Self::allow_insecure_http)),
    /// the limits, the keys.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        self.limits.validate()?;
        self.checked_url("base_url", &self.base_url)?;
        if let Some(public) = &self.public_url {
            let url = self.checked_url("public_url", public)?;
            if url.query().is_some() || url.fragment().is_some() {
                return Err(Error::config(
                    "public_url",
                    "must not carry a query or a fragment: callbacks go to <public_url>/daglo/<key>",
                ));
            }
            if !url.username().is_empty() || url.password().is_some() {
                return Err(Error::config("public_url", "must not carry credentials"));
            }
        }
        if let Some(webhook) = &self.webhook {
            self.checked_url("webhook.url", &webhook.url)?;
        }
        Ok(())
    }

    /// `text` as an `http(s)` URL with a host; plain `http://` only to loopback unless allowed.
    fn checked_url(&self, key: &str, text: &str) -> Result<url::Url, Error> {
        let url = url::Url::parse(text).map_err(|e| {
            Error::config(
                key,
                format!("`{}` is not a URL: {e}", daglo::internal::safe(text)),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(Error::config(
                key,
                "must be an http:// or https:// URL with a host",
            ));
        }
        if url.scheme() == "http" && !self.allow_insecure_http && !is_loopback(&url) {
            return Err(Error::config(
                key,
                format!(
                    "plain http:// to `{}`, which is not loopback: use https://, or set allow_insecure_http = true",
                    daglo::internal::safe(url.host_str().unwrap_or_default())
                ),
            ));
        }
        Ok(url)
    }

    /// The strategy these settings name, its callbacks under [`public_url`](Self::public_url).
    pub(crate) fn strategy_config(&self) -> Result<StrategyConfig, Error> {
        let callback = || -> Result<CallbackSettings, Error> {
            let public = self.public_url.as_deref().ok_or_else(|| {
                Error::config(
                    "public_url",
                    format!(
                        "the `{}` strategy needs it: how Daglo reaches this service",
                        self.strategy
                    ),
                )
            })?;
            self.checked_url("public_url", public)?;
            let mut settings = CallbackSettings::new(self.listen, None);
            settings.listen = None;
            settings.public_url = Some(format!("{}{CALLBACK_PATH}", public.trim_end_matches('/')));
            Ok(settings)
        };
        Ok(match self.strategy {
            Strategy::Polling => StrategyConfig::polling(),
            Strategy::Callback => StrategyConfig::Callback(callback()?),
            Strategy::Hybrid => StrategyConfig::Hybrid(HybridSettings::new(callback()?)),
        })
    }
}

/// Whether `url`'s host is loopback (`localhost`, `127.0.0.0/8`, `[::1]`).
fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => {
            name.eq_ignore_ascii_case("localhost") || name.to_ascii_lowercase().ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}
