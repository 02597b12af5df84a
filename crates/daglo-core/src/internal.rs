//! What the workspace's crates share and their users do not need: no stability promise.

use std::sync::{Mutex, MutexGuard};

/// Locks a mutex, recovering the data if a panicking thread poisoned it. Every critical section
/// in this workspace leaves its data consistent, so a panic elsewhere must not take the lock's
/// users down with it: the one poison-tolerant lock of the workspace.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
