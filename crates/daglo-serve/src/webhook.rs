//! Signed webhooks to the application behind `daglo serve`, per the Standard Webhooks
//! specification: `webhook-id` (stable per event, so receivers dedupe), `webhook-timestamp`,
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` for every active
//! secret. Each delivery attempt is written to the job's log before the next one.

use daglo_core::internal::lock;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use futures_util::StreamExt as _;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use daglo::client::Backoff;
use daglo::journal::JobLog;
use daglo::{JobEvent, JobId, JobSnapshot, JobState, Transcriber};

use crate::auth::digest;
use crate::error::Error;

/// The job log list that holds a job's delivery attempts.
pub(crate) const DELIVERIES: &str = "webhooks";
/// The set of jobs whose final event is not yet delivered or given up on.
pub(crate) const PENDING: &str = "webhooks-pending";
/// Attempts kept per job.
const KEEP: usize = 200;

/// `job.finished`: the job ended (finished, failed, gave up, not submitted); `data.state` says how.
pub const JOB_FINISHED: &str = "job.finished";
/// `job.progress`: the job's status or percent moved (sent once each, not retried).
pub const JOB_PROGRESS: &str = "job.progress";

/// A webhook signing secret: `whsec_` and the base64 of at least 16 random bytes (the prefix
/// may be left out). Never shown in `Debug` or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Arc<Vec<u8>>);

impl WebhookSecret {
    /// Reads a secret as the Standard Webhooks libraries write it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let encoded = text.trim().strip_prefix("whsec_").unwrap_or(text.trim());
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|e| format!("not `whsec_` and base64: {e}"))?;
        if bytes.len() < 16 {
            return Err(format!(
                "{} bytes after decoding; use at least 16 random bytes",
                bytes.len()
            ));
        }
        Ok(Self(Arc::new(bytes)))
    }

    /// A fresh random secret, as `whsec_…` text.
    pub fn generate() -> String {
        let mut bytes = [0_u8; 32];
        SystemRandom::new().fill(&mut bytes).unwrap_or_else(|_| {
            // The system's generator cannot fail on the platforms served; a job id's
            // randomness is the fallback.
            bytes.copy_from_slice(&digest(JobId::random().as_str().as_bytes()));
        });
        format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )
    }

    /// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
    fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.0);
        let mut context = hmac::Context::with_key(&key);
        context.update(id.as_bytes());
        context.update(b".");
        context.update(timestamp.to_string().as_bytes());
        context.update(b".");
        context.update(body);
        let tag = context.sign();
        format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
        )
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

impl<'de> Deserialize<'de> for WebhookSecret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The `[webhook]` table of `daglo.toml`: where job events go, signed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct WebhookConfig {
    /// The application's endpoint (`https://…`; `http://` for loopback and tests).
    pub url: String,
    /// The signing secret (`whsec_…`).
    #[serde(default)]
    pub secret: Option<WebhookSecret>,
    /// Several secrets, during a rotation: every message is signed with each.
    #[serde(default)]
    pub secrets: Vec<WebhookSecret>,
    /// Which events: `job.finished` (the default) and `job.progress`.
    #[serde(default = "default_events")]
    pub events: Vec<String>,
    /// Whether `job.finished` carries the transcript text (default `false`).
    #[serde(default)]
    pub include_transcript: bool,
    /// How long a `job.finished` delivery is retried before it is marked failed (default one
    /// day). `POST /v1/jobs/{id}/webhook/retry` starts again.
    #[serde(default = "default_retry_for")]
    pub retry_for_secs: u64,
    /// The first retry's wait cap, in milliseconds (default 5 s); each cap doubles, up to an
    /// hour, and each wait is drawn at random below its cap (full jitter).
    #[serde(default = "default_first_retry")]
    pub first_retry_ms: u64,
    /// How long one attempt may take, seconds (default 15).
    #[serde(default = "default_attempt_timeout")]
    pub timeout_secs: u64,
}

fn default_events() -> Vec<String> {
    vec![JOB_FINISHED.to_owned()]
}
fn default_retry_for() -> u64 {
    24 * 3600
}
fn default_first_retry() -> u64 {
    5000
}
fn default_attempt_timeout() -> u64 {
    15
}

impl WebhookConfig {
    /// Checks the table: an http(s) URL, at least one secret, known events.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        // The URL itself is checked with the others (`Config::validate`).
        if self.secret.is_none() && self.secrets.is_empty() {
            return Err(Error::config(
                "webhook.secret",
                "give `secret` (or `secrets`, to rotate): webhooks are always signed",
            ));
        }
        for event in &self.events {
            if event != JOB_FINISHED && event != JOB_PROGRESS {
                return Err(Error::config(
                    "webhook.events",
                    format!(
                        "`{}` is not one of {JOB_FINISHED}, {JOB_PROGRESS}",
                        event.escape_debug()
                    ),
                ));
            }
        }
        if self.timeout_secs == 0 {
            return Err(Error::config("webhook.timeout_secs", "must be at least 1"));
        }
        Ok(())
    }

    fn secrets(&self) -> Vec<WebhookSecret> {
        self.secret.iter().chain(&self.secrets).cloned().collect()
    }
}

/// One attempt to deliver one event, as the job's log keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Attempt {
    /// The event's `webhook-id`.
    pub(crate) event_id: String,
    /// `job.finished` or `job.progress`.
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// 1, 2, … for this event.
    pub(crate) attempt: u32,
    /// When it was made (RFC 3339).
    pub(crate) at: String,
    /// The answer's HTTP status, when there was one.
    pub(crate) code: Option<u16>,
    /// Why it failed, when it did (never the answer's body).
    pub(crate) error: Option<String>,
    /// How long it took, milliseconds.
    pub(crate) duration_ms: u64,
    /// `delivered`, `retrying` (another attempt follows), `failed` (no more).
    pub(crate) result: String,
}

/// One event's deliveries, as `GET /v1/jobs/{id}/webhooks` lists them.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Delivery {
    event_id: String,
    #[serde(rename = "type")]
    kind: String,
    /// `delivered`, `retrying` or `failed`.
    state: String,
    attempts: Vec<Attempt>,
}

/// Folds attempts into deliveries, one per event, in the order first tried.
pub(crate) fn deliveries(attempts: Vec<Attempt>) -> Vec<Delivery> {
    let mut out: Vec<Delivery> = Vec::new();
    for attempt in attempts {
        match out.iter_mut().find(|d| d.event_id == attempt.event_id) {
            Some(delivery) => {
                delivery.state.clone_from(&attempt.result);
                delivery.attempts.push(attempt);
            }
            None => out.push(Delivery {
                event_id: attempt.event_id.clone(),
                kind: attempt.kind.clone(),
                state: attempt.result.clone(),
                attempts: vec![attempt],
            }),
        }
    }
    out
}

/// Every tenant's sender: a job's events go to its tenant's webhook (`[tenants.webhook]`, or
/// the top-level `[webhook]`). The jobs with a delivery outstanding are one set for all.
#[derive(Clone)]
pub(crate) struct WebhookSet {
    by_tenant: Arc<std::collections::HashMap<String, Webhooks>>,
    transcriber: Transcriber,
}

impl std::fmt::Debug for WebhookSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSet")
            .field("tenants", &self.by_tenant.len())
            .finish_non_exhaustive()
    }
}

impl WebhookSet {
    /// The senders of `config`'s tenants that have a webhook; `None` when none has.
    pub(crate) fn new(
        config: &crate::Config,
        log: &Arc<dyn JobLog>,
        transcriber: &Transcriber,
    ) -> Result<Option<Self>, Error> {
        let mut by_tenant = std::collections::HashMap::new();
        for tenant in config.all_tenants() {
            if let Some(webhook) = tenant.webhook {
                by_tenant.insert(
                    tenant.name,
                    Webhooks::new(webhook, log.clone(), transcriber.clone())?,
                );
            }
        }
        Ok((!by_tenant.is_empty()).then(|| Self {
            by_tenant: Arc::new(by_tenant),
            transcriber: transcriber.clone(),
        }))
    }

    /// The sender of `job`'s tenant, if it has a webhook.
    pub(crate) fn of(&self, job: &JobSnapshot) -> Option<&Webhooks> {
        self.by_tenant.get(crate::tenants::tenant_of(job))
    }

    /// Follows `job`'s events to its tenant's webhook (see [`Webhooks::follow`]).
    pub(crate) async fn follow(&self, job: &JobSnapshot) {
        if let Some(webhooks) = self.of(job) {
            webhooks.follow(job.id.clone()).await;
        }
    }

    /// Follows the job `id` (looked up for its tenant).
    pub(crate) async fn follow_id(&self, id: &JobId) {
        match self.transcriber.job(id).await {
            Ok(Some(job)) => self.follow(&job).await,
            Ok(None) => {
                // Deleted: nothing more to tell anyone.
                if let Some(any) = self.by_tenant.values().next() {
                    let _ = any.inner.log.mark(PENDING, id, false).await;
                }
            }
            Err(e) => {
                tracing::warn!(job = %id, error = %daglo_core::error_chain(&e), "could not read a job with a webhook pending");
            }
        }
    }

    /// Takes up every job marked pending (see [`Webhooks::resume`]).
    pub(crate) async fn resume(&self) {
        for job in self.pending().await {
            self.follow_id(&job).await;
        }
    }

    /// The jobs whose final event is not yet delivered or given up on.
    pub(crate) async fn pending(&self) -> Vec<JobId> {
        match self.by_tenant.values().next() {
            Some(any) => any.pending().await,
            None => Vec::new(),
        }
    }

    /// Whether this process follows `job`'s deliveries now.
    pub(crate) fn follows(&self, job: &JobId) -> bool {
        self.by_tenant.values().any(|w| w.follows(job))
    }
}

/// The sender: follows jobs and delivers their events.
#[derive(Clone)]
pub(crate) struct Webhooks {
    inner: Arc<Inner>,
}

struct Inner {
    config: WebhookConfig,
    secrets: Vec<WebhookSecret>,
    progress: bool,
    http: reqwest::Client,
    log: Arc<dyn JobLog>,
    transcriber: Transcriber,
    /// Jobs followed by this process now.
    following: Mutex<HashSet<JobId>>,
    /// Jobs with a retry waiting or under way (one at a time per job).
    retrying: Mutex<HashSet<JobId>>,
    /// Told whenever a job is let go, for a retry waiting its turn.
    released: tokio::sync::Notify,
    /// A random source for the jitter.
    jitter: Mutex<daglo_core::SplitMix64>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("url", &"<configured>")
            .finish_non_exhaustive()
    }
}

impl Webhooks {
    pub(crate) fn new(
        config: WebhookConfig,
        log: Arc<dyn JobLog>,
        transcriber: Transcriber,
    ) -> Result<Self, Error> {
        config.validate()?;
        daglo::client::install_crypto_provider();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(config.timeout_secs))
            .user_agent(concat!("daglo-serve/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::start("the webhook client", e))?;
        let seed = u64::from_le_bytes(
            digest(JobId::random().as_str().as_bytes())[..8]
                .try_into()
                .unwrap_or([7; 8]),
        );
        Ok(Self {
            inner: Arc::new(Inner {
                secrets: config.secrets(),
                progress: config.events.iter().any(|e| e == JOB_PROGRESS),
                config,
                http,
                log,
                transcriber,
                following: Mutex::default(),
                retrying: Mutex::default(),
                released: tokio::sync::Notify::new(),
                jitter: Mutex::new(daglo_core::SplitMix64::new(seed)),
            }),
        })
    }

    /// Follows `job` until its final event is delivered or given up on — once per process;
    /// the job is marked pending first, so a restart takes it up again.
    pub(crate) async fn follow(&self, job: JobId) {
        if !self.claim(&job) {
            return;
        }
        if let Err(e) = self.inner.log.mark(PENDING, &job, true).await {
            tracing::warn!(job = %job, error = %daglo_core::error_chain(&e), "could not mark a webhook pending; following it anyway");
        }
        let this = self.clone();
        tokio::spawn(async move {
            this.run(job.clone()).await;
            this.release(&job);
        });
    }

    /// The jobs whose final event is not yet delivered or given up on (every tenant's).
    pub(crate) async fn pending(&self) -> Vec<JobId> {
        match self.inner.log.marked(PENDING).await {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::warn!(error = %daglo_core::error_chain(&e), "could not read the pending webhooks");
                Vec::new()
            }
        }
    }

    /// Whether this process follows `job`'s deliveries now.
    pub(crate) fn follows(&self, job: &JobId) -> bool {
        lock(&self.inner.following).contains(job)
    }

    /// Delivers `job`'s final event again (`POST /v1/jobs/{id}/webhook/retry`) — now, or
    /// after the delivery under way ends; the job must have ended. Coalesced: while one retry
    /// of the job waits or runs, asking again adds none (`false`). Returns at once; the
    /// attempts go to the job's log.
    pub(crate) fn retry(&self, job: JobSnapshot) -> bool {
        if !lock(&self.inner.retrying).insert(job.id.clone()) {
            return false;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let id = job.id.clone();
            loop {
                let released = this.inner.released.notified();
                if this.claim(&id) {
                    break;
                }
                released.await;
            }
            let _ = this.inner.log.mark(PENDING, &id, true).await;
            this.finish(&job).await;
            lock(&this.inner.retrying).remove(&id);
            this.release(&id);
        });
        true
    }

    fn claim(&self, job: &JobId) -> bool {
        lock(&self.inner.following).insert(job.clone())
    }

    fn release(&self, job: &JobId) {
        lock(&self.inner.following).remove(job);
        self.inner.released.notify_waiters();
    }

    pub(crate) async fn attempts(&self, job: &JobId) -> Result<Vec<Attempt>, daglo_core::JournalError> {
        Ok(self
            .inner
            .log
            .read(DELIVERIES, job)
            .await?
            .iter()
            .filter_map(|record| serde_json::from_str(record).ok())
            .collect())
    }

    async fn run(&self, job: JobId) {
        let mut events = self.inner.transcriber.events(&job);
        while let Some(event) = events.next().await {
            match event {
                JobEvent::Progress { .. } if self.inner.progress => {
                    // A terminal status is the end's to tell (`job.finished`), not progress's.
                    if let Ok(Some(snapshot)) = self.inner.transcriber.job(&job).await
                        && !snapshot
                            .status
                            .as_ref()
                            .is_some_and(daglo::models::Status::is_terminal)
                    {
                        let n = snapshot.progress.unwrap_or(0);
                        let status = snapshot.status.as_ref().map_or("", |s| s.as_str()).to_owned();
                        let id = format!("msg_{}_progress_{}_{n}", job, sanitize(&status));
                        let body = Self::payload(JOB_PROGRESS, &snapshot, None);
                        // Progress goes once: the next progress (or the end) supersedes it.
                        self.attempt(&job, &id, JOB_PROGRESS, 1, &body, true).await;
                    }
                }
                JobEvent::Ended { .. } => {
                    match self.inner.transcriber.job(&job).await {
                        Ok(Some(snapshot)) => self.finish(&snapshot).await,
                        _ => tracing::warn!(job = %job, "a webhook's job vanished before its end was sent"),
                    }
                    return;
                }
                _ => {}
            }
        }
    }

    /// Delivers `job.finished`, retried with backoff and jitter for the configured time.
    async fn finish(&self, job: &JobSnapshot) {
        if job.state == JobState::Uncertain {
            // Not an end: the submit's fate is unknown; nothing to tell yet.
            return;
        }
        let transcript = if self.inner.config.include_transcript {
            match self.inner.transcriber.result(&job.id).await {
                Ok(Some(outcome)) => outcome.transcript(),
                _ => None,
            }
        } else {
            None
        };
        let id = format!("msg_{}_finished", job.id);
        let body = Self::payload(JOB_FINISHED, job, transcript);
        let backoff = Backoff::new(
            Duration::from_millis(self.inner.config.first_retry_ms.max(1)),
            2.0,
            Duration::from_secs(3600),
        );
        let until = Instant::now() + Duration::from_secs(self.inner.config.retry_for_secs);
        let mut number = self
            .attempts(&job.id)
            .await
            .map(|a| a.iter().filter(|a| a.event_id == id).count() as u32)
            .unwrap_or(0);
        loop {
            number += 1;
            let wait = {
                let unit = lock(&self.inner.jitter).unit();
                backoff.delay(number, unit)
            };
            let last = Instant::now() + wait >= until;
            if self
                .attempt(&job.id, &id, JOB_FINISHED, number, &body, last)
                .await
            {
                break;
            }
            if last {
                tracing::warn!(job = %job.id, attempts = number, "webhook delivery failed; given up");
                break;
            }
            tokio::time::sleep(wait).await;
        }
        if job.state == JobState::GaveUp {
            // Given up on here, yet still running at Daglo (the journal still lists it): it
            // stays pending, so the restart that takes the job up again announces its real end.
            return;
        }
        if let Err(e) = self.inner.log.mark(PENDING, &job.id, false).await {
            tracing::warn!(job = %job.id, error = %daglo_core::error_chain(&e), "could not clear a pending webhook");
        }
    }

    /// The event's JSON: `type`, `timestamp`, `data` with the job's id, key, labels, state,
    /// rid, status, progress, outcome and times — never its input (a URL may carry a
    /// signature), the Daglo token or a credential — and the transcript when configured.
    fn payload(kind: &str, job: &JobSnapshot, transcript: Option<String>) -> Vec<u8> {
        let shown = crate::tenants::present(job);
        let mut data = serde_json::json!({
            "id": job.id,
            "tenant": shown["tenant"],
            "key": shown["key"],
            "labels": shown["labels"],
            "state": job.state,
            "rid": job.rid,
            "status": job.status,
            "progress": job.progress,
            "outcome": job.outcome,
            "reason": job.reason,
            "created_at": daglo_core::rfc3339::format(job.created_at),
            "updated_at": daglo_core::rfc3339::format(job.updated_at),
        });
        if let Some(text) = transcript {
            data["transcript"] = serde_json::Value::String(text);
        }
        let event = serde_json::json!({
            "type": kind,
            "timestamp": daglo_core::rfc3339::format(job.updated_at),
            "data": data,
        });
        serde_json::to_vec(&event).unwrap_or_default()
    }

    /// One attempt, written to the job's log; whether it was delivered (a 2xx answer).
    async fn attempt(&self, job: &JobId, id: &str, kind: &str, number: u32, body: &[u8], last: bool) -> bool {
        let timestamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let signatures: Vec<String> = self
            .inner
            .secrets
            .iter()
            .map(|secret| secret.sign(id, timestamp, body))
            .collect();
        let started = Instant::now();
        let sent = self
            .inner
            .http
            .post(&self.inner.config.url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signatures.join(" "))
            .body(body.to_vec())
            .send()
            .await;
        let (code, error) = match sent {
            Ok(answer) if answer.status().is_success() => (Some(answer.status().as_u16()), None),
            Ok(answer) => (
                Some(answer.status().as_u16()),
                Some(format!("answered {}", answer.status())),
            ),
            Err(e) => (None, Some(daglo_core::excerpt(&daglo_core::error_chain(&e), 200))),
        };
        let delivered = error.is_none();
        crate::metrics::webhook(kind, delivered);
        let record = Attempt {
            event_id: id.to_owned(),
            kind: kind.to_owned(),
            attempt: number,
            at: daglo_core::rfc3339::format(SystemTime::now()),
            code,
            error,
            duration_ms: started.elapsed().as_millis() as u64,
            result: if delivered {
                "delivered"
            } else if last {
                "failed"
            } else {
                "retrying"
            }
            .to_owned(),
        };
        if let Ok(text) = serde_json::to_string(&record)
            && let Err(e) = self.inner.log.append(DELIVERIES, job, &text, KEEP).await
        {
            tracing::warn!(job = %job, error = %daglo_core::error_chain(&e), "could not write a webhook attempt down");
        }
        delivered
    }
}

/// A status as an id part: letters, digits and `-` only.
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_as_the_standard_webhooks_reference_vector_says() {
        // The specification's reference libraries' test vector.
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            secret.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        // The prefix is optional; the text never shows.
        let bare = WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(bare.sign("a", 1, b"b"), secret.sign("a", 1, b"b"));
        assert_eq!(format!("{secret:?}"), "WebhookSecret(<redacted>)");
    }

    #[test]
    fn bad_secrets_and_tables_are_refused_naming_the_key() {
        assert!(WebhookSecret::parse("whsec_not base64!").is_err());
        assert!(
            WebhookSecret::parse("whsec_c2hvcnQ=")
                .unwrap_err()
                .contains("at least 16")
        );
        let generated = WebhookSecret::generate();
        assert!(generated.starts_with("whsec_"));
        assert!(WebhookSecret::parse(&generated).is_ok());
        let table = |extra: &str| -> Result<WebhookConfig, String> {
            toml::from_str::<WebhookConfig>(&format!("url = \"https://app.example/hooks\"\n{extra}"))
                .map_err(|e| e.to_string())
        };
        let key_of = |config: WebhookConfig| match config.validate() {
            Err(Error::Config { key, .. }) => key,
            other => panic!("{other:?}"),
        };
        assert_eq!(key_of(table("").unwrap()), "webhook.secret");
        assert_eq!(
            key_of(table(&format!("secret = \"{generated}\"\nevents = [\"job.done\"]")).unwrap()),
            "webhook.events"
        );
        let config = table(&format!("secret = \"{generated}\"")).unwrap();
        assert!(config.validate().is_ok());
        assert_eq!(config.events, [JOB_FINISHED]);
        assert!(!config.include_transcript);
        assert!(
            !format!("{config:?}").contains(&generated[6..]),
            "no secret in Debug"
        );
        assert!(
            table("secret = \"whsec_c2hvcnQ=\"").is_err(),
            "a short secret is refused as read"
        );
        assert!(
            table("sekret = 1").unwrap_err().contains("sekret"),
            "unknown keys named"
        );
    }

    #[test]
    fn attempts_fold_into_one_delivery_per_event() {
        let attempt = |id: &str, n: u32, result: &str| Attempt {
            event_id: id.to_owned(),
            kind: JOB_FINISHED.to_owned(),
            attempt: n,
            at: String::new(),
            code: None,
            error: None,
            duration_ms: 0,
            result: result.to_owned(),
        };
        let folded = deliveries(vec![
            attempt("a", 1, "retrying"),
            attempt("b", 1, "delivered"),
            attempt("a", 2, "delivered"),
        ]);
        assert_eq!(folded.len(), 2);
        assert_eq!(folded[0].event_id, "a");
        assert_eq!(folded[0].state, "delivered");
        assert_eq!(folded[0].attempts.len(), 2);
    }
}
