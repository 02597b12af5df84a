//! Many inputs at once: expand them, decide from the journal what each needs, run them with
//! bounded concurrency, write each one's outputs, and sum up.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use daglo::client::SrtAnswer;
use daglo::journal::SqliteJournal;
use daglo::journal::{Entry, EntryState, Journal, OutcomeKind};
use daglo::models::{AUDIO_EXTENSIONS, VIDEO_EXTENSIONS};
use daglo::{
    JobEvent, JobOptions, JobState, Outcome, ProgressEvent, ProgressObserver, Rid, Status, Transcriber,
};
use futures_util::stream::{self, StreamExt};

use crate::args::{Jobs, Transcribe};
use crate::failure::{Failure, chain, exit};
use crate::progress::{Bar, multi, overall};
use crate::setup::{self, Connection, Input};
use crate::terminal::safe;

/// The journal's file name in an output directory.
const JOURNAL_FILE: &str = "daglo-journal.sqlite";

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
    /// What the journal knows it by: an absolute path, or the URL.
    key: String,
    /// The output files' name, unique in the batch.
    stem: String,
}

/// How one input ended in this run.
#[derive(Debug)]
enum Ended {
    Done { rid: Rid, outcome: OutcomeKind },
    AlreadyDone,
    Failed { rid: Rid, status: Status },
    Pending { rid: Rid },
    Uncertain,
    Error { message: String, rid: Option<Rid> },
}

impl Ended {
    /// The exit status this result alone would give; the batch exits with the worst.
    fn code(&self) -> u8 {
        match self {
            Self::Done { .. } | Self::AlreadyDone => exit::OK,
            Self::Failed { .. } => exit::JOB_FAILED,
            Self::Pending { .. } => exit::GAVE_UP,
            Self::Uncertain | Self::Error { .. } => exit::SERVICE,
        }
    }
}

pub(crate) async fn run(args: Transcribe) -> Result<u8, Failure> {
    let out_dir = args.out_dir.clone().ok_or_else(|| {
        Failure::usage("a batch (several inputs, a directory or --from-list) needs --out-dir DIR")
    })?;
    if matches!(args.output.srt, Some(Some(_))) {
        return Err(Failure::usage(
            "in a batch, --srt takes no FILE: subtitles go beside each transcript",
        ));
    }
    if args.concurrency == 0 {
        return Err(Failure::usage("--concurrency must be at least 1"));
    }
    let options = setup::options(&args)?;
    let deadline = setup::deadline(&args.output)?;
    let config = setup::strategy(&args, deadline)?;
    let inputs = expand(&args)?;
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
    } = setup::connect(&args.service, deadline).await?;
    let journal = open_journal(&journal_path, redis)?;
    let transcriber = setup::transcriber(client, &config)
        .await?
        .with_journal(journal.clone());

    let progress = multi();
    let total = overall(&progress, inputs.len());
    let total = &total;
    let batch = &Batch {
        transcriber: &transcriber,
        journal: &journal,
        options: &options,
        out_dir: &out_dir,
        srt: args.output.srt.is_some(),
        srt_within: deadline.unwrap_or(setup::SRT_WAIT),
        json: args.output.json,
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
    let code = summarise(&results, &out_dir);
    if let Some(sim) = emulator {
        let submits = sim.stats().endpoint(daglo::sim::Endpoint::Submit);
        eprintln!(
            "daglo: emulator saw {} submits ({} answered 429) and created {} jobs",
            submits.requests,
            submits.answered(429),
            sim.jobs().len()
        );
    }
    if code != exit::OK {
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
    out_dir: &'a Path,
    srt: bool,
    /// How long subtitles answered `202` are asked for again.
    srt_within: std::time::Duration,
    json: bool,
    progress: &'a indicatif::MultiProgress,
}

impl Batch<'_> {
    /// Starts the input as a job keyed by what the journal knows it by — one atomic claim, so
    /// concurrent batches on one journal submit it once — then does what the job needs: skip
    /// it (done, outputs present), fetch it again (ended, outputs missing), report it
    /// (uncertain: never submitted twice), or follow it to its end.
    async fn one(&self, input: &Item) -> Ended {
        let latest = match self.journal.latest_for(&input.key).await {
            Ok(latest) => latest,
            Err(e) => {
                return Ended::Error {
                    message: chain(&e),
                    rid: None,
                };
            }
        };
        // An entry an older version wrote has no key: it is handled as that version did.
        if let Some(entry) =
            latest.filter(|e| e.intent.key.is_none() && !matches!(e.state, EntryState::NotSubmitted { .. }))
        {
            return self.legacy(input, &entry).await;
        }
        let job = match self
            .transcriber
            .start(input.input.job(&input.key), self.options)
            .await
        {
            Ok(job) => job,
            Err(e) if e.may_have_created_job() && e.rid().is_none() => return Ended::Uncertain,
            Err(e) => {
                return Ended::Error {
                    rid: e.rid().cloned(),
                    message: chain(&e),
                };
            }
        };
        let snapshot = job.snapshot();
        match (snapshot.state, snapshot.rid.clone()) {
            (JobState::Uncertain, _) | (_, None) => Ended::Uncertain,
            (JobState::Finished, Some(_)) if !job.is_new() && self.outputs_exist(input) => Ended::AlreadyDone,
            // Ended in an earlier run and its outputs are missing: ask the service again.
            (JobState::Finished | JobState::Failed, Some(rid)) if !job.is_new() => {
                self.wait(input, self.transcriber.resume(rid)).await
            }
            (_, Some(rid)) => self.follow(input, &job.id(), rid).await,
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
        self.ended(input, rid, outcome).await
    }

    /// What an entry written by an older version (no key) needs, decided as that version did.
    async fn legacy(&self, input: &Item, entry: &Entry) -> Ended {
        let pending = match &entry.state {
            EntryState::Finished { .. } if self.outputs_exist(input) => return Ended::AlreadyDone,
            EntryState::Intended => return Ended::Uncertain,
            _ => match self.resume(entry) {
                Some(pending) => pending,
                None => return Ended::Uncertain,
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
        self.ended(input, rid, outcome).await
    }

    /// How the input ended, its outputs written when it has a result.
    async fn ended(&self, input: &Item, rid: Rid, outcome: Result<Outcome, daglo::TranscribeError>) -> Ended {
        match outcome {
            Ok(Outcome::Transcript { body, .. }) => {
                let text = body.full_transcript();
                if let Err(message) = self.write(input, &rid, &text, Some(&body)).await {
                    return Ended::Error {
                        message,
                        rid: Some(rid),
                    };
                }
                Ended::Done {
                    rid,
                    outcome: OutcomeKind::Transcript,
                }
            }
            Ok(Outcome::Empty { .. }) => {
                if let Err(message) = self.write(input, &rid, "", None).await {
                    return Ended::Error {
                        message,
                        rid: Some(rid),
                    };
                }
                Ended::Done {
                    rid,
                    outcome: OutcomeKind::Empty,
                }
            }
            Ok(Outcome::Failed { status, .. }) => Ended::Failed { rid, status },
            Ok(_) => Ended::Pending { rid },
            Err(e) => Ended::Error {
                message: chain(&e),
                rid: Some(rid),
            },
        }
    }

    fn path(&self, input: &Item, extension: &str) -> PathBuf {
        self.out_dir.join(format!("{}.{extension}", input.stem))
    }

    fn outputs_exist(&self, input: &Item) -> bool {
        self.path(input, "txt").exists()
            && (!self.srt || self.path(input, "srt").exists())
            && (!self.json || self.path(input, "json").exists())
    }

    /// The transcript text, and the subtitles and JSON when asked, written to their files —
    /// each whole (a temporary file renamed into place), the subtitles asked for until ready.
    /// The transcript comes last: its file is what says the input is done.
    async fn write(
        &self,
        input: &Item,
        rid: &Rid,
        text: &str,
        body: Option<&daglo::StatusBody>,
    ) -> Result<(), String> {
        let write = |extension: &str, contents: &str| {
            let path = self.path(input, extension);
            setup::write_whole(&path, contents.as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))
        };
        if self.json {
            let json = match body {
                Some(body) => serde_json::to_string_pretty(body).map_err(|e| e.to_string())?,
                None => "{\"status\": \"transcribed\", \"sttResults\": []}".to_owned(),
            };
            write("json", &json)?;
        }
        if self.srt {
            let srt = match self.transcriber.client().srt_ready(rid, self.srt_within).await {
                Ok(SrtAnswer::Ready(srt)) => srt,
                // An empty result has empty subtitles.
                Ok(SrtAnswer::Empty) => String::new(),
                Ok(_) => {
                    return Err(format!(
                        "the subtitles of {} were not ready within {}s; rerun to fetch them",
                        safe(rid.as_str()),
                        self.srt_within.as_secs()
                    ));
                }
                Err(e) => return Err(format!("subtitles for {}: {}", safe(rid.as_str()), chain(&e))),
            };
            write("srt", &srt)?;
        }
        write("txt", text)
    }
}

/// The inputs named, the files of the directories named, and the lines of --from-list; URLs
/// checked, files made absolute, each given a unique output name.
fn expand(args: &Transcribe) -> Result<Vec<Item>, Failure> {
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
    let mut stems = HashSet::new();
    for name in named {
        let mut add = |key: String, is_url: bool, stem: &str| {
            if !seen.insert(key.clone()) {
                return;
            }
            let mut unique = stem.to_owned();
            let mut n = 1;
            while !stems.insert(unique.clone()) {
                n += 1;
                unique = format!("{stem}-{n}");
            }
            let input = if is_url {
                Input::Url(key.clone())
            } else {
                Input::File(PathBuf::from(&key))
            };
            inputs.push(Item {
                input,
                key,
                stem: unique,
            });
        };
        if let Input::Url(_) = Input::parse(&name)? {
            let stem = name
                .rsplit('/')
                .find(|s| !s.is_empty())
                .and_then(|s| s.split(['?', '#']).next())
                .map_or("url", |s| s.rsplit_once('.').map_or(s, |(stem, _)| stem))
                .to_owned();
            add(name, true, &stem);
            continue;
        }
        let path = Path::new(&name);
        if path.is_dir() {
            for file in media_files(path)? {
                let stem = stem_of(&file);
                add(absolute(&file)?, false, &stem);
            }
        } else {
            add(absolute(path)?, false, &stem_of(path));
        }
    }
    Ok(inputs)
}

/// The audio and video files directly in `dir`, in name order.
fn media_files(dir: &Path) -> Result<Vec<PathBuf>, Failure> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| Failure::usage(format!("cannot read {}: {e}", dir.display())))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase)
                .is_some_and(|e| {
                    AUDIO_EXTENSIONS.contains(&e.as_str()) || VIDEO_EXTENSIONS.contains(&e.as_str())
                })
        })
        .collect();
    files.sort();
    Ok(files)
}

fn stem_of(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("input")
        .to_owned()
}

fn absolute(path: &Path) -> Result<String, Failure> {
    std::path::absolute(path)
        .map(|p| p.display().to_string())
        .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))
}

/// After an interruption: each input as the journal now has it.
async fn interrupted<'a>(
    journal: &Arc<dyn Journal>,
    inputs: &'a [Item],
) -> Result<Vec<(&'a Item, Ended)>, Failure> {
    let mut results = Vec::new();
    for input in inputs {
        let latest = journal
            .latest_for(&input.key)
            .await
            .map_err(|e| Failure::service(&e))?;
        let ended = match latest.map(|e| e.state) {
            Some(EntryState::Finished {
                rid,
                outcome: OutcomeKind::Failed(status),
                ..
            }) => Ended::Failed { rid, status },
            Some(EntryState::Finished { rid, outcome, .. }) => Ended::Done { rid, outcome },
            Some(EntryState::Submitted { rid }) => Ended::Pending { rid },
            Some(EntryState::Intended) => Ended::Uncertain,
            _ => Ended::Error {
                message: "not submitted".to_owned(),
                rid: None,
            },
        };
        results.push((input, ended));
    }
    Ok(results)
}

/// Prints the summary and returns the worst exit status.
fn summarise(results: &[(&Item, Ended)], out_dir: &Path) -> u8 {
    let count = |f: fn(&Ended) -> bool| results.iter().filter(|(_, e)| f(e)).count();
    let done = count(|e| matches!(e, Ended::Done { .. }));
    let skipped = count(|e| matches!(e, Ended::AlreadyDone));
    let failed = count(|e| matches!(e, Ended::Failed { .. }));
    let pending = count(|e| matches!(e, Ended::Pending { .. }));
    let uncertain = count(|e| matches!(e, Ended::Uncertain));
    let errors = count(|e| matches!(e, Ended::Error { .. }));
    eprintln!(
        "daglo: {done} done, {skipped} already done, {failed} failed, {pending} pending, {uncertain} uncertain, {errors} errors; outputs in {}",
        out_dir.display()
    );
    for (input, ended) in results {
        match ended {
            Ended::Failed { rid, status } => eprintln!(
                "  failed     {}  {}  {}",
                safe(rid.as_str()),
                safe(status.as_str()),
                safe(&input.key)
            ),
            Ended::Pending { rid } => eprintln!("  pending    {}  {}", safe(rid.as_str()), safe(&input.key)),
            Ended::Uncertain => eprintln!(
                "  uncertain  (no rid)  {}  — may have been submitted; not resubmitted",
                safe(&input.key)
            ),
            Ended::Error { message, rid } => eprintln!(
                "  error      {}  {}  {}",
                safe(rid.as_ref().map_or("(no rid)", Rid::as_str)),
                safe(&input.key),
                safe(message)
            ),
            Ended::Done { rid, outcome } => eprintln!(
                "  done       {}  {outcome}  {} -> {}.txt",
                safe(rid.as_str()),
                safe(&input.key),
                safe(&input.stem)
            ),
            Ended::AlreadyDone => {}
        }
    }
    results.iter().map(|(_, e)| e.code()).max().unwrap_or(exit::OK)
}

/// The batch's journal: the SQLite file at `path`, or — with `--redis` — the journal on Redis
/// named after that path, which every process and machine running the batch shares.
fn open_journal(path: &Path, redis: Option<daglo::redis::RedisStore>) -> Result<Arc<dyn Journal>, Failure> {
    Ok(match redis {
        Some(store) => {
            let name = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
            Arc::new(daglo::redis::RedisJournal::new(
                store,
                &name.display().to_string(),
            ))
        }
        None => Arc::new(SqliteJournal::open(path).map_err(|e| Failure::usage(chain(&e)))?),
    })
}

/// `daglo jobs`: the journal as a table.
pub(crate) async fn jobs(args: Jobs) -> Result<u8, Failure> {
    let path = match (args.journal, args.out_dir) {
        (Some(journal), _) => journal,
        (None, Some(dir)) => dir.join(JOURNAL_FILE),
        (None, None) => return Err(Failure::usage("give --out-dir DIR or --journal FILE")),
    };
    let redis = match &args.redis {
        Some(url) => Some(setup::redis_store(url).await?),
        None if !path.exists() => return Err(Failure::usage(format!("no journal at {}", path.display()))),
        None => None,
    };
    let journal = open_journal(&path, redis)?;
    if let Some(days) = args.prune {
        if !days.is_finite() || days < 0.0 {
            return Err(Failure::usage("--prune takes a number of days, 0 or more"));
        }
        let before = std::time::Duration::try_from_secs_f64(days * 86_400.0)
            .ok()
            .and_then(|age| std::time::SystemTime::now().checked_sub(age))
            .unwrap_or(std::time::UNIX_EPOCH);
        let pruned = journal.prune(before).await.map_err(|e| Failure::service(&e))?;
        eprintln!("pruned {} ended entries older than {days} days", pruned.len());
    }
    let entries = journal.entries().await.map_err(|e| Failure::service(&e))?;
    println!(
        "{:>5}  {:<13}  {:<36}  {:<16}  input",
        "entry", "state", "rid", "outcome"
    );
    for entry in entries {
        let (state, rid, outcome) = match &entry.state {
            EntryState::Intended => ("uncertain", String::new(), String::new()),
            EntryState::NotSubmitted { reason } => ("not submitted", String::new(), reason.clone()),
            EntryState::Submitted { rid } => ("pending", rid.to_string(), String::new()),
            EntryState::Finished { rid, outcome, .. } => ("finished", rid.to_string(), outcome.to_string()),
            _ => ("?", String::new(), String::new()),
        };
        println!(
            "{:>5}  {state:<13}  {:<36}  {:<16}  {}",
            entry.id,
            safe(&rid),
            safe(&outcome),
            safe(&entry.intent.input)
        );
    }
    Ok(exit::OK)
}
