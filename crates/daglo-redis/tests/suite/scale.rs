//! The Redis journal's reads are bounded by what they return, as the SQLite journal's are: a
//! page reads its entries and one more, recovery reads no ended entry, a pruning step reads
//! what it removes; entries written before the indexes are indexed on first use.

use crate::support;

use std::time::{Duration, SystemTime};

use daglo::Rid;
use daglo::journal::{EntryQuery, Intent, Journal, OutcomeKind, Stage};
use daglo::models::Status;
use daglo::redis::RedisJournal;

/// `n` entries through the journal's API: every 100th running, every 10th failed, the rest
/// finished; team `a` on every 7th, `b` on the others.
async fn fill(journal: &RedisJournal, n: usize) {
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
async fn redis_pages_recovery_and_pruning_read_what_they_return() {
    let Some(redis) = support::redis("redis_pages_recovery_and_pruning_read_what_they_return").await else {
        return;
    };
    let store = support::store(&redis.url, &support::namespace("scale")).await;
    tokio::time::timeout(Duration::from_secs(120), async {
        let journal = RedisJournal::new(store, "scale");
        fill(&journal, 1000).await;
        let queries = [
            ("every entry", EntryQuery::newest(20)),
            ("one label", EntryQuery::newest(20).label("team", "a")),
            ("one stage", EntryQuery::newest(20).stage(Stage::Failed)),
            (
                "a label and a stage",
                EntryQuery::newest(3).label("team", "b").stage(Stage::Submitted),
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
        while journal
            .prune(SystemTime::now() + Duration::from_secs(1), 300)
            .await
            .unwrap()
            .len()
            == 300
        {}
        assert_eq!(
            journal.entries().await.unwrap().len(),
            10,
            "the running entries stay"
        );
        let team_b = journal
            .page(&EntryQuery::newest(50).label("team", "b"))
            .await
            .unwrap();
        assert!(
            team_b.entries.iter().all(|entry| !entry.is_ended()),
            "labels went with their entries"
        );
    })
    .await
    .expect("within the deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_written_before_the_indexes_are_indexed_on_first_use() {
    let Some(redis) = support::redis("entries_written_before_the_indexes_are_indexed_on_first_use").await
    else {
        return;
    };
    let namespace = support::namespace("reindex");
    let store = support::store(&redis.url, &namespace).await;
    tokio::time::timeout(Duration::from_secs(60), async {
        fill(&RedisJournal::new(store.clone(), "old"), 30).await;
        // Take away what the previous version did not write: the indexes of stages, labels
        // and ended entries, the entries' label keys, the mark.
        let client = redis::Client::open(redis.url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let prefix = format!("{namespace}:journal:old:");
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(&mut conn)
            .await
            .unwrap();
        for key in keys {
            let index = ["stage:", "label:", "ended", "indexed"]
                .iter()
                .any(|part| key.starts_with(&format!("{prefix}{part}")));
            if index {
                let () = redis::cmd("DEL").arg(&key).query_async(&mut conn).await.unwrap();
            } else if key.starts_with(&format!("{prefix}entry:")) {
                let () = redis::cmd("HDEL")
                    .arg(&key)
                    .arg("label_keys")
                    .query_async(&mut conn)
                    .await
                    .unwrap();
            }
        }
        let journal = RedisJournal::new(store, "old");
        let team_a = journal
            .page(&EntryQuery::newest(50).label("team", "a"))
            .await
            .unwrap();
        assert_eq!(team_a.entries.len(), 5, "entries 0, 7, 14, 21, 28");
        assert_eq!(journal.recover().await.unwrap().pending.len(), 0);
        let failed = journal
            .page(&EntryQuery::newest(50).stage(Stage::Failed))
            .await
            .unwrap();
        assert_eq!(failed.entries.len(), 3, "entries 3, 13, 23");
        let pruned = journal
            .prune(SystemTime::now() + Duration::from_secs(1), 100)
            .await
            .unwrap();
        assert_eq!(pruned.len(), 30);
    })
    .await
    .expect("within the deadline");
}
