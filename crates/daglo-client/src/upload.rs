//! The multipart body of a file submit, with the file streamed from disk.

use std::path::Path;

use daglo_core::{JobOptions, ValidationError};
use reqwest::Body;
use reqwest::multipart::{Form, Part};
use tokio_util::io::ReaderStream;

use crate::error::Error;

/// The optional fields as JSON text parts, serialised once for every attempt.
pub(crate) fn option_fields(options: &JobOptions) -> Result<Vec<(&'static str, String)>, Error> {
    let mut fields = Vec::new();
    if let Some(stt) = &options.stt_config {
        fields.push(("sttConfig", to_text(stt)?));
    }
    if let Some(nlp) = &options.nlp_config {
        fields.push(("nlpConfig", to_text(nlp)?));
    }
    if let Some(callback) = &options.callback {
        fields.push(("callback", to_text(callback)?));
    }
    if let Some(custom) = &options.custom {
        fields.push(("custom", to_text(custom)?));
    }
    Ok(fields)
}

/// A form whose `file` part reads `path` in chunks as the request is sent.
pub(crate) async fn form(
    path: &Path,
    file_name: &str,
    length: u64,
    fields: &[(&'static str, String)],
) -> Result<Form, Error> {
    let file = tokio::fs::File::open(path).await.map_err(|source| Error::File {
        path: path.to_owned(),
        source,
    })?;
    let stream = Body::wrap_stream(ReaderStream::with_capacity(file, 64 * 1024));
    let part = Part::stream_with_length(stream, length)
        .file_name(file_name.to_owned())
        .mime_str("application/octet-stream")
        .map_err(Error::transport)?;
    let mut form = Form::new().part("file", part);
    for (name, json) in fields {
        form = form.text(*name, json.clone());
    }
    Ok(form)
}

fn to_text(value: &impl serde::Serialize) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| ValidationError::new("options", e.to_string()).into())
}
