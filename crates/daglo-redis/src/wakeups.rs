//! Waking this process's waiters when any replica changes a job: one pub/sub subscription per
//! registry, fanned out to local watch channels. Every change is also stored, so a waiter that
//! subscribes late, or a subscription that was down, reads the stored state — nothing is missed.

use daglo_core::internal::lock;
use std::collections::HashMap;
use std::sync::{Mutex, Weak};
use std::time::Duration;

use daglo_callback::{JobKey, JobView};
use daglo_core::Backoff;
use futures_util::StreamExt;
use redis::AsyncCommands;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::known::{Known, STATE_NOT_PUBLISHED, parse_digest};
use crate::store::RedisStore;
use crate::stored;

/// The local waiters of one registry, by job key, with the version of the state they were last
/// given (a message older than what a waiter has is ignored).
#[derive(Default)]
pub(crate) struct Watchers {
    jobs: Mutex<HashMap<JobKey, Watched>>,
}

struct Watched {
    sender: watch::Sender<JobView>,
    version: u64,
}

impl Watchers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<JobKey, Watched>> {
        lock(&self.jobs)
    }

    /// A receiver for `key`, starting from what this process last saw of it.
    pub(crate) fn watch(&self, key: &JobKey) -> watch::Receiver<JobView> {
        self.lock()
            .entry(key.clone())
            .or_insert_with(|| Watched {
                sender: watch::Sender::new(JobView::default()),
                version: 0,
            })
            .sender
            .subscribe()
    }

    /// Gives `key`'s waiters the state at `version`, unless they have a newer one.
    pub(crate) fn update(&self, key: &JobKey, version: u64, view: JobView) {
        if let Some(watched) = self.lock().get_mut(key)
            && version > watched.version
        {
            watched.version = version;
            watched.sender.send_replace(view);
        }
    }

    /// Whether this process waits on `key` (most published changes are other replicas' jobs:
    /// they are not even decoded).
    fn watches(&self, key: &JobKey) -> bool {
        self.lock().contains_key(key)
    }

    /// Whether a waiter still listens on `key`.
    fn waited_on(&self, key: &JobKey) -> bool {
        self.lock()
            .get(key)
            .is_some_and(|watched| watched.sender.receiver_count() > 0)
    }

    /// The job is gone: its waiters' channels close.
    pub(crate) fn close(&self, key: &JobKey) {
        self.lock().remove(key);
    }

    /// Drops the channels nobody listens to any more; returns the keys still watched.
    pub(crate) fn prune(&self) -> (usize, Vec<JobKey>) {
        let mut jobs = self.lock();
        let before = jobs.len();
        jobs.retain(|_, watched| watched.sender.receiver_count() > 0);
        (before - jobs.len(), jobs.keys().cloned().collect())
    }

    fn keys(&self) -> Vec<JobKey> {
        self.lock().keys().cloned().collect()
    }
}

/// What the listener needs to read stored states after a reconnection.
pub(crate) trait StateReader: Send + Sync + 'static {
    /// The stored version and state of `key`, `None` if it is not registered.
    fn read(
        &self,
        key: &JobKey,
    ) -> impl Future<Output = Result<Option<(u64, JobView)>, crate::RedisError>> + Send;
    /// The local waiters.
    fn watchers(&self) -> &Watchers;
    /// What this process knows of every registration.
    fn known(&self) -> &Known;
}

/// Listens on `channel` for as long as `owner` lives, reconnecting with backoff; after each
/// (re)subscription it reads every watched job's stored state, so a change published while the
/// subscription was down still reaches its waiter. `ready` turns true once subscribed.
pub(crate) async fn listen<R: StateReader>(
    store: RedisStore,
    channel: String,
    owner: Weak<R>,
    ready: watch::Sender<bool>,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let subscribed = async {
            let mut pubsub = store.client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = match tokio::time::timeout(store.options.connect_timeout, subscribed).await {
            Ok(Ok(pubsub)) => pubsub,
            failed => {
                let reason = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out".to_owned(),
                };
                ready.send_replace(false);
                if let Some(reader) = owner.upgrade() {
                    reader.known().restart(false);
                }
                warn!(address = store.address(), %reason, retry_ms = backoff.as_millis() as u64, "callback wake-ups: cannot subscribe to Redis; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                if owner.strong_count() == 0 {
                    return;
                }
                continue;
            }
        };
        backoff = Duration::from_millis(50);
        let Some(reader) = owner.upgrade() else { return };
        // From here on every change reaches this process: what it learns now can be kept.
        reader.known().restart(true);
        catch_up(reader.as_ref()).await;
        drop(reader);
        ready.send_replace(true);
        info!(address = store.address(), "callback wake-ups subscribed");
        let mut messages = pubsub.into_on_message();
        while let Some(message) = messages.next().await {
            let Some(reader) = owner.upgrade() else { return };
            let Ok(payload) = message.get_payload::<String>() else {
                continue;
            };
            for key in handle(reader.watchers(), reader.known(), &payload) {
                // A watched job changed to a state too long to publish: its waiters get the
                // stored one, read beside the listener so the next message is not held up.
                let reader = reader.clone();
                tokio::spawn(async move { read_until_given(reader.as_ref(), &key).await });
            }
        }
        ready.send_replace(false);
        if let Some(reader) = owner.upgrade() {
            reader.known().restart(false);
        }
        warn!(
            address = store.address(),
            "callback wake-ups: lost the Redis subscription; reconnecting"
        );
    }
}

/// Reads the stored state of every watched job (after a gap in the subscription).
async fn catch_up<R: StateReader>(reader: &R) {
    for key in reader.watchers().keys() {
        // A failure leaves the waiter as it was; the next resubscription reads again.
        refresh(reader, &key).await;
    }
}

/// Waits between reads of a state that went by name, while Redis does not answer them.
const READ_AGAIN: Backoff = Backoff::new(Duration::from_millis(50), 2.0, Duration::from_secs(2));

/// Gives `key`'s waiters its stored state (or closes them if the job is gone); `false` if
/// Redis could not be read.
async fn refresh<R: StateReader>(reader: &R, key: &JobKey) -> bool {
    match reader.read(key).await {
        Ok(Some((version, view))) => reader.watchers().update(key, version, view),
        Ok(None) => reader.watchers().close(key),
        Err(error) => {
            debug!(%error, "reading a watched job failed");
            return false;
        }
    }
    true
}

/// [`refresh`] until it reads, for as long as somebody waits on `key`: the only word of this
/// change was its name, so no later message brings it.
async fn read_until_given<R: StateReader>(reader: &R, key: &JobKey) {
    let mut attempt = 0;
    while !refresh(reader, key).await && reader.watchers().waited_on(key) {
        attempt += 1;
        tokio::time::sleep(READ_AGAIN.cap(attempt)).await;
    }
}

/// Applies one published message: one or more records joined by newlines (a group commit
/// publishes all its changes at once), each three lines — `key\nversion\nstate` for a change
/// (`-` for a state too long to publish), `key\n0\n` for a removed job,
/// `key\nregistered\n<ttl ms> <token digest in hex, or nothing>` for a new one. Neither keys nor
/// states hold a raw newline (states are compact JSON). Returns the watched jobs whose new state
/// must be read from Redis.
fn handle(watchers: &Watchers, known: &Known, payload: &str) -> Vec<JobKey> {
    let mut unpublished = Vec::new();
    let mut lines = payload.split('\n');
    while let Some(key) = lines.next() {
        let (Some(version), Some(rest)) = (lines.next(), lines.next()) else {
            break;
        };
        if let Some(key) = handle_record(watchers, known, key, version, rest) {
            unpublished.push(key);
        }
    }
    unpublished
}

/// Applies one record of a published message; the key when it is a watched job whose state
/// was not published.
fn handle_record(watchers: &Watchers, known: &Known, key: &str, version: &str, rest: &str) -> Option<JobKey> {
    let key = JobKey::new(key);
    if version == "registered" {
        let (ttl, digest) = rest.split_once(' ').unwrap_or((rest, ""));
        let digest = if digest.is_empty() {
            Some(None)
        } else {
            parse_digest(digest).map(Some)
        };
        match (ttl.parse::<u64>(), digest) {
            (Ok(ttl), Some(digest)) => known.insert(
                known.epoch(),
                key,
                digest,
                Duration::from_millis(ttl),
                Some((1, JobView::default())),
            ),
            _ => warn!("unreadable registration published on the wake-up channel; ignored"),
        }
        return None;
    }
    match version.parse::<u64>() {
        Ok(0) => {
            known.forget(&key);
            watchers.close(&key);
        }
        Ok(version) => {
            known.published(&key, version, rest);
            // Most changes are other replicas' jobs: only watched ones are decoded now.
            if !watchers.watches(&key) {
                return None;
            }
            if rest == STATE_NOT_PUBLISHED {
                return Some(key);
            }
            match stored::decode(rest) {
                Ok(view) => watchers.update(&key, version, view),
                Err(error) => warn!(%error, "unreadable job state published on the wake-up channel; ignored"),
            }
        }
        Err(_) => {}
    }
    None
}

/// The stored version and state of a job hash, `None` if it does not exist.
pub(crate) async fn read_state(
    store: &RedisStore,
    hash: &str,
) -> Result<Option<(u64, JobView)>, crate::RedisError> {
    let (version, json): (Option<u64>, Option<String>) = store
        .conn()
        .hmget(hash, &["ver", "view"])
        .await
        .map_err(crate::store::command("HMGET job"))?;
    let (Some(version), Some(json)) = (version, json) else {
        return Ok(None);
    };
    let view = stored::decode(&json).map_err(|e| crate::RedisError::Corrupt {
        key: hash.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(Some((version, view)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use daglo_core::{Status, StatusBody};

    #[test]
    fn messages_update_in_version_order_and_removal_closes() {
        let watchers = Watchers::default();
        let known = Known::default();
        let key = JobKey::new("k");
        let mut receiver = watchers.watch(&key);
        let mut view = JobView::default();
        view.apply(StatusBody::new(Status::Transcribing));
        handle(&watchers, &known, &format!("k\n2\n{}", stored::encode(&view)));
        assert_eq!(receiver.borrow_and_update().status, Some(Status::Transcribing));
        // An older message, arriving late, changes nothing.
        handle(
            &watchers,
            &known,
            &format!("k\n1\n{}", stored::encode(&JobView::default())),
        );
        assert!(!receiver.has_changed().expect("open"));
        // Garbage is ignored, not a panic.
        handle(&watchers, &known, "k\nnot a number\n{}");
        handle(&watchers, &known, "k\n3\nnot json");
        handle(&watchers, &known, "no newline");
        handle(&watchers, &known, "k\n0\n");
        // Registrations other replicas made become known here, with their digest.
        known.restart(true);
        let digest = daglo_callback::TokenDigest::from_bytes([7; 32]);
        handle(
            &watchers,
            &known,
            &format!("r\nregistered\n60000 {}", crate::known::digest_hex(&digest)),
        );
        assert!(
            known
                .registration(&JobKey::new("r"))
                .is_some_and(|r| r.digest.is_some())
        );
        handle(&watchers, &known, "s\nregistered\n60000 ");
        assert_eq!(
            known.registration(&JobKey::new("s")).map(|r| r.digest.is_some()),
            Some(false)
        );
        handle(&watchers, &known, "t\nregistered\nsoon zz");
        assert_eq!(
            known.registration(&JobKey::new("t")).map(|r| r.digest.is_some()),
            None,
            "garbage is ignored"
        );
        handle(&watchers, &known, "r\n0\n");
        assert_eq!(
            known.registration(&JobKey::new("r")).map(|r| r.digest.is_some()),
            None,
            "removal forgets"
        );
        assert!(receiver.has_changed().is_err(), "removal closes the channel");
    }

    #[test]
    fn a_state_too_long_to_publish_is_read_for_watched_jobs_only() {
        let watchers = Watchers::default();
        let known = Known::default();
        known.restart(true);
        let (watched, other) = (JobKey::new("w"), JobKey::new("o"));
        let receiver = watchers.watch(&watched);
        for key in [&watched, &other] {
            known.insert(
                known.epoch(),
                key.clone(),
                None,
                Duration::from_secs(60),
                Some((1, JobView::default())),
            );
        }
        let unpublished = handle(
            &watchers,
            &known,
            "w
2
-
o
2
-",
        );
        assert_eq!(unpublished, vec![watched.clone()], "only the watched job is read");
        assert!(
            !receiver.has_changed().expect("open"),
            "nothing decoded from the name"
        );
        for key in [&watched, &other] {
            assert_eq!(known.state(key), None, "{key}: what was known is behind now");
            assert!(known.registration(key).is_some(), "{key}: still registered");
        }
    }

    /// A reader whose first `failures` reads fail, then answer `view` at version 7.
    struct Flaky {
        failures: std::sync::atomic::AtomicU32,
        reads: std::sync::atomic::AtomicU32,
        watchers: Watchers,
        known: Known,
        view: JobView,
    }

    impl StateReader for Flaky {
        async fn read(&self, key: &JobKey) -> Result<Option<(u64, JobView)>, crate::RedisError> {
            use std::sync::atomic::Ordering::SeqCst;
            self.reads.fetch_add(1, SeqCst);
            if self
                .failures
                .fetch_update(SeqCst, SeqCst, |left| left.checked_sub(1))
                .is_ok()
            {
                return Err(crate::RedisError::Corrupt {
                    key: key.as_str().to_owned(),
                    reason: "not now".to_owned(),
                });
            }
            Ok(Some((7, self.view.clone())))
        }

        fn watchers(&self) -> &Watchers {
            &self.watchers
        }

        fn known(&self) -> &Known {
            &self.known
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_state_sent_by_name_is_read_again_until_redis_answers_while_waited_on() {
        use std::sync::atomic::Ordering::SeqCst;
        let mut view = JobView::default();
        view.apply(StatusBody::new(Status::Transcribed));
        let reader = Flaky {
            failures: 3.into(),
            reads: 0.into(),
            watchers: Watchers::default(),
            known: Known::default(),
            view,
        };
        let key = JobKey::new("k");
        let mut receiver = reader.watchers.watch(&key);
        read_until_given(&reader, &key).await;
        assert_eq!(reader.reads.load(SeqCst), 4, "three failures, then the read");
        assert!(receiver.borrow_and_update().final_body.is_some());
        // Nobody waits any more: one failed read and it stops.
        reader.failures.store(u32::MAX, SeqCst);
        drop(receiver);
        read_until_given(&reader, &key).await;
        assert_eq!(reader.reads.load(SeqCst), 5);
    }

    #[test]
    fn a_group_commit_message_carries_every_change_in_it() {
        let watchers = Watchers::default();
        let known = Known::default();
        let (a, b) = (JobKey::new("a"), JobKey::new("b"));
        let (mut at_a, mut at_b) = (watchers.watch(&a), watchers.watch(&b));
        let mut transcribing = JobView::default();
        transcribing.apply(StatusBody::new(Status::Transcribing));
        // A state with a newline in it is still one line: compact JSON escapes it.
        let mut done = StatusBody::new(Status::Transcribed);
        done.extra
            .insert("note".to_owned(), serde_json::json!("two\nlines"));
        let mut finished = JobView::default();
        finished.apply(done);
        let (first, second) = (stored::encode(&transcribing), stored::encode(&finished));
        assert!(!second.contains('\n'));
        handle(&watchers, &known, &format!("a\n2\n{first}\nb\n5\n{second}"));
        assert_eq!(at_a.borrow_and_update().status, Some(Status::Transcribing));
        assert!(at_b.borrow_and_update().final_body.is_some());
        // A record cut short ends the message; the whole records before it still count.
        handle(&watchers, &known, &format!("a\n3\n{second}\nb\n6"));
        assert!(at_a.borrow_and_update().final_body.is_some());
        assert!(!at_b.has_changed().expect("open"));
    }
}
