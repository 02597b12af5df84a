//! Where registered jobs live between their registration and their outcome.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Instant;

use async_trait::async_trait;
use daglo_core::{Rid, StatusBody};
use tokio::sync::watch;

use crate::keys::{JobKey, TokenDigest};
use crate::state::{Applied, JobView};

/// One registered job, as the receiver needs it to check a callback.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Registered {
    /// The digest of the job's token ([`CallbackAuth::PerJobToken`](crate::CallbackAuth::PerJobToken) only).
    pub digest: Option<TokenDigest>,
}

/// The jobs a receiver knows. The in-memory [`InMemoryRegistry`] is the default; a shared backend
/// (several receiver replicas behind one load balancer) implements this trait, and `apply` must
/// then be atomic across replicas (a compare-and-set on the job's state).
#[async_trait]
pub trait JobRegistry: Send + Sync + fmt::Debug + 'static {
    /// Registers a job before its submit; it expires at `expires_at`.
    async fn register(&self, key: JobKey, registered: Registered, expires_at: Instant);
    /// The registration, or `None` for a job that is not (or no longer) registered.
    async fn lookup(&self, key: &JobKey) -> Option<Registered>;
    /// Applies a verified callback body atomically; `None` if the job is not registered.
    async fn apply(&self, key: &JobKey, body: StatusBody) -> Option<Applied>;
    /// Records the rid from the submit answer; `Some(Err(claimed))` when a callback had claimed
    /// another one; `None` if the job is not registered.
    async fn set_rid(&self, key: &JobKey, rid: Rid) -> Option<Result<(), Rid>>;
    /// Follows the job's state; `None` if it is not registered. The sender side closes when the
    /// job is removed or expires.
    async fn subscribe(&self, key: &JobKey) -> Option<watch::Receiver<JobView>>;
    /// Forgets a job.
    async fn remove(&self, key: &JobKey);
    /// Forgets a job without waiting: called from `Drop` when a ticket or a wait is abandoned,
    /// so it must not block. The default runs [`remove`](JobRegistry::remove) on a task of the
    /// current Tokio runtime (outside one, the registration's expiry reclaims it); a registry
    /// that can remove synchronously should do so here.
    fn forget(self: std::sync::Arc<Self>, key: JobKey) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { self.remove(&key).await });
        }
    }
    /// Forgets every job that expired by `now`; returns how many.
    async fn expire(&self, now: Instant) -> usize;
    /// How many jobs are registered.
    async fn count(&self) -> usize;
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
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
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
    async fn register(&self, key: JobKey, registered: Registered, expires_at: Instant) {
        let entry = Entry {
            registered,
            expires_at,
            state: watch::Sender::new(JobView::default()),
        };
        self.lock().insert(key, entry);
    }

    async fn lookup(&self, key: &JobKey) -> Option<Registered> {
        self.lock().get(key).map(|e| e.registered)
    }

    async fn apply(&self, key: &JobKey, body: StatusBody) -> Option<Applied> {
        let jobs = self.lock();
        let entry = jobs.get(key)?;
        let mut applied = Applied::Stale;
        // Under the map's lock: two finals racing each other cannot both win.
        entry.state.send_if_modified(|view| {
            applied = view.apply(body);
            applied.changed()
        });
        Some(applied)
    }

    async fn set_rid(&self, key: &JobKey, rid: Rid) -> Option<Result<(), Rid>> {
        let jobs = self.lock();
        let entry = jobs.get(key)?;
        let mut result = Ok(());
        entry.state.send_modify(|view| result = view.set_rid(rid));
        Some(result)
    }

    async fn subscribe(&self, key: &JobKey) -> Option<watch::Receiver<JobView>> {
        self.lock().get(key).map(|e| e.state.subscribe())
    }

    async fn remove(&self, key: &JobKey) {
        self.lock().remove(key);
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

    async fn count(&self) -> usize {
        self.lock().len()
    }
}
