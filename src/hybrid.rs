//! Callback first, polling as the safety net.

use std::time::Duration;

use async_trait::async_trait;
use daglo_callback::CallbackDelivery;
use daglo_core::{DeliveryError, JobOptions, Outcome, ProgressObserver, ResultDelivery, Rid, Ticket};
use daglo_poll::PollingDelivery;
use tracing::info;

/// How long a hybrid waits for a final callback before polling too, by default: 2 minutes.
pub const DEFAULT_HYBRID_WINDOW: Duration = Duration::from_secs(120);

/// The hybrid's default safety net: exponential from 30 s, doubling, at most 5 minutes.
pub const HYBRID_SAFETY_NET: daglo_core::PollPolicy = daglo_core::PollPolicy::Exponential {
    initial: Duration::from_secs(30),
    factor: 2.0,
    max: Duration::from_secs(300),
};

/// Waits for the job's callback; if no terminal callback has come within
/// [`window`](HybridDelivery::window), it also polls the rid, and whichever sees the end first
/// wins. A lost callback therefore costs latency, never the result; a job that calls back in
/// time costs one status request: the confirmation of its final callback.
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
    /// Callbacks through `callbacks`, the safety net through `polling`, polling after
    /// [`DEFAULT_HYBRID_WINDOW`] (2 minutes) without a terminal callback.
    pub fn new(callbacks: CallbackDelivery, polling: PollingDelivery) -> Self {
        Self {
            callbacks,
            polling,
            window: DEFAULT_HYBRID_WINDOW,
        }
    }

    /// How long to wait for a terminal callback before polling too (default
    /// [`DEFAULT_HYBRID_WINDOW`]). Set it a little above the processing time you expect.
    #[must_use]
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

    async fn prepare(&self, options: &mut JobOptions) -> Result<Box<dyn Ticket>, DeliveryError> {
        let callback = self.callbacks.prepare(options).await?;
        Ok(Box::new(HybridTicket {
            callback: Some(callback),
            polling: self.polling.clone(),
            window: self.window,
        }))
    }

    /// A resumed job has no callback registration: it is polled straight away.
    fn resume(&self, _rid: &Rid) -> Result<Box<dyn Ticket>, DeliveryError> {
        Ok(Box::new(HybridTicket {
            callback: None,
            polling: self.polling.clone(),
            window: self.window,
        }))
    }

    /// A resumed job whose callback key was kept is registered again: its callbacks are
    /// accepted — and it is polled straight away too, since callbacks sent while no process
    /// followed it (a restart, a replica that died) may be lost. A key that cannot be
    /// registered again falls back to polling alone.
    async fn resume_registered(&self, rid: &Rid, job_key: &str) -> Result<Box<dyn Ticket>, DeliveryError> {
        let callback = match self.callbacks.resume_registered(rid, job_key).await {
            Ok(ticket) => Some(ticket),
            Err(e) => {
                info!(%rid, error = %e, "the job's callback cannot be registered again; polling it");
                None
            }
        };
        Ok(Box::new(HybridTicket {
            callback,
            polling: self.polling.clone(),
            window: Duration::ZERO,
        }))
    }

    /// The callback side registered again; polling joins once the rid is known.
    async fn reattach(&self, job_key: &str) -> Result<Box<dyn Ticket>, DeliveryError> {
        let callback = self.callbacks.reattach(job_key).await?;
        Ok(Box::new(HybridTicket {
            callback: Some(callback),
            polling: self.polling.clone(),
            window: self.window,
        }))
    }
}

/// Hybrid's phase two: the callback ticket, and the poller to fall back on.
#[derive(Debug)]
struct HybridTicket {
    callback: Option<Box<dyn Ticket>>,
    polling: PollingDelivery,
    window: Duration,
}

#[async_trait]
impl Ticket for HybridTicket {
    fn job_key(&self) -> Option<&str> {
        self.callback.as_ref().and_then(|ticket| ticket.job_key())
    }

    async fn claimed_rid(&mut self) -> Option<Rid> {
        match &mut self.callback {
            Some(callback) => callback.claimed_rid().await,
            None => None,
        }
    }

    async fn wait(
        self: Box<Self>,
        rid: Rid,
        observer: &dyn ProgressObserver,
    ) -> Result<Outcome, DeliveryError> {
        let Self {
            callback,
            polling,
            window,
        } = *self;
        let Some(callback) = callback else {
            return polling.follow(rid).outcome_with(observer).await;
        };
        let callback = callback.wait(rid.clone(), observer);
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
            () = tokio::time::sleep(window) => {
                info!(%rid, "no terminal callback within the window; polling too");
            }
        }
        let polled = polling.follow(rid).outcome_with(observer);
        tokio::pin!(polled);
        loop {
            tokio::select! {
                outcome = &mut callback, if callback_open => {
                    callback_open = false;
                    if !matches!(outcome, Ok(Outcome::GaveUp { .. })) {
                        return outcome;
                    }
                }
                outcome = &mut polled => {
                    // The final callback did not come in time: polling found the outcome.
                    daglo_core::telemetry::hybrid_fallback();
                    return outcome;
                }
            }
        }
    }
}
