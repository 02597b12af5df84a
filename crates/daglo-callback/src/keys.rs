//! Job keys and per-job secrets: minting, and checking them in constant time.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest::{SHA256, digest};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

use crate::error::CallbackError;

/// Random bytes in a job key.
const KEY_RANDOM: usize = 16;
/// Bytes of the key's authentication tag (the receiver minted it).
const KEY_TAG: usize = 16;
/// Bytes of the key's binding to its job's token (the token belongs to this key).
const KEY_BINDING: usize = 16;
/// The length of a key's text: 48 bytes in unpadded base64url.
pub(crate) const KEY_CHARS: usize = 64;
/// Random bytes in a per-job token: 256 bits.
const TOKEN_BYTES: usize = 32;
/// The length of a token's text.
pub(crate) const TOKEN_CHARS: usize = 43;

/// Identifies one job in its callback URL. **Not a secret**: it is in the URL Daglo calls.
///
/// A key carries a tag made with the receiver's own key-signing secret, so the receiver knows a
/// key it minted even after the job is gone — and answers callbacks for finished, dropped or
/// expired jobs without keeping anything in memory for them — while a key it never minted is
/// `404`. With per-job tokens the key is also bound to its token's digest, so the credential of
/// a gone job is still checked: a wrong one is `401` whether the job is pending or gone, and
/// the answer tells nobody which jobs are alive.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobKey(String);

impl JobKey {
    /// A key from its text, as a registry stores it. Only the receiver decides whether a key is
    /// one it minted; this does not check.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The key as it appears in the URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for JobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JobKey({})", self.0)
    }
}

/// Mints and recognises job keys and per-job tokens.
pub(crate) struct KeyMint {
    random: SystemRandom,
    tag_key: hmac::Key,
}

impl fmt::Debug for KeyMint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyMint(<secret>)")
    }
}

impl KeyMint {
    /// A mint with a fresh random key-signing secret, or the given one (share it between
    /// receiver replicas so each recognises the others' keys).
    pub(crate) fn new(secret: Option<&[u8]>) -> Result<Self, CallbackError> {
        let random = SystemRandom::new();
        let tag_key = match secret {
            Some(secret) => hmac::Key::new(hmac::HMAC_SHA256, secret),
            None => hmac::Key::generate(hmac::HMAC_SHA256, &random).map_err(|_| CallbackError::Randomness)?,
        };
        Ok(Self { random, tag_key })
    }

    fn fill(&self, bytes: &mut [u8]) -> Result<(), CallbackError> {
        self.random.fill(bytes).map_err(|_| CallbackError::Randomness)
    }

    /// A fresh key, bound to the digest of its job's token when there is one.
    pub(crate) fn mint_key(&self, token: Option<&TokenDigest>) -> Result<JobKey, CallbackError> {
        let mut raw = [0u8; KEY_RANDOM + KEY_TAG + KEY_BINDING];
        self.fill(&mut raw[..KEY_RANDOM])?;
        let random: [u8; KEY_RANDOM] = raw[..KEY_RANDOM].try_into().unwrap_or_default();
        raw[KEY_RANDOM..KEY_RANDOM + KEY_TAG].copy_from_slice(&self.tag(&random));
        raw[KEY_RANDOM + KEY_TAG..].copy_from_slice(&self.binding(&random, token));
        Ok(JobKey(URL_SAFE_NO_PAD.encode(raw)))
    }

    fn tag(&self, random: &[u8; KEY_RANDOM]) -> [u8; KEY_TAG] {
        let mut context = hmac::Context::with_key(&self.tag_key);
        context.update(b"daglo job key\0");
        context.update(random);
        let mut tag = [0u8; KEY_TAG];
        tag.copy_from_slice(&context.sign().as_ref()[..KEY_TAG]);
        tag
    }

    fn binding(&self, random: &[u8; KEY_RANDOM], token: Option<&TokenDigest>) -> [u8; KEY_BINDING] {
        let mut context = hmac::Context::with_key(&self.tag_key);
        context.update(b"daglo token binding\0");
        context.update(random);
        context.update(token.map_or(&[0u8; 32], |digest| &digest.0));
        let mut binding = [0u8; KEY_BINDING];
        binding.copy_from_slice(&context.sign().as_ref()[..KEY_BINDING]);
        binding
    }

    /// The key's bytes, if `text` has a key's shape (decoded on the stack: this runs for every
    /// request the receiver answers).
    fn decode(text: &str) -> Option<[u8; KEY_RANDOM + KEY_TAG + KEY_BINDING]> {
        if text.len() != KEY_CHARS {
            return None;
        }
        let mut raw = [0u8; KEY_RANDOM + KEY_TAG + KEY_BINDING];
        let decoded = URL_SAFE_NO_PAD.decode_slice(text, &mut raw).ok()?;
        (decoded == raw.len()).then_some(raw)
    }

    /// The key in `text` if this mint made it; checked in constant time, never panics.
    pub(crate) fn recognise(&self, text: &str) -> Option<JobKey> {
        self.minted(text).then(|| JobKey(text.to_owned()))
    }

    /// Whether this mint made the key in `text`; checked in constant time, never panics.
    pub(crate) fn minted(&self, text: &str) -> bool {
        let Some(raw) = Self::decode(text) else {
            return false;
        };
        let Ok(random) = <[u8; KEY_RANDOM]>::try_from(&raw[..KEY_RANDOM]) else {
            return false;
        };
        self.tag(&random)
            .ct_eq(&raw[KEY_RANDOM..KEY_RANDOM + KEY_TAG])
            .into()
    }

    /// Whether `presented` is the per-job token `key` was bound to — checkable after the job is
    /// gone, since the key carries the binding. Constant time; length first.
    pub(crate) fn is_bound_token(&self, key: &JobKey, presented: &[u8]) -> bool {
        if presented.len() != TOKEN_CHARS {
            return false;
        }
        let Some(raw) = Self::decode(key.as_str()) else {
            return false;
        };
        let Ok(random) = <[u8; KEY_RANDOM]>::try_from(&raw[..KEY_RANDOM]) else {
            return false;
        };
        let expected = self.binding(&random, Some(&TokenDigest::of(presented)));
        expected.ct_eq(&raw[KEY_RANDOM + KEY_TAG..]).into()
    }

    /// A fresh 256-bit token, and the digest kept to verify it (the token itself is not kept).
    pub(crate) fn mint_token(&self) -> Result<(Secret, TokenDigest), CallbackError> {
        let mut raw = [0u8; TOKEN_BYTES];
        self.fill(&mut raw)?;
        let token = URL_SAFE_NO_PAD.encode(raw);
        let digest = TokenDigest::of(token.as_bytes());
        Ok((Secret(token), digest))
    }
}

/// A secret value: never shown by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub(crate) String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself: handle with care.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// 32 bytes from the system's secure random source, as 64 hex digits: a fresh key secret.
    /// `None` if the system cannot give randomness.
    pub fn random() -> Option<Self> {
        let mut bytes = [0_u8; 32];
        SystemRandom::new().fill(&mut bytes).ok()?;
        Some(Self(bytes.iter().map(|b| format!("{b:02x}")).collect()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The SHA-256 digest of a per-job token: what the registry keeps instead of the token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    /// A digest as a registry stored it (from [`as_bytes`](TokenDigest::as_bytes)).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The digest's bytes, for a registry to store. Not the token: the token cannot be
    /// recovered from them.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub(crate) fn of(token: &[u8]) -> Self {
        let mut out = [0u8; 32];
        out.copy_from_slice(digest(&SHA256, token).as_ref());
        Self(out)
    }

    /// Whether `presented` is the token: length first, then a constant-time comparison of digests.
    pub(crate) fn matches(&self, presented: &[u8]) -> bool {
        if presented.len() != TOKEN_CHARS {
            return false;
        }
        Self::of(presented).0.ct_eq(&self.0).into()
    }
}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenDigest(..)")
    }
}

/// Compares two byte strings in constant time for equal lengths; unequal lengths fail at once.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_recognised_only_by_their_mint() {
        let mint = KeyMint::new(None).unwrap();
        let other = KeyMint::new(None).unwrap();
        let key = mint.mint_key(None).unwrap();
        assert_eq!(key.as_str().len(), KEY_CHARS);
        assert_eq!(mint.recognise(key.as_str()), Some(key.clone()));
        assert_eq!(other.recognise(key.as_str()), None);
        let mut tampered = key.as_str().to_owned();
        tampered.replace_range(0..1, if tampered.starts_with('A') { "B" } else { "A" });
        assert_eq!(mint.recognise(&tampered), None);
        for junk in [
            "",
            "short",
            &"x".repeat(KEY_CHARS),
            &"é".repeat(40),
            &"A".repeat(1 << 20),
        ] {
            assert_eq!(mint.recognise(junk), None);
        }
        // Replicas sharing a secret recognise each other's keys.
        let a = KeyMint::new(Some(b"shared secret for replicas......")).unwrap();
        let b = KeyMint::new(Some(b"shared secret for replicas......")).unwrap();
        assert!(b.recognise(a.mint_key(None).unwrap().as_str()).is_some());
    }

    #[test]
    fn a_key_checks_its_own_token_without_the_registry() {
        let mint = KeyMint::new(None).unwrap();
        let (token, digest) = mint.mint_token().unwrap();
        let (other, _) = mint.mint_token().unwrap();
        let key = mint.mint_key(Some(&digest)).unwrap();
        assert!(mint.recognise(key.as_str()).is_some());
        assert!(mint.is_bound_token(&key, token.expose().as_bytes()));
        assert!(!mint.is_bound_token(&key, other.expose().as_bytes()));
        assert!(!mint.is_bound_token(&key, b"short"));
        let unbound = mint.mint_key(None).unwrap();
        assert!(!mint.is_bound_token(&unbound, token.expose().as_bytes()));
    }

    #[test]
    fn tokens_have_256_bits_and_only_the_digest_verifies() {
        let mint = KeyMint::new(None).unwrap();
        let (token, digest) = mint.mint_token().unwrap();
        let (other, _) = mint.mint_token().unwrap();
        assert_eq!(token.expose().len(), TOKEN_CHARS);
        assert_ne!(token, other);
        assert!(digest.matches(token.expose().as_bytes()));
        assert!(!digest.matches(other.expose().as_bytes()));
        assert!(!digest.matches(&token.expose().as_bytes()[..TOKEN_CHARS - 1]));
        assert!(!digest.matches(&vec![b'a'; 1 << 20]));
        assert!(!format!("{token:?} {digest:?}").contains(token.expose()));
    }
}
