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
        eprintln!("pruned {pruned} ended entries older than {days} days");
    }
    let entries = journal.entries().await.map_err(|e| Failure::service(&e))?;
    println!(
        "{:>5}  {:<13}  {:<36}  {:<16}  {:>8}  {:<24}  input",
        "entry", "state", "rid", "outcome", "requests", "output"
    );
    for entry in entries {
        let (state, rid, outcome) = match &entry.state {
            EntryState::Intended => ("uncertain", String::new(), String::new()),
            EntryState::NotSubmitted { reason } => ("not submitted", String::new(), reason.clone()),
            EntryState::Submitted { rid } => ("pending", rid.to_string(), String::new()),
            // A job Daglo failed ended, but not with a transcript: `failed`, its status beside.
            EntryState::Finished { rid, outcome, .. } if !outcome.is_success() => {
                ("failed", rid.to_string(), outcome.to_string())
            }
            EntryState::Finished { rid, outcome, .. } => ("finished", rid.to_string(), outcome.to_string()),
            _ => ("?", String::new(), String::new()),
        };
        let output = entry
            .intent
            .labels
            .get(OUTPUT_LABEL)
            .map(|stem| format!("{stem}.txt"))
            .unwrap_or_default();
        println!(
            "{:>5}  {state:<13}  {:<36}  {:<16}  {:>8}  {:<24}  {}",
            entry.id,
            safe(&rid),
            safe(&outcome),
            entry.status_requests,
            safe(&output),
            safe(&entry.intent.input)
        );
    }
    Ok(exit::OK)
}
