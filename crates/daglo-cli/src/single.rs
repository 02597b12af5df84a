//! One input: submit it, follow it with a progress bar, report its outcome.
use daglo::client::SrtAnswer;
use daglo::{Client, Outcome, Rid, StrategyConfig, TranscribeError};

use crate::args::{Output, Resume, Service, Transcribe};
use crate::failure::{Failure, chain, exit};
use crate::progress::Bar;
use crate::setup::{
    Connection, Input, check_outputs, connect, deadline, options, resume_hint, strategy, transcriber,
};
use crate::terminal::safe;

/// How long past `--deadline` a submit may still answer before the command stops waiting for it.
const SUBMIT_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// `daglo transcribe` with one input.
pub(crate) async fn transcribe(args: Transcribe) -> Result<u8, Failure> {
    for (flag, file) in [("--srt", &args.output.srt), ("--vtt", &args.output.vtt)] {
        if matches!(file, Some(None)) {
            return Err(Failure::usage(format!(
                "{flag} needs a FILE for one input (or use --out-dir)"
            )));
        }
    }
    let input = Input::parse(args.inputs.first().map_or("", String::as_str))?;
    let options = options(&args)?;
    let deadline = deadline(&args.output)?;
    let config = strategy(&args, deadline)?;
    check_outputs(&args.output)?;
    let Connection {
        client,
        emulator: _emulator,
        ..
    } = connect(&args.service, deadline).await?;
    let transcriber = transcriber(client.clone(), &config).await?;

    // The deadline covers the whole command, the submit included.
    let started = tokio::time::Instant::now();
    let sent_at = std::time::SystemTime::now();
    let submit = input.submit(&transcriber, &options);
    let submitted = match deadline {
        None => submit.await,
        // The client stops retrying refusals at the deadline itself (and says no job was
        // created); this bound, a little later, is for a submit that hangs after sending.
        Some(limit) => tokio::time::timeout(limit + SUBMIT_GRACE, submit)
            .await
            .map_err(|_| Failure {
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
        TranscribeError::Submit(
            inner @ (daglo::client::Error::Invalid(_) | daglo::client::Error::File { .. }),
        ) => Failure::usage(chain(inner)),
        // Say how to check: the job, if any, was created about when the submit went out.
        _ if e.may_have_created_job() => Failure {
            code: exit::SERVICE,
            message: format!(
                "{}; the submit went out at {}: look in the Daglo console for a job created then \
                 before running this again",
                crate::terminal::escaped(&chain(&e)),
                daglo::jobs::rfc3339::format(sent_at)
            ),
        },
        _ => Failure::service(&e),
    })?;
    let rid = pending.rid().clone();
    eprintln!(
        "daglo: job {} submitted ({} strategy)",
        safe(rid.as_str()),
        transcriber.strategy()
    );

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
                        reason: daglo::delivery::GaveUpReason::Deadline(limit),
                    })
                })
        }
    };
    bar.finish();
    let srt_within = deadline.map_or(crate::setup::SRT_WAIT, |limit| {
        limit.saturating_sub(started.elapsed())
    });
    let code = report(&client, &rid, outcome, &args.output, &args.service, srt_within).await;
    transcriber.shutdown().await;
    code
}

/// `daglo resume RID`.
pub(crate) async fn resume(args: Resume) -> Result<u8, Failure> {
    if args.rid.trim().is_empty() {
        return Err(Failure::usage("the rid to resume must not be blank"));
    }
    if args.service.emulate {
        return Err(Failure::usage(
            "--emulate cannot resume: the built-in emulator's jobs end with the command that \
             started them; run `daglo-sim` on its own and use --base-url",
        ));
    }
    let started = tokio::time::Instant::now();
    let deadline = deadline(&args.output)?;
    check_outputs(&args.output)?;
    let Connection {
        client,
        emulator: _emulator,
        ..
    } = connect(&args.service, None).await?;
    let rid = Rid::new(args.rid.trim());
    let mut config = StrategyConfig::polling();
    if let Some(deadline) = deadline {
        config = config.with_deadline(deadline);
    }
    let transcriber = transcriber(client.clone(), &config).await?;
    let bar = Bar::new();
    let outcome = transcriber.wait_with(transcriber.resume(rid.clone()), &bar).await;
    bar.finish();
    let srt_within = deadline.map_or(crate::setup::SRT_WAIT, |limit| {
        limit.saturating_sub(started.elapsed())
    });
    report(&client, &rid, outcome, &args.output, &args.service, srt_within).await
}

/// Prints the outcome: the transcript (or JSON) on stdout, everything else on stderr.
async fn report(
    client: &Client,
    rid: &Rid,
    outcome: Result<Outcome, TranscribeError>,
    output: &Output,
    service: &Service,
    srt_within: std::time::Duration,
) -> Result<u8, Failure> {
    match outcome.map_err(|e| Failure::service(&e))? {
        Outcome::Transcript { body, .. } => {
            if output.json {
                let text = serde_json::to_string_pretty(&body).map_err(|e| Failure::service(&e))?;
                println!("{text}");
            } else {
                println!("{}", transcript_text(&body).trim_end());
                for line in sentiment_lines(&body) {
                    println!("{line}");
                }
            }
            if let Some(Some(path)) = &output.vtt {
                write_subtitles(path, &body.to_vtt())?;
            }
            if let Some(Some(path)) = &output.srt {
                if body.has_speakers() {
                    // Daglo's subtitles name no speaker: made here from the word timings.
                    write_subtitles(path, &body.to_srt())?;
                } else {
                    return write_srt(client, rid, path, srt_within).await;
                }
            }
            Ok(exit::OK)
        }
        Outcome::Empty { .. } => {
            eprintln!(
                "daglo: job {} finished: no speech in the audio",
                safe(rid.as_str())
            );
            Ok(exit::OK)
        }
        Outcome::Failed { status, message, .. } => {
            eprintln!(
                "daglo: job {} failed: {}: {}",
                safe(rid.as_str()),
                safe(status.as_str()),
                safe(&message.unwrap_or_default())
            );
            Ok(exit::JOB_FAILED)
        }
        Outcome::GaveUp { last_status, .. } => {
            let last = last_status
                .map(|s| format!(" (last seen: {})", safe(s.as_str())))
                .unwrap_or_default();
            eprintln!(
                "daglo: stopped waiting for job {}{last}; it goes on. {}",
                safe(rid.as_str()),
                resume_hint(rid, service)
            );
            Ok(exit::GAVE_UP)
        }
        other => Err(Failure::service(&std::io::Error::other(format!(
            "unexpected outcome {other:?}"
        )))),
    }
}

/// The transcript as text: speaker turns (`Speaker 1: …`) when the result names speakers (or
/// has several channels), else the whole text.
pub(crate) fn transcript_text(body: &daglo::StatusBody) -> String {
    body.transcript_by_speaker()
        .unwrap_or_else(|| body.full_transcript())
}

/// Writes subtitles made here, whole.
fn write_subtitles(path: &std::path::Path, text: &str) -> Result<(), Failure> {
    crate::setup::write_whole(path, text.as_bytes())
        .map_err(|e| Failure::usage(format!("cannot write {}: {e}", path.display())))?;
    eprintln!("daglo: subtitles written to {}", path.display());
    Ok(())
}

/// Asks for the subtitles until they are ready (`202` is "ask again"), within `within`; the file
/// is created only when there is something to write, and written whole (a temporary file
/// renamed into place).
async fn write_srt(
    client: &Client,
    rid: &Rid,
    path: &std::path::Path,
    within: std::time::Duration,
) -> Result<u8, Failure> {
    match client
        .srt_ready(rid, within)
        .await
        .map_err(|e| Failure::service(&e))?
    {
        SrtAnswer::Ready(srt) => {
            crate::setup::write_whole(path, srt.as_bytes())
                .map_err(|e| Failure::usage(format!("cannot write {}: {e}", path.display())))?;
            eprintln!("daglo: subtitles written to {}", path.display());
            Ok(exit::OK)
        }
        SrtAnswer::Empty => {
            eprintln!(
                "daglo: no subtitles for job {}: its result is empty; {} not written",
                safe(rid.as_str()),
                path.display()
            );
            Ok(exit::OK)
        }
        _ => {
            eprintln!(
                "daglo: the subtitles of job {} were not ready within {}s; {} not written. Ask again \
                 later with `daglo resume {} --srt {}`",
                safe(rid.as_str()),
                within.as_secs(),
                path.display(),
                safe(rid.as_str()),
                path.display()
            );
            Ok(exit::GAVE_UP)
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
