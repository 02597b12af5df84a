//! A durable job journal on embedded SQLite (bundled: nothing to install), implementing
//! [`daglo_core::Journal`].
//!
//! A Daglo job is billed the moment it is submitted, and its rid is the only handle to it. The
//! journal writes down the intent before the submit, the rid as soon as the answer arrives, and
//! the outcome at the end — each write committed before the call returns (SQLite's WAL with
//! `synchronous=FULL`) — so a process killed at any point leaves a journal that says exactly
//! what to do next: resume the pending jobs by rid, and report the uncertain ones (a submit that
//! may have created a job whose rid never came back) rather than submitting them again.
//!
//! It never stores tokens or callback credentials (the options are a digest), nor transcripts
//! (where the caller put the result, at most).
//!
//! ```
//! use daglo_core::{Intent, Journal, Rid};
//! use daglo_journal::SqliteJournal;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = std::env::temp_dir().join(format!("daglo-journal-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! let journal = SqliteJournal::open(dir.join("jobs.sqlite"))?;
//! let entry = journal.intend(Intent::new("meeting.wav", "sha256:…", "polling")).await?;
//! journal.submitted(entry, &Rid::new("6c1f…")).await?;
//! // … the process dies here; after the restart:
//! let recovery = SqliteJournal::open(dir.join("jobs.sqlite"))?.recover().await?;
//! assert_eq!(recovery.pending.len(), 1); // resume it by its rid
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```

mod secret;
mod sqlite;

pub use sqlite::SqliteJournal;
