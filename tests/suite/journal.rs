//! `TranscriberBuilder::journal`: every submit is written down around the request, so a process
//! that stops at any point leaves a journal saying what to resume and what is uncertain.

use std::sync::Arc;

use daglo::journal::SqliteJournal;
use daglo::journal::{EntryState, Journal};
use daglo::sim::SimConfig;
use daglo::{JobOptions, Outcome, Transcriber};

use crate::support;

fn place(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("daglo-facade-journal-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn a_job_is_journaled_from_intent_to_outcome_and_resumed_after_a_restart() {
    let dir = place("resume");
    let (_sim, client) = support::sim(SimConfig::default()).await;
    let journal = Arc::new(SqliteJournal::open(dir.join("jobs.sqlite")).unwrap());
    let transcriber = Transcriber::builder(client.clone())
        .delivery(support::fast_polling(&client))
        .journal(journal.clone())
        .build()
        .await
        .unwrap();

    let pending = transcriber
        .submit_url("https://a.example/a.wav", &JobOptions::default())
        .await
        .unwrap();
    let rid = pending.rid().clone();
    // The process "stops" here: the pending job is dropped without being waited for.
    drop(pending);
    drop(transcriber);

    let reopened = Arc::new(SqliteJournal::open(dir.join("jobs.sqlite")).unwrap());
    let recovery = reopened.recover().await.unwrap();
    assert_eq!(recovery.pending.len(), 1);
    assert!(recovery.uncertain.is_empty());
    let restarted = Transcriber::builder(client.clone())
        .delivery(support::fast_polling(&client))
        .journal(reopened.clone())
        .build()
        .await
        .unwrap();
    let pending = restarted
        .resume_entry(&recovery.pending[0])
        .expect("a rid to resume");
    assert_eq!(pending.rid(), &rid);
    let outcome = restarted.wait(pending).await.unwrap();
    assert!(matches!(outcome, Outcome::Transcript { .. }));
    let entries = reopened.entries().await.unwrap();
    assert!(
        matches!(&entries[0].state, EntryState::Finished { rid: r, outcome, .. } if *r == rid && *outcome == daglo::journal::OutcomeKind::Transcript),
        "{entries:?}"
    );
    assert!(reopened.recover().await.unwrap().pending.is_empty());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_refused_submit_closes_its_entry_and_the_journal_never_holds_the_credential() {
    let dir = place("refused");
    let (_sim, client) = support::sim(SimConfig::default().credits(1)).await;
    let (callbacks, server) = support::callbacks(&client).await;
    let journal = Arc::new(SqliteJournal::open(dir.join("jobs.sqlite")).unwrap());
    let transcriber = Transcriber::builder(client)
        .delivery(callbacks)
        .receiver(server)
        .journal(journal.clone())
        .build()
        .await
        .unwrap();

    let mut options = JobOptions::default();
    let outcome = transcriber
        .transcribe_url("https://a.example/a.wav", &options)
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Transcript { .. }));
    options.custom = None;
    // Credits are gone: a 403 creates no job, so the entry is closed, not uncertain.
    let err = transcriber
        .submit_url("https://a.example/b.wav", &options)
        .await
        .unwrap_err();
    assert!(err.is_auth(), "{err}");
    let recovery = journal.recover().await.unwrap();
    assert!(
        recovery.uncertain.is_empty() && recovery.pending.is_empty(),
        "{recovery:?}"
    );
    let entries = journal.entries().await.unwrap();
    assert!(
        matches!(entries[1].state, EntryState::NotSubmitted { .. }),
        "{entries:?}"
    );
    transcriber.shutdown().await;

    // The callback strategy put a per-job credential in the submit; none of it is in the file.
    let bytes = std::fs::read(dir.join("jobs.sqlite")).unwrap();
    let wal = std::fs::read(dir.join("jobs.sqlite-wal")).unwrap_or_default();
    for file in [bytes, wal] {
        let text = String::from_utf8_lossy(&file);
        assert!(!text.contains("Bearer"), "no credential in the journal");
        assert!(!text.contains("/daglo/"), "no callback URL in the journal");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A journal that loses its `submitted` write, as a process killed right after the submit
/// answer and before the rid reached the disk would.
#[derive(Debug)]
struct LosesTheRid(SqliteJournal);

#[async_trait::async_trait]
impl Journal for LosesTheRid {
    async fn intend(
        &self,
        intent: daglo::journal::Intent,
    ) -> Result<daglo::journal::EntryId, daglo::journal::JournalError> {
        self.0.intend(intent).await
    }
    async fn not_submitted(
        &self,
        id: daglo::journal::EntryId,
        reason: &str,
    ) -> Result<(), daglo::journal::JournalError> {
        self.0.not_submitted(id, reason).await
    }
    async fn submitted(
        &self,
        _id: daglo::journal::EntryId,
        _rid: &daglo::Rid,
    ) -> Result<(), daglo::journal::JournalError> {
        Err(daglo::journal::JournalError::message(
            "the process died before this write",
        ))
    }
    async fn finished(
        &self,
        id: daglo::journal::EntryId,
        outcome: &daglo::journal::OutcomeKind,
        result: Option<&str>,
    ) -> Result<(), daglo::journal::JournalError> {
        self.0.finished(id, outcome, result).await
    }
    async fn entries(&self) -> Result<Vec<daglo::journal::Entry>, daglo::journal::JournalError> {
        self.0.entries().await
    }
}

#[tokio::test]
async fn a_crash_after_the_submit_before_the_rid_is_written_leaves_it_uncertain_not_resubmitted() {
    let dir = place("lost-rid");
    let (sim, client) = support::sim(SimConfig::default()).await;
    let journal = Arc::new(LosesTheRid(SqliteJournal::open(dir.join("jobs.sqlite")).unwrap()));
    let transcriber = Transcriber::builder(client.clone())
        .delivery(support::fast_polling(&client))
        .journal(journal)
        .build()
        .await
        .unwrap();
    let err = transcriber
        .submit_url("https://a.example/a.wav", &JobOptions::default())
        .await
        .unwrap_err();
    // The job exists and the error hands its rid back, so the caller can still resume it...
    let rid = err.rid().cloned().expect("the rid survives the error");
    assert!(err.may_have_created_job());
    assert!(sim.job(&rid).is_some());
    // ...and a restarted process sees an uncertain entry: reported, not resubmitted.
    let reopened = SqliteJournal::open(dir.join("jobs.sqlite")).unwrap();
    let recovery = reopened.recover().await.unwrap();
    assert!(recovery.pending.is_empty());
    assert_eq!(recovery.uncertain.len(), 1);
    assert_eq!(recovery.uncertain[0].intent.input, "https://a.example/a.wav");
    let _ = std::fs::remove_dir_all(dir);
}
