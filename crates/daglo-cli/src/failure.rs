//! How a command fails: the exit status it maps to, and the message, with its causes.

use std::error::Error;
use std::process::ExitCode;

/// Exit statuses, documented in the README.
pub(crate) mod exit {
    /// The job produced a transcript or an empty result.
    pub(crate) const OK: u8 = 0;
    /// The job failed (input_error, file_error, transcript_error).
    pub(crate) const JOB_FAILED: u8 = 1;
    /// Bad input: arguments, options, file, missing token.
    pub(crate) const USAGE: u8 = 2;
    /// Gave up waiting; the job goes on (resume it).
    pub(crate) const GAVE_UP: u8 = 3;
    /// The service or the network failed.
    pub(crate) const SERVICE: u8 = 4;
}

/// A failure with the exit status it maps to.
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            code: exit::USAGE,
            message: message.into(),
        }
    }

    pub(crate) fn service(error: &dyn Error) -> Self {
        Self {
            code: exit::SERVICE,
            message: chain(error),
        }
    }

    /// Prints the message — its control characters escaped, whatever part came from the
    /// network — and gives the exit status.
    pub(crate) fn report(self) -> ExitCode {
        eprintln!("daglo: {}", crate::terminal::escaped(&self.message));
        ExitCode::from(self.code)
    }
}

/// An error and its causes, one line (the library's one helper for it).
pub(crate) use daglo::internal::error_chain as chain;
