//! Decoding bodies with errors that say where they failed.

use serde::de::DeserializeOwned;

use crate::body::{ErrorBody, StatusBody};
use crate::error::DecodeError;
use crate::request::SubmitResponse;

/// Decodes `body` as JSON into `T`; on failure the error names the JSON path where decoding
/// stopped and keeps an excerpt of the body. `what` names the body in the message.
pub fn decode_json<T: DeserializeOwned>(what: &'static str, body: &[u8]) -> Result<T, DecodeError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|e| DecodeError::new(what, &e.path().to_string(), &e.inner().to_string(), body))?;
    deserializer
        .end()
        .map_err(|e| DecodeError::new(what, "", &e.to_string(), body))?;
    Ok(value)
}

/// Decodes a status/result body (polling answer or callback).
pub fn decode_status_body(body: &[u8]) -> Result<StatusBody, DecodeError> {
    decode_json("status body", body)
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

    #[test]
    fn missing_status_and_trailing_garbage_are_errors() {
        let err = decode_status_body(br#"{"rid":"r"}"#).unwrap_err();
        assert!(err.message().contains("status"), "{err}");
        assert!(decode_status_body(br#"{"status":"uploaded"} trailing"#).is_err());
        let err = decode_status_body(b"<html>").unwrap_err();
        assert_eq!(err.path(), ".");
    }
}
