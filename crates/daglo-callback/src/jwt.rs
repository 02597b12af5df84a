//! HS256 JSON Web Tokens (RFC 7519), the one algorithm the JWT credential uses: made and checked
//! with the project's one crypto backend, *ring*.
//!
//! A token is `base64url(header) "." base64url(claims) "." base64url(HMAC-SHA256)` (RFC 7515,
//! compact serialisation). Checking one verifies the MAC over the first two parts in constant
//! time before any JSON is read, then that the header names `HS256` (no `none`, no other
//! algorithm), then the claims this crate needs: `jti` (the job key) and `exp` (not past;
//! no leeway).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use serde::{Deserialize, Serialize};

/// `{"alg":"HS256","typ":"JWT"}`, encoded.
const HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

#[derive(Serialize)]
struct ClaimsOut<'a> {
    jti: &'a str,
    exp: u64,
}

#[derive(Deserialize)]
struct ClaimsIn {
    jti: String,
    exp: u64,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

fn key(secret: &[u8]) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, secret)
}

/// A token for `jti` that expires at `exp` (seconds since the Unix epoch).
pub(crate) fn sign(secret: &[u8], jti: &str, exp: u64) -> Result<String, serde_json::Error> {
    let claims = serde_json::to_vec(&ClaimsOut { jti, exp })?;
    let mut token = String::with_capacity(HEADER.len() + claims.len() * 4 / 3 + 48);
    token.push_str(HEADER);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&claims, &mut token);
    let tag = hmac::sign(&key(secret), token.as_bytes());
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(tag.as_ref(), &mut token);
    Ok(token)
}

/// The header and claims parts (still encoded) of a token whose MAC `secret` made over them,
/// or `None`. Constant time in the MAC; never panics on any input.
fn signed_part<'a>(secret: &[u8], token: &'a str) -> Option<(&'a str, &'a str)> {
    let (signed, signature) = token.rsplit_once('.')?;
    let (header, claims) = signed.split_once('.')?;
    if claims.contains('.') {
        return None;
    }
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    hmac::verify(&key(secret), signed.as_bytes(), &signature).ok()?;
    Some((header, claims))
}

/// The `jti` of a token `secret` signed with HS256 whose `exp` is not before `now`; `None` for
/// anything else.
pub(crate) fn verify(secret: &[u8], token: &str, now: u64) -> Option<String> {
    let (header, claims) = signed_part(secret, token)?;
    let header: Header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    if header.alg != "HS256" {
        return None;
    }
    let claims: ClaimsIn = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).ok()?).ok()?;
    (claims.exp >= now).then_some(claims.jti)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7515, appendix A.1: the HS256 example, key and token as published.
    #[test]
    fn the_rfc_example_verifies_and_a_changed_byte_does_not() {
        let key = URL_SAFE_NO_PAD
            .decode("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
            .unwrap();
        let token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9\
            .eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ\
            .dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(signed_part(&key, token).is_some());
        let mut forged = token.to_owned();
        let at = token.find('.').unwrap() + 5;
        let changed = if &forged[at..=at] == "A" { "B" } else { "A" };
        forged.replace_range(at..=at, changed);
        assert!(signed_part(&key, &forged).is_none());
        assert!(signed_part(b"another key", token).is_none());
        // Signed, but not this crate's claims (no `jti`): refused.
        assert_eq!(verify(&key, token, 0), None);
    }

    #[test]
    fn a_token_reads_back_until_it_expires() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let token = sign(secret, "the-key", 1_000).unwrap();
        assert!(token.starts_with(HEADER));
        assert_eq!(verify(secret, &token, 999).as_deref(), Some("the-key"));
        assert_eq!(verify(secret, &token, 1_000).as_deref(), Some("the-key"));
        assert_eq!(verify(secret, &token, 1_001), None);
        assert_eq!(verify(b"another secret", &token, 0), None);
    }

    #[test]
    fn other_algorithms_and_malformed_tokens_are_refused() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let claims = URL_SAFE_NO_PAD.encode(br#"{"jti":"k","exp":99999999999}"#);
        // `alg: none` with an empty signature, and an HS512 header signed with the right key.
        let none = format!("{}.{claims}.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#));
        assert_eq!(verify(secret, &none, 0), None);
        let other = format!("{}.{claims}", URL_SAFE_NO_PAD.encode(br#"{"alg":"HS512"}"#));
        let tag = hmac::sign(&key(secret), other.as_bytes());
        let other = format!("{other}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
        assert_eq!(verify(secret, &other, 0), None);
        let good = sign(secret, "k", 99_999_999_999).unwrap();
        for bad in [
            String::new(),
            ".".to_owned(),
            "..".to_owned(),
            format!("{good}.x"),
            format!("{good}="),
            good.replacen('.', "..", 1),
            "\u{1F600}.\u{1F600}.\u{1F600}".to_owned(),
        ] {
            assert_eq!(verify(secret, &bad, 0), None, "{bad:?}");
        }
        assert_eq!(verify(secret, &good, 0).as_deref(), Some("k"));
    }
}
