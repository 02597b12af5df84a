//! The client against a peer that misbehaves on purpose (a proxy, a compromised network path):
//! redirects, endless answers, answers that never come, stalled uploads, bodies that would
//! leak a transcript into an error message.

use std::time::{Duration, Instant};

use daglo_client::{Client, Error, ErrorKind, RetryPolicy, StatusAnswer};
use daglo_core::{JobOptions, Rid};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support;

/// What the fake service does with each connection.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Answers with these raw head and body bytes, then closes.
    Answer(&'static str),
    /// Answers `200` with this JSON body.
    Json(&'static str),
    /// Sends a `200` with a chunked body that never ends.
    EndlessChunks,
    /// Reads the request to its end and never answers.
    Silent,
    /// Reads the request head and nothing else, never answering (a stalled upload).
    StopReading,
}

/// A loopback server applying `behaviour` to every connection; returns its base URL.
async fn fake_service(behaviour: Behaviour) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, behaviour));
        }
    });
    format!("http://{addr}")
}

async fn serve(mut stream: TcpStream, behaviour: Behaviour) {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 64 * 1024];
    // The request head.
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&buffer[..n]),
        }
    }
    match behaviour {
        Behaviour::StopReading => {
            // Hold the connection open without reading: the client's send buffer fills.
            tokio::time::sleep(Duration::from_secs(600)).await;
        }
        Behaviour::Silent => {
            let head = String::from_utf8_lossy(&seen).to_lowercase();
            let declared: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            let body_start = seen.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            let mut body = seen.len() - body_start;
            while body < declared {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => body += n,
                }
            }
            tokio::time::sleep(Duration::from_secs(600)).await;
        }
        Behaviour::Answer(raw) => {
            let _ = stream.write_all(raw.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
        Behaviour::Json(body) => {
            let raw = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(raw.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
        Behaviour::EndlessChunks => {
            let head =
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = format!("{:x}\r\n{}\r\n", 16 * 1024, "x".repeat(16 * 1024));
            while stream.write_all(chunk.as_bytes()).await.is_ok() {}
        }
    }
}

fn client(base_url: &str) -> daglo_client::ClientBuilder {
    Client::builder()
        .token("tok-hostile-test")
        .base_url(base_url)
        .retry(RetryPolicy::none())
        .request_timeout(Duration::from_millis(500))
}

/// The error a status request to `base` ends with.
async fn status_error(base: &str) -> Error {
    client(base)
        .build()
        .unwrap()
        .status(&Rid::new("r-1"))
        .await
        .unwrap_err()
}

/// Larger than loopback's socket buffers can absorb, so a peer that stops reading stalls it.
fn sample_file(dir: &support::TempDir) -> std::path::PathBuf {
    dir.file("call.wav", &vec![7u8; 32 * 1024 * 1024])
}

#[tokio::test]
async fn a_redirected_submit_is_not_followed_and_says_where_it_pointed() {
    let base = fake_service(Behaviour::Answer(
        "HTTP/1.1 307 Temporary Redirect\r\nlocation: https://elsewhere.example/steal\r\ncontent-length: 0\r\n\r\n",
    ))
    .await;
    let err = client(&base)
        .build()
        .unwrap()
        .submit_url("https://a.example/a.wav", &JobOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Redirect { status: 307, location: Some(l) } if l == "https://elsewhere.example/steal"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("https://elsewhere.example/steal"),
        "{err}"
    );
    assert!(
        err.may_have_created_job(),
        "something between answered; look before resubmitting"
    );
}

#[tokio::test]
async fn a_redirected_status_request_is_an_error_not_a_status() {
    let base = fake_service(Behaviour::Answer(
        "HTTP/1.1 302 Found\r\nlocation: /stt/v1/async/transcripts/other\r\ncontent-length: 0\r\n\r\n",
    ))
    .await;
    let err = status_error(&base).await;
    assert!(matches!(err, Error::Redirect { status: 302, .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Rejected);
}

#[tokio::test]
async fn an_endless_submit_answer_is_cut_at_a_small_limit() {
    let base = fake_service(Behaviour::EndlessChunks).await;
    let err = client(&base)
        .build()
        .unwrap()
        .submit_url("https://a.example/a.wav", &JobOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::AnswerTooLarge { limit } if limit == 64 << 10),
        "{err:?}"
    );
    assert!(err.may_have_created_job());
}

#[tokio::test]
async fn an_endless_status_answer_is_cut_at_the_configured_limit() {
    let base = fake_service(Behaviour::EndlessChunks).await;
    let client = client(&base).max_answer_bytes(1 << 20).build().unwrap();
    let err = client.status(&Rid::new("r-1")).await.unwrap_err();
    assert!(
        matches!(err, Error::AnswerTooLarge { limit } if limit == 1 << 20),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_declared_oversized_status_answer_is_refused_before_reading() {
    let base = fake_service(Behaviour::Answer(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1073741824\r\n\r\n{",
    ))
    .await;
    let err = status_error(&base).await;
    assert!(matches!(err, Error::AnswerTooLarge { .. }), "{err:?}");
}

#[tokio::test]
async fn a_file_submit_whose_answer_never_comes_ends_and_may_have_created_a_job() {
    let base = fake_service(Behaviour::Silent).await;
    let dir = support::TempDir::new("hostile-silent");
    let file = sample_file(&dir);
    let started = Instant::now();
    let err = client(&base)
        .build()
        .unwrap()
        .submit_file(&file, &JobOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transport {
                request_sent: true,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.may_have_created_job(),
        "the whole file went out: a job may exist"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "bounded: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_stalled_upload_ends_and_cannot_have_created_a_job() {
    let base = fake_service(Behaviour::StopReading).await;
    let dir = support::TempDir::new("hostile-stall");
    let file = sample_file(&dir);
    let err = client(&base)
        .build()
        .unwrap()
        .submit_file(&file, &JobOptions::default())
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
    assert!(!err.may_have_created_job(), "half a file cannot make a job");
}

#[tokio::test]
async fn an_undecodable_status_answer_never_puts_its_text_in_the_error() {
    let base = fake_service(Behaviour::Json(
        r#"{"status":"transcribed","sttResults":"secret merger with acme corp"}"#,
    ))
    .await;
    let err = status_error(&base).await;
    assert!(matches!(err, Error::Decode(_)), "{err:?}");
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains("merger"), "{shown}");
    }
    let Error::Decode(decode) = &err else {
        unreachable!()
    };
    assert_eq!(decode.path(), "sttResults");
}

#[tokio::test]
async fn status_answers_within_the_limit_still_decode() {
    let base = fake_service(Behaviour::Json(r#"{"status":"transcribing","progress":5}"#)).await;
    let answer = client(&base).build().unwrap().status(&Rid::new("r-1")).await;
    assert!(matches!(answer, Ok(StatusAnswer::Body(_))), "{answer:?}");
}
