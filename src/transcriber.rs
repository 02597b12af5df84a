//! `Transcriber`: submit and deliver in one place, with any strategy.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use daglo_client::Client;
use daglo_core::{
    DeliveryError, Entry, EntryId, EntryState, IgnoreProgress, Intent, JobOptions, Journal, JournalError,
    Outcome, OutcomeKind, ProgressObserver, ResultDelivery, Rid, SubmitResponse, Ticket,
};

#[cfg(any(feature = "poll", feature = "callback"))]
use crate::settings::{StrategyConfig, StrategyError};

/// Why a transcription could not be carried out (as opposed to a job that failed, which is an
/// [`Outcome::Failed`]).
///
/// Its message says what failed; [`source`](std::error::Error::source) gives the cause (print the
/// chain). Before acting on it, ask
/// [`may_have_created_job`](TranscribeError::may_have_created_job) (never submit again blindly:
/// the service has no idempotency and bills every job) and [`rid`](TranscribeError::rid) (a job
/// that exists can be resumed).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TranscribeError {
    /// The strategy could not prepare the job; nothing was submitted.
    #[error("could not prepare the job")]
    Prepare(#[source] DeliveryError),
    /// The submit failed. Its message says what is known of the job: none was created (a
    /// refusal: `429`, another `4xx`, a request that never left), or one may exist (a `5xx`, a
    /// connection lost after sending) — check before submitting again.
    #[error("the submit failed; {}", submit_known(.0))]
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
    /// The job journal could not be written. Before the submit, nothing was sent; after it,
    /// the rid is here: the job runs, but the journal does not know it.
    #[error("the job journal could not be written{}", rid.as_ref().map(|r| format!(" for job `{r}`")).unwrap_or_default())]
    Journal {
        /// The job, when it was already submitted.
        rid: Option<Rid>,
        /// Why.
        #[source]
        source: JournalError,
    },
}

/// What a failed submit leaves known of its job, for the message.
fn submit_known(error: &daglo_client::Error) -> &'static str {
    if error.may_have_created_job() {
        "a job may exist (and be billed) — check before submitting again"
    } else {
        "no job was created"
    }
}

impl TranscribeError {
    /// The job's rid, when it was submitted: it is running (and billed), so resume it rather
    /// than submitting again.
    pub fn rid(&self) -> Option<&Rid> {
        match self {
            Self::Wait { rid, .. } => Some(rid),
            Self::Journal { rid, .. } => rid.as_ref(),
            Self::Prepare(_) | Self::Submit(_) => None,
        }
    }

    /// Whether a job may exist (and be billed) although this call failed. `true` for every
    /// failure after the submit, and for a submit whose request may have reached the service;
    /// `false` only when nothing can have been created.
    pub fn may_have_created_job(&self) -> bool {
        match self {
            Self::Prepare(_) => false,
            Self::Submit(error) => error.may_have_created_job(),
            Self::Wait { .. } => true,
            Self::Journal { rid, .. } => rid.is_some(),
        }
    }

    /// Whether the API token or the account is the problem (`401`, `403`): no other request will
    /// succeed until it is fixed.
    pub fn is_auth(&self) -> bool {
        match self {
            Self::Prepare(_) | Self::Journal { .. } => false,
            Self::Submit(error) => error.is_auth(),
            Self::Wait { source, .. } => source.is_auth(),
        }
    }
}

/// A job that has been submitted and not yet waited for. Save [`rid`](Pending::rid) somewhere
/// durable (it is serde-serialisable) before waiting, so a restart can
/// [`resume`](Transcriber::resume) it.
///
/// It owns the strategy's preparation for this job; dropping it without waiting releases that
/// preparation (the job itself goes on at the service).
#[must_use = "a Pending job is only waited for by Transcriber::wait"]
#[derive(Debug)]
pub struct Pending {
    rid: Rid,
    file_name: Option<String>,
    /// `None` for a resumed job: the strategy makes its ticket when the wait starts.
    ticket: Option<Box<dyn Ticket>>,
    /// The journal entry to finish when the wait ends, when there is a journal.
    entry: Option<EntryId>,
}

impl Pending {
    /// The job's rid.
    pub fn rid(&self) -> &Rid {
        &self.rid
    }

    /// The uploaded file's name, as the service reported it.
    pub fn file_name(&self) -> Option<&str> {
        self.file_name.as_deref()
    }

    /// Whether this job was resumed by rid rather than submitted by this process.
    pub fn is_resumed(&self) -> bool {
        self.ticket.is_none()
    }

    /// Its journal entry, when the transcriber keeps a journal.
    pub fn entry(&self) -> Option<EntryId> {
        self.entry
    }
}

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
    client: Client,
    delivery: Arc<dyn ResultDelivery>,
    receiver: Option<Arc<Receiver>>,
    journal: Option<Arc<dyn Journal>>,
}

/// The callback receiver a transcriber built from configuration runs.
struct Receiver {
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
        Self {
            client,
            delivery: Arc::new(strategy),
            receiver: None,
            journal: None,
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

    /// Builds the strategy `config` names — binding and starting the callback receiver when it
    /// needs one, which the transcriber then owns (see [`shutdown`](Transcriber::shutdown)).
    ///
    /// ```no_run
    /// use daglo::{Client, StrategyConfig, Transcriber};
    ///
    /// # async fn run(client: Client) -> Result<(), Box<dyn std::error::Error>> {
    /// let config: StrategyConfig = serde_json::from_str(&std::fs::read_to_string("strategy.json")?)?;
    /// let transcriber = Transcriber::from_config(client, &config).await?;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(any(feature = "poll", feature = "callback"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "poll", feature = "callback"))))]
    pub async fn from_config(client: Client, config: &StrategyConfig) -> Result<Self, StrategyError> {
        match config {
            #[cfg(feature = "poll")]
            StrategyConfig::Polling(settings) => {
                let polling = settings.build(&client)?;
                Ok(Self::new(client, polling))
            }
            #[cfg(feature = "callback")]
            StrategyConfig::Callback(settings) => {
                let (callbacks, server) = settings.start(&client).await?;
                Ok(Self::new(client, callbacks).owning_receiver(server))
            }
            #[cfg(all(feature = "poll", feature = "callback"))]
            StrategyConfig::Hybrid(settings) => {
                let polling = settings.polling.build(&client)?;
                let (callbacks, server) = settings.callback.start(&client).await?;
                let hybrid = crate::HybridDelivery::new(callbacks, polling).window(settings.window);
                Ok(Self::new(client, hybrid).owning_receiver(server))
            }
        }
    }

    /// Builds the strategy `config` names for a receiver **you mount** in your own router: the
    /// transcriber, and — for the callback and hybrid strategies — the receiver, a `tower`
    /// service to route `{public_url path}/{key}` to. Nothing is bound, so `callback.listen`
    /// may be left out; `callback.public_url` is required. The standalone server's
    /// per-connection protections (connection cap, header timeout, connection lifetime) are
    /// then your server's job: serve your app with
    /// [`CallbackServer::serve`](crate::callback::CallbackServer::serve) and
    /// [`CallbackSettings::connection_limits`](crate::strategy::CallbackSettings::connection_limits)
    /// to keep them (`docs/configuration.md`, "Mounting the receiver").
    ///
    /// ```no_run
    /// use daglo::{Client, StrategyConfig, Transcriber};
    ///
    /// # async fn run(client: Client) -> Result<(), Box<dyn std::error::Error>> {
    /// let config: StrategyConfig = serde_json::from_str(r#"{"strategy": "hybrid",
    ///     "callback": {"public_url": "https://app.example.com/daglo"}}"#)?;
    /// let (transcriber, receiver) = Transcriber::from_config_mounted(client, &config).await?;
    /// let mut app = axum::Router::<()>::new().route("/health", axum::routing::get(|| async { "ok" }));
    /// if let Some(receiver) = receiver {
    ///     app = app.route_service("/daglo/{key}", receiver);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "callback")]
    #[cfg_attr(docsrs, doc(cfg(feature = "callback")))]
    pub async fn from_config_mounted(
        client: Client,
        config: &StrategyConfig,
    ) -> Result<(Self, Option<daglo_callback::CallbackReceiver>), StrategyError> {
        match config {
            #[cfg(feature = "poll")]
            StrategyConfig::Polling(settings) => {
                let polling = settings.build(&client)?;
                Ok((Self::new(client, polling), None))
            }
            StrategyConfig::Callback(settings) => {
                let callbacks = settings.mount(&client)?;
                let receiver = callbacks.receiver();
                Ok((Self::new(client, callbacks), Some(receiver)))
            }
            #[cfg(feature = "poll")]
            StrategyConfig::Hybrid(settings) => {
                let polling = settings.polling.build(&client)?;
                let callbacks = settings.callback.mount(&client)?;
                let receiver = callbacks.receiver();
                let hybrid = crate::HybridDelivery::new(callbacks, polling).window(settings.window);
                Ok((Self::new(client, hybrid), Some(receiver)))
            }
        }
    }

    /// Hands the transcriber the callback receiver its strategy depends on: it then reports its
    /// address ([`receiver_addr`](Transcriber::receiver_addr)), stops it gracefully in
    /// [`shutdown`](Transcriber::shutdown), and stops it when the last clone is dropped.
    #[cfg(feature = "callback")]
    #[cfg_attr(docsrs, doc(cfg(feature = "callback")))]
    #[must_use]
    pub fn owning_receiver(mut self, server: daglo_callback::CallbackServer) -> Self {
        self.receiver = Some(Arc::new(Receiver {
            addr: server.local_addr(),
            server: Mutex::new(Some(server)),
        }));
        self
    }

    /// Keeps a durable journal of every job it submits: the intent before the submit, the rid
    /// as soon as the answer arrives, the outcome at the end — so a crash at any point loses
    /// nothing ([`Journal::recover`] says what to resume and what is uncertain). The journal
    /// gets a digest of the options, never a token, a callback credential or a transcript.
    ///
    /// ```no_run
    /// # async fn run(client: daglo::Client) -> Result<(), Box<dyn std::error::Error>> {
    /// use std::sync::Arc;
    /// use daglo::journal::SqliteJournal;
    /// use daglo::journal::Journal;
    /// use daglo::{JobOptions, Transcriber};
    ///
    /// let journal = Arc::new(SqliteJournal::open("jobs.sqlite")?);
    /// let transcriber = Transcriber::polling(client).with_journal(journal.clone());
    /// // After a crash: resume what was submitted, report what may have been.
    /// let recovery = journal.recover().await?;
    /// for entry in &recovery.pending {
    ///     if let Some(pending) = transcriber.resume_entry(entry) {
    ///         let outcome = transcriber.wait(pending).await?; // finishes the entry
    ///     }
    /// }
    /// for entry in &recovery.uncertain {
    ///     eprintln!("{} may have been submitted (no rid recorded): check before resubmitting", entry.intent.input);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_journal(mut self, journal: Arc<dyn Journal>) -> Self {
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

    /// Stops the callback receiver it owns, if any, letting in-flight callbacks finish. Waits
    /// still running on any clone then end when their registrations expire; call it after them.
    pub async fn shutdown(&self) {
        let Some(receiver) = &self.receiver else { return };
        let server = receiver.server.lock().unwrap_or_else(|p| p.into_inner()).take();
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
                    .intend(Intent::new(input, options_digest(options), self.strategy()))
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
    /// [`DeliveryError::NotPrepared`].
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
        let outcome = ticket.wait(rid.clone(), observer).await.map_err(wait_error)?;
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

/// A digest of the caller's options, so a journal can tell two submits of one input apart
/// without keeping the options (FNV-1a, 64 bits: a change detector, not a secret).
fn options_digest(options: &JobOptions) -> String {
    let json = serde_json::to_vec(options).unwrap_or_default();
    let hash = json.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("fnv1a64:{hash:016x}")
}
