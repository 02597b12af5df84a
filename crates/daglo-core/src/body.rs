//! The status/result body served by `GET …/transcripts/{rid}` and POSTed to callbacks.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::budget::{self, Charged};
use crate::lenient;
use crate::offset::TimeOffset;
use crate::options::JsonObject;
use crate::request::Rid;
use crate::status::Status;

/// A job's state as the service reports it, while running and at the end.
///
/// The same shape arrives from polling and in callbacks. Decoding is as tolerant as the
/// published schema: callback bodies may lack `rid`; ids may be numbers; a fractional
/// `progress` is rounded; fields this version does not know are kept in
/// [`extra`](StatusBody::extra) and written back out when the body is serialised, so nothing
/// the service sends is lost. Only `status` is required.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct StatusBody {
    /// The job's id; absent from some callback bodies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rid: Option<Rid>,
    /// Where the job is in its life. The truth about success or failure is here, not in the
    /// HTTP status, which is `200` either way.
    pub status: Status,
    /// Percent done, while processing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<u32>,
    /// The transcript: one entry per channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stt_results: Option<Vec<SttResult>>,
    /// Extra information, such as an error text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The submit's `custom`, echoed (any JSON the service sends back, normally an object).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom: Option<Value>,
    /// Fields this version does not know, kept as they came.
    #[serde(flatten)]
    pub extra: JsonObject,
}

impl StatusBody {
    /// A body with only `status` set.
    pub fn new(status: Status) -> Self {
        Self {
            rid: None,
            status,
            progress: None,
            stt_results: None,
            message: None,
            custom: None,
            extra: JsonObject::new(),
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
                .all(|r| r.transcript.trim().is_empty() && r.words.iter().all(|w| w.word.trim().is_empty()))
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

/// Reads one field with a lenient reader.
macro_rules! lenient_field {
    ($name:ident, $type:ty, $reader:path) => {
        struct $name($type);
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                $reader(deserializer).map($name)
            }
        }
    };
}

lenient_field!(OptText, Option<String>, lenient::opt_string);
lenient_field!(Text, String, lenient::string);
lenient_field!(Percent, Option<u32>, lenient::percent);
lenient_field!(Strings, Option<Vec<String>>, lenient::opt_strings);

impl<'de> Deserialize<'de> for StatusBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(Fields { whole: true })
    }
}

/// What moves a job, read from a status body: `status`, `progress`, `rid` and `message`, as
/// tolerantly as [`StatusBody`] reads them (by the same reader); everything else — results,
/// `custom`, fields this version does not know — is read past without being built, so it
/// needs no memory budget.
pub(crate) struct StatusHead(pub(crate) StatusBody);

impl<'de> Deserialize<'de> for StatusHead {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_map(Fields { whole: false })
            .map(StatusHead)
    }
}

/// Reads a status body's fields: all of them (`whole`), or only the head's.
struct Fields {
    whole: bool,
}

impl<'de> Visitor<'de> for Fields {
    type Value = StatusBody;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a status body (a JSON object with `status`)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StatusBody, A::Error> {
        let whole = self.whole;
        let mut body = StatusBody::new(Status::Unknown(String::new()));
        let mut status = None;
        while let Some(field) = map.next_key_seed(FieldName { whole })? {
            match field {
                Field::Rid => body.rid = map.next_value::<OptText>()?.0.map(Rid::new),
                Field::Status => status = Some(map.next_value::<Status>()?),
                Field::Progress => body.progress = map.next_value::<Percent>()?.0,
                Field::Message => body.message = map.next_value::<OptText>()?.0,
                Field::SttResults if whole => {
                    body.stt_results = map.next_value::<Option<Charges<SttResult>>>()?.map(|r| r.0)
                }
                Field::Custom if whole => body.custom = map.next_value::<Option<Charged>>()?.map(|c| c.0),
                Field::Other(Some(name)) => {
                    let value = map.next_value::<Charged>()?.0;
                    body.extra.insert(name, value);
                }
                Field::SttResults | Field::Custom | Field::Other(None) => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        body.status = status.ok_or_else(|| de::Error::missing_field("status"))?;
        Ok(body)
    }
}

/// A field of a status body; the name of one this version does not know is kept only when the
/// whole body is read (for [`StatusBody::extra`]), and known names are matched where they lie.
enum Field {
    Rid,
    Status,
    Progress,
    Message,
    SttResults,
    Custom,
    Other(Option<String>),
}

/// Reads a [`Field`].
struct FieldName {
    whole: bool,
}

impl<'de> de::DeserializeSeed<'de> for FieldName {
    type Value = Field;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Field, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl Visitor<'_> for FieldName {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Field, E> {
        Ok(match name {
            "rid" => Field::Rid,
            "status" => Field::Status,
            "progress" => Field::Progress,
            "message" => Field::Message,
            "sttResults" => Field::SttResults,
            "custom" => Field::Custom,
            _ => Field::Other(self.whole.then(|| name.to_owned())),
        })
    }
}

/// A list read within the decode's memory budget: each element charged (its slot, and what
/// it holds on the heap) as it is read.
struct Charges<T>(Vec<T>);

/// What a decoded element holds on the heap besides its slot.
trait HeapCost {
    fn heap_cost(&self) -> usize;
}

fn text_cost(text: &Option<String>) -> usize {
    text.as_ref().map_or(0, |t| budget::heap(t.len()))
}

impl HeapCost for Word {
    fn heap_cost(&self) -> usize {
        budget::heap(self.word.len()) + text_cost(&self.segment_id) + text_cost(&self.speaker)
    }
}

impl HeapCost for SttResult {
    fn heap_cost(&self) -> usize {
        // The words, keywords and unknown fields were charged as they were read.
        budget::heap(self.transcript.len())
    }
}

impl<'de, T: Deserialize<'de> + HeapCost> Deserialize<'de> for Charges<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Items<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de> + HeapCost> Visitor<'de> for Items<T> {
            type Value = Charges<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list")
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Charges<T>, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<T>()? {
                    let heap = item.heap_cost();
                    budget::push::<_, A::Error>(&mut items, item, heap)?;
                }
                Ok(Charges(items))
            }
        }
        deserializer.deserialize_seq(Items(std::marker::PhantomData))
    }
}

/// One channel's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SttResult {
    /// The channel's full text (`null` reads as empty).
    pub transcript: String,
    /// Word-level timings, when the service sends them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub words: Vec<Word>,
    /// Extracted keywords (`nlpConfig.keywordExtraction`). The service sends them absent,
    /// `null` or `[]`; absent and `null` both read as `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keywords: Option<Vec<String>>,
    /// The channel's overall sentiment (`nlpConfig.sentimentAnalysis`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<Sentiment>,
    /// How strongly each sentiment was found, in percent (`nlpConfig.sentimentAnalysis`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentiment_score: Option<SentimentScore>,
    /// Fields this version does not know, kept as they came.
    #[serde(flatten)]
    pub extra: JsonObject,
}

impl SttResult {
    /// A result holding only `transcript`.
    pub fn new(transcript: impl Into<String>) -> Self {
        Self {
            transcript: transcript.into(),
            words: Vec::new(),
            keywords: None,
            sentiment: None,
            sentiment_score: None,
            extra: JsonObject::new(),
        }
    }
}

impl<'de> Deserialize<'de> for SttResult {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = SttResult;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a result object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SttResult, A::Error> {
                let mut result = SttResult::new(String::new());
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "transcript" => result.transcript = map.next_value::<Text>()?.0,
                        "words" => {
                            result.words = map
                                .next_value::<Option<Charges<Word>>>()?
                                .map(|w| w.0)
                                .unwrap_or_default()
                        }
                        "keywords" => result.keywords = map.next_value::<Strings>()?.0,
                        "sentiment" => result.sentiment = map.next_value::<OptText>()?.0.map(Sentiment::from),
                        "sentimentScore" => {
                            result.sentiment_score = map.next_value::<Option<SentimentScore>>()?;
                        }
                        _ => {
                            let value = map.next_value::<Charged>()?.0;
                            result.extra.insert(key, value);
                        }
                    }
                }
                Ok(result)
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

/// A result's overall sentiment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Sentiment {
    /// `"Positive"`.
    Positive,
    /// `"Negative"`.
    Negative,
    /// `"Neutral"`.
    Neutral,
    /// A value this version does not know, kept as sent.
    Other(String),
}

impl Sentiment {
    /// The wire spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Positive => "Positive",
            Self::Negative => "Negative",
            Self::Neutral => "Neutral",
            Self::Other(other) => other,
        }
    }
}

impl From<String> for Sentiment {
    fn from(text: String) -> Self {
        match text.as_str() {
            "Positive" => Self::Positive,
            "Negative" => Self::Negative,
            "Neutral" => Self::Neutral,
            _ => Self::Other(text),
        }
    }
}

impl fmt::Display for Sentiment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for Sentiment {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// How strongly each sentiment was found, in percent. A score the service leaves out, or sends
/// as something other than a number, reads as `None`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SentimentScore {
    /// Neutral, percent.
    #[serde(
        default,
        deserialize_with = "lenient::opt_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub neutral: Option<f64>,
    /// Negative, percent.
    #[serde(
        default,
        deserialize_with = "lenient::opt_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub negative: Option<f64>,
    /// Positive, percent.
    #[serde(
        default,
        deserialize_with = "lenient::opt_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub positive: Option<f64>,
}

impl SentimentScore {
    /// A score of these three percentages.
    pub fn new(neutral: f64, negative: f64, positive: f64) -> Self {
        Self {
            neutral: Some(neutral),
            negative: Some(negative),
            positive: Some(positive),
        }
    }
}

/// One recognised word and when it was spoken. The published schema requires none of its
/// fields: a missing or unreadable one is `None` (or an empty `word`), and the word is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Word {
    /// The word as written, punctuation and trailing space included.
    #[serde(default, deserialize_with = "lenient::string")]
    pub word: String,
    /// When it starts in the audio.
    #[serde(
        default,
        deserialize_with = "crate::offset::lenient_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub start_time: Option<TimeOffset>,
    /// When it ends in the audio.
    #[serde(
        default,
        deserialize_with = "crate::offset::lenient_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub end_time: Option<TimeOffset>,
    /// The segment (sentence) it belongs to (a number is read as its text).
    #[serde(
        default,
        deserialize_with = "lenient::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub segment_id: Option<String>,
    /// The speaker label, with diarization (a number is read as its text).
    #[serde(
        default,
        deserialize_with = "lenient::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub speaker: Option<String>,
    /// Whether keyword **extraction** selected it (`nlpConfig.keywordExtraction`): such words
    /// agree with the result's `keywords`. It says nothing about `keywordBoost`.
    #[serde(
        default,
        deserialize_with = "lenient::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub has_keyword: Option<bool>,
}

impl Word {
    /// A word spoken between `start_time` and `end_time`, with no labels.
    pub fn new(word: impl Into<String>, start_time: TimeOffset, end_time: TimeOffset) -> Self {
        Self {
            word: word.into(),
            start_time: Some(start_time),
            end_time: Some(end_time),
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
        Self { error: error.into() }
    }
}
