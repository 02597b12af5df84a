//! `retention_days`: ended jobs' data deleted once they are that old — the same deletion as
//! `DELETE /v1/jobs/{id}` (transcript, subtitles, inbox, webhook deliveries, journal entry),
//! a job at a time, checked at start and then every hour (or every half retention, when that
//! is shorter).

use std::time::{Duration, SystemTime};

use daglo::JobState;
use daglo::jobs::JobFilter;

use crate::server::App;

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

/// One pass: how many jobs it deleted.
pub(crate) async fn sweep(app: &App, keep: Duration) -> Result<usize, String> {
    let before = SystemTime::now()
        .checked_sub(keep)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let ended = app
        .transcriber
        .jobs(
            JobFilter::default()
                .state(JobState::Finished)
                .state(JobState::Failed)
                .state(JobState::NotSubmitted),
        )
        .await
        .map_err(|e| daglo::internal::error_chain(&e))?;
    let mut deleted = 0;
    for job in ended.into_iter().filter(|job| job.updated_at < before) {
        match crate::routes::forget(app, &job.id).await {
            Ok(()) => deleted += 1,
            Err(e) => {
                tracing::warn!(job = %job.id, error = %daglo::internal::error_chain(&e), "could not delete a job past retention_days");
            }
        }
        // One job at a time, yielding between them: the API is served meanwhile.
        tokio::task::yield_now().await;
    }
    Ok(deleted)
}
