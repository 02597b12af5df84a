//! The batch's circuit breaker: no further submits once the service refuses the account, the
//! journal is gone, or too many submits in a row failed on the service's side.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use daglo::TranscribeError;
use daglo::internal::lock;

use crate::failure::chain;
use crate::terminal::{escaped, safe};

/// Stops a batch from feeding a failing service: a refused token or account (`401`, `403`)
/// stops every further submit at once, as does a journal that is gone; `limit` submits in a row
/// that failed on the service's side (`5xx`, no answer: each may have created a job) stop it
/// too. Submits already under way finish; the rest are reported not submitted.
#[derive(Debug)]
pub(crate) struct Gate {
    stopped: Mutex<Option<String>>,
    /// Whether the journal is gone: each job in flight is then written down beside the output
    /// directory, so that a rerun (on a new journal) follows it instead of submitting it again.
    journal_gone: std::sync::atomic::AtomicBool,
    server_errors: AtomicU32,
    limit: u32,
}

impl Gate {
    pub(crate) fn new(limit: u32) -> Self {
        Self {
            stopped: Mutex::new(None),
            journal_gone: std::sync::atomic::AtomicBool::new(false),
            server_errors: AtomicU32::new(0),
            limit: limit.max(1),
        }
    }

    /// Why submitting stopped, if it did.
    pub(crate) fn stopped(&self) -> Option<String> {
        lock(&self.stopped).clone()
    }

    fn stop(&self, reason: String) {
        let mut stopped = lock(&self.stopped);
        if stopped.is_none() {
            eprintln!("daglo: {reason}: no further submits");
            *stopped = Some(reason);
        }
    }

    /// Learns from a start's result.
    pub(crate) fn observe(&self, started: &Result<daglo::Job, TranscribeError>) {
        match started {
            Ok(job) if job.is_new() => self.server_errors.store(0, Ordering::Relaxed),
            Err(e) if e.is_auth() => self.stop(format!(
                "the service refused the API token or the account ({})",
                safe(&chain(e))
            )),
            Err(e) if e.is_journal_gone() => self.journal_gone(e),
            Err(TranscribeError::Submit(e)) if e.may_have_created_job() => {
                let row = self.server_errors.fetch_add(1, Ordering::Relaxed) + 1;
                if row >= self.limit {
                    self.stop(format!(
                        "{row} submits in a row failed on the service's side (5xx or no answer)"
                    ));
                }
            }
            Ok(_) | Err(_) => {}
        }
    }

    /// The journal is gone (deleted, flushed): nothing stops a second submit any more.
    pub(crate) fn journal_gone(&self, error: &dyn std::error::Error) {
        self.journal_gone.store(true, Ordering::Release);
        self.stop(format!("the journal is gone: {}", escaped(&chain(error))));
    }

    /// Whether the journal turned out gone in this run.
    pub(crate) fn is_journal_gone(&self) -> bool {
        self.journal_gone.load(Ordering::Acquire)
    }
}
