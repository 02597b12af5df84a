//! `docs/configuration.md` is true: every example parses, every "at its defaults" block equals
//! what the code fills in, and each documented default is the constant the code uses.

use std::time::Duration;

use daglo::StrategyConfig;
use daglo::poll::{AdaptivePolicy, PollPolicy};
use daglo::strategy::{CallbackSettings, HybridSettings, PollingSettings};

const DOC: &str = include_str!("../../docs/configuration.md");

/// The doc's fenced blocks of `language`, each with the `<!-- defaults: NAME -->` marker that
/// stands before it, if any.
fn blocks(language: &str) -> Vec<(Option<String>, String)> {
    let mut found = Vec::new();
    let mut marker = None;
    let mut lines = DOC.lines();
    while let Some(line) = lines.next() {
        if let Some(name) = line.strip_prefix("<!-- defaults: ") {
            marker = Some(name.trim_end_matches("-->").trim().to_owned());
        }
        if line.trim() == format!("```{language}") {
            let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
            found.push((marker.take(), body.join("\n")));
        }
    }
    found
}

#[test]
fn every_json_example_parses() {
    let examples = blocks("json");
    assert!(examples.len() >= 5, "{} JSON examples", examples.len());
    for (_, json) in examples {
        let config: Result<StrategyConfig, _> = serde_json::from_str(&json);
        assert!(config.is_ok(), "{json}\n{config:?}");
    }
}

#[test]
fn every_toml_example_parses() {
    let examples = blocks("toml");
    assert!(examples.len() >= 2, "{} TOML examples", examples.len());
    for (_, text) in examples {
        let config: Result<StrategyConfig, _> = toml::from_str(&text);
        assert!(config.is_ok(), "{text}\n{config:?}");
    }
    let hybrid: StrategyConfig = toml::from_str(&blocks("toml")[1].1).unwrap();
    let StrategyConfig::Hybrid(hybrid) = hybrid else {
        panic!("a hybrid example")
    };
    assert_eq!(hybrid.callback.listen, None, "a mounted receiver needs no listen");
    assert_eq!(hybrid.window, Duration::from_secs(300));
}

#[test]
fn the_documented_defaults_are_the_codes() {
    let listen = "0.0.0.0:8443".parse().unwrap();
    let mut callback = CallbackSettings::new(listen, Some("https://hooks.example.com/daglo".to_owned()));
    let mut with_secret = callback.clone();
    with_secret.key_secret_env = Some("DAGLO_KEY_SECRET".to_owned());
    let expected = |name: &str| match name {
        "polling" => StrategyConfig::Polling(PollingSettings::default()),
        "callback" => StrategyConfig::Callback(with_secret.clone()),
        "hybrid" => StrategyConfig::Hybrid(HybridSettings::new(callback.clone())),
        other => panic!("unknown defaults block {other}"),
    };
    let marked: Vec<_> = blocks("json").into_iter().filter(|(m, _)| m.is_some()).collect();
    assert_eq!(marked.len(), 3);
    for (name, json) in marked {
        let name = name.unwrap();
        let documented: StrategyConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(documented, expected(&name), "the `{name}` defaults block");
        // And what the code writes out reads back the same (no key lost on the way).
        let written = serde_json::to_string(&expected(&name)).unwrap();
        assert_eq!(
            serde_json::from_str::<StrategyConfig>(&written).unwrap(),
            expected(&name)
        );
    }
    // The short forms fill in those defaults.
    let short: StrategyConfig = serde_json::from_str(r#"{"strategy": "polling"}"#).unwrap();
    assert_eq!(short, StrategyConfig::polling());
    callback.listen = None;
    let mounted: StrategyConfig = serde_json::from_str(
        r#"{"strategy": "hybrid", "callback": {"public_url": "https://hooks.example.com/daglo"}}"#,
    )
    .unwrap();
    assert_eq!(mounted, StrategyConfig::Hybrid(HybridSettings::new(callback)));
}

#[test]
fn each_documented_constant() {
    use daglo::callback::*;
    assert_eq!(DEFAULT_JOB_TTL, Duration::from_secs(21_600));
    assert_eq!(DEFAULT_MAX_CONNECTIONS, 512);
    assert_eq!(DEFAULT_MAX_BODY_BYTES, 16 << 20);
    assert_eq!(DEFAULT_HEADER_TIMEOUT, Duration::from_secs(10));
    assert_eq!(DEFAULT_BODY_TIMEOUT, Duration::from_secs(10));
    assert_eq!(DEFAULT_MAX_CONNECTION_TIME, Duration::from_secs(30));
    assert_eq!(DEFAULT_ACCEPT_BACKLOG, 1024);
    assert_eq!(FinalCallbacks::default(), FinalCallbacks::Confirm);
    assert_eq!(daglo::strategy::DEFAULT_HYBRID_WINDOW, Duration::from_secs(120));
    assert_eq!(
        daglo::strategy::HYBRID_SAFETY_NET,
        PollPolicy::Exponential {
            initial: Duration::from_secs(30),
            factor: 2.0,
            max: Duration::from_secs(300)
        }
    );
    let adaptive = AdaptivePolicy::default();
    assert_eq!(adaptive.min_interval, Duration::from_millis(500));
    assert_eq!(adaptive.max_interval, Duration::from_secs(30));
    assert_eq!(adaptive.initial_interval, Duration::from_secs(3));
    assert_eq!(adaptive.smoothing, 0.5);
    assert_eq!(adaptive.processing_per_audio_second, 0.25);
    assert_eq!(adaptive.margin, Duration::from_millis(100));
    // The client's and the poller's backoffs, as their docs say.
    let retry = daglo::client::RetryPolicy::default();
    assert_eq!(retry.max_attempts, 4);
    assert_eq!(retry.backoff, daglo::client::DEFAULT_RETRY_BACKOFF);
    assert_eq!(retry.backoff.cap(1), Duration::from_millis(250));
    assert_eq!(retry.backoff.max, Duration::from_secs(5));
    assert_eq!(
        daglo::poll::DEFAULT_ERROR_BACKOFF.initial,
        Duration::from_millis(500)
    );
    assert_eq!(daglo::poll::DEFAULT_ERROR_BACKOFF.max, Duration::from_secs(30));
    let budget = daglo::client::TokenBucket::default();
    assert_eq!(daglo::client::RateBudget::current_rate(&budget), 16.0);
}

#[test]
fn mistakes_are_named() {
    let typo = serde_json::from_str::<StrategyConfig>(r#"{"strategy": "polling", "polcy": {}}"#).unwrap_err();
    assert!(typo.to_string().contains("polcy"), "{typo}");
    let factor = serde_json::from_str::<StrategyConfig>(
        r#"{"strategy": "polling", "policy": {"kind": "exponential", "initial_secs": 1, "factor": 0.5, "max_secs": 9}}"#,
    )
    .unwrap_err();
    assert!(factor.to_string().contains("factor"), "{factor}");
    let negative = serde_json::from_str::<StrategyConfig>(r#"{"strategy": "polling", "deadline_secs": -1}"#)
        .unwrap_err();
    assert!(negative.to_string().contains("seconds"), "{negative}");
}
