//! Where job states come from: the REST client, or a scripted source in tests.

use async_trait::async_trait;
use daglo_client::{Client, Error, StatusAnswer};
use daglo_core::Rid;

/// Answers "what is this job's state now?" with one request and no retry: the scheduler spends
/// the rate budget and schedules retries itself.
#[async_trait]
pub trait StatusSource: Send + Sync + 'static {
    /// One status request for `rid`.
    async fn fetch(&self, rid: &Rid) -> Result<StatusAnswer, Error>;
}

#[async_trait]
impl StatusSource for Client {
    async fn fetch(&self, rid: &Rid) -> Result<StatusAnswer, Error> {
        self.status_once(rid).await
    }
}
