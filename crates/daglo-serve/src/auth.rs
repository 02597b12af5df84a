//! API-key authentication as a layer: every `/v1` route answers `401` to a request without
//! `Authorization: Bearer <one of the keys>`, before its handler runs. A key belongs to one
//! tenant (or is an admin key); the request carries who called ([`Caller`]) to its handler.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use crate::config::Config;
use crate::problem::Problem;
use crate::tenants::Access;

/// The keys, as SHA-256 digests compared in constant time, each with what it may see.
#[derive(Clone)]
pub(crate) struct Keys(Arc<Vec<([u8; 32], Access)>>);

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keys({} digests)", self.0.len())
    }
}

impl Keys {
    /// Every key of `config`: each tenant's, and the admin keys.
    pub(crate) fn new(config: &Config, tenants: &crate::tenants::Tenants) -> Self {
        let mut keys = Vec::new();
        for tenant in config.all_tenants() {
            if let Some(known) = tenants.get(&tenant.name) {
                for key in &tenant.api_keys {
                    keys.push((digest(key.expose().as_bytes()), Access::Tenant(known.clone())));
                }
            }
        }
        for key in &config.admin_api_keys {
            keys.push((digest(key.expose().as_bytes()), Access::Admin));
        }
        Self(Arc::new(keys))
    }

    /// What `headers`' `Authorization: Bearer <key>` may see, if it names one of the keys.
    pub(crate) fn admit(&self, headers: &HeaderMap) -> Option<(Access, [u8; 32])> {
        let presented = digest(bearer(headers)?.as_bytes());
        // Every key compared, whatever matched: the time says nothing about which.
        let mut found = None;
        for (key, access) in self.0.iter() {
            let same: bool = subtle::ConstantTimeEq::ct_eq(key.as_slice(), presented.as_slice()).into();
            if same {
                found = Some(access.clone());
            }
        }
        found.map(|access| (access, presented))
    }
}

/// Who called: the SHA-256 digest of the API key the request carried (for what is counted per
/// key: event streams) and what that key may see (a request extension the layer sets).
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) key: [u8; 32],
    pub(crate) access: Access,
}

/// The tenant a request was made for, put on its answer so the metrics layer can label it.
#[derive(Debug, Clone)]
pub(crate) struct AnsweredFor(pub(crate) Arc<str>);

/// The layer's function: `401` unless the request carries a key.
pub(crate) async fn require_key(State(keys): State<Keys>, mut request: Request, next: Next) -> Response {
    match keys.admit(request.headers()) {
        Some((access, key)) => {
            let label = access.label();
            request.extensions_mut().insert(Caller { key, access });
            let mut answer = next.run(request).await;
            answer.extensions_mut().insert(AnsweredFor(label));
            answer
        }
        None => Problem::unauthorized().into_response(),
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
