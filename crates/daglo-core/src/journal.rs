//! The job journal: what was about to be submitted, what was submitted, and how it ended —
//! written down as it happens, so a process that dies between the submit (billed) and the
//! result loses neither.

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use async_trait::async_trait;

use crate::delivery::{BoxError, OutcomeKind};
use crate::job::{JobId, JobSnapshot, JobState};
use crate::request::Rid;
use crate::status::Status;

/// Identifies one entry of a journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryId(pub i64);

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What is about to be submitted: recorded **before** the submit, so a crash during it leaves a
/// trace. It holds no secret: the options are kept as a digest, taken before a strategy adds
/// its callback credential; the callback key is the part of the callback URL that names the job
/// (not a credential).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Intent {
    /// The job's id, kept across restarts.
    pub job: JobId,
    /// The caller's key: a second start with the same key is the same job, never a second
    /// submit ([`Journal::claim`]).
    pub key: Option<String>,
    /// The caller's labels, to filter jobs by.
    pub labels: BTreeMap<String, String>,
    /// The key of the job's callback registration, when its strategy registers one: what lets a
    /// restarted process accept the job's later callbacks.
    pub callback_key: Option<String>,
    /// The input: a file path or a URL, as the caller named it.
    pub input: String,
    /// A digest of the options the caller chose (the transcriber's is a 64-bit FNV-1a of their
    /// JSON, `fnv1a64:<hex>`: a change detector, not a secret).
    pub options_digest: String,
    /// The strategy's name.
    pub strategy: String,
    /// When it was recorded.
    pub at: SystemTime,
    /// Who holds the claim while the submit is under way (`<host>:<pid>` for the
    /// transcriber): shown to a peer that finds the claim, never a secret.
    pub owner: Option<String>,
}

impl Intent {
    /// An intent to submit `input` now.
    pub fn new(
        input: impl Into<String>,
        options_digest: impl Into<String>,
        strategy: impl Into<String>,
    ) -> Self {
        Self {
            job: JobId::random(),
            key: None,
            labels: BTreeMap::new(),
            callback_key: None,
            input: input.into(),
            options_digest: options_digest.into(),
            strategy: strategy.into(),
            at: SystemTime::now(),
            owner: None,
        }
    }

    /// The same intent held by `owner` (see [`Intent::owner`]).
    #[must_use]
    pub fn with_owner(mut self, owner: Option<String>) -> Self {
        self.owner = owner;
        self
    }

    /// The same intent for job `job` (a fresh random id by default).
    #[must_use]
    pub fn with_job(mut self, job: JobId) -> Self {
        self.job = job;
        self
    }

    /// The same intent under the caller's `key`.
    #[must_use]
    pub fn with_key(mut self, key: Option<String>) -> Self {
        self.key = key;
        self
    }

    /// The same intent with `labels`.
    #[must_use]
    pub fn with_labels(mut self, labels: BTreeMap<String, String>) -> Self {
        self.labels = labels;
        self
    }

    /// The same intent with the job's callback key.
    #[must_use]
    pub fn with_callback_key(mut self, callback_key: Option<String>) -> Self {
        self.callback_key = callback_key;
        self
    }
}

/// Where an entry stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryState {
    /// Recorded, and no rid yet: the submit was about to happen, is under way, or happened and
    /// its answer was lost. **Uncertain** after a crash: a job may exist and be billed. Never
    /// resubmit such an entry automatically.
    Intended,
    /// The submit was refused in a way that created no job (a `4xx`, a request never sent).
    NotSubmitted {
        /// Why, in a line.
        reason: String,
    },
    /// Submitted: the job runs (and is billed). Resume it by its rid.
    Submitted {
        /// The job.
        rid: Rid,
    },
    /// The job ended.
    Finished {
        /// The job.
        rid: Rid,
        /// How it ended.
        outcome: OutcomeKind,
        /// Where the caller put the result, or a digest of it (never the transcript itself).
        result: Option<String>,
    },
}

/// One entry: the intent, where it stands, and the last progress the service reported.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Entry {
    /// The entry.
    pub id: EntryId,
    /// What was to be submitted.
    pub intent: Intent,
    /// Where it stands.
    pub state: EntryState,
    /// The last status recorded by [`Journal::progressed`].
    pub status: Option<Status>,
    /// The last progress recorded, in percent.
    pub progress: Option<u32>,
    /// The status requests the job cost, as last recorded ([`Journal::requested`]).
    pub status_requests: u64,
    /// When the entry last changed.
    pub updated_at: SystemTime,
}

impl Entry {
    /// A fresh entry for `intent`, not yet submitted.
    pub fn new(id: EntryId, intent: Intent) -> Self {
        Self {
            id,
            updated_at: intent.at,
            intent,
            state: EntryState::Intended,
            status: None,
            progress: None,
            status_requests: 0,
        }
    }

    /// Whether the entry has ended: finished, or provably not submitted — what
    /// [`Journal::prune`] may remove.
    pub fn is_ended(&self) -> bool {
        matches!(
            self.state,
            EntryState::Finished { .. } | EntryState::NotSubmitted { .. }
        )
    }

    /// Whether the entry has no rid and its claim's lease is alive: renewed
    /// ([`Journal::renew`]) within [`SUBMIT_LEASE`], so its owner's submit is still under way.
    /// Such a job is neither submitted again nor called uncertain: wait for it.
    pub fn is_leased(&self) -> bool {
        matches!(self.state, EntryState::Intended)
            && SystemTime::now()
                .duration_since(self.updated_at)
                .unwrap_or_default()
                < SUBMIT_LEASE
    }

    /// The job as the journal knows it. An entry with no rid is [`JobState::Submitting`] while
    /// its lease is alive ([`Entry::is_leased`]), [`JobState::Uncertain`] after that.
    pub fn snapshot(&self) -> JobSnapshot {
        let intent = &self.intent;
        let mut job = JobSnapshot::new(intent.job.clone(), intent.input.clone(), intent.strategy.clone());
        job.key.clone_from(&intent.key);
        job.labels.clone_from(&intent.labels);
        job.created_at = intent.at;
        job.updated_at = self.updated_at;
        job.status.clone_from(&self.status);
        job.progress = self.progress;
        job.status_requests = self.status_requests;
        match &self.state {
            EntryState::Intended => {
                job.state = if self.is_leased() {
                    JobState::Submitting
                } else {
                    JobState::Uncertain
                };
            }
            EntryState::NotSubmitted { reason } => {
                job.state = JobState::NotSubmitted;
                job.reason = Some(reason.clone());
            }
            EntryState::Submitted { rid } => {
                job.state = JobState::Running;
                job.rid = Some(rid.clone());
            }
            EntryState::Finished { rid, outcome, .. } => {
                job.state = if outcome.is_success() {
                    JobState::Finished
                } else {
                    JobState::Failed
                };
                job.rid = Some(rid.clone());
                job.outcome = Some(outcome.clone());
                if outcome.is_success() {
                    job.progress = Some(100);
                }
            }
        }
        job
    }
}

/// How many entries one step of pruning removes at most ([`Journal::prune`]'s `at_most` as
/// the transcriber and the command line call it): small enough that a reader waits for one
/// step at most — a step of 500 held SQLite for ~40 ms on 2 cores and took a listing's p99
/// during a million-entry sweep to 3.9× of idle (`cargo bench --bench jobtable`) — and a
/// million entries still go in about two minutes.
pub const PRUNE_STEP: usize = 100;

/// Where an entry stands, as the journal's indexes know it: [`EntryState`] without its data.
/// A [`JobState`] maps onto one stage ([`Stage::of_job`]); the lease that tells
/// [`JobState::Submitting`] from [`JobState::Uncertain`] is read from the entry itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Stage {
    /// Recorded, no rid yet ([`EntryState::Intended`]).
    Intended,
    /// Submitted, not ended ([`EntryState::Submitted`]).
    Submitted,
    /// Ended with a transcript or an empty one.
    Finished,
    /// Ended with a failure status.
    Failed,
    /// Provably not submitted ([`EntryState::NotSubmitted`]).
    NotSubmitted,
}

impl Stage {
    /// Every stage, in the order above.
    pub const ALL: [Self; 5] = [
        Self::Intended,
        Self::Submitted,
        Self::Finished,
        Self::Failed,
        Self::NotSubmitted,
    ];

    /// The stage of `state`.
    pub fn of(state: &EntryState) -> Self {
        match state {
            EntryState::Intended => Self::Intended,
            EntryState::Submitted { .. } => Self::Submitted,
            EntryState::Finished { outcome, .. } if outcome.is_success() => Self::Finished,
            EntryState::Finished { .. } => Self::Failed,
            EntryState::NotSubmitted { .. } => Self::NotSubmitted,
        }
    }

    /// The stage a job in `state` has in the journal: submitting and uncertain jobs are
    /// intended entries, running and given-up ones submitted entries.
    pub fn of_job(state: JobState) -> Self {
        match state {
            JobState::Submitting | JobState::Uncertain => Self::Intended,
            JobState::Running | JobState::GaveUp => Self::Submitted,
            JobState::Finished => Self::Finished,
            JobState::Failed => Self::Failed,
            JobState::NotSubmitted => Self::NotSubmitted,
        }
    }

    /// The stage's number in a journal's index (0 to 4, in the order of [`Stage::ALL`]).
    pub fn index(self) -> u8 {
        match self {
            Self::Intended => 0,
            Self::Submitted => 1,
            Self::Finished => 2,
            Self::Failed => 3,
            Self::NotSubmitted => 4,
        }
    }

    /// Whether an entry in this stage has ended ([`Entry::is_ended`]).
    pub fn is_ended(self) -> bool {
        self.index() >= 2
    }
}

/// Which entries a [`Journal::page`] holds: newest first, older than a position, in some
/// stages, carrying some labels — each read on an index, so a page costs what it returns, not
/// what the journal holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EntryQuery {
    /// Only entries in one of these stages (any stage when empty).
    pub stages: Vec<Stage>,
    /// Only entries carrying every one of these labels.
    pub labels: BTreeMap<String, String>,
    /// Only entries older than this one (the last entry of the page before): the position a
    /// page goes on from. `None`: from the newest.
    pub before: Option<EntryId>,
    /// At most this many entries (at least one is asked for).
    pub limit: usize,
}

impl EntryQuery {
    /// The newest `limit` entries.
    pub fn newest(limit: usize) -> Self {
        Self {
            limit,
            ..Self::default()
        }
    }

    /// Also entries in `stage` (called again, any of the stages given).
    #[must_use]
    pub fn stage(mut self, stage: Stage) -> Self {
        if !self.stages.contains(&stage) {
            self.stages.push(stage);
        }
        self
    }

    /// Only entries labelled `name` = `value`.
    #[must_use]
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(name.into(), value.into());
        self
    }

    /// Only entries older than `entry`.
    #[must_use]
    pub fn before(mut self, entry: Option<EntryId>) -> Self {
        self.before = entry;
        self
    }

    /// Whether `entry` passes the query (its position and limit aside).
    pub fn matches(&self, entry: &Entry) -> bool {
        (self.stages.is_empty() || self.stages.contains(&Stage::of(&entry.state)))
            && self
                .labels
                .iter()
                .all(|(name, value)| entry.intent.labels.get(name) == Some(value))
    }

    /// The label a journal walks its index of: the first whose name does not start with
    /// `daglo.` (a caller's own label names fewer entries than the service's reserved ones),
    /// else the first.
    pub fn leading_label(&self) -> Option<(&str, &str)> {
        self.labels
            .iter()
            .find(|(name, _)| !name.starts_with("daglo."))
            .or_else(|| self.labels.iter().next())
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }
}

/// One page of a [`Journal::page`]: the entries, newest first, and whether more follow (go on
/// with [`EntryQuery::before`] the last entry's id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EntryPage {
    /// The entries, newest first.
    pub entries: Vec<Entry>,
    /// Whether older entries match too.
    pub more: bool,
}

impl EntryPage {
    /// A page of `entries` (newest first), `more` saying whether older ones match too.
    pub fn new(entries: Vec<Entry>, more: bool) -> Self {
        Self { entries, more }
    }
}

/// A claim's lease: an intent with no answer yet whose entry was renewed within this is a
/// submit under way in its owner's process, which renews it every third of this while the
/// upload lasts ([`Journal::renew`]). Not renewed for this long, the owner is gone: the entry
/// is uncertain (a job may exist and be billed).
pub const SUBMIT_LEASE: std::time::Duration = std::time::Duration::from_secs(30);

/// What [`Journal::claim`] found: a new entry, or the one that already holds the key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Claim {
    /// The intent was recorded as this new entry: go on and submit.
    Created(EntryId),
    /// An entry already holds the key: that job — running, ended or uncertain — is the one
    /// asked for. Submit nothing.
    Existing(Box<Entry>),
}

/// What a journal holds after a restart, sorted for action.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recovery {
    /// Submitted and not finished: resume each by its rid.
    pub pending: Vec<Entry>,
    /// Recorded with no rid: a job may or may not exist. Report them; never resubmit blindly.
    pub uncertain: Vec<Entry>,
}

/// Why the journal could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("the job journal failed: {what}")]
pub struct JournalError {
    what: String,
    #[source]
    source: Option<BoxError>,
    gone: bool,
}

impl JournalError {
    /// An error saying `what` went wrong, with its cause.
    pub fn new(what: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self {
            what: what.into(),
            source: Some(source.into()),
            gone: false,
        }
    }

    /// An error saying `what` went wrong.
    pub fn message(what: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            source: None,
            gone: false,
        }
    }

    /// The journal itself is gone — its file deleted or replaced, its Redis keys flushed —
    /// since this process opened it: `what` says which. Nothing it held can be trusted to
    /// stop a second submit any more; a caller stops submitting ([`JournalError::is_gone`]).
    pub fn gone(what: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            source: None,
            gone: true,
        }
    }

    /// Whether the journal is gone ([`JournalError::gone`]) rather than failing once.
    pub fn is_gone(&self) -> bool {
        self.gone
    }

    /// [`Journal::intend`] refused `key`: another entry holds it ([`Journal::claim`] says which).
    pub fn key_held(key: Option<&str>) -> Self {
        Self::message(format!(
            "the key `{}` is held by another entry",
            key.unwrap_or_default().escape_debug()
        ))
    }
}

/// A durable record of jobs, written at each step of a submit so a crash loses nothing: the
/// intent **before** the submit, the rid as soon as the answer arrives, the outcome at the end.
///
/// Implementations: `daglo-journal`'s SQLite journal (embedded, the default), and shared
/// backends for several replicas. Each write must be durable when its future completes.
#[async_trait]
pub trait Journal: Send + Sync + fmt::Debug {
    /// Records what is about to be submitted.
    async fn intend(&self, intent: Intent) -> Result<EntryId, JournalError>;
    /// Records that the submit created no job (so the entry is not uncertain).
    async fn not_submitted(&self, id: EntryId, reason: &str) -> Result<(), JournalError>;
    /// Records the rid from the submit answer.
    async fn submitted(&self, id: EntryId, rid: &Rid) -> Result<(), JournalError>;
    /// Records how the job ended, and where its result went (never the transcript itself).
    async fn finished(
        &self,
        id: EntryId,
        outcome: &OutcomeKind,
        result: Option<&str>,
    ) -> Result<(), JournalError>;
    /// Every entry, oldest first.
    async fn entries(&self) -> Result<Vec<Entry>, JournalError>;

    /// Whether the journal can be used now: it answers, and it is not gone (its file deleted
    /// or replaced, its Redis keys flushed: [`JournalError::is_gone`]). For a readiness probe;
    /// writes nothing. The default asks for a key no entry holds.
    async fn check(&self) -> Result<(), JournalError> {
        self.by_key("daglo-journal-check").await.map(drop)
    }

    /// The newest entry for `input` (as [`Intent::input`] named it), if any: what a rerun of
    /// the same batch consults before submitting that input again. The default scans
    /// [`entries`](Journal::entries); a store with an index should answer directly.
    async fn latest_for(&self, input: &str) -> Result<Option<Entry>, JournalError> {
        Ok(self
            .entries()
            .await?
            .into_iter()
            .rev()
            .find(|entry| entry.intent.input == input))
    }

    /// Records `intent` unless an entry already holds its key — **one atomic step**, across
    /// every process sharing the journal, so two starts of one key make one submit. An entry
    /// that was provably not submitted gives its key up (a new submit of it bills nothing
    /// twice); an intent without a key is always recorded.
    ///
    /// The default looks the key up, then records: correct for one process, not across several.
    /// A journal shared by processes must override it (both journals of this project do).
    async fn claim(&self, intent: Intent) -> Result<Claim, JournalError> {
        if let Some(key) = &intent.key {
            if let Some(entry) = self.by_key(key).await? {
                if !matches!(entry.state, EntryState::NotSubmitted { .. }) {
                    return Ok(Claim::Existing(Box::new(entry)));
                }
            }
        }
        self.intend(intent).await.map(Claim::Created)
    }

    /// The entry holding `key`, if any. The default scans [`entries`](Journal::entries).
    async fn by_key(&self, key: &str) -> Result<Option<Entry>, JournalError> {
        Ok(self
            .entries()
            .await?
            .into_iter()
            .find(|entry| entry.intent.key.as_deref() == Some(key)))
    }

    /// The entry of job `job`, if any. The default scans [`entries`](Journal::entries).
    async fn by_job(&self, job: &JobId) -> Result<Option<Entry>, JournalError> {
        Ok(self
            .entries()
            .await?
            .into_iter()
            .find(|entry| &entry.intent.job == job))
    }

    /// Renews the lease of entry `id`'s claim while its submit is under way (its
    /// [`updated_at`](Entry::updated_at) set to now; see [`SUBMIT_LEASE`]). Only an entry with
    /// no answer yet is renewed; any other is left as it is. The default renews nothing, so
    /// with it a submit longer than the lease reads as uncertain to a peer.
    async fn renew(&self, id: EntryId) -> Result<(), JournalError> {
        let _ = id;
        Ok(())
    }

    /// Records the last status and progress the service reported, so another process (or this
    /// one after a restart) can show them. Best effort for the caller; the default keeps
    /// nothing.
    async fn progressed(
        &self,
        id: EntryId,
        status: &Status,
        progress: Option<u32>,
    ) -> Result<(), JournalError> {
        let _ = (id, status, progress);
        Ok(())
    }

    /// Records how many status requests the job cost so far (for `daglo jobs` and the job's
    /// snapshot). Best effort for the caller; the default keeps nothing.
    async fn requested(&self, id: EntryId, status_requests: u64) -> Result<(), JournalError> {
        let _ = (id, status_requests);
        Ok(())
    }

    /// Removes at most `at_most` ended entries ([`Entry::is_ended`]) last changed before
    /// `before`, oldest first, and returns them (so their stored results, and whatever was
    /// kept under their callback keys, can go too): one small step, so that a caller pruning a million entries calls it until it
    /// returns fewer than `at_most` and the journal serves others between the calls. Running
    /// and uncertain entries are never removed. The default cannot remove and says so.
    async fn prune(&self, before: SystemTime, at_most: usize) -> Result<Vec<Entry>, JournalError> {
        let _ = (before, at_most);
        Err(JournalError::message("this journal cannot prune its entries"))
    }

    /// One page of the entries `query` selects, newest first. Both journals of this project
    /// read it from indexes — a page reads what it returns and one more (per stage asked for,
    /// beyond the first), however many entries the journal holds. The default reads every
    /// entry ([`entries`](Journal::entries)): correct, and as slow as the journal is big.
    async fn page(&self, query: &EntryQuery) -> Result<EntryPage, JournalError> {
        let limit = query.limit.max(1);
        let mut found: Vec<Entry> = self
            .entries()
            .await?
            .into_iter()
            .rev()
            .filter(|entry| query.before.is_none_or(|before| entry.id < before) && query.matches(entry))
            .take(limit + 1)
            .collect();
        let more = found.len() > limit;
        found.truncate(limit);
        Ok(EntryPage::new(found, more))
    }

    /// Removes the entry of job `job` if it ended ([`Entry::is_ended`]) — what deleting one job
    /// means (`DELETE /v1/jobs/{id}` of `daglo serve`): its input, key and labels go, and its
    /// key may name a new job. `Ok(true)` when removed, `Ok(false)` when no ended entry holds
    /// the job (none, or one still running or uncertain: never removed). What a [`JobLog`]
    /// kept about the job is the log's to clear. The default cannot remove and says so.
    async fn forget(&self, job: &JobId) -> Result<bool, JournalError> {
        let _ = job;
        Err(JournalError::message("this journal cannot remove an entry"))
    }

    /// The secret that signs callback keys, kept by the journal so a restarted process accepts
    /// the callbacks of the jobs it resumes — never in the journal's rows (the SQLite journal
    /// keeps it in a file beside its own that only its owner can read). `None`: this journal
    /// keeps none (configure one, shared by every replica).
    async fn key_secret(&self) -> Result<Option<Vec<u8>>, JournalError> {
        Ok(None)
    }

    /// What needs attention after a restart: the entries not ended, and nothing else — both
    /// journals of this project read them from an index of stages, so a restart costs what is
    /// running, not what the journal has held. The default reads every entry.
    async fn recover(&self) -> Result<Recovery, JournalError> {
        let mut recovery = Recovery::default();
        for entry in self.entries().await? {
            match entry.state {
                EntryState::Submitted { .. } => recovery.pending.push(entry),
                EntryState::Intended => recovery.uncertain.push(entry),
                _ => {}
            }
        }
        Ok(recovery)
    }
}

/// Bounded lists of records kept per job beside its journal entry — what a service writes
/// down about a job that is not its state: the callbacks it received (`daglo serve`'s inbox),
/// its webhook deliveries — and named sets of jobs (those with a delivery outstanding).
///
/// Implemented by the SQLite journal (the same file) and the Redis journal (the same
/// namespace), so replicas sharing a journal share these too. Each write is durable when its
/// future completes. A record is opaque text (JSON, for `daglo serve`); it must never hold a
/// credential.
#[async_trait]
pub trait JobLog: Send + Sync + fmt::Debug {
    /// Appends `record` to `job`'s list `list`, keeping the newest `keep` records.
    async fn append(&self, list: &str, job: &JobId, record: &str, keep: usize) -> Result<(), JournalError>;
    /// `job`'s list `list`, oldest first (empty when there is none).
    async fn read(&self, list: &str, job: &JobId) -> Result<Vec<String>, JournalError>;
    /// Removes `job`'s list `list` (a job deleted: what it held goes with it).
    async fn clear(&self, list: &str, job: &JobId) -> Result<(), JournalError>;
    /// Puts `job` into the set `set` (`member` true) or takes it out.
    async fn mark(&self, set: &str, job: &JobId, member: bool) -> Result<(), JournalError>;
    /// The jobs in the set `set`.
    async fn marked(&self, set: &str) -> Result<Vec<JobId>, JournalError>;
    /// Removes the list `list` of every job in `jobs`, and takes each out of every set in
    /// `sets` — what a retention sweep does for a step of pruned jobs, in one write where the
    /// store can (the default does it job by job).
    async fn forget_all(&self, list: &str, sets: &[&str], jobs: &[JobId]) -> Result<(), JournalError> {
        for job in jobs {
            self.clear(list, job).await?;
            for set in sets {
                self.mark(set, job, false).await?;
            }
        }
        Ok(())
    }
}
