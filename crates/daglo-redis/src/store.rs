//! The connection to Redis every shared piece uses, and its errors.

use std::fmt;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// Why Redis could not be used.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RedisError {
    /// The URL is not a Redis URL (`redis://host:port/db`, `rediss://…`, `unix:…`).
    #[error("invalid Redis URL: {reason}")]
    InvalidUrl {
        /// What is wrong with it (never the URL itself: it may hold a password).
        reason: String,
    },
    /// Redis did not answer, or refused the connection, within the timeouts.
    #[error("Redis at {address} is unreachable")]
    Unreachable {
        /// Host and port (no credentials).
        address: String,
        /// The cause.
        #[source]
        source: redis::RedisError,
    },
    /// A command failed or timed out.
    #[error("Redis command {command} failed")]
    Command {
        /// What was being done.
        command: &'static str,
        /// The cause.
        #[source]
        source: redis::RedisError,
    },
    /// Redis holds something this library cannot read (another program's key, a newer format).
    #[error("unreadable data in Redis at {key}: {reason}")]
    Corrupt {
        /// The Redis key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

/// How to reach Redis and how long to wait for it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedisOptions {
    /// The prefix of every key and channel (default `daglo`): processes that share state use
    /// the same one; unrelated deployments on one Redis use different ones.
    pub namespace: String,
    /// How long a connection attempt may take (default 2 s).
    pub connect_timeout: Duration,
    /// How long one command may take before it fails with [`RedisError::Command`] (default 2 s):
    /// a slow Redis becomes an error to act on, never a hang.
    pub response_timeout: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            namespace: "daglo".to_owned(),
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(2),
        }
    }
}

impl RedisOptions {
    /// These options with `namespace` as the key prefix.
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// These options with both timeouts set to `timeout`.
    #[must_use]
    pub fn timeouts(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self.response_timeout = timeout;
        self
    }
}

/// A connection to Redis, shared by the registry, the budgets and the journal of one process.
/// Cheap to clone. It reconnects on its own after Redis restarts; commands made while Redis is
/// down fail with [`RedisError`] within the response timeout.
#[derive(Clone)]
pub struct RedisStore {
    pub(crate) client: redis::Client,
    pub(crate) connection: ConnectionManager,
    pub(crate) options: RedisOptions,
    address: String,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The address only: the URL may carry a password.
        f.debug_struct("RedisStore")
            .field("address", &self.address)
            .field("namespace", &self.options.namespace)
            .finish()
    }
}

impl RedisStore {
    /// Connects to the Redis at `url` (`redis://[user:password@]host:port[/db]`) with the default
    /// options.
    pub async fn connect(url: &str) -> Result<Self, RedisError> {
        Self::connect_with(url, RedisOptions::default()).await
    }

    /// Connects to the Redis at `url` with `options`.
    pub async fn connect_with(url: &str, options: RedisOptions) -> Result<Self, RedisError> {
        let client = redis::Client::open(url).map_err(|e| RedisError::InvalidUrl {
            // The parser's words, which do not repeat the URL.
            reason: e.to_string(),
        })?;
        let address = client.get_connection_info().addr().to_string();
        let connection = open(&client, &options, &address).await?;
        Ok(Self {
            client,
            connection,
            options,
            address,
        })
    }

    /// Host and port of the Redis this store talks to.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// What this Redis keeps across its own restart, and whether it may evict keys: its
    /// `appendonly`, `save` and `maxmemory-policy` settings (`CONFIG GET`). A journal, a
    /// registry and rate budgets need both: data that survives a restart (`appendonly yes`,
    /// or RDB snapshots) and `maxmemory-policy noeviction` — otherwise Redis forgets which jobs
    /// were submitted, and a retried key is billed again.
    pub async fn durability(&self) -> Result<Durability, RedisError> {
        let mut conn = self.conn();
        let mut one = async |name: &'static str| -> Result<String, RedisError> {
            let pairs: Vec<String> = redis::cmd("CONFIG")
                .arg("GET")
                .arg(name)
                .query_async(&mut conn)
                .await
                .map_err(command("CONFIG GET"))?;
            Ok(pairs.get(1).cloned().unwrap_or_default())
        };
        Ok(Durability {
            appendonly: one("appendonly").await?.eq_ignore_ascii_case("yes"),
            save: one("save").await?,
            maxmemory_policy: one("maxmemory-policy").await?,
        })
    }

    /// The namespace's key for `parts`, joined by `:`.
    pub(crate) fn key(&self, parts: &[&str]) -> String {
        let mut key = self.options.namespace.clone();
        for part in parts {
            key.push(':');
            key.push_str(part);
        }
        key
    }

    /// A connection of its own, with this store's timeouts and reconnection (for a task that
    /// runs on a runtime of its own: a connection is driven by the runtime that opened it).
    pub(crate) async fn open_another(&self) -> Result<ConnectionManager, RedisError> {
        open(&self.client, &self.options, &self.address).await
    }

    /// A connection handle for one command (cheap: it multiplexes one connection).
    pub(crate) fn conn(&self) -> ConnectionManager {
        self.connection.clone()
    }
}

/// What a Redis keeps across its restart and whether it evicts: [`RedisStore::durability`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Durability {
    /// `appendonly yes`: every write is logged to the append-only file.
    pub appendonly: bool,
    /// `save`: the RDB snapshot schedule (`""` when off).
    pub save: String,
    /// `maxmemory-policy`: `noeviction`, or the policy by which keys are evicted under memory
    /// pressure.
    pub maxmemory_policy: String,
}

impl Durability {
    /// Whether the data survives a restart of Redis (the append-only file, or RDB snapshots).
    pub fn survives_restart(&self) -> bool {
        self.appendonly || !self.save.trim().is_empty()
    }

    /// Whether Redis may evict keys (any `maxmemory-policy` but `noeviction`).
    pub fn evicts(&self) -> bool {
        !self.maxmemory_policy.eq_ignore_ascii_case("noeviction")
    }

    /// What is wrong, each naming its setting; empty when the data is kept and nothing is
    /// evicted.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.survives_restart() {
            problems.push(
                "`appendonly no` and `save \"\"`: nothing survives a Redis restart (set `appendonly yes`)"
                    .to_owned(),
            );
        }
        if self.evicts() {
            problems.push(format!(
                "`maxmemory-policy {}`: keys may be evicted (set `maxmemory-policy noeviction`)",
                self.maxmemory_policy.escape_debug()
            ));
        }
        problems
    }
}

/// Opens a multiplexed connection that reconnects by itself, with `options`' timeouts.
async fn open(
    client: &redis::Client,
    options: &RedisOptions,
    address: &str,
) -> Result<ConnectionManager, RedisError> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(options.connect_timeout))
        .set_response_timeout(Some(options.response_timeout))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_millis(500));
    ConnectionManager::new_with_config(client.clone(), config)
        .await
        .map_err(|source| RedisError::Unreachable {
            address: address.to_owned(),
            source,
        })
}

/// Wraps a failed command.
pub(crate) fn command(command: &'static str) -> impl FnOnce(redis::RedisError) -> RedisError {
    move |source| RedisError::Command { command, source }
}
