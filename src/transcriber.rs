//! `Transcriber`: submit and deliver in one place, with any strategy.

use crate::error::TranscribeError;
use crate::pending::Pending;
use daglo_core::internal::lock;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use daglo_client::Client;
use daglo_core::{
    Entry, EntryState, IgnoreProgress, Intent, JobOptions, Journal, Outcome, OutcomeKind, ProgressObserver,
    ResultDelivery, Rid, SubmitResponse,
};

use crate::table::{ResultStore, Table};

/// Submits jobs and gets their results through one strategy — polling, callbacks or hybrid.
/// Switching strategy changes only how the `Transcriber` is built.
///
/// ```no_run
/// use daglo::{Client, JobOptions, Outcome, Transcriber};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = Client::new(std::env::var("DAGLO_API_TOKEN")?)?;
/// let transcriber = Transcriber::polling(client);
///
/// // All at once:
/// let outcome = transcriber.transcribe_file("meeting.wav", &JobOptions::default()).await?;
/// println!("{:?}", outcome.transcript());
///
/// // Or submit, persist the rid, then wait (or resume after a restart):
/// let pending = transcriber.submit_url("https://example.com/a.wav", &JobOptions::default()).await?;
/// let rid: daglo::Rid = pending.rid().clone();
/// let outcome = transcriber.wait(pending).await?;
/// let again = transcriber.wait(transcriber.resume(rid)).await?;
/// # Ok(())
/// # }
/// ```
///
/// Cheap to clone; clones share the strategy (and the callback receiver, if it runs one).
#[derive(Clone)]
pub struct Transcriber {
    pub(crate) client: Client,
    pub(crate) delivery: Arc<dyn ResultDelivery>,
    pub(crate) receiver: Option<Arc<Receiver>>,
    pub(crate) journal: Option<Arc<dyn Journal>>,
    pub(crate) results: Option<Arc<dyn ResultStore>>,
    pub(crate) table: Arc<Table>,
}

/// The callback receiver a transcriber built from configuration runs.
pub(crate) struct Receiver {
    addr: std::net::SocketAddr,
    #[cfg(feature = "callback")]
    server: Mutex<Option<daglo_callback::CallbackServer>>,
    #[cfg(not(feature = "callback"))]
    server: Mutex<Option<std::convert::Infallible>>,
}

impl fmt::Debug for Transcriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transcriber")
            .field("client", &self.client)
            .field("strategy", &self.delivery.name())
            .field("receiver", &self.receiver.as_ref().map(|r| r.addr))
            .finish()
    }
}

impl Transcriber {
    /// Submits through `client` and waits through `strategy` (any [`ResultDelivery`], by value).
    pub fn new(client: Client, strategy: impl ResultDelivery + 'static) -> Self {
        Self::from_shared(client, Arc::new(strategy))
    }

    /// A transcriber over a delivery already shared.
    pub(crate) fn from_shared(client: Client, delivery: Arc<dyn ResultDelivery>) -> Self {
        Self {
            client,
            delivery,
            receiver: None,
            journal: None,
            results: None,
            table: Arc::default(),
        }
    }

    /// Polls with the default configuration: adaptive intervals, drawing from the client's
    /// status budget (16 req/s unless the client was given another, a Redis-shared one
    /// included) — the budget every status request of the process shares.
    ///
    /// # Panics
    /// Outside a Tokio runtime, since the polling scheduler is a task.
    #[cfg(feature = "poll")]
    #[cfg_attr(docsrs, doc(cfg(feature = "poll")))]
    pub fn polling(client: Client) -> Self {
        let polling = daglo_poll::PollingDelivery::new(client.clone(), daglo_poll::PollingConfig::default());
        Self::new(client, polling)
    }

    /// Hands the transcriber the callback receiver its strategy depends on: it then reports its
    /// address ([`receiver_addr`](Transcriber::receiver_addr)), stops it gracefully in
    /// [`shutdown`](Transcriber::shutdown), and stops it when the last clone is dropped.
    #[cfg(feature = "callback")]
    #[must_use]
    pub(crate) fn owning_receiver(mut self, server: daglo_callback::CallbackServer) -> Self {
        self.receiver = Some(Arc::new(Receiver {
            addr: server.local_addr(),
            server: Mutex::new(Some(server)),
        }));
        self
    }

    #[must_use]
    pub(crate) fn with_journal(mut self, journal: Arc<dyn Journal>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// A pending job from a journal entry that was submitted (its rid recorded): waiting for
    /// it finishes the entry. `None` for an entry with no rid to resume.
    pub fn resume_entry(&self, entry: &Entry) -> Option<Pending> {
        match &entry.state {
            EntryState::Submitted { rid } => {
                let mut pending = self.resume(rid.clone());
                pending.entry = Some(entry.id);
                Some(pending)
            }
            _ => None,
        }
    }

    /// The strategy's name (`"polling"`, `"callback"`, `"hybrid"`).
    pub fn strategy(&self) -> &'static str {
        self.delivery.name()
    }

    /// The client it submits through (for `/srt`, say).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Where the callback receiver it owns listens, if it runs one.
    pub fn receiver_addr(&self) -> Option<std::net::SocketAddr> {
        self.receiver.as_ref().map(|receiver| receiver.addr)
    }

    /// Stops the jobs it follows in the background ([`start`](Transcriber::start)ed or
    /// [`recover`](Transcriber::recover)ed: they go on at the service, and the journal still
    /// lists them for the next `recover`), then the callback receiver it owns, if any, letting
    /// in-flight callbacks finish. Waits still running on any clone then end when their
    /// registrations expire; call it after them.
    pub async fn shutdown(&self) {
        self.table.stop().await;
        let Some(receiver) = &self.receiver else { return };
        let server = lock(&receiver.server).take();
        #[cfg(feature = "callback")]
        if let Some(server) = server {
            server.shutdown().await;
        }
        #[cfg(not(feature = "callback"))]
        let _ = server;
    }

    /// Prepares the job with the strategy, then submits audio at a public URL.
    pub async fn submit_url(&self, url: &str, options: &JobOptions) -> Result<Pending, TranscribeError> {
        self.prepare_and_submit(url, options, |options| async move {
            self.client.submit_url(url, &options).await
        })
        .await
    }

    /// Prepares the job with the strategy, then uploads a local file (streamed from disk).
    pub async fn submit_file(
        &self,
        path: impl AsRef<Path>,
        options: &JobOptions,
    ) -> Result<Pending, TranscribeError> {
        let path = path.as_ref();
        let input = path.display().to_string();
        self.prepare_and_submit(&input, options, |options| async move {
            self.client.submit_file(path, &options).await
        })
        .await
    }

    /// Phase one, then the submit `send` performs with the amended options — journaled around
    /// it when there is a journal.
    async fn prepare_and_submit<F, Fut>(
        &self,
        input: &str,
        options: &JobOptions,
        send: F,
    ) -> Result<Pending, TranscribeError>
    where
        F: FnOnce(JobOptions) -> Fut,
        Fut: Future<Output = Result<SubmitResponse, daglo_client::Error>>,
    {
        let journal_error = |rid: Option<Rid>| move |source| TranscribeError::Journal { rid, source };
        // The intent first, with the caller's options (before a strategy adds its credential).
        let entry = match &self.journal {
            Some(journal) => Some(
                journal
                    .intend(Intent::new(input, options.digest(), self.strategy()))
                    .await
                    .map_err(journal_error(None))?,
            ),
            None => None,
        };
        let refused = |reason: String| async move {
            if let (Some(journal), Some(entry)) = (&self.journal, entry) {
                // Best effort: the entry stays uncertain if this write fails too.
                let _ = journal.not_submitted(entry, &reason).await;
            }
        };
        let mut options = options.clone();
        let ticket = match self.delivery.prepare(&mut options).await {
            Ok(ticket) => ticket,
            Err(e) => {
                refused(format!("not prepared: {e}")).await;
                return Err(TranscribeError::Prepare(e));
            }
        };
        // A failed submit drops `ticket`, which releases whatever the strategy registered.
        let answer = match send(options).await {
            Ok(answer) => answer,
            Err(e) => {
                // Only a provable refusal closes the entry; otherwise it stays uncertain.
                if !e.may_have_created_job() {
                    refused(e.to_string()).await;
                }
                return Err(TranscribeError::Submit(e));
            }
        };
        if let (Some(journal), Some(entry)) = (&self.journal, entry) {
            journal
                .submitted(entry, &answer.rid)
                .await
                .map_err(journal_error(Some(answer.rid.clone())))?;
        }
        Ok(Pending {
            rid: answer.rid,
            file_name: answer.file_name,
            ticket: Some(ticket),
            entry,
        })
    }

    /// A job submitted earlier, known by its rid (saved before a restart), ready to
    /// [`wait`](Transcriber::wait) for. Polling and hybrid strategies poll it; a callback-only
    /// strategy cannot (its callback was fixed at submit) and the wait answers
    /// [`DeliveryError::NotPrepared`](crate::DeliveryError::NotPrepared).
    pub fn resume(&self, rid: Rid) -> Pending {
        Pending {
            rid,
            file_name: None,
            ticket: None,
            entry: None,
        }
    }

    /// Waits for a submitted (or resumed) job's outcome.
    pub async fn wait(&self, pending: Pending) -> Result<Outcome, TranscribeError> {
        self.wait_with(pending, &IgnoreProgress).await
    }

    /// Waits for a submitted (or resumed) job's outcome, reporting progress to `observer` (any
    /// `Fn(&ProgressEvent)`).
    pub async fn wait_with(
        &self,
        pending: Pending,
        observer: &dyn ProgressObserver,
    ) -> Result<Outcome, TranscribeError> {
        let Pending {
            rid, ticket, entry, ..
        } = pending;
        let wait_error = |source| TranscribeError::Wait {
            rid: rid.clone(),
            source,
        };
        let ticket = match ticket {
            Some(ticket) => ticket,
            None => self.delivery.resume(&rid).map_err(wait_error)?,
        };
        let waiting = std::time::Instant::now();
        let outcome = ticket.wait(rid.clone(), observer).await.map_err(wait_error)?;
        let strategy = crate::table::strategy_label(self.strategy());
        let ended = match &outcome {
            Outcome::Transcript { .. } => "transcript",
            Outcome::Empty { .. } => "empty",
            Outcome::Failed { .. } => "failed",
            _ => "gave_up",
        };
        daglo_core::telemetry::job_ended(strategy, ended, waiting.elapsed().as_secs_f64());
        // The end, when it is one (a job given up on goes on, and stays pending).
        if let (Some(journal), Some(entry), Some(kind)) = (&self.journal, entry, OutcomeKind::of(&outcome)) {
            journal
                .finished(entry, &kind, None)
                .await
                .map_err(|source| TranscribeError::Journal {
                    rid: Some(rid.clone()),
                    source,
                })?;
        }
        Ok(outcome)
    }

    /// Submits a file and waits for its outcome.
    pub async fn transcribe_file(
        &self,
        path: impl AsRef<Path>,
        options: &JobOptions,
    ) -> Result<Outcome, TranscribeError> {
        self.transcribe_file_with(path, options, &IgnoreProgress).await
    }

    /// Submits a file and waits for its outcome, reporting progress to `observer`.
    pub async fn transcribe_file_with(
        &self,
        path: impl AsRef<Path>,
        options: &JobOptions,
        observer: &dyn ProgressObserver,
    ) -> Result<Outcome, TranscribeError> {
        let pending = self.submit_file(path, options).await?;
        self.wait_with(pending, observer).await
    }

    /// Submits audio at a URL and waits for its outcome.
    pub async fn transcribe_url(&self, url: &str, options: &JobOptions) -> Result<Outcome, TranscribeError> {
        self.transcribe_url_with(url, options, &IgnoreProgress).await
    }

    /// Submits audio at a URL and waits for its outcome, reporting progress to `observer`.
    pub async fn transcribe_url_with(
        &self,
        url: &str,
        options: &JobOptions,
        observer: &dyn ProgressObserver,
    ) -> Result<Outcome, TranscribeError> {
        let pending = self.submit_url(url, options).await?;
        self.wait_with(pending, observer).await
    }
}
