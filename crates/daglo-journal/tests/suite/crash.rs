//! The journal survives a crash at every step of a submit: a journal reopened after the process
//! stopped at any point says exactly what happened and what to do.

use std::path::PathBuf;

use daglo_core::{EntryState, Intent, Journal, Rid};
use daglo_journal::SqliteJournal;

/// A fresh journal file for one test, removed afterwards.
struct Place(PathBuf);

impl Place {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("daglo-journal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn file(&self) -> PathBuf {
        self.0.join("jobs.sqlite")
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn intent(input: &str) -> Intent {
    Intent::new(input, "fnv1a64:0123456789abcdef", "polling")
}

/// Runs the first `steps` steps of one submit, then "crashes" (drops everything unflushed in
/// memory) and reopens the journal as a restarted process would.
async fn crash_after(place: &Place, steps: usize) -> SqliteJournal {
    let journal = SqliteJournal::open(place.file()).unwrap();
    let entry = journal.intend(intent("meeting.wav")).await.unwrap();
    if steps >= 2 {
        journal.submitted(entry, &Rid::new("r-1")).await.unwrap();
    }
    if steps >= 3 {
        journal
            .finished(
                entry,
                &daglo_core::OutcomeKind::Transcript,
                Some("out/meeting.txt"),
            )
            .await
            .unwrap();
    }
    drop(journal);
    SqliteJournal::open(place.file()).unwrap()
}

#[tokio::test]
async fn a_crash_before_the_submit_answer_leaves_an_uncertain_entry() {
    // Before the submit, and after it but before the rid was written, look the same: the
    // request may or may not have reached the service.
    let place = Place::new("before");
    let recovery = crash_after(&place, 1).await.recover().await.unwrap();
    assert!(recovery.pending.is_empty());
    assert_eq!(
        recovery.uncertain.len(),
        1,
        "reported, never resubmitted automatically"
    );
    assert_eq!(recovery.uncertain[0].intent.input, "meeting.wav");
    assert_eq!(recovery.uncertain[0].state, EntryState::Intended);
}

#[tokio::test]
async fn a_crash_after_the_rid_leaves_a_pending_job_to_resume() {
    let place = Place::new("after-rid");
    let recovery = crash_after(&place, 2).await.recover().await.unwrap();
    assert!(recovery.uncertain.is_empty());
    assert_eq!(recovery.pending.len(), 1);
    assert_eq!(
        recovery.pending[0].state,
        EntryState::Submitted { rid: Rid::new("r-1") }
    );
}

#[tokio::test]
async fn a_crash_after_the_outcome_leaves_nothing_to_do() {
    let place = Place::new("after-outcome");
    let journal = crash_after(&place, 3).await;
    let recovery = journal.recover().await.unwrap();
    assert!(recovery.pending.is_empty() && recovery.uncertain.is_empty());
    let entries = journal.entries().await.unwrap();
    assert_eq!(
        entries[0].state,
        EntryState::Finished {
            rid: Rid::new("r-1"),
            outcome: daglo_core::OutcomeKind::Transcript,
            result: Some("out/meeting.txt".to_owned()),
        }
    );
}

#[tokio::test]
async fn a_refused_submit_is_not_uncertain_and_reruns_find_the_latest_entry() {
    let place = Place::new("refused");
    let journal = SqliteJournal::open(place.file()).unwrap();
    let first = journal.intend(intent("a.wav")).await.unwrap();
    journal
        .not_submitted(first, "403: credits exhausted")
        .await
        .unwrap();
    let second = journal.intend(intent("a.wav")).await.unwrap();
    journal.submitted(second, &Rid::new("r-2")).await.unwrap();
    let reopened = SqliteJournal::open(place.file()).unwrap();
    let recovery = reopened.recover().await.unwrap();
    assert!(recovery.uncertain.is_empty());
    assert_eq!(recovery.pending.len(), 1);
    let latest = reopened.latest_for("a.wav").await.unwrap().unwrap();
    assert_eq!(latest.id, second);
    assert!(reopened.latest_for("b.wav").await.unwrap().is_none());
    let err = reopened
        .submitted(daglo_core::EntryId(999), &Rid::new("x"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no journal entry 999"), "{err}");
}
