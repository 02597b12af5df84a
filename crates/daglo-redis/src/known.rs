//! What this process knows of the namespace's registrations — the digest, the time to live and
//! the latest state of each job — kept current by the wake-up channel, so an accepted callback
//! costs one Redis round trip: the compare-and-set.
//!
//! Why this stays correct across replicas:
//! - **The credential.** A job key is bound to its token's digest (an HMAC over both): a key's
//!   registration never changes while it lives, so a known digest is never stale.
//! - **The state.** Only a starting point. Every write is a compare-and-set on the stored
//!   version; one that lost the race gets the stored state back and applies the body to it.
//!   A body that changes nothing on a known state is tried again on the stored one before it
//!   is answered: the state does not only move forward (`JobView::set_rid` sets aside what
//!   callbacks naming another rid did), so a duplicate here may be the real final there.
//! - **Gone jobs.** Removal is published; expiry is known from the time to live. A job removed
//!   while this process missed the message still looks registered here — its callbacks then meet
//!   the compare-and-set, which finds no job, and are answered "ignored", as if the lookup had
//!   said so.
//! - **Gaps.** Nothing is trusted unless the subscription is up: every (re)subscription and
//!   every loss forgets all and starts a new epoch, and a lookup that raced a gap is not kept.

use daglo_core::internal::lock;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use daglo_callback::{JobKey, JobView, Registered, TokenDigest};

use crate::stored;

/// Registrations known at most; past it, new ones are looked up in Redis each time.
const KNOWN_MAX: usize = 65_536;
/// States longer than this (a final with its transcript) are neither published nor kept: the
/// wake-up names the job and its version only, the replica waiting for it reads the stored
/// state, and the rare callback after a final reads it too. Sending a 25 KiB transcript to
/// every replica, of which one waits for it, was most of Redis's work and of the replicas'
/// allocations in a burst of finals (`docs/architecture.md`, "Long states go by name on the wake-up").
pub(crate) const PUBLISHED_STATE_BYTES: usize = 8 << 10;

/// What the wake-up carries in place of a state longer than [`PUBLISHED_STATE_BYTES`] (a state
/// is a JSON object, so it never reads as this).
pub(crate) const STATE_NOT_PUBLISHED: &str = "-";

/// The namespace's registrations as this process last heard of them.
#[derive(Default)]
pub(crate) struct Known {
    jobs: Mutex<HashMap<JobKey, Job>>,
    /// Changes at every (re)subscription and every loss of it.
    epoch: AtomicU64,
    /// Whether the wake-up subscription is up (nothing known is used otherwise).
    live: AtomicBool,
}

struct Job {
    digest: Option<TokenDigest>,
    until: Instant,
    version: u64,
    state: State,
}

enum State {
    /// Not kept (too long, or not read yet): read it from Redis.
    Unknown,
    /// As published, decoded when a callback needs it.
    Published(String),
    Decoded(JobView),
}

impl Known {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<JobKey, Job>> {
        lock(&self.jobs)
    }

    /// The subscription is up (`true`) or lost (`false`): either way, what was known may have
    /// missed messages and is forgotten.
    pub(crate) fn restart(&self, live: bool) {
        let mut jobs = self.lock();
        jobs.clear();
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.live.store(live, Ordering::SeqCst);
    }

    /// The current epoch, to pass to [`Known::insert`] for a state read now.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// A known live registration: `None` if it must be looked up.
    pub(crate) fn registration(&self, key: &JobKey) -> Option<Registered> {
        if !self.live.load(Ordering::SeqCst) {
            return None;
        }
        let jobs = self.lock();
        let job = jobs.get(key)?;
        (job.until > Instant::now()).then_some(Registered::new(job.digest))
    }

    /// The known state of a live registration, to start a compare-and-set from.
    pub(crate) fn state(&self, key: &JobKey) -> Option<(u64, JobView)> {
        if !self.live.load(Ordering::SeqCst) {
            return None;
        }
        let mut jobs = self.lock();
        let job = jobs.get_mut(key)?;
        if job.until <= Instant::now() {
            return None;
        }
        let view = match &job.state {
            State::Unknown => return None,
            State::Decoded(view) => view.clone(),
            State::Published(json) => match stored::decode(json) {
                Ok(view) => {
                    job.state = State::Decoded(view.clone());
                    view
                }
                Err(_) => {
                    job.state = State::Unknown;
                    return None;
                }
            },
        };
        Some((job.version, view))
    }

    /// A registration this process made, read or heard of, with its state at `version` if
    /// known; kept only if nothing was missed since `epoch` and there is room.
    pub(crate) fn insert(
        &self,
        epoch: u64,
        key: JobKey,
        digest: Option<TokenDigest>,
        ttl: Duration,
        state: Option<(u64, JobView)>,
    ) {
        let mut jobs = self.lock();
        if epoch != self.epoch.load(Ordering::SeqCst) || !self.live.load(Ordering::SeqCst) {
            return;
        }
        let now = Instant::now();
        if jobs.len() >= KNOWN_MAX && !jobs.contains_key(&key) {
            jobs.retain(|_, job| job.until > now);
            if jobs.len() >= KNOWN_MAX {
                return;
            }
        }
        let until = now + ttl;
        let (version, state) = state.map_or((0, State::Unknown), |(v, view)| (v, State::Decoded(view)));
        match jobs.get_mut(&key) {
            // A message may have come first, over the other connection: keep the newer state.
            Some(job) if job.version >= version => {
                job.digest = digest;
                job.until = until;
            }
            _ => {
                jobs.insert(
                    key,
                    Job {
                        digest,
                        until,
                        version,
                        state,
                    },
                );
            }
        }
    }

    /// This process wrote `view` at `version`.
    pub(crate) fn wrote(&self, key: &JobKey, version: u64, view: &JobView) {
        if let Some(job) = self.lock().get_mut(key)
            && version > job.version
        {
            job.version = version;
            job.state = State::Decoded(view.clone());
        }
    }

    /// A replica published the state at `version`.
    pub(crate) fn published(&self, key: &JobKey, version: u64, json: &str) {
        if let Some(job) = self.lock().get_mut(key)
            && version > job.version
        {
            job.version = version;
            job.state = if json.len() <= PUBLISHED_STATE_BYTES && json != STATE_NOT_PUBLISHED {
                State::Published(json.to_owned())
            } else {
                State::Unknown
            };
        }
    }

    /// The job is gone (removed, or found missing by a write).
    pub(crate) fn forget(&self, key: &JobKey) {
        self.lock().remove(key);
    }

    /// How many registrations are known (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// A token digest as Redis keeps it and the wake-up channel carries it: 64 hex digits.
pub(crate) fn digest_hex(digest: &TokenDigest) -> String {
    digest.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest `hex` spells, if it is 64 hex digits.
pub(crate) fn parse_digest(hex: &str) -> Option<TokenDigest> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(TokenDigest::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use daglo_core::{Status, StatusBody};

    fn progress(percent: u32) -> JobView {
        let mut view = JobView::default();
        let mut body = StatusBody::new(Status::Transcribing);
        body.progress = Some(percent);
        view.apply(body);
        view
    }

    #[test]
    fn nothing_is_trusted_without_the_subscription_and_a_gap_forgets_all() {
        let known = Known::default();
        let key = JobKey::new("k");
        known.insert(known.epoch(), key.clone(), None, Duration::from_secs(60), None);
        assert_eq!(
            known.registration(&key).map(|r| r.digest.is_some()),
            None,
            "not subscribed yet"
        );
        known.restart(true);
        let epoch = known.epoch();
        known.insert(
            epoch,
            key.clone(),
            None,
            Duration::from_secs(60),
            Some((1, JobView::default())),
        );
        assert_eq!(known.registration(&key).map(|r| r.digest.is_some()), Some(false));
        assert_eq!(known.state(&key).map(|(v, _)| v), Some(1));
        // A lookup that started before a gap is not kept.
        known.restart(true);
        known.insert(epoch, key.clone(), None, Duration::from_secs(60), None);
        assert_eq!(known.len(), 0);
        assert_eq!(known.registration(&key).map(|r| r.digest.is_some()), None);
    }

    #[test]
    fn newer_states_win_whichever_connection_brings_them() {
        let known = Known::default();
        known.restart(true);
        let key = JobKey::new("k");
        let epoch = known.epoch();
        known.insert(
            epoch,
            key.clone(),
            None,
            Duration::from_secs(60),
            Some((1, JobView::default())),
        );
        known.published(&key, 3, &stored::encode(&progress(60)));
        // A read that left Redis before version 3 was written arrives after its message.
        known.insert(
            epoch,
            key.clone(),
            None,
            Duration::from_secs(60),
            Some((2, progress(40))),
        );
        assert_eq!(known.state(&key), Some((3, progress(60))));
        known.wrote(&key, 2, &progress(50));
        assert_eq!(
            known.state(&key),
            Some((3, progress(60))),
            "an older write changes nothing"
        );
        known.wrote(&key, 4, &progress(70));
        assert_eq!(known.state(&key), Some((4, progress(70))));
        // A final with a long transcript is not kept; unreadable JSON is dropped, not a panic.
        known.published(&key, 5, &"x".repeat(PUBLISHED_STATE_BYTES + 1));
        assert_eq!(known.state(&key), None);
        known.published(&key, 6, "not json");
        assert_eq!(known.state(&key), None);
        assert_eq!(
            known.registration(&key).map(|r| r.digest.is_some()),
            Some(false),
            "the registration stays known"
        );
        known.forget(&key);
        assert_eq!(known.registration(&key).map(|r| r.digest.is_some()), None);
    }

    #[test]
    fn digests_survive_the_hex_round_trip_and_bad_hex_is_refused() {
        let digest = TokenDigest::from_bytes([0xa7; 32]);
        assert_eq!(
            parse_digest(&digest_hex(&digest)).map(|d| digest_hex(&d)),
            Some(digest_hex(&digest))
        );
        assert!(parse_digest("a7").is_none());
        assert!(parse_digest(&"zz".repeat(32)).is_none());
        assert!(parse_digest(&"é".repeat(32)).is_none());
    }

    #[test]
    fn the_map_is_bounded_and_makes_room_from_expired_registrations() {
        let known = Known::default();
        known.restart(true);
        let epoch = known.epoch();
        // Full of registrations that expire at once, then of live ones.
        for n in 0..KNOWN_MAX {
            known.insert(epoch, JobKey::new(format!("old-{n}")), None, Duration::ZERO, None);
        }
        assert_eq!(known.len(), KNOWN_MAX);
        known.insert(epoch, JobKey::new("new-0"), None, Duration::from_secs(60), None);
        assert_eq!(known.len(), 1, "the expired ones made room");
        for n in 1..KNOWN_MAX {
            known.insert(
                epoch,
                JobKey::new(format!("new-{n}")),
                None,
                Duration::from_secs(60),
                None,
            );
        }
        known.insert(
            epoch,
            JobKey::new("one-too-many"),
            None,
            Duration::from_secs(60),
            None,
        );
        assert_eq!(
            known.len(),
            KNOWN_MAX,
            "full of live registrations: a new one is not kept"
        );
        assert!(known.registration(&JobKey::new("one-too-many")).is_none());
        assert!(known.registration(&JobKey::new("new-1")).is_some());
    }

    #[test]
    fn an_expired_registration_is_not_known() {
        let known = Known::default();
        known.restart(true);
        let key = JobKey::new("k");
        known.insert(known.epoch(), key.clone(), None, Duration::ZERO, None);
        assert_eq!(known.registration(&key).map(|r| r.digest.is_some()), None);
    }
}
