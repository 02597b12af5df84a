//! Replicas on one Redis: each says it is alive, and the running jobs of a replica that is gone
//! are held by one other replica and followed — resumed by their rid, never submitted again.

use std::sync::Arc;
use std::time::Duration;

use daglo::journal::{EntryState, Journal};
use daglo::{JobId, Transcriber};

use crate::webhook::WebhookSet;

/// How often a replica says it is alive, and looks for gone replicas' jobs.
const HEARTBEAT: Duration = Duration::from_secs(2);
/// How long a replica counts as alive after its last heartbeat (and a job hold lasts).
const ALIVE: Duration = Duration::from_secs(6);

/// A replica's loop: its heartbeat, and every running job of a gone replica held (by one
/// replica only) and followed — resumed by its rid, never submitted again.
pub(crate) async fn run(
    replicas: daglo::redis::Replicas,
    transcriber: Transcriber,
    journal: Arc<dyn Journal>,
    webhooks: Option<WebhookSet>,
) {
    let me = daglo::internal::owner();
    let mut held: std::collections::HashSet<JobId> = std::collections::HashSet::new();
    loop {
        if let Err(e) = replicas.heartbeat(&me, ALIVE).await {
            tracing::warn!(error = %daglo::internal::error_chain(&e), "replica heartbeat failed");
        }
        // The running jobs only, read on the journal's index of stages: a heartbeat costs what
        // runs, not what the journal has held.
        match journal.recover().await {
            Ok(recovery) => {
                let running: std::collections::HashSet<JobId> = recovery
                    .pending
                    .iter()
                    .map(|entry| entry.intent.job.clone())
                    .collect();
                held.retain(|job| running.contains(job));
                for entry in recovery.pending {
                    if !matches!(entry.state, EntryState::Submitted { .. }) {
                        continue;
                    }
                    let job = entry.intent.job.clone();
                    if held.contains(&job) {
                        // Still ours: keep the hold.
                        let _ = replicas.hold(job.as_str(), &me, ALIVE).await;
                        continue;
                    }
                    let owner = entry.intent.owner.clone().unwrap_or_default();
                    if owner == me {
                        continue;
                    }
                    let gone = match replicas.is_alive(&owner).await {
                        Ok(alive) => !alive,
                        Err(_) => false,
                    };
                    if gone && matches!(replicas.hold(job.as_str(), &me, ALIVE).await, Ok(true)) {
                        match daglo::internal::adopt_job(&transcriber, &job).await {
                            Ok(_) => {
                                tracing::info!(job = %job, from = %owner, "took over a gone replica's job");
                                if let Some(webhooks) = &webhooks {
                                    webhooks.follow_id(&job).await;
                                }
                                held.insert(job);
                            }
                            Err(e) => {
                                tracing::warn!(job = %job, error = %daglo::internal::error_chain(&e), "could not take over a job")
                            }
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %daglo::internal::error_chain(&e), "could not read the journal for gone replicas' jobs")
            }
        }
        // Webhooks a gone replica had not delivered yet (its job may have ended before it
        // died): delivered by the one replica that holds them.
        if let Some(webhooks) = &webhooks {
            for job in webhooks.pending().await {
                if webhooks.follows(&job) {
                    continue;
                }
                let owner = match journal.by_job(&job).await {
                    Ok(Some(entry)) => entry.intent.owner.unwrap_or_default(),
                    _ => continue,
                };
                if owner == me || !matches!(replicas.is_alive(&owner).await, Ok(false)) {
                    continue;
                }
                let hold = format!("webhook-{job}");
                if matches!(replicas.hold(&hold, &me, ALIVE).await, Ok(true)) {
                    tracing::info!(job = %job, from = %owner, "took over a gone replica's webhook");
                    webhooks.follow_id(&job).await;
                }
            }
        }
        tokio::time::sleep(HEARTBEAT).await;
    }
}
