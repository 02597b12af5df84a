//! Decoding bodies with errors that say where they failed.

use serde::de::DeserializeOwned;

use crate::body::{ErrorBody, StatusBody};
use crate::error::DecodeError;
use crate::request::SubmitResponse;

/// Decodes `body` as JSON into `T`; on failure the error names the JSON path where decoding
/// stopped and keeps an excerpt of the body. `what` names the body in the message.
///
/// A body that decodes is read once, directly; only a failed one is read a second time,
/// tracking the path (doing that for every body cost a copy of every key it holds).
pub fn decode_json<T: DeserializeOwned>(what: &'static str, body: &[u8]) -> Result<T, DecodeError> {
    decode_json_with(what, body, |read| read())
}

/// [`decode_json`], each reading of the body run inside `around` (the memory budget).
pub(crate) fn decode_json_with<T: DeserializeOwned>(
    what: &'static str,
    body: &[u8],
    around: impl Fn(&mut dyn FnMut() -> Result<T, DecodeError>) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let fast = around(&mut || {
        // Checked as UTF-8 once, the text is not checked again string by string.
        match std::str::from_utf8(body) {
            Ok(text) => serde_json::from_str(text),
            Err(_) => serde_json::from_slice(body),
        }
        .map_err(|e| DecodeError::new(what, "", &e.to_string(), body))
    });
    if fast.is_ok() {
        return fast;
    }
    around(&mut || {
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        let value = serde_path_to_error::deserialize(&mut deserializer)
            .map_err(|e| DecodeError::new(what, &e.path().to_string(), &e.inner().to_string(), body))?;
        deserializer
            .end()
            .map_err(|e| DecodeError::new(what, "", &e.to_string(), body))?;
        Ok(value)
    })
}

/// Decodes what moves a job from a status body — `status`, `progress`, `rid` and `message`,
/// read as [`decode_status_body`] reads them — and reads past everything else (results,
/// `custom`, unknown fields) without building it: a progress callback's whole decode, or a
/// final's first look before its results are read. Errors name the path as
/// [`decode_status_body`]'s do.
///
/// ```
/// use daglo_core::{decode_status_head, Status};
///
/// let head = decode_status_head(br#"{"rid": 7, "status": "transcribing", "progress": "41.6",
///     "sttResults": [{"transcript": "not read"}]}"#)?;
/// assert_eq!(head.status, Status::Transcribing);
/// assert_eq!(head.progress, Some(42));
/// assert_eq!(head.rid.unwrap().as_str(), "7");
/// assert!(head.stt_results.is_none());
/// # Ok::<(), daglo_core::DecodeError>(())
/// ```
pub fn decode_status_head(body: &[u8]) -> Result<StatusBody, DecodeError> {
    decode_json::<crate::body::StatusHead>("status body", body).map(|head| head.0)
}

/// Decodes a status/result body (polling answer or callback), taking at most
/// [`DECODE_RATIO`](crate::DECODE_RATIO) times its size in memory (plus
/// [`DECODE_FLOOR`](crate::DECODE_FLOOR)): a body that would take more — a million one-letter
/// words, say — is refused with an error saying so, before it is built.
pub fn decode_status_body(body: &[u8]) -> Result<StatusBody, DecodeError> {
    decode_json_with("status body", body, |read| {
        crate::budget::within(body.len(), read)
    })
}

/// Decodes the answer to a submit.
pub fn decode_submit_response(body: &[u8]) -> Result<SubmitResponse, DecodeError> {
    decode_json("submit answer", body)
}

/// Decodes an error body `{"error": "…"}`.
pub fn decode_error_body(body: &[u8]) -> Result<ErrorBody, DecodeError> {
    decode_json("error body", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_path() {
        let body = br#"{"status":"transcribed","sttResults":[{"transcript":"x","words":[
            {"word":"a","startTime":{"seconds":"0","nanos":0}}, "not a word"]}]}"#;
        let err = decode_status_body(body).unwrap_err();
        assert_eq!(err.path(), "sttResults[0].words[1]");
        assert!(err.message().contains("invalid type"), "{err}");
        assert!(err.excerpt().starts_with("{\"status\""));
    }

    /// The head decoder reads status, progress, rid and message exactly as the whole-body
    /// decoder does, builds nothing else, and fails where the whole body's head would.
    #[test]
    fn the_head_reads_what_the_whole_body_reads_and_nothing_else() {
        let bodies: [&[u8]; 7] = [
            br#"{"status":"transcribing","progress":40}"#,
            br#"{"rid":12345,"status":"postProcessing","progress":"99.5","message":null}"#,
            br#"{"rid":"r-1","status":"transcribed","progress":100,"message":"done",
                "sttResults":[{"transcript":"hi","words":[]}],"custom":{"a":[1,2]},"later":true}"#,
            br#"{"status":"a status from the future","progress":-3,"rid":true}"#,
            br#"{"status":"uploaded","progress":{"odd":1},"message":7,"status":"transcribing"}"#,
            br#"{"status":"fileError","message":"\u00e9\"quoted\""}"#,
            br#"{"sttResults":"not a list","status":"transcribed"}"#,
        ];
        for body in bodies {
            let head = decode_status_head(body).unwrap();
            let text = String::from_utf8_lossy(body);
            assert!(
                head.stt_results.is_none() && head.custom.is_none() && head.extra.is_empty(),
                "{text}"
            );
            if let Ok(whole) = decode_status_body(body) {
                assert_eq!(
                    (head.status, head.progress, head.rid, head.message),
                    (whole.status, whole.progress, whole.rid, whole.message),
                    "{text}"
                );
            }
        }
        // Results the budget would refuse are read past, not built.
        let words = vec![r#"{"word":"a"}"#; 200_000].join(",");
        let huge =
            format!(r#"{{"status":"transcribed","sttResults":[{{"words":[{words}]}}],"progress":100}}"#);
        assert!(decode_status_body(huge.as_bytes()).is_err());
        assert_eq!(decode_status_head(huge.as_bytes()).unwrap().progress, Some(100));
        // What no body may lack or garble, with the path named.
        let err = decode_status_head(br#"{"progress":5}"#).unwrap_err();
        assert!(err.message().contains("missing field `status`"), "{err}");
        let err = decode_status_head(br#"{"status":{"secret":"merger"},"progress":5}"#).unwrap_err();
        assert_eq!(err.path(), "status");
        assert!(decode_status_head(b"{\"status\": ").is_err());
        assert!(decode_status_head(b"[]").is_err());
    }

    #[test]
    fn a_body_that_would_take_more_than_four_times_its_size_is_refused() {
        let words = vec![r#"{"word":"a"}"#; 200_000].join(",");
        let tiny =
            format!(r#"{{"status":"transcribed","sttResults":[{{"transcript":"a","words":[{words}]}}]}}"#);
        let err = decode_status_body(tiny.as_bytes()).unwrap_err();
        assert!(err.message().contains("4× its size"), "{err}");
        assert!(err.path().starts_with("sttResults[0].words"), "{err}");
        let real = vec![
            r#"{"word":"안녕하세요 ","startTime":{"seconds":"1","nanos":200000000},"endTime":{"seconds":"1","nanos":700000000},"speaker":"1"}"#;
            50_000
        ]
        .join(",");
        let real =
            format!(r#"{{"status":"transcribed","sttResults":[{{"transcript":"a","words":[{real}]}}]}}"#);
        assert_eq!(
            decode_status_body(real.as_bytes()).unwrap().stt_results.unwrap()[0]
                .words
                .len(),
            50_000
        );
        let results = vec!["{}"; 100_000].join(",");
        let empty = format!(r#"{{"status":"transcribed","sttResults":[{results}]}}"#);
        assert!(
            decode_status_body(empty.as_bytes()).is_err(),
            "a million empty results are refused too"
        );
        let keywords = vec![r#""k""#; 200_000].join(",");
        let keywords = format!(
            r#"{{"status":"transcribed","sttResults":[{{"transcript":"a","keywords":[{keywords}]}}]}}"#
        );
        assert!(decode_status_body(keywords.as_bytes()).is_err());
        let unknown = format!(
            r#"{{"status":"transcribed","x":[{}]}}"#,
            vec!["0"; 200_000].join(",")
        );
        assert!(decode_status_body(unknown.as_bytes()).is_err());
    }

    #[test]
    fn missing_status_and_trailing_garbage_are_errors() {
        let err = decode_status_body(br#"{"rid":"r"}"#).unwrap_err();
        assert!(err.message().contains("status"), "{err}");
        assert!(decode_status_body(br#"{"status":"uploaded"} trailing"#).is_err());
        let err = decode_status_body(b"<html>").unwrap_err();
        assert_eq!(err.path(), ".");
    }
}
