//! The emulator against the published contract: every body it serves has the published shape,
//! and the corners where it used to be stricter or looser than the service now match it.

use std::time::Duration;

use crate::support::{Raw, Receiver, quick};
use daglo_core::Rid;
use serde_json::{Value, json};

const STATUSES: [&str; 9] = [
    "ai_requested",
    "uploaded",
    "file_processing",
    "transcribing",
    "post_processing",
    "transcribed",
    "input_error",
    "transcript_error",
    "file_error",
];

/// The published schema of a status/result body, checked by hand: types, requiredness
/// (`status`; in a result only `transcript`) and the documented value sets.
fn check_status_body(body: &Value) -> Result<(), String> {
    let object = body.as_object().ok_or("not an object")?;
    let status = object
        .get("status")
        .and_then(Value::as_str)
        .ok_or("status missing or not text")?;
    if !STATUSES.contains(&status) {
        return Err(format!("unknown status {status}"));
    }
    if let Some(rid) = object.get("rid") {
        rid.as_str().ok_or("rid not text")?;
    }
    if let Some(progress) = object.get("progress") {
        let p = progress.as_u64().ok_or("progress not an integer")?;
        if p > 100 {
            return Err(format!("progress {p} over 100"));
        }
    }
    if let Some(message) = object.get("message") {
        message.as_str().ok_or("message not text")?;
    }
    if let Some(custom) = object.get("custom") {
        custom.as_object().ok_or("custom not an object")?;
    }
    let Some(results) = object.get("sttResults") else {
        return Ok(());
    };
    for (i, result) in results
        .as_array()
        .ok_or("sttResults not a list")?
        .iter()
        .enumerate()
    {
        let result = result
            .as_object()
            .ok_or(format!("sttResults[{i}] not an object"))?;
        result
            .get("transcript")
            .and_then(Value::as_str)
            .ok_or(format!("sttResults[{i}].transcript required"))?;
        if let Some(keywords) = result.get("keywords").filter(|k| !k.is_null()) {
            let keywords = keywords.as_array().ok_or("keywords not a list")?;
            if !keywords.iter().all(Value::is_string) {
                return Err("keywords not all text".into());
            }
        }
        if let Some(sentiment) = result.get("sentiment") {
            let s = sentiment.as_str().ok_or("sentiment not text")?;
            if !["Positive", "Negative", "Neutral"].contains(&s) {
                return Err(format!("sentiment {s}"));
            }
        }
        if let Some(score) = result.get("sentimentScore") {
            for part in ["neutral", "negative", "positive"] {
                score
                    .get(part)
                    .and_then(Value::as_f64)
                    .ok_or(format!("sentimentScore.{part}"))?;
            }
        }
        for word in result
            .get("words")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let word = word.as_object().ok_or("word not an object")?;
            if let Some(text) = word.get("word") {
                text.as_str().ok_or("word not text")?;
            }
            for time in ["startTime", "endTime"] {
                if let Some(t) = word.get(time) {
                    let seconds = t
                        .get("seconds")
                        .and_then(Value::as_str)
                        .ok_or(format!("{time}.seconds not text"))?;
                    if !seconds.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(format!("{time}.seconds {seconds:?} not decimal"));
                    }
                    t.get("nanos")
                        .and_then(Value::as_u64)
                        .ok_or(format!("{time}.nanos"))?;
                }
            }
            for id in ["speaker", "segmentId"] {
                if let Some(value) = word.get(id) {
                    value.as_str().ok_or(format!("{id} not text"))?;
                }
            }
            if let Some(flag) = word.get("hasKeyword") {
                flag.as_bool().ok_or("hasKeyword not a boolean")?;
            }
        }
    }
    Ok(())
}

fn check_error_body(body: &Value) -> Result<(), String> {
    body.get("error")
        .and_then(Value::as_str)
        .map(|_| ())
        .ok_or_else(|| format!("not an error body: {body}"))
}

#[tokio::test]
async fn every_body_the_emulator_serves_has_the_published_shape() {
    let raw = Raw::start(quick().processing_time(Duration::from_millis(300))).await;
    let mut receiver = Receiver::start().await;
    let everything = json!({
        "sttConfig": {"language": "en-US", "speakerDiarization": {"enable": true, "speakerCountHint": 2},
                      "keywordBoost": {"enable": true, "keywords": ["revenue"], "boost": 8},
                      "multiChannel": {"channelCount": 2}},
        "nlpConfig": {"keywordExtraction": {"enable": true, "maxCount": 3}, "sentimentAnalysis": {"enable": true}},
        "callback": {"url": receiver.url.clone()},
        "custom": {"app": "contract"}
    });
    let mut rids = Vec::new();
    for audio in [
        "https://a.example/all.wav",
        "https://a.example/file-error.wav",
        "https://a.example/transcript-error.wav",
    ] {
        let answer = raw
            .submit_json(json!({"audio": {"source": {"url": audio}}}))
            .await;
        let submit: Value = answer.json().await.unwrap();
        assert!(submit["rid"].is_string(), "submit answer: {submit}");
        rids.push(raw.submit(audio, everything.clone()).await);
    }
    let mut seen = 0;
    // Poll every job through its life, checking each body.
    for rid in &rids {
        loop {
            let answer = raw.get(&format!("/{rid}")).await;
            assert_eq!(answer.status(), 200);
            let body: Value = answer.json().await.unwrap();
            check_status_body(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
            seen += 1;
            if body["status"] != "ai_requested" && STATUSES[5..].contains(&body["status"].as_str().unwrap()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        raw.sim.callbacks_done(&Rid::new(rid.as_str())).await;
    }
    // And every callback it sent.
    let callbacks = receiver.drain();
    assert!(callbacks.len() >= rids.len());
    for callback in &callbacks {
        check_status_body(&callback.body).unwrap_or_else(|e| panic!("callback {e}: {}", callback.body));
    }
    // Error answers.
    for path in ["/no-such-rid", "/no-such-rid/srt"] {
        let body: Value = raw.get(path).await.json().await.unwrap();
        check_error_body(&body).unwrap();
    }
    println!("{seen} polled bodies and {} callbacks checked", callbacks.len());
}

#[tokio::test]
async fn omitted_boost_and_enable_flags_follow_the_spec() {
    let raw = Raw::start(quick()).await;
    let rid = raw
        .submit(
            "https://a.example/x.wav",
            json!({"sttConfig": {"keywordBoost": {"enable": true, "keywords": ["다글로"]},
                                 "speakerDiarization": {"speakerCountHint": 3}},
                   "nlpConfig": {"keywordExtraction": {"maxCount": 2}}}),
        )
        .await;
    let body: Value = raw.get(&format!("/{rid}")).await.json().await.unwrap();
    assert_eq!(body["status"], "transcribed", "{body}");
    // Diarization and extraction were not enabled: no speakers, no keywords.
    let result = &body["sttResults"][0];
    assert!(result.get("keywords").is_none(), "{result}");
    assert!(result["words"][0].get("speaker").is_none());
}

#[tokio::test]
async fn audio_too_short_for_a_word_is_an_empty_result_on_both_gets() {
    let raw = Raw::start(quick()).await;
    let rid = raw
        .submit("https://a.example/blip.wav?duration=0", json!({}))
        .await;
    assert_eq!(raw.get(&format!("/{rid}")).await.status(), 204);
    assert_eq!(raw.get(&format!("/{rid}/srt")).await.status(), 204);
}

#[tokio::test]
async fn has_keyword_marks_exactly_the_extracted_keywords() {
    let raw = Raw::start(quick()).await;
    let rid = raw
        .submit(
            "https://a.example/x.wav",
            json!({"sttConfig": {"keywordBoost": {"enable": true, "keywords": ["boosted"], "boost": 10}},
                   "nlpConfig": {"keywordExtraction": {"enable": true, "maxCount": 3}}}),
        )
        .await;
    let body: Value = raw.get(&format!("/{rid}")).await.json().await.unwrap();
    let result = &body["sttResults"][0];
    let keywords: Vec<&str> = result["keywords"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(keywords.len(), 3);
    for word in result["words"].as_array().unwrap() {
        let stem = word["word"].as_str().unwrap().trim().trim_end_matches('.');
        assert_eq!(
            word["hasKeyword"].as_bool(),
            Some(keywords.contains(&stem)),
            "{word}"
        );
    }
}

#[tokio::test]
async fn sentiment_is_served_when_asked_and_is_deterministic() {
    let sentiment = |raw: Raw| async move {
        let rid = raw
            .submit(
                "https://a.example/x.wav",
                json!({"nlpConfig": {"sentimentAnalysis": {"enable": true}}}),
            )
            .await;
        let body: Value = raw.get(&format!("/{rid}")).await.json().await.unwrap();
        (
            body["sttResults"][0]["sentiment"].clone(),
            body["sttResults"][0]["sentimentScore"].clone(),
        )
    };
    let (label, score) = sentiment(Raw::start(quick()).await).await;
    assert!(["Positive", "Negative", "Neutral"].contains(&label.as_str().unwrap()));
    let total: f64 = ["neutral", "negative", "positive"]
        .iter()
        .map(|p| score[p].as_f64().unwrap())
        .sum();
    assert!((total - 100.0).abs() < 0.2, "{score}");
    assert_eq!(
        sentiment(Raw::start(quick()).await).await,
        (label, score),
        "same seed, same answer"
    );

    let raw = Raw::start(quick()).await;
    let rid = raw.submit("https://a.example/x.wav", json!({})).await;
    let body: Value = raw.get(&format!("/{rid}")).await.json().await.unwrap();
    assert!(
        body["sttResults"][0].get("sentiment").is_none(),
        "only when asked"
    );
}

#[tokio::test]
async fn routing_methods_and_audio_urls_match_the_service() {
    let raw = Raw::start(quick()).await;
    let rid = raw.submit("https://a.example/x.wav", json!({})).await;
    let wrong_method = raw
        .http
        .delete(raw.url(&format!("/{rid}")))
        .bearer_auth("sim-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(wrong_method.headers()["allow"], "GET");
    let wrong_submit = raw
        .http
        .get(raw.url(""))
        .bearer_auth("sim-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_submit.headers()["allow"], "POST");
    let glued = format!("{}/stt/v1/async/transcripts{rid}", raw.sim.base_url());
    let answer = raw.http.get(glued).bearer_auth("sim-token").send().await.unwrap();
    assert_eq!(answer.status(), 404, "`/transcriptsXYZ` is not rid XYZ");
    for url in [
        "ftp://a.example/x.wav",
        "/relative/x.wav",
        "a.example/x.wav",
        "https://",
    ] {
        let answer = raw.submit_json(json!({"audio": {"source": {"url": url}}})).await;
        assert_eq!(answer.status(), 400, "{url}");
        check_error_body(&answer.json().await.unwrap()).unwrap();
    }
}

/// Strict as the schema (`additionalProperties: false` throughout): an unknown field, or `null`
/// where an object belongs, is a `400` naming the field — in a JSON body and in a multipart part
/// alike — and nothing is created. `SimConfig::lenient` keeps the old tolerance.
#[tokio::test]
async fn what_the_schema_forbids_is_refused_naming_the_field() {
    let raw = Raw::start(quick()).await;
    let audio = json!({"source": {"url": "https://a.example/a.wav"}});
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"speakerDiarisation": {"enable": true}}),
            "speakerDiarisation",
        ),
        (json!({"sttConfig": {"languge": "ko-KR"}}), "sttConfig.languge"),
        (
            json!({"sttConfig": {"keywordBoost": {"enable": true, "strength": 3}}}),
            "sttConfig.keywordBoost.strength",
        ),
        (
            json!({"sttConfig": {"multiChannel": {"channels": 2}}}),
            "sttConfig.multiChannel.channels",
        ),
        (
            json!({"sttConfig": {"speakerDiarization": {"enable": true, "count": 2}}}),
            "sttConfig.speakerDiarization.count",
        ),
        (
            json!({"nlpConfig": {"summary": {"enable": true}}}),
            "nlpConfig.summary",
        ),
        (
            json!({"nlpConfig": {"keywordExtraction": {"enable": true, "max": 3}}}),
            "nlpConfig.keywordExtraction.max",
        ),
        (
            json!({"nlpConfig": {"sentimentAnalysis": {"enable": true, "model": "x"}}}),
            "nlpConfig.sentimentAnalysis.model",
        ),
        (
            json!({"callback": {"url": "https://h.example/cb", "secret": "s"}}),
            "callback.secret",
        ),
        (json!({"callback": null}), "callback"),
        (json!({"sttConfig": null}), "sttConfig"),
        (json!({"nlpConfig": null}), "nlpConfig"),
        (json!({"custom": null}), "custom"),
        (
            json!({"sttConfig": {"keywordBoost": null}}),
            "sttConfig.keywordBoost",
        ),
    ];
    for (extra, field) in &cases {
        let mut body = json!({"audio": audio});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let answer = raw.submit_json(body.clone()).await;
        assert_eq!(answer.status(), 400, "JSON {body}");
        let error = answer.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(error.contains(&format!("`{field}`")), "JSON {body}: {error}");

        // The same mistake in a multipart part (object fields travel as JSON text parts).
        let mut form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(vec![1_u8; 16_000]).file_name("a.wav"),
        );
        let mut top_level_only = false;
        for (name, value) in extra.as_object().unwrap() {
            if ["sttConfig", "nlpConfig", "callback", "custom"].contains(&name.as_str()) {
                form = form.text(name.clone(), value.to_string());
            } else {
                top_level_only = true;
            }
        }
        if top_level_only {
            continue; // a multipart body has no top-level JSON object to misspell a key in
        }
        let answer = raw
            .http
            .post(raw.url(""))
            .bearer_auth(raw.sim.token())
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 400, "multipart {extra}");
        let error = answer.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            error.contains(&format!("`{field}`")),
            "multipart {extra}: {error}"
        );
    }
    assert!(raw.sim.jobs().is_empty(), "nothing was created");
    // Everything the schema allows still goes through.
    raw.submit(
        "https://a.example/a.wav",
        json!({"sttConfig": {"model": "general", "language": "en-US",
                             "keywordBoost": {"enable": true, "keywords": ["a"], "boost": 5},
                             "multiChannel": {"channelCount": 1},
                             "speakerDiarization": {"enable": true, "speakerCountHint": 2}},
               "nlpConfig": {"keywordExtraction": {"enable": true, "maxCount": 3},
                             "sentimentAnalysis": {"enable": true}},
               "callback": {"url": "https://h.example/cb", "headers": {"X-Any-Name": "v"}},
               "custom": {"anything": {"nested": [1, null]}}}),
    )
    .await;

    let lenient = Raw::start(quick().lenient()).await;
    for (extra, _) in &cases {
        let mut body = json!({"audio": audio});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        assert_eq!(
            lenient.submit_json(body.clone()).await.status(),
            200,
            "lenient: {body}"
        );
    }
}
