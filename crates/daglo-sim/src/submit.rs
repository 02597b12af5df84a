//! Reading a submit: the JSON body or the multipart form, streamed.

use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::{BodyExt, BodyStream, Limited};
use hyper::body::Incoming;
use serde_json::{Map, Value};

use daglo_core::{JobOptions, check_media_file_name};

/// A submit as read off the wire, before it becomes a job.
#[derive(Debug)]
pub(crate) struct ReadSubmit {
    /// The URL or file name.
    pub(crate) audio_name: String,
    pub(crate) file_name: Option<String>,
    pub(crate) file_bytes: Option<u64>,
    /// Every uploaded byte was zero: silent audio.
    pub(crate) silent_upload: bool,
    /// The options, or why they are invalid (the job then ends in `input_error`).
    pub(crate) options: Result<JobOptions, String>,
}

/// Why a submit was refused before a job existed: an HTTP status and the error text.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) status: u16,
    pub(crate) message: String,
}

fn refuse(status: u16, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        message: message.into(),
    }
}

/// What a submit body may hold, as the published schema says: the objects whose
/// `additionalProperties` is `false` list their keys; `custom` and `callback.headers` are
/// objects of any keys. Every one of them must be an object — never `null`.
#[derive(Debug)]
enum Shape {
    /// An object with exactly these keys (each optional).
    Closed(&'static [(&'static str, Self)]),
    /// An object with any keys.
    Open,
    /// A value the option decoder checks (strings, numbers, lists).
    Value,
}

const KEYWORD_BOOST: Shape = Shape::Closed(&[
    ("enable", Shape::Value),
    ("keywords", Shape::Value),
    ("boost", Shape::Value),
]);
const STT_CONFIG: Shape = Shape::Closed(&[
    ("model", Shape::Value),
    ("language", Shape::Value),
    ("keywordBoost", KEYWORD_BOOST),
    ("multiChannel", Shape::Closed(&[("channelCount", Shape::Value)])),
    (
        "speakerDiarization",
        Shape::Closed(&[("enable", Shape::Value), ("speakerCountHint", Shape::Value)]),
    ),
]);
const NLP_CONFIG: Shape = Shape::Closed(&[
    (
        "keywordExtraction",
        Shape::Closed(&[("enable", Shape::Value), ("maxCount", Shape::Value)]),
    ),
    ("sentimentAnalysis", Shape::Closed(&[("enable", Shape::Value)])),
]);
const CALLBACK: Shape = Shape::Closed(&[("url", Shape::Value), ("headers", Shape::Open)]);
/// The submit body's options, JSON and multipart alike (the deprecated `callbackUrl` string is
/// accepted, as the contract asks of the emulator).
const OPTIONS: Shape = Shape::Closed(&[
    ("audio", Shape::Value),
    ("sttConfig", STT_CONFIG),
    ("nlpConfig", NLP_CONFIG),
    ("callback", CALLBACK),
    ("custom", Shape::Open),
    ("callbackUrl", Shape::Value),
]);

/// Checks `fields` against the schema: an unknown key, or `null` (or anything but an object)
/// where the schema has an object, is refused with `400` naming the field.
fn check_shape(fields: &Map<String, Value>) -> Result<(), Refusal> {
    check_object("", fields, &OPTIONS)
}

fn check_object(path: &str, fields: &Map<String, Value>, shape: &Shape) -> Result<(), Refusal> {
    let Shape::Closed(known) = shape else {
        return Ok(());
    };
    for (key, value) in fields {
        let field = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        let Some((_, inner)) = known.iter().find(|(name, _)| name == key) else {
            return Err(refuse(
                400,
                format!(
                    "unknown field `{}`: the schema allows no such field",
                    daglo_core::excerpt(&field, 80)
                ),
            ));
        };
        match (inner, value) {
            (Shape::Value, _) => {}
            (Shape::Closed(_) | Shape::Open, Value::Object(object)) => check_object(&field, object, inner)?,
            (Shape::Closed(_) | Shape::Open, Value::Null) => {
                return Err(refuse(
                    400,
                    format!("`{field}` is null; the schema wants an object (leave it out instead)"),
                ));
            }
            (Shape::Closed(_) | Shape::Open, _) => {
                return Err(refuse(400, format!("`{field}` must be an object")));
            }
        }
    }
    Ok(())
}

pub(crate) async fn read_json(body: Incoming, max_bytes: usize, strict: bool) -> Result<ReadSubmit, Refusal> {
    let bytes = Limited::new(body, max_bytes)
        .collect()
        .await
        .map_err(|_| refuse(413, format!("JSON body larger than {max_bytes} bytes")))?
        .to_bytes();
    let value: Value =
        serde_json::from_slice(&bytes).map_err(|e| refuse(400, format!("malformed JSON: {e}")))?;
    let Value::Object(mut fields) = value else {
        return Err(refuse(400, "the body must be a JSON object"));
    };
    if strict {
        check_shape(&fields)?;
    }
    let url = fields
        .remove("audio")
        .and_then(|audio| audio.get("source")?.get("url")?.as_str().map(str::to_owned))
        .ok_or_else(|| refuse(400, "audio.source.url is required"))?;
    if url.trim().is_empty() {
        return Err(refuse(400, "audio.source.url is empty"));
    }
    // The service fetches the audio itself: only an absolute http(s) URL can be fetched.
    let fetchable = url.split_once("://").is_some_and(|(scheme, rest)| {
        matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https")
            && !rest.is_empty()
            && !rest.starts_with('/')
    });
    if !fetchable {
        return Err(refuse(400, "audio.source.url must be an absolute http(s) URL"));
    }
    Ok(ReadSubmit {
        audio_name: url,
        file_name: None,
        file_bytes: None,
        silent_upload: false,
        options: decode_options(fields),
    })
}

const TEXT_FIELDS: [&str; 5] = ["sttConfig", "nlpConfig", "callback", "custom", "callbackUrl"];

pub(crate) async fn read_multipart(
    body: Incoming,
    content_type: &str,
    max_upload: u64,
    strict: bool,
) -> Result<ReadSubmit, Refusal> {
    let boundary = multer::parse_boundary(content_type)
        .map_err(|e| refuse(400, format!("bad multipart content type: {e}")))?;
    let stream = BodyStream::new(body).try_filter_map(|frame| async move { Ok(frame.into_data().ok()) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut fields = Map::new();
    let mut file: Option<(String, u64, bool)> = None;
    while let Some(mut field) = form
        .next_field()
        .await
        .map_err(|e| refuse(400, format!("malformed multipart body: {e}")))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            let file_name = field
                .file_name()
                .map(str::to_owned)
                .ok_or_else(|| refuse(400, "the `file` part has no file name"))?;
            check_media_file_name(&file_name).map_err(|e| refuse(415, e.to_string()))?;
            let (mut size, mut all_zero) = (0u64, true);
            // Stream the part: count and inspect each chunk, keep none of it.
            while let Some(chunk) = field
                .chunk()
                .await
                .map_err(|e| refuse(400, format!("malformed multipart body: {e}")))?
            {
                size += chunk.len() as u64;
                if size > max_upload {
                    return Err(refuse(413, format!("the file is larger than {max_upload} bytes")));
                }
                all_zero &= chunk.iter().all(|b| *b == 0);
            }
            file = Some((file_name, size, all_zero));
        } else if TEXT_FIELDS.contains(&name.as_str()) {
            let text = field
                .text()
                .await
                .map_err(|e| refuse(400, format!("malformed `{name}` part: {e}")))?;
            let value = if name == "callbackUrl" {
                Value::String(text)
            } else {
                serde_json::from_str(&text).map_err(|e| refuse(400, format!("`{name}` is not JSON: {e}")))?
            };
            fields.insert(name, value);
        }
        // Unknown parts are skipped (multer drains them), as an HTTP API ignores unknown fields.
    }
    let (file_name, size, all_zero) = file.ok_or_else(|| refuse(400, "the `file` part is required"))?;
    if strict {
        check_shape(&fields)?;
    }
    Ok(ReadSubmit {
        audio_name: file_name.clone(),
        file_name: Some(file_name),
        file_bytes: Some(size),
        silent_upload: all_zero,
        options: decode_options(fields),
    })
}

/// Decodes and validates the optional fields; the deprecated `callbackUrl` stands in for
/// `callback.url` when `callback` is absent.
fn decode_options(mut fields: Map<String, Value>) -> Result<JobOptions, String> {
    if let Some(url) = fields.remove("callbackUrl") {
        fields
            .entry("callback")
            .or_insert_with(|| serde_json::json!({ "url": url }));
    }
    let bytes = Bytes::from(serde_json::to_vec(&Value::Object(fields)).unwrap_or_default());
    let options: JobOptions = daglo_core::decode_json("submit options", &bytes)
        .map_err(|e| format!("{}: {}", e.path(), e.message()))?;
    options.validate().map_err(|e| e.to_string())?;
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_decode_validate_and_accept_the_deprecated_callback_url() {
        let fields = |v: Value| v.as_object().unwrap().clone();
        let options = decode_options(fields(serde_json::json!({"callbackUrl": "https://h/cb"}))).unwrap();
        assert_eq!(options.callback.unwrap().url, "https://h/cb");
        let err = decode_options(fields(serde_json::json!({"sttConfig": {"language": "xx"}}))).unwrap_err();
        assert!(err.contains("sttConfig.language"), "{err}");
        let err = decode_options(fields(
            serde_json::json!({"sttConfig": {"keywordBoost": {"enable": true, "boost": 99}}}),
        ))
        .unwrap_err();
        assert!(err.contains("boost"), "{err}");
    }
}
