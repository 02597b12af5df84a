//! The crate's error type.

/// What can go wrong setting up or running callback delivery.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// The configuration is unusable; the message names the setting.
    #[error("invalid callback configuration: {0}")]
    Config(String),
    /// The operating system's random source failed: no credential can be minted.
    #[error("the system random source failed; no credential can be minted")]
    Randomness,
    /// Serving failed.
    #[error("the callback receiver failed")]
    Serve(#[source] std::io::Error),
}
