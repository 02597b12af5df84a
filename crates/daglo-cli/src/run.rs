//! What the commands do: connect, pick the strategy, submit, wait, report.

use std::error::Error;
use std::process::ExitCode;
use std::time::Duration;

use daglo::redis::{RedisError, RedisStore, SharedBudgets};
use daglo::sim::{SimConfig, Simulator};
use daglo::{
    CallbackSettings, Client, HybridSettings, JobOptions, Outcome, Rid, SrtAnswer, StrategyConfig,
    TranscribeError, Transcriber,
};

use crate::args::{Output, Resume, Service, Strategy, Transcribe};
use crate::progress::Bar;

/// Exit statuses, documented in the README.
pub(crate) mod exit {
    /// The job produced a transcript or an empty result.
    pub(crate) const OK: u8 = 0;
    /// The job failed (input_error, file_error, transcript_error).
    pub(crate) const JOB_FAILED: u8 = 1;
    /// Bad input: arguments, options, file, missing token.
    pub(crate) const USAGE: u8 = 2;
    /// Gave up waiting; the job goes on (resume it).
    pub(crate) const GAVE_UP: u8 = 3;
    /// The service or the network failed.
    pub(crate) const SERVICE: u8 = 4;
}

/// A failure with the exit status it maps to.
pub(crate) struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: exit::USAGE,
            message: message.into(),
        }
    }

    pub(crate) fn service(error: &dyn Error) -> Self {
        Failure {
            code: exit::SERVICE,
            message: chain(error),
        }
    }

    pub(crate) fn report(self) -> ExitCode {
        eprintln!("daglo: {}", self.message);
        ExitCode::from(self.code)
    }
}

/// An error and its causes, one line. A cause whose text the message already ends with (errors
/// that show their cause in `Display`) is not repeated.
pub(crate) fn chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// What the service arguments connect to.
pub(crate) struct Connection {
    pub(crate) client: Client,
    /// The emulator, when `--emulate` is on (kept alive as long as the client is used).
    pub(crate) emulator: Option<Simulator>,
    /// The shared Redis, when `--redis` is given.
    pub(crate) redis: Option<RedisStore>,
}

/// The client — drawing from budgets shared through Redis with `--redis` — and the emulator it
/// talks to when `--emulate` is on.
pub(crate) async fn connect(service: &Service) -> Result<Connection, Failure> {
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
    let client = builder.build().map_err(|e| Failure::usage(chain(&e)))?;
    Ok(Connection {
        client,
        emulator,
        redis,
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
                if let Some(listen) = listen {
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

pub(crate) async fn transcriber(client: Client, config: &StrategyConfig) -> Result<Transcriber, Failure> {
    Transcriber::from_config(client, config)
        .await
        .map_err(|e| match e {
            daglo::StrategyError::Bind { .. } | daglo::StrategyError::Invalid(_) => Failure::usage(chain(&e)),
            _ => Failure::usage(chain(&e)),
        })
}

pub(crate) fn options(args: &Transcribe) -> Result<JobOptions, Failure> {
    let mut builder = JobOptions::builder();
    if let Some(language) = &args.language {
        builder = builder.language_code(language);
    }
    if let Some(speakers) = args.speakers {
        builder = builder.speaker_diarization(Some(speakers));
    }
    if let Some(max) = args.keywords {
        builder = builder.keyword_extraction(max);
    }
    if !args.boost.is_empty() {
        builder = builder.keyword_boost(args.boost.iter().cloned(), args.boost_strength);
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

/// What the input is: a URL the service fetches, or a local file to upload.
pub(crate) fn input_kind(input: &str) -> Result<bool, Failure> {
    match input.split_once("://") {
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") => {
            Ok(true)
        }
        Some((scheme, _))
            if !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c)) =>
        {
            Err(Failure::usage(format!(
                "`{input}`: the service fetches only http(s) URLs; download it and pass the file instead"
            )))
        }
        _ => Ok(false),
    }
}

/// Checks before anything is submitted (and billed) that the outputs can be written.
pub(crate) fn check_outputs(output: &Output) -> Result<(), Failure> {
    if let Some(Some(path)) = &output.srt {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Failure::usage(format!("--srt {}: cannot write there: {e}", path.display())))?;
    }
    Ok(())
}

/// The `daglo resume` command that picks this job up again, with the service it ran on.
fn resume_hint(rid: &Rid, service: &Service) -> String {
    if service.emulate {
        return format!(
            "the built-in emulator stops with this command, so job {rid} cannot be resumed; \
             run `daglo-sim` on its own and point --base-url at it to resume jobs"
        );
    }
    if service.base_url == daglo::DEFAULT_BASE_URL {
        format!("Resume with: daglo resume {rid}")
    } else {
        format!("Resume with: daglo resume {rid} --base-url {}", service.base_url)
    }
}

pub(crate) async fn transcribe(args: Transcribe) -> Result<u8, Failure> {
    if crate::batch::is_batch(&args) {
        return crate::batch::run(args).await;
    }
    if matches!(args.output.srt, Some(None)) {
        return Err(Failure::usage(
            "--srt needs a FILE for one input (or use --out-dir)",
        ));
    }
    let input = args.inputs.first().cloned().unwrap_or_default();
    let options = options(&args)?;
    let deadline = deadline(&args.output)?;
    let config = strategy(&args, deadline)?;
    let is_url = input_kind(&input)?;
    check_outputs(&args.output)?;
    let Connection {
        client,
        emulator: _emulator,
        ..
    } = connect(&args.service).await?;
    let transcriber = transcriber(client.clone(), &config).await?;

    // The deadline covers the whole command, the submit included.
    let started = tokio::time::Instant::now();
    let submit = async {
        if is_url {
            transcriber.submit_url(&input, &options).await
        } else {
            transcriber.submit_file(&input, &options).await
        }
    };
    let submitted = match deadline {
        None => submit.await,
        Some(limit) => tokio::time::timeout(limit, submit).await.map_err(|_| Failure {
            code: exit::SERVICE,
            message: format!(
                "the submit did not finish within --deadline ({}s); it may have created a job — \
                 check before submitting again",
                limit.as_secs_f64()
            ),
        })?,
    };
    let pending = submitted.map_err(|e| match &e {
        // Nothing reached the service: say what was wrong with the input itself.
        TranscribeError::Submit(inner @ (daglo::Error::Invalid(_) | daglo::Error::File { .. })) => {
            Failure::usage(chain(inner))
        }
        _ => Failure::service(&e),
    })?;
    let rid = pending.rid().clone();
    eprintln!("daglo: job {rid} submitted ({} strategy)", transcriber.strategy());

    let bar = Bar::new();
    let outcome = match deadline {
        None => transcriber.wait_with(pending, &bar).await,
        Some(limit) => {
            let left = limit.saturating_sub(started.elapsed());
            tokio::time::timeout(left, transcriber.wait_with(pending, &bar))
                .await
                .unwrap_or_else(|_| {
                    Ok(Outcome::GaveUp {
                        rid: rid.clone(),
                        last_status: None,
                        reason: daglo::GaveUpReason::Deadline(limit),
                    })
                })
        }
    };
    bar.finish();
    let code = report(&client, &rid, outcome, &args.output, &args.service).await;
    transcriber.shutdown().await;
    code
}

pub(crate) async fn resume(args: Resume) -> Result<u8, Failure> {
    if args.service.emulate {
        return Err(Failure::usage(
            "--emulate cannot resume: the built-in emulator's jobs end with the command that \
             started them; run `daglo-sim` on its own and use --base-url",
        ));
    }
    let deadline = deadline(&args.output)?;
    check_outputs(&args.output)?;
    let Connection {
        client,
        emulator: _emulator,
        ..
    } = connect(&args.service).await?;
    let rid = Rid::new(args.rid.trim());
    let mut config = StrategyConfig::polling();
    if let Some(deadline) = deadline {
        config = config.with_deadline(deadline);
    }
    let transcriber = transcriber(client.clone(), &config).await?;
    let bar = Bar::new();
    let outcome = transcriber.wait_with(transcriber.resume(rid.clone()), &bar).await;
    bar.finish();
    report(&client, &rid, outcome, &args.output, &args.service).await
}

/// Prints the outcome: the transcript (or JSON) on stdout, everything else on stderr.
async fn report(
    client: &Client,
    rid: &Rid,
    outcome: Result<Outcome, TranscribeError>,
    output: &Output,
    service: &Service,
) -> Result<u8, Failure> {
    match outcome.map_err(|e| Failure::service(&e))? {
        Outcome::Transcript { body, .. } => {
            if output.json {
                let text = serde_json::to_string_pretty(&body).map_err(|e| Failure::service(&e))?;
                println!("{text}");
            } else {
                println!("{}", body.full_transcript());
                for line in sentiment_lines(&body) {
                    println!("{line}");
                }
            }
            if let Some(Some(path)) = &output.srt {
                write_srt(client, rid, path).await?;
            }
            Ok(exit::OK)
        }
        Outcome::Empty { .. } => {
            eprintln!("daglo: job {rid} finished: no speech in the audio");
            Ok(exit::OK)
        }
        Outcome::Failed { status, message, .. } => {
            eprintln!(
                "daglo: job {rid} failed: {status}: {}",
                message.unwrap_or_default()
            );
            Ok(exit::JOB_FAILED)
        }
        Outcome::GaveUp { last_status, .. } => {
            let last = last_status
                .map(|s| format!(" (last seen: {s})"))
                .unwrap_or_default();
            eprintln!(
                "daglo: stopped waiting for job {rid}{last}; it goes on. {}",
                resume_hint(rid, service)
            );
            Ok(exit::GAVE_UP)
        }
        other => Err(Failure::service(&std::io::Error::other(format!(
            "unexpected outcome {other:?}"
        )))),
    }
}

async fn write_srt(client: &Client, rid: &Rid, path: &std::path::Path) -> Result<(), Failure> {
    match client.srt(rid).await.map_err(|e| Failure::service(&e))? {
        SrtAnswer::Ready(srt) => {
            std::fs::write(path, srt)
                .map_err(|e| Failure::usage(format!("cannot write {}: {e}", path.display())))?;
            eprintln!("daglo: subtitles written to {}", path.display());
            Ok(())
        }
        _ => {
            eprintln!("daglo: no subtitles for job {rid}");
            Ok(())
        }
    }
}

/// One line per channel that carries a sentiment: `sentiment: Positive (positive 75.0%, …)`.
pub(crate) fn sentiment_lines(body: &daglo::StatusBody) -> Vec<String> {
    let results = body.stt_results.as_deref().unwrap_or_default();
    let many = results.len() > 1;
    results
        .iter()
        .enumerate()
        .filter_map(|(index, result)| {
            let sentiment = result.sentiment.as_ref()?;
            let channel = if many {
                format!(" (channel {})", index + 1)
            } else {
                String::new()
            };
            let scores = result
                .sentiment_score
                .map(|s| {
                    let part = |name: &str, value: Option<f64>| value.map(|v| format!("{name} {v:.1}%"));
                    let parts: Vec<String> = [
                        part("positive", s.positive),
                        part("neutral", s.neutral),
                        part("negative", s.negative),
                    ]
                    .into_iter()
                    .flatten()
                    .collect();
                    format!(" ({})", parts.join(", "))
                })
                .unwrap_or_default();
            Some(format!("sentiment{channel}: {sentiment}{scores}"))
        })
        .collect()
}
