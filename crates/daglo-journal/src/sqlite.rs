//! The journal's table and the statements that move an entry through its states.

use daglo_core::internal::lock;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use daglo_core::{
    Claim, Entry, EntryId, EntryPage, EntryQuery, EntryState, Intent, JobId, JobLog, Journal, JournalError,
    OutcomeKind, Recovery, Rid, Status,
};
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};

/// One table, one row per input; the state is the set of columns filled.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    input           TEXT NOT NULL,
    options_digest  TEXT NOT NULL,
    strategy        TEXT NOT NULL,
    intended_at_ms  INTEGER NOT NULL,
    not_submitted   TEXT,
    rid             TEXT,
    outcome         TEXT,
    result          TEXT,
    job_id          TEXT,
    key             TEXT,
    labels          TEXT,
    callback_key    TEXT,
    status          TEXT,
    progress        INTEGER,
    updated_at_ms   INTEGER,
    owner           TEXT,
    status_requests INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_by_input ON jobs (input);
CREATE TABLE IF NOT EXISTS job_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    list    TEXT NOT NULL,
    job     TEXT NOT NULL,
    record  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS job_log_by_job ON job_log (list, job, id);
CREATE TABLE IF NOT EXISTS job_marks (
    name    TEXT NOT NULL,
    job     TEXT NOT NULL,
    PRIMARY KEY (name, job)
);
";

/// Columns added since the first version (a fresh journal has them from the start), each added
/// to an older journal when it is opened.
const ADDED: [(&str, &str); 10] = [
    ("job_id", "TEXT"),
    ("key", "TEXT"),
    ("labels", "TEXT"),
    ("callback_key", "TEXT"),
    ("status", "TEXT"),
    ("progress", "INTEGER"),
    ("updated_at_ms", "INTEGER"),
    ("owner", "TEXT"),
    ("status_requests", "INTEGER"),
    // Where the entry stands (`Stage::index`), computed from the columns that say it: what
    // the indexes of stages are built on.
    (
        "stage",
        "INTEGER GENERATED ALWAYS AS (CASE WHEN not_submitted IS NOT NULL THEN 4 WHEN rid IS NULL THEN 0 \
         WHEN outcome IS NULL THEN 1 WHEN outcome IN ('transcript', 'empty') THEN 2 ELSE 3 END) VIRTUAL",
    ),
];

/// The schema's version (`PRAGMA user_version`) once every index below is filled: an older
/// journal's labels and times are copied into them once, when it is opened.
const VERSION: i64 = 2;

/// Indexes over the added columns; a key is held by one entry at most. Every read of a page,
/// a recovery or a pruning step walks one of these (named in the statement: `INDEXED BY`), so
/// it costs what it returns, not what the journal holds. Labels live in a table of their own,
/// one row per label with its entry's stage, kept by triggers — so a write by any version of
/// this code keeps them right.
const INDEXES: &str = "
CREATE UNIQUE INDEX IF NOT EXISTS jobs_by_key ON jobs (key) WHERE key IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS jobs_by_job ON jobs (job_id) WHERE job_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_by_stage ON jobs (stage, id);
CREATE INDEX IF NOT EXISTS jobs_ended_by_time ON jobs (updated_at_ms) WHERE stage >= 2;
CREATE INDEX IF NOT EXISTS job_log_of_job ON job_log (job);
CREATE INDEX IF NOT EXISTS job_marks_of_job ON job_marks (job);
CREATE TABLE IF NOT EXISTS job_labels (
    entry   INTEGER NOT NULL,
    name    TEXT NOT NULL,
    value   TEXT NOT NULL,
    stage   INTEGER NOT NULL,
    PRIMARY KEY (entry, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS job_labels_by_label ON job_labels (name, value, entry);
CREATE INDEX IF NOT EXISTS job_labels_by_stage ON job_labels (name, value, stage, entry);
CREATE TRIGGER IF NOT EXISTS jobs_labels_insert AFTER INSERT ON jobs
WHEN NEW.labels IS NOT NULL AND json_valid(NEW.labels) BEGIN
    INSERT OR IGNORE INTO job_labels (entry, name, value, stage)
    SELECT NEW.id, key, value, NEW.stage FROM json_each(NEW.labels) WHERE type = 'text';
END;
CREATE TRIGGER IF NOT EXISTS jobs_labels_stage AFTER UPDATE OF not_submitted, rid, outcome ON jobs
WHEN NEW.stage IS NOT OLD.stage BEGIN
    UPDATE job_labels SET stage = NEW.stage WHERE entry = NEW.id;
END;
CREATE TRIGGER IF NOT EXISTS jobs_labels_delete AFTER DELETE ON jobs BEGIN
    DELETE FROM job_labels WHERE entry = OLD.id;
END;
";

/// Fills the indexes of an older journal (before [`VERSION`]): its labels into their table,
/// a time of last change on every entry.
const UPGRADE: &str = "
INSERT OR IGNORE INTO job_labels (entry, name, value, stage)
SELECT jobs.id, j.key, j.value, jobs.stage FROM jobs, json_each(jobs.labels) AS j
WHERE jobs.labels IS NOT NULL AND json_valid(jobs.labels) AND j.type = 'text';
UPDATE jobs SET updated_at_ms = intended_at_ms WHERE updated_at_ms IS NULL;
";

/// A [`Journal`] in one SQLite file. Cheap to clone; clones share its connections. Work runs
/// on tokio's blocking pool: writes on one connection, each committed before its future
/// completes; lookups and pages on reader connections of their own (two to four, opened when
/// first needed), so that a read waits neither for a write nor for another read.
///
/// Several processes may share one file: a key is claimed in one statement under a unique
/// index, so two starts of one key make one entry.
#[derive(Clone)]
pub struct SqliteJournal {
    path: PathBuf,
    connection: Arc<Mutex<Connection>>,
    /// Connections that only read (lookups and pages), beside the one that writes: in WAL mode
    /// a read waits neither for a write (a retention step, a claim) nor for another read.
    readers: Arc<Readers>,
    /// The file opened (device and inode), to notice it deleted or replaced under us.
    file: Option<(u64, u64)>,
    /// Rows the reads of pages, recoveries and pruning steps went through ([`SqliteJournal::rows_read`]).
    rows_read: Arc<AtomicU64>,
}

impl fmt::Debug for SqliteJournal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteJournal").field("path", &self.path).finish()
    }
}

fn failed(what: &str) -> impl FnOnce(rusqlite::Error) -> JournalError + '_ {
    move |e| JournalError::new(what, e)
}

fn millis(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        .min(i64::MAX as u128) as i64
}

fn time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

impl SqliteJournal {
    /// Opens the journal at `path`, creating it (and its table) when missing, and adding the
    /// columns a journal written by an older version lacks.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, JournalError> {
        #[cfg(unix)]
        use std::os::unix::fs::OpenOptionsExt as _;
        let path = path.as_ref().to_owned();
        // A new journal file is this user's alone (`0600` on Unix): it lists inputs and signed
        // URLs. SQLite gives its `-wal` and `-shm` files the database file's permissions.
        #[cfg(unix)]
        if !path.exists() {
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path);
        }
        let connection = Connection::open(&path)
            .map_err(|e| JournalError::new(format!("cannot open {}", path.display()), e))?;
        // Durable when a write returns, and readable by another process meanwhile (`daglo jobs`).
        connection
            .busy_timeout(Duration::from_secs(10))
            .map_err(failed("cannot configure the journal"))?;
        // Switching a fresh file to WAL and creating its table can find another process doing
        // the same: SQLite then says "locked" at once, without waiting. Try again for a while.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut pause = Duration::from_millis(5);
        loop {
            match configure(&connection) {
                Err(e) if e.locked && std::time::Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(200));
                }
                configured => break configured.map_err(|e| e.error)?,
            }
        }
        Ok(Self {
            file: file_identity(&path),
            readers: Arc::new(Readers::new(&path)),
            path,
            connection: Arc::new(Mutex::new(connection)),
            rows_read: Arc::default(),
        })
    }

    /// Where the journal is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many rows of entries [`page`](Journal::page), [`recover`](Journal::recover) and
    /// [`prune`](Journal::prune) have gone through since the journal was opened (clones share
    /// the count): what shows a page reads what it returns and one more, however many entries
    /// the journal holds.
    pub fn rows_read(&self) -> u64 {
        self.rows_read.load(Ordering::Relaxed)
    }

    /// Where the callback key secret is kept: beside the journal, `<journal file>.key`.
    pub fn key_secret_path(&self) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_owned();
        name.push(".key");
        self.path.with_file_name(name)
    }

    /// Runs `work` on the connection, off the async workers — unless the journal's file was
    /// deleted or replaced since it was opened: SQLite would go on writing to the unlinked
    /// file, and a rerun would find no entry and submit everything again.
    async fn run<T, F>(&self, operation: &'static str, work: F) -> Result<T, JournalError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, JournalError> + Send + 'static,
    {
        self.counted(operation, self.run_uncounted(work)).await
    }

    /// Runs the read `work` like [`run`](Self::run), on a reader connection: a free one, else
    /// one opened now (up to [`Readers`]' count), else the next in turn. Where a reader cannot be
    /// opened, the writing connection reads.
    async fn run_read<T, F>(&self, operation: &'static str, work: F) -> Result<T, JournalError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, JournalError> + Send + 'static,
    {
        let readers = self.readers.clone();
        let writer = self.connection.clone();
        let (path, opened) = (self.path.clone(), self.file);
        let read = blocking(move || {
            still_there(&path, opened)?;
            match readers.take().as_ref() {
                Some(reader) => work(reader),
                None => work(&lock(&writer)),
            }
        });
        self.counted(operation, read).await
    }

    /// `done`, in a span named for the operation, and counted in the journal's metrics.
    async fn counted<T>(
        &self,
        operation: &'static str,
        done: impl std::future::Future<Output = Result<T, JournalError>>,
    ) -> Result<T, JournalError> {
        let started = std::time::Instant::now();
        let span = tracing::info_span!(
            "daglo.journal",
            db.system.name = "sqlite",
            db.operation.name = operation
        );
        let done = tracing::Instrument::instrument(done, span).await;
        daglo_core::telemetry::journal_operation(
            "sqlite",
            operation,
            done.is_ok(),
            started.elapsed().as_secs_f64(),
        );
        done
    }

    async fn run_uncounted<T, F>(&self, work: F) -> Result<T, JournalError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, JournalError> + Send + 'static,
    {
        let connection = self.connection.clone();
        let (path, opened) = (self.path.clone(), self.file);
        blocking(move || {
            let connection = lock(&connection);
            still_there(&path, opened)?;
            work(&connection)
        })
        .await
    }

    /// Sets columns of one entry, which must exist; `updated_at_ms` is set too.
    async fn set(
        &self,
        operation: &'static str,
        id: EntryId,
        sql: &'static str,
        values: Vec<Option<String>>,
    ) -> Result<(), JournalError> {
        let now = millis(SystemTime::now()).to_string();
        self.run(operation, move |connection| {
            let changed = connection
                .execute(
                    sql,
                    rusqlite::params_from_iter(values.iter().chain([&Some(now), &Some(id.0.to_string())])),
                )
                .map_err(failed("cannot write the journal"))?;
            if changed == 0 {
                return Err(JournalError::message(format!("no journal entry {id}")));
            }
            Ok(())
        })
        .await
    }

    async fn one(&self, condition: &'static str, value: String) -> Result<Option<Entry>, JournalError> {
        self.run_read("read", move |connection| {
            // Cached: a lookup by id or key is the service's most frequent read.
            connection
                .prepare_cached(&format!("{SELECT} WHERE {condition} ORDER BY id DESC LIMIT 1"))
                .and_then(|mut statement| statement.query_row(params![value], entry).optional())
                .map_err(failed("cannot read the journal"))
        })
        .await
    }
}

/// The reading connections of a journal, opened when first needed: as many as the machine
/// runs threads at once, two to four.
struct Readers {
    path: PathBuf,
    slots: Vec<Mutex<Option<Connection>>>,
    /// Whose turn it is to be waited for when every reader is busy.
    next: AtomicU64,
}

impl Readers {
    fn new(path: &Path) -> Self {
        let count = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
        Self {
            path: path.to_owned(),
            slots: (0..count).map(|_| Mutex::new(None)).collect(),
            next: AtomicU64::new(0),
        }
    }

    /// A reader to use now (blocking while every reader is busy), opened if it was not yet;
    /// `None` in the guard when it cannot be opened.
    fn take(&self) -> std::sync::MutexGuard<'_, Option<Connection>> {
        let free = self.slots.iter().find_map(|slot| slot.try_lock().ok());
        let mut reader = free.unwrap_or_else(|| {
            let turn = self.next.fetch_add(1, Ordering::Relaxed) as usize % self.slots.len();
            lock(&self.slots[turn])
        });
        if reader.is_none() {
            *reader = self.open();
        }
        reader
    }

    fn open(&self) -> Option<Connection> {
        let connection = Connection::open(&self.path)
            .inspect_err(
                |error| tracing::debug!(%error, "cannot open a reader of the journal; the writer reads"),
            )
            .ok()?;
        connection.busy_timeout(Duration::from_secs(10)).ok()?;
        Some(connection)
    }
}

/// A failure to configure a journal, and whether it was another process holding the lock.
struct Configure {
    error: JournalError,
    locked: bool,
}

/// WAL, full sync, the table and its upgrades.
fn configure(connection: &Connection) -> Result<(), Configure> {
    let locked = |e: &rusqlite::Error| {
        matches!(e, rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked))
    };
    let step = |result: rusqlite::Result<()>, what: &str| {
        result.map_err(|e| Configure {
            locked: locked(&e),
            error: JournalError::new(what.to_owned(), e),
        })
    };
    step(
        connection.pragma_update(None, "journal_mode", "WAL"),
        "cannot configure the journal",
    )?;
    step(
        connection.pragma_update(None, "synchronous", "FULL"),
        "cannot configure the journal",
    )?;
    step(
        connection.execute_batch(SCHEMA),
        "cannot create the journal's table",
    )?;
    migrate(connection).map_err(|error| Configure {
        locked: std::error::Error::source(&error)
            .and_then(|cause| cause.downcast_ref::<rusqlite::Error>())
            .is_some_and(locked),
        error,
    })
}

/// `work` on tokio's blocking pool, off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, JournalError> + Send + 'static,
) -> Result<T, JournalError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| JournalError::new("the journal's worker stopped", e))?
}

/// An error if the file at `path` is no longer the one `opened` (deleted, or replaced).
fn still_there(path: &Path, opened: Option<(u64, u64)>) -> Result<(), JournalError> {
    if opened.is_some() && file_identity(path) != opened {
        return Err(JournalError::gone(format!(
            "the journal file {} was deleted or replaced while in use",
            path.display()
        )));
    }
    Ok(())
}

/// The device and inode of the file at `path` (`None` where there are none, or no file).
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Adds the columns and indexes an older journal lacks — in one write transaction, so that
/// processes opening one journal at once add each column once.
fn migrate(connection: &Connection) -> Result<(), JournalError> {
    connection
        .execute_batch("BEGIN IMMEDIATE")
        .map_err(failed("cannot lock the journal to upgrade it"))?;
    let upgraded = add_columns(connection);
    let end = if upgraded.is_ok() { "COMMIT" } else { "ROLLBACK" };
    let ended = connection
        .execute_batch(end)
        .map_err(failed("cannot upgrade the journal"));
    upgraded.and(ended)
}

fn add_columns(connection: &Connection) -> Result<(), JournalError> {
    let mut statement = connection
        .prepare("SELECT name FROM pragma_table_xinfo('jobs')")
        .map_err(failed("cannot read the journal's table"))?;
    let present = statement
        .query_map([], |row| row.get::<_, String>(0))
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(failed("cannot read the journal's table"))?;
    for (column, kind) in ADDED {
        if !present.iter().any(|name| name == column) {
            connection
                .execute_batch(&format!("ALTER TABLE jobs ADD COLUMN {column} {kind}"))
                .map_err(failed("cannot add a column to the journal's table"))?;
        }
    }
    connection
        .execute_batch(INDEXES)
        .map_err(failed("cannot index the journal's table"))?;
    let version: i64 = connection
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(failed("cannot read the journal's version"))?;
    if version < VERSION {
        connection
            .execute_batch(UPGRADE)
            .map_err(failed("cannot index an older journal"))?;
        connection
            .pragma_update(None, "user_version", VERSION)
            .map_err(failed("cannot upgrade the journal"))?;
    }
    Ok(())
}

/// An entry's columns, in the order [`entry`] reads them.
macro_rules! columns {
    () => {
        "jobs.id, jobs.input, jobs.options_digest, jobs.strategy, jobs.intended_at_ms, jobs.not_submitted, \
         jobs.rid, jobs.outcome, jobs.result, jobs.job_id, jobs.key, jobs.labels, jobs.callback_key, jobs.status, \
         jobs.progress, jobs.updated_at_ms, jobs.owner, jobs.status_requests"
    };
}

const SELECT: &str = concat!("SELECT ", columns!(), " FROM jobs");

/// An entry from a row of [`SELECT`].
fn entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    let id: i64 = row.get(0)?;
    let mut intent = Intent::new(
        row.get::<_, String>(1)?,
        row.get::<_, String>(2)?,
        row.get::<_, String>(3)?,
    );
    intent.at = time(row.get(4)?);
    intent.job = row
        .get::<_, Option<String>>(9)?
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| JobId::legacy(id));
    intent.key = row.get(10)?;
    intent.labels = row
        .get::<_, Option<String>>(11)?
        .and_then(|json| serde_json::from_str::<BTreeMap<String, String>>(&json).ok())
        .unwrap_or_default();
    intent.callback_key = row.get(12)?;
    intent.owner = row.get(16)?;
    let not_submitted: Option<String> = row.get(5)?;
    let rid: Option<String> = row.get(6)?;
    let outcome: Option<String> = row.get(7)?;
    let result: Option<String> = row.get(8)?;
    let state = match (not_submitted, rid, outcome) {
        (Some(reason), _, _) => EntryState::NotSubmitted { reason },
        (None, Some(rid), Some(outcome)) => EntryState::Finished {
            rid: Rid::new(rid),
            outcome: OutcomeKind::parse(&outcome),
            result,
        },
        (None, Some(rid), None) => EntryState::Submitted { rid: Rid::new(rid) },
        (None, None, _) => EntryState::Intended,
    };
    let updated_at = row.get::<_, Option<i64>>(15)?.map_or(intent.at, time);
    let mut entry = Entry::new(EntryId(id), intent);
    entry.state = state;
    entry.status = row.get::<_, Option<String>>(13)?.map(|s| Status::parse(&s));
    entry.progress = row.get::<_, Option<i64>>(14)?.and_then(|p| u32::try_from(p).ok());
    entry.status_requests = row
        .get::<_, Option<i64>>(17)?
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0);
    entry.updated_at = updated_at;
    Ok(entry)
}

/// One page of entries, merged newest first from one stream per stage asked for, each walking
/// an index and stepped only when its head is taken: a page reads what it returns, plus one
/// per stream (and the rows another label of the query turns away).
fn page(
    connection: &Connection,
    query: &EntryQuery,
    rows_read: &AtomicU64,
) -> Result<EntryPage, JournalError> {
    let limit = query.limit.max(1);
    let before = query.before.map_or(i64::MAX, |entry| entry.0);
    let label = query.leading_label();
    let stages: Vec<Option<i64>> = if query.stages.is_empty() {
        vec![None]
    } else {
        query
            .stages
            .iter()
            .map(|stage| Some(i64::from(stage.index())))
            .collect()
    };
    let mut statements = Vec::with_capacity(stages.len());
    for stage in &stages {
        let sql = match (label.is_some(), stage.is_some()) {
            (false, false) => concat!("SELECT ", columns!(), " FROM jobs WHERE id < ?1 ORDER BY id DESC"),
            (false, true) => concat!(
                "SELECT ",
                columns!(),
                " FROM jobs INDEXED BY jobs_by_stage WHERE stage = ?2 AND id < ?1 ORDER BY id DESC"
            ),
            (true, false) => concat!(
                "SELECT ",
                columns!(),
                " FROM job_labels INDEXED BY job_labels_by_label JOIN jobs ON jobs.id = job_labels.entry \
                 WHERE job_labels.name = ?2 AND job_labels.value = ?3 AND job_labels.entry < ?1 \
                 ORDER BY job_labels.entry DESC"
            ),
            (true, true) => concat!(
                "SELECT ",
                columns!(),
                " FROM job_labels INDEXED BY job_labels_by_stage JOIN jobs ON jobs.id = job_labels.entry \
                 WHERE job_labels.name = ?2 AND job_labels.value = ?3 AND job_labels.stage = ?4 \
                 AND job_labels.entry < ?1 ORDER BY job_labels.entry DESC"
            ),
        };
        statements.push(
            connection
                .prepare_cached(sql)
                .map_err(failed("cannot read a page of the journal"))?,
        );
    }
    let mut streams = Vec::with_capacity(stages.len());
    for (statement, stage) in statements.iter_mut().zip(&stages) {
        let mut values: Vec<rusqlite::types::Value> = vec![before.into()];
        if let Some((name, value)) = label {
            values.push(name.to_owned().into());
            values.push(value.to_owned().into());
        }
        if let Some(stage) = stage {
            values.push((*stage).into());
        }
        streams.push(
            statement
                .query(rusqlite::params_from_iter(values))
                .map_err(failed("cannot read a page of the journal"))?,
        );
    }
    let next = |stream: &mut rusqlite::Rows<'_>| -> Result<Option<Entry>, JournalError> {
        while let Some(row) = stream
            .next()
            .map_err(failed("cannot read a page of the journal"))?
        {
            rows_read.fetch_add(1, Ordering::Relaxed);
            let found = entry(row).map_err(failed("cannot read a page of the journal"))?;
            if query.matches(&found) {
                return Ok(Some(found));
            }
        }
        Ok(None)
    };
    let mut heads = Vec::with_capacity(streams.len());
    for stream in &mut streams {
        heads.push(next(stream)?);
    }
    let mut entries = Vec::with_capacity(limit.min(1024));
    loop {
        let newest = heads
            .iter()
            .enumerate()
            .filter_map(|(at, head)| head.as_ref().map(|entry| (entry.id, at)))
            .max();
        let Some((_, at)) = newest else {
            return Ok(EntryPage::new(entries, false));
        };
        if entries.len() == limit {
            return Ok(EntryPage::new(entries, true));
        }
        if let (Some(head), Some(stream)) = (heads.get_mut(at), streams.get_mut(at)) {
            if let Some(taken) = head.take() {
                entries.push(taken);
            }
            *head = next(stream)?;
        }
    }
}

/// Inserts `intent`; `None` when its key is held already (the unique index said so).
fn insert(connection: &Connection, intent: &Intent) -> Result<Option<EntryId>, JournalError> {
    let labels = if intent.labels.is_empty() {
        None
    } else {
        Some(
            serde_json::to_string(&intent.labels)
                .map_err(|e| JournalError::new("cannot write the labels", e))?,
        )
    };
    let at = millis(intent.at);
    let inserted = connection.execute(
        "INSERT INTO jobs (input, options_digest, strategy, intended_at_ms, job_id, key, labels, callback_key, updated_at_ms, owner) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?4, ?9)",
        params![
            intent.input,
            intent.options_digest,
            intent.strategy,
            at,
            intent.job.as_str(),
            intent.key,
            labels,
            intent.callback_key,
            intent.owner
        ],
    );
    match inserted {
        Ok(_) => Ok(Some(EntryId(connection.last_insert_rowid()))),
        Err(rusqlite::Error::SqliteFailure(error, _))
            if error.code == ErrorCode::ConstraintViolation && intent.key.is_some() =>
        {
            Ok(None)
        }
        Err(e) => Err(JournalError::new("cannot write the journal", e)),
    }
}

#[async_trait]
impl Journal for SqliteJournal {
    async fn check(&self) -> Result<(), JournalError> {
        // The file's identity is checked before any work; the read proves the file answers.
        self.by_key("daglo-journal-check").await.map(drop)
    }

    async fn latest_for(&self, input: &str) -> Result<Option<Entry>, JournalError> {
        self.one("input = ?1", input.to_owned()).await
    }

    async fn by_key(&self, key: &str) -> Result<Option<Entry>, JournalError> {
        self.one("key = ?1", key.to_owned()).await
    }

    async fn by_job(&self, job: &JobId) -> Result<Option<Entry>, JournalError> {
        let text = job.as_str().to_owned();
        match text.strip_prefix("entry-").and_then(|n| n.parse::<i64>().ok()) {
            Some(id) => {
                let found = self.one("id = ?1", id.to_string()).await?;
                Ok(found.filter(|entry| &entry.intent.job == job))
            }
            None => self.one("job_id = ?1", text).await,
        }
    }

    async fn intend(&self, intent: Intent) -> Result<EntryId, JournalError> {
        self.run("intend", move |connection| {
            insert(connection, &intent)?.ok_or_else(|| JournalError::key_held(intent.key.as_deref()))
        })
        .await
    }

    async fn claim(&self, intent: Intent) -> Result<Claim, JournalError> {
        self.run("claim", move |connection| {
            // One write transaction, the write lock taken first (`BEGIN IMMEDIATE`): the
            // holder read, released and replaced atomically across processes.
            let transaction =
                rusqlite::Transaction::new_unchecked(connection, rusqlite::TransactionBehavior::Immediate)
                    .map_err(failed("cannot write the journal"))?;
            transaction
                .execute(
                    "UPDATE jobs SET key = NULL WHERE key = ?1 AND not_submitted IS NOT NULL",
                    params![intent.key],
                )
                .map_err(failed("cannot write the journal"))?;
            let claim = match insert(&transaction, &intent)? {
                Some(id) => Claim::Created(id),
                // The unique index refused the key: the entry holding it is the job.
                None => transaction
                    .query_row(&format!("{SELECT} WHERE key = ?1"), params![intent.key], entry)
                    .map(|entry| Claim::Existing(Box::new(entry)))
                    .map_err(failed("cannot read the journal"))?,
            };
            transaction.commit().map_err(failed("cannot write the journal"))?;
            Ok(claim)
        })
        .await
    }

    async fn not_submitted(&self, id: EntryId, reason: &str) -> Result<(), JournalError> {
        self.set(
            "not_submitted",
            id,
            "UPDATE jobs SET not_submitted = ?1, updated_at_ms = ?2 WHERE id = ?3",
            vec![Some(reason.to_owned())],
        )
        .await
    }

    async fn submitted(&self, id: EntryId, rid: &Rid) -> Result<(), JournalError> {
        self.set(
            "submitted",
            id,
            "UPDATE jobs SET rid = ?1, updated_at_ms = ?2 WHERE id = ?3",
            vec![Some(rid.as_str().to_owned())],
        )
        .await
    }

    async fn renew(&self, id: EntryId) -> Result<(), JournalError> {
        let now = millis(SystemTime::now());
        self.run("renew", move |connection| {
            connection
                .execute(
                    "UPDATE jobs SET updated_at_ms = ?1 \
                     WHERE id = ?2 AND rid IS NULL AND not_submitted IS NULL",
                    params![now, id.0],
                )
                .map(drop)
                .map_err(failed("cannot renew a claim in the journal"))
        })
        .await
    }

    async fn requested(&self, id: EntryId, status_requests: u64) -> Result<(), JournalError> {
        self.set(
            "requested",
            id,
            "UPDATE jobs SET status_requests = ?1, updated_at_ms = ?2 WHERE id = ?3",
            vec![Some(status_requests.to_string())],
        )
        .await
    }

    async fn progressed(
        &self,
        id: EntryId,
        status: &Status,
        progress: Option<u32>,
    ) -> Result<(), JournalError> {
        self.set(
            "progressed",
            id,
            "UPDATE jobs SET status = ?1, progress = ?2, updated_at_ms = ?3 WHERE id = ?4",
            vec![Some(status.as_str().to_owned()), progress.map(|p| p.to_string())],
        )
        .await
    }

    async fn finished(
        &self,
        id: EntryId,
        outcome: &OutcomeKind,
        result: Option<&str>,
    ) -> Result<(), JournalError> {
        self.set(
            "finished",
            id,
            "UPDATE jobs SET outcome = ?1, result = ?2, updated_at_ms = ?3 WHERE id = ?4",
            vec![Some(outcome.as_str().to_owned()), result.map(str::to_owned)],
        )
        .await
    }

    async fn entries(&self) -> Result<Vec<Entry>, JournalError> {
        self.run("read", |connection| {
            let mut statement = connection
                .prepare(&format!("{SELECT} ORDER BY id"))
                .map_err(failed("cannot read the journal"))?;
            let rows = statement
                .query_map([], entry)
                .map_err(failed("cannot read the journal"))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(failed("cannot read the journal"))
        })
        .await
    }

    async fn prune(&self, before: SystemTime, at_most: usize) -> Result<Vec<Entry>, JournalError> {
        let before = millis(before);
        let at_most = i64::try_from(at_most).unwrap_or(i64::MAX);
        let rows_read = self.rows_read.clone();
        self.run("prune", move |connection| {
            // One small transaction, its entries found on the index of ended entries by time:
            // what is reported is exactly what is removed, and readers wait one step at most.
            let transaction = connection
                .unchecked_transaction()
                .map_err(failed("cannot prune the journal"))?;
            let entries: Vec<Entry> = {
                let mut statement = transaction
                    .prepare_cached(concat!(
                        "SELECT ",
                        columns!(),
                        " FROM jobs INDEXED BY jobs_ended_by_time WHERE stage >= 2 AND updated_at_ms < ?1 \
                         ORDER BY updated_at_ms LIMIT ?2"
                    ))
                    .map_err(failed("cannot read the journal"))?;
                statement
                    .query_map(params![before, at_most], entry)
                    .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                    .map_err(failed("cannot read the journal"))?
            };
            rows_read.fetch_add(entries.len() as u64, Ordering::Relaxed);
            for found in &entries {
                transaction
                    .execute("DELETE FROM jobs WHERE id = ?1", params![found.id.0])
                    .map_err(failed("cannot prune the journal"))?;
                // What was written down about the pruned job goes with it.
                for sql in [
                    "DELETE FROM job_log WHERE job = ?1",
                    "DELETE FROM job_marks WHERE job = ?1",
                ] {
                    transaction
                        .execute(sql, params![found.intent.job.as_str()])
                        .map_err(failed("cannot prune the journal"))?;
                }
            }
            transaction.commit().map_err(failed("cannot prune the journal"))?;
            Ok(entries)
        })
        .await
    }

    async fn page(&self, query: &EntryQuery) -> Result<EntryPage, JournalError> {
        let query = query.clone();
        let rows_read = self.rows_read.clone();
        self.run_read("page", move |connection| page(connection, &query, &rows_read))
            .await
    }

    async fn recover(&self) -> Result<Recovery, JournalError> {
        let rows_read = self.rows_read.clone();
        self.run("recover", move |connection| {
            let mut statement = connection
                .prepare_cached(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM jobs INDEXED BY jobs_by_stage WHERE stage IN (0, 1) ORDER BY id"
                ))
                .map_err(failed("cannot read the journal"))?;
            let entries = statement
                .query_map([], entry)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(failed("cannot read the journal"))?;
            rows_read.fetch_add(entries.len() as u64, Ordering::Relaxed);
            let mut recovery = Recovery::default();
            for found in entries {
                match found.state {
                    EntryState::Submitted { .. } => recovery.pending.push(found),
                    _ => recovery.uncertain.push(found),
                }
            }
            Ok(recovery)
        })
        .await
    }

    async fn forget(&self, job: &JobId) -> Result<bool, JournalError> {
        let job = job.to_string();
        self.run("forget", move |connection| {
            let transaction = connection
                .unchecked_transaction()
                .map_err(failed("cannot remove from the journal"))?;
            let removed = transaction
                .execute(
                    "DELETE FROM jobs WHERE job_id = ?1 AND (not_submitted IS NOT NULL OR outcome IS NOT NULL)",
                    params![job],
                )
                .map_err(failed("cannot remove from the journal"))?;
            if removed > 0 {
                for sql in [
                    "DELETE FROM job_log WHERE job = ?1",
                    "DELETE FROM job_marks WHERE job = ?1",
                ] {
                    transaction
                        .execute(sql, params![job])
                        .map_err(failed("cannot remove from the journal"))?;
                }
            }
            transaction.commit().map_err(failed("cannot remove from the journal"))?;
            Ok(removed > 0)
        })
        .await
    }

    async fn key_secret(&self) -> Result<Option<Vec<u8>>, JournalError> {
        let path = self.key_secret_path();
        blocking(move || crate::secret::load_or_create(&path))
            .await
            .map(Some)
    }
}

#[async_trait]
impl JobLog for SqliteJournal {
    async fn append(&self, list: &str, job: &JobId, record: &str, keep: usize) -> Result<(), JournalError> {
        let (list, job, record) = (list.to_owned(), job.to_string(), record.to_owned());
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        self.run("append", move |connection| {
            let transaction = connection
                .unchecked_transaction()
                .map_err(failed("cannot write the job log"))?;
            transaction
                .execute(
                    "INSERT INTO job_log (list, job, record) VALUES (?1, ?2, ?3)",
                    params![list, job, record],
                )
                .map_err(failed("cannot write the job log"))?;
            transaction
                .execute(
                    "DELETE FROM job_log WHERE list = ?1 AND job = ?2 AND id NOT IN \
                     (SELECT id FROM job_log WHERE list = ?1 AND job = ?2 ORDER BY id DESC LIMIT ?3)",
                    params![list, job, keep],
                )
                .map_err(failed("cannot write the job log"))?;
            transaction.commit().map_err(failed("cannot write the job log"))
        })
        .await
    }

    async fn read(&self, list: &str, job: &JobId) -> Result<Vec<String>, JournalError> {
        let (list, job) = (list.to_owned(), job.to_string());
        self.run("read", move |connection| {
            let mut statement = connection
                .prepare_cached("SELECT record FROM job_log WHERE list = ?1 AND job = ?2 ORDER BY id")
                .map_err(failed("cannot read the job log"))?;
            statement
                .query_map(params![list, job], |row| row.get::<_, String>(0))
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(failed("cannot read the job log"))
        })
        .await
    }

    async fn clear(&self, list: &str, job: &JobId) -> Result<(), JournalError> {
        let (list, job) = (list.to_owned(), job.to_string());
        self.run("clear", move |connection| {
            connection
                .execute(
                    "DELETE FROM job_log WHERE list = ?1 AND job = ?2",
                    params![list, job],
                )
                .map(drop)
                .map_err(failed("cannot write the job log"))
        })
        .await
    }

    async fn forget_all(&self, list: &str, sets: &[&str], jobs: &[JobId]) -> Result<(), JournalError> {
        let list = list.to_owned();
        let sets: Vec<String> = sets.iter().map(|s| (*s).to_owned()).collect();
        let jobs: Vec<String> = jobs.iter().map(ToString::to_string).collect();
        self.run("clear", move |connection| {
            // One transaction for the lot.
            let transaction = connection
                .unchecked_transaction()
                .map_err(failed("cannot write the job log"))?;
            {
                let mut lists = transaction
                    .prepare_cached("DELETE FROM job_log WHERE list = ?1 AND job = ?2")
                    .map_err(failed("cannot write the job log"))?;
                let mut marks = transaction
                    .prepare_cached("DELETE FROM job_marks WHERE name = ?1 AND job = ?2")
                    .map_err(failed("cannot write the job log"))?;
                for job in &jobs {
                    lists
                        .execute(params![list, job])
                        .map_err(failed("cannot write the job log"))?;
                    for set in &sets {
                        marks
                            .execute(params![set, job])
                            .map_err(failed("cannot write the job log"))?;
                    }
                }
            }
            transaction.commit().map_err(failed("cannot write the job log"))
        })
        .await
    }

    async fn mark(&self, set: &str, job: &JobId, member: bool) -> Result<(), JournalError> {
        let (set, job) = (set.to_owned(), job.to_string());
        self.run("mark", move |connection| {
            let sql = if member {
                "INSERT OR IGNORE INTO job_marks (name, job) VALUES (?1, ?2)"
            } else {
                "DELETE FROM job_marks WHERE name = ?1 AND job = ?2"
            };
            connection
                .execute(sql, params![set, job])
                .map(drop)
                .map_err(failed("cannot write the job marks"))
        })
        .await
    }

    async fn marked(&self, set: &str) -> Result<Vec<JobId>, JournalError> {
        let set = set.to_owned();
        self.run("read", move |connection| {
            let mut statement = connection
                .prepare_cached("SELECT job FROM job_marks WHERE name = ?1 ORDER BY job")
                .map_err(failed("cannot read the job marks"))?;
            let jobs = statement
                .query_map(params![set], |row| row.get::<_, String>(0))
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(failed("cannot read the job marks"))?;
            // A row that is not a job id (written by hand) is skipped, not fatal.
            Ok(jobs.iter().filter_map(|job| job.parse().ok()).collect())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A journal in a file of its own, removed when dropped.
    struct Scratch(PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let mut path = self.0.clone().into_os_string();
                path.push(suffix);
                let _ = std::fs::remove_file(path);
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_do_not_wait_for_the_writing_connection() {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let scratch = Scratch(
            std::env::temp_dir().join(format!("daglo-readers-{}-{nanos}.sqlite", std::process::id())),
        );
        let journal = SqliteJournal::open(&scratch.0).expect("a journal");
        let intent = Intent::new("https://media.example/a.wav", "fnv1a64:0", "polling");
        let job = intent.job.clone();
        let Claim::Created(id) = journal.claim(intent).await.expect("a claim") else {
            panic!("a fresh journal has no entry for the input");
        };
        // The writing connection held, as by a write that takes long (a retention step, a
        // write waiting for another process's lock), until the reads are done.
        let (held, holding) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let writer = journal.connection.clone();
        let holder = std::thread::spawn(move || {
            let _connection = lock(&writer);
            let _ = held.send(());
            let _ = released.recv();
        });
        holding.recv().expect("the writer held");
        let reads = async {
            let found = journal.by_job(&job).await.expect("a read by id");
            let page = journal.page(&EntryQuery::newest(10)).await.expect("a page");
            (found, page)
        };
        let outcome = tokio::time::timeout(Duration::from_secs(20), reads).await;
        let _ = release.send(());
        holder.join().expect("the holder ends");
        let (found, page) = outcome.expect("reads answered while the writer was held");
        assert_eq!(found.map(|entry| entry.intent.job), Some(job.clone()));
        assert_eq!(page.entries.len(), 1);
        // The writer free again, writes go on and the readers see them at once.
        let rid = Rid::new("r-1");
        journal.submitted(id, &rid).await.expect("a write");
        let entry = journal.by_job(&job).await.expect("a read").expect("the entry");
        assert!(matches!(entry.state, EntryState::Submitted { rid: ref r } if *r == rid));
    }
}
