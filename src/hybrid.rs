//! Callback first, polling as the safety net.

use std::time::Duration;

use async_trait::async_trait;
use daglo_callback::CallbackDelivery;
use daglo_core::{
    DeliveryError, JobOptions, Outcome, Prepared, ProgressObserver, ResultDelivery, SubmittedJob,
};
use daglo_poll::PollingDelivery;
use tracing::info;

/// Waits for the job's callback; if no terminal callback has come within
/// [`window`](HybridDelivery::window), it also polls the rid, and whichever sees the end first
/// wins. A lost callback therefore costs latency, never the result; a job that calls back in
/// time costs no status request at all.
///
/// Give the polling side a sparse policy (say `Exponential { initial: 30 s, factor: 2, max: 5 min }`):
/// it only runs for jobs whose callback is late. A job resumed after a restart (no registration)
/// is polled straight away.
#[derive(Debug, Clone)]
pub struct HybridDelivery {
    callbacks: CallbackDelivery,
    polling: PollingDelivery,
    window: Duration,
}

impl HybridDelivery {
    /// Callbacks through `callbacks`, the safety net through `polling`, polling after 5 minutes
    /// without a terminal callback.
    pub fn new(callbacks: CallbackDelivery, polling: PollingDelivery) -> Self {
        HybridDelivery {
            callbacks,
            polling,
            window: Duration::from_secs(300),
        }
    }

    /// How long to wait for a terminal callback before polling too. Set it a little above the
    /// processing time you expect.
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }
}

#[async_trait]
impl ResultDelivery for HybridDelivery {
    fn name(&self) -> &'static str {
        "hybrid"
    }

    async fn prepare(&self, options: &mut JobOptions) -> Result<Prepared, DeliveryError> {
        self.callbacks.prepare(options).await
    }

    async fn wait(
        &self,
        job: SubmittedJob,
        observer: &dyn ProgressObserver,
    ) -> Result<Outcome, DeliveryError> {
        let rid = job.rid.clone();
        let callback = self.callbacks.wait(job, observer);
        tokio::pin!(callback);
        let mut callback_open = true;
        tokio::select! {
            outcome = &mut callback => {
                callback_open = false;
                match outcome {
                    Ok(Outcome::GaveUp { .. }) | Err(DeliveryError::NotPrepared { .. }) => {}
                    decided => return decided,
                }
            }
            () = tokio::time::sleep(self.window) => {
                info!(%rid, "no terminal callback within the window; polling too");
            }
        }
        let polled = self.polling.resume(rid).outcome_with(observer);
        tokio::pin!(polled);
        loop {
            tokio::select! {
                outcome = &mut callback, if callback_open => {
                    callback_open = false;
                    if !matches!(outcome, Ok(Outcome::GaveUp { .. })) {
                        return outcome;
                    }
                }
                outcome = &mut polled => return outcome,
            }
        }
    }
}
