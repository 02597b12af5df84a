//! The submit request and its answer.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::options::{JobOptions, JsonObject, check_http_url};

/// The request id the service assigns to a job: the only handle to it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Rid(String);

impl Rid {
    /// Wraps an id, e.g. one saved before a restart.
    pub fn new(rid: impl Into<String>) -> Self {
        Self(rid.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Rid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Rid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rid({})", self.0)
    }
}

impl From<&str> for Rid {
    fn from(rid: &str) -> Self {
        Self::new(rid)
    }
}

impl From<String> for Rid {
    fn from(rid: String) -> Self {
        Self(rid)
    }
}

/// The JSON body of a submit whose audio sits at a public URL.
///
/// ```
/// use daglo::{JobOptions, Language};
/// use daglo::models::SubmitRequest;
///
/// let options = JobOptions::builder().language(Language::EnUs).build()?;
/// let request = SubmitRequest::new("https://example.com/meeting.wav", options)?;
/// assert_eq!(
///     serde_json::to_value(&request)?,
///     serde_json::json!({
///         "audio": {"source": {"url": "https://example.com/meeting.wav"}},
///         "sttConfig": {"language": "en-US"}
///     })
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SubmitRequest {
    /// Where the audio is.
    pub audio: Audio,
    /// Everything else.
    #[serde(flatten)]
    pub options: JobOptions,
}

/// `audio`: the audio of a JSON submit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Audio {
    /// `audio.source`.
    pub source: AudioSource,
}

/// `audio.source`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AudioSource {
    /// A public `http`/`https` URL of the audio file.
    pub url: String,
}

impl SubmitRequest {
    /// A request for the audio at `url`, with `options`; both are validated.
    pub fn new(url: impl Into<String>, options: JobOptions) -> Result<Self, ValidationError> {
        let request = Self {
            audio: Audio {
                source: AudioSource { url: url.into() },
            },
            options,
        };
        request.validate()?;
        Ok(request)
    }

    /// Checks the audio URL and every option.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_http_url("audio.source.url", &self.audio.source.url)?;
        self.options.validate()
    }
}

/// The `200` answer to a submit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SubmitResponse {
    /// The new job's id.
    pub rid: Rid,
    /// The uploaded file's name, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// The submit's `custom`, echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<JsonObject>,
}

impl SubmitResponse {
    /// An answer for `rid` with no file name and no `custom`.
    pub fn new(rid: Rid) -> Self {
        Self {
            rid,
            file_name: None,
            custom: None,
        }
    }
}

/// Audio containers the service accepts for upload.
pub const AUDIO_EXTENSIONS: &[&str] = &[
    "3gp", "3gpp", "ac3", "aac", "aiff", "amr", "au", "flac", "m4a", "mp3", "mxf", "opus", "ra", "wav",
    "weba",
];

/// Video containers the service accepts for upload.
pub const VIDEO_EXTENSIONS: &[&str] = &[
    "asx", "avi", "ogm", "ogv", "m4v", "mov", "mp4", "mpeg", "mpg", "wmv",
];

/// The largest upload the service accepts: 2 GB.
pub const MAX_UPLOAD_BYTES: u64 = 2_000_000_000;

/// Checks that a file name ends in an accepted container extension (case-insensitive).
///
/// The service answers `415` otherwise; checking first saves uploading gigabytes for nothing.
pub fn check_media_file_name(name: &str) -> Result<(), ValidationError> {
    let extension = Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension {
        Some(ext) if AUDIO_EXTENSIONS.contains(&ext.as_str()) || VIDEO_EXTENSIONS.contains(&ext.as_str()) => {
            Ok(())
        }
        Some(ext) => Err(ValidationError::new(
            "file",
            format!(
                "`.{}` is not an accepted audio or video container",
                crate::error::excerpt(&ext, 20)
            ),
        )),
        None => Err(ValidationError::new(
            "file",
            format!(
                "`{}` has no extension; the service needs one of its accepted containers",
                crate::error::excerpt(name, 80)
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_names_are_checked_case_insensitively() {
        check_media_file_name("meeting.WAV").unwrap();
        check_media_file_name("/tmp/a.b/clip.mp4").unwrap();
        assert_eq!(check_media_file_name("notes.txt").unwrap_err().field(), "file");
        assert!(
            check_media_file_name("README")
                .unwrap_err()
                .reason()
                .contains("no extension")
        );
    }

    #[test]
    fn audio_url_must_be_absolute_http() {
        let err = SubmitRequest::new("file:///tmp/a.wav", JobOptions::default()).unwrap_err();
        assert_eq!(err.field(), "audio.source.url");
    }
}
