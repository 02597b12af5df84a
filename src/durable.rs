//! Jobs as durable, queryable objects: start, look up, follow, recover.

use crate::error::TranscribeError;
use crate::transcriber::Transcriber;
use daglo_core::internal::lock;
use std::sync::Arc;

use daglo_client::SrtAnswer;
use daglo_core::{
    Claim, DeliveryError, Entry, EntryId, EntryPage, EntryQuery, EntryState, Intent, JobCursor, JobFilter,
    JobId, JobOptions, JobPage, JobSnapshot, JobState, Journal, JournalError, Outcome, OutcomeKind,
    ProgressEvent, ResultDelivery, Rid, Stage, Status, SubmitResponse, Ticket,
};
use tracing::Instrument as _;
use tracing::warn;

use crate::internal::AbortOnDrop;
use crate::table::{
    Cell, Input, Job, JobEvents, RecoveryReport, Resolution, ResultError, ResultStore, Source,
};

/// How often keeping a result is tried before the job is reported unsaved.
const KEEP_TRIES: u32 = 3;

/// The waits between those tries.
const KEEP_BACKOFF: daglo_core::Backoff = daglo_core::Backoff::new(
    std::time::Duration::from_millis(200),
    2.0,
    std::time::Duration::from_secs(2),
);

/// Keeps `outcome` in `store`, trying again (the project's one backoff) when it fails.
async fn keep(store: &dyn ResultStore, job: &JobSnapshot, outcome: &Outcome) -> Result<String, ResultError> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let mut random = daglo_core::SplitMix64::new(u64::from(std::process::id()) << 32 | u64::from(nanos));
    let mut tried = 1;
    loop {
        match store.put_job(job, outcome).await {
            Ok(kept) => return Ok(kept),
            Err(e) if tried >= KEEP_TRIES => return Err(e),
            Err(_) => {
                tokio::time::sleep(KEEP_BACKOFF.delay(tried, random.unit())).await;
                tried += 1;
            }
        }
    }
}

/// How often a start waits on another process's submit of the same key, in the journal.
const PEER_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// Who holds a claim: this host and process, for a peer's report (no secret).
pub(crate) fn owner() -> String {
    static OWNER: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| {
                h.trim()
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(64)
                    .collect::<String>()
            })
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_owned());
        format!("{host}:{}", std::process::id())
    });
    OWNER.clone()
}

/// Renews entry `entry`'s lease every third of [`SUBMIT_LEASE`](daglo_core::SUBMIT_LEASE) on
/// a task of its own (the upload is never held up by it) until the guard is dropped.
/// Jobs a page holds when the filter sets no limit ([`Transcriber::page`]).
const PAGE: usize = 50;
/// Jobs read a page at a time by [`Transcriber::jobs`] without a limit.
const LIST_STEP: usize = 500;

fn renew_lease(journal: Arc<dyn Journal>, entry: EntryId) -> AbortOnDrop {
    AbortOnDrop::new(tokio::spawn(async move {
        let every = daglo_core::SUBMIT_LEASE / 3;
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = journal.renew(entry).await {
                warn!(error = %daglo_core::error_chain(&e), "could not renew a submit's claim");
            }
        }
    }))
}

/// How long [`Transcriber::srt`] asks again while the service answers `202`.
pub const SRT_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Jobs as durable, queryable objects: start, look up, follow, recover.
impl Transcriber {
    #[must_use]
    pub(crate) fn with_results(mut self, store: Arc<dyn ResultStore>) -> Self {
        self.results = Some(store);
        self
    }

    /// Starts a job: prepares it with the strategy, records it in the journal (when there is
    /// one) **before** the submit, submits it, and returns once the submit is answered — the
    /// wait then runs in the background ([`outcome`](Transcriber::outcome),
    /// [`events`](Transcriber::events), [`job`](Transcriber::job) follow it).
    ///
    /// With a key ([`Input::key`]), a job the key names already — running, ended or uncertain;
    /// in this process or, with a journal, in any process sharing it — is returned as it is and
    /// nothing is submitted ([`Job::is_new`] is `false`). Only a job that was provably not
    /// submitted (refused: no job created) gives its key up to a new start.
    ///
    /// A failed submit is an error; the job stays listed as `not_submitted` (no job was
    /// created) or `uncertain` (one may exist: never submitted again by itself).
    pub async fn start(&self, input: Input, options: &JobOptions) -> Result<Job, TranscribeError> {
        input.validate().map_err(TranscribeError::Invalid)?;
        let described = input.describe();
        let Input { source, key, labels } = input;
        let id = JobId::random();
        // One start per key in this process: the cell is listed under the key before any await.
        let cell = {
            let mut keys = lock(&self.table.keys);
            if keys.len() > crate::table::MEMORY_JOBS {
                // Drop the keys of jobs let go from memory (the journal still holds them).
                let cells = lock(&self.table.cells);
                keys.retain(|_, id| cells.contains_key(id));
            }
            // A job that was provably not submitted gives its key up: starting it again is safe.
            if let Some(snapshot) = key
                .as_ref()
                .and_then(|k| keys.get(k))
                .and_then(|id| self.table.get(id))
                .map(|existing| existing.snapshot())
                .filter(|snapshot| snapshot.state != JobState::NotSubmitted)
            {
                return Ok(Job {
                    snapshot,
                    created: false,
                });
            }
            let mut snapshot = JobSnapshot::new(id.clone(), described.clone(), self.strategy());
            snapshot.key.clone_from(&key);
            snapshot.labels.clone_from(&labels);
            let cell = Cell::new(snapshot, None);
            if let Some(key) = &key {
                keys.insert(key.clone(), id.clone());
            }
            self.table.insert(cell.clone());
            cell
        };
        let forget = || {
            lock(&self.table.cells).remove(&id);
            if let Some(key) = &key {
                lock(&self.table.keys).remove(key);
            }
        };
        let span = cell.span();
        let mut amended = options.clone();
        let ticket = match self.delivery.prepare(&mut amended).instrument(span.clone()).await {
            Ok(ticket) => ticket,
            Err(e) => {
                cell.update(|view| {
                    view.snapshot.state = JobState::NotSubmitted;
                    view.snapshot.reason = Some(format!("not prepared: {e}"));
                });
                return Err(TranscribeError::Prepare(e));
            }
        };
        // The intent, with the caller's options and the callback key, before the submit.
        let entry = match &self.journal {
            None => None,
            Some(journal) => {
                let intent = Intent::new(described, options.digest(), self.strategy())
                    .with_owner(Some(owner()))
                    .with_job(id.clone())
                    .with_key(key.clone())
                    .with_labels(labels)
                    .with_callback_key(ticket.job_key().map(str::to_owned));
                match self
                    .claim(journal.as_ref(), intent)
                    .instrument(span.clone())
                    .await
                {
                    Ok(Claim::Created(entry)) => Some(entry),
                    other => {
                        // Not ours to submit: the key's holder is the job, or the claim failed.
                        forget();
                        drop(ticket);
                        return match other {
                            Ok(Claim::Existing(entry)) => Ok(Job {
                                snapshot: self
                                    .adopt(&entry)
                                    .map_or_else(|| entry.snapshot(), |cell| cell.snapshot()),
                                created: false,
                            }),
                            Err(source) => Err(TranscribeError::Journal { rid: None, source }),
                            Ok(_) => Err(TranscribeError::Journal {
                                rid: None,
                                source: JournalError::message(
                                    "the journal answered the claim in a way this version does not know",
                                ),
                            }),
                        };
                    }
                }
            }
        };
        if let Some(entry) = entry {
            let _ = cell.entry.set(entry);
        }
        // The claim's lease is renewed while the submit lasts (a long upload), so a peer that
        // finds it waits instead of calling the job uncertain.
        let renewing = match (&self.journal, entry) {
            (Some(journal), Some(entry)) => Some(renew_lease(journal.clone(), entry)),
            _ => None,
        };
        let sent = self.send(source, &amended).instrument(span.clone()).await;
        drop(renewing);
        let answer = match sent {
            Ok(answer) => answer,
            Err(e) => {
                let created = e.may_have_created_job();
                if !created && let (Some(journal), Some(entry)) = (&self.journal, entry) {
                    // Best effort: the entry stays uncertain if this write fails too.
                    let _ = journal
                        .not_submitted(entry, &e.to_string())
                        .instrument(span.clone())
                        .await;
                }
                cell.update(|view| {
                    view.snapshot.state = if created {
                        JobState::Uncertain
                    } else {
                        JobState::NotSubmitted
                    };
                    view.snapshot.reason = Some(e.to_string());
                });
                if created && ticket.job_key().is_some() {
                    // The job may run: its callbacks, which carry its rid, can still settle it.
                    self.listen_for_rid(cell, ticket);
                }
                return Err(TranscribeError::Submit(e));
            }
        };
        let rid = answer.rid;
        cell.update(|view| {
            view.snapshot.state = JobState::Running;
            view.snapshot.rid = Some(rid.clone());
        });
        let recorded = match (&self.journal, entry) {
            (Some(journal), Some(entry)) => journal.submitted(entry, &rid).instrument(span.clone()).await,
            _ => Ok(()),
        };
        tracing::info!(parent: &span, rid = %daglo_core::excerpt(rid.as_str(), 64), "job submitted");
        // The job runs (and is billed) whatever the journal said: follow it.
        self.follow(cell.clone(), rid.clone(), Some(ticket), None);
        recorded.map_err(|source| TranscribeError::Journal {
            rid: Some(rid),
            source,
        })?;
        Ok(Job {
            snapshot: cell.snapshot(),
            created: true,
        })
    }

    /// Claims the intent's key. A holder whose submit is still under way in another process
    /// (its lease alive: [`Entry::is_leased`]) is waited for: it gets its rid (the same job),
    /// or is refused (the key is free again), or its owner stops renewing the lease (gone
    /// mid-submit: uncertain).
    async fn claim(&self, journal: &dyn Journal, intent: Intent) -> Result<Claim, JournalError> {
        loop {
            let claim = journal.claim(intent.clone()).await?;
            let Claim::Existing(entry) = &claim else {
                return Ok(claim);
            };
            let young = Entry::is_leased;
            if !young(entry) {
                return Ok(claim);
            }
            let job = entry.intent.job.clone();
            loop {
                tokio::time::sleep(PEER_POLL).await;
                match journal.by_job(&job).await? {
                    Some(entry) if young(&entry) => {}
                    Some(entry) if !matches!(entry.state, EntryState::NotSubmitted { .. }) => {
                        return Ok(Claim::Existing(Box::new(entry)));
                    }
                    // Refused (the key is free again) or gone: claim again.
                    _ => break,
                }
            }
        }
    }

    /// Sends the submit for `source` with the prepared options.
    async fn send(
        &self,
        source: Source,
        options: &JobOptions,
    ) -> Result<SubmitResponse, daglo_client::Error> {
        match source {
            Source::File(path) => self.client.submit_file(&path, options).await,
            Source::Url(url) => self.client.submit_url(&url, options).await,
            Source::Bytes { name, bytes } => self.client.submit_bytes(&name, bytes, options).await,
            Source::Stream { name, length, reader } => {
                self.client.submit_reader(&name, length, reader, options).await
            }
        }
    }

    /// Follows a journal entry that is running and not followed here yet; `None` for any
    /// other entry (ended, uncertain, or followed already — then its cell is returned).
    fn adopt(&self, entry: &Entry) -> Option<Arc<Cell>> {
        if let Some(cell) = self.table.get(&entry.intent.job) {
            return Some(cell);
        }
        let EntryState::Submitted { rid } = &entry.state else {
            return None;
        };
        let cell = Cell::new(entry.snapshot(), Some(entry.id));
        self.table.track(cell.clone());
        self.follow(cell.clone(), rid.clone(), None, entry.intent.callback_key.clone());
        Some(cell)
    }

    /// An uncertain job whose registration lives on (`ticket`): when a callback names its rid,
    /// the job is recorded as submitted and followed to its end like any other.
    fn listen_for_rid(&self, cell: Arc<Cell>, mut ticket: Box<dyn Ticket>) {
        let this = self.clone();
        let span = cell.span();
        self.table.spawn(
            async move {
                let Some(rid) = ticket.claimed_rid().await else {
                    return; // The registration ended first: the job stays uncertain.
                };
                tracing::Span::current().record("rid", daglo_core::excerpt(rid.as_str(), 64).as_str());
                if let (Some(journal), Some(entry)) = (&this.journal, cell.entry.get().copied())
                    && let Err(e) = journal.submitted(entry, &rid).await
                {
                    warn!(error = %daglo_core::error_chain(&e), "could not record the rid a callback named");
                }
                cell.update(|view| {
                    view.snapshot.state = JobState::Running;
                    view.snapshot.rid = Some(rid.clone());
                    view.snapshot.reason = None;
                });
                let waited = this.wait_recording(&cell, ticket, rid).await;
                this.settle(&cell, waited).await;
            }
            .instrument(span),
        );
    }

    /// Waits for `rid` in the background — with `ticket` from the submit, or resumed (by its
    /// callback key, registered again, when there is one) — keeping `cell`, the journal and
    /// the result store up to date.
    fn follow(
        &self,
        cell: Arc<Cell>,
        rid: Rid,
        ticket: Option<Box<dyn Ticket>>,
        callback_key: Option<String>,
    ) {
        let this = self.clone();
        let span = cell.span();
        span.record("rid", daglo_core::excerpt(rid.as_str(), 64).as_str());
        self.table.spawn(
            async move {
                let ticket = match ticket {
                    Some(ticket) => Ok(ticket),
                    None => match &callback_key {
                        Some(key) => this.delivery.resume_registered(&rid, key).await,
                        None => this.delivery.resume(&rid),
                    },
                };
                let waited = match ticket {
                    Ok(ticket) => this.wait_recording(&cell, ticket, rid.clone()).await,
                    Err(e) => Err(e),
                };
                this.settle(&cell, waited).await;
            }
            .instrument(span),
        );
    }

    /// The wait, with progress written to the cell at once and to the journal as it can.
    async fn wait_recording(
        &self,
        cell: &Arc<Cell>,
        ticket: Box<dyn Ticket>,
        rid: Rid,
    ) -> Result<Outcome, DeliveryError> {
        let (progress, mut latest) = tokio::sync::watch::channel::<Option<(Status, Option<u32>)>>(None);
        let observer = |event: &ProgressEvent| {
            cell.observe(event);
            if let ProgressEvent::Progress { status, percent, .. } = event {
                progress.send_replace(Some((status.clone(), *percent)));
            }
        };
        let wait = ticket.wait(rid.clone(), &observer);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                biased;
                outcome = &mut wait => return outcome,
                Ok(()) = latest.changed() => {
                    let seen = latest.borrow_and_update().clone();
                    if let (Some(journal), Some(entry), Some((status, percent))) = (&self.journal, cell.entry.get().copied(), seen) {
                        // Best effort: progress is for display; the outcome is what must last.
                        if let Err(e) = journal.progressed(entry, &status, percent).await {
                            warn!(error = %e, "could not record a job's progress");
                        }
                        let requests = self.client.status_requests(&rid);
                        cell.update(|view| view.snapshot.status_requests = requests);
                        if let Err(e) = journal.requested(entry, requests).await {
                            warn!(error = %e, "could not record a job's status requests");
                        }
                    }
                }
            }
        }
    }

    /// Records how the wait ended: the result kept, the journal finished, the cell updated —
    /// in that order, so a result is never reported kept before it is.
    async fn settle(&self, cell: &Arc<Cell>, waited: Result<Outcome, DeliveryError>) {
        let id = cell.view.borrow().snapshot.id.clone();
        let outcome = match waited {
            Ok(outcome) => outcome,
            Err(e) => {
                let reason = daglo_core::error_chain(&e);
                warn!(job = %id, error = %reason, "following a job stopped without its outcome");
                cell.update(|view| {
                    view.snapshot.state = JobState::GaveUp;
                    view.snapshot.reason = Some(reason.clone());
                    view.stopped = Some(reason);
                });
                return;
            }
        };
        let (state, kind) = crate::table::state_of(&outcome);
        tracing::info!(job = %id, state = state.as_str(), "job ended");
        let requests = self.client.take_status_requests(outcome.rid());
        if let (Some(journal), Some(entry)) = (&self.journal, cell.entry.get().copied())
            && let Err(e) = journal.requested(entry, requests).await
        {
            warn!(error = %e, "could not record a job's status requests");
        }
        let mut reference = None;
        let mut unkept = None;
        if let (Some(store), Some(_)) = (&self.results, &kind) {
            let job = cell.snapshot();
            match keep(store.as_ref(), &job, &outcome).await {
                Ok(kept) => reference = Some(kept),
                Err(e) => {
                    warn!(job = %id, error = %daglo_core::error_chain(&e), "could not keep a job's result; it is not recorded as finished");
                    unkept = Some(crate::table::Unkept::Results(Arc::new(e)));
                }
            }
        }
        // Finished in the journal only once the result is kept: otherwise a restart resumes
        // the job and fetches it again.
        if unkept.is_none()
            && let (Some(journal), Some(entry), Some(kind)) =
                (&self.journal, cell.entry.get().copied(), &kind)
            && let Err(e) = journal.finished(entry, kind, reference.as_deref()).await
        {
            warn!(job = %id, error = %daglo_core::error_chain(&e), "could not record a job's end; a restart resumes it");
            unkept = Some(crate::table::Unkept::Journal(Arc::new(e)));
        }
        cell.update(|view| {
            let job = &mut view.snapshot;
            job.state = state;
            job.status_requests = requests;
            job.outcome = kind.clone();
            job.eta = None;
            if kind.as_ref().is_some_and(OutcomeKind::is_success) {
                job.progress = Some(100);
            }
            match &outcome {
                Outcome::GaveUp { reason, .. } => job.reason = Some(format!("{reason:?}")),
                Outcome::Failed { status, message, .. } => {
                    job.reason = Some(failure_reason(status, message.as_deref()))
                }
                _ => {}
            }
            view.outcome = Some(outcome);
            view.unkept = unkept;
        });
    }

    /// Follows job `id` from now on, when the journal lists it as running and nobody in this
    /// process follows it — another replica's job, say, whose replica is gone. Resumed by its
    /// rid (and its callback key, registered again), never submitted again. `Ok(true)` when it
    /// started following it; `Ok(false)` for a job followed here already, ended, or not running.
    pub(crate) async fn adopt_job(&self, id: &JobId) -> Result<bool, TranscribeError> {
        if self.table.get(id).is_some() {
            return Ok(false);
        }
        let Some(journal) = &self.journal else {
            return Ok(false);
        };
        let entry = journal
            .by_job(id)
            .await
            .map_err(|source| TranscribeError::Journal { rid: None, source })?;
        Ok(match entry {
            Some(entry) if matches!(entry.state, EntryState::Submitted { .. }) => {
                self.adopt(&entry).is_some()
            }
            _ => false,
        })
    }

    /// Settles an [`Uncertain`](JobState::Uncertain) job — one whose submit may have created
    /// a job whose rid was never recorded — with what an operator found at the service (its
    /// console): [`Resolution::Submitted`] records the rid and follows the job to its end like
    /// any other; [`Resolution::NotSubmitted`] records that no job exists, which gives its key
    /// up to a new start. Any other state is [`TranscribeError::NotUncertain`]: nothing to
    /// settle.
    pub async fn resolve(&self, id: &JobId, resolution: Resolution) -> Result<JobSnapshot, TranscribeError> {
        let journal_error = |source| TranscribeError::Journal { rid: None, source };
        let cell = self.table.get(id);
        let entry = match &self.journal {
            Some(journal) => journal.by_job(id).await.map_err(journal_error)?,
            None => None,
        };
        let state = match (&cell, &entry) {
            (Some(cell), _) => cell.snapshot().state,
            (None, Some(entry)) => entry.snapshot().state,
            (None, None) => return Err(TranscribeError::UnknownJob { id: id.clone() }),
        };
        // A journal entry with no rid whose lease lapsed is uncertain whatever a cell says.
        let uncertain = state == JobState::Uncertain
            || entry
                .as_ref()
                .is_some_and(|e| matches!(e.state, EntryState::Intended) && !e.is_leased());
        if !uncertain {
            return Err(TranscribeError::NotUncertain {
                id: id.clone(),
                state,
            });
        }
        let entry_id = cell
            .as_ref()
            .and_then(|c| c.entry.get().copied())
            .or(entry.as_ref().map(|e| e.id));
        match resolution {
            Resolution::Submitted(rid) => {
                if let (Some(journal), Some(entry_id)) = (&self.journal, entry_id) {
                    journal.submitted(entry_id, &rid).await.map_err(journal_error)?;
                }
                tracing::info!(job = %id, rid = %daglo_core::excerpt(rid.as_str(), 64), "uncertain job resolved: submitted");
                let callback_key = entry.as_ref().and_then(|e| e.intent.callback_key.clone());
                let cell = match cell {
                    Some(cell) => cell,
                    None => {
                        let mut snapshot = entry
                            .as_ref()
                            .map(Entry::snapshot)
                            .ok_or_else(|| TranscribeError::UnknownJob { id: id.clone() })?;
                        snapshot.state = JobState::Running;
                        let cell = Cell::new(snapshot, entry_id);
                        self.table.track(cell.clone());
                        cell
                    }
                };
                cell.update(|view| {
                    view.snapshot.state = JobState::Running;
                    view.snapshot.rid = Some(rid.clone());
                    view.snapshot.reason = None;
                });
                self.follow(cell.clone(), rid, None, callback_key);
                Ok(cell.snapshot())
            }
            Resolution::NotSubmitted => {
                let reason = "resolved by an operator: no job exists at the service";
                if let (Some(journal), Some(entry_id)) = (&self.journal, entry_id) {
                    journal
                        .not_submitted(entry_id, reason)
                        .await
                        .map_err(journal_error)?;
                }
                tracing::info!(job = %id, "uncertain job resolved: not submitted");
                match cell {
                    Some(cell) => {
                        cell.update(|view| {
                            view.snapshot.state = JobState::NotSubmitted;
                            view.snapshot.reason = Some(reason.to_owned());
                        });
                        Ok(cell.snapshot())
                    }
                    None => {
                        let mut snapshot = entry
                            .as_ref()
                            .map(Entry::snapshot)
                            .ok_or_else(|| TranscribeError::UnknownJob { id: id.clone() })?;
                        snapshot.state = JobState::NotSubmitted;
                        snapshot.reason = Some(reason.to_owned());
                        Ok(snapshot)
                    }
                }
            }
        }
    }

    /// The job as it is now: from this process's table, or from the journal. `None` for an id
    /// neither knows. A failed job's [`reason`](JobSnapshot::reason) is the service's message
    /// (from the result store for a job that ended before this process started).
    pub async fn job(&self, id: &JobId) -> Result<Option<JobSnapshot>, TranscribeError> {
        if let Some(cell) = self.table.get(id) {
            return Ok(Some(cell.snapshot()));
        }
        let Some(journal) = &self.journal else {
            return Ok(None);
        };
        let mut job = journal
            .by_job(id)
            .await
            .map_err(|source| TranscribeError::Journal { rid: None, source })?
            .map(|entry| entry.snapshot());
        if let Some(job) = &mut job {
            self.explain(job).await;
        }
        Ok(job)
    }

    /// Gives a failed job read from the journal its reason: the service's message as the
    /// result store kept it, else the failure status.
    async fn explain(&self, job: &mut JobSnapshot) {
        if job.state != JobState::Failed || job.reason.is_some() {
            return;
        }
        job.reason = match self.kept(&job.id).await {
            Ok(Some(Outcome::Failed { status, message, .. })) => {
                Some(failure_reason(&status, message.as_deref()))
            }
            _ => job.outcome.as_ref().map(|kind| kind.as_str().to_owned()),
        };
    }

    /// The jobs `filter` selects, newest first: those this process follows and those the
    /// journal holds. With a [`limit`](JobFilter::limit), one page of them ([`page`](Transcriber::page));
    /// without one, every page, read in turn.
    pub async fn jobs(&self, filter: JobFilter) -> Result<Vec<JobSnapshot>, TranscribeError> {
        if filter.limit.is_some() {
            return Ok(self.page(filter, None).await?.jobs);
        }
        let mut jobs = Vec::new();
        let mut after = None;
        loop {
            let page = self.page(filter.clone().limit(LIST_STEP), after.as_ref()).await?;
            jobs.extend(page.jobs);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(jobs),
            }
        }
    }

    /// One page of the jobs `filter` selects, newest first: at most its
    /// [`limit`](JobFilter::limit) (50 when it sets none), starting after `after` (the
    /// [`next`](JobPage::next) of the page before). With a journal the page is read from its
    /// indexes ([`Journal::page`]): it costs what it returns, however many jobs the journal
    /// holds; each job is shown as this process knows it when it follows it. A cursor of
    /// another transcriber kind is [`TranscribeError::Cursor`].
    ///
    /// A page may hold fewer jobs than the limit and still have a next one: the journal tells
    /// a submit under way from an uncertain one, or a running job from one given up on, only
    /// after reading it.
    pub async fn page(
        &self,
        filter: JobFilter,
        after: Option<&JobCursor>,
    ) -> Result<JobPage, TranscribeError> {
        let limit = filter.limit.unwrap_or(PAGE).max(1);
        let journal_error = |source| TranscribeError::Journal { rid: None, source };
        let wrong_cursor = |cursor: &JobCursor| TranscribeError::Cursor {
            cursor: cursor.to_string(),
        };
        let mut page = match &self.journal {
            Some(journal) => {
                let before = match after {
                    Some(cursor) => Some(cursor.as_entry().ok_or_else(|| wrong_cursor(cursor))?),
                    None => None,
                };
                let entries = match &filter.key {
                    // A key names one entry at most.
                    Some(key) => EntryPage::new(
                        journal
                            .by_key(key)
                            .await
                            .map_err(journal_error)?
                            .filter(|entry| before.is_none_or(|before| entry.id < before))
                            .into_iter()
                            .collect(),
                        false,
                    ),
                    None => {
                        let mut query = EntryQuery::newest(limit).before(before);
                        for state in &filter.states {
                            query = query.stage(Stage::of_job(*state));
                        }
                        query.labels.clone_from(&filter.labels);
                        journal.page(&query).await.map_err(journal_error)?
                    }
                };
                let next = entries
                    .more
                    .then(|| entries.entries.last().map(|entry| JobCursor::entry(entry.id)))
                    .flatten();
                let jobs = entries
                    .entries
                    .iter()
                    .map(|entry| match self.table.get(&entry.intent.job) {
                        Some(cell) => cell.snapshot(),
                        None => entry.snapshot(),
                    })
                    .filter(|job| filter.matches(job))
                    .collect();
                JobPage::new(jobs, next)
            }
            None => {
                // Only this process's jobs, at most a few thousand: sorted in memory.
                let mut jobs: Vec<JobSnapshot> = self
                    .table
                    .all()
                    .iter()
                    .map(|cell| cell.snapshot())
                    .filter(|job| filter.matches(job))
                    .collect();
                if let Some(cursor) = after {
                    let mut kept = Vec::with_capacity(jobs.len());
                    for job in jobs {
                        if cursor.is_before(&job).ok_or_else(|| wrong_cursor(cursor))? {
                            kept.push(job);
                        }
                    }
                    jobs = kept;
                }
                jobs.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
                let next = (jobs.len() > limit)
                    .then(|| jobs.get(limit - 1).map(JobCursor::job))
                    .flatten();
                jobs.truncate(limit);
                JobPage::new(jobs, next)
            }
        };
        for job in &mut page.jobs {
            self.explain(job).await;
        }
        Ok(page)
    }

    /// The job's events, in order, ending after its outcome (a `futures` [`Stream`](futures_util::Stream)).
    /// A job only the journal knows (another process follows it) is read from the journal
    /// every second.
    pub fn events(&self, id: &JobId) -> JobEvents {
        crate::table::events(self.table.clone(), self.journal.clone(), id.clone())
    }

    /// Waits for the job's outcome — the same [`Outcome`] [`wait`](Transcriber::wait) gives.
    /// A job the journal lists as running and nobody here follows is followed from now on
    /// (resumed by its rid); a job that ended before this process started answers from the
    /// result store.
    pub async fn outcome(&self, id: &JobId) -> Result<Outcome, TranscribeError> {
        let cell = match self.table.get(id) {
            Some(cell) => cell,
            None => {
                let Some(journal) = &self.journal else {
                    return Err(TranscribeError::UnknownJob { id: id.clone() });
                };
                let entry = journal
                    .by_job(id)
                    .await
                    .map_err(|source| TranscribeError::Journal { rid: None, source })?
                    .ok_or_else(|| TranscribeError::UnknownJob { id: id.clone() })?;
                match &entry.state {
                    EntryState::Submitted { .. } => self
                        .adopt(&entry)
                        .ok_or_else(|| TranscribeError::UnknownJob { id: id.clone() })?,
                    EntryState::Finished { .. } => {
                        return self
                            .kept(id)
                            .await?
                            .ok_or_else(|| TranscribeError::ResultNotKept { id: id.clone() });
                    }
                    EntryState::NotSubmitted { reason } => {
                        return Err(TranscribeError::NotSubmitted {
                            id: id.clone(),
                            reason: reason.clone(),
                        });
                    }
                    _ => return Err(TranscribeError::Uncertain { id: id.clone() }),
                }
            }
        };
        let mut view = cell.view.subscribe();
        loop {
            {
                let now = view.borrow_and_update();
                if let Some(outcome) = &now.outcome {
                    return match &now.unkept {
                        None => Ok(outcome.clone()),
                        Some(crate::table::Unkept::Results(source)) => Err(TranscribeError::Unsaved {
                            id: id.clone(),
                            outcome: Box::new(outcome.clone()),
                            source: source.clone(),
                        }),
                        Some(crate::table::Unkept::Journal(source)) => Err(TranscribeError::Unrecorded {
                            id: id.clone(),
                            outcome: Box::new(outcome.clone()),
                            source: source.clone(),
                        }),
                    };
                }
                let job = &now.snapshot;
                match job.state {
                    JobState::NotSubmitted => {
                        return Err(TranscribeError::NotSubmitted {
                            id: id.clone(),
                            reason: job.reason.clone().unwrap_or_default(),
                        });
                    }
                    JobState::Uncertain => return Err(TranscribeError::Uncertain { id: id.clone() }),
                    JobState::GaveUp => {
                        return Err(TranscribeError::Stopped {
                            id: id.clone(),
                            rid: job.rid.clone(),
                            reason: now.stopped.clone().unwrap_or_default(),
                        });
                    }
                    _ => {}
                }
            }
            if view.changed().await.is_err() {
                let rid = cell.view.borrow().snapshot.rid.clone();
                return Err(TranscribeError::Stopped {
                    id: id.clone(),
                    rid,
                    reason: "the transcriber shut down".to_owned(),
                });
            }
        }
    }

    /// The job's result if it ended with one: from memory for the jobs this process ran, from
    /// the result store otherwise. `None` while it runs, or when nothing kept it.
    pub async fn result(&self, id: &JobId) -> Result<Option<Outcome>, TranscribeError> {
        if let Some(cell) = self.table.get(id)
            && let Some(outcome) = cell.view.borrow().outcome.clone()
        {
            return Ok(Some(outcome));
        }
        self.kept(id).await
    }

    async fn kept(&self, id: &JobId) -> Result<Option<Outcome>, TranscribeError> {
        match &self.results {
            Some(store) => store.get(id).await.map_err(TranscribeError::Results),
            None => Ok(None),
        }
    }

    /// The job's subtitles (`/srt`): from the result store when kept, else from the service —
    /// asking again while it answers `202` (subtitles may lag the status) for up to
    /// [`SRT_WAIT`] — and then kept. [`SrtAnswer::Empty`] for a job with no speech;
    /// [`SrtAnswer::NotReady`] when they did not come in time.
    pub async fn srt(&self, id: &JobId) -> Result<SrtAnswer, TranscribeError> {
        if let Some(store) = &self.results
            && let Some(srt) = store.get_srt(id).await.map_err(TranscribeError::Results)?
        {
            return Ok(SrtAnswer::Ready(srt));
        }
        let job = self
            .job(id)
            .await?
            .ok_or_else(|| TranscribeError::UnknownJob { id: id.clone() })?;
        let Some(rid) = job.rid else {
            return Err(match job.state {
                JobState::NotSubmitted => TranscribeError::NotSubmitted {
                    id: id.clone(),
                    reason: job.reason.unwrap_or_default(),
                },
                _ => TranscribeError::Uncertain { id: id.clone() },
            });
        };
        let answer = self
            .client
            .srt_ready(&rid, SRT_WAIT)
            .await
            .map_err(|source| TranscribeError::Srt { rid, source })?;
        if let (Some(store), SrtAnswer::Ready(srt)) = (&self.results, &answer) {
            store.put_srt(id, srt).await.map_err(TranscribeError::Results)?;
        }
        Ok(answer)
    }

    /// Deletes a job that ended (finished, failed, not submitted): its kept result and
    /// subtitles, its journal entry (input, key, labels — its key may then name a new job) and
    /// this process's record of it. `Ok(false)` for a job neither this process nor the journal
    /// knows; [`TranscribeError::NotEnded`] for one that runs, stopped waiting or is uncertain.
    /// What a service logged about the job (its inbox, say) is the service's to clear.
    ///
    /// ```
    /// # async fn demo(transcriber: daglo::Transcriber, id: daglo::JobId) -> Result<(), daglo::TranscribeError> {
    /// if transcriber.delete(&id).await? {
    ///     println!("job {id} and its transcript are gone");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn delete(&self, id: &JobId) -> Result<bool, TranscribeError> {
        let Some(job) = self.job(id).await? else {
            return Ok(false);
        };
        if !matches!(
            job.state,
            JobState::Finished | JobState::Failed | JobState::NotSubmitted
        ) {
            return Err(TranscribeError::NotEnded {
                id: id.clone(),
                state: job.state,
            });
        }
        // The result first: a failure here leaves the job listed, and asking again finishes.
        if let Some(store) = &self.results {
            store.remove(id).await.map_err(TranscribeError::Results)?;
        }
        if let Some(journal) = &self.journal {
            journal
                .forget(id)
                .await
                .map_err(|source| TranscribeError::Journal { rid: None, source })?;
        }
        let mut keys = lock(&self.table.keys);
        let mut cells = lock(&self.table.cells);
        if let Some(cell) = cells.remove(id)
            && let Some(key) = &cell.view.borrow().snapshot.key
        {
            keys.remove(key);
        }
        Ok(true)
    }

    /// Retention: forgets every job that ended (finished, failed, not submitted) and last
    /// changed more than `older_than` ago — its journal entry ([`Journal::prune`]), its kept
    /// result, and this process's record of it. Running and uncertain jobs are kept. Returns
    /// the ids forgotten.
    ///
    /// The journal is pruned in small steps ([`PRUNE_STEP`](crate::journal::PRUNE_STEP)
    /// entries each, the task yielding between them), so pruning a million entries never
    /// holds the journal for long: other reads and writes go on meanwhile.
    pub async fn prune(&self, older_than: std::time::Duration) -> Result<Vec<JobId>, TranscribeError> {
        let before = std::time::SystemTime::now()
            .checked_sub(older_than)
            .unwrap_or(std::time::UNIX_EPOCH);
        let mut pruned = Vec::new();
        if let Some(journal) = &self.journal {
            loop {
                let step = self.prune_step(journal.as_ref(), before).await?;
                let last = step.len() < crate::journal::PRUNE_STEP;
                pruned.extend(step.into_iter().map(|entry| entry.intent.job));
                if last {
                    break;
                }
                tokio::task::yield_now().await;
            }
        }
        let mut ended = Vec::new();
        for cell in self.table.all() {
            let job = cell.snapshot();
            if job.state.is_ended() && job.updated_at < before && !pruned.contains(&job.id) {
                ended.push(job.id);
            }
        }
        self.let_go(&ended).await?;
        pruned.extend(ended);
        Ok(pruned)
    }

    /// One step of [`prune`](Transcriber::prune): at most [`PRUNE_STEP`](crate::journal::PRUNE_STEP)
    /// entries ended before `before` removed from `journal`, and let go of here.
    pub(crate) async fn prune_step(
        &self,
        journal: &dyn Journal,
        before: std::time::SystemTime,
    ) -> Result<Vec<Entry>, TranscribeError> {
        let step = journal
            .prune(before, crate::journal::PRUNE_STEP)
            .await
            .map_err(|source| TranscribeError::Journal { rid: None, source })?;
        let jobs: Vec<JobId> = step.iter().map(|entry| entry.intent.job.clone()).collect();
        self.let_go(&jobs).await?;
        Ok(step)
    }

    /// Lets go of jobs pruned from the journal: this process's record of each and its kept
    /// result.
    async fn let_go(&self, pruned: &[JobId]) -> Result<(), TranscribeError> {
        {
            let mut keys = lock(&self.table.keys);
            let mut cells = lock(&self.table.cells);
            for id in pruned {
                if let Some(cell) = cells.remove(id)
                    && let Some(key) = &cell.view.borrow().snapshot.key
                {
                    keys.remove(key);
                }
            }
        }
        if let Some(store) = &self.results {
            store.remove_all(pruned).await.map_err(TranscribeError::Results)?;
        }
        Ok(())
    }

    /// After a restart: follows again every job the journal lists as running (re-registering
    /// each one's callback, so its later callbacks are accepted) and reports the uncertain
    /// ones. Without a journal there is nothing to recover.
    pub async fn recover(&self) -> Result<RecoveryReport, TranscribeError> {
        let mut report = RecoveryReport::default();
        let Some(journal) = &self.journal else {
            return Ok(report);
        };
        let recovery = journal
            .recover()
            .await
            .map_err(|source| TranscribeError::Journal { rid: None, source })?;
        for entry in &recovery.pending {
            let id = entry.intent.job.clone();
            if self.table.get(&id).is_some() {
                report.already_followed.push(id);
            } else if self.adopt(entry).is_some() {
                report.resumed.push(id);
            }
        }
        for entry in &recovery.uncertain {
            if self.table.get(&entry.intent.job).is_some() {
                continue;
            }
            let mut snapshot = entry.snapshot();
            snapshot.state = JobState::Uncertain;
            // With its registration key kept, a callback naming the rid can still settle it.
            if let Some(key) = &entry.intent.callback_key
                && let Ok(ticket) = self.delivery.reattach(key).await
            {
                let cell = Cell::new(snapshot.clone(), Some(entry.id));
                self.table.track(cell.clone());
                self.listen_for_rid(cell, ticket);
                report.listening.push(entry.intent.job.clone());
            }
            report.uncertain.push(snapshot);
        }
        Ok(report)
    }
}

/// What a failed job's `reason` says: the service's message, with its status
/// (`file_error: the audio could not be decoded`), or the status alone.
fn failure_reason(status: &Status, message: Option<&str>) -> String {
    match message.map(str::trim).filter(|m| !m.is_empty()) {
        Some(message) => format!("{}: {message}", status.as_str()),
        None => status.as_str().to_owned(),
    }
}
