//! Where the scheduler leaves a waiter's events and outcome: one small allocation per waiter
//! (a channel would allocate a block of slots up front), so 10,000 waiting jobs stay cheap.

use daglo_core::internal::lock;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use daglo_core::{Outcome, ProgressEvent};
use tokio::sync::Notify;

/// How a job's wait ended, shared by every waiter of the job: the outcome, or the client error
/// that ended it (classified for the caller by [`daglo_client::Error::into_delivery_error`]).
pub(crate) type WaitResult = Result<Outcome, Arc<daglo_client::Error>>;

/// What a waiter takes out of its mailbox next.
#[derive(Debug)]
pub(crate) enum Delivery {
    Event(ProgressEvent),
    Settled(WaitResult),
    /// The scheduler stopped without settling the job.
    Closed,
}

#[derive(Debug, Default)]
struct State {
    events: VecDeque<ProgressEvent>,
    outcome: Option<WaitResult>,
    closed: bool,
}

/// One waiter's inbox: events in order, then the outcome.
#[derive(Debug, Default)]
pub(crate) struct Mailbox {
    state: Mutex<State>,
    notify: Notify,
}

impl Mailbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub(crate) fn push_event(&self, event: ProgressEvent) {
        self.lock().events.push_back(event);
        self.notify.notify_one();
    }

    pub(crate) fn settle(&self, result: WaitResult) {
        self.lock().outcome = Some(result);
        self.notify.notify_one();
    }

    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_one();
    }

    /// The next event, else the outcome, waiting until one is there. Events queued before the
    /// outcome always come out first.
    pub(crate) async fn next(&self) -> Delivery {
        loop {
            {
                let mut state = self.lock();
                if let Some(event) = state.events.pop_front() {
                    return Delivery::Event(event);
                }
                if let Some(result) = state.outcome.take() {
                    state.closed = true;
                    return Delivery::Settled(result);
                }
                if state.closed {
                    return Delivery::Closed;
                }
            }
            // A notification sent between the check and here is kept as a permit.
            self.notify.notified().await;
        }
    }
}
