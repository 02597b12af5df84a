//! Why the service could not be configured or started.

/// Why the service could not be configured or started: `Display` says what failed, `source()`
/// the cause.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is wrong: `key` names the setting.
    #[error("configuration `{key}`: {reason}")]
    Config {
        /// The setting (`listen`, `api_keys`, …; `DAGLO_*` for an environment variable).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The service could not start (the port, the data directory, the journal, Redis…).
    #[error("cannot start: {what}")]
    Start {
        /// What failed.
        what: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    pub(crate) fn config(key: &str, reason: impl Into<String>) -> Self {
        Self::Config {
            key: key.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn start(what: &str, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Start {
            what: what.to_owned(),
            source: source.into(),
        }
    }
}
