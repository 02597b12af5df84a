//! The journal's table and the statements that move an entry through its states.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use daglo_core::{Entry, EntryId, EntryState, Intent, Journal, JournalError, OutcomeKind, Rid};
use rusqlite::{Connection, OptionalExtension, params};

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
    result          TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_input ON jobs (input);
";

/// A [`Journal`] in one SQLite file. Cheap to clone; clones share the connection. Writes run
/// on tokio's blocking pool, each committed before its future completes.
#[derive(Clone)]
pub struct SqliteJournal {
    path: PathBuf,
    connection: Arc<Mutex<Connection>>,
}

impl fmt::Debug for SqliteJournal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteJournal").field("path", &self.path).finish()
    }
}

fn failed(what: &str) -> impl FnOnce(rusqlite::Error) -> JournalError + '_ {
    move |e| JournalError::new(what, e)
}

impl SqliteJournal {
    /// Opens the journal at `path`, creating it (and its table) when missing.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, JournalError> {
        let path = path.as_ref().to_owned();
        let connection = Connection::open(&path)
            .map_err(|e| JournalError::new(format!("cannot open {}", path.display()), e))?;
        // Durable when a write returns, and readable by another process meanwhile (`daglo jobs`).
        connection
            .busy_timeout(Duration::from_secs(10))
            .map_err(failed("cannot configure the journal"))?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(failed("cannot configure the journal"))?;
        connection
            .pragma_update(None, "synchronous", "FULL")
            .map_err(failed("cannot configure the journal"))?;
        connection
            .execute_batch(SCHEMA)
            .map_err(failed("cannot create the journal's table"))?;
        Ok(Self {
            path,
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// Where the journal is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` on the connection, off the async workers.
    async fn run<T, F>(&self, work: F) -> Result<T, JournalError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, JournalError> + Send + 'static,
    {
        let connection = self.connection.clone();
        tokio::task::spawn_blocking(move || {
            let connection = connection.lock().unwrap_or_else(|p| p.into_inner());
            work(&connection)
        })
        .await
        .map_err(|e| JournalError::new("the journal's worker stopped", e))?
    }

    /// Sets one column of one entry, which must exist.
    async fn set(
        &self,
        id: EntryId,
        sql: &'static str,
        values: Vec<Option<String>>,
    ) -> Result<(), JournalError> {
        self.run(move |connection| {
            let changed = connection
                .execute(
                    sql,
                    rusqlite::params_from_iter(values.iter().chain([&Some(id.0.to_string())])),
                )
                .map_err(failed("cannot write the journal"))?;
            if changed == 0 {
                return Err(JournalError::message(format!("no journal entry {id}")));
            }
            Ok(())
        })
        .await
    }
}

const SELECT: &str = "SELECT id, input, options_digest, strategy, intended_at_ms, not_submitted, rid, outcome, result FROM jobs";

/// An entry from a row of [`SELECT`].
fn entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    let at_ms: i64 = row.get(4)?;
    let mut intent = Intent::new(
        row.get::<_, String>(1)?,
        row.get::<_, String>(2)?,
        row.get::<_, String>(3)?,
    );
    intent.at = UNIX_EPOCH + Duration::from_millis(u64::try_from(at_ms).unwrap_or(0));
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
    let mut entry = Entry::new(EntryId(row.get(0)?), intent);
    entry.state = state;
    Ok(entry)
}

#[async_trait]
impl Journal for SqliteJournal {
    async fn latest_for(&self, input: &str) -> Result<Option<Entry>, JournalError> {
        let input = input.to_owned();
        self.run(move |connection| {
            connection
                .query_row(
                    &format!("{SELECT} WHERE input = ?1 ORDER BY id DESC LIMIT 1"),
                    params![input],
                    entry,
                )
                .optional()
                .map_err(failed("cannot read the journal"))
        })
        .await
    }

    async fn intend(&self, intent: Intent) -> Result<EntryId, JournalError> {
        let at_ms = intent
            .at
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis()
            .min(i64::MAX as u128) as i64;
        self.run(move |connection| {
            connection
                .execute(
                    "INSERT INTO jobs (input, options_digest, strategy, intended_at_ms) VALUES (?1, ?2, ?3, ?4)",
                    params![intent.input, intent.options_digest, intent.strategy, at_ms],
                )
                .map_err(failed("cannot write the journal"))?;
            Ok(EntryId(connection.last_insert_rowid()))
        })
        .await
    }

    async fn not_submitted(&self, id: EntryId, reason: &str) -> Result<(), JournalError> {
        self.set(
            id,
            "UPDATE jobs SET not_submitted = ?1 WHERE id = ?2",
            vec![Some(reason.to_owned())],
        )
        .await
    }

    async fn submitted(&self, id: EntryId, rid: &Rid) -> Result<(), JournalError> {
        self.set(
            id,
            "UPDATE jobs SET rid = ?1 WHERE id = ?2",
            vec![Some(rid.as_str().to_owned())],
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
            id,
            "UPDATE jobs SET outcome = ?1, result = ?2 WHERE id = ?3",
            vec![Some(outcome.as_str().to_owned()), result.map(str::to_owned)],
        )
        .await
    }

    async fn entries(&self) -> Result<Vec<Entry>, JournalError> {
        self.run(|connection| {
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
}
