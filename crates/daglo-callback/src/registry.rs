//! Where registered jobs live between their registration and their outcome.

use daglo_core::internal::lock;
use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Instant;

use async_trait::async_trait;
use daglo_core::{Rid, StatusBody};
use tokio::sync::watch;

use crate::keys::{JobKey, TokenDigest};
use crate::state::{Applied, JobView};

/// Why a registry could not answer: its store (a shared one, such as Redis) is unreachable,
/// too slow or failed. Nothing was changed that the caller cannot retry: the receiver answers
/// the callback `503` so its sender retries, and a waiter gets the error to act on.
#[derive(Debug, thiserror::Error)]
#[error("the callback registry is unavailable: {what}")]
pub struct RegistryError {
    what: String,
    #[source]
    source: Option<daglo_core::BoxError>,
}

impl RegistryError {
    /// An error saying `what` failed, with its cause.
    pub fn new(what: impl Into<String>, source: impl Into<daglo_core::BoxError>) -> Self {
        Self {
            what: what.into(),
            source: Some(source.into()),
        }
    }

    /// An error saying `what` failed.
    pub fn message(what: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            source: None,
        }
    }
}

/// One registered job, as the receiver needs it to check a callback.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Registered {
    /// The digest of the job's token ([`CallbackAuth::PerJobToken`](crate::CallbackAuth::PerJobToken) only).
    pub digest: Option<TokenDigest>,
}

impl Registered {
    /// A registration checked with `digest` (per-job tokens), or with the shared credential.
    pub fn new(digest: Option<TokenDigest>) -> Self {
        Self { digest }
    }
}

/// The jobs a receiver knows. The in-memory [`InMemoryRegistry`] is the default; a shared backend
/// (several receiver replicas behind one load balancer, such as `daglo-redis`'s) implements this
/// trait, and `apply` must then be atomic across replicas (a compare-and-set on the job's state,
/// with [`JobView::apply`] deciding every transition so all registries follow the same rules).
///
/// Every call that reaches the store can fail with a [`RegistryError`]; the in-memory registry
/// never does.
#[async_trait]
pub trait JobRegistry: Send + Sync + fmt::Debug + 'static {
    /// Registers a job before its submit; it expires at `expires_at`.
    async fn register(
        &self,
        key: JobKey,
        registered: Registered,
        expires_at: Instant,
    ) -> Result<(), RegistryError>;
    /// The registration, or `None` for a job that is not (or no longer) registered.
    async fn lookup(&self, key: &JobKey) -> Result<Option<Registered>, RegistryError>;
    /// Applies a verified callback body atomically; `None` if the job is not registered.
    async fn apply(&self, key: &JobKey, body: StatusBody) -> Result<Option<Applied>, RegistryError>;
    /// Records the rid from the submit answer; `Some(Err(claimed))` when a callback had claimed
    /// another one; `None` if the job is not registered.
    async fn set_rid(&self, key: &JobKey, rid: Rid) -> Result<Option<Result<(), Rid>>, RegistryError>;
    /// Follows the job's state; `None` if it is not registered. The receiver starts with the
    /// state stored now (a late subscriber misses nothing). The sender side closes when the job
    /// is removed or expires.
    async fn subscribe(&self, key: &JobKey) -> Result<Option<watch::Receiver<JobView>>, RegistryError>;
    /// Forgets a job.
    async fn remove(&self, key: &JobKey) -> Result<(), RegistryError>;
    /// Called from `Drop` when a ticket or a wait is abandoned, so it must not block. The
    /// default removes the job on a task of the current Tokio runtime (outside one, the
    /// registration's expiry reclaims it); a registry that can remove synchronously should do
    /// so here, and a shared one may keep the job until it expires, so that a restarted process
    /// can still resume it by its key.
    fn forget(self: std::sync::Arc<Self>, key: JobKey) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = self.remove(&key).await {
                    tracing::debug!(%error, "could not forget an abandoned job; its expiry will");
                }
            });
        }
    }
    /// Forgets every job that expired by `now`, and releases what this process kept for them;
    /// returns how many.
    async fn expire(&self, now: Instant) -> usize;
    /// How many jobs are registered.
    async fn count(&self) -> Result<usize, RegistryError>;

    /// The registration at once, without a future — `Some` of what [`lookup`](Self::lookup)
    /// would answer — from a registry whose look-ups stay in this process (a map in memory,
    /// answered in nanoseconds). The receiver then decides a callback from its head alone,
    /// before it makes a future: a forged, unknown or finished job's callback is answered at
    /// once, without reading its body. It also looks the key up before checking its tag: a
    /// registered key needs no such check (only keys it minted are registered, and the job's
    /// credential is checked against the registration), and only a key it does not find has
    /// its tag checked.
    ///
    /// The default, `None`, is for a registry that asks another system (Redis): the receiver
    /// checks the key's tag first, so that a key it never minted does not reach that system,
    /// then calls `lookup`.
    fn lookup_now(&self, key: &JobKey) -> Option<Option<Registered>> {
        let _ = key;
        None
    }
}

struct Entry {
    registered: Registered,
    expires_at: Instant,
    state: watch::Sender<JobView>,
}

/// The default registry: a map in this process's memory.
#[derive(Default)]
pub struct InMemoryRegistry {
    jobs: Mutex<HashMap<JobKey, Entry>>,
}

impl InMemoryRegistry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<JobKey, Entry>> {
        lock(&self.jobs)
    }
}

impl fmt::Debug for InMemoryRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryRegistry")
            .field("jobs", &self.lock().len())
            .finish()
    }
}

#[async_trait]
impl JobRegistry for InMemoryRegistry {
    async fn register(
        &self,
        key: JobKey,
        registered: Registered,
        expires_at: Instant,
    ) -> Result<(), RegistryError> {
        let entry = Entry {
            registered,
            expires_at,
            state: watch::Sender::new(JobView::default()),
        };
        self.lock().insert(key, entry);
        Ok(())
    }

    async fn lookup(&self, key: &JobKey) -> Result<Option<Registered>, RegistryError> {
        Ok(self.lookup_now(key).flatten())
    }

    async fn apply(&self, key: &JobKey, body: StatusBody) -> Result<Option<Applied>, RegistryError> {
        let jobs = self.lock();
        let Some(entry) = jobs.get(key) else {
            return Ok(None);
        };
        let mut applied = Applied::Stale;
        // Under the map's lock: two finals racing each other cannot both win.
        entry.state.send_if_modified(|view| {
            applied = view.apply(body);
            applied.changed()
        });
        Ok(Some(applied))
    }

    async fn set_rid(&self, key: &JobKey, rid: Rid) -> Result<Option<Result<(), Rid>>, RegistryError> {
        let jobs = self.lock();
        let Some(entry) = jobs.get(key) else {
            return Ok(None);
        };
        let mut result = Ok(());
        entry.state.send_modify(|view| result = view.set_rid(rid));
        Ok(Some(result))
    }

    async fn subscribe(&self, key: &JobKey) -> Result<Option<watch::Receiver<JobView>>, RegistryError> {
        Ok(self.lock().get(key).map(|e| e.state.subscribe()))
    }

    async fn remove(&self, key: &JobKey) -> Result<(), RegistryError> {
        self.lock().remove(key);
        Ok(())
    }

    fn forget(self: std::sync::Arc<Self>, key: JobKey) {
        self.lock().remove(&key);
    }

    async fn expire(&self, now: Instant) -> usize {
        let mut jobs = self.lock();
        let before = jobs.len();
        jobs.retain(|_, entry| entry.expires_at > now);
        before - jobs.len()
    }

    async fn count(&self) -> Result<usize, RegistryError> {
        Ok(self.lock().len())
    }

    fn lookup_now(&self, key: &JobKey) -> Option<Option<Registered>> {
        Some(self.lock().get(key).map(|e| e.registered))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_in_memory_registry_passes_the_conformance_checks() {
        crate::conformance::check_registry(std::sync::Arc::new(InMemoryRegistry::default()), "memory").await;
    }

    #[tokio::test]
    async fn the_in_memory_registry_passes_the_replica_checks_as_its_own_replica() {
        let registry: std::sync::Arc<dyn JobRegistry> = std::sync::Arc::new(InMemoryRegistry::default());
        crate::conformance::check_replicas(registry.clone(), registry, "memory").await;
    }
}
