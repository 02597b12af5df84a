//! Minting the credential a job's callbacks carry, and checking it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use http::header::AUTHORIZATION;

use crate::config::CallbackAuth;
use crate::error::CallbackError;
use crate::keys::{JobKey, KeyMint, Secret, TokenDigest, constant_time_eq};

/// The longest credential header value looked at; longer ones fail before any work.
const MAX_CREDENTIAL_BYTES: usize = 4096;

/// What a job's callbacks must carry, and what the registry keeps to check it.
pub(crate) struct Minted {
    pub(crate) header: (String, Secret),
    pub(crate) digest: Option<TokenDigest>,
}

/// Mints a job's key and its credential. A per-job token is minted first, so that the key can
/// be bound to it.
pub(crate) fn mint(auth: &CallbackAuth, mint: &KeyMint) -> Result<(JobKey, Minted), CallbackError> {
    if let CallbackAuth::PerJobToken = auth {
        let (token, digest) = mint.mint_token()?;
        let key = mint.mint_key(Some(&digest))?;
        let minted = Minted {
            header: (
                "Authorization".to_owned(),
                Secret(format!("Bearer {}", token.expose())),
            ),
            digest: Some(digest),
        };
        return Ok((key, minted));
    }
    let key = mint.mint_key(None)?;
    let minted = credential(auth, &key)?;
    Ok((key, minted))
}

/// The shared-secret credentials: a JWT for the key, or the static header.
fn credential(auth: &CallbackAuth, key: &JobKey) -> Result<Minted, CallbackError> {
    match auth {
        CallbackAuth::PerJobToken => Err(CallbackError::Config(
            "a per-job token is minted with its key".to_owned(),
        )),
        CallbackAuth::Jwt { secret, ttl } => {
            let exp = unix_now().saturating_add(ttl.as_secs().max(1));
            let token = crate::jwt::sign(secret.expose().as_bytes(), key.as_str(), exp)
                .map_err(|e| CallbackError::Config(format!("cannot sign the callback JWT: {e}")))?;
            Ok(Minted {
                header: ("Authorization".to_owned(), Secret(format!("Bearer {token}"))),
                digest: None,
            })
        }
        CallbackAuth::StaticHeader { name, value } => Ok(Minted {
            header: (name.clone(), value.clone()),
            digest: None,
        }),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// The bearer token in an `Authorization` header, bounded in length; `None` for anything else.
fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(AUTHORIZATION)?.as_bytes();
    if value.len() > MAX_CREDENTIAL_BYTES || value.len() < 7 {
        return None;
    }
    let (scheme, token) = value.split_at(7);
    scheme.eq_ignore_ascii_case(b"bearer ").then_some(token)
}

/// Whether the request carries the job's credential. `digest` is the registry's record for a
/// pending job, `None` for a gone one: a per-job token is then checked against the binding the
/// key carries, so pending and gone jobs refuse a wrong credential alike. Never panics on any
/// header value.
pub(crate) fn verify(
    auth: &CallbackAuth,
    mint: &KeyMint,
    headers: &HeaderMap,
    key: &JobKey,
    digest: Option<&TokenDigest>,
) -> bool {
    match auth {
        CallbackAuth::PerJobToken => match (bearer(headers), digest) {
            // The registry's digest is the one the key was minted with (it is looked up by the
            // key): a match is the job's token, and the key's binding need not be checked again.
            (Some(token), Some(digest)) => digest.matches(token),
            (Some(token), None) => mint.is_bound_token(key, token),
            (None, _) => false,
        },
        CallbackAuth::Jwt { secret, .. } => {
            let Some(token) = bearer(headers).and_then(|t| std::str::from_utf8(t).ok()) else {
                return false;
            };
            crate::jwt::verify(secret.expose().as_bytes(), token, unix_now())
                .is_some_and(|jti| constant_time_eq(jti.as_bytes(), key.as_str().as_bytes()))
        }
        CallbackAuth::StaticHeader { name, value } => headers
            .get(name.as_str())
            .map(|v| v.as_bytes())
            .filter(|v| v.len() <= MAX_CREDENTIAL_BYTES)
            .is_some_and(|v| constant_time_eq(v, value.expose().as_bytes())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(name: &'static str, value: &[u8]) -> HeaderMap {
        let mut map = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_bytes(value) {
            map.insert(name, value);
        }
        map
    }

    #[test]
    fn per_job_tokens_verify_only_for_their_job_pending_or_gone() {
        let keys = KeyMint::new(None).unwrap();
        let auth = CallbackAuth::PerJobToken;
        let (key, minted) = mint(&auth, &keys).unwrap();
        let (other_key, other) = mint(&auth, &keys).unwrap();
        let value = minted.header.1.expose().as_bytes().to_vec();
        let digest = minted.digest.as_ref();
        let check = |value: &[u8], key: &JobKey, digest| {
            verify(&auth, &keys, &headers("authorization", value), key, digest)
        };
        assert!(check(&value, &key, digest), "pending job, right token");
        assert!(check(&value, &key, None), "gone job, right token");
        assert!(
            !check(&value, &key, other.digest.as_ref()),
            "another job's record"
        );
        assert!(!check(&value, &other_key, None), "another job's key");
        let other_value = other.header.1.expose().as_bytes().to_vec();
        assert!(!check(&other_value, &key, None), "gone job, another job's token");
        assert!(!verify(&auth, &keys, &HeaderMap::new(), &key, digest));
        for bad in [
            &value[..value.len() - 3],
            b"Basic abc".as_slice(),
            &vec![b'x'; 1 << 20],
            b"Bearer \xff\xfe".as_slice(),
        ] {
            assert!(!check(bad, &key, digest));
            assert!(!check(bad, &key, None));
        }
    }

    #[test]
    fn jwts_check_signature_expiry_and_job() {
        let keys = KeyMint::new(None).unwrap();
        let secret = Secret::new("0123456789abcdef0123456789abcdef");
        let auth = CallbackAuth::Jwt {
            secret: secret.clone(),
            ttl: Duration::from_secs(60),
        };
        let (key, minted) = mint(&auth, &keys).unwrap();
        let (other_key, _) = mint(&auth, &keys).unwrap();
        let value = minted.header.1.expose().as_bytes().to_vec();
        assert!(verify(
            &auth,
            &keys,
            &headers("authorization", &value),
            &key,
            None
        ));
        assert!(
            !verify(&auth, &keys, &headers("authorization", &value), &other_key, None),
            "another job's token"
        );
        let expired = crate::jwt::sign(secret.expose().as_bytes(), key.as_str(), unix_now() - 10).unwrap();
        let expired = format!("Bearer {expired}");
        assert!(!verify(
            &auth,
            &keys,
            &headers("authorization", expired.as_bytes()),
            &key,
            None
        ));
        let wrong_secret = CallbackAuth::Jwt {
            secret: Secret::new("another secret of at least 32 bytes!"),
            ttl: Duration::from_secs(60),
        };
        assert!(!verify(
            &wrong_secret,
            &keys,
            &headers("authorization", &value),
            &key,
            None
        ));
    }

    #[test]
    fn static_headers_compare_exactly() {
        let auth = CallbackAuth::StaticHeader {
            name: "x-hook-key".to_owned(),
            value: Secret::new("s3cret"),
        };
        let keys = KeyMint::new(None).unwrap();
        let key = keys.mint_key(None).unwrap();
        assert!(verify(
            &auth,
            &keys,
            &headers("x-hook-key", b"s3cret"),
            &key,
            None
        ));
        assert!(!verify(
            &auth,
            &keys,
            &headers("x-hook-key", b"s3cre"),
            &key,
            None
        ));
        assert!(!verify(&auth, &keys, &headers("x-other", b"s3cret"), &key, None));
    }
}
