//! The client against the emulator over real HTTP: every endpoint and every outcome.

use crate::support;

use std::time::Duration;

use crate::support::{TempDir, client, quick, sim};
use daglo_client::{Error, SrtAnswer, StatusAnswer};
use daglo_core::{Callback, JobOptions, Language, Outcome, Rid, Status};
use daglo_sim::{Clock, Endpoint, SimConfig};

#[tokio::test]
async fn submit_by_url_then_status_shows_the_transcript() {
    let sim = sim(quick()).await;
    let client = client(&sim);
    let options = JobOptions::builder()
        .language(Language::EnUs)
        .speaker_diarization(Some(2))
        .keyword_extraction(3)
        .custom("app_id", "notes")
        .build()
        .unwrap();
    let job = client
        .submit_url("https://audio.example/standup.wav?duration=30", &options)
        .await
        .unwrap();
    assert_eq!(job.custom.as_ref().unwrap()["app_id"], "notes");

    let answer = client.status(&job.rid).await.unwrap();
    assert!(answer.is_terminal());
    let StatusAnswer::Body(body) = &answer else {
        panic!("expected a body, got {answer:?}")
    };
    assert_eq!(body.status, Status::Transcribed);
    assert_eq!(body.rid.as_ref(), Some(&job.rid));
    let result = &body.stt_results.as_ref().unwrap()[0];
    assert!(!result.words.is_empty());
    assert!(result.words.iter().all(|w| w.speaker.is_some()));
    assert!(result.keywords.as_ref().unwrap().len() <= 3);
    assert_eq!(body.custom.as_ref().unwrap()["app_id"], "notes");
    let outcome = answer.outcome(&job.rid).unwrap();
    assert!(matches!(outcome, Outcome::Transcript { .. }));
}

#[tokio::test]
async fn status_follows_the_job_through_its_life() {
    let (clock, time) = Clock::manual();
    let sim = sim(quick().clock(clock).processing_time(Duration::from_secs(100))).await;
    let client = client(&sim);
    let job = support::submit(&client, "https://audio.example/a.wav").await;

    assert!(matches!(client.srt(&job.rid).await.unwrap(), SrtAnswer::NotReady));
    let mut seen = Vec::new();
    for _ in 0..10 {
        match client.status(&job.rid).await.unwrap() {
            StatusAnswer::Body(body) => seen.push((body.status.clone(), body.progress)),
            StatusAnswer::Empty => panic!("not silent"),
            _ => unreachable!(),
        }
        time.advance(Duration::from_secs(10));
    }
    assert_eq!(seen[0], (Status::AiRequested, Some(0)));
    assert_eq!(seen[3], (Status::Transcribing, Some(30)));
    assert_eq!(seen[9], (Status::PostProcessing, Some(90)));
    let stages: Vec<u8> = seen.iter().map(|(s, _)| s.stage().unwrap()).collect();
    assert!(stages.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");

    // The loop moved the clock to the 100 s mark: the job is done.
    let done = client.status(&job.rid).await.unwrap();
    assert!(matches!(done.outcome(&job.rid), Some(Outcome::Transcript { .. })));
    let record = sim.job(&job.rid).unwrap();
    assert_eq!(record.status_requests, 11);
    assert_eq!(record.first_terminal_answer_at, Some(time.now()));
}

#[tokio::test]
async fn srt_is_ready_after_the_job_and_matches_the_words() {
    let sim = sim(quick()).await;
    let client = client(&sim);
    let job = support::submit(&client, "https://audio.example/talk.mp3").await;
    let SrtAnswer::Ready(srt) = client.srt(&job.rid).await.unwrap() else {
        panic!("srt not ready")
    };
    assert!(srt.starts_with("1\n00:00:00,300 --> "), "{srt}");
    let StatusAnswer::Body(body) = client.status(&job.rid).await.unwrap() else {
        panic!()
    };
    let first_word = body.stt_results.unwrap()[0].words[0].word.trim().to_owned();
    assert!(srt.contains(&first_word));
}

#[tokio::test]
async fn silent_audio_is_an_empty_result_not_an_error() {
    let sim = sim(quick()).await;
    let client = client(&sim);
    let job = support::submit(&client, "https://audio.example/silent.wav").await;
    let answer = client.status(&job.rid).await.unwrap();
    assert_eq!(answer, StatusAnswer::Empty);
    assert_eq!(
        answer.outcome(&job.rid),
        Some(Outcome::Empty { rid: job.rid.clone() })
    );
    assert_eq!(client.srt(&job.rid).await.unwrap(), SrtAnswer::Empty);

    // An upload of pure silence (all zero bytes) is an empty result too.
    let dir = TempDir::new("silence");
    let path = dir.file("quiet.wav", &[0u8; 64 * 1024]);
    let job = client.submit_file(&path, &JobOptions::default()).await.unwrap();
    assert_eq!(job.file_name.as_deref(), Some("quiet.wav"));
    assert_eq!(client.status(&job.rid).await.unwrap(), StatusAnswer::Empty);
}

#[tokio::test]
async fn failed_jobs_carry_status_and_message() {
    let sim = sim(quick()).await;
    let client = client(&sim);
    for (name, status) in [
        ("https://audio.example/file-error.wav", Status::FileError),
        (
            "https://audio.example/transcript-error.wav",
            Status::TranscriptError,
        ),
    ] {
        let job = client.submit_url(name, &JobOptions::default()).await.unwrap();
        let outcome = client.status(&job.rid).await.unwrap().outcome(&job.rid).unwrap();
        let Outcome::Failed {
            status: got, message, ..
        } = outcome
        else {
            panic!("{outcome:?}")
        };
        assert_eq!(got, status);
        assert!(message.is_some_and(|m| !m.is_empty()));
    }
}

#[tokio::test]
async fn file_upload_streams_options_and_checks_the_container_first() {
    let sim = sim(quick()).await;
    let client = client(&sim);
    let dir = TempDir::new("upload");
    let audio: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8 + 1).collect();
    let path = dir.file("Meeting.M4A", &audio);
    let options = JobOptions::builder()
        .channel_count(2)
        .callback(Callback::new("http://127.0.0.1:9/unused").header("X-Key", "k"))
        .custom("team", "sales")
        .build()
        .unwrap();
    let job = client.submit_file(&path, &options).await.unwrap();
    assert_eq!(job.custom.as_ref().unwrap()["team"], "sales");
    let StatusAnswer::Body(body) = client.status(&job.rid).await.unwrap() else {
        panic!()
    };
    assert_eq!(
        body.stt_results.unwrap().len(),
        2,
        "multiChannel travelled as a JSON text part"
    );

    let before = sim.stats().endpoint(Endpoint::Submit).requests;
    let text = dir.file("notes.txt", b"hello");
    let err = client
        .submit_file(&text, &JobOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::Invalid(e) if e.field() == "file"), "{err}");
    let missing = client
        .submit_file(dir.0.join("gone.wav"), &JobOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(missing, Error::File { .. }));
    assert_eq!(
        sim.stats().endpoint(Endpoint::Submit).requests,
        before,
        "nothing was sent"
    );
}

#[tokio::test]
async fn every_error_status_maps_to_its_type() {
    let sim = sim(quick().max_upload_bytes(1000).credits(3)).await;
    let client = client(&sim);

    // 401
    let stranger = daglo_client::Client::builder()
        .token("wrong")
        .base_url(sim.base_url())
        .build()
        .unwrap();
    let err = stranger.status(&Rid::new("x")).await.unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err}");
    assert_eq!(err.status(), Some(401));

    // 404
    let err = client.status(&Rid::new("no-such-job")).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    let err = client.srt(&Rid::new("no-such-job")).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");

    // 413, streamed: the emulator stops reading at its cap.
    let dir = TempDir::new("errors");
    let big = dir.file("big.wav", &[1u8; 5000]);
    let err = client
        .submit_file(&big, &JobOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PayloadTooLarge { .. }), "{err}");
    assert!(!err.may_have_created_job());

    // 400 and 415 injected (the client validates before sending, so the service never sees
    // such requests from it).
    sim.inject_errors(Endpoint::Submit, daglo_sim::ErrorBurst::new(400, 1));
    let err = client
        .submit_url("https://a.example/x.wav", &JobOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::BadRequest { message } if message == "injected failure"),
        "{err}"
    );
    sim.inject_errors(Endpoint::Submit, daglo_sim::ErrorBurst::new(415, 1));
    let err = client
        .submit_url("https://a.example/x.wav", &JobOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnsupportedMediaType { .. }), "{err}");

    // 403: credits exhausted after three jobs; never retried.
    for _ in 0..3 {
        support::submit(&client, "https://a.example/x.wav").await;
    }
    let submits = sim.stats().endpoint(Endpoint::Submit).requests;
    let err = client
        .submit_url("https://a.example/x.wav", &JobOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden { .. }), "{err}");
    assert!(!err.is_retryable());
    assert_eq!(sim.stats().endpoint(Endpoint::Submit).requests, submits + 1);
}

#[tokio::test]
async fn gets_retry_5xx_and_429_then_succeed() {
    let sim = sim(quick()).await;
    let client = client(&sim);
    let job = support::submit(&client, "https://a.example/x.wav").await;
    sim.inject_errors(Endpoint::Status, daglo_sim::ErrorBurst::new(503, 3));
    assert!(client.status(&job.rid).await.unwrap().is_terminal());
    let stats = sim.stats().endpoint(Endpoint::Status);
    assert_eq!((stats.answered(503), stats.answered(200)), (3, 1));

    sim.inject_errors(Endpoint::Srt, daglo_sim::ErrorBurst::new(429, 2));
    assert!(matches!(client.srt(&job.rid).await.unwrap(), SrtAnswer::Ready(_)));

    // More failures than attempts: the typed error, with the attempt count.
    sim.inject_errors(Endpoint::Status, daglo_sim::ErrorBurst::new(500, 10));
    let err = client.status(&job.rid).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Server {
                status: 500,
                attempts: 4,
                ..
            }
        ),
        "{err}"
    );
    // One attempt only, for schedulers that retry on their own.
    let before = sim.stats().endpoint(Endpoint::Status).requests;
    assert!(client.status_once(&job.rid).await.unwrap_err().is_retryable());
    assert_eq!(sim.stats().endpoint(Endpoint::Status).requests, before + 1);
}

#[tokio::test]
async fn gets_never_retry_401_403_404() {
    let sim = sim(quick()).await;
    let client = client(&sim);
    let job = support::submit(&client, "https://a.example/x.wav").await;
    for status in [401, 403, 404] {
        sim.inject_errors(Endpoint::Status, daglo_sim::ErrorBurst::new(status, 5));
        let before = sim.stats().endpoint(Endpoint::Status).requests;
        let err = client.status(&job.rid).await.unwrap_err();
        assert_eq!(err.status(), Some(status));
        assert_eq!(
            sim.stats().endpoint(Endpoint::Status).requests,
            before + 1,
            "{status} retried"
        );
        sim.inject_errors(Endpoint::Status, daglo_sim::ErrorBurst::new(status, 0));
        while client.status_once(&job.rid).await.is_err() {}
    }
}

#[tokio::test]
async fn a_submit_is_never_repeated_once_it_may_have_arrived() {
    let sim = sim(quick()).await;
    let client = client(&sim);
    // A 503 comes after the body reached the service: not repeated.
    sim.inject_errors(Endpoint::Submit, daglo_sim::ErrorBurst::new(503, 1));
    let err = client
        .submit_url("https://a.example/x.wav", &JobOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Server {
                status: 503,
                attempts: 1,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(sim.stats().endpoint(Endpoint::Submit).requests, 1);
    // A 429 is refused before processing: repeated, and the job is created once.
    sim.inject_errors(Endpoint::Submit, daglo_sim::ErrorBurst::new(429, 2));
    support::submit(&client, "https://a.example/x.wav").await;
    assert_eq!(sim.stats().endpoint(Endpoint::Submit).answered(200), 1);
    assert_eq!(sim.jobs().len(), 1);
}

#[tokio::test]
async fn a_refused_connection_is_a_transport_error_that_created_nothing() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = daglo_client::Client::builder()
        .token("t")
        .base_url(format!("http://{addr}"))
        .retry(daglo_client::RetryPolicy::none())
        .build()
        .unwrap();
    let err = client
        .submit_url("https://a.example/x.wav", &JobOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transport {
                request_sent: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.may_have_created_job());
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_body_off_contract_is_a_decode_error_with_an_excerpt() {
    // A tiny server that answers every request with a 200 that is not a status body.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let body = r#"{"status": "transcribed", "sttResults": "done"}"#;
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    let client = daglo_client::Client::builder()
        .token("t")
        .base_url(format!("http://{addr}"))
        .build()
        .unwrap();
    let err = client.status(&Rid::new("r")).await.unwrap_err();
    let Error::Decode(decode) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(decode.path(), "sttResults");
    assert!(decode.excerpt().contains("\"sttResults\": \"done\""));
}

#[tokio::test]
async fn rate_limit_is_answered_with_429_and_retried_inside_the_policy() {
    let (clock, time) = Clock::manual();
    let sim = sim(SimConfig::default().clock(clock).processing_time(Duration::ZERO)).await;
    let client = support::client_with_retry(&sim, daglo_client::RetryPolicy::none());
    let job = support::submit(&client, "https://a.example/x.wav").await;
    for _ in 0..20 {
        client.status(&job.rid).await.unwrap();
    }
    let err = client.status(&job.rid).await.unwrap_err();
    assert!(matches!(err, Error::RateLimited { attempts: 1 }), "{err}");
    time.advance(Duration::from_secs(1));
    client.status(&job.rid).await.unwrap();
}
