//! The job table behind a [`Transcriber`](crate::Transcriber): inputs, job handles, the
//! in-memory cells that follow each job, the event stream, and the result store.

use daglo_core::internal::lock;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use daglo_core::{
    BoxError, EntryId, JobEvent, JobId, JobSnapshot, JobState, Journal, Outcome, OutcomeKind, ProgressEvent,
    ProgressTracker, Rid, Status, ValidationError, check_job_text,
};
use futures_util::Stream;
use tokio::sync::watch;

/// What to transcribe — a file, a URL, bytes or a stream — with the caller's key and labels.
///
/// ```
/// use daglo::Input;
///
/// let input = Input::file("meeting.m4a").key("meeting-42").label("team", "sales");
/// let upload = Input::bytes("call.wav", vec![0u8; 1024]);
/// let remote = Input::url("https://example.com/a.mp3");
/// ```
pub struct Input {
    pub(crate) source: Source,
    pub(crate) key: Option<String>,
    pub(crate) labels: BTreeMap<String, String>,
}

/// Where an input's audio comes from.
pub(crate) enum Source {
    File(PathBuf),
    Url(String),
    Bytes {
        name: String,
        bytes: Bytes,
    },
    Stream {
        name: String,
        length: u64,
        reader: Box<dyn tokio::io::AsyncRead + Send + Unpin>,
    },
}

impl Input {
    /// A local file, streamed from disk when submitted.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self::from_source(Source::File(path.into()))
    }

    /// Audio at a public URL.
    pub fn url(url: impl Into<String>) -> Self {
        Self::from_source(Source::Url(url.into()))
    }

    /// Audio in memory, uploaded as a file called `file_name` (its extension must be one the
    /// service accepts).
    pub fn bytes(file_name: impl Into<String>, bytes: impl Into<Bytes>) -> Self {
        Self::from_source(Source::Bytes {
            name: file_name.into(),
            bytes: bytes.into(),
        })
    }

    /// `length` bytes read from `reader`, uploaded as a file called `file_name` — streamed like
    /// a file, never held whole. A stream is read once: a submit refused before its upload
    /// finished is reported, not retried.
    pub fn stream(
        file_name: impl Into<String>,
        length: u64,
        reader: impl tokio::io::AsyncRead + Send + Unpin + 'static,
    ) -> Self {
        Self::from_source(Source::Stream {
            name: file_name.into(),
            length,
            reader: Box::new(reader),
        })
    }

    fn from_source(source: Source) -> Self {
        Self {
            source,
            key: None,
            labels: BTreeMap::new(),
        }
    }

    /// The caller's key: a second start with the same key returns the same job and submits
    /// nothing (across processes sharing the journal). At most 4096 bytes, no control characters.
    #[must_use]
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// A label to filter jobs by ([`JobFilter::label`](crate::jobs::JobFilter::label)).
    #[must_use]
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(name.into(), value.into());
        self
    }

    /// The caller's key ([`key`](Self::key)), if it has one.
    pub fn idempotency_key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// The caller's labels ([`label`](Self::label)).
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.labels
    }

    /// What the journal records as the input: the path, the URL, or `upload:<file name>`.
    pub fn describe(&self) -> String {
        match &self.source {
            Source::File(path) => path.display().to_string(),
            Source::Url(url) => url.clone(),
            Source::Bytes { name, .. } | Source::Stream { name, .. } => format!("upload:{name}"),
        }
    }

    /// Checks the key and labels.
    pub(crate) fn validate(&self) -> Result<(), ValidationError> {
        if let Some(key) = &self.key {
            check_job_text("key", key)?;
        }
        for (name, value) in &self.labels {
            check_job_text("label name", name)?;
            check_job_text("label value", value)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Input")
            .field("input", &self.describe())
            .field("key", &self.key)
            .field("labels", &self.labels)
            .finish_non_exhaustive()
    }
}

/// What an operator found at the service about an uncertain job
/// ([`Transcriber::resolve`](crate::Transcriber::resolve)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Resolution {
    /// The job exists under this rid: record it and follow the job.
    Submitted(Rid),
    /// No job exists: record that nothing was submitted, which frees its key.
    NotSubmitted,
}

/// A started job: its id, and what it looked like when `start` returned.
#[derive(Debug, Clone)]
pub struct Job {
    pub(crate) snapshot: JobSnapshot,
    pub(crate) created: bool,
}

impl Job {
    /// The job's id, stable across restarts.
    pub fn id(&self) -> JobId {
        self.snapshot.id.clone()
    }

    /// The service's job id, when it was submitted.
    pub fn rid(&self) -> Option<&Rid> {
        self.snapshot.rid.as_ref()
    }

    /// The job as `start` left it.
    pub fn snapshot(&self) -> &JobSnapshot {
        &self.snapshot
    }

    /// Whether this start submitted it (`false`: its key named a job that existed already).
    pub fn is_new(&self) -> bool {
        self.created
    }
}

/// What [`Transcriber::recover`](crate::Transcriber::recover) did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Jobs found running in the journal and followed again (their callbacks registered again
    /// when the strategy uses callbacks).
    pub resumed: Vec<JobId>,
    /// Jobs this transcriber was following already.
    pub already_followed: Vec<JobId>,
    /// Jobs whose submit may have created a job whose rid was never recorded: a job may exist
    /// and be billed. Never submitted again; check them at the service.
    pub uncertain: Vec<JobSnapshot>,
    /// Those of the uncertain jobs whose callback registration was made again: a callback that
    /// names the rid turns one into a running job, followed to its end.
    pub listening: Vec<JobId>,
}

/// Why a result could not be stored or read.
#[derive(Debug, thiserror::Error)]
#[error("the result store failed: {what}")]
pub struct ResultError {
    what: String,
    #[source]
    source: Option<BoxError>,
}

impl ResultError {
    /// An error saying `what` failed, with its cause.
    pub fn new(what: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self {
            what: what.into(),
            source: Some(source.into()),
        }
    }
}

/// Where finished jobs' results are kept, so [`Transcriber::result`](crate::Transcriber::result)
/// answers after a restart. Opt-in: without a store nothing keeps transcripts.
#[async_trait]
pub trait ResultStore: Send + Sync + fmt::Debug {
    /// Keeps `outcome` (a transcript, an empty result or a failure) for `job`; durable when the
    /// future completes. Returns a reference to record in the journal (a path, never the text).
    async fn put(&self, job: &JobId, outcome: &Outcome) -> Result<String, ResultError>;
    /// Keeps `outcome` for the job `job` describes — what the transcriber calls, before it
    /// records the job finished. A store that names its files after the job's key or labels
    /// (the CLI's output directory does) reads them here; the default keeps by id
    /// ([`put`](ResultStore::put)).
    async fn put_job(&self, job: &JobSnapshot, outcome: &Outcome) -> Result<String, ResultError> {
        self.put(&job.id, outcome).await
    }
    /// The outcome kept for `job`, if any.
    async fn get(&self, job: &JobId) -> Result<Option<Outcome>, ResultError>;
    /// Keeps the job's subtitles.
    async fn put_srt(&self, job: &JobId, srt: &str) -> Result<(), ResultError>;
    /// The subtitles kept for `job`, if any.
    async fn get_srt(&self, job: &JobId) -> Result<Option<String>, ResultError>;
    /// Forgets everything kept for `job`.
    async fn remove(&self, job: &JobId) -> Result<(), ResultError>;
    /// Forgets everything kept for each of `jobs` — a step of pruning; the default removes them
    /// one by one, a store that can do better (one trip to a blocking thread) overrides it.
    async fn remove_all(&self, jobs: &[JobId]) -> Result<(), ResultError> {
        for job in jobs {
            self.remove(job).await?;
        }
        Ok(())
    }
}

/// A [`ResultStore`] in a directory: `<job id>.json` (the service's final body and the rid),
/// `<job id>.txt` (the transcript) and `<job id>.srt` (subtitles, when asked for), each written
/// whole to a temporary file, synced, then renamed — a full disk leaves no half file and
/// fails the write instead.
#[derive(Debug, Clone)]
pub struct DirResults {
    dir: PathBuf,
}

impl DirResults {
    /// Results in `dir`, created (with its parents) when missing. On Unix the folder is
    /// created `0700` and every result file `0600`: transcripts are for this user alone.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, ResultError> {
        let dir = dir.into();
        daglo_core::internal::private_dir(&dir)
            .map_err(|e| ResultError::new(format!("cannot create {}", dir.display()), e))?;
        Ok(Self { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, job: &JobId, extension: &str) -> PathBuf {
        self.dir.join(format!("{job}.{extension}"))
    }

    async fn write(&self, path: PathBuf, contents: Vec<u8>) -> Result<(), ResultError> {
        tokio::task::spawn_blocking(move || write_whole(&path, &contents))
            .await
            .map_err(|e| ResultError::new("the result writer stopped", e))?
    }

    async fn read(&self, path: PathBuf) -> Result<Option<Vec<u8>>, ResultError> {
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ResultError::new(format!("cannot read {}", path.display()), e)),
        }
    }
}

/// Writes `contents` to a temporary file beside `path`, syncs it, and renames it over `path`.
fn write_whole(path: &Path, contents: &[u8]) -> Result<(), ResultError> {
    use std::io::Write;
    let temporary = path.with_extension(format!(
        "{}.partial",
        path.extension().and_then(|e| e.to_str()).unwrap_or("out")
    ));
    let written = daglo_core::internal::private_file(&temporary).and_then(|mut file| {
        file.write_all(contents)?;
        file.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&temporary, path)) {
        let _ = std::fs::remove_file(&temporary);
        return Err(ResultError::new(format!("cannot write {}", path.display()), e));
    }
    Ok(())
}

#[async_trait]
impl ResultStore for DirResults {
    async fn put(&self, job: &JobId, outcome: &Outcome) -> Result<String, ResultError> {
        let body = match outcome {
            Outcome::Transcript { body, .. } => serde_json::to_value(body.as_ref()),
            Outcome::Empty { .. } => serde_json::to_value(daglo_core::StatusBody::new(Status::Transcribed)),
            Outcome::Failed { status, message, .. } => {
                let mut body = daglo_core::StatusBody::new(status.clone());
                body.message.clone_from(message);
                serde_json::to_value(body)
            }
            Outcome::GaveUp { .. } => {
                return Err(ResultError::new(
                    "keep a result",
                    "a job given up on has no result to keep",
                ));
            }
            _ => return Err(ResultError::new("keep a result", "an outcome of an unknown kind")),
        }
        .map_err(|e| ResultError::new("encode the result", e))?;
        let record = serde_json::json!({"rid": outcome.rid().as_str(), "body": body});
        let json =
            serde_json::to_vec_pretty(&record).map_err(|e| ResultError::new("encode the result", e))?;
        if let Some(text) = outcome.transcript() {
            self.write(self.path(job, "txt"), text.into_bytes()).await?;
        }
        let path = self.path(job, "json");
        self.write(path.clone(), json).await?;
        Ok(path.display().to_string())
    }

    async fn get(&self, job: &JobId) -> Result<Option<Outcome>, ResultError> {
        let Some(bytes) = self.read(self.path(job, "json")).await? else {
            return Ok(None);
        };
        let unreadable = |reason: &str| {
            ResultError::new(
                format!("the result of job {job} is unreadable"),
                reason.to_owned(),
            )
        };
        let record: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| unreadable(&e.to_string()))?;
        let rid = record["rid"].as_str().ok_or_else(|| unreadable("no rid"))?;
        let body = serde_json::to_vec(&record["body"]).map_err(|e| unreadable(&e.to_string()))?;
        let body = daglo_core::decode_status_body(&body).map_err(|e| unreadable(&e.to_string()))?;
        Outcome::from_terminal_body(Rid::new(rid), body)
            .map(Some)
            .ok_or_else(|| unreadable("the kept body is not a final one"))
    }

    async fn put_srt(&self, job: &JobId, srt: &str) -> Result<(), ResultError> {
        self.write(self.path(job, "srt"), srt.as_bytes().to_vec()).await
    }

    async fn get_srt(&self, job: &JobId) -> Result<Option<String>, ResultError> {
        Ok(self
            .read(self.path(job, "srt"))
            .await?
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
    }

    async fn remove(&self, job: &JobId) -> Result<(), ResultError> {
        self.remove_all(std::slice::from_ref(job)).await
    }

    async fn remove_all(&self, jobs: &[JobId]) -> Result<(), ResultError> {
        // Every file of every job on one trip to a blocking thread.
        let paths: Vec<(JobId, PathBuf)> = jobs
            .iter()
            .flat_map(|job| ["json", "txt", "srt"].map(|extension| (job.clone(), self.path(job, extension))))
            .collect();
        tokio::task::spawn_blocking(move || {
            for (job, path) in paths {
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(ResultError::new(
                            format!("cannot remove the result of job {job}"),
                            e,
                        ));
                    }
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| ResultError::new("the result remover stopped", e))?
    }
}

/// How many jobs a transcriber keeps in memory before it lets go of ended ones (with their
/// outcomes): a long-running service does not grow without bound.
pub(crate) const MEMORY_JOBS: usize = 4096;

/// Events a stream may fall behind by before it catches up from the snapshot.
const EVENT_BUFFER: usize = 256;

/// How long past its predicted end a job may show no progress before it counts as stalled:
/// this many times the predicted total, and at least [`STALL_FLOOR`].
const STALL_FACTOR: u32 = 3;
/// The least time without progress that counts as stalled.
const STALL_FLOOR: Duration = Duration::from_secs(60);

/// What one job looks like now, and how it ended once it did.
#[derive(Debug, Clone)]
pub(crate) struct View {
    pub(crate) snapshot: JobSnapshot,
    pub(crate) outcome: Option<Outcome>,
    /// Why the outcome, fetched, is not kept or not recorded finished.
    pub(crate) unkept: Option<Unkept>,
    /// Why the wait stopped without an outcome.
    pub(crate) stopped: Option<String>,
}

/// Why a fetched outcome is not kept (the result store failed) or not recorded finished (the
/// journal failed): [`outcome`](crate::Transcriber::outcome) says so, with the outcome.
#[derive(Debug, Clone)]
pub(crate) enum Unkept {
    Results(Arc<ResultError>),
    Journal(Arc<daglo_core::JournalError>),
}

/// The bounded label of a strategy's name.
pub(crate) fn strategy_label(strategy: &str) -> &'static str {
    match strategy {
        "polling" => "polling",
        "callback" => "callback",
        "hybrid" => "hybrid",
        _ => "other",
    }
}

/// The in-flight gauge's state for `state`; `None` once the job no longer runs.
fn in_flight(state: JobState) -> Option<&'static str> {
    match state {
        JobState::Submitting => Some("submitting"),
        JobState::Running => Some("running"),
        JobState::Uncertain => Some("uncertain"),
        _ => None,
    }
}

/// The live record of one job this process follows.
#[derive(Debug)]
pub(crate) struct Cell {
    pub(crate) view: watch::Sender<View>,
    /// Each change as events, for the streams following the job: made by the first stream
    /// (its buffer is ~20 KiB, which ten thousand running jobs nobody follows need not hold).
    events: std::sync::OnceLock<tokio::sync::broadcast::Sender<JobEvent>>,
    /// Its journal entry, once recorded.
    pub(crate) entry: std::sync::OnceLock<EntryId>,
    started: Instant,
    tracker: Mutex<(ProgressTracker, Instant)>,
    /// The job's `daglo.job` span: its submit, status requests, confirmation and journal
    /// writes are its children. Let go when the job ends, so the span closes (and is
    /// exported) then, not when the table forgets the job.
    span: Mutex<Option<tracing::Span>>,
}

impl Cell {
    pub(crate) fn new(snapshot: JobSnapshot, entry: Option<EntryId>) -> Arc<Self> {
        let now = Instant::now();
        let recorded = std::sync::OnceLock::new();
        if let Some(entry) = entry {
            let _ = recorded.set(entry);
        }
        daglo_core::telemetry::job_moved(
            strategy_label(&snapshot.strategy),
            None,
            in_flight(snapshot.state),
        );
        let span = tracing::info_span!(
            "daglo.job",
            job.id = %snapshot.id,
            strategy = strategy_label(&snapshot.strategy),
            key = snapshot.key.as_deref().map(|k| daglo_core::excerpt(k, 64)),
            rid = tracing::field::Empty,
        );
        Arc::new(Self {
            span: Mutex::new(Some(span)),
            view: watch::Sender::new(View {
                snapshot,
                outcome: None,
                unkept: None,
                stopped: None,
            }),
            entry: recorded,
            events: std::sync::OnceLock::new(),
            started: now,
            tracker: Mutex::new((ProgressTracker::default(), now)),
        })
    }

    /// The job's span while it runs (a disabled one after its end).
    pub(crate) fn span(&self) -> tracing::Span {
        lock(&self.span).clone().unwrap_or_else(tracing::Span::none)
    }

    pub(crate) fn snapshot(&self) -> JobSnapshot {
        let mut snapshot = self.view.borrow().snapshot.clone();
        // Stalled: running, and no progress for far longer than the job was predicted to take.
        if snapshot.state == JobState::Running && !snapshot.stalled {
            let tracker = lock(&self.tracker);
            let (tracker, moved) = &*tracker;
            let at = self.started.elapsed();
            if let Some(remaining) = tracker.predicted_remaining(at) {
                let predicted_total = at + remaining;
                let still = moved.elapsed();
                if remaining.is_zero() && still > (predicted_total * STALL_FACTOR).max(STALL_FLOOR) {
                    snapshot.stalled = true;
                }
            }
        }
        snapshot
    }

    /// Changes the snapshot, stamps it, and tells the streams what changed.
    pub(crate) fn update(&self, change: impl FnOnce(&mut View)) {
        let mut changes = VecDeque::new();
        self.view.send_modify(|view| {
            let before = view.snapshot.clone();
            change(view);
            view.snapshot.updated_at = SystemTime::now();
            diff(Some(&before), &view.snapshot, &mut changes);
            let after = &view.snapshot;
            if before.state != after.state {
                let strategy = strategy_label(&after.strategy);
                daglo_core::telemetry::job_moved(strategy, in_flight(before.state), in_flight(after.state));
                let ended = |state: JobState| {
                    matches!(state, JobState::Finished | JobState::Failed | JobState::GaveUp)
                };
                if ended(after.state) && !ended(before.state) {
                    let outcome = match (&after.outcome, after.state) {
                        (Some(daglo_core::OutcomeKind::Transcript), _) => "transcript",
                        (Some(daglo_core::OutcomeKind::Empty), _) => "empty",
                        (_, JobState::GaveUp) => "gave_up",
                        _ => "failed",
                    };
                    daglo_core::telemetry::job_ended(strategy, outcome, self.started.elapsed().as_secs_f64());
                }
                if after.state.is_ended() || after.state == JobState::GaveUp {
                    // Its last child is done: the span closes once the waiting task lets go.
                    lock(&self.span).take();
                }
            }
        });
        // No stream listening is fine: the snapshot holds the state. A stream that starts
        // meanwhile subscribed before reading the snapshot, so it sees this change there.
        if let Some(events) = self.events.get() {
            for event in changes {
                let _ = events.send(event);
            }
        }
    }

    /// Takes in a progress event from the strategy.
    pub(crate) fn observe(&self, event: &ProgressEvent) {
        match event {
            ProgressEvent::Progress { status, percent, .. } => {
                let eta = {
                    let mut tracker = lock(&self.tracker);
                    let at = self.started.elapsed();
                    tracker.0.observe(at, *percent, 0.5);
                    // Without a percent there is no prediction, and so no stall to measure.
                    if percent.is_some() {
                        tracker.1 = Instant::now();
                    }
                    tracker.0.predicted_remaining(at)
                };
                let (status, percent) = (status.clone(), *percent);
                self.update(|view| {
                    let job = &mut view.snapshot;
                    job.status = Some(status);
                    if percent.is_some() {
                        job.progress = percent;
                    }
                    job.eta = eta;
                    job.stalled = false;
                });
            }
            ProgressEvent::Stalled { .. } => self.update(|view| view.snapshot.stalled = true),
            _ => {}
        }
    }
}

/// The jobs a transcriber follows, by id, and the keys it has started (for idempotency when
/// there is no journal). Lock order: `keys` before `cells`.
#[derive(Debug, Default)]
pub(crate) struct Table {
    pub(crate) cells: Mutex<HashMap<JobId, Arc<Cell>>>,
    pub(crate) keys: Mutex<HashMap<String, JobId>>,
    pub(crate) tasks: Mutex<Option<tokio::task::JoinSet<()>>>,
}

impl Table {
    pub(crate) fn get(&self, id: &JobId) -> Option<Arc<Cell>> {
        lock(&self.cells).get(id).cloned()
    }

    /// Lists `cell` under its id and, when it has one, its key: a job taken up from the
    /// journal.
    pub(crate) fn track(&self, cell: Arc<Cell>) {
        let (id, key) = {
            let view = cell.view.borrow();
            (view.snapshot.id.clone(), view.snapshot.key.clone())
        };
        if let Some(key) = key {
            lock(&self.keys).insert(key, id);
        }
        self.insert(cell);
    }

    /// Lists `cell`; past [`MEMORY_JOBS`] jobs in memory, the ended ones that changed longest
    /// ago are let go (the journal and the result store still answer for them).
    pub(crate) fn insert(&self, cell: Arc<Cell>) {
        let id = cell.view.borrow().snapshot.id.clone();
        let mut cells = lock(&self.cells);
        cells.insert(id, cell);
        if cells.len() <= MEMORY_JOBS {
            return;
        }
        let mut ended: Vec<(SystemTime, JobId)> = cells
            .iter()
            .filter_map(|(id, cell)| {
                let view = cell.view.borrow();
                let job = &view.snapshot;
                is_final(job.state).then(|| (job.updated_at, id.clone()))
            })
            .collect();
        ended.sort();
        let excess = cells.len() - MEMORY_JOBS / 2;
        // The key map is not touched here (its lock comes first, and a start holds it while
        // listing its cell); a start drops the keys of jobs let go.
        for (_, id) in ended.into_iter().take(excess) {
            cells.remove(&id);
        }
    }

    pub(crate) fn all(&self) -> Vec<Arc<Cell>> {
        lock(&self.cells).values().cloned().collect()
    }

    /// Runs `work` in the background until it ends or the transcriber shuts down.
    pub(crate) fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        let mut tasks = lock(&self.tasks);
        let tasks = tasks.get_or_insert_with(tokio::task::JoinSet::new);
        // Reap what has ended, so the set holds only running waits.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(work);
    }

    /// Stops every background wait, and waits until each has let go of what it held (its
    /// job's span among them: the span is closed, and exported, when this returns).
    pub(crate) async fn stop(&self) {
        let tasks = lock(&self.tasks).take();
        if let Some(mut tasks) = tasks {
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
    }
}

/// A job's events, in order, ending after the outcome: a [`Stream`] of [`JobEvent`]. Changes
/// that come faster than they are read are merged (the latest progress wins); the end is never
/// missed.
pub struct JobEvents {
    inner: Pin<Box<dyn Stream<Item = JobEvent> + Send>>,
}

impl fmt::Debug for JobEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JobEvents")
    }
}

impl Stream for JobEvents {
    type Item = JobEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<JobEvent>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// Whether a job in `state` will see no more events from this process.
pub(crate) fn is_final(state: JobState) -> bool {
    state.is_ended() || matches!(state, JobState::GaveUp | JobState::Uncertain)
}

/// The events between two snapshots of one job.
fn diff(before: Option<&JobSnapshot>, now: &JobSnapshot, out: &mut VecDeque<JobEvent>) {
    if let Some(rid) = &now.rid
        && before.is_none_or(|b| b.rid.is_none())
    {
        out.push_back(JobEvent::Submitted { rid: rid.clone() });
    }
    if let Some(status) = &now.status
        && before.is_none_or(|b| b.status != now.status || b.progress != now.progress)
        && !is_final(now.state)
    {
        out.push_back(JobEvent::Progress {
            status: status.clone(),
            progress: now.progress,
            eta: now.eta,
        });
    }
    if now.stalled && before.is_none_or(|b| !b.stalled) {
        out.push_back(JobEvent::Stalled);
    }
    if is_final(now.state) {
        out.push_back(JobEvent::Ended {
            state: now.state,
            outcome: now.outcome.clone(),
        });
    }
}

/// Where an event stream is.
enum Follow {
    /// Not looked up yet.
    Start,
    /// A job this process follows.
    Live(Arc<Cell>, tokio::sync::broadcast::Receiver<JobEvent>),
    /// A job only the journal knows (another process follows it): read again every second.
    Journal(Option<Box<JobSnapshot>>),
    Done,
}

/// Starts following `cell` live: what changed since `seen` (everything, for `None`) first,
/// then each change as it happens.
fn live(cell: &Arc<Cell>, seen: Option<&JobSnapshot>, queue: &mut VecDeque<JobEvent>) -> Follow {
    // Subscribe before reading the snapshot: a change in between is seen twice at worst.
    let receiver = cell
        .events
        .get_or_init(|| tokio::sync::broadcast::Sender::new(EVENT_BUFFER))
        .subscribe();
    let now = cell.view.borrow().snapshot.clone();
    let mut catch_up = VecDeque::new();
    diff(seen, &now, &mut catch_up);
    queue.extend(catch_up);
    if is_final(now.state) {
        Follow::Done
    } else {
        Follow::Live(cell.clone(), receiver)
    }
}

/// How often a stream of a job only the journal knows reads the journal again.
const JOURNAL_FOLLOW: Duration = Duration::from_secs(1);

/// The stream of `id`'s events, from this process's table or, failing that, the journal.
pub(crate) fn events(table: Arc<Table>, journal: Option<Arc<dyn Journal>>, id: JobId) -> JobEvents {
    // A job followed here is subscribed to now, so nothing from this moment on is missed.
    let mut queue = VecDeque::new();
    let start = match table.get(&id) {
        Some(cell) => live(&cell, None, &mut queue),
        None => Follow::Start,
    };
    let stream = futures_util::stream::unfold((start, queue), move |(mut follow, mut queue)| {
        let (table, journal, id) = (table.clone(), journal.clone(), id.clone());
        async move {
            loop {
                if let Some(event) = queue.pop_front() {
                    return Some((event, (follow, queue)));
                }
                follow = match follow {
                    Follow::Done => return None,
                    Follow::Start => match table.get(&id) {
                        Some(cell) => live(&cell, None, &mut queue),
                        None => Follow::Journal(None),
                    },
                    Follow::Live(cell, mut receiver) => match receiver.recv().await {
                        Ok(event) => {
                            let ended = matches!(event, JobEvent::Ended { .. });
                            queue.push_back(event);
                            if ended {
                                Follow::Done
                            } else {
                                Follow::Live(cell, receiver)
                            }
                        }
                        // Fell behind: catch up from the snapshot, then go on.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            let now = cell.view.borrow().snapshot.clone();
                            live(&cell, Some(&now), &mut queue)
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => Follow::Done,
                    },
                    Follow::Journal(before) => {
                        let Some(journal) = &journal else { return None };
                        let Ok(Some(entry)) = journal.by_job(&id).await else {
                            return None;
                        };
                        // A journal-only entry with no rid belongs to a submit elsewhere.
                        let now = entry.snapshot();
                        if let Some(cell) = table.get(&id) {
                            // This process took the job up meanwhile.
                            live(&cell, before.as_deref(), &mut queue)
                        } else {
                            diff(before.as_deref(), &now, &mut queue);
                            if is_final(now.state) {
                                Follow::Done
                            } else {
                                if before.as_ref().is_some_and(|b| b.updated_at == now.updated_at) {
                                    tokio::time::sleep(JOURNAL_FOLLOW).await;
                                }
                                Follow::Journal(Some(Box::new(now)))
                            }
                        }
                    }
                };
            }
        }
    });
    JobEvents {
        inner: Box::pin(stream),
    }
}

/// The state an outcome leaves a job in.
pub(crate) fn state_of(outcome: &Outcome) -> (JobState, Option<OutcomeKind>) {
    match OutcomeKind::of(outcome) {
        Some(kind) if kind.is_success() => (JobState::Finished, Some(kind)),
        Some(kind) => (JobState::Failed, Some(kind)),
        None => (JobState::GaveUp, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(state: JobState) -> Arc<Cell> {
        let mut snapshot = JobSnapshot::new(JobId::random(), "a.wav", "polling");
        snapshot.state = state;
        Cell::new(snapshot, None)
    }

    #[test]
    fn memory_lets_ended_jobs_go_and_keeps_running_ones() {
        let table = Table::default();
        let running: Vec<Arc<Cell>> = (0..10).map(|_| cell(JobState::Running)).collect();
        for cell in &running {
            table.insert(cell.clone());
        }
        for _ in 0..MEMORY_JOBS {
            table.insert(cell(JobState::Finished));
        }
        let held = table.all().len();
        assert!(held <= MEMORY_JOBS, "{held} jobs in memory");
        for cell in &running {
            let id = cell.view.borrow().snapshot.id.clone();
            assert!(table.get(&id).is_some(), "a running job is never let go");
        }
    }
}
