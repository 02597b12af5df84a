//! The process's TLS crypto provider.

/// Makes *ring* the process's rustls crypto provider, unless one is installed already.
///
/// reqwest is built without a provider of its own (its `rustls-no-provider` feature: the
/// `aws-lc-rs` one it would bring is the longest step of a cold build), and a
/// `reqwest::Client` built before any provider is installed panics. Every type of this
/// project that makes an HTTP client calls this first — [`ClientBuilder::build`], the
/// emulator, the callback receiver's confirmation, `daglo serve` — so a program that only
/// uses them need not. Call it yourself before building a `reqwest::Client` of your own when
/// your reqwest has no provider either; a provider your program installed first (say
/// `rustls::crypto::aws_lc_rs::default_provider().install_default()`) is kept. Cheap and
/// idempotent. The provider is rustls's *ring* one, assembled from its undeprecated parts
/// (rustls 0.23.48 deprecated `rustls::crypto::ring::default_provider`).
///
/// [`ClientBuilder::build`]: crate::ClientBuilder::build
///
/// ```
/// daglo_client::install_crypto_provider(); // or `daglo::client::install_crypto_provider()`
/// let http = reqwest::Client::new(); // no panic: a provider is installed
/// # drop(http);
/// ```
pub fn install_crypto_provider() {
    daglo_core::internal::install_crypto_provider();
}
