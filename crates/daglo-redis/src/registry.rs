//! [`RedisRegistry`]: the callback registry shared by every receiver replica.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use daglo_callback::{Applied, JobKey, JobRegistry, JobView, Registered, RegistryError};
use daglo_core::{Rid, StatusBody};
use redis::{AsyncCommands, Script};
use tokio::sync::watch;
use tokio::task::AbortHandle;

use crate::commit::{Committer, Write, Written};
use crate::known::{Known, digest_hex, parse_digest};
use crate::store::{RedisError, RedisStore, command};
use crate::stored;
use crate::wakeups::{StateReader, Watchers, listen, read_state};

/// Compare-and-set rounds before an `apply` gives up (only a storm of writers on one job, far
/// beyond what one job's callbacks produce, gets there).
const MAX_CAS_ROUNDS: usize = 64;

/// The callback registry on Redis: several receiver replicas (the same key secret, the same
/// Redis and namespace) share every job, so a callback that lands on any replica reaches the
/// waiter on whichever replica prepared the job.
///
/// - **Atomic transitions.** Each change reads the job's state and version, applies the body
///   with [`JobView::apply`] — the very rules of the in-memory registry: forward only, terminal
///   absorbing, first final wins — and writes it back with a compare-and-set script that also
///   publishes the change. A writer that lost the race reads again, so two finals racing on two
///   replicas cannot both win.
/// - **One round trip per accepted callback.** Every replica hears of every registration and
///   change on the wake-up channel and keeps what it heard (bounded): a lookup is answered from
///   it, and the compare-and-set starts from the known state — a stale one costs a second
///   round trip, never a wrong transition. A callback that changes nothing (stale, duplicate)
///   costs one read: it is checked against the stored state. Why that stays correct is set out in
///   `docs/architecture.md` ("Redis at one round trip").
/// - **Group commit.** The compare-and-sets that queue up while earlier ones are in flight go
///   to Redis as one script call with one published message, on a connection of the
///   registry's own, from the process's one writer thread (`daglo-redis-writer`). Each
///   callback is still answered only once Redis has stored its change. A state too long to
///   publish (a final with its transcript) goes by name: the replica waiting for it reads it.
/// - **Wake-ups within milliseconds.** One pub/sub subscription per registry feeds the local
///   waiters; a waiter that subscribes late, or a subscription that dropped and came back, reads
///   the stored state, so no wake-up is lost.
/// - **Restarts.** Registrations live in Redis for the job's time to live. An abandoned wait
///   (its process stopping, its future dropped) leaves the registration in place, so a
///   restarted process resumes the job with `CallbackDelivery::resume_job` and still gets a
///   callback that arrived meanwhile.
/// - **Redis down or slow.** Every call fails with a [`RegistryError`] within the store's
///   response timeout: the receiver answers `503` (the sender retries), a waiter's `prepare` or
///   `wait` returns the error.
pub struct RedisRegistry {
    shared: Arc<Shared>,
    listener: AbortHandle,
}

struct Shared {
    store: RedisStore,
    channel: String,
    watchers: Watchers,
    /// Every registration this process heard of, with its latest state: lookups and the
    /// compare-and-set's starting point without a round trip.
    known: Known,
    ready: watch::Receiver<bool>,
    /// Every compare-and-set goes through it (a group commit).
    committer: Committer,
    remove: Script,
}

impl Drop for RedisRegistry {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl fmt::Debug for RedisRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRegistry")
            .field("store", &self.shared.store)
            .field("subscribed", &*self.shared.ready.borrow())
            .finish()
    }
}

impl StateReader for Shared {
    async fn read(&self, key: &JobKey) -> Result<Option<(u64, JobView)>, RedisError> {
        read_state(&self.store, &self.hash(key)).await
    }

    fn watchers(&self) -> &Watchers {
        &self.watchers
    }

    fn known(&self) -> &Known {
        &self.known
    }
}

impl Shared {
    fn hash(&self, key: &JobKey) -> String {
        self.store.key(&["cb", key.as_str()])
    }

    /// Changes the job with `change` — starting from its known state, else from a read — and
    /// writes it back if it changed, until no other writer came in between. `None` if the job
    /// is not registered.
    async fn update<T>(
        &self,
        key: &JobKey,
        change: impl Fn(&mut JobView) -> T,
        changed: impl Fn(&T) -> bool,
    ) -> Result<Option<T>, RegistryError> {
        let hash = self.hash(key);
        // The state to start from, and whether it is what this process knew (possibly behind
        // Redis) rather than what Redis just said.
        let mut state = self.known.state(key).map(|state| (state, true));
        for _ in 0..MAX_CAS_ROUNDS {
            let (state_now, from_known) = match state.take() {
                Some((state, from_known)) => (Some(state), from_known),
                None => (read_state(&self.store, &hash).await.map_err(unavailable)?, false),
            };
            let Some((version, mut view)) = state_now else {
                self.known.forget(key);
                return Ok(None);
            };
            let result = change(&mut view);
            if !changed(&result) {
                // Nothing to write — on the stored state, not only on a known one: the state
                // does not only move forward (`set_rid` sets aside what callbacks naming
                // another rid did), so a final that is a duplicate of a known, set-aside one
                // may be the job's real final now.
                if from_known {
                    daglo_core::telemetry::redis_registry_retry("recheck");
                    continue;
                }
                return Ok(Some(result));
            }
            let written = self
                .committer
                .write(Write {
                    hash: hash.clone(),
                    key: key.as_str().to_owned(),
                    version,
                    state: stored::encode(&view),
                })
                .await
                .map_err(unavailable)?;
            match written {
                Written::Gone => {
                    self.known.forget(key);
                    return Ok(None);
                }
                // Another writer came first: start again from what it left, which came back.
                Written::Conflict(stored_version, stored_json) => {
                    daglo_core::telemetry::redis_registry_retry("conflict");
                    let stored = stored::decode(&stored_json).map_err(|e| {
                        unavailable(RedisError::Corrupt {
                            key: hash.clone(),
                            reason: e.to_string(),
                        })
                    })?;
                    self.known.wrote(key, stored_version, &stored);
                    state = Some(((stored_version, stored), false));
                }
                Written::At(version) => {
                    self.known.wrote(key, version, &view);
                    // This process's own waiters need not wait for the message to come round.
                    self.watchers.update(key, version, view);
                    return Ok(Some(result));
                }
            }
        }
        Err(RegistryError::message(format!(
            "{MAX_CAS_ROUNDS} concurrent writers in a row changed one job"
        )))
    }
}

impl RedisRegistry {
    /// A registry on `store`, subscribed to its wake-up channel before this returns (or, if
    /// Redis does not answer within the connect timeout, retrying in the background — waiters
    /// read the stored state once it is back).
    ///
    /// # Panics
    /// Outside a Tokio runtime (it starts the subscription task).
    pub async fn new(store: RedisStore) -> Self {
        let channel = store.key(&["cb", "changes"]);
        let (ready_tx, ready) = watch::channel(false);
        let shared = Arc::new(Shared {
            channel: channel.clone(),
            watchers: Watchers::default(),
            ready,
            known: Known::default(),
            committer: Committer::start(store.clone(), channel.clone()),
            remove: Script::new(include_str!("scripts/remove_job.lua")),
            store: store.clone(),
        });
        // On the writer thread when there is one: a wake-up is read when it arrives, not when a
        // busy worker of the application's runtime next looks.
        let listening = listen(store.clone(), channel, Arc::downgrade(&shared), ready_tx);
        let listener = match shared.committer.runtime() {
            Some(runtime) => runtime.spawn(listening),
            None => tokio::spawn(listening),
        }
        .abort_handle();
        let mut ready = shared.ready.clone();
        let _ = tokio::time::timeout(store.options.connect_timeout, ready.wait_for(|ready| *ready)).await;
        Self { shared, listener }
    }

    /// Whether the wake-up subscription is up now.
    pub fn subscribed(&self) -> bool {
        *self.shared.ready.borrow()
    }
}

fn unavailable(error: RedisError) -> RegistryError {
    RegistryError::new("Redis", error)
}

/// Runs a registry operation, counting it and its time (`daglo_redis_operations_total`).
async fn counted<T, E>(work: impl std::future::Future<Output = Result<T, E>>) -> Result<T, E> {
    let started = std::time::Instant::now();
    let done = work.await;
    daglo_core::telemetry::redis_operation("registry", done.is_ok(), started.elapsed().as_secs_f64());
    done
}

#[async_trait]
impl JobRegistry for RedisRegistry {
    async fn register(
        &self,
        key: JobKey,
        registered: Registered,
        expires_at: Instant,
    ) -> Result<(), RegistryError> {
        counted(async {
            let ttl = expires_at
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
            let digest = registered.digest.as_ref().map(digest_hex).unwrap_or_default();
            let hash = self.shared.hash(&key);
            let epoch = self.shared.known.epoch();
            // Stored, and told to every replica (which then answers its callbacks without a
            // lookup), in one transaction.
            redis::pipe()
                .atomic()
                .hset_multiple(&hash, &[("reg", digest.as_str()), ("ver", "1"), ("view", "{}")])
                .ignore()
                .pexpire(&hash, i64::try_from(ttl_ms).unwrap_or(i64::MAX))
                .ignore()
                .publish(
                    &self.shared.channel,
                    format!("{}\nregistered\n{ttl_ms} {digest}", key.as_str()),
                )
                .ignore()
                .exec_async(&mut self.shared.store.conn())
                .await
                .map_err(|e| unavailable(command("register job")(e)))?;
            self.shared
                .known
                .insert(epoch, key, registered.digest, ttl, Some((1, JobView::default())));
            Ok(())
        })
        .await
    }

    async fn lookup(&self, key: &JobKey) -> Result<Option<Registered>, RegistryError> {
        counted(async {
            if let Some(registered) = self.shared.known.registration(key) {
                return Ok(Some(registered));
            }
            let hash = self.shared.hash(key);
            let epoch = self.shared.known.epoch();
            // The registration, the state and the time to live in one round trip: the apply
            // that follows starts from this state, and later callbacks need no lookup.
            let ((registered, version, json), ttl_ms): ((Option<String>, Option<u64>, Option<String>), i64) =
                redis::pipe()
                    .hmget(&hash, &["reg", "ver", "view"])
                    .pttl(&hash)
                    .query_async(&mut self.shared.store.conn())
                    .await
                    .map_err(|e| unavailable(command("HMGET registration")(e)))?;
            let Some(registered) = registered else {
                return Ok(None);
            };
            let digest = if registered.is_empty() {
                None
            } else {
                Some(parse_digest(&registered).ok_or_else(|| {
                    unavailable(RedisError::Corrupt {
                        key: hash,
                        reason: "the token digest is not 64 hex digits".to_owned(),
                    })
                })?)
            };
            let state = match (version, json.as_deref().map(stored::decode)) {
                (Some(version), Some(Ok(view))) => Some((version, view)),
                _ => None,
            };
            // A key without a time to live (set by hand) is known for a minute at a time.
            let ttl = u64::try_from(ttl_ms).map_or(Duration::from_secs(60), Duration::from_millis);
            self.shared.known.insert(epoch, key.clone(), digest, ttl, state);
            Ok(Some(Registered::new(digest)))
        })
        .await
    }

    async fn apply(&self, key: &JobKey, body: StatusBody) -> Result<Option<Applied>, RegistryError> {
        counted(async {
            self.shared
                .update(key, |view| view.apply(body.clone()), |applied| applied.changed())
                .await
        })
        .await
    }

    async fn set_rid(&self, key: &JobKey, rid: Rid) -> Result<Option<Result<(), Rid>>, RegistryError> {
        counted(async {
            self.shared
                .update(key, |view| view.set_rid(rid.clone()), |_| true)
                .await
        })
        .await
    }

    async fn subscribe(&self, key: &JobKey) -> Result<Option<watch::Receiver<JobView>>, RegistryError> {
        counted(async {
            // Watch first, then read: a change published in between reaches the receiver either way.
            let receiver = self.shared.watchers.watch(key);
            match self.shared.read(key).await.map_err(unavailable)? {
                Some((version, view)) => {
                    self.shared.watchers.update(key, version, view);
                    Ok(Some(receiver))
                }
                None => Ok(None),
            }
        })
        .await
    }

    async fn remove(&self, key: &JobKey) -> Result<(), RegistryError> {
        counted(async {
            self.shared.watchers.close(key);
            self.shared.known.forget(key);
            let _: i64 = self
                .shared
                .remove
                .key(self.shared.hash(key))
                .arg(&self.shared.channel)
                .arg(key.as_str())
                .invoke_async(&mut self.shared.store.conn())
                .await
                .map_err(|e| unavailable(command("remove job")(e)))?;
            Ok(())
        })
        .await
    }

    /// Keeps the registration until its time to live, so a restarted process can resume the
    /// job by its key; this process only stops watching it.
    fn forget(self: Arc<Self>, key: JobKey) {
        let _ = key;
    }

    /// Redis expires registrations itself; this closes the local channels of jobs that are
    /// gone and drops the ones nobody listens to.
    async fn expire(&self, _now: Instant) -> usize {
        let (mut dropped, watched) = self.shared.watchers.prune();
        if watched.is_empty() {
            return dropped;
        }
        let mut pipe = redis::pipe();
        for key in &watched {
            pipe.exists(self.shared.hash(key));
        }
        let exists: Vec<bool> = match pipe.query_async(&mut self.shared.store.conn()).await {
            Ok(exists) => exists,
            Err(error) => {
                tracing::debug!(%error, "sweeping watched jobs failed; the next sweep retries");
                return dropped;
            }
        };
        for (key, exists) in watched.iter().zip(exists) {
            if !exists {
                self.shared.watchers.close(key);
                dropped += 1;
            }
        }
        dropped
    }

    /// Counts the namespace's registrations (a `SCAN`: for diagnostics, not a hot path).
    async fn count(&self) -> Result<usize, RegistryError> {
        counted(async {
            let pattern = self.shared.store.key(&["cb", "*"]);
            let mut conn = self.shared.store.conn();
            let mut keys = conn
                .scan_match::<_, String>(&pattern)
                .await
                .map_err(|e| unavailable(command("SCAN registrations")(e)))?;
            let mut count = 0;
            while let Some(key) = futures_util::StreamExt::next(&mut keys).await {
                // The wake-up channel is not a key; every other match is a registration.
                if key.is_ok() {
                    count += 1;
                }
            }
            Ok(count)
        })
        .await
    }
}
