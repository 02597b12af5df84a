//! The client's error type.

use std::path::PathBuf;

use daglo_core::{DecodeError, ValidationError};

/// A boxed cause from a lower layer (HTTP stack, file system).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

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
            Error::BadRequest { .. } => Some(400),
            Error::Unauthorized { .. } => Some(401),
            Error::Forbidden { .. } => Some(403),
            Error::NotFound { .. } => Some(404),
            Error::PayloadTooLarge { .. } => Some(413),
            Error::UnsupportedMediaType { .. } => Some(415),
            Error::RateLimited { .. } => Some(429),
            Error::Server { status, .. } | Error::UnexpectedStatus { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether asking again later may succeed: `429`, `5xx` and transport failures.
    /// `401`, `403` and `404` never are.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::RateLimited { .. } | Error::Server { .. } | Error::Transport { .. }
        )
    }

    /// For a failed submit: whether the service may nevertheless have created (and billed) a
    /// job. True only when the request may have reached it and no error answer came back; the
    /// rid is then unknown, so look before submitting again.
    pub fn may_have_created_job(&self) -> bool {
        matches!(
            self,
            Error::Transport {
                request_sent: true,
                ..
            } | Error::Decode(_)
        )
    }

    pub(crate) fn transport(source: reqwest::Error) -> Self {
        // A connect failure means no byte of the request left this machine.
        let request_sent = !source.is_connect();
        Error::Transport {
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
        assert_eq!(
            Error::Forbidden {
                message: String::new()
            }
            .status(),
            Some(403)
        );
    }
}
