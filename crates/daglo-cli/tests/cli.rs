//! The `daglo` binary as a user runs it, against its built-in emulator.

use std::path::PathBuf;
use std::process::{Command, Output};

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/data/standup.wav");

fn daglo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_daglo"))
        .args(args)
        .env_remove("DAGLO_API_TOKEN")
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("daglo-cli-{}-{name}", std::process::id()))
}

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
    let _ = std::fs::remove_file(srt);
    assert!(text(&out.stderr).contains("submitted (polling strategy)"));
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
    let cases: [(&[&str], &str); 9] = [
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
