//! Confirming a final callback with the service: the callback is a trigger, the service's own
//! answer is the result.

use std::time::Duration;

use daglo_client::{Client, ErrorKind};
use daglo_core::{Backoff, DeliveryError, Outcome, Rid};
use ring::rand::{SecureRandom, SystemRandom};
use tokio::time::Instant;
use tracing::{debug, warn};

/// The waits between confirmation attempts: 250 ms doubling to 30 s, full jitter.
pub(crate) const CONFIRM_BACKOFF: Backoff =
    Backoff::new(Duration::from_millis(250), 2.0, Duration::from_secs(30));

/// Consecutive transport or server failures after which a warning says the service is
/// unreachable (once); asking goes on until the deadline — an outage is not an ending.
const WARN_AFTER_FAILURES: u32 = 8;

/// A random number in `[0, 1)` for the backoff's jitter.
pub(crate) fn unit() -> f64 {
    let mut bytes = [0_u8; 8];
    if SystemRandom::new().fill(&mut bytes).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1_u64 << 53) as f64
}

/// What the service says of a job whose final callback arrived: its outcome, asking again with
/// [`CONFIRM_BACKOFF`] while it still reports the job running (a forged final, or a service that lags its
/// own callback), answers `429`, or cannot be reached (a transport failure, a `5xx`, an
/// unreadable answer: an outage is not an ending), until `deadline` (`Ok(None)`). Only a
/// refused token or an unknown rid end it early, with the typed error.
pub(crate) async fn confirm(
    client: &Client,
    rid: &Rid,
    deadline: Instant,
) -> Result<Option<Outcome>, DeliveryError> {
    let mut warned = false;
    let mut failures = 0;
    let mut attempt = 0;
    loop {
        attempt += 1;
        // Paced by the client's status budget, the one every status request of the process
        // draws from; a 429 here slows polling too.
        let Ok(answer) = tokio::time::timeout_at(deadline, client.status_paced(rid)).await else {
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
                ErrorKind::Transient | ErrorKind::Malformed => {
                    failures += 1;
                    if failures == WARN_AFTER_FAILURES {
                        warn!(%rid, %error, failures, "the service is unreachable while confirming a final callback; asking until the job's deadline");
                    } else {
                        debug!(%rid, %error, failures, "confirming a final callback failed; asking again");
                    }
                }
                _ => return Err(std::sync::Arc::new(error).into_delivery_error(rid)),
            },
        }
        let wait = CONFIRM_BACKOFF.delay(attempt, unit());
        if tokio::time::timeout_at(deadline, tokio::time::sleep(wait))
            .await
            .is_err()
        {
            return Ok(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Daglo unreachable (every connection refused) far longer than the old eight failures
    /// (about 30 s of backoff): confirming goes on until the job's deadline and ends there with
    /// "not confirmed yet" (`Ok(None)`), never with an error that would end the job.
    #[tokio::test(start_paused = true)]
    async fn an_outage_is_asked_through_until_the_deadline_not_given_up_on() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let client = Client::builder().token("t").base_url(base).build().unwrap();
        let started = Instant::now();
        let deadline = started + Duration::from_secs(300);
        let confirmed = tokio::time::timeout(
            Duration::from_secs(600),
            confirm(&client, &Rid::new("r1"), deadline),
        )
        .await
        .expect("ends by the deadline");
        assert!(
            confirmed.is_ok_and(|o| o.is_none()),
            "not an error: the job keeps running"
        );
        assert!(
            started.elapsed() >= Duration::from_secs(299),
            "asked until the deadline"
        );
    }
}
