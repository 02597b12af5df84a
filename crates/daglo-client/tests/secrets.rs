//! The API token never appears in logs, errors or `Debug` output, whatever the path taken.

mod support;

use daglo_client::{Client, Error};
use daglo_core::{JobOptions, Rid};
use daglo_sim::{Endpoint, ErrorBurst, SimConfig, Simulator};

const TOKEN: &str = "tok-7f3a9c-very-secret";

#[tokio::test]
async fn no_log_line_error_or_debug_output_contains_the_token() {
    // A current-thread runtime: every task of this test logs through this subscriber.
    let captured = daglo_sim::LogCapture::start();

    let sim = Simulator::start(support::quick().token(TOKEN)).await.unwrap();
    let client = support::client(&sim);
    let mut shown = vec![format!("{client:?}")];

    let job = client
        .submit_url("https://a.example/x.wav", &JobOptions::default())
        .await
        .unwrap();
    client.status(&job.rid).await.unwrap();
    client.srt(&job.rid).await.unwrap();
    sim.inject_errors(Endpoint::Status, ErrorBurst::new(503, 10));
    let errors: Vec<Error> = vec![
        client.status(&job.rid).await.unwrap_err(),
        client.status(&Rid::new("missing")).await.unwrap_err(),
        Client::builder().token(format!("{TOKEN}\n")).build().unwrap_err(),
    ];
    for err in &errors {
        shown.push(err.to_string());
        shown.push(format!("{err:?}"));
    }
    // A wrong token is refused without the right one leaking either.
    let other = Simulator::start(SimConfig::default().rate_limit(None))
        .await
        .unwrap();
    let stranger = Client::builder()
        .token(TOKEN)
        .base_url(other.base_url())
        .build()
        .unwrap();
    let err = stranger.status(&Rid::new("x")).await.unwrap_err();
    shown.push(format!("{err} {err:?}"));
    shown.push(format!("{sim:?}"));

    let logs = captured.text();
    assert!(
        logs.contains("answered"),
        "the emulator's request logs were captured"
    );
    assert!(
        logs.contains("retrying GET"),
        "the client's retry logs were captured"
    );
    assert!(!logs.contains(TOKEN), "token in logs:\n{logs}");
    for text in shown {
        assert!(!text.contains(TOKEN), "token in: {text}");
    }
}
