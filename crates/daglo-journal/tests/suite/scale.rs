//! Reads bounded by what they return: a page reads its entries and one more, recovery reads
//! no ended entry, a pruning step reads what it removes — however many entries the journal
//! holds (counted by [`SqliteJournal::rows_read`]). And an older journal's labels are indexed
//! when it is opened.

use std::time::{Duration, SystemTime};

use daglo_core::{EntryQuery, Intent, Journal, OutcomeKind, Rid, Stage, Status};
use daglo_journal::SqliteJournal;

/// A fresh journal directory, on a tmpfs when there is one (the fill syncs every write),
/// removed when dropped.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn file(&self) -> std::path::PathBuf {
        self.0.join("jobs.sqlite")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn path(name: &str) -> Scratch {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        std::path::PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("daglo-journal-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

/// `n` entries through the journal's API: every 100th running, every 10th failed, the rest
/// finished; team `a` on every 7th, `b` on the others.
async fn fill(journal: &SqliteJournal, n: usize) {
    let rid = Rid::new("rid");
    for i in 0..n {
        let team = if i % 7 == 0 { "a" } else { "b" };
        let intent = Intent::new(format!("in-{i}.wav"), "fnv1a64:0", "polling")
            .with_key(Some(format!("key-{i}")))
            .with_labels([("team".to_owned(), team.to_owned())].into());
        let id = journal.intend(intent).await.unwrap();
        journal.submitted(id, &rid).await.unwrap();
        if i % 100 == 50 {
            continue;
        }
        let outcome = if i % 10 == 3 {
            OutcomeKind::Failed(Status::parse("file_error"))
        } else {
            OutcomeKind::Transcript
        };
        journal.finished(id, &outcome, None).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_reads_what_it_returns_and_one_more() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let scratch = path("bounded");
        let path = scratch.file();
        let journal = SqliteJournal::open(&path).unwrap();
        fill(&journal, 1500).await;
        let queries = [
            ("every entry", EntryQuery::newest(20)),
            ("one label", EntryQuery::newest(20).label("team", "a")),
            ("one stage", EntryQuery::newest(20).stage(Stage::Failed)),
            (
                "a label and a stage",
                EntryQuery::newest(5).label("team", "b").stage(Stage::Submitted),
            ),
        ];
        for (what, query) in queries {
            let mut before = None;
            for page_number in 0..3 {
                let read = journal.rows_read();
                let page = journal.page(&query.clone().before(before)).await.unwrap();
                let cost = journal.rows_read() - read;
                assert!(
                    !page.entries.is_empty(),
                    "{what}: page {page_number} holds entries"
                );
                assert!(
                    cost <= page.entries.len() as u64 + 1,
                    "{what}: page {page_number} returned {} and read {cost}",
                    page.entries.len()
                );
                assert!(page.entries.iter().all(|entry| query.matches(entry)));
                before = page.entries.last().map(|entry| entry.id);
            }
        }
        // A position deep in the journal costs the same as the first page.
        let deep = journal
            .page(&EntryQuery::newest(1).before(Some(daglo_core::EntryId(40))))
            .await
            .unwrap();
        let read = journal.rows_read();
        let page = journal
            .page(&EntryQuery::newest(20).before(deep.entries.first().map(|entry| entry.id)))
            .await
            .unwrap();
        assert_eq!(page.entries.len(), 20);
        assert!(journal.rows_read() - read <= 21);
        // Two stages: one more per stream.
        let read = journal.rows_read();
        let page = journal
            .page(
                &EntryQuery::newest(10)
                    .stage(Stage::Failed)
                    .stage(Stage::Submitted),
            )
            .await
            .unwrap();
        assert_eq!(page.entries.len(), 10);
        assert!(journal.rows_read() - read <= 12);
        // The plan of each page's statement walks an index, never the table, never a sort.
        let connection = rusqlite::Connection::open(&path).unwrap();
        let plan: Vec<String> = connection
            .prepare(
                "EXPLAIN QUERY PLAN SELECT jobs.id FROM job_labels INDEXED BY job_labels_by_stage \
                 JOIN jobs ON jobs.id = job_labels.entry WHERE job_labels.name = 'team' \
                 AND job_labels.value = 'a' AND job_labels.stage = 2 AND job_labels.entry < 1000 \
                 ORDER BY job_labels.entry DESC",
            )
            .unwrap()
            .query_map([], |row| row.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter()
                .all(|step| !step.contains("TEMP B-TREE") && !step.starts_with("SCAN jobs")),
            "{plan:?}"
        );
    })
    .await
    .expect("within the deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_reads_no_ended_entry_and_pruning_reads_what_it_removes() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let scratch = path("recovery");
        let journal = SqliteJournal::open(scratch.file()).unwrap();
        fill(&journal, 1000).await;
        let read = journal.rows_read();
        let recovery = journal.recover().await.unwrap();
        assert_eq!(recovery.pending.len(), 10, "every 100th entry runs");
        assert_eq!(
            journal.rows_read() - read,
            10,
            "recovery read only the running entries"
        );

        let read = journal.rows_read();
        let step = journal
            .prune(SystemTime::now() + Duration::from_secs(1), 300)
            .await
            .unwrap();
        assert_eq!(step.len(), 300);
        assert!(step.iter().all(|entry| entry.is_ended()));
        assert_eq!(journal.rows_read() - read, 300, "a step reads what it removes");
        let mut left = 700;
        loop {
            let step = journal
                .prune(SystemTime::now() + Duration::from_secs(1), 300)
                .await
                .unwrap();
            left -= step.len();
            if step.len() < 300 {
                break;
            }
        }
        assert_eq!(left, 10, "the running entries stay");
        assert_eq!(journal.entries().await.unwrap().len(), 10);
        // Labels of pruned entries went with them.
        let page = journal
            .page(&EntryQuery::newest(50).label("team", "b"))
            .await
            .unwrap();
        assert!(page.entries.iter().all(|entry| !entry.is_ended()));
    })
    .await
    .expect("within the deadline");
}

#[tokio::test]
async fn an_older_journal_s_labels_are_indexed_when_it_is_opened() {
    let scratch = path("older-labels");
    let path = scratch.file();
    {
        // The table as the previous version wrote it: labels in a column, no index of them.
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection
            .execute_batch(
                "CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, input TEXT NOT NULL, \
                 options_digest TEXT NOT NULL, strategy TEXT NOT NULL, intended_at_ms INTEGER NOT NULL, \
                 not_submitted TEXT, rid TEXT, outcome TEXT, result TEXT, job_id TEXT, key TEXT, labels TEXT, \
                 callback_key TEXT, status TEXT, progress INTEGER, updated_at_ms INTEGER, owner TEXT, \
                 status_requests INTEGER);
                 INSERT INTO jobs (input, options_digest, strategy, intended_at_ms, rid, outcome, labels) \
                 VALUES ('a.wav', 'd', 'polling', 1000, 'r1', 'transcript', '{\"team\":\"a\"}'), \
                        ('b.wav', 'd', 'polling', 2000, 'r2', NULL, '{\"team\":\"b\"}'), \
                        ('c.wav', 'd', 'polling', 3000, 'r3', 'file_error', '{\"team\":\"a\"}');",
            )
            .unwrap();
    }
    let journal = SqliteJournal::open(&path).unwrap();
    let team_a = journal
        .page(&EntryQuery::newest(10).label("team", "a"))
        .await
        .unwrap();
    let inputs: Vec<&str> = team_a.entries.iter().map(|e| e.intent.input.as_str()).collect();
    assert_eq!(inputs, ["c.wav", "a.wav"]);
    let failed = journal
        .page(&EntryQuery::newest(10).label("team", "a").stage(Stage::Failed))
        .await
        .unwrap();
    assert_eq!(failed.entries.len(), 1);
    assert_eq!(journal.recover().await.unwrap().pending.len(), 1);
    // Entries without a time of last change get their creation time, so pruning finds them.
    let pruned = journal.prune(SystemTime::now(), 10).await.unwrap();
    assert_eq!(pruned.len(), 2);
    // Opened again: nothing is indexed twice.
    drop(journal);
    let journal = SqliteJournal::open(&path).unwrap();
    let all = journal
        .page(&EntryQuery::newest(10).label("team", "b"))
        .await
        .unwrap();
    assert_eq!(all.entries.len(), 1);
}
