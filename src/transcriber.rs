//! `Transcriber`: submit and deliver in one place, with any strategy.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use daglo_client::Client;
use daglo_core::{
    DeliveryError, JobOptions, Outcome, ProgressObserver, ResultDelivery, Rid, SubmitResponse, SubmittedJob,
};

/// Why a transcription could not be carried out (as opposed to a job that failed, which is an
/// [`Outcome::Failed`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TranscribeError {
    /// The strategy could not prepare the job; nothing was submitted.
    #[error("could not prepare the job")]
    Prepare(#[source] DeliveryError),
    /// The submit failed. Check [`daglo_client::Error::may_have_created_job`] before retrying:
    /// the service has no idempotency.
    #[error("the submit failed")]
    Submit(#[source] daglo_client::Error),
    /// The job was submitted (its rid is here, to resume) but waiting for it failed.
    #[error("waiting for job `{rid}` failed")]
    Wait {
        /// The job, still running and billed: resume it.
        rid: Rid,
        /// Why waiting failed.
        #[source]
        source: DeliveryError,
    },
}

/// A job that has been submitted and not yet waited for. Save [`rid`](Pending::rid) somewhere
/// durable before waiting, so a restart can [`resume`](Transcriber::resume) it.
#[derive(Debug)]
pub struct Pending {
    job: SubmittedJob,
    file_name: Option<String>,
}

impl Pending {
    /// The job's rid.
    pub fn rid(&self) -> &Rid {
        &self.job.rid
    }

    /// The uploaded file's name, as the service reported it.
    pub fn file_name(&self) -> Option<&str> {
        self.file_name.as_deref()
    }
}

/// Submits jobs and gets their results through one [`ResultDelivery`] strategy: switching
/// between polling, callbacks and hybrid changes only the strategy it is built with.
///
/// ```no_run
/// use std::sync::Arc;
/// use daglo::{Client, JobOptions, PollingConfig, PollingDelivery, ProgressEvent, Transcriber};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = Client::new(std::env::var("DAGLO_API_TOKEN")?)?;
/// let strategy = Arc::new(PollingDelivery::new(client.clone(), PollingConfig::default()));
/// let transcriber = Transcriber::new(client, strategy);
///
/// let pending = transcriber.submit_file("meeting.m4a", &JobOptions::default()).await?;
/// println!("job {}", pending.rid()); // persist it before waiting
/// let show = |event: &ProgressEvent| println!("{event}");
/// let outcome = transcriber.wait(pending, &show).await?;
/// println!("{:?}", outcome.transcript());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Transcriber {
    client: Client,
    delivery: Arc<dyn ResultDelivery>,
}

impl fmt::Debug for Transcriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transcriber")
            .field("client", &self.client)
            .field("strategy", &self.delivery.name())
            .finish()
    }
}

impl Transcriber {
    /// Submits through `client` and waits through `delivery`.
    pub fn new(client: Client, delivery: Arc<dyn ResultDelivery>) -> Self {
        Transcriber { client, delivery }
    }

    /// The strategy's name (`"polling"`, `"callback"`, `"hybrid"`).
    pub fn strategy(&self) -> &'static str {
        self.delivery.name()
    }

    /// Prepares the job with the strategy, then submits audio at a public URL.
    pub async fn submit_url(&self, url: &str, options: &JobOptions) -> Result<Pending, TranscribeError> {
        self.prepare_and_submit(options, |options| async move {
            self.client.submit_url(url, &options).await
        })
        .await
    }

    /// Prepares the job with the strategy, then uploads a local file (streamed).
    pub async fn submit_file(
        &self,
        path: impl AsRef<Path>,
        options: &JobOptions,
    ) -> Result<Pending, TranscribeError> {
        let path = path.as_ref();
        self.prepare_and_submit(options, |options| async move {
            self.client.submit_file(path, &options).await
        })
        .await
    }

    /// Phase one, then the submit `send` performs with the amended options.
    async fn prepare_and_submit<F, Fut>(
        &self,
        options: &JobOptions,
        send: F,
    ) -> Result<Pending, TranscribeError>
    where
        F: FnOnce(JobOptions) -> Fut,
        Fut: Future<Output = Result<SubmitResponse, daglo_client::Error>>,
    {
        let mut options = options.clone();
        let prepared = self
            .delivery
            .prepare(&mut options)
            .await
            .map_err(TranscribeError::Prepare)?;
        // A failed submit drops `prepared`, which releases whatever the strategy registered.
        let answer = send(options).await.map_err(TranscribeError::Submit)?;
        Ok(Pending {
            job: SubmittedJob::new(answer.rid, prepared),
            file_name: answer.file_name,
        })
    }

    /// Waits for a submitted job, reporting progress to `observer`.
    pub async fn wait(
        &self,
        pending: Pending,
        observer: &dyn ProgressObserver,
    ) -> Result<Outcome, TranscribeError> {
        let rid = pending.job.rid.clone();
        self.delivery
            .wait(pending.job, observer)
            .await
            .map_err(|source| TranscribeError::Wait { rid, source })
    }

    /// Waits for a job submitted earlier (its rid saved before a restart). Polling and hybrid
    /// strategies poll it; a callback-only strategy cannot and answers
    /// [`DeliveryError::NotPrepared`].
    pub async fn resume(
        &self,
        rid: Rid,
        observer: &dyn ProgressObserver,
    ) -> Result<Outcome, TranscribeError> {
        self.wait(
            Pending {
                job: SubmittedJob::resume(rid),
                file_name: None,
            },
            observer,
        )
        .await
    }

    /// Submits a file and waits for its outcome.
    pub async fn transcribe_file(
        &self,
        path: impl AsRef<Path>,
        options: &JobOptions,
        observer: &dyn ProgressObserver,
    ) -> Result<Outcome, TranscribeError> {
        let pending = self.submit_file(path, options).await?;
        self.wait(pending, observer).await
    }

    /// Submits audio at a URL and waits for its outcome.
    pub async fn transcribe_url(
        &self,
        url: &str,
        options: &JobOptions,
        observer: &dyn ProgressObserver,
    ) -> Result<Outcome, TranscribeError> {
        let pending = self.submit_url(url, options).await?;
        self.wait(pending, observer).await
    }
}
