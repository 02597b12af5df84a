//! Many inputs at once: expand them, decide from the journal what each needs, run them with
//! bounded concurrency, write each one's outputs, and sum up.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use daglo::internal::lock;

use daglo::journal::{Entry, EntryState, Journal, JournalError, OutcomeKind};
use daglo::models::Status;
use daglo::models::{AUDIO_EXTENSIONS, VIDEO_EXTENSIONS};
use daglo::{
    JobEvent, JobOptions, JobState, Outcome, ProgressEvent, ProgressObserver, Rid, TranscribeError,
    Transcriber,
};
use futures_util::stream::{self, StreamExt};

use crate::args::Transcribe;
use crate::failure::{Failure, chain, exit};
use crate::gate::Gate;
use crate::jobs::open_journal;
use crate::outputs::{OUTPUT_LABEL, OutputFiles};
use crate::progress::{Bar, multi, overall};
use crate::setup::{self, Connection, Input};
use crate::terminal::{plural, safe};

/// The journal's file name in an output directory.
pub(crate) const JOURNAL_FILE: &str = "daglo-journal.sqlite";

/// Whether the arguments ask for a batch: several inputs, a directory, a list, or --out-dir.
pub(crate) fn is_batch(args: &Transcribe) -> bool {
    args.inputs.len() > 1
        || args.from_list.is_some()
        || args.out_dir.is_some()
        || args.inputs.iter().any(|i| Path::new(i).is_dir())
}

/// One input of a batch.
#[derive(Debug, Clone)]
struct Item {
    /// What to submit.
    input: Input,
    /// The input as the journal names it: the canonical path (symlinks and `..` resolved), or
    /// the URL exactly as given.
    name: String,
    /// The job's key: the name and the options' digest — the same input with other options is
    /// another job.
    key: String,
    /// The output files' name: recorded in the journal, so the same whatever the order or set
    /// of inputs of a later run.
    stem: String,
}

/// The label that records which service an input's job was submitted to: a rerun against
/// another one never asks it about the job.
pub(crate) const SERVICE_LABEL: &str = "service";

/// Whether `key` is an entry's key for the input keyed `input_key`: its own, or a retry of it
/// (`--retry-failed`: `<key> retry <the failed job's rid>`).
fn is_own_key(key: &str, input_key: &str) -> bool {
    key == input_key
        || key
            .strip_prefix(input_key)
            .is_some_and(|rest| rest.starts_with(" retry "))
}

impl Item {
    /// The input as a job under `key`, labelled with its output name and `service`.
    fn job(&self, key: &str, service: &str) -> daglo::Input {
        let job = match &self.input {
            Input::Url(url) => daglo::Input::url(url.clone()),
            Input::File(path) => daglo::Input::file(path.clone()),
        };
        job.key(key.to_owned())
            .label(OUTPUT_LABEL, self.stem.clone())
            .label(SERVICE_LABEL, service.to_owned())
    }
}

/// How one input ended in this run.
#[derive(Debug)]
enum Ended {
    Done {
        rid: Rid,
        outcome: OutcomeKind,
    },
    AlreadyDone,
    Failed {
        rid: Rid,
        status: Status,
        /// Daglo's word on why, when it gave one.
        reason: Option<String>,
    },
    /// Its job was submitted to another service (another `--base-url`, or an earlier run's own
    /// emulator): not asked about here.
    OtherService {
        rid: Option<Rid>,
        service: String,
    },
    Pending {
        rid: Rid,
    },
    /// A job may exist: submitted at `at` (when known) with no answer recorded.
    Uncertain {
        at: Option<std::time::SystemTime>,
    },
    /// Not submitted in this run: the batch stopped submitting, for `reason`.
    NotSubmitted {
        reason: String,
    },
    /// Its output exists but the journal has no entry for it (`--force` submits it).
    Orphan,
    Error {
        message: String,
        rid: Option<Rid>,
    },
}

impl Ended {
    /// The exit status this result alone would give; the batch exits with the worst.
    fn code(&self) -> u8 {
        match self {
            Self::Done { .. } | Self::AlreadyDone => exit::OK,
            Self::Failed { .. } => exit::JOB_FAILED,
            Self::Orphan | Self::OtherService { .. } => exit::USAGE,
            Self::Pending { .. } => exit::GAVE_UP,
            Self::Uncertain { .. } | Self::NotSubmitted { .. } | Self::Error { .. } => exit::SERVICE,
        }
    }
}

pub(crate) async fn run(args: Transcribe) -> Result<u8, Failure> {
    let out_dir = args.out_dir.clone().ok_or_else(|| {
        Failure::usage("a batch (several inputs, a directory or --from-list) needs --out-dir DIR")
    })?;
    for (flag, file) in [("--srt", &args.output.srt), ("--vtt", &args.output.vtt)] {
        if matches!(file, Some(Some(_))) {
            return Err(Failure::usage(format!(
                "in a batch, {flag} takes no FILE: subtitles go beside each transcript"
            )));
        }
    }
    if args.concurrency == 0 {
        return Err(Failure::usage("--concurrency must be at least 1"));
    }
    let options = setup::options(&args)?;
    let deadline = setup::deadline(&args.output)?;
    let config = setup::strategy(&args, deadline)?;
    let (mut inputs, given) = expand(&args, &options.digest())?;
    if inputs.is_empty() {
        return Err(Failure::usage(
            "no inputs: the directories and lists held no audio or video files",
        ));
    }
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| Failure::usage(format!("--out-dir {}: {e}", out_dir.display())))?;
    let journal_path = args.journal.clone().unwrap_or_else(|| out_dir.join(JOURNAL_FILE));
    let Connection {
        client,
        emulator,
        redis,
        service,
    } = setup::connect(&args.service, deadline).await?;
    let journal = open_journal(&journal_path, redis)?;
    let known = journal.entries().await.map_err(|e| Failure::service(&e))?;
    name_outputs(&mut inputs, &known);
    let srt_within = deadline.unwrap_or(setup::SRT_WAIT);
    let gate = Arc::new(Gate::new(args.max_server_errors));
    let outputs = Arc::new(OutputFiles::new(
        &out_dir,
        crate::outputs::Formats {
            srt: args.output.srt.is_some(),
            vtt: args.output.vtt.is_some(),
            json: args.output.json,
        },
        srt_within,
        client.clone(),
        journal.clone(),
        gate.clone(),
    ));
    // The journal given to the builder: callback keys are signed with its kept secret, so a
    // rerun takes back the callbacks of the jobs it resumes.
    let transcriber = setup::build(
        Transcriber::builder(client)
            .config(&config)
            .journal(journal.clone())
            .results(outputs.clone()),
    )
    .await?;

    let progress = multi();
    let total = overall(&progress, inputs.len());
    let total = &total;
    let batch = &Batch {
        transcriber: &transcriber,
        journal: &journal,
        options: &options,
        digest: options.digest(),
        outputs: &outputs,
        out_dir: &out_dir,
        force: args.force,
        retry_failed: args.retry_failed,
        rescued: rescued_records(&out_dir),
        service,
        gate,
        notes: Mutex::default(),
        progress: &progress,
    };
    let jobs = stream::iter(inputs.iter())
        .map(|input| async move {
            let ended = batch.one(input).await;
            total.inc(1);
            (input, ended)
        })
        .buffer_unordered(args.concurrency)
        .collect::<Vec<_>>();
    let stop = async {
        match deadline {
            Some(limit) => tokio::time::sleep(limit).await,
            None => std::future::pending().await,
        }
    };
    // Ctrl-C or the deadline stops waiting: the journal already holds every rid, so nothing
    // is lost and a rerun resumes.
    let finished = tokio::select! {
        finished = jobs => Some(finished),
        _ = tokio::signal::ctrl_c() => None,
        () = stop => None,
    };
    total.finish_and_clear();
    transcriber.shutdown().await;
    let results = match finished {
        Some(results) => results,
        None => {
            eprintln!(
                "daglo: stopped waiting; the journal at {} is consistent",
                journal_path.display()
            );
            interrupted(&journal, &inputs).await?
        }
    };
    let mut notes = std::mem::take(&mut *lock(&batch.notes));
    // What each folder gave, so a folder that held nothing (or less than expected) shows.
    let given: Vec<String> = given
        .into_iter()
        .map(|(folder, count)| format!("  {} gave {}", safe(&folder), plural(count, "input", "inputs")))
        .collect();
    notes.splice(0..0, given);
    let code = summarise(&results, &out_dir, &notes);
    if let Some(sim) = emulator {
        let submits = sim.stats().endpoint(daglo::sim::Endpoint::Submit);
        eprintln!(
            "daglo: emulator saw {} ({} answered 429) and created {}",
            plural(
                usize::try_from(submits.requests).unwrap_or(usize::MAX),
                "submit",
                "submits"
            ),
            submits.answered(429),
            plural(sim.jobs().len(), "job", "jobs")
        );
    }
    if code == exit::JOB_FAILED {
        eprintln!(
            "daglo: add --retry-failed to submit the failed inputs again; `daglo jobs --out-dir {}` lists the journal",
            out_dir.display()
        );
    } else if code != exit::OK {
        eprintln!(
            "daglo: rerun the same command to resume; `daglo jobs --out-dir {}` lists the journal",
            out_dir.display()
        );
    }
    Ok(code)
}

/// Everything one input needs.
struct Batch<'a> {
    transcriber: &'a Transcriber,
    journal: &'a Arc<dyn Journal>,
    options: &'a JobOptions,
    /// The options' digest, part of each input's key.
    digest: String,
    outputs: &'a OutputFiles,
    out_dir: &'a Path,
    /// Submit an input whose output exists without a journal entry.
    force: bool,
    /// Submit again the inputs whose earlier job failed.
    retry_failed: bool,
    /// Jobs an earlier run could not record (its journal gone), by input.
    rescued: HashMap<String, (PathBuf, Rescued)>,
    /// The service this run submits to (recorded with each job: [`SERVICE_LABEL`]).
    service: String,
    gate: Arc<Gate>,
    /// Lines for the summary (an input submitted again with other options).
    notes: Mutex<Vec<String>>,
    progress: &'a indicatif::MultiProgress,
}

impl Batch<'_> {
    /// Starts the input as a job under its key — one atomic claim, so concurrent batches on one
    /// journal submit it once, and a peer's submit under way is waited for — then does what the
    /// job needs: skip it (done, its own outputs present), fetch it again (ended, outputs
    /// missing or another job's), report it (uncertain: never submitted twice), or follow it to
    /// its end. An input the journal does not know whose output exists is reported, not
    /// submitted (unless `--force`).
    async fn one(&self, input: &Item) -> Ended {
        if let Some(reason) = self.gate.stopped() {
            return Ended::NotSubmitted { reason };
        }
        let earlier = match self.journal.latest_for(&input.name).await {
            Ok(earlier) => earlier,
            Err(e) => return self.journal_failed(&e),
        };
        let mut other_options = None;
        // The key to start under: the input's, or the retry of it the journal holds last.
        let mut key = input.key.clone();
        match &earlier {
            // An entry an older version wrote — no key, or a key spelled before it held the
            // options — is handled as that version did.
            Some(entry)
                if !matches!(entry.state, EntryState::NotSubmitted { .. })
                    && !entry
                        .intent
                        .key
                        .as_deref()
                        .is_some_and(|k| is_own_key(k, &input.key))
                    && (entry.intent.key.is_none() || entry.intent.options_digest == self.digest) =>
            {
                return self.legacy(input, entry).await;
            }
            Some(entry) if entry.intent.options_digest != self.digest => other_options = Some(entry.clone()),
            None if self.rescued.contains_key(&input.name) => {
                if let Some(ended) = self.adopt_rescued(input).await {
                    return ended;
                }
            }
            None if !self.force && self.outputs.path(&input.stem, "txt").exists() => return Ended::Orphan,
            Some(entry) => {
                // A rescued record of an input the journal knows again is spent.
                if let Some((path, _)) = self.rescued.get(&input.name) {
                    let _ = std::fs::remove_file(path);
                }
                if let Some(own) = &entry.intent.key {
                    key.clone_from(own);
                }
                if let Some(ended) = self.elsewhere(input, entry) {
                    return ended;
                }
            }
            None => {}
        }
        let started = self
            .transcriber
            .start(input.job(&key, &self.service), self.options)
            .await;
        self.gate.observe(&started);
        let job = match started {
            Ok(job) => job,
            Err(e) if e.may_have_created_job() && e.rid().is_none() => {
                let at = match self.journal.by_key(&input.key).await {
                    Ok(entry) => entry.map(|e| e.intent.at),
                    Err(_) => None,
                };
                return Ended::Uncertain { at };
            }
            Err(e) => {
                return Ended::Error {
                    rid: e.rid().cloned(),
                    message: chain(&e),
                };
            }
        };
        let snapshot = job.snapshot();
        if let (true, Some(entry)) = (job.is_new(), other_options) {
            self.note(format!(
                "  new job    {}  its options differ from its earlier job's ({}): submitted as another job",
                safe(&input.name),
                entry
                    .snapshot()
                    .rid
                    .map_or_else(|| "no rid".to_owned(), |rid| safe(rid.as_str()))
            ));
        }
        match (snapshot.state, snapshot.rid.clone()) {
            (JobState::Uncertain, _) | (_, None) => Ended::Uncertain {
                at: Some(snapshot.created_at),
            },
            (JobState::Finished, Some(rid)) if !job.is_new() => {
                let reference = match self.journal.by_job(&job.id()).await {
                    Ok(Some(Entry {
                        state: EntryState::Finished { result, .. },
                        ..
                    })) => result,
                    Ok(_) => None,
                    Err(e) => return self.journal_failed(&e),
                };
                if self.outputs.are_done(&input.stem, reference.as_deref()) {
                    Ended::AlreadyDone
                } else {
                    // Ended in an earlier run; its outputs are missing, partial or another
                    // job's: ask the service again (a status request, not a submit).
                    self.wait(input, self.transcriber.resume(rid)).await
                }
            }
            // Failed in an earlier run: the journal says how; the service is not asked again.
            (JobState::Failed, Some(rid)) if !job.is_new() => {
                if self.retry_failed {
                    return self.retry(input, &rid).await;
                }
                let recorded = match &earlier {
                    Some(Entry {
                        state: EntryState::Finished { result, .. },
                        ..
                    }) => crate::outputs::failure_reason(result.as_deref()),
                    _ => None,
                };
                Ended::Failed {
                    status: snapshot.status.clone().unwrap_or_else(|| Status::parse("failed")),
                    reason: recorded.or_else(|| snapshot.reason.clone()),
                    rid,
                }
            }
            (_, Some(rid)) => self.follow(input, &job.id(), rid).await,
        }
    }

    /// `--retry-failed`: the input submitted again as a new job, under a key naming the failed
    /// one (two batches retrying it at once submit it once).
    async fn retry(&self, input: &Item, failed: &Rid) -> Ended {
        let key = format!("{} retry {}", input.key, failed);
        let started = self
            .transcriber
            .start(input.job(&key, &self.service), self.options)
            .await;
        self.gate.observe(&started);
        match started {
            Ok(job) => match job.snapshot().rid.clone() {
                Some(rid) => self.follow(input, &job.id(), rid).await,
                None => Ended::Uncertain {
                    at: Some(job.snapshot().created_at),
                },
            },
            Err(e) if e.may_have_created_job() && e.rid().is_none() => Ended::Uncertain { at: None },
            Err(e) => Ended::Error {
                rid: e.rid().cloned(),
                message: chain(&e),
            },
        }
    }

    /// An entry whose job went to another service than this run's: what it needs without
    /// asking this service about it — done (its outputs are here), failed (the journal says
    /// how), or else not followed here. `None` when it went to this service (or its service was
    /// not recorded), or when `--retry-failed` submits a failed one again here.
    fn elsewhere(&self, input: &Item, entry: &Entry) -> Option<Ended> {
        let recorded = entry.intent.labels.get(SERVICE_LABEL)?;
        if *recorded == self.service {
            return None;
        }
        match &entry.state {
            EntryState::Finished {
                outcome: OutcomeKind::Failed(status),
                rid,
                result,
                ..
            } if !self.retry_failed => Some(Ended::Failed {
                rid: rid.clone(),
                status: status.clone(),
                reason: crate::outputs::failure_reason(result.as_deref()),
            }),
            EntryState::Finished { result, .. } if self.outputs.are_done(&input.stem, result.as_deref()) => {
                Some(Ended::AlreadyDone)
            }
            // Not submitted, or failed and to be retried (`--retry-failed`): submitted here;
            // uncertain: reported as such, never submitted again.
            EntryState::NotSubmitted { .. }
            | EntryState::Intended
            | EntryState::Finished {
                outcome: OutcomeKind::Failed(_),
                ..
            } => None,
            state => Some(Ended::OtherService {
                rid: match state {
                    EntryState::Finished { rid, .. } | EntryState::Submitted { rid } => Some(rid.clone()),
                    _ => None,
                },
                service: recorded.clone(),
            }),
        }
    }

    fn note(&self, line: String) {
        lock(&self.notes).push(line);
    }

    /// A journal read failed: this input's error, and the batch's stop when the journal is gone.
    fn journal_failed(&self, error: &JournalError) -> Ended {
        if error.is_gone() {
            self.gate.journal_gone(error);
        }
        Ended::Error {
            message: chain(error),
            rid: None,
        }
    }

    /// Follows a started (or adopted) job to its outcome, its events on the input's bar.
    async fn follow(&self, input: &Item, id: &daglo::JobId, rid: Rid) -> Ended {
        let bar = Bar::in_batch(self.progress, &input.stem);
        let mut events = self.transcriber.events(id);
        let shown = async {
            while let Some(event) = events.next().await {
                if let JobEvent::Progress { status, progress, .. } = event {
                    bar.on_event(&ProgressEvent::Progress {
                        rid: rid.clone(),
                        status,
                        percent: progress,
                    });
                }
            }
        };
        let (outcome, ()) = tokio::join!(self.transcriber.outcome(id), shown);
        bar.finish();
        self.ended(input, rid, outcome, false).await
    }

    /// What an entry written by an older version (no key) needs, decided as that version did.
    async fn legacy(&self, input: &Item, entry: &Entry) -> Ended {
        let uncertain = Ended::Uncertain {
            at: Some(entry.intent.at),
        };
        let pending = match &entry.state {
            EntryState::Finished { result, .. } if self.outputs.are_done(&input.stem, result.as_deref()) => {
                return Ended::AlreadyDone;
            }
            EntryState::Intended => return uncertain,
            _ => match self.resume(entry) {
                Some(pending) => pending,
                None => return uncertain,
            },
        };
        self.wait(input, pending).await
    }

    fn resume(&self, entry: &Entry) -> Option<daglo::Pending> {
        match &entry.state {
            EntryState::Finished { rid, .. } => Some(self.transcriber.resume(rid.clone())),
            _ => self.transcriber.resume_entry(entry),
        }
    }

    async fn wait(&self, input: &Item, pending: daglo::Pending) -> Ended {
        let rid = pending.rid().clone();
        let bar = Bar::in_batch(self.progress, &input.stem);
        let outcome = self.transcriber.wait_with(pending, &bar).await;
        bar.finish();
        self.ended(input, rid, outcome, true).await
    }

    /// How the input ended. A followed job's outputs were written by the result store before
    /// the journal recorded it finished; `write` says whether this wait's must be written here
    /// (a job resumed by its rid). A result that could not be written is saved elsewhere and
    /// said so — never dropped.
    async fn ended(
        &self,
        input: &Item,
        rid: Rid,
        outcome: Result<Outcome, TranscribeError>,
        write: bool,
    ) -> Ended {
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(e) => {
                if e.is_journal_gone() {
                    self.gate.journal_gone(&e);
                }
                let message = match e.fetched() {
                    Some(fetched) => match &e {
                        TranscribeError::Unsaved { .. } => {
                            format!("{}; {}", chain(&e), self.rescue(input, &rid, Some(fetched)))
                        }
                        _ if self.gate.is_journal_gone() => {
                            format!("{}; {}", chain(&e), self.rescue(input, &rid, None))
                        }
                        _ => format!(
                            "{}; its outputs were written, and a rerun fetches the result again (not billed again)",
                            chain(&e)
                        ),
                    },
                    // The journal is gone: its rid is kept where a rerun finds it.
                    None if self.gate.is_journal_gone() => {
                        format!("{}; {}", chain(&e), self.rescue(input, &rid, None))
                    }
                    None => chain(&e),
                };
                return Ended::Error {
                    message,
                    rid: Some(rid),
                };
            }
        };
        if write
            && matches!(outcome, Outcome::Transcript { .. } | Outcome::Empty { .. })
            && let Err(e) = self.outputs.write(&input.stem, &outcome).await
        {
            return Ended::Error {
                message: format!("{}; {}", chain(&e), self.rescue(input, &rid, Some(&outcome))),
                rid: Some(rid),
            };
        }
        match outcome {
            Outcome::Transcript { .. } => Ended::Done {
                rid,
                outcome: OutcomeKind::Transcript,
            },
            Outcome::Empty { .. } => Ended::Done {
                rid,
                outcome: OutcomeKind::Empty,
            },
            Outcome::Failed { status, message, .. } => Ended::Failed {
                rid,
                status,
                reason: message,
            },
            _ => Ended::Pending { rid },
        }
    }

    /// Saves what a rerun needs of a job this run could not record: a record of the input,
    /// its key and its rid (`<stem>.json`), and the fetched transcript if there is one
    /// (`<stem>.txt`) — beside the output directory (`<out-dir>.rescued/`), else in the
    /// temporary directory. A rerun finds the record and follows the job by its rid instead of
    /// submitting the input again. Says where.
    fn rescue(&self, input: &Item, rid: &Rid, outcome: Option<&Outcome>) -> String {
        let text = outcome.and_then(Outcome::transcript);
        let record = Rescued {
            input: input.name.clone(),
            key: input.key.clone(),
            rid: rid.as_str().to_owned(),
            service: self.service.clone(),
        };
        let record = serde_json::to_vec_pretty(&record).unwrap_or_default();
        for dir in rescue_dirs(self.out_dir) {
            let file = |extension: &str| dir.join(format!("{}.{extension}", input.stem));
            let saved = file("json")
                .parent()
                .is_some_and(|parent| std::fs::create_dir_all(parent).is_ok())
                && text
                    .as_ref()
                    .is_none_or(|text| setup::write_whole(&file("txt"), text.as_bytes()).is_ok())
                && setup::write_whole(&file("json"), &record).is_ok();
            if saved {
                let what = if text.is_some() {
                    "the transcript and rid"
                } else {
                    "the rid"
                };
                self.note(format!(
                    "  saved to   {}  — {what} of {}, whose job this run could not record",
                    dir.join(&input.stem).display(),
                    safe(&input.name)
                ));
                return format!(
                    "{what} saved to {}.*; a rerun follows the job by its rid and writes its outputs (fetched again, not billed again)",
                    dir.join(&input.stem).display()
                );
            }
        }
        "nothing could be saved anywhere either: the job's rid is in this message, to resume by hand with `daglo resume`".to_owned()
    }

    /// A job an earlier run could not record (its journal gone) and saved beside the output
    /// directory: recorded in this run's journal under its key, as submitted with its rid, so
    /// that the start follows it instead of submitting it again; the record is then removed.
    /// `Some` when it went to another service than this run's.
    async fn adopt_rescued(&self, input: &Item) -> Option<Ended> {
        let (path, record) = self.rescued.get(&input.name)?;
        if record.key != input.key {
            return None;
        }
        if record.service != self.service {
            return Some(Ended::OtherService {
                rid: Some(Rid::new(record.rid.clone())),
                service: record.service.clone(),
            });
        }
        let intent = daglo::journal::Intent::new(
            input.name.clone(),
            self.digest.clone(),
            self.transcriber.strategy(),
        )
        .with_key(Some(record.key.clone()))
        .with_labels(
            [
                (OUTPUT_LABEL.to_owned(), input.stem.clone()),
                (SERVICE_LABEL.to_owned(), self.service.clone()),
            ]
            .into(),
        );
        let recorded = match self.journal.claim(intent).await {
            Ok(daglo::journal::Claim::Created(id)) => {
                self.journal.submitted(id, &Rid::new(record.rid.clone())).await
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        match recorded {
            Ok(()) => {
                let _ = std::fs::remove_file(path);
                self.note(format!(
                    "  rescued    {}  {}  — saved by an earlier run whose journal was gone: followed, not submitted again",
                    safe(&record.rid),
                    safe(&input.name)
                ));
                None
            }
            Err(e) => Some(self.journal_failed(&e)),
        }
    }
}

/// What a run writes down of a job it could not record in its journal (`<stem>.json` in
/// `<out-dir>.rescued/`).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Rescued {
    input: String,
    key: String,
    rid: String,
    service: String,
}

/// Where rescued jobs go: beside the output directory, else the temporary directory.
fn rescue_dirs(out_dir: &Path) -> [PathBuf; 2] {
    let name = out_dir
        .file_name()
        .map_or_else(|| "daglo-out".into(), |n| n.to_string_lossy().into_owned());
    [
        out_dir.with_file_name(format!("{name}.rescued")),
        std::env::temp_dir().join("daglo-rescued"),
    ]
}

/// The rescued records an earlier run left beside `out_dir`, by input.
fn rescued_records(out_dir: &Path) -> HashMap<String, (PathBuf, Rescued)> {
    fn walk(dir: &Path, out: &mut HashMap<String, (PathBuf, Rescued)>, depth: usize) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() && depth < 32 && !path.is_symlink() {
                walk(&path, out, depth + 1);
            } else if path.extension().is_some_and(|e| e == "json")
                && let Ok(bytes) = std::fs::read(&path)
                && let Ok(record) = serde_json::from_slice::<Rescued>(&bytes)
            {
                out.insert(record.input.clone(), (path, record));
            }
        }
    }
    let mut records = HashMap::new();
    let [beside, _] = rescue_dirs(out_dir);
    walk(&beside, &mut records, 0);
    records
}

/// The inputs named, the files of the directories named, and the lines of --from-list: URLs
/// checked, files by their canonical path (one file named three ways is one input), each keyed
/// by its name and the options' `digest`. Output names come after ([`name_outputs`]).
/// The inputs, and how many each folder argument (and `--from-list`) gave.
type Expanded = (Vec<Item>, Vec<(String, usize)>);

/// The inputs the arguments name, folders walked, and how many inputs each folder gave.
fn expand(args: &Transcribe, digest: &str) -> Result<Expanded, Failure> {
    let mut named = args.inputs.clone();
    if let Some(list) = &args.from_list {
        let text = std::fs::read_to_string(list)
            .map_err(|e| Failure::usage(format!("--from-list {}: {e}", list.display())))?;
        named.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned),
        );
    }
    let mut inputs = Vec::new();
    let mut seen = HashSet::new();
    // How many inputs each folder argument gave (the summary says).
    let mut given: Vec<(String, usize)> = Vec::new();
    let mut inputs_added = 0usize;
    let mut add = |input: Input, name: String, stem: String| {
        let new = seen.insert(name.clone());
        if new {
            inputs.push(Item {
                input,
                key: format!("{name} #{digest}"),
                name,
                stem,
            });
        }
        new
    };
    let from_arguments = args.inputs.len();
    let mut listed = 0usize;
    for (index, name) in named.into_iter().enumerate() {
        let from_list = index >= from_arguments;
        if let Input::Url(_) = Input::parse(&name)? {
            let stem = name
                .rsplit('/')
                .find(|s| !s.is_empty())
                .and_then(|s| s.split(['?', '#']).next())
                .map_or("url", |s| s.rsplit_once('.').map_or(s, |(stem, _)| stem))
                .to_owned();
            if add(Input::Url(name.clone()), name, stem) {
                inputs_added += 1;
                listed += usize::from(from_list);
            }
            continue;
        }
        let path = Path::new(&name);
        let files = if path.is_dir() {
            media_files(path)?
        } else {
            vec![(path.to_owned(), stem_of(path))]
        };
        let before = inputs_added;
        for (file, stem) in files {
            let canonical = canonical(&file)?;
            if add(Input::File(PathBuf::from(&canonical)), canonical, stem) {
                inputs_added += 1;
                listed += usize::from(from_list);
            }
        }
        if path.is_dir() && !from_list {
            given.push((name.clone(), inputs_added - before));
        }
    }
    if let Some(list) = &args.from_list {
        given.push((format!("--from-list {}", list.display()), listed));
    }
    Ok((inputs, given))
}

/// Gives each input its output name: the one the journal recorded for it, else its file stem —
/// unless another input (of this run, or recorded in the journal) has that stem too, then the
/// stem and a short hash of the input's name. The same input keeps its name whatever the order
/// or the set of inputs of a run.
fn name_outputs(inputs: &mut [Item], known: &[Entry]) {
    let mut recorded: HashMap<&str, &str> = HashMap::new();
    let mut taken: HashMap<&str, &str> = HashMap::new();
    for entry in known {
        if let Some(stem) = entry.intent.labels.get(OUTPUT_LABEL) {
            recorded.insert(&entry.intent.input, stem);
            taken.insert(stem, &entry.intent.input);
        }
    }
    let mut stems: HashMap<String, usize> = HashMap::new();
    for input in inputs.iter() {
        if !recorded.contains_key(input.name.as_str()) {
            *stems.entry(input.stem.clone()).or_default() += 1;
        }
    }
    let kept: HashSet<String> = inputs
        .iter()
        .filter_map(|i| recorded.get(i.name.as_str()).map(|s| (*s).to_owned()))
        .collect();
    let named: Vec<String> = inputs
        .iter()
        .map(|input| {
            if let Some(stem) = recorded.get(input.name.as_str()) {
                return (*stem).to_owned();
            }
            let shared = stems.get(&input.stem).copied().unwrap_or(0) > 1
                || kept.contains(&input.stem)
                || taken
                    .get(input.stem.as_str())
                    .is_some_and(|owner| *owner != input.name);
            if shared {
                format!(
                    "{}-{:08x}",
                    input.stem,
                    daglo::internal::fnv1a64(input.name.as_bytes()) >> 32
                )
            } else {
                input.stem.clone()
            }
        })
        .collect();
    for (input, stem) in inputs.iter_mut().zip(named) {
        input.stem = stem;
    }
}

/// The audio and video files under `dir`, subfolders included, in path order, each with its
/// path relative to `dir` without the extension (`sub/call-001`: its outputs' name). Hidden
/// files and folders (`.name`) are skipped; a symbolic link back into a folder being walked is
/// refused, naming it.
fn media_files(dir: &Path) -> Result<Vec<(PathBuf, String)>, Failure> {
    fn walk(
        dir: &Path,
        relative: &Path,
        ancestors: &mut Vec<PathBuf>,
        out: &mut Vec<(PathBuf, String)>,
    ) -> Result<(), Failure> {
        let unreadable = |e: std::io::Error| {
            Failure::usage(format!("cannot read {}: {e}", safe(&dir.display().to_string())))
        };
        let real = std::fs::canonicalize(dir).map_err(unreadable)?;
        if ancestors.contains(&real) {
            return Err(Failure::usage(format!(
                "{} leads back into a folder being read (a symbolic link loop): remove the link, or name the files to transcribe",
                safe(&dir.display().to_string())
            )));
        }
        ancestors.push(real);
        let mut entries: Vec<std::fs::DirEntry> = std::fs::read_dir(dir)
            .map_err(unreadable)?
            .filter_map(Result::ok)
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let path = entry.path();
            let inner = relative.join(entry.file_name());
            if path.is_dir() {
                walk(&path, &inner, ancestors, out)?;
            } else if path.is_file() && is_media(&path) {
                let stem = inner.with_extension("");
                let stem = stem
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((path, stem));
            }
        }
        ancestors.pop();
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, Path::new(""), &mut Vec::new(), &mut files)?;
    Ok(files)
}

/// Whether `path` names an audio or video file the service takes (by its extension).
fn is_media(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .is_some_and(|e| AUDIO_EXTENSIONS.contains(&e.as_str()) || VIDEO_EXTENSIONS.contains(&e.as_str()))
}

fn stem_of(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("input")
        .to_owned()
}

/// The file's canonical path (symlinks and `..` resolved); a file that cannot be resolved (it
/// does not exist) keeps its absolute path, and its submit says what is wrong.
fn canonical(path: &Path) -> Result<String, Failure> {
    std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .map(|p| p.display().to_string())
        .map_err(|e| Failure::usage(format!("{}: {e}", safe(&path.display().to_string()))))
}

/// After an interruption: each input as the journal now has it.
async fn interrupted<'a>(
    journal: &Arc<dyn Journal>,
    inputs: &'a [Item],
) -> Result<Vec<(&'a Item, Ended)>, Failure> {
    let mut results = Vec::new();
    for input in inputs {
        let latest = match journal.by_key(&input.key).await {
            Ok(Some(entry)) => Some(entry),
            Ok(None) => journal
                .latest_for(&input.name)
                .await
                .map_err(|e| Failure::service(&e))?,
            Err(e) => return Err(Failure::service(&e)),
        };
        let at = latest.as_ref().map(|e| e.intent.at);
        let ended = match latest.map(|e| e.state) {
            Some(EntryState::Finished {
                rid,
                outcome: OutcomeKind::Failed(status),
                ..
            }) => Ended::Failed {
                rid,
                status,
                reason: None,
            },
            Some(EntryState::Finished { rid, outcome, .. }) => Ended::Done { rid, outcome },
            Some(EntryState::Submitted { rid }) => Ended::Pending { rid },
            Some(EntryState::Intended) => Ended::Uncertain { at },
            _ => Ended::NotSubmitted {
                reason: "stopped before it was submitted".to_owned(),
            },
        };
        results.push((input, ended));
    }
    Ok(results)
}

/// Prints the summary — every input that needs a look named, with what to do — and returns
/// the worst exit status.
fn summarise(results: &[(&Item, Ended)], out_dir: &Path, notes: &[String]) -> u8 {
    let count = |f: fn(&Ended) -> bool| results.iter().filter(|(_, e)| f(e)).count();
    let done = count(|e| matches!(e, Ended::Done { .. }));
    let skipped = count(|e| matches!(e, Ended::AlreadyDone));
    let failed = count(|e| matches!(e, Ended::Failed { .. }));
    let pending = count(|e| matches!(e, Ended::Pending { .. }));
    let uncertain = count(|e| matches!(e, Ended::Uncertain { .. }));
    let errors = count(|e| matches!(e, Ended::Error { .. }));
    let not_submitted = count(|e| matches!(e, Ended::NotSubmitted { .. }));
    let orphans = count(|e| matches!(e, Ended::Orphan));
    let elsewhere = count(|e| matches!(e, Ended::OtherService { .. }));
    let mut extra = String::new();
    if not_submitted > 0 {
        extra.push_str(&format!(", {not_submitted} not submitted"));
    }
    if elsewhere > 0 {
        extra.push_str(&format!(", {elsewhere} submitted to another service"));
    }
    if orphans > 0 {
        extra.push_str(&format!(", {orphans} with an output but no journal entry"));
    }
    eprintln!(
        "daglo: {done} done, {skipped} already done, {failed} failed, {pending} pending, {uncertain} uncertain, {}{extra}; outputs in {}",
        plural(errors, "error", "errors"),
        out_dir.display()
    );
    for line in notes {
        eprintln!("{line}");
    }
    for (input, ended) in results {
        let name = safe(&input.name);
        match ended {
            Ended::Failed { rid, status, reason } => {
                let reason = reason
                    .as_deref()
                    .filter(|r| !r.trim().is_empty())
                    .map(|r| format!(": {}", safe(r)))
                    .unwrap_or_default();
                eprintln!(
                    "  failed     {}  {}{reason}  {name}  — --retry-failed submits it again",
                    safe(rid.as_str()),
                    safe(status.as_str())
                );
            }
            Ended::OtherService { rid, service } => eprintln!(
                "  elsewhere  {}  {name}  — submitted to {}, not to this run's service: rerun against {} to follow it{}",
                safe(rid.as_ref().map_or("(no rid)", Rid::as_str)),
                safe(service),
                if service.starts_with("emulator ") {
                    "a service that knows it (an earlier run's own emulator is gone: its jobs cannot be followed)".to_owned()
                } else {
                    format!("it (--base-url {})", safe(service))
                },
                if service.starts_with("emulator ") {
                    "; `daglo jobs --out-dir DIR --prune 0` forgets such entries".to_owned()
                } else {
                    String::new()
                }
            ),
            Ended::Pending { rid } => eprintln!("  pending    {}  {name}", safe(rid.as_str())),
            Ended::Uncertain { at } => eprintln!(
                "  uncertain  (no rid)  {name}  — submitted {}with no answer: a job may exist (and be billed); \
                 check the Daglo console for a job created then. It is never submitted again by itself",
                at.map(|at| format!("at {} ", daglo::jobs::rfc3339::format(at)))
                    .unwrap_or_default()
            ),
            Ended::NotSubmitted { reason } => eprintln!("  not submitted  {name}  {}", safe(reason)),
            Ended::Orphan => eprintln!(
                "  exists     {name} -> {}.txt  — an output with no journal entry (another journal?): not submitted again; --force submits it",
                safe(&input.stem)
            ),
            Ended::Error { message, rid } => eprintln!(
                "  error      {}  {name}  {}",
                safe(rid.as_ref().map_or("(no rid)", Rid::as_str)),
                safe(message)
            ),
            Ended::Done { rid, outcome } => eprintln!(
                "  done       {}  {outcome}  {name} -> {}.txt",
                safe(rid.as_str()),
                safe(&input.stem)
            ),
            Ended::AlreadyDone => {}
        }
    }
    results.iter().map(|(_, e)| e.code()).max().unwrap_or(exit::OK)
}
