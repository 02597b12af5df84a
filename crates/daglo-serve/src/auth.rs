//! API-key authentication as a layer: every `/v1` route answers `401` to a request without
//! `Authorization: Bearer <one of the keys>`, before its handler runs.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use crate::config::ApiKey;
use crate::problem::Problem;

/// The keys, as SHA-256 digests compared in constant time.
#[derive(Clone)]
pub(crate) struct Keys(Arc<Vec<[u8; 32]>>);

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keys({} digests)", self.0.len())
    }
}

impl Keys {
    pub(crate) fn new(keys: &[ApiKey]) -> Self {
        Self(Arc::new(
            keys.iter().map(|k| digest(k.expose().as_bytes())).collect(),
        ))
    }

    /// Whether `headers` carry `Authorization: Bearer <one of the keys>`.
    pub(crate) fn admit(&self, headers: &HeaderMap) -> bool {
        let Some(presented) = bearer(headers) else {
            return false;
        };
        let presented = digest(presented.as_bytes());
        // Every key compared, whatever matched: the time says nothing about which.
        self.0
            .iter()
            .fold(subtle::Choice::from(0), |found, key| {
                found | subtle::ConstantTimeEq::ct_eq(key.as_slice(), presented.as_slice())
            })
            .into()
    }
}

/// Who called: the SHA-256 digest of the API key the request carried (a request extension the
/// layer sets), for what is counted per key (event streams).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caller(pub(crate) [u8; 32]);

/// The layer's function: `401` unless the request carries a key.
pub(crate) async fn require_key(State(keys): State<Keys>, mut request: Request, next: Next) -> Response {
    if keys.admit(request.headers()) {
        if let Some(presented) = bearer(request.headers()) {
            let caller = Caller(digest(presented.as_bytes()));
            request.extensions_mut().insert(caller);
        }
        next.run(request).await
    } else {
        Problem::unauthorized().into_response()
    }
}

/// The `Bearer` credential of `headers`, trimmed.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
}

/// SHA-256 of `bytes`.
pub(crate) fn digest(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0_u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    out
}
