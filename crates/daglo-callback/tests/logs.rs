//! The receiver's logs: job key, rid, status and handling time — never a credential or
//! transcript text. In a test binary of its own, so no other test touches tracing's callsite
//! registrations while this one captures.

mod support;

use daglo_core::IgnoreProgress;
use support::Rig;

#[tokio::test]
async fn logs_name_job_rid_and_status_but_never_a_credential_or_transcript() {
    let captured = daglo_sim::LogCapture::start();

    let rig = Rig::start(Rig::sim_config(), |c| c).await;
    let (rid, prepared, options) = rig.submit("https://a.example/a.wav").await;
    let (_, name, credential) = Rig::credential(&options);
    let key = prepared.job_key().unwrap().to_owned();
    let outcome = prepared.wait(rid.clone(), &IgnoreProgress).await.unwrap();
    let transcript = outcome.transcript().unwrap();
    // A forged attempt on a job still waiting is logged too.
    let (_, _waiting, waiting_options) = rig.submit("https://a.example/b.wav").await;
    let (waiting_url, _, _) = Rig::credential(&waiting_options);
    let forged = format!("Bearer {}", "B".repeat(43));
    let headers = [
        (name.as_str(), forged.as_str()),
        ("content-type", "application/json"),
    ];
    let (status, _) = rig.post(&waiting_url, &headers, "{}").await;
    assert_eq!(status, 401);
    // A huge status string from a genuine credential is cut before it reaches a log field.
    let (_, waiting_name, waiting_credential) = Rig::credential(&waiting_options);
    let huge_status = format!("s{}", "x".repeat(1 << 20));
    let genuine = [
        (waiting_name.as_str(), waiting_credential.as_str()),
        ("content-type", "application/json"),
    ];
    let body = serde_json::json!({"status": huge_status, "progress": 1}).to_string();
    assert_eq!(rig.post(&waiting_url, &genuine, body).await.0, 200);

    let logs = captured.text();
    assert!(logs.contains(&key), "the job key is logged");
    assert!(logs.contains(rid.as_str()), "the rid is logged");
    assert!(logs.contains("status=transcribed"), "the status is logged");
    assert!(logs.contains("handling_us"), "the handling time is logged");
    assert!(logs.contains("answer=401"), "the forgery is logged (at debug)");
    for line in logs.lines() {
        assert!(
            !(line.contains(" INFO ") && line.contains("answer=401")),
            "rejections stay below info, so a flood cannot flood the logs: {line}"
        );
        assert!(
            line.len() < 4096,
            "an unbounded field reached the logs: {} bytes",
            line.len()
        );
    }
    let token = credential.trim_start_matches("Bearer ");
    assert!(!logs.contains(token), "a credential leaked into the logs");
    assert!(
        !logs.contains(&forged["Bearer ".len()..]),
        "a presented credential leaked"
    );
    let words: Vec<&str> = transcript
        .split_whitespace()
        .filter(|w| w.chars().count() > 3)
        .collect();
    assert!(!words.is_empty());
    for word in words {
        assert!(
            !logs.contains(word),
            "transcript text `{word}` leaked into the logs"
        );
    }
    assert!(!format!("{:?}", rig.callbacks).contains(token));
}
