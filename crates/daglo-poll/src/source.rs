//! Where job states come from: the REST client, or a scripted source in tests.

use std::sync::Arc;

use async_trait::async_trait;
use daglo_client::{Client, Error, RateBudget, StatusAnswer};
use daglo_core::Rid;

/// Answers "what is this job's state now?" with one request and no retry: the scheduler spends
/// the rate budget and schedules retries itself.
#[async_trait]
pub trait StatusSource: Send + Sync + 'static {
    /// One status request for `rid`.
    async fn fetch(&self, rid: &Rid) -> Result<StatusAnswer, Error>;

    /// The budget that paces this source's endpoint, when it has one: a poller configured with
    /// no budget of its own draws from it. The client's is its status budget
    /// ([`Client::status_budget`]), so every status request of a process — polls, confirmations
    /// of final callbacks, [`Client::status`] — draws from one budget.
    fn budget(&self) -> Option<Arc<dyn RateBudget>> {
        None
    }
}

#[async_trait]
impl StatusSource for Client {
    async fn fetch(&self, rid: &Rid) -> Result<StatusAnswer, Error> {
        self.status_once(rid).await
    }

    fn budget(&self) -> Option<Arc<dyn RateBudget>> {
        Some(self.status_budget())
    }
}
