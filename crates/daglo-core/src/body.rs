//! The status/result body served by `GET …/transcripts/{rid}` and POSTed to callbacks.

use serde::{Deserialize, Deserializer, Serialize};

use crate::offset::TimeOffset;
use crate::options::JsonObject;
use crate::request::Rid;
use crate::status::Status;

/// A job's state as the service reports it, while running and at the end.
///
/// The same shape arrives from polling and in callbacks. Callback bodies may lack `rid`, and
/// the service may add fields: unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct StatusBody {
    /// The job's id; absent from some callback bodies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rid: Option<Rid>,
    /// Where the job is in its life. The truth about success or failure is here, not in the
    /// HTTP status, which is `200` either way.
    pub status: Status,
    /// Percent done, while processing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<u32>,
    /// The transcript: one entry per channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stt_results: Option<Vec<SttResult>>,
    /// Extra information, such as an error text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The submit's `custom`, echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<JsonObject>,
}

impl StatusBody {
    /// A body with only `status` set.
    pub fn new(status: Status) -> Self {
        StatusBody {
            rid: None,
            status,
            progress: None,
            stt_results: None,
            message: None,
            custom: None,
        }
    }

    /// Whether a finished job produced no text at all: no results, or only empty transcripts.
    ///
    /// The service reports silent audio as `204` when polled; a callback body for the same job
    /// can only say so by carrying no text, so both strategies use this to report an empty result.
    pub fn has_no_text(&self) -> bool {
        self.stt_results.as_deref().is_none_or(|results| {
            results
                .iter()
                .all(|r| r.transcript.trim().is_empty() && r.words.is_empty())
        })
    }

    /// All channels' transcripts joined with newlines.
    pub fn full_transcript(&self) -> String {
        self.stt_results
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|r| r.transcript.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// One channel's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SttResult {
    /// The channel's full text.
    #[serde(default)]
    pub transcript: String,
    /// Word-level timings, when the service sends them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub words: Vec<Word>,
    /// Extracted keywords. The service sends them absent, `null` or `[]`; absent and `null`
    /// both read as `None`.
    #[serde(
        default,
        deserialize_with = "null_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub keywords: Option<Vec<String>>,
}

impl SttResult {
    /// A result holding only `transcript`.
    pub fn new(transcript: impl Into<String>) -> Self {
        SttResult {
            transcript: transcript.into(),
            words: Vec::new(),
            keywords: None,
        }
    }
}

fn null_as_none<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<String>>, D::Error> {
    Option::<Vec<String>>::deserialize(deserializer)
}

/// One recognised word and when it was spoken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Word {
    /// The word as written, punctuation and trailing space included.
    pub word: String,
    /// When it starts in the audio.
    pub start_time: TimeOffset,
    /// When it ends in the audio.
    pub end_time: TimeOffset,
    /// The segment (sentence) it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_id: Option<String>,
    /// The speaker label, with diarization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker: Option<String>,
    /// Whether it matched a boosted keyword.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_keyword: Option<bool>,
}

impl Word {
    /// A word spoken between `start_time` and `end_time`, with no labels.
    pub fn new(word: impl Into<String>, start_time: TimeOffset, end_time: TimeOffset) -> Self {
        Word {
            word: word.into(),
            start_time,
            end_time,
            segment_id: None,
            speaker: None,
            has_keyword: None,
        }
    }
}

/// The body of every error answer: `{"error": "<free text>"}`.
///
/// Branch on the HTTP status, never on this text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ErrorBody {
    /// The service's explanation.
    pub error: String,
}

impl ErrorBody {
    /// An error body saying `error`.
    pub fn new(error: impl Into<String>) -> Self {
        ErrorBody { error: error.into() }
    }
}
