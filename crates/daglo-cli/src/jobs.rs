//! `daglo jobs`: a batch's journal as a table (and pruned).

use std::path::Path;
use std::sync::Arc;

use daglo::journal::{EntryState, Journal, SqliteJournal};

use crate::args::Jobs;
use crate::batch::JOURNAL_FILE;
use crate::failure::{Failure, chain, exit};
use crate::outputs::OUTPUT_LABEL;
use crate::setup;
use crate::terminal::safe;

/// The batch's journal: the SQLite file at `path`, or — with `--redis` — the journal on Redis
/// named after that path, which every process and machine running the batch shares.
pub(crate) fn open_journal(
    path: &Path,
    redis: Option<daglo::redis::RedisStore>,
) -> Result<Arc<dyn Journal>, Failure> {
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
pub(crate) async fn run(args: Jobs) -> Result<u8, Failure> {
    let path = match (args.journal.clone(), args.out_dir.clone()) {
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
        let mut pruned = 0;
        loop {
            let step = journal
                .prune(before, daglo::journal::PRUNE_STEP)
                .await
                .map_err(|e| Failure::service(&e))?
                .len();
            pruned += step;
            if step < daglo::journal::PRUNE_STEP {
                break;
            }
        }
        eprintln!(
            "pruned {} older than {days} days",
            crate::terminal::plural(pruned, "ended entry", "ended entries")
        );
    }
    // Where the outputs are: the output directory, or the journal file's.
    let out_dir = args
        .out_dir
        .clone()
        .or_else(|| path.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let entries = journal.entries().await.map_err(|e| Failure::service(&e))?;
    let rows: Vec<Row> = entries.iter().map(|entry| Row::of(entry, &out_dir)).collect();
    if args.json {
        let json: Vec<serde_json::Value> = rows.iter().map(Row::json).collect();
        let text = serde_json::to_string_pretty(&json).map_err(|e| Failure::service(&e))?;
        println!("{text}");
        return Ok(exit::OK);
    }
    println!(
        "{:>5}  {:<13}  {:<36}  {:<16}  {:>8}  {:<24}  input",
        "entry", "state", "rid", "outcome", "requests", "output"
    );
    for row in &rows {
        println!(
            "{:>5}  {:<13}  {:<36}  {:<16}  {:>8}  {:<24}  {}",
            row.entry,
            row.state,
            safe(&row.rid),
            safe(&row.outcome),
            row.requests,
            safe(row.output.as_deref().unwrap_or("-")),
            safe(&row.input)
        );
        if let Some(reason) = &row.reason {
            println!("{:>5}  {:<13}  {}", "", "", safe(reason));
        }
    }
    Ok(exit::OK)
}

/// One entry as `daglo jobs` shows it.
struct Row {
    entry: i64,
    state: &'static str,
    rid: String,
    outcome: String,
    /// Why it failed (Daglo's message) or was not submitted.
    reason: Option<String>,
    requests: u64,
    /// The output file, only when it exists.
    output: Option<String>,
    input: String,
    /// The service it was submitted to, when recorded.
    service: Option<String>,
    created_at: std::time::SystemTime,
    updated_at: std::time::SystemTime,
}

impl Row {
    fn of(entry: &daglo::journal::Entry, out_dir: &Path) -> Self {
        let (state, rid, outcome, reason) = match &entry.state {
            EntryState::Intended => ("uncertain", String::new(), String::new(), None),
            EntryState::NotSubmitted { reason } => (
                "not submitted",
                String::new(),
                String::new(),
                Some(reason.clone()),
            ),
            EntryState::Submitted { rid } => ("pending", rid.to_string(), String::new(), None),
            // A job Daglo failed ended, but not with a transcript: `failed`, its status beside
            // and its message below.
            EntryState::Finished {
                rid, outcome, result, ..
            } if !outcome.is_success() => (
                "failed",
                rid.to_string(),
                outcome.to_string(),
                crate::outputs::failure_reason(result.as_deref()),
            ),
            EntryState::Finished { rid, outcome, .. } => {
                ("finished", rid.to_string(), outcome.to_string(), None)
            }
            _ => ("?", String::new(), String::new(), None),
        };
        let output = entry
            .intent
            .labels
            .get(OUTPUT_LABEL)
            .map(|stem| format!("{stem}.txt"))
            .filter(|file| out_dir.join(file).is_file());
        Self {
            entry: entry.id.0,
            state,
            rid,
            outcome,
            reason,
            requests: entry.status_requests,
            output,
            input: entry.intent.input.clone(),
            service: entry.intent.labels.get(crate::batch::SERVICE_LABEL).cloned(),
            created_at: entry.intent.at,
            updated_at: entry.updated_at,
        }
    }

    fn json(&self) -> serde_json::Value {
        let text = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        serde_json::json!({
            "entry": self.entry,
            "state": self.state,
            "rid": text(&self.rid),
            "outcome": text(&self.outcome),
            "reason": self.reason,
            "status_requests": self.requests,
            "output": self.output,
            "input": self.input,
            "service": self.service,
            "created_at": daglo::jobs::rfc3339::format(self.created_at),
            "updated_at": daglo::jobs::rfc3339::format(self.updated_at),
        })
    }
}
