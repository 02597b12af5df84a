//! The command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Speech-to-text with the Daglo asynchronous API.
///
/// The API token is read from the environment variable DAGLO_API_TOKEN (never from a flag, so it
/// stays out of shell history). With --emulate, a local emulator of the service runs in-process
/// and no token or network is needed.
#[derive(Debug, Parser)]
#[command(name = "daglo", version, after_help = EXIT_STATUSES)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    /// How the library's log lines are written to stderr: `text`, only when RUST_LOG asks for
    /// them (RUST_LOG=debug, say); `json`, one JSON object a line, at RUST_LOG's level (info
    /// by default) — for a log collector.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines, when RUST_LOG is set.
    Text,
    /// One JSON object a line.
    Json,
}

/// The exit statuses, shown by `--help`.
const EXIT_STATUSES: &str = "Exit statuses:
  0  a transcript, or an empty result (no speech)
  1  the job failed (input_error, file_error, transcript_error)
  2  bad input: arguments, options, file, missing token
  3  stopped waiting (--deadline); the job goes on: resume it by its rid
  4  the service or the network failed
A batch exits with the worst of its inputs' statuses (an uncertain or not-submitted input
counts as 4, an output without a journal entry as 2).";

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Transcribe a local audio/video file or a public http(s) URL, showing progress.
    #[command(after_help = EXIT_STATUSES)]
    Transcribe(Box<Transcribe>),
    /// Wait for a job submitted earlier, by its rid (polling).
    #[command(after_help = EXIT_STATUSES)]
    Resume(Resume),
    /// Print a batch's job journal as a table.
    Jobs(Jobs),
    /// Run the HTTP service: submit, look up, follow and fetch jobs from any language, with
    /// the Daglo callback receiver, health, readiness and metrics on one port (crates/daglo-serve/docs/serve.md).
    /// The Daglo token is read from DAGLO_API_TOKEN only; DAGLO_* variables override the file.
    Serve(Serve),
    /// The Daglo callbacks a running `daglo serve` wrote down for a job: list them, or replay
    /// them through the service's receiver (the same checks, state machine and confirmation).
    #[command(subcommand)]
    Callbacks(Callbacks),
    /// Run the Daglo emulator as a standalone server (what the `daglo-sim` binary runs), for
    /// the examples and your own tests: `daglo sim --port 8080`; `daglo sim --help` for its
    /// flags.
    #[command(disable_help_flag = true)]
    Sim(Sim),
}

#[derive(Debug, Args)]
pub(crate) struct Sim {
    /// The emulator's flags (`--host`, `--port`, `--token`, `--seed`, `--processing-ms`,
    /// `--rate-limit`, `--lenient`, `--help`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "FLAGS")]
    pub(crate) args: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Callbacks {
    /// List the callbacks received for a job: time, status, progress, answer.
    List(CallbacksArgs),
    /// Apply a job's callbacks again, oldest first, and print what each did.
    Replay(CallbacksArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CallbacksArgs {
    /// The job's id (as `POST /v1/jobs` answered it).
    #[arg(long, value_name = "ID")]
    pub(crate) job: String,
    /// The service's URL. Its API key is read from DAGLO_SERVE_API_KEY only (a flag would
    /// stay in shell history).
    #[arg(
        long,
        value_name = "URL",
        env = "DAGLO_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    pub(crate) server: String,
}

#[derive(Debug, Args)]
pub(crate) struct Serve {
    /// The configuration file (TOML; every key in crates/daglo-serve/docs/serve.md). Without one, the defaults
    /// and the DAGLO_* variables.
    #[arg(long, value_name = "FILE", conflicts_with = "emulate")]
    pub(crate) config: Option<PathBuf>,
    /// Try it: serve on 127.0.0.1:8080 (DAGLO_LISTEN to change) against an emulator of Daglo
    /// in this process — no token, a throw-away API key printed at start, data in a temporary
    /// directory removed at exit. Nothing reaches Daglo.
    #[arg(long)]
    pub(crate) emulate: bool,
}

#[derive(Debug, Args)]
pub(crate) struct Jobs {
    /// The batch's output directory (its journal is daglo-journal.sqlite there).
    #[arg(long, value_name = "DIR", required_unless_present = "journal")]
    pub(crate) out_dir: Option<PathBuf>,
    /// The journal file itself.
    #[arg(long, value_name = "FILE")]
    pub(crate) journal: Option<PathBuf>,
    /// Read the batch's journal from this Redis (as `transcribe --redis` wrote it).
    #[arg(long, value_name = "URL", env = "DAGLO_REDIS_URL", hide_env_values = true)]
    pub(crate) redis: Option<String>,
    /// Remove the entries that ended (finished, or not submitted) more than DAYS days ago,
    /// then print what is left. Running and uncertain entries are kept. A rerun of the batch
    /// no longer knows a pruned input: it submits it again.
    #[arg(long, value_name = "DAYS", allow_negative_numbers = true)]
    pub(crate) prune: Option<f64>,
    /// Print the entries as a JSON array (entry, state, rid, outcome, reason, status_requests,
    /// output — only when the file exists —, input, service, created_at, updated_at).
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct Transcribe {
    /// Files, directories (their audio and video files) or http(s) URLs the service can fetch.
    /// Several inputs, a directory or --from-list make a batch, written to --out-dir.
    #[arg(value_name = "INPUT", required_unless_present = "from_list")]
    pub(crate) inputs: Vec<String>,
    /// Read more inputs from this file, one per line (blank lines and # comments skipped).
    #[arg(long, value_name = "FILE")]
    pub(crate) from_list: Option<PathBuf>,
    /// Batch: write each input's transcript (and .srt/.json when asked) here, and keep the job
    /// journal here; rerunning the same command resumes.
    #[arg(long, value_name = "DIR")]
    pub(crate) out_dir: Option<PathBuf>,
    /// Batch: at most this many jobs at once.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub(crate) concurrency: usize,
    /// Batch: the job journal (default: daglo-journal.sqlite in --out-dir).
    #[arg(long, value_name = "FILE")]
    pub(crate) journal: Option<PathBuf>,
    /// Batch: submit inputs whose output exists although the journal has no entry for them
    /// (by default they are reported and not submitted: they may be billed already).
    #[arg(long)]
    pub(crate) force: bool,
    /// Batch: submit again the inputs whose earlier job failed (by default a rerun reports them
    /// failed, with Daglo's reason, and submits nothing for them).
    #[arg(long)]
    pub(crate) retry_failed: bool,
    /// Batch: stop submitting after this many submits in a row failed on the service's side
    /// (5xx, or no answer) — each may have created a billed job. A refused token or account
    /// (401, 403) stops submitting at once.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub(crate) max_server_errors: u32,
    /// How to learn the result.
    #[arg(long, value_enum, default_value_t = Strategy::Polling)]
    pub(crate) strategy: Strategy,
    /// Where the callback receiver listens (callback and hybrid strategies).
    #[arg(long)]
    pub(crate) listen: Option<SocketAddr>,
    /// The URL the service calls back, reaching the receiver (https, through your proxy).
    #[arg(long)]
    pub(crate) public_url: Option<String>,
    /// Recognition language, e.g. ko-KR, en-US, mixed.
    #[arg(long)]
    pub(crate) language: Option<String>,
    /// Label speakers; a COUNT (at least 2) hints how many there are, and without one the
    /// service decides.
    // Clap's shape for a flag with an optional value: absent, `--speakers`, `--speakers 3`.
    #[allow(clippy::option_option)]
    #[arg(long, value_name = "COUNT", num_args = 0..=1)]
    pub(crate) speakers: Option<Option<u32>>,
    /// Extract up to this many keywords.
    #[arg(long, value_name = "MAX")]
    pub(crate) keywords: Option<u32>,
    /// A word to favour in recognition (repeatable).
    #[arg(long = "boost", value_name = "WORD")]
    pub(crate) boost: Vec<String>,
    /// How strongly to favour the --boost words, 1 to 15 (left out: the service's default, 5).
    #[arg(long, value_name = "1-15")]
    pub(crate) boost_strength: Option<u32>,
    /// Recognise each of this many channels separately (1 or 2).
    #[arg(long)]
    pub(crate) channels: Option<u32>,
    /// Ask for sentiment analysis (printed after each channel's transcript).
    #[arg(long)]
    pub(crate) sentiment: bool,
    #[command(flatten)]
    pub(crate) output: Output,
    #[command(flatten)]
    pub(crate) service: Service,
}

#[derive(Debug, Args)]
pub(crate) struct Resume {
    /// The job's rid, as printed when it was submitted.
    pub(crate) rid: String,
    #[command(flatten)]
    pub(crate) output: Output,
    #[command(flatten)]
    pub(crate) service: Service,
}

#[derive(Debug, Args)]
pub(crate) struct Output {
    /// Also write SRT subtitles: to this FILE, or in a batch beside each transcript. With
    /// diarization, made from the word timings with each cue's speaker (Daglo's name none).
    #[arg(long, value_name = "FILE", num_args = 0..=1)]
    // clap's shape for a flag whose value is optional: absent, `--srt`, `--srt FILE`.
    #[allow(clippy::option_option)]
    pub(crate) srt: Option<Option<PathBuf>>,
    /// Also write WebVTT subtitles, made from the word timings (speakers voiced when
    /// diarization was asked): to this FILE, or in a batch beside each transcript.
    #[arg(long, value_name = "FILE", num_args = 0..=1)]
    #[allow(clippy::option_option)]
    pub(crate) vtt: Option<Option<PathBuf>>,
    /// Print the whole final result as JSON instead of the transcript text (in a batch: also
    /// write it beside each transcript).
    #[arg(long)]
    pub(crate) json: bool,
    /// Stop waiting after this many seconds (the job goes on; resume it later).
    #[arg(long, value_name = "SECONDS")]
    pub(crate) deadline: Option<f64>,
}

#[derive(Debug, Args)]
pub(crate) struct Service {
    /// The service's address.
    #[arg(long, default_value = daglo::client::DEFAULT_BASE_URL)]
    pub(crate) base_url: String,
    /// Run against a local emulator of the service instead (no token, no network).
    #[arg(long)]
    pub(crate) emulate: bool,
    /// With --emulate: how long each job takes, in milliseconds.
    #[arg(long, default_value_t = 3000, value_name = "MS")]
    pub(crate) emulate_processing_ms: u64,
    /// Share the rate budgets (and a batch's journal) through this Redis
    /// (redis://[user:password@]host:port[/db]), so many daglo processes on one account
    /// cooperate instead of each assuming the whole 20 requests/s.
    #[arg(long, value_name = "URL", env = "DAGLO_REDIS_URL", hide_env_values = true)]
    pub(crate) redis: Option<String>,
    /// Serve the library's metrics in Prometheus's text format at http://ADDR/metrics while
    /// the command runs (port 0 picks one; the address is printed). See docs/metrics.md.
    #[arg(long, value_name = "ADDR")]
    pub(crate) metrics_listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Strategy {
    /// Ask the service until the job ends (rate-limited, adaptive).
    Polling,
    /// Receive the service's callbacks (needs a reachable receiver).
    Callback,
    /// Callbacks, with polling as the safety net.
    Hybrid,
}
