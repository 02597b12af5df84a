//! The SQLite journal passes the conformance check every journal passes, claims a key once
//! across connections, and opens a journal written before jobs had ids.

use std::sync::Arc;

use daglo_core::{Claim, Intent, Journal};
use daglo_journal::SqliteJournal;

fn path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("daglo-journal-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("jobs.sqlite")
}

#[tokio::test]
async fn the_sqlite_journal_conforms() {
    let journal = SqliteJournal::open(path("conformance")).unwrap();
    tokio::time::timeout(
        std::time::Duration::from_secs(60),
        daglo_core::conformance::check_journal(&journal, "sqlite"),
    )
    .await
    .expect("within the deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_claimed_through_many_connections_makes_one_entry() {
    let path = path("claims");
    let journals: Vec<Arc<SqliteJournal>> = (0..6)
        .map(|_| Arc::new(SqliteJournal::open(&path).unwrap()))
        .collect();
    for round in 0..20 {
        let key = format!("key-{round}");
        let claims = journals.iter().map(|journal| {
            let (journal, key) = (journal.clone(), key.clone());
            tokio::spawn(async move {
                journal
                    .claim(Intent::new("a.wav", "d", "polling").with_key(Some(key)))
                    .await
                    .unwrap()
            })
        });
        let mut created = 0;
        for claim in claims {
            if matches!(claim.await.unwrap(), Claim::Created(_)) {
                created += 1;
            }
        }
        assert_eq!(created, 1, "round {round}: one entry per key");
    }
    assert_eq!(journals[0].entries().await.unwrap().len(), 20);
}

#[tokio::test]
async fn a_journal_from_before_jobs_had_ids_opens_and_reads() {
    let path = path("legacy");
    {
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection
            .execute_batch(
                "CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, input TEXT NOT NULL, \
                 options_digest TEXT NOT NULL, strategy TEXT NOT NULL, intended_at_ms INTEGER NOT NULL, \
                 not_submitted TEXT, rid TEXT, outcome TEXT, result TEXT); \
                 INSERT INTO jobs (input, options_digest, strategy, intended_at_ms, rid) \
                 VALUES ('old.wav', 'fnv1a64:0', 'polling', 1700000000000, 'rid-old');",
            )
            .unwrap();
    }
    let journal = SqliteJournal::open(&path).unwrap();
    let entries = journal.entries().await.unwrap();
    assert_eq!(entries.len(), 1);
    let id = entries[0].intent.job.clone();
    assert_eq!(id.as_str(), "entry-1");
    assert_eq!(
        journal.by_job(&id).await.unwrap().unwrap().intent.input,
        "old.wav"
    );
    assert_eq!(journal.recover().await.unwrap().pending.len(), 1);
}

#[test]
fn processes_opening_one_old_journal_at_once_upgrade_it_once() {
    let path = path("upgrade-race");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, input TEXT NOT NULL, \
             options_digest TEXT NOT NULL, strategy TEXT NOT NULL, intended_at_ms INTEGER NOT NULL, \
             not_submitted TEXT, rid TEXT, outcome TEXT, result TEXT);",
        )
        .unwrap();
    let openers: Vec<_> = (0..8)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || SqliteJournal::open(&path).map(|_| ()))
        })
        .collect();
    for opener in openers {
        opener.join().unwrap().expect("every opener succeeds");
    }
}

#[tokio::test]
async fn the_sqlite_journal_keeps_job_logs_as_every_log_does() {
    let journal = SqliteJournal::open(path("job-log")).unwrap();
    tokio::time::timeout(
        std::time::Duration::from_secs(60),
        daglo_core::conformance::check_job_log(&journal, "sqlite"),
    )
    .await
    .expect("within the deadline");
}
