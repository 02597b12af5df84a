//! Every model round-trips through JSON, and the contract's published bodies parse.

use std::time::Duration;

use daglo_core::*;
use proptest::prelude::*;
use serde_json::json;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn contract_status_example_parses() {
    let body = decode_status_body(&fixture("status_transcribed.json")).unwrap();
    assert_eq!(
        body.rid.as_ref().map(Rid::as_str),
        Some("3f2a9c1e-8b7d-4e6f-a5c4-1d2e3f4a5b6c")
    );
    assert_eq!(body.status, Status::Transcribed);
    assert_eq!(body.progress, Some(100));
    let result = &body.stt_results.as_ref().unwrap()[0];
    let word = &result.words[0];
    assert_eq!(word.start_time.as_duration(), Duration::from_millis(60));
    assert_eq!(word.end_time.as_duration(), Duration::from_millis(860));
    assert_eq!(word.segment_id.as_deref(), Some("1"));
    assert_eq!(word.has_keyword, Some(false));
    assert_eq!(result.keywords.as_deref(), Some(&["안녕".to_owned()][..]));
    assert_eq!(body.custom.unwrap()["app_id"], "meeting-notes");
}

#[test]
fn published_callback_body_without_rid_parses() {
    let body = decode_status_body(&fixture("callback_final_without_rid.json")).unwrap();
    assert_eq!(body.rid, None);
    assert_eq!(body.full_transcript(), "Hello, this is a sample transcript.");
    let outcome = Outcome::from_terminal_body(Rid::new("by-key"), body).unwrap();
    assert_eq!(outcome.rid().as_str(), "by-key");
}

#[test]
fn failure_in_progress_and_error_bodies_parse() {
    let failed = decode_status_body(&fixture("status_failed.json")).unwrap();
    assert!(failed.status.is_failure());
    assert_eq!(failed.message.as_deref(), Some("the file could not be decoded"));
    let running = decode_status_body(&fixture("status_in_progress.json")).unwrap();
    assert_eq!(
        (running.status, running.progress),
        (Status::Transcribing, Some(42))
    );
    assert_eq!(
        decode_error_body(&fixture("error.json")).unwrap().error,
        "rid not found"
    );
    let answer = decode_submit_response(&fixture("submit_response.json")).unwrap();
    assert_eq!(answer.file_name.as_deref(), Some("file.wav"));
}

#[test]
fn contract_submit_example_parses_validates_and_reserializes() {
    let raw: serde_json::Value = serde_json::from_slice(&fixture("submit_json_request.json")).unwrap();
    let request: SubmitRequest = decode_json("submit", &fixture("submit_json_request.json")).unwrap();
    request.validate().unwrap();
    let stt = request.options.stt_config.as_ref().unwrap();
    assert_eq!(stt.language, Some(Language::KoKr));
    assert_eq!(stt.keyword_boost.as_ref().unwrap().boost, 10);
    assert_eq!(serde_json::to_value(&request).unwrap(), raw);
}

#[test]
fn keywords_absent_null_and_empty() {
    let absent: SttResult = serde_json::from_value(json!({"transcript": "a"})).unwrap();
    let null: SttResult = serde_json::from_value(json!({"transcript": "a", "keywords": null})).unwrap();
    let empty: SttResult = serde_json::from_value(json!({"transcript": "a", "keywords": []})).unwrap();
    assert_eq!(absent.keywords, None);
    assert_eq!(null.keywords, None);
    assert_eq!(empty.keywords, Some(vec![]));
}

#[test]
fn unknown_status_does_not_break_decoding() {
    let body = decode_status_body(br#"{"status": "queued_for_gpu", "progress": 3}"#).unwrap();
    assert_eq!(body.status, Status::Unknown("queued_for_gpu".into()));
    assert!(!body.status.is_terminal());
}

#[test]
fn malformed_bodies_say_where() {
    let err = decode_status_body(br#"{"status": "transcribed", "progress": "most"}"#).unwrap_err();
    assert_eq!(err.path(), "progress");
    let err = decode_submit_response(br#"{"fileName": "a.wav"}"#).unwrap_err();
    assert!(err.message().contains("rid"), "{err}");
}

// ---- property round-trips ----

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 가-힣.,]{0,12}"
}

fn custom() -> impl Strategy<Value = Option<JsonObject>> {
    proptest::option::of(
        proptest::collection::btree_map("[a-z_]{1,8}", text(), 0..3).prop_map(|m| {
            m.into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect()
        }),
    )
}

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![
        (0..9usize).prop_map(|i| Status::KNOWN[i].clone()),
        "[a-z]{3,10}".prop_map(|s| Status::parse(&s)),
    ]
}

fn offset() -> impl Strategy<Value = TimeOffset> {
    (0u64..100_000, 0u32..1_000_000_000).prop_map(|(s, n)| TimeOffset::from(Duration::new(s, n)))
}

fn word() -> impl Strategy<Value = Word> {
    (
        text(),
        offset(),
        offset(),
        proptest::option::of("[0-9]{1,3}"),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(|(w, a, b, seg, kw)| {
            let mut word = Word::new(w, a, b);
            word.segment_id = seg.clone();
            word.speaker = seg;
            word.has_keyword = kw;
            word
        })
}

fn stt_result() -> impl Strategy<Value = SttResult> {
    (
        text(),
        proptest::collection::vec(word(), 0..4),
        proptest::option::of(proptest::collection::vec(text(), 0..3)),
    )
        .prop_map(|(t, words, keywords)| {
            let mut r = SttResult::new(t);
            r.words = words;
            r.keywords = keywords;
            r
        })
}

fn status_body() -> impl Strategy<Value = StatusBody> {
    (
        proptest::option::of("[a-f0-9-]{8,36}"),
        status(),
        proptest::option::of(0u32..=100),
        proptest::option::of(proptest::collection::vec(stt_result(), 0..3)),
        proptest::option::of(text()),
        custom(),
    )
        .prop_map(|(rid, status, progress, results, message, custom)| {
            let mut body = StatusBody::new(status);
            body.rid = rid.map(Rid::new);
            body.progress = progress;
            body.stt_results = results;
            body.message = message;
            body.custom = custom;
            body
        })
}

fn job_options() -> impl Strategy<Value = JobOptions> {
    (
        proptest::option::of(0..Language::ALL.len()),
        proptest::option::of((proptest::collection::vec("[a-z가-힣]{1,6}", 0..3), 1u32..=15)),
        proptest::option::of(1u32..=2),
        proptest::option::of(proptest::option::of(2u32..10)),
        proptest::option::of(1u32..20),
        proptest::option::of(any::<bool>()),
        proptest::option::of((
            "[a-z]{1,10}",
            proptest::collection::btree_map("X-[A-Za-z]{1,6}", "[ -~]{0,20}", 0..3),
        )),
        custom(),
    )
        .prop_map(|(lang, boost, channels, diar, kw, sentiment, callback, custom)| {
            let mut b = JobOptions::builder();
            if let Some(i) = lang {
                b = b.language(Language::ALL[i]);
            }
            if let Some((words, strength)) = boost {
                b = b.keyword_boost(words, strength);
            }
            if let Some(c) = channels {
                b = b.channel_count(c);
            }
            if let Some(hint) = diar {
                b = b.speaker_diarization(hint);
            }
            if let Some(max) = kw {
                b = b.keyword_extraction(max);
            }
            if let Some(on) = sentiment {
                b = b.sentiment_analysis(on);
            }
            if let Some((host, headers)) = callback {
                let mut cb = Callback::new(format!("https://{host}.example/cb"));
                for (k, v) in headers {
                    cb = cb.header(k, v);
                }
                b = b.callback(cb);
            }
            if let Some(map) = custom {
                for (k, v) in map {
                    b = b.custom(k, v);
                }
            }
            b.build().expect("generated options are in range")
        })
}

proptest! {
    #[test]
    fn status_bodies_round_trip(body in status_body()) {
        let json = serde_json::to_vec(&body).unwrap();
        prop_assert_eq!(decode_status_body(&json).unwrap(), body);
    }

    #[test]
    fn submit_requests_round_trip(options in job_options(), path in "[a-z]{1,10}") {
        let request = SubmitRequest::new(format!("https://audio.example/{path}.wav"), options).unwrap();
        let json = serde_json::to_vec(&request).unwrap();
        let back: SubmitRequest = decode_json("submit", &json).unwrap();
        back.validate().unwrap();
        prop_assert_eq!(back, request);
    }

    #[test]
    fn submit_responses_round_trip(rid in "[a-f0-9-]{36}", name in proptest::option::of(text()), custom in custom()) {
        let mut answer = SubmitResponse::new(Rid::new(rid));
        answer.file_name = name;
        answer.custom = custom;
        let json = serde_json::to_vec(&answer).unwrap();
        prop_assert_eq!(decode_submit_response(&json).unwrap(), answer);
    }

    #[test]
    fn error_bodies_round_trip(text in text()) {
        let body = ErrorBody::new(text);
        let json = serde_json::to_vec(&body).unwrap();
        prop_assert_eq!(decode_error_body(&json).unwrap(), body);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_status_body(&bytes);
        let _ = decode_submit_response(&bytes);
    }
}
