//! The `daglo` binary as a user runs it, against its built-in emulator.

use crate::common::*;
use std::process::Command;

#[test]
fn transcribes_a_file_with_json_and_subtitles() {
    let srt = temp("out.srt");
    let out = daglo(&[
        "transcribe",
        SAMPLE,
        "--emulate",
        "--emulate-processing-ms",
        "300",
        "--speakers",
        "2",
        "--json",
        "--srt",
        srt.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["status"], "transcribed");
    assert!(body["sttResults"][0]["words"][0]["speaker"].is_string());
    let subtitles = std::fs::read_to_string(&srt).unwrap();
    assert!(subtitles.starts_with("1\n00:00:00,300 --> "), "{subtitles}");
    // Diarization asked: each cue names its speaker.
    assert!(
        subtitles
            .lines()
            .nth(2)
            .is_some_and(|l| l.starts_with("Speaker ")),
        "{subtitles}"
    );
    let _ = std::fs::remove_file(srt);
    assert!(text(&out.stderr).contains("submitted (polling strategy)"));
}

#[test]
fn speakers_show_in_the_text_and_the_webvtt_subtitles() {
    let vtt = temp("turns.vtt");
    let out = daglo(&[
        "transcribe",
        SAMPLE,
        "--emulate",
        "--emulate-processing-ms",
        "200",
        "--speakers",
        "2",
        "--vtt",
        vtt.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let turns: Vec<&str> = stdout.lines().filter(|l| !l.is_empty()).collect();
    assert!(!turns.is_empty(), "{stdout}");
    assert!(
        turns
            .iter()
            .all(|l| l.starts_with("Speaker ") && l.contains(": ")),
        "{stdout}"
    );
    let subtitles = std::fs::read_to_string(&vtt).unwrap();
    assert!(
        subtitles.starts_with("WEBVTT\n\n1\n00:00:00.300 --> "),
        "{subtitles}"
    );
    assert!(subtitles.contains("\n<v Speaker "), "{subtitles}");
    assert!(text(&out.stderr).contains(&format!("subtitles written to {}", vtt.display())));
    let _ = std::fs::remove_file(vtt);

    // Without diarization the text is the transcript as it came, no labels.
    let out = daglo(&[
        "transcribe",
        SAMPLE,
        "--emulate",
        "--emulate-processing-ms",
        "200",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("Speaker "), "{}", text(&out.stdout));
    // One input needs a file to write to.
    let out = daglo(&["transcribe", SAMPLE, "--emulate", "--vtt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--vtt needs a FILE"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn callbacks_and_hybrid_work_against_the_emulator() {
    for strategy in ["callback", "hybrid"] {
        let out = daglo(&[
            "transcribe",
            SAMPLE,
            "--emulate",
            "--emulate-processing-ms",
            "300",
            "--strategy",
            strategy,
        ]);
        assert_eq!(out.status.code(), Some(0), "{strategy}: {}", text(&out.stderr));
        assert!(
            !text(&out.stdout).trim().is_empty(),
            "{strategy}: a transcript on stdout"
        );
        assert!(text(&out.stderr).contains(&format!("({strategy} strategy)")));
    }
}

#[test]
fn exit_statuses_tell_what_happened() {
    let failed = daglo(&[
        "transcribe",
        "https://a.example/file-error.wav",
        "--emulate",
        "--emulate-processing-ms",
        "50",
    ]);
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed.stderr));
    assert!(text(&failed.stderr).contains("file_error"));

    let gave_up = daglo(&[
        "transcribe",
        SAMPLE,
        "--emulate",
        "--emulate-processing-ms",
        "60000",
        "--deadline",
        "0.5",
    ]);
    assert_eq!(gave_up.status.code(), Some(3), "{}", text(&gave_up.stderr));
    assert!(
        text(&gave_up.stderr).contains("cannot be resumed"),
        "an emulated job ends with the command, and the hint says so: {}",
        text(&gave_up.stderr)
    );

    let silent = temp("silent.wav");
    std::fs::write(&silent, vec![0u8; 32_000]).unwrap();
    let empty = daglo(&[
        "transcribe",
        silent.to_str().unwrap(),
        "--emulate",
        "--emulate-processing-ms",
        "50",
    ]);
    let _ = std::fs::remove_file(silent);
    assert_eq!(empty.status.code(), Some(0));
    assert!(text(&empty.stderr).contains("no speech"));
}

#[test]
fn bad_input_is_exit_2_and_names_the_problem() {
    let unwritable = "/nonexistent-dir/out.srt";
    let cases: [(&[&str], &str); 11] = [
        (&["transcribe", "notes.txt", "--emulate"], ".txt"),
        (
            &["transcribe", SAMPLE, "--emulate", "--language", "en"],
            "ko-KR, en-US",
        ),
        (
            &["transcribe", SAMPLE, "--emulate", "--channels", "3"],
            "channelCount",
        ),
        (&["transcribe", SAMPLE], "DAGLO_API_TOKEN"),
        (
            &["transcribe", "ftp://a.example/a.wav", "--emulate"],
            "only http(s) URLs",
        ),
        (
            &["transcribe", "/no/such/file.wav", "--emulate"],
            "cannot read `/no/such/file.wav`",
        ),
        // Checked before anything is submitted (and billed).
        (
            &["transcribe", SAMPLE, "--emulate", "--srt", unwritable],
            "--srt /nonexistent-dir/out.srt",
        ),
        (
            &[
                "transcribe",
                SAMPLE,
                "--emulate",
                "--strategy",
                "callback",
                "--public-url",
                "https://hooks.example.com/d",
            ],
            "--public-url is not used with --emulate",
        ),
        (&["resume", "r-1", "--emulate"], "--emulate cannot resume"),
        (&["resume", " "], "must not be blank"),
        (&["resume", ""], "must not be blank"),
    ];
    for (args, named) in cases {
        let out = daglo(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
        let stderr = text(&out.stderr);
        assert!(stderr.contains(named), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("submitted"),
            "{args:?}: nothing was submitted: {stderr}"
        );
        assert!(!stderr.contains("the submit failed"), "{args:?}: {stderr}");
    }
}

#[test]
fn help_lists_the_exit_statuses_and_outputs_say_where_they_went() {
    let help = daglo(&["transcribe", "--help"]);
    let help = text(&help.stdout);
    assert!(
        help.contains("Exit statuses:") && help.contains("3  stopped waiting"),
        "{help}"
    );
    let srt = temp("where.srt");
    let out = daglo(&[
        "transcribe",
        SAMPLE,
        "--emulate",
        "--emulate-processing-ms",
        "200",
        "--srt",
        srt.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(&format!("subtitles written to {}", srt.display())));
    let _ = std::fs::remove_file(srt);
}

#[test]
fn the_resume_hint_keeps_the_service_it_ran_on() {
    // A local service whose job never ends: submits get rid r-1, status is always running.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut stream in listener.incoming().flatten() {
            let mut request = Vec::new();
            let mut buffer = [0u8; 65536];
            // Read the head (and whatever body came with it); answer by method.
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buffer[..n]),
                }
            }
            let body = if request.starts_with(b"POST") {
                r#"{"rid": "r-1"}"#
            } else {
                r#"{"rid": "r-1", "status": "transcribing", "progress": 5}"#
            };
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    let out = Command::new(env!("CARGO_BIN_EXE_daglo"))
        .args([
            "transcribe",
            "https://a.example/a.wav",
            "--base-url",
            &base_url,
            "--deadline",
            "1",
        ])
        .env("DAGLO_API_TOKEN", "tok-cli-hint")
        .output()
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let hint = format!("daglo resume r-1 --base-url {base_url}");
    assert!(text(&out.stderr).contains(&hint), "{}", text(&out.stderr));
}

#[test]
fn a_service_failure_is_exit_4_and_never_shows_the_token() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let out = Command::new(env!("CARGO_BIN_EXE_daglo"))
        .args(["transcribe", "https://a.example/a.wav", "--base-url", &dead])
        .env("DAGLO_API_TOKEN", "tok-cli-secret-123")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("tok-cli-secret-123"));
    assert!(!text(&out.stdout).contains("tok-cli-secret-123"));
}

#[test]
fn the_deadline_covers_a_submit_that_never_answers() {
    // A service that accepts the connection, reads the request and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_daglo"))
        .args(["transcribe", SAMPLE, "--base-url", &base_url, "--deadline", "1"])
        .env("DAGLO_API_TOKEN", "tok-cli-deadline")
        .output()
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("did not finish within --deadline"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn sentiment_reaches_the_text_output_and_json() {
    let out = daglo(&[
        "transcribe",
        SAMPLE,
        "--emulate",
        "--emulate-processing-ms",
        "200",
        "--sentiment",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("sentiment: ") && l.contains('%')),
        "{stdout}"
    );
    let out = daglo(&[
        "transcribe",
        SAMPLE,
        "--emulate",
        "--emulate-processing-ms",
        "200",
        "--sentiment",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let result = &body["sttResults"][0];
    assert!(["Positive", "Negative", "Neutral"].contains(&result["sentiment"].as_str().unwrap()));
    assert!(result["sentimentScore"]["positive"].is_number());
}

#[test]
fn two_hundred_files_under_the_real_limit_all_done_once_and_a_rerun_submits_nothing() {
    let inputs = audio_dir("batch-200", 200);
    let out = temp("batch-200-out");
    let _ = std::fs::remove_dir_all(&out);
    let args = [
        "transcribe",
        inputs.to_str().unwrap(),
        "--emulate",
        "--emulate-processing-ms",
        "500",
        "--concurrency",
        "32",
        "--out-dir",
        out.to_str().unwrap(),
    ];
    let first = daglo(&args);
    let stderr = text(&first.stderr);
    assert_eq!(first.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("200 done, 0 already done, 0 failed, 0 pending, 0 uncertain, 0 errors"),
        "{stderr}"
    );
    // The emulator enforces 20/s per endpoint: zero 429s means the submit rate never went over.
    assert!(
        stderr.contains("emulator saw 200 submits (0 answered 429) and created 200 jobs"),
        "no failed and no duplicate submit: {stderr}"
    );
    assert_eq!(
        std::fs::read_dir(&out)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "txt"))
            .count(),
        200
    );

    let rerun = daglo(&args);
    let stderr = text(&rerun.stderr);
    assert_eq!(rerun.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("0 done, 200 already done"), "{stderr}");
    assert!(stderr.contains("emulator saw 0 submits"), "{stderr}");

    let jobs = daglo(&["jobs", "--out-dir", out.to_str().unwrap()]);
    assert_eq!(jobs.status.code(), Some(0));
    assert_eq!(
        text(&jobs.stdout)
            .lines()
            .filter(|l| l.contains("finished"))
            .count(),
        200
    );
    let _ = std::fs::remove_dir_all(inputs);
    let _ = std::fs::remove_dir_all(out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_killed_mid_way_resumes_and_submits_each_file_exactly_once() {
    let (sim, inputs, out) = outliving_service("batch-kill", 12, 4).await;
    let base_url = sim.base_url();
    let args = [
        "transcribe",
        inputs.to_str().unwrap(),
        "--base-url",
        &base_url,
        "--concurrency",
        "12",
        "--out-dir",
        out.to_str().unwrap(),
    ];
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_daglo"))
        .args(args)
        .env("DAGLO_API_TOKEN", sim.token())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Mid-way: every job submitted and its rid in the journal, none finished yet.
    tokio::time::timeout(std::time::Duration::from_secs(60), all_submitted(&out, 12))
        .await
        .expect("all submitted");
    child.kill().await.unwrap(); // SIGKILL: no chance to clean up
    assert_eq!(sim.jobs().len(), 12);

    let rerun = tokio::process::Command::new(env!("CARGO_BIN_EXE_daglo"))
        .args(args)
        .env("DAGLO_API_TOKEN", sim.token())
        .output()
        .await
        .unwrap();
    let stderr = text(&rerun.stderr);
    assert_eq!(rerun.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("12 done"), "{stderr}");
    assert_eq!(
        sim.jobs().len(),
        12,
        "the service saw exactly one submit per file"
    );
    let _ = std::fs::remove_dir_all(inputs);
    let _ = std::fs::remove_dir_all(out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_waiting_keeps_the_journal_and_says_how_to_resume() {
    let (sim, inputs, out) = outliving_service("batch-int", 3, 60).await;
    let base_url = sim.base_url();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_daglo"))
        .args([
            "transcribe",
            inputs.to_str().unwrap(),
            "--base-url",
            &base_url,
            "--out-dir",
            out.to_str().unwrap(),
        ])
        .env("DAGLO_API_TOKEN", sim.token())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(60), all_submitted(&out, 3))
        .await
        .expect("submitted");
    let pid = child.id().unwrap().to_string();
    // The shell's own `kill`, so no separate binary is needed.
    let interrupt = std::process::Command::new("sh")
        .args(["-c", &format!("kill -INT {pid}")])
        .status();
    assert!(interrupt.unwrap().success());
    let output = child.wait_with_output().await.unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("stopped waiting") && stderr.contains("rerun the same command to resume"),
        "{stderr}"
    );
    assert!(stderr.contains("3 pending"), "{stderr}");
    let _ = std::fs::remove_dir_all(inputs);
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn thirty_processes_sharing_one_budget_through_redis_all_finish_without_a_429() {
    let Some((redis, _guard)) =
        test_redis("thirty_processes_sharing_one_budget_through_redis_all_finish_without_a_429")
    else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (sim, inputs, _out) = runtime.block_on(outliving_service("redis-30", 30, 2));
    // A database of its own per run: the budgets start fresh whatever ran before.
    let redis = format!("{}/{}", redis.trim_end_matches('/'), 1 + std::process::id() % 15);
    let files: Vec<_> = std::fs::read_dir(&inputs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let children: Vec<_> = files
        .iter()
        .map(|file| {
            Command::new(env!("CARGO_BIN_EXE_daglo"))
                .args([
                    "transcribe",
                    file.to_str().unwrap(),
                    "--base-url",
                    &sim.base_url(),
                    "--redis",
                    &redis,
                ])
                .env("DAGLO_API_TOKEN", sim.token())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut finished = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            finished += 1;
        } else {
            eprintln!("a process failed: {}", text(&out.stderr));
        }
    }
    let stats = sim.stats();
    eprintln!(
        "30 processes with --redis: {finished} finished; {} submits, {} status requests, {} answered 429",
        stats.endpoint(daglo::sim::Endpoint::Submit).requests,
        stats.endpoint(daglo::sim::Endpoint::Status).requests,
        stats.rate_limited()
    );
    assert_eq!(finished, 30);
    assert_eq!(stats.rate_limited(), 0, "the processes shared the budget");
    runtime.block_on(sim.shutdown());
}

#[test]
fn an_unreachable_or_malformed_redis_is_a_clear_error() {
    let out = daglo(&["transcribe", "x.wav", "--emulate", "--redis", "not a url"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--redis"), "{}", text(&out.stderr));
    // A closed loopback port: the service-side failure status, and the password never shown.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://:hunter2-secret@127.0.0.1:{closed}");
    let out = daglo(&["transcribe", "x.wav", "--emulate", "--redis", &url]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("unreachable"), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("hunter2"), "{}", text(&out.stderr));
}

/// A submit's failure says what is known of the job: refused every time (`429` until the
/// deadline) created none; a `500` may have created one.
#[test]
fn a_failed_submit_says_whether_a_job_may_exist() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sim = runtime
        .block_on(daglo::sim::Simulator::start(daglo::sim::SimConfig::default()))
        .unwrap();
    let run = |extra: &[&str]| {
        let base_url = sim.base_url();
        let mut args = vec!["transcribe", SAMPLE, "--base-url", &base_url];
        args.extend_from_slice(extra);
        Command::new(env!("CARGO_BIN_EXE_daglo"))
            .args(&args)
            .env("DAGLO_API_TOKEN", sim.token())
            .output()
            .unwrap()
    };
    sim.inject_errors(
        daglo::sim::Endpoint::Submit,
        daglo::sim::ErrorBurst::new(429, 10_000),
    );
    let refused = run(&["--deadline", "1.5"]);
    let stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("no job was created"), "{stderr}");
    assert!(
        !stderr.contains("may exist") && !stderr.contains("may have created"),
        "{stderr}"
    );

    sim.inject_errors(daglo::sim::Endpoint::Submit, daglo::sim::ErrorBurst::new(500, 1));
    let failed = run(&[]);
    let stderr = text(&failed.stderr);
    assert_eq!(failed.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("a job may exist") && stderr.contains("check before submitting again"),
        "{stderr}"
    );
    assert_eq!(
        sim.stats().endpoint(daglo::sim::Endpoint::Submit).answered(500),
        1,
        "a 500 is never resubmitted"
    );
    runtime.block_on(sim.shutdown());
}

/// `/srt` answering `202` (subtitles lagging the status) is asked again until the subtitles
/// come; no file exists before there is something to write — one input and a batch alike.
#[test]
fn subtitles_that_lag_the_status_are_waited_for_and_no_file_is_made_early() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let planner = daglo::sim::Planner::new(|_, plan| {
        plan.faults.srt_not_ready_answers = 2;
    });
    let sim = runtime
        .block_on(daglo::sim::Simulator::start(
            daglo::sim::SimConfig::default()
                .processing_time(std::time::Duration::from_millis(300))
                .planner(planner),
        ))
        .unwrap();
    let srt = temp("lagging.srt");
    let _ = std::fs::remove_file(&srt);
    let base_url = sim.base_url();
    let out = Command::new(env!("CARGO_BIN_EXE_daglo"))
        .args([
            "transcribe",
            SAMPLE,
            "--base-url",
            &base_url,
            "--srt",
            srt.to_str().unwrap(),
        ])
        .env("DAGLO_API_TOKEN", sim.token())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(&srt).expect("the subtitles were written");
    assert!(written.contains("-->"), "{written}");
    let srt_requests: u64 = sim.jobs().iter().map(|j| j.srt_requests).sum();
    assert!(
        srt_requests >= 2,
        "asked again after 202: {srt_requests} requests"
    );
    let _ = std::fs::remove_file(&srt);

    // A deadline that ends before the subtitles: the file is never created, the command says so.
    let never = daglo::sim::Planner::new(|_, plan| {
        plan.faults.srt_lag = Some(std::time::Duration::from_secs(3600));
    });
    let slow = runtime
        .block_on(daglo::sim::Simulator::start(
            daglo::sim::SimConfig::default()
                .processing_time(std::time::Duration::from_millis(300))
                .planner(never),
        ))
        .unwrap();
    let late = Command::new(env!("CARGO_BIN_EXE_daglo"))
        .args([
            "transcribe",
            SAMPLE,
            "--base-url",
            &slow.base_url(),
            "--srt",
            srt.to_str().unwrap(),
        ])
        // Past the first poll (at most 3 s in), short of the lagging subtitles.
        .args(["--deadline", "6"])
        .env("DAGLO_API_TOKEN", slow.token())
        .output()
        .unwrap();
    runtime.block_on(slow.shutdown());
    let stderr = text(&late.stderr);
    assert_eq!(late.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("not ready"), "{stderr}");
    assert!(!srt.exists(), "no empty file left behind");

    // A batch writes each input's subtitles once they come.
    let (inputs, out_dir) = (audio_dir("lag-batch", 2), temp("lag-batch-out"));
    let _ = std::fs::remove_dir_all(&out_dir);
    let batch = Command::new(env!("CARGO_BIN_EXE_daglo"))
        .args([
            "transcribe",
            inputs.to_str().unwrap(),
            "--base-url",
            &base_url,
            "--srt",
            "--vtt",
        ])
        .args(["--out-dir", out_dir.to_str().unwrap()])
        .env("DAGLO_API_TOKEN", sim.token())
        .output()
        .unwrap();
    assert_eq!(batch.status.code(), Some(0), "{}", text(&batch.stderr));
    for entry in std::fs::read_dir(&inputs).unwrap() {
        let stem = entry.unwrap().path().file_stem().unwrap().to_owned();
        let srt = out_dir.join(&stem).with_extension("srt");
        assert!(
            std::fs::metadata(&srt).is_ok_and(|m| m.len() > 0),
            "{} written",
            srt.display()
        );
        let vtt = std::fs::read_to_string(out_dir.join(&stem).with_extension("vtt")).unwrap_or_default();
        assert!(
            vtt.starts_with("WEBVTT\n\n1\n"),
            "{}: {vtt}",
            stem.to_string_lossy()
        );
    }
    let _ = std::fs::remove_dir_all(inputs);
    let _ = std::fs::remove_dir_all(out_dir);
    runtime.block_on(sim.shutdown());
}

#[test]
fn jobs_prune_removes_ended_entries_older_than_the_days_given() {
    let inputs = audio_dir("prune", 2);
    let out = temp("prune-out");
    let _ = std::fs::remove_dir_all(&out);
    let batch = daglo(&[
        "transcribe",
        inputs.to_str().unwrap(),
        "--emulate",
        "--emulate-processing-ms",
        "100",
        "--out-dir",
        out.to_str().unwrap(),
    ]);
    assert_eq!(batch.status.code(), Some(0), "{}", text(&batch.stderr));
    let out_dir = out.to_str().unwrap();
    let kept = daglo(&["jobs", "--out-dir", out_dir, "--prune", "1"]);
    assert_eq!(kept.status.code(), Some(0), "{}", text(&kept.stderr));
    assert!(
        text(&kept.stderr).contains("pruned 0 ended entries"),
        "{}",
        text(&kept.stderr)
    );
    assert_eq!(
        text(&kept.stdout)
            .lines()
            .filter(|l| l.contains("finished"))
            .count(),
        2
    );
    let pruned = daglo(&["jobs", "--out-dir", out_dir, "--prune", "0"]);
    assert_eq!(pruned.status.code(), Some(0), "{}", text(&pruned.stderr));
    assert!(
        text(&pruned.stderr).contains("pruned 2 ended entries"),
        "{}",
        text(&pruned.stderr)
    );
    assert_eq!(
        text(&pruned.stdout)
            .lines()
            .filter(|l| l.contains("finished"))
            .count(),
        0
    );
    let refused = daglo(&["jobs", "--out-dir", out_dir, "--prune", "-1"]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    assert!(
        text(&refused.stderr).contains("--prune"),
        "{}",
        text(&refused.stderr)
    );
    let _ = std::fs::remove_dir_all(inputs);
    let _ = std::fs::remove_dir_all(out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_batches_at_once_on_one_out_dir_submit_each_file_once() {
    let (sim, inputs, out) = outliving_service("batch-twice", 10, 1).await;
    let base_url = sim.base_url();
    let args = [
        "transcribe",
        inputs.to_str().unwrap(),
        "--base-url",
        &base_url,
        "--concurrency",
        "10",
        "--out-dir",
        out.to_str().unwrap(),
    ];
    let run = || {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_daglo"))
            .args(args)
            .env("DAGLO_API_TOKEN", sim.token())
            .output()
    };
    let (first, second) = tokio::time::timeout(std::time::Duration::from_secs(120), async {
        tokio::join!(run(), run())
    })
    .await
    .expect("both batches end");
    for run in [first.unwrap(), second.unwrap()] {
        assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    }
    assert_eq!(
        sim.jobs().len(),
        10,
        "one submit per file, whichever batch made it"
    );
    for entry in std::fs::read_dir(&inputs).unwrap() {
        let stem = entry.unwrap().path().file_stem().unwrap().to_owned();
        assert!(out.join(stem).with_extension("txt").exists());
    }
    let _ = std::fs::remove_dir_all(inputs);
    let _ = std::fs::remove_dir_all(out);
}

/// A folder is walked whole: subfolders included, hidden files skipped, outputs mirroring the
/// inputs' relative paths (two `call-001.wav` never collide), and the summary says how many
/// inputs the folder gave. A symbolic link back into the folder is refused before anything is
/// submitted.
#[test]
fn folders_are_walked_recursively_and_outputs_mirror_their_paths() {
    let inputs = audio_dir("tree", 2);
    std::fs::create_dir_all(inputs.join("sub/deeper")).unwrap();
    std::fs::create_dir_all(inputs.join(".hidden")).unwrap();
    std::fs::write(inputs.join("sub/call-001.wav"), vec![7u8; 48_000]).unwrap();
    std::fs::write(inputs.join("sub/deeper/call-009.mp3"), vec![9u8; 48_000]).unwrap();
    std::fs::write(inputs.join(".hidden/secret.wav"), vec![3u8; 48_000]).unwrap();
    std::fs::write(inputs.join(".dotfile.wav"), vec![4u8; 48_000]).unwrap();
    std::fs::write(inputs.join("sub/notes.txt"), b"not audio").unwrap();
    let out_dir = temp("tree-out");
    let _ = std::fs::remove_dir_all(&out_dir);
    let run = || {
        daglo(&[
            "transcribe",
            inputs.to_str().unwrap(),
            "--emulate",
            "--emulate-processing-ms",
            "100",
            "--out-dir",
            out_dir.to_str().unwrap(),
        ])
    };
    let out = run();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for file in [
        "call-000.txt",
        "call-001.txt",
        "sub/call-001.txt",
        "sub/deeper/call-009.txt",
    ] {
        assert!(out_dir.join(file).is_file(), "{file} written: {stderr}");
    }
    assert!(!out_dir.join("secret.txt").exists() && !out_dir.join(".hidden").exists());
    assert!(stderr.contains("4 done"), "{stderr}");
    assert!(
        stderr.contains(&format!("{} gave 4 inputs", inputs.display())),
        "{stderr}"
    );
    assert!(stderr.contains("0 errors"), "{stderr}");

    // A link back up: refused, naming it; nothing submitted.
    std::os::unix::fs::symlink(&inputs, inputs.join("sub/loop")).unwrap();
    let out = run();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("sub/loop") && stderr.contains("symbolic link loop"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(inputs);
    let _ = std::fs::remove_dir_all(out_dir);
}

/// A rerun reads the journal: a failed input is reported failed (exit 1, Daglo's reason) and
/// not asked about again — the emulator of the rerun knows none of the earlier run's rids, and
/// is never asked — `--retry-failed` submits it again, and `daglo jobs` shows each entry's true
/// state, its reason, and only outputs that exist, also as JSON.
#[test]
fn a_rerun_reads_failures_from_the_journal_and_retry_failed_submits_again() {
    let inputs = audio_dir("rerun-failed", 1);
    std::fs::write(inputs.join("call-file-error.wav"), vec![5u8; 48_000]).unwrap();
    let out_dir = temp("rerun-failed-out");
    let _ = std::fs::remove_dir_all(&out_dir);
    let run = |extra: &[&str]| {
        let mut args = vec![
            "transcribe",
            inputs.to_str().unwrap(),
            "--emulate",
            "--emulate-processing-ms",
            "100",
            "--out-dir",
            out_dir.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        daglo(&args)
    };
    let first = run(&[]);
    let stderr = text(&first.stderr);
    assert_eq!(first.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("1 done") && stderr.contains("1 failed"),
        "{stderr}"
    );

    // The rerun: a new emulator, which knows no old rid. Nothing is asked of it, nothing
    // submitted: the failure comes from the journal, with its reason.
    let second = run(&[]);
    let stderr = text(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("1 already done") && stderr.contains("1 failed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("file_error") && stderr.contains("--retry-failed"),
        "{stderr}"
    );
    assert!(stderr.contains("emulator saw 0 submits"), "{stderr}");
    assert!(!stderr.contains("404"), "{stderr}");

    let jobs = daglo(&["jobs", "--out-dir", out_dir.to_str().unwrap(), "--json"]);
    assert_eq!(jobs.status.code(), Some(0), "{}", text(&jobs.stderr));
    let entries: Vec<serde_json::Value> = serde_json::from_slice(&jobs.stdout).unwrap();
    assert_eq!(entries.len(), 2);
    let failed = entries
        .iter()
        .find(|e| e["state"] == "failed")
        .expect("a failed entry");
    assert_eq!(
        failed["output"],
        serde_json::Value::Null,
        "no output file for a failed job"
    );
    assert!(failed["reason"].is_string(), "{failed}");
    assert!(
        failed["service"]
            .as_str()
            .is_some_and(|s| s.starts_with("emulator "))
    );
    let done = entries
        .iter()
        .find(|e| e["state"] == "finished")
        .expect("a finished entry");
    assert_eq!(done["output"], "call-000.txt");
    let table = text(&daglo(&["jobs", "--out-dir", out_dir.to_str().unwrap()]).stdout);
    assert!(
        table
            .lines()
            .any(|l| l.contains("failed") && l.contains("file_error")),
        "{table}"
    );

    // --retry-failed: submitted again (it fails again: same name, same emulator plan).
    let third = run(&["--retry-failed"]);
    let stderr = text(&third.stderr);
    assert_eq!(third.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("emulator saw 1 submit ("), "{stderr}");
    let _ = std::fs::remove_dir_all(inputs);
    let _ = std::fs::remove_dir_all(out_dir);
}

/// A job submitted to another service than the rerun's (here an earlier run's own emulator,
/// gone with it) is never asked about: the rerun lists it *elsewhere*, names that service, and
/// exits 2 — without a request about its rid.
#[test]
fn a_rerun_never_asks_another_service_about_an_old_rid() {
    let inputs = audio_dir("other-service", 1);
    let out_dir = temp("other-service-out");
    let _ = std::fs::remove_dir_all(&out_dir);
    let run = |ms: &str, deadline: &[&str]| {
        let mut args = vec![
            "transcribe",
            inputs.to_str().unwrap(),
            "--emulate",
            "--emulate-processing-ms",
            ms,
            "--out-dir",
            out_dir.to_str().unwrap(),
        ];
        args.extend_from_slice(deadline);
        daglo(&args)
    };
    let first = run("60000", &["--deadline", "0.5"]);
    assert_eq!(first.status.code(), Some(3), "{}", text(&first.stderr));
    let second = run("100", &[]);
    let stderr = text(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("elsewhere") && stderr.contains("submitted to emulator "),
        "{stderr}"
    );
    assert!(stderr.contains("1 submitted to another service"), "{stderr}");
    assert!(
        stderr.contains("cost: 0 requests"),
        "nothing asked of this run's service: {stderr}"
    );
    let _ = std::fs::remove_dir_all(inputs);
    let _ = std::fs::remove_dir_all(out_dir);
}
