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
    assert_eq!(word.start_time.unwrap().as_duration(), Duration::from_millis(60));
    assert_eq!(word.end_time.unwrap().as_duration(), Duration::from_millis(860));
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
    assert_eq!(stt.keyword_boost.as_ref().unwrap().boost, Some(10));
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
    let err = decode_status_body(br#"{"status": "transcribed", "sttResults": {"a": 1}}"#).unwrap_err();
    assert_eq!(err.path(), "sttResults");
    let err = decode_status_body(br#"["status", "transcribed"]"#).unwrap_err();
    assert_eq!(err.path(), ".");
    let err = decode_status_body(br#"{"progress": 5}"#).unwrap_err();
    assert!(err.message().contains("status"), "{err}");
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
            body.custom = custom.map(serde_json::Value::Object);
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

// ---- tolerant decoding: the published schema requires little, and nothing is thrown away ----

/// A final body with one odd value in the place named, around a result that must survive.
fn odd(word: &str, extra: &str) -> String {
    format!(
        r#"{{"rid": "r-1", "status": "transcribed", "progress": 100 {extra},
            "sttResults": [{{"transcript": "hello world", "words": [{word},
              {{"word": "world", "startTime": {{"seconds": "1", "nanos": 0}}, "endTime": {{"seconds": "2", "nanos": 0}}}}]}}]}}"#
    )
}

#[test]
fn every_odd_value_the_schema_allows_keeps_the_result() {
    let cases = [
        (
            "startTime missing",
            odd(
                r#"{"word": "hello", "endTime": {"seconds": "1", "nanos": 0}}"#,
                "",
            ),
        ),
        (
            "speaker as a number",
            odd(r#"{"word": "hello", "speaker": 1, "segmentId": 7}"#, ""),
        ),
        (
            "seconds with spaces",
            odd(
                r#"{"word": "hello", "startTime": {"seconds": " 6", "nanos": 0}}"#,
                "",
            ),
        ),
        (
            "unreadable time",
            odd(r#"{"word": "hello", "startTime": {"seconds": "soon"}}"#, ""),
        ),
        ("word missing", odd(r#"{"startTime": {"seconds": "0"}}"#, "")),
        (
            "fractional progress",
            odd(r#"{"word": "hello"}"#, r#", "progress": 33.5"#),
        ),
        (
            "custom not an object",
            odd(r#"{"word": "hello"}"#, r#", "custom": "plain text""#),
        ),
        (
            "rid as a number",
            odd(r#"{"word": "hello"}"#, r#", "rid": 12345"#),
        ),
        (
            "hasKeyword as text",
            odd(r#"{"word": "hello", "hasKeyword": "true"}"#, ""),
        ),
    ];
    for (case, json) in cases {
        let body = decode_status_body(json.as_bytes()).unwrap_or_else(|e| panic!("{case}: {e}"));
        let result = &body.stt_results.as_ref().unwrap()[0];
        assert_eq!(result.transcript, "hello world", "{case}");
        assert_eq!(result.words.len(), 2, "{case}: every word kept");
        assert_eq!(
            result.words[1].end_time.unwrap().as_duration(),
            Duration::from_secs(2),
            "{case}"
        );
    }
    let spaced =
        decode_status_body(odd(r#"{"word": "a", "startTime": {"seconds": " 6"}}"#, "").as_bytes()).unwrap();
    assert_eq!(
        spaced.stt_results.unwrap()[0].words[0]
            .start_time
            .unwrap()
            .as_duration(),
        Duration::from_secs(6)
    );
    let numbered =
        decode_status_body(odd(r#"{"word": "a", "speaker": 1}"#, r#", "rid": 12345"#).as_bytes()).unwrap();
    assert_eq!(numbered.rid.as_ref().map(Rid::as_str), Some("12345"));
    assert_eq!(
        numbered.stt_results.unwrap()[0].words[0].speaker.as_deref(),
        Some("1")
    );
    let rounded = decode_status_body(br#"{"status": "transcribing", "progress": 33.5}"#).unwrap();
    assert_eq!(rounded.progress, Some(34));
    let null =
        decode_status_body(br#"{"status": "transcribed", "sttResults": [{"transcript": null}]}"#).unwrap();
    assert_eq!(null.stt_results.unwrap()[0].transcript, "");
    let plain =
        decode_status_body(odd(r#"{"word": "a"}"#, r#", "custom": "plain text""#).as_bytes()).unwrap();
    assert_eq!(plain.custom, Some(serde_json::json!("plain text")));
}

/// The word readers decode each field on its own (no `serde_json::Value` in between): every
/// shape a field can take reads as the published leniency says, and odd nested values are read
/// past, not kept.
#[test]
fn each_field_shape_reads_as_before() {
    let word = |fields: &str| -> daglo_core::Word {
        let json = format!(
            r#"{{"status": "transcribed", "sttResults": [{{"transcript": "t", "words": [{{{fields}}}]}}]}}"#
        );
        let body = decode_status_body(json.as_bytes()).unwrap_or_else(|e| panic!("{fields}: {e}"));
        body.stt_results.unwrap()[0].words[0].clone()
    };
    let time = |value: &str| {
        word(&format!(r#""startTime": {value}"#))
            .start_time
            .map(|t| t.as_duration())
    };
    let ms = Duration::from_millis;
    for (value, expected) in [
        (r#"{"seconds": "12", "nanos": 500000000}"#, Some(ms(12_500))),
        (r#"{"seconds": 12}"#, Some(ms(12_000))),
        (r#"{"nanos": 7}"#, Some(Duration::from_nanos(7))),
        (r#"{"seconds": null, "nanos": null}"#, Some(Duration::ZERO)),
        (
            r#"{"seconds": "1", "other": {"deep": [1, 2]}, "nanos": 1}"#,
            Some(Duration::new(1, 1)),
        ),
        (r#"{"seconds": "1", "seconds": "2"}"#, Some(ms(2_000))),
        (r#"["3", 4]"#, Some(Duration::new(3, 4))),
        ("[]", Some(Duration::ZERO)),
        (r#"["3", 4, 5]"#, None),
        (r#"{"seconds": -1}"#, None),
        (r#"{"seconds": 1.5}"#, None),
        (r#"{"seconds": true}"#, None),
        (r#"{"seconds": ["1"]}"#, None),
        (r#"{"seconds": "1", "nanos": 1000000000}"#, None),
        (r#"{"seconds": "1", "nanos": "5"}"#, None),
        (r#"{"seconds": "1", "nanos": -5}"#, None),
        ("null", None),
        (r#""12""#, None),
        ("12", None),
    ] {
        assert_eq!(time(value), expected, "startTime {value}");
    }
    let speaker = |value: &str| word(&format!(r#""speaker": {value}"#)).speaker;
    for (value, expected) in [
        (r#""A""#, Some("A")),
        ("3", Some("3")),
        ("-3", Some("-3")),
        ("2.5", Some("2.5")),
        ("true", Some("true")),
        ("null", None),
        ("[1, [2]]", None),
        (r#"{"name": {"first": "A"}}"#, None),
    ] {
        assert_eq!(speaker(value).as_deref(), expected, "speaker {value}");
    }
    let flag = |value: &str| word(&format!(r#""hasKeyword": {value}"#)).has_keyword;
    for (value, expected) in [
        ("true", Some(true)),
        (r#"" false ""#, Some(false)),
        ("1", Some(true)),
        ("0", Some(false)),
        ("2", None),
        ("-1", None),
        (r#""yes""#, None),
        ("[true]", None),
    ] {
        assert_eq!(flag(value), expected, "hasKeyword {value}");
    }
    // An odd value everywhere at once: the word is kept, its text empty.
    let odd =
        word(r#""word": [[["x"]]], "startTime": {"seconds": {"a": 1}}, "speaker": {}, "hasKeyword": {}"#);
    assert_eq!(
        (odd.word.as_str(), odd.start_time, odd.speaker, odd.has_keyword),
        ("", None, None, None)
    );
    // Malformed JSON inside an odd value is still an error, with the path that found it.
    let broken = decode_status_body(
        br#"{"status": "transcribed", "sttResults": [{"words": [{"speaker": {"a": [1,}}]}]}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(broken.contains("sttResults[0].words[0].speaker"), "{broken}");
    let progress = |value: &str| {
        decode_status_body(format!(r#"{{"status": "transcribing", "progress": {value}}}"#).as_bytes())
            .unwrap()
            .progress
    };
    for (value, expected) in [
        ("40", Some(40)),
        ("39.6", Some(40)),
        (r#"" 12 ""#, Some(12)),
        ("250", Some(100)),
        ("-4", Some(0)),
        ("null", None),
        (r#"{"of": 100}"#, None),
    ] {
        assert_eq!(progress(value), expected, "progress {value}");
    }
}

#[test]
fn sentiment_and_unknown_fields_survive_a_round_trip() {
    let json = br#"{"status": "transcribed", "futureField": {"x": [1, 2]},
        "sttResults": [{"transcript": "good news", "sentiment": "Positive",
          "sentimentScore": {"neutral": 10.5, "negative": 2.0, "positive": 87.5},
          "translation": "bonne nouvelle"}]}"#;
    let body = decode_status_body(json).unwrap();
    let result = &body.stt_results.as_ref().unwrap()[0];
    assert_eq!(result.sentiment, Some(daglo_core::Sentiment::Positive));
    assert_eq!(result.sentiment_score.unwrap().positive, Some(87.5));
    assert_eq!(result.extra["translation"], "bonne nouvelle");
    assert_eq!(body.extra["futureField"]["x"][1], 2);
    let written: serde_json::Value = serde_json::to_value(&body).unwrap();
    assert_eq!(
        written["futureField"]["x"][1], 2,
        "unknown fields are written back out"
    );
    assert_eq!(written["sttResults"][0]["translation"], "bonne nouvelle");
    assert_eq!(written["sttResults"][0]["sentiment"], "Positive");
    assert_eq!(written["sttResults"][0]["sentimentScore"]["negative"], 2.0);
    let again = decode_status_body(written.to_string().as_bytes()).unwrap();
    assert_eq!(again, body);
}
