//! `PollingDelivery`: the handle applications hold, and `Watch`, one caller's wait.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use daglo_client::Client;
use daglo_core::{
    DeliveryError, GaveUpReason, IgnoreProgress, JobOptions, Outcome, ProgressEvent, ProgressObserver,
    ResultDelivery, Rid, Status, Ticket,
};
use tokio::sync::{mpsc, oneshot};

use crate::clock::PollClock;
use crate::config::PollingConfig;
use crate::mailbox::{Delivery, Mailbox};
use crate::scheduler::{Command, Scheduler, SchedulerStats, Waiter};
use crate::source::StatusSource;

/// Gets results by polling `GET …/transcripts/{rid}`, for any number of jobs, from one
/// scheduler task under one shared rate budget. Cheap to clone; clones share the scheduler.
///
/// The scheduler stops when the last clone and the last [`Watch`] are dropped.
#[derive(Clone)]
pub struct PollingDelivery {
    inner: Arc<Inner>,
}

struct Inner {
    commands: mpsc::UnboundedSender<Command>,
    next_waiter: AtomicU64,
    deadline: Option<Duration>,
    clock: PollClock,
}

impl fmt::Debug for PollingDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PollingDelivery")
            .field("deadline", &self.inner.deadline)
            .field("clock", &self.inner.clock)
            .finish_non_exhaustive()
    }
}

/// Per-wait settings.
///
/// ```
/// use std::time::Duration;
/// use daglo::poll::WatchOptions;
///
/// let options = WatchOptions::default()
///     .audio_duration(Duration::from_secs(90))
///     .deadline(Duration::from_secs(600));
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WatchOptions {
    audio_duration: Option<Duration>,
    deadline: DeadlineChoice,
}

/// Which deadline one wait uses.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
enum DeadlineChoice {
    /// [`PollingConfig::deadline`]'s.
    #[default]
    Configured,
    /// None: wait for ever.
    Never,
    /// This one.
    After(Duration),
}

impl WatchOptions {
    /// Sets the audio's duration, when known: the adaptive policy's first estimate of the job's
    /// length.
    #[must_use]
    pub fn audio_duration(mut self, duration: Duration) -> Self {
        self.audio_duration = Some(duration);
        self
    }

    /// Gives up on this wait after `deadline` ([`Outcome::GaveUp`] with the rid), whatever the
    /// configured deadline.
    #[must_use]
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = DeadlineChoice::After(deadline);
        self
    }

    /// Waits for ever on this wait, whatever the configured deadline.
    #[must_use]
    pub fn no_deadline(mut self) -> Self {
        self.deadline = DeadlineChoice::Never;
        self
    }
}

impl PollingDelivery {
    /// Polls through `client` with `config`.
    ///
    /// # Panics
    /// Outside a Tokio runtime, since it starts the scheduler task.
    pub fn new(client: Client, config: PollingConfig) -> Self {
        Self::with_source(Arc::new(client), config)
    }

    /// Polls through any [`StatusSource`] (a scripted one in tests).
    ///
    /// # Panics
    /// Outside a Tokio runtime, since it starts the scheduler task.
    pub fn with_source(source: Arc<dyn StatusSource>, config: PollingConfig) -> Self {
        let (commands, receiver) = mpsc::unbounded_channel();
        let inner = Inner {
            commands,
            next_waiter: AtomicU64::new(1),
            deadline: config.deadline,
            clock: config.clock,
        };
        tokio::spawn(Scheduler::new(config, source).run(receiver));
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Starts waiting for `rid`. Several watches of one rid share one poll.
    #[must_use = "dropping a Watch stops waiting for the job"]
    pub fn watch(&self, rid: Rid, options: WatchOptions) -> Watch {
        let id = self.inner.next_waiter.fetch_add(1, Ordering::Relaxed);
        let mailbox = Arc::new(Mailbox::default());
        let _ = self.inner.commands.send(Command::Watch {
            rid: rid.clone(),
            audio: options.audio_duration,
            waiter: Waiter {
                id,
                mailbox: mailbox.clone(),
            },
            // The caller's span (a job's `daglo.job`): its status requests are its children.
            span: tracing::Span::current(),
        });
        let deadline_after = match options.deadline {
            DeadlineChoice::Configured => self.inner.deadline,
            DeadlineChoice::Never => None,
            DeadlineChoice::After(after) => Some(after),
        };
        Watch {
            deadline: deadline_after.map(|after| (self.inner.clock.now() + after, after)),
            clock: self.inner.clock,
            last_status: None,
            finished: None,
            mailbox,
            detach: Detach {
                commands: self.inner.commands.clone(),
                rid,
                waiter: id,
            },
        }
    }

    /// Starts waiting for `rid` with the default [`WatchOptions`] — a job just submitted or one
    /// whose rid was saved before a restart: polling needs nothing else.
    #[must_use = "dropping a Watch stops waiting for the job"]
    pub fn follow(&self, rid: Rid) -> Watch {
        self.watch(rid, WatchOptions::default())
    }

    /// What the scheduler is doing now. Commands are handled in order, so the answer reflects
    /// every watch started and dropped before the call.
    pub async fn stats(&self) -> SchedulerStats {
        let (reply, answer) = oneshot::channel();
        let _ = self.inner.commands.send(Command::Stats(reply));
        answer.await.unwrap_or_default()
    }
}

/// Tells the scheduler a waiter has gone, whichever way the [`Watch`] ends.
struct Detach {
    commands: mpsc::UnboundedSender<Command>,
    rid: Rid,
    waiter: u64,
}

impl Drop for Detach {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Detach {
            rid: self.rid.clone(),
            waiter: self.waiter,
        });
    }
}

/// One caller's wait for one job. Dropping it stops polling the rid if nobody else waits for it.
#[must_use = "dropping a Watch stops waiting for the job"]
pub struct Watch {
    deadline: Option<(Instant, Duration)>,
    clock: PollClock,
    last_status: Option<Status>,
    /// The result `next_event` saw, kept for `outcome`.
    finished: Option<Result<Outcome, DeliveryError>>,
    mailbox: Arc<Mailbox>,
    detach: Detach,
}

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch")
            .field("rid", &self.detach.rid)
            .field("last_status", &self.last_status)
            .finish_non_exhaustive()
    }
}

enum Next {
    Event(ProgressEvent),
    Done(Result<Outcome, DeliveryError>),
}

impl Watch {
    /// The job being waited for.
    pub fn rid(&self) -> &Rid {
        &self.detach.rid
    }

    /// The next progress event, or `None` once the job has ended or the deadline has passed
    /// (then [`outcome`](Watch::outcome) answers at once).
    pub async fn next_event(&mut self) -> Option<ProgressEvent> {
        match self.next().await {
            Next::Event(event) => Some(event),
            Next::Done(result) => {
                self.finished = Some(result);
                None
            }
        }
    }

    /// Waits for the outcome, ignoring progress.
    pub async fn outcome(self) -> Result<Outcome, DeliveryError> {
        self.outcome_with(&IgnoreProgress).await
    }

    /// Waits for the outcome, handing every progress event to `observer` first.
    pub async fn outcome_with(mut self, observer: &dyn ProgressObserver) -> Result<Outcome, DeliveryError> {
        loop {
            match self.next().await {
                Next::Event(event) => observer.on_event(&event),
                Next::Done(result) => return result,
            }
        }
    }

    async fn next(&mut self) -> Next {
        if let Some(result) = self.finished.take() {
            return Next::Done(result);
        }
        let delivery = match self.deadline {
            None => self.mailbox.next().await,
            Some((at, after)) => {
                tokio::select! {
                    biased;
                    delivery = self.mailbox.next() => delivery,
                    () = self.clock.sleep_until(at) => {
                        return Next::Done(Ok(Outcome::GaveUp {
                            rid: self.rid().clone(),
                            last_status: self.last_status.clone(),
                            reason: GaveUpReason::Deadline(after),
                        }));
                    }
                }
            }
        };
        match delivery {
            Delivery::Event(event) => {
                if let ProgressEvent::Progress { status, .. } = &event {
                    self.last_status = Some(status.clone());
                }
                Next::Event(event)
            }
            Delivery::Settled(result) => {
                Next::Done(result.map_err(|error| error.into_delivery_error(self.rid())))
            }
            Delivery::Closed => Next::Done(Err(DeliveryError::Other {
                rid: Some(self.rid().clone()),
                source: "the polling scheduler stopped".into(),
            })),
        }
    }
}

#[async_trait]
impl ResultDelivery for PollingDelivery {
    fn name(&self) -> &'static str {
        "polling"
    }

    /// Polling needs nothing before the submit.
    async fn prepare(&self, _options: &mut JobOptions) -> Result<Box<dyn Ticket>, DeliveryError> {
        Ok(Box::new(PollingTicket(self.clone())))
    }

    fn resume(&self, _rid: &Rid) -> Result<Box<dyn Ticket>, DeliveryError> {
        Ok(Box::new(PollingTicket(self.clone())))
    }
}

/// Polling's phase two: nothing was registered, so it only needs the scheduler.
#[derive(Debug)]
struct PollingTicket(PollingDelivery);

#[async_trait]
impl Ticket for PollingTicket {
    async fn wait(
        self: Box<Self>,
        rid: Rid,
        observer: &dyn ProgressObserver,
    ) -> Result<Outcome, DeliveryError> {
        self.0.follow(rid).outcome_with(observer).await
    }
}
