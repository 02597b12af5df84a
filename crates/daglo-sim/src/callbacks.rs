//! The callback driver: one task per job that asked for callbacks, POSTing progress bodies at
//! each milestone and then the final body, with the job's faults applied.

use std::sync::Arc;
use std::time::Duration;

use daglo_core::{Callback, Rid, Status, StatusBody};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::state::{CallbackRecord, JobOutput, MILESTONES, Shared};
use daglo_core::internal::lock;

/// One POST the driver will make.
struct Planned {
    due: Instant,
    body: StatusBody,
    /// The job's transcript, written into the body as it is sent (a final's transcript is tens
    /// of KiB: serialized from the job's own copy, not copied first).
    results: Option<Arc<JobOutput>>,
    is_final: bool,
}

/// A body with the transcript of `output` as its `sttResults`.
#[derive(serde::Serialize)]
struct WithResults<'a> {
    #[serde(flatten)]
    body: &'a StatusBody,
    #[serde(rename = "sttResults")]
    results: &'a [daglo_core::SttResult],
}

impl Planned {
    fn json(&self) -> bytes::Bytes {
        let json = match &self.results {
            Some(output) => serde_json::to_vec(&WithResults {
                body: &self.body,
                results: &output.results,
            }),
            None => serde_json::to_vec(&self.body),
        };
        // A `StatusBody` always serializes (string keys, no non-finite numbers).
        json.unwrap_or_default().into()
    }
}

/// Sends the job's callbacks in order. `flushed` fires once every callback due at submit time
/// has gone out (the submit handler waits on it when the job must call back before the submit
/// answer); `done` turns true when the driver has nothing left to send.
pub(crate) async fn drive(
    shared: Arc<Shared>,
    rid: Rid,
    callback: Callback,
    flushed: oneshot::Sender<()>,
    done: watch::Sender<bool>,
) {
    let Some(schedule) = schedule(&shared, &rid) else {
        let _ = flushed.send(());
        done.send_replace(true);
        return;
    };
    let mut flushed = Some(flushed);
    for planned in schedule {
        if planned.due > shared.now() {
            if let Some(flushed) = flushed.take() {
                let _ = flushed.send(());
            }
            shared.config.clock.sleep_until(planned.due).await;
        }
        send(&shared, &rid, &callback, planned).await;
    }
    if let Some(flushed) = flushed.take() {
        let _ = flushed.send(());
    }
    done.send_replace(true);
}

/// The job's callbacks in sending order, faults applied.
fn schedule(shared: &Shared, rid: &Rid) -> Option<Vec<Planned>> {
    let jobs = lock(&shared.jobs);
    let job = jobs.get(rid)?;
    let faults = &job.plan.faults;
    if faults.drop_all_callbacks {
        return Some(Vec::new());
    }
    let output = &job.output;
    let processing = job.plan.processing_time;
    let mut planned = Vec::new();
    if faults.callback_before_submit_answer {
        planned.push(Planned {
            due: job.submitted_at,
            body: output.running_body(Status::AiRequested, 0),
            results: None,
            is_final: false,
        });
    }
    for (status, at) in MILESTONES {
        planned.push(Planned {
            due: job.submitted_at + processing.mul_f64(at),
            body: output.running_body(status, (at * 100.0) as u32),
            results: None,
            is_final: false,
        });
    }
    let final_due = job.completes_at() + faults.delay_final_callback.unwrap_or_default();
    if !faults.drop_final_callback {
        let copies = if faults.duplicate_final_callback { 2 } else { 1 };
        let (body, with_results) = output.final_head();
        for _ in 0..copies {
            planned.push(Planned {
                due: final_due,
                body: body.clone(),
                results: with_results.then(|| output.clone()),
                is_final: true,
            });
        }
    }
    if faults.late_progress_after_final {
        planned.push(Planned {
            due: final_due,
            body: output.running_body(Status::PostProcessing, 90),
            results: None,
            is_final: false,
        });
    }
    if faults.omit_rid_in_callbacks {
        for p in &mut planned {
            p.body.rid = None;
        }
    }
    Some(planned)
}

async fn send(shared: &Shared, rid: &Rid, callback: &Callback, planned: Planned) {
    let json = planned.json();
    let mut attempt = 0;
    let answer = loop {
        let mut request = shared
            .callback_client
            .post(&callback.url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(json.clone());
        for (name, value) in &callback.headers {
            request = request.header(name, value);
        }
        let (answer, retry_after) = match request.send().await {
            Ok(response) => {
                let retry_after = response
                    .headers()
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                (Ok(response.status().as_u16()), retry_after)
            }
            Err(e) => (Err(e.without_url().to_string()), None),
        };
        let refused = match &answer {
            Ok(status) => *status == 429 || *status >= 500,
            Err(_) => true,
        };
        if !refused || attempt >= shared.config.callback_retries {
            break answer;
        }
        attempt += 1;
        let backoff = Duration::from_millis(100) * 2_u32.saturating_pow(attempt - 1);
        let wait = retry_after.unwrap_or(backoff).min(Duration::from_secs(5));
        debug!(%rid, attempt, wait_ms = wait.as_millis() as u64, "callback refused; sending it again");
        tokio::time::sleep(wait).await;
    };
    match &answer {
        Ok(status) => debug!(%rid, callback_status = %planned.body.status, answer = status, "callback sent"),
        Err(e) => warn!(%rid, callback_status = %planned.body.status, error = %e, "callback failed"),
    }
    if let Some(job) = lock(&shared.jobs).get_mut(rid) {
        job.callbacks_sent += 1;
    }
    lock(&shared.callback_log).push(CallbackRecord {
        rid: rid.clone(),
        status: planned.body.status,
        is_final: planned.is_final,
        answer,
        sent_at: shared.now(),
    });
}
