//! `StrategyConfig`: the strategy is one configuration value, receiver and hybrid wiring included.

use daglo::sim::{Endpoint, SimConfig};
use daglo::{JobOptions, Outcome, StrategyConfig, StrategyError, Transcriber};

use crate::support;

const CONFIGS: [&str; 3] = [
    r#"{"strategy": "polling", "policy": {"kind": "fixed", "interval_secs": 0.03}}"#,
    r#"{"strategy": "callback", "callback": {"listen": "127.0.0.1:0"}}"#,
    r#"{"strategy": "hybrid", "callback": {"listen": "127.0.0.1:0"}, "window_secs": 30}"#,
];

#[tokio::test]
async fn each_configuration_builds_a_working_strategy() {
    for (json, name) in CONFIGS.iter().zip(["polling", "callback", "hybrid"]) {
        let (sim, client) = support::sim(SimConfig::default()).await;
        let config: StrategyConfig = serde_json::from_str(json).unwrap();
        assert_eq!(config.name(), name);
        let transcriber = Transcriber::builder(client)
            .config(&config)
            .build()
            .await
            .unwrap();
        assert_eq!(transcriber.strategy(), name);
        assert_eq!(transcriber.receiver_addr().is_some(), name != "polling");

        let outcome = transcriber
            .transcribe_url("https://a.example/a.wav", &JobOptions::default())
            .await
            .unwrap();
        assert!(
            matches!(outcome, Outcome::Transcript { .. }),
            "{name}: {outcome:?}"
        );
        let status_requests = sim.stats().endpoint(Endpoint::Status).requests;
        if name == "polling" {
            assert!(status_requests >= 1);
        } else {
            assert_eq!(
                status_requests, 1,
                "{name}: the final callback was confirmed once, nothing was polled"
            );
        }
        transcriber.shutdown().await;
    }
}

#[test]
fn configurations_round_trip_and_typos_are_refused() {
    for json in CONFIGS {
        let config: StrategyConfig = serde_json::from_str(json).unwrap();
        let again: StrategyConfig = serde_json::from_str(&serde_json::to_string(&config).unwrap()).unwrap();
        assert_eq!(again, config);
    }
    let typo =
        serde_json::from_str::<StrategyConfig>(r#"{"strategy": "polling", "policyy": {"kind": "adaptive"}}"#);
    assert!(typo.unwrap_err().to_string().contains("policyy"));
    let unknown = serde_json::from_str::<StrategyConfig>(r#"{"strategy": "carrier-pigeon"}"#);
    assert!(unknown.unwrap_err().to_string().contains("carrier-pigeon"));
    let negative = serde_json::from_str::<StrategyConfig>(
        r#"{"strategy": "polling", "policy": {"kind": "fixed", "interval_secs": -1}}"#,
    );
    assert!(
        negative
            .unwrap_err()
            .to_string()
            .contains("non-negative number of seconds")
    );
}

#[tokio::test]
async fn bad_settings_are_typed_errors_naming_what_was_wrong() {
    let (_sim, client) = support::sim(SimConfig::default()).await;
    let zero_rate: StrategyConfig =
        serde_json::from_str(r#"{"strategy": "polling", "requests_per_second": 0}"#).unwrap();
    let err = Transcriber::builder(client.clone())
        .config(&zero_rate)
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StrategyError::Invalid(m) if m.contains("requests_per_second")),
        "{err}"
    );

    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let busy = StrategyConfig::callback(taken.local_addr().unwrap(), "https://hooks.example.com/daglo");
    let err = Transcriber::builder(client.clone())
        .config(&busy)
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StrategyError::Bind { addr, .. } if *addr == taken.local_addr().unwrap()),
        "{err}"
    );

    let missing_secret: StrategyConfig = serde_json::from_str(
        r#"{"strategy": "callback", "callback": {"listen": "127.0.0.1:0", "key_secret_env": "DAGLO_TEST_UNSET_SECRET"}}"#,
    )
    .unwrap();
    let err = Transcriber::builder(client)
        .config(&missing_secret)
        .build()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("DAGLO_TEST_UNSET_SECRET"), "{err}");
}

/// A configured hybrid mounted in the user's own axum router, served with the receiver's
/// connection limits: nothing bound by the transcriber, the job ends by its callback.
#[tokio::test]
async fn a_configured_strategy_mounts_in_an_axum_router() {
    let (sim, client) = support::sim(SimConfig::default()).await;
    let listener = daglo::callback::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let config: StrategyConfig = serde_json::from_str(&format!(
        r#"{{"strategy": "hybrid", "callback": {{"public_url": "http://{addr}/hooks/daglo"}}, "window_secs": 30}}"#
    ))
    .unwrap();
    let (transcriber, receiver) = Transcriber::builder(client)
        .config(&config)
        .build_mounted()
        .await
        .unwrap();
    assert_eq!(transcriber.strategy(), "hybrid");
    assert_eq!(transcriber.receiver_addr(), None, "the transcriber bound nothing");
    let app = axum::Router::<()>::new()
        .route("/health", axum::routing::get(|| async { "ok" }))
        .route_service("/hooks/daglo/{key}", receiver.expect("a receiver to mount"));
    let limits =
        daglo::strategy::CallbackSettings::mounted("http://unused.example/daglo").connection_limits();
    let server = daglo::callback::CallbackServer::serve(listener, app, limits).unwrap();

    let outcome = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        transcriber.transcribe_url("https://a.example/a.wav", &JobOptions::default()),
    )
    .await
    .expect("ends in time")
    .unwrap();
    assert!(matches!(outcome, Outcome::Transcript { .. }), "{outcome:?}");
    assert_eq!(
        sim.stats().endpoint(Endpoint::Status).requests,
        1,
        "ended by its callback (one confirming GET), not by polling"
    );
    let health = reqwest::get(format!("http://{addr}/health")).await.unwrap();
    assert_eq!(
        health.text().await.unwrap(),
        "ok",
        "the app's own routes are served too"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn what_each_form_needs_is_named() {
    let (_sim, client) = support::sim(SimConfig::default()).await;
    let no_listen: StrategyConfig = serde_json::from_str(
        r#"{"strategy": "callback", "callback": {"public_url": "https://hooks.example.com/d"}}"#,
    )
    .unwrap();
    let err = Transcriber::builder(client.clone())
        .config(&no_listen)
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StrategyError::Invalid(m) if m.contains("callback.listen")),
        "{err}"
    );
    let no_url: StrategyConfig = serde_json::from_str(r#"{"strategy": "callback", "callback": {}}"#).unwrap();
    let err = Transcriber::builder(client.clone())
        .config(&no_url)
        .build_mounted()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StrategyError::Invalid(m) if m.contains("callback.public_url")),
        "{err}"
    );
    let (polling, receiver) = Transcriber::builder(client)
        .config(&StrategyConfig::polling())
        .build_mounted()
        .await
        .unwrap();
    assert!(receiver.is_none(), "polling has nothing to mount");
    assert_eq!(polling.strategy(), "polling");
}
