//! A batch's output directory as the transcriber's result store: each input's `.txt` (and
//! `.srt`, `.vtt`, `.json` when asked) written whole **before** the journal records the job finished,
//! and a fingerprint of the transcript recorded with it, so a rerun can tell the input's own
//! finished output from a missing, partial or foreign one.

use daglo::internal::lock;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use daglo::client::SrtAnswer;
use daglo::jobs::{ResultError, ResultStore};
use daglo::journal::Journal;
use daglo::{Client, JobId, JobSnapshot, Outcome, Rid};

use crate::failure::chain;
use crate::gate::Gate;
use crate::terminal::safe;

/// The label that records an input's output name (its files' stem) in the journal.
pub(crate) const OUTPUT_LABEL: &str = "output";

/// How the journal's result of a failed job begins: `no output (the job ended <status>:
/// <message>)`, written by [`OutputFiles::write`], read by [`failure_reason`].
const FAILED_PREFIX: &str = "no output (the job ended ";

/// Daglo's message about a failed job, from what the journal recorded as its result.
pub(crate) fn failure_reason(result: Option<&str>) -> Option<String> {
    let said = result?.strip_prefix(FAILED_PREFIX)?.strip_suffix(')')?;
    let (_, message) = said.split_once(": ")?;
    Some(message.to_owned())
}

/// The outputs written beside each transcript.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Formats {
    /// `.srt` subtitles.
    pub(crate) srt: bool,
    /// `.vtt` subtitles.
    pub(crate) vtt: bool,
    /// `.json`: the whole final result.
    pub(crate) json: bool,
}

/// The output directory of a batch.
#[derive(Debug)]
pub(crate) struct OutputFiles {
    dir: PathBuf,
    formats: Formats,
    /// How long subtitles answered `202` are asked for again.
    srt_within: Duration,
    client: Client,
    /// The batch's journal: a job it no longer holds (flushed, deleted) writes no output — its
    /// name may belong to another input by now — and is saved elsewhere instead.
    journal: Arc<dyn Journal>,
    /// Stopped when the journal turns out gone.
    gate: Arc<Gate>,
    /// Subtitles fetched (or given up on) per output name: a retried write does not fetch or
    /// wait for them again.
    subtitles: Mutex<HashMap<String, Result<String, String>>>,
}

impl OutputFiles {
    pub(crate) fn new(
        dir: &Path,
        formats: Formats,
        srt_within: Duration,
        client: Client,
        journal: Arc<dyn Journal>,
        gate: Arc<Gate>,
    ) -> Self {
        Self {
            dir: dir.to_owned(),
            formats,
            srt_within,
            client,
            journal,
            gate,
            subtitles: Mutex::default(),
        }
    }

    /// The file of output `stem` with `extension`.
    pub(crate) fn path(&self, stem: &str, extension: &str) -> PathBuf {
        self.dir.join(format!("{stem}.{extension}"))
    }

    /// Whether the outputs of `stem` are there and the transcript is the one recorded
    /// (`reference`, as [`write`](OutputFiles::write) returned it; `None` for an entry of an
    /// older version, which recorded none: then its presence is enough).
    pub(crate) fn are_done(&self, stem: &str, reference: Option<&str>) -> bool {
        let text = self.path(stem, "txt");
        let present = text.is_file()
            && (!self.formats.srt || self.path(stem, "srt").is_file())
            && (!self.formats.vtt || self.path(stem, "vtt").is_file())
            && (!self.formats.json || self.path(stem, "json").is_file());
        if !present {
            return false;
        }
        match reference.and_then(|r| r.split_once(' ')) {
            Some((file, fingerprint)) => {
                file == format!("{stem}.txt")
                    && std::fs::read(&text).is_ok_and(|bytes| self::fingerprint(&bytes) == fingerprint)
            }
            None => true,
        }
    }

    /// Writes the outputs of `outcome` under `stem` — the JSON and subtitles first, the
    /// transcript last, each whole (temporary file, sync, rename) — and returns the reference
    /// the journal records: `<stem>.txt fnv1a64:<hex>`. A failed job writes nothing.
    pub(crate) async fn write(&self, stem: &str, outcome: &Outcome) -> Result<String, ResultError> {
        let (text, body) = match outcome {
            Outcome::Transcript { body, .. } => (crate::single::transcript_text(body), Some(body.as_ref())),
            Outcome::Empty { .. } => (String::new(), None),
            // What the journal keeps of a failure: a rerun reports it without asking again.
            Outcome::Failed { status, message, .. } => {
                let said = message
                    .as_deref()
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default();
                return Ok(format!("{FAILED_PREFIX}{status}{said})"));
            }
            _ => return Err(ResultError::new("write the outputs", "the job has no result")),
        };
        if self.formats.json {
            let json = match body {
                Some(body) => serde_json::to_string_pretty(body)
                    .map_err(|e| ResultError::new("write the JSON result", e))?,
                None => "{\"status\": \"transcribed\", \"sttResults\": []}".to_owned(),
            };
            self.write_file(stem, "json", json.into_bytes()).await?;
        }
        if self.formats.vtt {
            let vtt = body.map_or_else(|| "WEBVTT\n\n".to_owned(), daglo::StatusBody::to_vtt);
            self.write_file(stem, "vtt", vtt.into_bytes()).await?;
        }
        if self.formats.srt {
            // With speakers, made from the word timings (Daglo's subtitles name none).
            let srt = match body {
                Some(body) if body.has_speakers() => body.to_srt(),
                _ => self.subtitles(stem, outcome.rid()).await?,
            };
            self.write_file(stem, "srt", srt.into_bytes()).await?;
        }
        let reference = format!("{stem}.txt {}", fingerprint(text.as_bytes()));
        self.write_file(stem, "txt", text.into_bytes()).await?;
        Ok(reference)
    }

    async fn write_file(&self, stem: &str, extension: &str, contents: Vec<u8>) -> Result<(), ResultError> {
        let path = self.path(stem, extension);
        tokio::task::spawn_blocking(move || {
            // An input from a subfolder has its outputs in the same subfolder of --out-dir.
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| ResultError::new(format!("cannot create {}", parent.display()), e))?;
            }
            crate::setup::write_whole(&path, &contents)
                .map_err(|e| ResultError::new(format!("cannot write {}", path.display()), e))
        })
        .await
        .map_err(|e| ResultError::new("the output writer stopped", e))?
    }

    /// The job's subtitles, asked for until ready (once per output name).
    async fn subtitles(&self, stem: &str, rid: &Rid) -> Result<String, ResultError> {
        let known = lock(&self.subtitles).get(stem).cloned();
        let fetched = match known {
            Some(known) => known,
            None => {
                let fetched = match self.client.srt_ready(rid, self.srt_within).await {
                    Ok(SrtAnswer::Ready(srt)) => Ok(srt),
                    // An empty result has empty subtitles.
                    Ok(SrtAnswer::Empty) => Ok(String::new()),
                    Ok(_) => Err(format!(
                        "the subtitles of {} were not ready within {}s; rerun to fetch them",
                        safe(rid.as_str()),
                        self.srt_within.as_secs()
                    )),
                    Err(e) => Err(format!("subtitles for {}: {}", safe(rid.as_str()), chain(&e))),
                };
                lock(&self.subtitles).insert(stem.to_owned(), fetched.clone());
                fetched
            }
        };
        fetched.map_err(|reason| ResultError::new("fetch the subtitles", reason))
    }
}

/// The fingerprint of an output recorded in the journal.
fn fingerprint(bytes: &[u8]) -> String {
    format!("fnv1a64:{:016x}", daglo::internal::fnv1a64(bytes))
}

/// The transcriber keeps each batch job's result here, named by its output label, before it
/// records the job finished. It reads nothing back: a rerun reads the files.
#[async_trait]
impl ResultStore for OutputFiles {
    async fn put(&self, job: &JobId, _outcome: &Outcome) -> Result<String, ResultError> {
        Err(ResultError::new(
            format!("keep the result of job {job}"),
            "a batch output needs the job's output name",
        ))
    }

    async fn put_job(&self, job: &JobSnapshot, outcome: &Outcome) -> Result<String, ResultError> {
        // A journal that cannot answer (Redis down) does not stop the write: the output is
        // what a rerun finds. One that answers without the job, or is gone, does.
        match self.journal.by_job(&job.id).await {
            Ok(Some(_)) => {}
            Err(e) if !e.is_gone() => {}
            Ok(None) => {
                let gone = daglo::journal::JournalError::gone(format!(
                    "it no longer holds job {} (flushed or replaced): its output name may be another input's now",
                    job.id
                ));
                self.gate.journal_gone(&gone);
                return Err(ResultError::new(
                    format!("write the outputs of job {}", job.id),
                    gone,
                ));
            }
            Err(e) => {
                self.gate.journal_gone(&e);
                return Err(ResultError::new(
                    format!("write the outputs of job {}", job.id),
                    e,
                ));
            }
        }
        match job.labels.get(OUTPUT_LABEL) {
            Some(stem) => self.write(stem, outcome).await,
            None => self.put(&job.id, outcome).await,
        }
    }

    async fn get(&self, _job: &JobId) -> Result<Option<Outcome>, ResultError> {
        Ok(None)
    }

    async fn put_srt(&self, _job: &JobId, _srt: &str) -> Result<(), ResultError> {
        Ok(())
    }

    async fn get_srt(&self, _job: &JobId) -> Result<Option<String>, ResultError> {
        Ok(None)
    }

    async fn remove(&self, _job: &JobId) -> Result<(), ResultError> {
        Ok(())
    }
}
