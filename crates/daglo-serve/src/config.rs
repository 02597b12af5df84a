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
#[derive(Clone, PartialEq, Eq, Deserialize)]
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

/// The service's configuration (`daglo.toml`; see `docs/serve.md`, and `examples/daglo.toml`
/// for every key at its default).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Where the API and Daglo's callbacks are served (default `127.0.0.1:8080`: this host
    /// only; `0.0.0.0:8080` to serve others, as in a container).
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
    /// The keys callers send as `Authorization: Bearer <key>`: the keys of the tenant named
    /// `default` (the only tenant when no `[[tenants]]` are given).
    #[serde(default)]
    pub api_keys: Vec<ApiKey>,
    /// Keys that see and act on every tenant's jobs (operators). A job they create goes to the
    /// tenant their `Daglo-Tenant` header names.
    #[serde(default)]
    pub admin_api_keys: Vec<ApiKey>,
    /// Tenants sharing this service and its Daglo account (`[[tenants]]`): each sees only its
    /// own jobs, keys, inbox and webhooks, and gets its weighted share of Daglo's submit budget.
    #[serde(default)]
    pub tenants: Vec<TenantConfig>,
    /// Delete ended jobs' data (transcript, subtitles, inbox, labels, input, journal entry) this
    /// many days after they ended (fractions allowed: `0.5` is twelve hours); none by default
    /// (kept until `DELETE /v1/jobs/{id}`).
    #[serde(default)]
    pub retention_days: Option<f64>,
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

/// One `[[tenants]]` table: a team or product sharing the service.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TenantConfig {
    /// Its name: 1 to 32 of `a-z`, `0-9`, `-`, `_` (in metrics as the `tenant` label, in job
    /// answers as `tenant`). `default` is the top-level `api_keys`' tenant.
    pub name: String,
    /// The keys its callers send as `Authorization: Bearer <key>`; at least one.
    pub api_keys: Vec<ApiKey>,
    /// Its weight in the fair sharing of Daglo's submit budget among the tenants with submits
    /// waiting (default 1; a tenant alone may use all of it).
    #[serde(default = "default_share")]
    pub share: u32,
    /// The most of its jobs submitting or running at once; one more submit is `429` with
    /// `Retry-After` (default: no limit).
    #[serde(default)]
    pub max_running: Option<usize>,
    /// Its own signed webhooks (default: the top-level `[webhook]`, if any).
    #[serde(default)]
    pub webhook: Option<WebhookConfig>,
}

fn default_share() -> u32 {
    1
}

impl TenantConfig {
    /// A tenant called `name` with these keys, a share of 1, no running limit and no webhook of
    /// its own.
    pub fn new(name: impl Into<String>, api_keys: Vec<ApiKey>) -> Self {
        Self {
            name: name.into(),
            api_keys,
            share: 1,
            max_running: None,
            webhook: None,
        }
    }
}

/// The tenant of the top-level `api_keys`.
pub const DEFAULT_TENANT: &str = "default";

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
    SocketAddr::from(([127, 0, 0, 1], 8080))
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
    /// `DAGLO_ADMIN_API_KEYS` (comma-separated), `DAGLO_RETENTION_DAYS`,
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
        if let Some(keys) = var("DAGLO_ADMIN_API_KEYS") {
            self.admin_api_keys = keys
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(ApiKey::new)
                .collect();
        }
        if let Some(days) = var("DAGLO_RETENTION_DAYS") {
            self.retention_days = Some(days)
                .filter(|d| !d.trim().is_empty())
                .map(|d| d.trim().parse())
                .transpose()
                .map_err(|e| Error::config("DAGLO_RETENTION_DAYS", format!("{e}")))?;
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
        self.validate_tenants()?;
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
            webhook.validate()?;
        }
        for tenant in &self.tenants {
            if let Some(webhook) = &tenant.webhook {
                self.checked_url("tenants.webhook.url", &webhook.url)?;
                webhook.validate()?;
            }
        }
        if let Some(days) = self.retention_days
            && !(days.is_finite() && days > 0.0 && days <= 36_500.0)
        {
            return Err(Error::config(
                "retention_days",
                "must be more than 0 and at most 36500 (or left out: keep every job)",
            ));
        }
        Ok(())
    }

    /// The tenants as configured: `default` (the top-level `api_keys`, when there are any)
    /// first, then `[[tenants]]` in order.
    pub(crate) fn all_tenants(&self) -> Vec<TenantConfig> {
        let mut all = Vec::new();
        if !self.api_keys.is_empty() {
            let mut default = TenantConfig::new(DEFAULT_TENANT, self.api_keys.clone());
            default.webhook.clone_from(&self.webhook);
            all.push(default);
        }
        for tenant in &self.tenants {
            let mut tenant = tenant.clone();
            if tenant.webhook.is_none() {
                tenant.webhook.clone_from(&self.webhook);
            }
            all.push(tenant);
        }
        all
    }

    /// Names well formed and distinct, every key long enough and used once, at least one key.
    fn validate_tenants(&self) -> Result<(), Error> {
        let mut names = std::collections::HashSet::new();
        for tenant in &self.tenants {
            let good = !tenant.name.is_empty()
                && tenant.name.len() <= 32
                && tenant
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
            if !good {
                return Err(Error::config(
                    "tenants.name",
                    format!(
                        "`{}`: 1 to 32 of a-z, 0-9, '-', '_'",
                        daglo::internal::safe(&tenant.name)
                    ),
                ));
            }
            if tenant.name == DEFAULT_TENANT && !self.api_keys.is_empty() {
                return Err(Error::config(
                    "tenants.name",
                    "`default` is the tenant of the top-level api_keys; name this one otherwise, or move those keys here",
                ));
            }
            if !names.insert(tenant.name.as_str()) {
                return Err(Error::config(
                    "tenants.name",
                    format!("`{}` is named twice", tenant.name),
                ));
            }
            if tenant.api_keys.is_empty() {
                return Err(Error::config(
                    "tenants.api_keys",
                    format!("tenant `{}` has no key", tenant.name),
                ));
            }
            if tenant.share == 0 || tenant.share > 1000 {
                return Err(Error::config(
                    "tenants.share",
                    format!("tenant `{}`: a share is 1 to 1000", tenant.name),
                ));
            }
            if tenant.max_running == Some(0) {
                return Err(Error::config(
                    "tenants.max_running",
                    format!("tenant `{}`: at least 1 (or left out: no limit)", tenant.name),
                ));
            }
        }
        let keys: Vec<&ApiKey> = self
            .api_keys
            .iter()
            .chain(&self.admin_api_keys)
            .chain(self.tenants.iter().flat_map(|t| &t.api_keys))
            .collect();
        if keys.is_empty() {
            return Err(Error::config(
                "api_keys",
                "give at least one key callers send as Bearer (api_keys, [[tenants]] or admin_api_keys)",
            ));
        }
        if keys.iter().any(|k| k.expose().len() < 16) {
            return Err(Error::config("api_keys", "a key must be at least 16 characters"));
        }
        let distinct: std::collections::HashSet<&str> = keys.iter().map(|k| k.expose()).collect();
        if distinct.len() != keys.len() {
            return Err(Error::config(
                "api_keys",
                "a key is given twice (each key belongs to one tenant, or is an admin key)",
            ));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The field names serde reads for `T`: what `deserialize_struct` is told.
    fn fields<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
        struct Recorder(&'static [&'static str]);
        #[derive(Debug)]
        struct Stop;
        impl std::fmt::Display for Stop {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("stop")
            }
        }
        impl std::error::Error for Stop {}
        impl serde::de::Error for Stop {
            fn custom<M: std::fmt::Display>(_: M) -> Self {
                Self
            }
        }
        impl<'de> serde::Deserializer<'de> for &mut Recorder {
            type Error = Stop;
            fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
                Err(Stop)
            }
            fn deserialize_struct<V: serde::de::Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Stop> {
                self.0 = fields;
                Err(Stop)
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
                bytes byte_buf option unit unit_struct newtype_struct seq tuple
                tuple_struct map enum identifier ignored_any
            }
        }
        let mut recorder = Recorder(&[]);
        let _ = T::deserialize(&mut recorder);
        recorder.0
    }

    const EXAMPLE: &str = include_str!("../../../examples/daglo.toml");
    const DOCS: &str = include_str!("../docs/serve.md");

    #[test]
    fn the_example_lists_every_key_at_the_code_s_default() {
        let example = Config::from_toml(EXAMPLE).expect("examples/daglo.toml parses");
        let defaults = Config::from_toml("").expect("the defaults");
        assert_eq!(example, defaults, "examples/daglo.toml's values are the defaults");
        let listed = |key: &str| {
            EXAMPLE.lines().any(|line| {
                let line = line.trim_start_matches('#').trim_start();
                line.strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            })
        };
        for (table, keys) in [
            ("", fields::<Config>()),
            ("limits.", fields::<Limits>()),
            ("webhook.", fields::<WebhookConfig>()),
            ("tenants.", fields::<TenantConfig>()),
        ] {
            assert!(!keys.is_empty());
            for key in keys {
                // A table (`[limits]`, `[webhook]`, `[[tenants]]`) is checked key by key.
                if matches!(*key, "limits" | "webhook" | "tenants") {
                    assert!(
                        EXAMPLE.contains(&format!("[{table}{key}]"))
                            || EXAMPLE.contains(&format!("[[{key}]]"))
                            || EXAMPLE.contains(&format!("[{key}]")),
                        "[{table}{key}] is not in examples/daglo.toml"
                    );
                    continue;
                }
                assert!(listed(key), "`{table}{key}` is not in examples/daglo.toml");
                assert!(
                    DOCS.contains(&format!("`{key}`")) || DOCS.contains(&format!("`{table}{key}`")),
                    "`{table}{key}` is not in docs/serve.md"
                );
            }
        }
    }

    #[test]
    fn tenants_are_checked_when_the_configuration_is() {
        let base = "api_keys = [\"sk-default-0123456789\"]\n";
        let bad = [
            (
                "[[tenants]]\nname = \"Sales Team\"\napi_keys = [\"sk-sales-0123456789\"]\n",
                "tenants.name",
            ),
            (
                "[[tenants]]\nname = \"default\"\napi_keys = [\"sk-sales-0123456789\"]\n",
                "tenants.name",
            ),
            ("[[tenants]]\nname = \"a\"\napi_keys = []\n", "tenants.api_keys"),
            (
                "[[tenants]]\nname = \"a\"\napi_keys = [\"sk-default-0123456789\"]\n",
                "api_keys",
            ),
            (
                "[[tenants]]\nname = \"a\"\napi_keys = [\"sk-a-0123456789abc\"]\nshare = 0\n",
                "tenants.share",
            ),
            ("retention_days = 0\n", "retention_days"),
        ];
        for (extra, key) in bad {
            let config = Config::from_toml(&format!("{base}{extra}")).unwrap();
            let error = config.validate().expect_err(extra).to_string();
            assert!(error.contains(key), "{extra}: {error}");
        }
        let good = Config::from_toml(&format!(
            "{base}admin_api_keys = [\"sk-admin-0123456789\"]\n[[tenants]]\nname = \"sales\"\napi_keys = [\"sk-sales-0123456789\"]\nshare = 3\n"
        ))
        .unwrap();
        good.validate().unwrap();
        let names: Vec<String> = good.all_tenants().into_iter().map(|t| t.name).collect();
        assert_eq!(names, ["default", "sales"]);
        let error = Config::from_toml("").unwrap().validate().unwrap_err().to_string();
        assert!(error.contains("api_keys"), "{error}");
    }
}
