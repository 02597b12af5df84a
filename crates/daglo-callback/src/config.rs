//! The receiver's and the delivery's settings.

use std::fmt;
use std::time::Duration;

use url::Url;

use crate::error::CallbackError;

/// What a whole result body costs in memory while it is decoded, as a multiple of its size:
/// the body, and at most [`DECODE_RATIO`](daglo_core::DECODE_RATIO) times it decoded (a body
/// that would take more is refused before it is built). Reading only a body's status costs the
/// body itself.
pub(crate) const FULL_DECODE_FACTOR: usize = 1 + daglo_core::DECODE_RATIO;
use crate::keys::Secret;

/// How the service proves a callback is the real one. Daglo signs nothing; the headers the
/// caller puts in `callback.headers` are the only proof, so each mode decides what goes there.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallbackAuth {
    /// A fresh 256-bit random token per job in `Authorization: Bearer …`; only its SHA-256
    /// digest is kept. The default, and the strongest: a token leaked from one job opens no other.
    PerJobToken,
    /// A short-lived HS256 JWT per job in `Authorization: Bearer …`, with `jti` = the job key and
    /// `exp` = now + `ttl`. Stateless to verify (any replica with the secret can), and a leaked
    /// token dies at `exp`. Choose `ttl` longer than your longest job.
    Jwt {
        /// The HMAC secret, at least 32 bytes.
        secret: Secret,
        /// How long a token is valid.
        ttl: Duration,
    },
    /// The same header on every job — for deployments that must keep one shared value (a
    /// gateway that checks it, say). Weakest: one leak opens every job until rotated.
    StaticHeader {
        /// The header name.
        name: String,
        /// Its value.
        value: Secret,
    },
}

/// How a final callback becomes the job's outcome.
///
/// Daglo signs nothing, so whoever has seen one job's callback headers (a log, a proxy, a
/// misconfigured tracing exporter) can POST a `transcribed` body with any text. By default a
/// final callback is therefore only a **trigger**: the delivery asks the service for the job
/// (`GET …/transcripts/{rid}`, authenticated with your API token) and returns what the service
/// says. That is one status request per job — still about a tenth of what polling asks — and
/// the receiver then decodes only a callback's status, progress and rid, never its transcript.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FinalCallbacks {
    /// Confirm every final callback with one authenticated `GET` of the rid (the default).
    #[default]
    Confirm,
    /// Take the final callback's body as the result, with no request to the service. Choose it
    /// only if you accept that a leaked credential lets its holder substitute the transcript.
    TrustBody,
}

/// Settings of a [`CallbackDelivery`](crate::CallbackDelivery) and its receiver.
///
/// ```
/// use std::time::Duration;
/// use daglo::callback::CallbackConfig;
///
/// let config = CallbackConfig::new("https://hooks.example.com/daglo")?
///     .max_body_bytes(32 << 20)
///     .job_ttl(Duration::from_secs(12 * 3600));
/// assert_eq!(config.public_url().as_str(), "https://hooks.example.com/daglo");
/// # Ok::<(), daglo::callback::CallbackError>(())
/// ```
#[derive(Clone)]
pub struct CallbackConfig {
    pub(crate) public_url: Url,
    pub(crate) auth: CallbackAuth,
    pub(crate) max_body_bytes: usize,
    pub(crate) job_ttl: Duration,
    pub(crate) body_timeout: Duration,
    /// What the standalone server enforces per connection.
    pub(crate) limits: crate::ConnectionLimits,
    pub(crate) max_body_memory: Option<usize>,
    pub(crate) receiver_path: Option<String>,
    pub(crate) finals: FinalCallbacks,
    pub(crate) key_secret: Option<Secret>,
}

/// The default body cap: 16 MiB, well above the several MB of a 4-hour transcript with word timings.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 << 20;
/// How long a job waits for its final callback by default: 6 hours.
pub const DEFAULT_JOB_TTL: Duration = Duration::from_secs(6 * 3600);
/// The standalone server's default connection cap: 512 (never more than the open-file limit
/// allows).
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// How long a sender may take to deliver a body by default: 10 s.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may take to send its request head by default: 10 s.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a connection may stay open by default: 30 s.
pub const DEFAULT_MAX_CONNECTION_TIME: Duration = Duration::from_secs(30);

impl CallbackConfig {
    /// Callbacks will be sent to `public_url/<job key>`: the address Daglo can reach (https,
    /// behind your proxy), which may differ from where the receiver listens.
    pub fn new(public_url: &str) -> Result<Self, CallbackError> {
        let url = Url::parse(public_url)
            .map_err(|e| CallbackError::Config(format!("public URL `{public_url}` is not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(CallbackError::Config(format!(
                "public URL `{public_url}` must be an absolute http(s) URL"
            )));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(CallbackError::Config(format!(
                "public URL `{public_url}` must not carry a query or fragment"
            )));
        }
        Ok(Self {
            public_url: url,
            auth: CallbackAuth::PerJobToken,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            job_ttl: DEFAULT_JOB_TTL,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            limits: crate::ConnectionLimits::default(),
            max_body_memory: None,
            receiver_path: None,
            finals: FinalCallbacks::Confirm,
            key_secret: None,
        })
    }

    /// The URL callbacks are sent to, before the job key.
    pub fn public_url(&self) -> &Url {
        &self.public_url
    }

    /// How callbacks are authenticated (default [`CallbackAuth::PerJobToken`]).
    #[must_use]
    pub fn auth(mut self, auth: CallbackAuth) -> Self {
        self.auth = auth;
        self
    }

    /// The largest accepted body (default [`DEFAULT_MAX_BODY_BYTES`]); reading stops as soon as
    /// it is exceeded and the answer is `413`. A body is decoded within
    /// [`DECODE_RATIO`](daglo_core::DECODE_RATIO) (4) times its size: at most 5 × this per
    /// callback being decoded, and [`max_body_memory`](CallbackConfig::max_body_memory) bounds
    /// how many are at once.
    #[must_use]
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// How long a job waits for its final callback before the waiter gives up and its
    /// registration is dropped (default [`DEFAULT_JOB_TTL`], 6 h).
    #[must_use]
    pub fn job_ttl(mut self, ttl: Duration) -> Self {
        self.job_ttl = ttl;
        self
    }

    /// How long a sender may take to deliver the body (default [`DEFAULT_BODY_TIMEOUT`], 10 s);
    /// slower ones get `408`.
    #[must_use]
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// How long a connection may take to send its request headers (default
    /// [`DEFAULT_HEADER_TIMEOUT`], 10 s). Enforced by the standalone server; a mounted receiver
    /// leaves it to the server it is mounted in (see `docs/configuration.md`).
    #[must_use]
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        self.limits = self.limits.header_timeout(timeout);
        self
    }

    /// At most this many connections at once (default [`DEFAULT_MAX_CONNECTIONS`], 512, and
    /// never more than the process's open-file limit allows); others wait in the listen backlog.
    /// Enforced by the standalone server.
    #[must_use]
    pub fn max_connections(mut self, max: usize) -> Self {
        self.limits = self.limits.max_connections(max);
        self
    }

    /// The longest a connection may stay open, whatever the peer does (standalone server only;
    /// default [`DEFAULT_MAX_CONNECTION_TIME`], 30 s). Connections are kept alive between
    /// callbacks within it; it ends peers that send slowly, never read their answers, or idle,
    /// and gives their slot back.
    #[must_use]
    pub fn max_connection_time(mut self, time: Duration) -> Self {
        self.limits = self.limits.max_connection_time(time);
        self
    }

    /// The most memory all callback bodies being read or decoded may take together (default
    /// four maximum bodies, read and — when finals are trusted — decoded: 4 × 5 ×
    /// [`max_body_bytes`](CallbackConfig::max_body_bytes)). A body declared longer than 16 KiB
    /// waits for its share within the body timeout, and one job's credential reads one such
    /// body at a time, so it never holds more than one body's share, whatever it sends. Smaller
    /// bodies (progress callbacks) draw nothing from it: each holds at most 16 KiB while it
    /// arrives and is decoded inline.
    #[must_use]
    pub fn max_body_memory(mut self, bytes: usize) -> Self {
        self.max_body_memory = Some(bytes);
        self
    }

    /// The path the receiver answers at, before the job key (default: the public URL's path).
    /// Set it when a proxy rewrites the path between the public URL and the receiver.
    #[must_use]
    pub fn receiver_path(mut self, path: impl Into<String>) -> Self {
        self.receiver_path = Some(path.into());
        self
    }

    /// How a final callback becomes the outcome (default [`FinalCallbacks::Confirm`]).
    #[must_use]
    pub fn finals(mut self, finals: FinalCallbacks) -> Self {
        self.finals = finals;
        self
    }

    /// The per-connection bounds the standalone server enforces: max connections, header
    /// timeout and connection lifetime — to serve a mounted receiver's app with
    /// [`CallbackServer::serve`](crate::CallbackServer::serve).
    pub fn connection_limits(&self) -> crate::ConnectionLimits {
        self.limits
    }

    /// The path before the job key, without a trailing `/`.
    pub(crate) fn path_prefix(&self) -> String {
        let path = self.receiver_path.as_deref().unwrap_or(self.public_url.path());
        format!("/{}", path.trim_matches('/'))
            .trim_end_matches('/')
            .to_owned()
    }

    /// The bodies' shared memory budget, in bytes: by default four maximum bodies, read and
    /// decoded.
    pub(crate) fn body_memory(&self) -> usize {
        let factor = if self.finals == FinalCallbacks::TrustBody {
            FULL_DECODE_FACTOR
        } else {
            1
        };
        self.max_body_memory
            .unwrap_or(self.max_body_bytes.saturating_mul(4 * factor))
            .max(self.max_body_bytes)
    }

    /// The secret that signs job keys (default: random per process). Give every replica behind
    /// one public URL the same secret so each recognises the others' keys.
    #[must_use]
    pub fn key_secret(mut self, secret: Secret) -> Self {
        self.key_secret = Some(secret);
        self
    }

    pub(crate) fn validate(&self) -> Result<(), CallbackError> {
        if self.max_body_bytes == 0 {
            return Err(CallbackError::Config("max_body_bytes must be above 0".to_owned()));
        }
        match &self.auth {
            CallbackAuth::Jwt { secret, .. } if secret.expose().len() < 32 => Err(CallbackError::Config(
                "the JWT secret must be at least 32 bytes".to_owned(),
            )),
            CallbackAuth::StaticHeader { name, value } => {
                let bad_name = http::HeaderName::from_bytes(name.as_bytes()).is_err();
                let bad_value = http::HeaderValue::from_str(value.expose()).is_err();
                if bad_name || bad_value || value.expose().is_empty() {
                    return Err(CallbackError::Config(format!(
                        "the static header `{}` needs a valid name and a non-empty value",
                        daglo_core::excerpt(name, 40)
                    )));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Debug for CallbackConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackConfig")
            .field("public_url", &self.public_url.as_str())
            .field("auth", &self.auth)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("job_ttl", &self.job_ttl)
            .field("body_timeout", &self.body_timeout)
            .field("limits", &self.limits)
            .field("finals", &self.finals)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_auth_mode_checks_the_body_cap() {
        let static_header = CallbackAuth::StaticHeader {
            name: "x-hook".to_owned(),
            value: Secret::new("value-1"),
        };
        for auth in [CallbackAuth::PerJobToken, static_header] {
            let config = CallbackConfig::new("https://hooks.example.com/d")
                .unwrap()
                .auth(auth.clone())
                .max_body_bytes(0);
            let error = config.validate().unwrap_err();
            assert!(error.to_string().contains("max_body_bytes"), "{auth:?}: {error}");
        }
    }
}
