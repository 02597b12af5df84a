//! The multipart body of a file submit, with the file streamed from disk.

use daglo_core::internal::lock;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use daglo_core::{JobOptions, ValidationError};
use futures_util::Stream;
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

/// How far an upload got. A multipart submit whose file was not read to its end cannot have
/// created a job (the service needs the whole file), so the submit may be repeated; once the
/// last byte has left, the answer is what is awaited.
#[derive(Debug, Default)]
pub(crate) struct UploadProgress {
    sent: AtomicU64,
    finished: AtomicBool,
}

impl UploadProgress {
    /// Bytes of the file handed to the connection so far.
    pub(crate) fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Whether the whole file was handed to the connection.
    pub(crate) fn finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }
}

/// The file's chunks, counted into an [`UploadProgress`] as the connection pulls them.
struct Tracked<S> {
    inner: S,
    progress: Arc<UploadProgress>,
}

impl<S, T, E> Stream for Tracked<S>
where
    S: Stream<Item = Result<T, E>> + Unpin,
    T: AsRef<[u8]>,
{
    type Item = Result<T, E>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = Pin::new(&mut self.inner).poll_next(cx);
        match &next {
            Poll::Ready(Some(Ok(chunk))) => {
                self.progress
                    .sent
                    .fetch_add(chunk.as_ref().len() as u64, Ordering::Relaxed);
            }
            Poll::Ready(None) => self.progress.finished.store(true, Ordering::Release),
            _ => {}
        }
        next
    }
}

/// Where an upload's bytes come from.
pub(crate) enum UploadSource {
    /// A file on disk, opened for each attempt.
    File(std::path::PathBuf),
    /// Bytes in memory, cheap to send again.
    Bytes(bytes::Bytes),
    /// A reader, which can be read once: a second attempt finds it taken.
    Reader(std::sync::Mutex<Option<Box<dyn tokio::io::AsyncRead + Send + Unpin>>>),
}

/// A form whose `file` part streams `source` in chunks as the request is sent, counting them
/// into `progress`. The option fields go first, so the file's last byte is nearly the body's
/// last.
pub(crate) async fn form(
    source: &UploadSource,
    file_name: &str,
    length: u64,
    fields: &[(&'static str, String)],
    progress: Arc<UploadProgress>,
) -> Result<Form, Error> {
    let body = match source {
        UploadSource::File(path) => {
            let file = tokio::fs::File::open(path).await.map_err(|source| Error::File {
                path: path.clone(),
                source,
            })?;
            Body::wrap_stream(Tracked {
                inner: ReaderStream::with_capacity(file, 64 * 1024),
                progress,
            })
        }
        UploadSource::Bytes(bytes) => {
            let chunks = bytes
                .chunks(64 * 1024)
                .map(|chunk| Ok::<_, std::io::Error>(bytes.slice_ref(chunk)))
                .collect::<Vec<_>>();
            Body::wrap_stream(Tracked {
                inner: futures_util::stream::iter(chunks),
                progress,
            })
        }
        UploadSource::Reader(reader) => {
            let reader = lock(reader).take().ok_or_else(|| {
                ValidationError::new(
                    "file",
                    "the stream was refused before its upload finished (no job was created) and a stream \
                     cannot be read twice: start again with a new one",
                )
            })?;
            Body::wrap_stream(Tracked {
                inner: ReaderStream::with_capacity(reader, 64 * 1024),
                progress,
            })
        }
    };
    let part = Part::stream_with_length(body, length)
        .file_name(file_name.to_owned())
        .mime_str("application/octet-stream")
        .map_err(Error::transport)?;
    let mut form = Form::new();
    for (name, json) in fields {
        form = form.text(*name, json.clone());
    }
    Ok(form.part("file", part))
}

fn to_text(value: &impl serde::Serialize) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| ValidationError::new("options", e.to_string()).into())
}
