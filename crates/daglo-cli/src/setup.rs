//! What every command sets up: the connection (client, emulator, Redis), the strategy, the
//! options, the inputs — shared by the single-input and the batch commands.

use std::path::PathBuf;
use std::time::Duration;

use daglo::redis::{RedisError, RedisStore, SharedBudgets};
use daglo::sim::{SimConfig, Simulator};
use daglo::strategy::{CallbackSettings, HybridSettings};
use daglo::{Client, JobOptions, Rid, StrategyConfig, TranscribeError, Transcriber};

use crate::args::{Output, Service, Strategy, Transcribe};
use crate::failure::{Failure, chain};

/// What the service arguments connect to.
pub(crate) struct Connection {
    pub(crate) client: Client,
    /// The emulator, when `--emulate` is on (kept alive as long as the client is used).
    pub(crate) emulator: Option<Simulator>,
    /// The shared Redis, when `--redis` is given.
    pub(crate) redis: Option<RedisStore>,
    /// Which service the jobs go to, as a batch's journal records it for each entry: the base
    /// URL, or `emulator <id>` for this run's own emulator (which a later run's never is).
    pub(crate) service: String,
}

/// The client — drawing from budgets shared through Redis with `--redis` — and the emulator it
/// talks to when `--emulate` is on.
///
/// With a `deadline`, a submit refused with `429` stops retrying at it and says that no job was
/// created (the client's submit deadline), rather than being cut off mid-way.
pub(crate) async fn connect(service: &Service, deadline: Option<Duration>) -> Result<Connection, Failure> {
    let redis = match &service.redis {
        Some(url) => Some(redis_store(url).await?),
        None => None,
    };
    let (builder, emulator) = if service.emulate {
        let config =
            SimConfig::default().processing_time(Duration::from_millis(service.emulate_processing_ms));
        let sim = Simulator::start(config).await.map_err(|e| Failure::service(&e))?;
        let builder = Client::builder().token(sim.token()).base_url(sim.base_url());
        (builder, Some(sim))
    } else {
        let token = std::env::var("DAGLO_API_TOKEN")
            .map_err(|_| Failure::usage("set DAGLO_API_TOKEN to your API token (or use --emulate)"))?;
        (
            Client::builder().token(token).base_url(service.base_url.clone()),
            None,
        )
    };
    let builder = match &redis {
        Some(store) => SharedBudgets::new(store, REDIS_ACCOUNT).apply(builder),
        None => builder,
    };
    let builder = match deadline {
        Some(deadline) => builder.submit_deadline(deadline),
        None => builder,
    };
    let client = builder.build().map_err(|e| Failure::usage(chain(&e)))?;
    let service_name = match &emulator {
        Some(_) => format!("emulator {}", daglo::JobId::random()),
        None => service.base_url.trim_end_matches('/').to_owned(),
    };
    Ok(Connection {
        client,
        emulator,
        redis,
        service: service_name,
    })
}

/// The account label the shared budgets are kept under. Processes on different Daglo accounts
/// use different Redis databases (`redis://host/1`).
const REDIS_ACCOUNT: &str = "default";

/// Connects to the Redis at `url`; a bad URL is a usage error, an unreachable Redis a service one.
pub(crate) async fn redis_store(url: &str) -> Result<RedisStore, Failure> {
    RedisStore::connect(url).await.map_err(|e| match e {
        RedisError::InvalidUrl { .. } => Failure::usage(format!("--redis: {}", chain(&e))),
        _ => Failure::service(&e),
    })
}

pub(crate) fn deadline(output: &Output) -> Result<Option<Duration>, Failure> {
    output
        .deadline
        .map(|secs| {
            Duration::try_from_secs_f64(secs)
                .map_err(|_| Failure::usage("--deadline must be a positive number of seconds"))
        })
        .transpose()
}

/// The strategy the arguments choose, as configuration.
pub(crate) fn strategy(args: &Transcribe, deadline: Option<Duration>) -> Result<StrategyConfig, Failure> {
    let callback = || -> Result<CallbackSettings, Failure> {
        match (args.listen, &args.public_url, args.service.emulate) {
            // The built-in emulator runs here and calls the receiver directly; a public URL it
            // would call instead leads nowhere, and the job would wait for callbacks that never come.
            (_, Some(_), true) => Err(Failure::usage(
                "--public-url is not used with --emulate: the built-in emulator calls the receiver on this machine",
            )),
            (Some(listen), Some(url), false) => Ok(CallbackSettings::new(listen, Some(url.clone()))),
            // The emulator runs on this machine: it can call the receiver directly.
            (listen, None, true) => {
                let mut settings = CallbackSettings::loopback();
                if listen.is_some() {
                    settings.listen = listen;
                }
                Ok(settings)
            }
            (None, _, false) => Err(Failure::usage("--listen is required with callbacks")),
            (Some(_), None, false) => Err(Failure::usage("--public-url is required with callbacks")),
        }
    };
    let config = match args.strategy {
        Strategy::Polling => StrategyConfig::polling(),
        Strategy::Callback => StrategyConfig::Callback(callback()?),
        Strategy::Hybrid => StrategyConfig::Hybrid(HybridSettings::new(callback()?)),
    };
    Ok(match deadline {
        Some(deadline) => config.with_deadline(deadline),
        None => config,
    })
}

/// The transcriber the configuration names; a setting it refuses (or an address it cannot
/// listen on) is bad input.
pub(crate) async fn transcriber(client: Client, config: &StrategyConfig) -> Result<Transcriber, Failure> {
    build(Transcriber::builder(client).config(config)).await
}

/// A transcriber from `builder`; a setting it refuses (or an address it cannot listen on) is
/// bad input.
pub(crate) async fn build(builder: daglo::TranscriberBuilder) -> Result<Transcriber, Failure> {
    builder.build().await.map_err(|e| Failure::usage(chain(&e)))
}

pub(crate) fn options(args: &Transcribe) -> Result<JobOptions, Failure> {
    let mut builder = JobOptions::builder();
    if let Some(language) = &args.language {
        builder = builder.language_code(language);
    }
    if let Some(hint) = args.speakers {
        builder = builder.speaker_diarization(hint);
    }
    if let Some(max) = args.keywords {
        builder = builder.keyword_extraction(max);
    }
    if !args.boost.is_empty() {
        builder = builder.keyword_boost(args.boost.iter().cloned(), args.boost_strength);
    } else if args.boost_strength.is_some() {
        return Err(Failure::usage("--boost-strength needs at least one --boost WORD"));
    }
    if let Some(channels) = args.channels {
        builder = builder.channel_count(channels);
    }
    if args.sentiment {
        builder = builder.sentiment_analysis(true);
    }
    builder.build().map_err(|e| {
        if e.field() == "sttConfig.language" {
            let codes: Vec<&str> = daglo::Language::ALL.iter().map(|l| l.code()).collect();
            Failure::usage(format!(
                "--language {}: not a language code; use one of {} (case-sensitive)",
                args.language.as_deref().unwrap_or_default(),
                codes.join(", ")
            ))
        } else {
            Failure::usage(e.to_string())
        }
    })
}

/// One input as named on the command line: a URL the service fetches, or a local file to
/// upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Input {
    /// A local file, uploaded (streamed).
    File(PathBuf),
    /// An http(s) URL the service fetches.
    Url(String),
}

impl Input {
    /// Reads what `input` names; a URL of another scheme is bad input.
    pub(crate) fn parse(input: &str) -> Result<Self, Failure> {
        match input.split_once("://") {
            Some((scheme, _))
                if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") =>
            {
                Ok(Self::Url(input.to_owned()))
            }
            Some((scheme, _))
                if !scheme.is_empty()
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c)) =>
            {
                Err(Failure::usage(format!(
                    "`{}`: the service fetches only http(s) URLs; download it and pass the file instead",
                    crate::terminal::safe(input)
                )))
            }
            _ => Ok(Self::File(PathBuf::from(input))),
        }
    }

    /// Submits it through `transcriber`.
    pub(crate) async fn submit(
        &self,
        transcriber: &Transcriber,
        options: &JobOptions,
    ) -> Result<daglo::Pending, TranscribeError> {
        match self {
            Self::Url(url) => transcriber.submit_url(url, options).await,
            Self::File(path) => transcriber.submit_file(path, options).await,
        }
    }
}

/// How long subtitles answered `202` (not ready yet) are asked for again when no `--deadline`
/// is given.
pub(crate) const SRT_WAIT: Duration = Duration::from_secs(600);

/// Checks before anything is submitted (and billed) that the outputs can be written — without
/// creating them: a file is made only when there is something to write.
pub(crate) fn check_outputs(output: &Output) -> Result<(), Failure> {
    for (flag, file) in [("--srt", &output.srt), ("--vtt", &output.vtt)] {
        if let Some(Some(path)) = file {
            writable(path)
                .map_err(|e| Failure::usage(format!("{flag} {}: cannot write there: {e}", path.display())))?;
        }
    }
    Ok(())
}

/// Whether `path` can be written: an existing file opened for writing (not truncated), or else
/// a probe file created and removed beside it.
fn writable(path: &std::path::Path) -> std::io::Result<()> {
    if path.exists() {
        return std::fs::OpenOptions::new().append(true).open(path).map(drop);
    }
    let probe = probe_path(path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}

/// A file name beside `path` that no one else uses.
fn probe_path(path: &std::path::Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.daglo-{}.tmp", std::process::id()))
}

/// Writes `contents` to `path` whole: to a temporary file beside it, synced, then renamed into
/// place — so a reader never sees half a file, and a failed write leaves no partial one.
pub(crate) fn write_whole(path: &std::path::Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let temporary = probe_path(path);
    let written = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

/// The `daglo resume` command that picks this job up again, with the service it ran on.
pub(crate) fn resume_hint(rid: &Rid, service: &Service) -> String {
    let rid = crate::terminal::safe(rid.as_str());
    if service.emulate {
        return format!(
            "the built-in emulator stops with this command, so job {rid} cannot be resumed; \
             run `daglo-sim` on its own and point --base-url at it to resume jobs"
        );
    }
    if service.base_url == daglo::client::DEFAULT_BASE_URL {
        format!("Resume with: daglo resume {rid}")
    } else {
        format!("Resume with: daglo resume {rid} --base-url {}", service.base_url)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::args::{Cli, Command};

    fn options_of(args: &[&str]) -> serde_json::Value {
        let cli = Cli::try_parse_from([&["daglo", "transcribe", "a.wav"], args].concat()).unwrap();
        let Command::Transcribe(transcribe) = cli.command else {
            panic!("a transcribe command")
        };
        serde_json::to_value(options(&transcribe).unwrap_or_else(|f| panic!("{}", f.message))).unwrap()
    }

    #[test]
    fn left_out_flags_leave_the_service_its_defaults() {
        let json = options_of(&["--boost", "다글로"]);
        let boost = &json["sttConfig"]["keywordBoost"];
        assert_eq!(boost["enable"], true);
        assert!(boost.get("boost").is_none(), "no strength sent: {json}");
        assert_eq!(
            options_of(&["--boost", "a", "--boost-strength", "12"])["sttConfig"]["keywordBoost"]["boost"],
            12
        );

        let speakers = &options_of(&["--speakers"])["sttConfig"]["speakerDiarization"];
        assert_eq!(speakers["enable"], true);
        assert!(
            speakers.get("speakerCountHint").is_none(),
            "no hint sent: {speakers}"
        );
        assert_eq!(
            options_of(&["--speakers", "3"])["sttConfig"]["speakerDiarization"]["speakerCountHint"],
            3
        );
        assert_eq!(
            options_of(&[]),
            serde_json::json!({}),
            "nothing asked, nothing sent"
        );
    }
}
