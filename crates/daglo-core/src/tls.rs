//! The process's rustls crypto provider, on *ring*, assembled from rustls's public parts.
//!
//! rustls 0.23.48 deprecated `rustls::crypto::ring::default_provider` (no post-quantum key
//! exchange). The provider is the same one, put together here from what rustls keeps public and
//! undeprecated — *ring*'s cipher suites, key exchange groups and key loading, webpki's *ring*
//! signature algorithms — so that no build of this project, on the lockfile it ships or on the
//! newest compatible versions, calls a deprecated function (`aws-lc-rs`, the provider rustls
//! recommends instead, is the longest step of a cold build).

use std::sync::Arc;

use rustls::SignatureScheme;
use rustls::crypto::ring as rustls_ring;
use rustls::crypto::{CryptoProvider, GetRandomFailed, KeyProvider, SecureRandom, WebPkiSupportedAlgorithms};
use rustls::pki_types::PrivateKeyDer;
use rustls::sign::SigningKey;
use webpki::ring as algs;

/// Makes *ring* the process's rustls crypto provider, unless one is installed already (a
/// provider the program installed first is kept). Cheap and idempotent.
pub fn install_crypto_provider() {
    if CryptoProvider::get_default().is_none() {
        // `Err` means another thread installed one in between: the goal either way.
        let _ = ring_provider().install_default();
    }
}

/// rustls's *ring* provider: every cipher suite and key exchange group rustls offers on *ring*,
/// in its order of preference, and webpki's *ring* signature algorithms.
pub fn ring_provider() -> CryptoProvider {
    CryptoProvider {
        cipher_suites: rustls_ring::DEFAULT_CIPHER_SUITES.to_vec(),
        kx_groups: rustls_ring::DEFAULT_KX_GROUPS.to_vec(),
        signature_verification_algorithms: SIGNATURE_ALGORITHMS,
        secure_random: &Ring,
        key_provider: &Ring,
    }
}

/// Randomness and private keys from *ring*.
#[derive(Debug)]
struct Ring;

impl SecureRandom for Ring {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), buf).map_err(|_| GetRandomFailed)
    }
}

impl KeyProvider for Ring {
    fn load_private_key(
        &self,
        key_der: PrivateKeyDer<'static>,
    ) -> Result<Arc<dyn SigningKey>, rustls::Error> {
        rustls_ring::sign::any_supported_type(&key_der)
    }
}

/// The signature algorithms webpki verifies with *ring*, and which TLS signature scheme uses
/// which (as rustls's own *ring* provider maps them).
static SIGNATURE_ALGORITHMS: WebPkiSupportedAlgorithms = WebPkiSupportedAlgorithms {
    all: &[
        algs::ECDSA_P256_SHA256,
        algs::ECDSA_P256_SHA384,
        algs::ECDSA_P384_SHA256,
        algs::ECDSA_P384_SHA384,
        algs::ED25519,
        algs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
        algs::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
        algs::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
        algs::RSA_PKCS1_2048_8192_SHA256,
        algs::RSA_PKCS1_2048_8192_SHA384,
        algs::RSA_PKCS1_2048_8192_SHA512,
        algs::RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS,
        algs::RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS,
        algs::RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS,
    ],
    mapping: &[
        // For TLS 1.2 the curve is not fixed by the scheme; for TLS 1.3 it is.
        (
            SignatureScheme::ECDSA_NISTP384_SHA384,
            &[algs::ECDSA_P384_SHA384, algs::ECDSA_P256_SHA384],
        ),
        (
            SignatureScheme::ECDSA_NISTP256_SHA256,
            &[algs::ECDSA_P256_SHA256, algs::ECDSA_P384_SHA256],
        ),
        (SignatureScheme::ED25519, &[algs::ED25519]),
        (
            SignatureScheme::RSA_PSS_SHA512,
            &[algs::RSA_PSS_2048_8192_SHA512_LEGACY_KEY],
        ),
        (
            SignatureScheme::RSA_PSS_SHA384,
            &[algs::RSA_PSS_2048_8192_SHA384_LEGACY_KEY],
        ),
        (
            SignatureScheme::RSA_PSS_SHA256,
            &[algs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY],
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA512,
            &[algs::RSA_PKCS1_2048_8192_SHA512],
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA384,
            &[algs::RSA_PKCS1_2048_8192_SHA384],
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA256,
            &[algs::RSA_PKCS1_2048_8192_SHA256],
        ),
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_provider_is_complete_and_consistent() {
        let provider = ring_provider();
        assert!(!provider.cipher_suites.is_empty());
        assert!(!provider.kx_groups.is_empty());
        // Every algorithm a scheme maps to is one the provider lists.
        for (scheme, mapped) in provider.signature_verification_algorithms.mapping {
            for alg in *mapped {
                assert!(
                    provider
                        .signature_verification_algorithms
                        .all
                        .iter()
                        .any(|a| std::ptr::addr_eq(*a, *alg)),
                    "{scheme:?}"
                );
            }
        }
        let mut bytes = [0u8; 32];
        provider.secure_random.fill(&mut bytes).unwrap();
        assert_ne!(bytes, [0u8; 32]);
        // A client configuration builds on it (rustls checks the suites against the groups).
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        drop(config);
    }
}
