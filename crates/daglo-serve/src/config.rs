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
            let url = url::Url::parse(public).map_err(|e| Error::config("public_url", e.to_string()))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(Error::config("public_url", "must be an http(s) URL"));
            }
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
