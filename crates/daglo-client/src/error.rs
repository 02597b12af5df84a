//! The client's error type.

use std::path::PathBuf;

use std::sync::Arc;

use daglo_core::{BoxError, DecodeError, DeliveryError, Rid, ValidationError};

/// What a failed call means for the caller, whichever endpoint it came from. This is the one
/// place that classifies the service's answers: the poller, the facade and the CLI all branch
/// on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The token is missing, malformed or revoked (`401`).
    Unauthorized,
    /// No access, or the account's credits are exhausted (`403`).
    Forbidden,
    /// The service knows no such job (`404`).
    UnknownJob,
    /// Over the rate limit (`429`): slow down and ask again.
    RateLimited,
    /// Worth asking again later: `5xx` or a transport failure.
    Transient,
    /// An answer that does not match the contract.
    Malformed,
    /// The request itself is wrong (invalid value, unreadable file, `400`, `413`, `415`, an
    /// unexpected status): asking again unchanged will fail again.
    Rejected,
}

/// Everything a call to the service can fail with, typed by cause.
///
/// Branch on the variant (the HTTP status), never on `message`, which is the service's free
/// text. No variant ever carries the API token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request was refused before sending: a value outside the contract.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The local audio file could not be read.
    #[error("cannot read `{}`", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `400`: the service found the request malformed.
    #[error("the service rejected the request as malformed (400): {message}")]
    BadRequest {
        /// The service's text.
        message: String,
    },
    /// `401`: the token is missing, malformed or revoked.
    #[error("the service refused the API token (401): {message}")]
    Unauthorized {
        /// The service's text.
        message: String,
    },
    /// `403`: forbidden, or the account's credits are exhausted. Never retried.
    #[error("the service forbids this request (403; no access or credits exhausted): {message}")]
    Forbidden {
        /// The service's text.
        message: String,
    },
    /// `404`: the service knows no such rid.
    #[error("the service knows no such job (404): {message}")]
    NotFound {
        /// The service's text.
        message: String,
    },
    /// `413`: the upload is larger than the service accepts.
    #[error("the upload is too large for the service (413): {message}")]
    PayloadTooLarge {
        /// The service's text.
        message: String,
    },
    /// `415`: the media type (container or content type) is not accepted.
    #[error("the service does not accept this media type (415): {message}")]
    UnsupportedMediaType {
        /// The service's text.
        message: String,
    },
    /// `429`: over the rate limit (20 requests/s per endpoint), after any retries.
    #[error("rate limited by the service (429) after {attempts} attempt(s)")]
    RateLimited {
        /// How many attempts were made.
        attempts: u32,
    },
    /// `5xx`: the service failed or is overloaded, after any retries.
    #[error("the service failed ({status}) after {attempts} attempt(s): {message}")]
    Server {
        /// The HTTP status (`500`, `503`, …).
        status: u16,
        /// The service's text.
        message: String,
        /// How many attempts were made.
        attempts: u32,
    },
    /// A redirect. The Daglo API never redirects, so a `3xx` comes from something between
    /// (a proxy, a captive portal, an attacker): it is not followed, because following it would
    /// send the token, the audio and the callback credential to wherever it points.
    #[error("the service answered {status}, a redirect to {}; redirects are not followed", location.as_deref().unwrap_or("nowhere"))]
    Redirect {
        /// The HTTP status (`301`, `302`, `307`, …).
        status: u16,
        /// Where it pointed (its `Location` header, shortened).
        location: Option<String>,
    },
    /// An answer larger than it can legitimately be: reading stopped at `limit` bytes.
    #[error("the answer was larger than {limit} bytes; reading stopped there")]
    AnswerTooLarge {
        /// The limit for this kind of answer.
        limit: usize,
    },
    /// A status the contract does not list.
    #[error("unexpected answer {status} from the service: {message}")]
    UnexpectedStatus {
        /// The HTTP status.
        status: u16,
        /// The body, shortened.
        message: String,
    },
    /// The connection failed or timed out.
    ///
    /// For a submit, check [`may_have_created_job`](Error::may_have_created_job) before
    /// submitting again: the service has no idempotency, so a second submit bills a second job.
    #[error("could not reach the service{}", if *request_sent { " (the request may have arrived)" } else { "" })]
    Transport {
        /// Whether any of the request may have reached the service.
        request_sent: bool,
        /// The cause.
        #[source]
        source: BoxError,
    },
    /// A `2xx` answer whose body does not match the contract.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

impl Error {
    /// The HTTP status the service answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::BadRequest { .. } => Some(400),
            Self::Unauthorized { .. } => Some(401),
            Self::Forbidden { .. } => Some(403),
            Self::NotFound { .. } => Some(404),
            Self::PayloadTooLarge { .. } => Some(413),
            Self::UnsupportedMediaType { .. } => Some(415),
            Self::RateLimited { .. } => Some(429),
            Self::Server { status, .. } | Self::UnexpectedStatus { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// What the failure means for the caller.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Unauthorized { .. } => ErrorKind::Unauthorized,
            Self::Forbidden { .. } => ErrorKind::Forbidden,
            Self::NotFound { .. } => ErrorKind::UnknownJob,
            Self::RateLimited { .. } => ErrorKind::RateLimited,
            Self::Server { .. } | Self::Transport { .. } => ErrorKind::Transient,
            Self::Decode(_) | Self::AnswerTooLarge { .. } => ErrorKind::Malformed,
            Self::Invalid(_)
            | Self::File { .. }
            | Self::BadRequest { .. }
            | Self::PayloadTooLarge { .. }
            | Self::UnsupportedMediaType { .. }
            | Self::Redirect { .. }
            | Self::UnexpectedStatus { .. } => ErrorKind::Rejected,
        }
    }

    /// Whether asking again later may succeed: `429`, `5xx` and transport failures.
    /// `401`, `403` and `404` never are.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind(), ErrorKind::RateLimited | ErrorKind::Transient)
    }

    /// Whether the token or the account is the problem (`401`, `403`): fix the credentials or
    /// the credits; no other request will succeed either.
    pub fn is_auth(&self) -> bool {
        matches!(self.kind(), ErrorKind::Unauthorized | ErrorKind::Forbidden)
    }

    /// For a failed submit: whether the service may nevertheless have created (and billed) a
    /// job. Only what provably created nothing counts as safe: a request refused before it was
    /// sent (or an upload that stopped before its last byte), or answered `4xx`. A `5xx` or a
    /// redirect may come from something between after the service created the job, and a
    /// transport failure after sending may have lost the answer; the rid is then unknown, so
    /// look before submitting again.
    pub fn may_have_created_job(&self) -> bool {
        match self {
            Self::Transport { request_sent, .. } => *request_sent,
            Self::Server { .. } | Self::Decode(_) | Self::Redirect { .. } | Self::AnswerTooLarge { .. } => {
                true
            }
            Self::UnexpectedStatus { status, .. } => !(400..500).contains(status),
            _ => false,
        }
    }

    /// The failure as a strategy reports it while waiting for job `rid`. Shared errors (one
    /// failed poll seen by several waiters) keep the original as their source.
    pub fn into_delivery_error(self: Arc<Self>, rid: &Rid) -> DeliveryError {
        match self.kind() {
            ErrorKind::Unauthorized => DeliveryError::Unauthorized,
            ErrorKind::Forbidden => DeliveryError::Forbidden,
            ErrorKind::UnknownJob => DeliveryError::UnknownJob { rid: rid.clone() },
            _ => DeliveryError::Other {
                rid: Some(rid.clone()),
                source: Box::new(self),
            },
        }
    }

    pub(crate) fn transport(source: reqwest::Error) -> Self {
        // A connect failure means no byte of the request left this machine.
        let request_sent = !source.is_connect();
        Self::Transport {
            request_sent,
            source: Box::new(source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicates_follow_the_status() {
        assert!(Error::RateLimited { attempts: 3 }.is_retryable());
        assert!(
            Error::Server {
                status: 503,
                message: String::new(),
                attempts: 1
            }
            .is_retryable()
        );
        for never in [
            Error::Unauthorized {
                message: String::new(),
            },
            Error::Forbidden {
                message: String::new(),
            },
            Error::NotFound {
                message: String::new(),
            },
        ] {
            assert!(!never.is_retryable(), "{never}");
            assert!(!never.may_have_created_job());
        }
        for maybe_billed in [500, 502, 503, 504] {
            let error = Error::Server {
                status: maybe_billed,
                message: String::new(),
                attempts: 1,
            };
            assert!(error.may_have_created_job(), "{maybe_billed}");
        }
        assert!(
            Error::Forbidden {
                message: String::new()
            }
            .is_auth()
        );
        assert_eq!(
            Error::Forbidden {
                message: String::new()
            }
            .status(),
            Some(403)
        );
    }
}
