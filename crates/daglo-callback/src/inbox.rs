//! The inbox: every callback the receiver took in, written down before it is answered, and
//! replayed through the same checks and state machine on demand.

use std::fmt;
use std::time::SystemTime;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::registry::RegistryError;

/// The most of a callback body an inbox entry keeps by default (64 KiB): enough for every
/// progress body and most finals; a longer body is cut and marked
/// [`truncated`](InboxEntry::truncated).
pub const DEFAULT_INBOX_BODY_BYTES: usize = 64 << 10;

/// One callback as the receiver took it in: what arrived (the body, cut at the inbox's cap) and
/// how it was answered. It never holds the callback's credential (no header is kept) — only the
/// job key from the URL path, which is no credential by itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InboxEntry {
    /// The job key from the callback URL: which job it was for.
    pub job_key: String,
    /// When it arrived (RFC 3339, UTC).
    pub received_at: String,
    /// The body's status, when it could be read.
    pub status: Option<String>,
    /// The body's percent, when it said.
    pub progress: Option<u32>,
    /// The body's rid, when it said.
    pub rid: Option<String>,
    /// The HTTP status of the answer.
    pub answer_code: u16,
    /// What the answer said: `accepted`, `duplicate`, `stale`, `ignored`, `rid mismatch`,
    /// `malformed`.
    pub answer: String,
    /// The body as it arrived (UTF-8), up to the inbox's cap.
    pub body: String,
    /// The body's whole length in bytes.
    pub body_bytes: usize,
    /// Whether [`body`](Self::body) was cut: a cut final is replayed only where finals are
    /// confirmed with the service.
    pub truncated: bool,
}

impl InboxEntry {
    /// An entry for a callback to `job_key` that arrived now with `body` (cut at `cap` bytes, on
    /// a character boundary), answered `answer_code` / `answer`.
    pub fn new(job_key: &str, body: &[u8], cap: usize, answer_code: u16, answer: &str) -> Self {
        let text = String::from_utf8_lossy(body);
        let mut cut = text.len().min(cap);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        Self {
            job_key: job_key.to_owned(),
            received_at: daglo_core::rfc3339::format(SystemTime::now()),
            status: None,
            progress: None,
            rid: None,
            answer_code,
            answer: answer.to_owned(),
            body: text[..cut].to_owned(),
            body_bytes: body.len(),
            truncated: cut < text.len(),
        }
    }
}

/// Where the receiver writes each callback down before answering it (see
/// [`CallbackReceiver::with_inbox`](crate::CallbackReceiver::with_inbox)). A failed write is
/// answered `503` with `Retry-After`, so the sender tries again: no callback is answered `200`
/// without a record.
#[async_trait]
pub trait CallbackInbox: Send + Sync + fmt::Debug + 'static {
    /// Writes `entry` down, durably, before the callback is answered.
    async fn record(&self, entry: InboxEntry) -> Result<(), RegistryError>;
}

/// Why a replay applied nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The key is not one this receiver minted.
    #[error("the job key is not one of this receiver's")]
    UnknownKey,
    /// The stored body cannot be read as a callback.
    #[error("the stored body is not a callback: {0}")]
    Malformed(String),
    /// The stored body was cut, it is a final, and finals are trusted from their bodies: applying
    /// it would lose the transcript. (Where finals are confirmed, a cut final is replayed.)
    #[error("the stored final body was cut at the inbox's cap; it cannot be trusted whole")]
    Truncated,
    /// The registry could not apply it.
    #[error("the callback could not be applied")]
    Registry(#[source] RegistryError),
}
