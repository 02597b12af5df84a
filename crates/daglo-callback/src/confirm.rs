//! Confirming a final callback with the service: the callback is a trigger, the service's own
//! answer is the result.

use std::time::Duration;

use daglo_client::{Client, ErrorKind};
use daglo_core::{DeliveryError, Outcome, Rid};
use tokio::sync::Mutex;
use tokio::time::Instant;
use tracing::{debug, warn};

/// The first wait before asking again; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Consecutive transport or server failures tolerated (about two minutes of backoff) before the
/// wait ends with the error and the rid, to be resumed later.
const MAX_FAILURES: u32 = 8;

/// Spaces confirmation requests evenly, so a thousand jobs finishing together do not meet the
/// service's 20 requests/s limit as one burst: each request takes the next free slot.
#[derive(Debug)]
pub(crate) struct Pacer {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    pub(crate) fn new(per_second: f64) -> Self {
        let per_second = if per_second.is_finite() && per_second > 0.0 {
            per_second
        } else {
            16.0
        };
        Pacer {
            interval: Duration::from_secs_f64(1.0 / per_second),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Waits for this request's slot.
    async fn slot(&self) {
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(Instant::now());
            *next = at + self.interval;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// What the service says of a job whose final callback arrived: its outcome, asking again with
/// backoff while it still reports the job running (a forged final, or a service that lags its
/// own callback) or answers `429`, until `deadline` (`Ok(None)`). A refused token, an unknown
/// rid, or [`MAX_FAILURES`] transport or server failures in a row end it with the typed error.
pub(crate) async fn confirm(
    client: &Client,
    pacer: &Pacer,
    rid: &Rid,
    deadline: Instant,
) -> Result<Option<Outcome>, DeliveryError> {
    let mut backoff = FIRST_BACKOFF;
    let mut warned = false;
    let mut failures = 0;
    loop {
        let attempt = async {
            pacer.slot().await;
            client.status_once(rid).await
        };
        let Ok(answer) = tokio::time::timeout_at(deadline, attempt).await else {
            return Ok(None);
        };
        match answer {
            Ok(answer) => {
                failures = 0;
                if let Some(outcome) = answer.outcome(rid) {
                    return Ok(Some(outcome));
                }
                if !warned {
                    warned = true;
                    warn!(%rid, "a final callback the service does not confirm (yet); asking until it does");
                }
            }
            Err(error) => match error.kind() {
                ErrorKind::RateLimited => debug!(%rid, "confirming a final callback: 429; slowing down"),
                ErrorKind::Transient | ErrorKind::Malformed if failures + 1 < MAX_FAILURES => {
                    failures += 1;
                    debug!(%rid, %error, failures, "confirming a final callback failed; asking again");
                }
                _ => return Err(std::sync::Arc::new(error).into_delivery_error(rid)),
            },
        }
        if tokio::time::timeout_at(deadline, tokio::time::sleep(backoff))
            .await
            .is_err()
        {
            return Ok(None);
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
