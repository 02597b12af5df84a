//! Bodies with every oddity the published schema allows reach the caller whole, whether polled
//! or delivered by callback, and survive to what the caller serialises.

use std::time::Duration;

use daglo::callback::FinalCallbacks;
use daglo::poll::{PollPolicy, PollingConfig, PollingDelivery};
use daglo::{Client, JobOptions, Outcome, Rid, Transcriber};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A final body with a number for a speaker, a missing start time, spaces in seconds, a
/// fractional percent, a `null` transcript on a second channel, sentiment and unknown fields.
const ODD: &str = r#"{"rid": "r-odd", "status": "transcribed", "progress": 99.6, "custom": "plain",
  "futureField": {"kept": true},
  "sttResults": [
    {"transcript": "hello there", "sentiment": "Positive",
     "sentimentScore": {"neutral": 20.0, "negative": 5.0, "positive": 75.0}, "translation": "bonjour",
     "words": [{"word": "hello ", "endTime": {"seconds": " 1", "nanos": 0}, "speaker": 1, "segmentId": 3},
               {"word": "there", "startTime": {"seconds": 1}, "endTime": {"seconds": "2", "nanos": 5}}]},
    {"transcript": null}]}"#;

fn assert_whole(outcome: &Outcome) {
    let Outcome::Transcript { body, .. } = outcome else {
        panic!("{outcome:?}")
    };
    let results = body.stt_results.as_ref().unwrap();
    assert_eq!(results[0].transcript, "hello there");
    assert_eq!(results[0].words.len(), 2);
    assert_eq!(results[0].words[0].speaker.as_deref(), Some("1"));
    assert_eq!(results[0].words[0].start_time, None);
    assert_eq!(
        results[0].words[0].end_time.unwrap().as_duration(),
        Duration::from_secs(1)
    );
    assert_eq!(results[1].transcript, "");
    let written = serde_json::to_value(body.as_ref()).unwrap();
    assert_eq!(
        written["futureField"]["kept"], true,
        "unknown fields survive serialisation"
    );
    assert_eq!(written["sttResults"][0]["translation"], "bonjour");
    assert_eq!(written["sttResults"][0]["sentiment"], "Positive");
    assert_eq!(written["sttResults"][0]["sentimentScore"]["positive"], 75.0);
    assert_eq!(written["custom"], "plain");
}

/// A service that answers every status request with `ODD`.
async fn odd_service() -> Client {
    service_answering(ODD).await
}

/// A service that answers every status request with `body`.
async fn service_answering(body: &'static str) -> Client {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                let _ = socket.read(&mut buffer).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    Client::builder()
        .token("t")
        .base_url(format!("http://{addr}"))
        .build()
        .unwrap()
}

#[tokio::test]
async fn polled_odd_bodies_arrive_whole() {
    let client = odd_service().await;
    let polling = PollingDelivery::new(
        client.clone(),
        PollingConfig::default().policy(PollPolicy::Fixed(Duration::from_millis(20))),
    );
    let transcriber = Transcriber::new(client, polling);
    let outcome = transcriber
        .wait(transcriber.resume(Rid::new("r-odd")))
        .await
        .unwrap();
    assert_whole(&outcome);
}

#[tokio::test]
async fn odd_bodies_delivered_by_callback_arrive_whole_trusted_or_confirmed() {
    for finals in [FinalCallbacks::TrustBody, FinalCallbacks::Confirm] {
        // The service the confirming GET goes to answers with the same odd body.
        let client = odd_service().await;
        let (status, outcome) = deliver_by_callback(&client, finals, ODD, "r-odd").await;
        assert_eq!(status, 200, "{finals:?}");
        assert_whole(&outcome);
    }
}

/// Each oddity the issue names, alone in an otherwise ordinary final body.
const CASES: [(&str, &str); 6] = [
    (
        "startTime missing",
        r#"{"status": "transcribed", "sttResults": [{"transcript": "one two", "words": [{"word": "one", "endTime": {"seconds": "1"}}, {"word": "two"}]}]}"#,
    ),
    (
        "speaker as a number",
        r#"{"status": "transcribed", "sttResults": [{"transcript": "one two", "words": [{"word": "one", "speaker": 1}, {"word": "two", "speaker": 2}]}]}"#,
    ),
    (
        "transcript null",
        r#"{"status": "transcribed", "sttResults": [{"transcript": "one two", "words": [{"word": "one"}, {"word": "two"}]}, {"transcript": null}]}"#,
    ),
    (
        "custom not an object",
        r#"{"status": "transcribed", "custom": [1, 2], "sttResults": [{"transcript": "one two", "words": [{"word": "one"}, {"word": "two"}]}]}"#,
    ),
    (
        "seconds with a space",
        r#"{"status": "transcribed", "sttResults": [{"transcript": "one two", "words": [{"word": "one", "startTime": {"seconds": " 6"}}, {"word": "two"}]}]}"#,
    ),
    (
        "fractional progress",
        r#"{"status": "transcribed", "progress": 33.5, "sttResults": [{"transcript": "one two", "words": [{"word": "one"}, {"word": "two"}]}]}"#,
    ),
];

fn assert_kept(case: &str, how: &str, outcome: &Outcome) {
    let Outcome::Transcript { body, .. } = outcome else {
        panic!("{case}, {how}: {outcome:?}")
    };
    let first = &body.stt_results.as_ref().unwrap()[0];
    assert_eq!(first.transcript, "one two", "{case}, {how}");
    assert_eq!(first.words.len(), 2, "{case}, {how}: every word kept");
}

#[tokio::test]
async fn each_odd_case_is_kept_polled_and_by_callback() {
    for (case, body) in CASES {
        // Polled.
        let client = service_answering(body).await;
        let polling = PollingDelivery::new(
            client.clone(),
            PollingConfig::default().policy(PollPolicy::Fixed(Duration::from_millis(20))),
        );
        let transcriber = Transcriber::new(client.clone(), polling);
        let outcome = transcriber.wait(transcriber.resume(Rid::new("r"))).await.unwrap();
        assert_kept(case, "polled", &outcome);

        // Delivered by callback: taken as sent, and confirmed with the same service.
        for finals in [FinalCallbacks::TrustBody, FinalCallbacks::Confirm] {
            let (status, outcome) = deliver_by_callback(&client, finals, body, "r").await;
            assert_eq!(status, 200, "{case}, {finals:?}");
            assert_kept(case, &format!("callback {finals:?}"), &outcome);
        }
    }
}

/// Prepares a job on a loopback callback receiver (finals handled as `finals`, confirmed through
/// `client`), POSTs `body` to it with the job's credential, and waits for job `rid`: the answer's
/// status and the outcome.
async fn deliver_by_callback(
    client: &Client,
    finals: FinalCallbacks,
    body: &'static str,
    rid: &str,
) -> (u16, Outcome) {
    let (callbacks, server) =
        daglo::callback::CallbackDelivery::loopback(client.clone(), |c| c.finals(finals))
            .await
            .unwrap();
    let mut options = JobOptions::default();
    let ticket = daglo::ResultDelivery::prepare(&callbacks, &mut options)
        .await
        .unwrap();
    let callback = options.callback.unwrap();
    let (name, value) = callback.headers.iter().next().unwrap();
    let answer = reqwest::Client::new()
        .post(&callback.url)
        .header(name, value)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let outcome = ticket
        .wait(Rid::new(rid), &daglo::delivery::IgnoreProgress)
        .await
        .unwrap();
    server.shutdown().await;
    (answer.status().as_u16(), outcome)
}
