//! `CallbackDelivery`: registers jobs before their submit and waits for their callbacks.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use daglo_client::Client;
use daglo_core::{
    Callback, DeliveryError, GaveUpReason, JobOptions, Outcome, ProgressEvent, ProgressObserver,
    ResultDelivery, Rid, Status, Ticket,
};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::AbortHandle;
use tracing::{info, warn};

use crate::auth;
use crate::config::{CallbackConfig, FinalCallbacks};
use crate::confirm::confirm;
use crate::error::CallbackError;
use crate::keys::{JobKey, KeyMint};
use crate::receiver::{CallbackReceiver, Checks};
use crate::registry::{InMemoryRegistry, JobRegistry, Registered, RegistryError};
use crate::server::CallbackServer;
use crate::state::JobView;

/// Gets results by receiving Daglo's callbacks.
///
/// [`prepare`](ResultDelivery::prepare) mints the job's key and credential, registers the job
/// and sets `callback {url, headers}` — all before the submit, so a callback that beats the
/// submit answer is kept. Its ticket's [`wait`](daglo_core::Ticket::wait) follows the job's state until its first
/// terminal body, or gives up after the job's time to live with
/// [`Outcome::GaveUp`] (the callback never came: resume by polling the rid).
///
/// Cheap to clone; clones share the registry. Serve the receiver with
/// [`serve`](CallbackDelivery::serve) or mount [`receiver`](CallbackDelivery::receiver) in your app.
#[derive(Clone)]
pub struct CallbackDelivery {
    inner: Arc<Inner>,
}

struct Inner {
    config: CallbackConfig,
    /// Confirms final callbacks with the service.
    client: Client,
    mint: Arc<KeyMint>,
    registry: Arc<dyn JobRegistry>,
    /// Shared by every receiver of this delivery: the bodies' memory budget, in KiB.
    body_memory: Arc<Semaphore>,
    turns: Arc<crate::receiver::Turns>,
    sweeper: AbortHandle,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.sweeper.abort();
    }
}

impl fmt::Debug for CallbackDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackDelivery")
            .field("config", &self.inner.config)
            .field("registry", &self.inner.registry)
            .finish()
    }
}

/// What `prepare` registered; dropping it unregisters the job.
struct Registration {
    key: JobKey,
    expires_at: Instant,
    registry: Arc<dyn JobRegistry>,
    released: bool,
}

impl Registration {
    /// Unregisters the job now (a finished wait), rather than from `Drop` (a cancelled one).
    async fn release(mut self) {
        if let Err(error) = self.registry.remove(&self.key).await {
            // The outcome is already delivered; the registration's expiry reclaims it.
            warn!(%error, "could not unregister a finished job; it expires on its own");
        }
        self.released = true;
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if !self.released {
            // Synchronous for the in-memory registry (the slot is free when `drop` returns); a
            // remote registry schedules its removal, and expiry covers the rest.
            self.registry.clone().forget(self.key.clone());
        }
    }
}

/// The callback strategy's phase two: the job's registration, and the delivery that follows it.
/// Dropping it unregisters the job.
struct CallbackTicket {
    delivery: CallbackDelivery,
    registration: Registration,
}

impl fmt::Debug for CallbackTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackTicket")
            .field("job_key", &self.registration.key)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Ticket for CallbackTicket {
    fn job_key(&self) -> Option<&str> {
        Some(self.registration.key.as_str())
    }

    async fn claimed_rid(&mut self) -> Option<Rid> {
        let registry = &self.delivery.inner.registry;
        let mut view = registry.subscribe(&self.registration.key).await.ok()??;
        let deadline = tokio::time::Instant::from_std(self.registration.expires_at);
        loop {
            {
                let now = view.borrow_and_update();
                if let Some(rid) = now.rid.clone().or_else(|| now.claimed_rid.clone()) {
                    return Some(rid);
                }
            }
            match tokio::time::timeout_at(deadline, view.changed()).await {
                Ok(Ok(())) => {}
                _ => return None,
            }
        }
    }

    async fn wait(
        self: Box<Self>,
        rid: Rid,
        observer: &dyn ProgressObserver,
    ) -> Result<Outcome, DeliveryError> {
        let Self {
            delivery,
            registration,
        } = *self;
        let outcome = delivery.follow(rid, &registration, observer).await;
        registration.release().await;
        outcome
    }
}

impl CallbackDelivery {
    /// A delivery with the in-memory registry. `client` confirms final callbacks with the
    /// service (see [`FinalCallbacks`]).
    ///
    /// # Panics
    /// Outside a Tokio runtime, since it starts the expiry task.
    pub fn new(client: Client, config: CallbackConfig) -> Result<Self, CallbackError> {
        Self::with_registry(client, config, Arc::new(InMemoryRegistry::default()))
    }

    /// A delivery over any [`JobRegistry`].
    ///
    /// # Panics
    /// Outside a Tokio runtime, since it starts the expiry task.
    pub fn with_registry(
        client: Client,
        config: CallbackConfig,
        registry: Arc<dyn JobRegistry>,
    ) -> Result<Self, CallbackError> {
        config.validate()?;
        let mint = Arc::new(KeyMint::new(
            config.key_secret.as_ref().map(|s| s.expose().as_bytes()),
        )?);
        let sweep_every = (config.job_ttl / 4).clamp(
            std::time::Duration::from_millis(10),
            std::time::Duration::from_secs(60),
        );
        let swept = registry.clone();
        let sweeper = tokio::spawn(async move {
            loop {
                tokio::time::sleep(sweep_every).await;
                let expired = swept.expire(tokio::time::Instant::now().into_std()).await;
                if expired > 0 {
                    info!(expired, "expired callback registrations");
                }
            }
        })
        .abort_handle();
        let body_memory = Arc::new(Semaphore::new(config.body_memory().div_ceil(1024)));
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                client,
                mint,
                registry,
                body_memory,
                turns: Arc::default(),
                sweeper,
            }),
        })
    }

    /// The receiver, to mount in an existing axum or hyper app.
    pub fn receiver(&self) -> CallbackReceiver {
        let config = &self.inner.config;
        CallbackReceiver::new(Checks {
            auth: config.auth.clone(),
            mint: self.inner.mint.clone(),
            registry: self.inner.registry.clone(),
            path_prefix: config.path_prefix(),
            max_body_bytes: config.max_body_bytes,
            body_timeout: config.body_timeout,
            body_memory: self.inner.body_memory.clone(),
            body_memory_kib: config.body_memory().div_ceil(1024),
            turns: self.inner.turns.clone(),
            decode_results: config.finals == FinalCallbacks::TrustBody,
            inbox: None,
        })
    }

    /// Runs the receiver on a listener the caller bound (its address need not be the public URL).
    pub fn serve(&self, listener: TcpListener) -> Result<CallbackServer, CallbackError> {
        CallbackServer::serve(listener, self.receiver(), self.inner.config.connection_limits())
            .map_err(CallbackError::Serve)
    }

    /// A delivery whose receiver listens on a free loopback port (`127.0.0.1:0`) and is called
    /// there directly, at `/daglo/<job key>`: for the emulator and tests on this machine, never
    /// for the real service (it cannot reach loopback). `configure` adjusts the configuration.
    pub async fn loopback(
        client: Client,
        configure: impl FnOnce(CallbackConfig) -> CallbackConfig,
    ) -> Result<(Self, CallbackServer), CallbackError> {
        let listener = crate::server::bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(CallbackError::Serve)?;
        let address = listener.local_addr().map_err(CallbackError::Serve)?;
        let config = configure(CallbackConfig::new(&format!("http://{address}/daglo"))?);
        let delivery = Self::new(client, config)?;
        let server = delivery.serve(listener)?;
        Ok((delivery, server))
    }

    /// How many jobs are registered now.
    pub async fn registered(&self) -> Result<usize, RegistryError> {
        self.inner.registry.count().await
    }

    /// A ticket for a job this delivery's registry still holds, by its job key
    /// ([`Ticket::job_key`]); [`wait`](Ticket::wait) on it with the job's rid. For a process that
    /// restarted (or a replica that took over) while the job ran. With a shared registry (`daglo-redis`) the registration outlives the
    /// process that made it, so a callback that arrived meanwhile is found; if the job is no
    /// longer registered (it expired, or another waiter took its outcome), the wait ends with
    /// [`Outcome::GaveUp`]: poll the rid instead.
    ///
    /// The key must be one minted with this delivery's key secret (`CallbackConfig::key_secret`):
    /// anything else is [`DeliveryError::Prepare`], naming the key's problem.
    pub fn resume_job(&self, job_key: &str) -> Result<Box<dyn Ticket>, DeliveryError> {
        let Some(key) = self.inner.mint.recognise(job_key) else {
            return Err(DeliveryError::Prepare {
                reason: "the job key was not minted with this delivery's key secret".to_owned(),
            });
        };
        let expires_at = tokio::time::Instant::now().into_std() + self.inner.config.job_ttl;
        Ok(Box::new(CallbackTicket {
            delivery: self.clone(),
            registration: Registration {
                key,
                expires_at,
                registry: self.inner.registry.clone(),
                released: false,
            },
        }))
    }

    /// Registers `job_key` again unless the registry holds it: a per-job token is then checked
    /// by the binding the key carries (no digest needed), a shared credential as always.
    async fn reregister(&self, job_key: &str) -> Result<(), String> {
        let Some(key) = self.inner.mint.recognise(job_key) else {
            return Err("the job key was not minted with this delivery's key secret".to_owned());
        };
        let registry = &self.inner.registry;
        if registry.lookup(&key).await.map_err(|e| e.to_string())?.is_some() {
            return Ok(());
        }
        let expires_at = tokio::time::Instant::now().into_std() + self.inner.config.job_ttl;
        registry
            .register(key, Registered::new(None), expires_at)
            .await
            .map_err(|e| e.to_string())
    }

    fn callback_url(&self, key: &JobKey) -> String {
        let mut url = self.inner.config.public_url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push(key.as_str());
        }
        url.into()
    }
}

#[async_trait]
impl ResultDelivery for CallbackDelivery {
    fn name(&self) -> &'static str {
        "callback"
    }

    async fn prepare(&self, options: &mut JobOptions) -> Result<Box<dyn Ticket>, DeliveryError> {
        let prepare_error = |e: CallbackError| DeliveryError::Prepare {
            reason: e.to_string(),
        };
        let (key, minted) = auth::mint(&self.inner.config.auth, &self.inner.mint).map_err(prepare_error)?;
        // Tokio's clock, so a paused test clock drives expiry too.
        let expires_at = tokio::time::Instant::now().into_std() + self.inner.config.job_ttl;
        self.inner
            .registry
            .register(key.clone(), Registered::new(minted.digest), expires_at)
            .await
            .map_err(|e| DeliveryError::Prepare {
                reason: e.to_string(),
            })?;
        let (name, value) = minted.header;
        options.callback = Some(Callback::new(self.callback_url(&key)).header(name, value.0));
        Ok(Box::new(CallbackTicket {
            delivery: self.clone(),
            registration: Registration {
                key,
                expires_at,
                registry: self.inner.registry.clone(),
                released: false,
            },
        }))
    }

    /// A callback alone cannot wait for a job it did not register (its callback URL and
    /// credential were fixed at submit): resume such jobs by polling, or with the hybrid strategy.
    fn resume(&self, rid: &Rid) -> Result<Box<dyn Ticket>, DeliveryError> {
        Err(DeliveryError::NotPrepared {
            rid: rid.clone(),
            strategy: "callback",
        })
    }

    /// Registers the job's key again (a restarted process: the key must be one minted with
    /// this delivery's key secret) so its later callbacks are accepted, and follows it. A job
    /// still registered (a shared registry) keeps what its registration holds.
    async fn resume_registered(&self, _rid: &Rid, job_key: &str) -> Result<Box<dyn Ticket>, DeliveryError> {
        self.reattach(job_key).await
    }

    async fn reattach(&self, job_key: &str) -> Result<Box<dyn Ticket>, DeliveryError> {
        self.reregister(job_key)
            .await
            .map_err(|reason| DeliveryError::Prepare { reason })?;
        self.resume_job(job_key)
    }
}

impl CallbackDelivery {
    /// Follows a registered job's state until its first terminal body — confirmed with the
    /// service unless bodies are trusted — or its time to live.
    async fn follow(
        &self,
        rid: Rid,
        registration: &Registration,
        observer: &dyn ProgressObserver,
    ) -> Result<Outcome, DeliveryError> {
        let ttl = self.inner.config.job_ttl;
        let gave_up = |last_status: Option<Status>| Outcome::GaveUp {
            rid: rid.clone(),
            last_status,
            reason: GaveUpReason::CallbackTtlExpired(ttl),
        };
        let registry = &self.inner.registry;
        let unavailable = |e: RegistryError| DeliveryError::Other {
            rid: Some(rid.clone()),
            source: Box::new(e),
        };
        let deadline = tokio::time::Instant::from_std(registration.expires_at);
        // A shared registry (Redis) may fail for a moment: ask again with backoff rather than
        // drop the wait, whose job runs on.
        match retrying(deadline, || registry.set_rid(&registration.key, rid.clone()))
            .await
            .map_err(unavailable)?
        {
            Some(Err(claimed)) => {
                warn!(%rid, claimed = %daglo_core::excerpt(claimed.as_str(), 64), "callbacks before the submit answer named another rid; they were set aside")
            }
            None => return Ok(gave_up(None)),
            Some(Ok(())) => {}
        }
        let Some(mut state) = retrying(deadline, || registry.subscribe(&registration.key))
            .await
            .map_err(unavailable)?
        else {
            return Ok(gave_up(None));
        };
        let confirming = self.inner.config.finals == FinalCallbacks::Confirm;
        let mut shown: (Option<Status>, Option<u32>) = (None, None);
        let show = |observer: &dyn ProgressObserver, status: Status, percent: Option<u32>| {
            observer.on_event(&ProgressEvent::Progress {
                rid: rid.clone(),
                status,
                percent,
            });
        };
        loop {
            let view: JobView = state.borrow_and_update().clone();
            // Every change of status or percent, then the outcome. A terminal status is shown
            // here only when the body is trusted; a confirmed one is shown as the service says.
            if let Some(status) = view.status.clone() {
                let terminal_unconfirmed = confirming && status.is_terminal();
                if (Some(status.clone()), view.percent) != shown && !terminal_unconfirmed {
                    shown = (Some(status.clone()), view.percent);
                    show(observer, status, view.percent);
                }
            }
            if let Some(body) = view.final_body {
                let arrived = std::time::Instant::now();
                // A trusted final is taken as sent — unless it carries no results to take (the
                // receiver could not read them, or the service left them out): then it too is
                // confirmed with the service rather than read as an empty result.
                let readable = !(body.status.is_success() && body.stt_results.is_none());
                if !confirming && readable {
                    let outcome = Outcome::from_terminal_body(rid.clone(), body.as_ref().clone());
                    daglo_core::telemetry::callback_to_outcome(arrived.elapsed().as_secs_f64());
                    return Ok(outcome.unwrap_or_else(|| gave_up(view.status)));
                }
                let confirmed = tracing::Instrument::instrument(
                    confirm(&self.inner.client, &rid, deadline),
                    tracing::info_span!(
                        "daglo.confirm",
                        status = daglo_core::excerpt(body.status.as_str(), 32).as_str()
                    ),
                )
                .await?;
                daglo_core::telemetry::confirmation(match &confirmed {
                    None => "still_running",
                    Some(Outcome::Failed { status, .. }) if *status == body.status => "agreed",
                    Some(Outcome::Transcript { .. } | Outcome::Empty { .. }) if body.status.is_success() => {
                        "agreed"
                    }
                    Some(_) => "differed",
                });
                if confirmed.is_some() {
                    daglo_core::telemetry::callback_to_outcome(arrived.elapsed().as_secs_f64());
                }
                return match confirmed {
                    Some(outcome) => {
                        let (status, percent) = match &outcome {
                            Outcome::Failed { status, .. } => (status.clone(), view.percent),
                            _ => (Status::Transcribed, Some(100)),
                        };
                        show(observer, status, percent);
                        Ok(outcome)
                    }
                    None => {
                        info!(%rid, "the service did not confirm the final callback within the job's time to live");
                        Ok(gave_up(shown.0))
                    }
                };
            }
            tokio::select! {
                changed = state.changed() => {
                    if changed.is_err() {
                        // Removed or expired under us.
                        return Ok(gave_up(shown.0));
                    }
                }
                () = tokio::time::sleep_until(deadline) => {
                    info!(%rid, "no final callback within the job's time to live");
                    return Ok(gave_up(shown.0));
                }
            }
        }
    }
}

/// Attempts at a registry operation before a wait gives up on it (about half a minute of
/// backoff), or until `deadline`.
const REGISTRY_ATTEMPTS: u32 = 8;

/// Runs `operation` until it succeeds, retrying a [`RegistryError`] with
/// [`CONFIRM_BACKOFF`](crate::confirm::CONFIRM_BACKOFF)'s waits, at most
/// [`REGISTRY_ATTEMPTS`] times and not past `deadline`.
async fn retrying<T, F, Fut>(deadline: tokio::time::Instant, mut operation: F) -> Result<T, RegistryError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RegistryError>>,
{
    let mut attempt = 0;
    loop {
        match operation().await {
            Ok(value) => return Ok(value),
            Err(error) => {
                attempt += 1;
                let wait = crate::confirm::CONFIRM_BACKOFF.delay(attempt, crate::confirm::unit());
                if attempt >= REGISTRY_ATTEMPTS || tokio::time::Instant::now() + wait >= deadline {
                    return Err(error);
                }
                warn!(%error, attempt, "the callback registry failed; asking again");
                tokio::time::sleep(wait).await;
            }
        }
    }
}
