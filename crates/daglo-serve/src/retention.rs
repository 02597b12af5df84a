//! `retention_days`: ended jobs' data deleted once they are that old — the same deletion as
//! `DELETE /v1/jobs/{id}` (transcript, subtitles, inbox, webhook deliveries, journal entry),
//! in small steps, checked at start and then every hour (or every half retention, when that
//! is shorter).

use std::time::{Duration, SystemTime};

use crate::server::App;

/// The pause between two steps of a sweep (a million jobs: 2,000 steps, 4 s of pauses).
const STEP_PAUSE: Duration = Duration::from_millis(2);

/// How often the service looks for jobs past their retention.
const EVERY: Duration = Duration::from_secs(3600);

/// Deletes, now and every hour, the jobs that ended more than `keep` ago.
pub(crate) async fn run(app: App, keep: Duration) {
    loop {
        match sweep(&app, keep).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "deleted jobs past retention_days"),
            Err(e) => {
                tracing::warn!(error = %e, "could not delete the jobs past retention_days; trying again in an hour")
            }
        }
        tokio::time::sleep(EVERY.min(keep / 2).max(std::time::Duration::from_millis(100))).await;
    }
}

/// One pass: how many jobs it deleted — in steps of [`PRUNE_STEP`](daglo::journal::PRUNE_STEP)
/// found on the journal's index of ended entries by time, the task pausing between them, so
/// the API is served meanwhile however many jobs go.
pub(crate) async fn sweep(app: &App, keep: Duration) -> Result<usize, String> {
    let before = SystemTime::now()
        .checked_sub(keep)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut deleted = 0;
    loop {
        // The journal entries, their kept results and the job logs under their ids go in the
        // step; the inbox is listed under each job's callback key, cleared here.
        let step = daglo::internal::prune_step(&app.transcriber, before)
            .await
            .map_err(|e| daglo::internal::error_chain(&e))?;
        // Each a write for the whole step: the webhook deliveries and the outstanding mark under
        // the jobs' ids, the inboxes under their callback keys.
        let jobs: Vec<daglo::JobId> = step.iter().map(|entry| entry.intent.job.clone()).collect();
        let inboxes: Vec<daglo::JobId> = step
            .iter()
            .filter_map(|entry| entry.intent.callback_key.as_deref())
            .map(crate::inbox::list_of)
            .collect();
        if let Err(e) = app
            .log
            .forget_all(crate::webhook::DELIVERIES, &[crate::webhook::PENDING], &jobs)
            .await
        {
            tracing::warn!(jobs = jobs.len(), error = %daglo::internal::error_chain(&e), "could not clear the webhook logs of jobs past retention_days");
        }
        if let Err(e) = app.log.forget_all(crate::inbox::LIST, &[], &inboxes).await {
            tracing::warn!(jobs = jobs.len(), error = %daglo::internal::error_chain(&e), "could not clear the inboxes of jobs past retention_days");
        }
        deleted += step.len();
        if step.len() < daglo::journal::PRUNE_STEP {
            return Ok(deleted);
        }
        // A breath between steps: the readers waiting for the journal go first.
        tokio::time::sleep(STEP_PAUSE).await;
    }
}
