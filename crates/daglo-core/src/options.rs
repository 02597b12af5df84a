//! The optional fields of a submit: `sttConfig`, `nlpConfig`, `callback` and `custom`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ValidationError;
use crate::language::Language;

/// A JSON object, as carried by `custom`.
pub type JsonObject = Map<String, Value>;

/// Everything a submit may carry besides the audio, for both body kinds (JSON and multipart).
///
/// Build one with [`JobOptions::builder`], which validates every value against the contract.
/// Unset options are omitted from the JSON, so the service applies its own defaults. Read from
/// JSON, every level refuses a field the contract does not name (`speakerDiarisation` is an
/// error naming it, not an option silently dropped).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct JobOptions {
    /// Recognition settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stt_config: Option<SttConfig>,
    /// Post-processing settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nlp_config: Option<NlpConfig>,
    /// Where the service POSTs progress and the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<Callback>,
    /// Any JSON object; the service echoes it back verbatim in answers and callbacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<JsonObject>,
}

/// `sttConfig`: how the audio is recognised.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct SttConfig {
    /// The recognition model; the service defaults to `general`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<Model>,
    /// The spoken language; the service defaults to `ko-KR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Language>,
    /// Words to favour during recognition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyword_boost: Option<KeywordBoost>,
    /// Recognise each channel separately (one `sttResults` entry per channel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_channel: Option<MultiChannel>,
    /// Label words with speakers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker_diarization: Option<SpeakerDiarization>,
}

/// `sttConfig.model`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Model {
    /// The general-purpose model, the only one the service documents.
    General,
}

/// `sttConfig.keywordBoost`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct KeywordBoost {
    /// Whether boosting is on (omitted: off — boosting is on only with `enable: true`).
    #[serde(default)]
    pub enable: bool,
    /// The words to favour.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// How strongly, `1..=15`; `None` leaves it out of the request, and the service uses its
    /// default, 5 ([`strength`](KeywordBoost::strength)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boost: Option<u32>,
}

impl KeywordBoost {
    /// The boost the service applies: the one set, or its default (5) when left out.
    pub fn strength(&self) -> u32 {
        self.boost.unwrap_or_else(default_boost)
    }
}

/// The service's boost when a request leaves it out.
fn default_boost() -> u32 {
    5
}

/// `sttConfig.multiChannel`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct MultiChannel {
    /// How many channels to recognise separately, `1..=2`.
    pub channel_count: u32,
}

/// `sttConfig.speakerDiarization`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct SpeakerDiarization {
    /// Whether diarization is on (omitted: off).
    #[serde(default)]
    pub enable: bool,
    /// How many speakers to expect, at least 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker_count_hint: Option<u32>,
}

/// `nlpConfig`: analysis run on the transcript.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct NlpConfig {
    /// Extract keywords into `sttResults[].keywords`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyword_extraction: Option<KeywordExtraction>,
    /// Run sentiment analysis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentiment_analysis: Option<SentimentAnalysis>,
}

/// `nlpConfig.keywordExtraction`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct KeywordExtraction {
    /// Whether extraction is on (omitted: off).
    #[serde(default)]
    pub enable: bool,
    /// At most this many keywords, at least 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_count: Option<u32>,
}

/// `nlpConfig.sentimentAnalysis`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct SentimentAnalysis {
    /// Whether the analysis is on (omitted: off).
    #[serde(default)]
    pub enable: bool,
}

/// `callback`: the URL the service POSTs to, and the headers it adds to every POST.
///
/// Header values usually carry a credential, so `Debug` shows header names only.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Callback {
    /// An absolute `http` or `https` URL.
    pub url: String,
    /// Extra headers sent with every callback.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

impl Callback {
    /// A callback to `url` with no extra headers (not validated until [`JobOptions::validate`]).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            headers: BTreeMap::new(),
        }
    }

    /// Adds a header the service will send with every callback.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }
}

impl fmt::Debug for Callback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Redacted<'a>(&'a BTreeMap<String, String>);
        impl fmt::Debug for Redacted<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map()
                    .entries(self.0.keys().map(|name| (name, "<redacted>")))
                    .finish()
            }
        }
        f.debug_struct("Callback")
            .field("url", &self.url)
            .field("headers", &Redacted(&self.headers))
            .finish()
    }
}

impl JobOptions {
    /// A digest of these options, so a journal can tell two submits of one input apart without
    /// keeping the options: `fnv1a64:<16 hex digits>` of their JSON (a change detector, not a
    /// secret; the same options give the same digest in every process and version).
    ///
    /// ```
    /// use daglo::{JobOptions, Language};
    /// let ko = JobOptions::default();
    /// let en = JobOptions::builder().language(Language::EnUs).build()?;
    /// assert_eq!(ko.digest(), JobOptions::default().digest());
    /// assert_ne!(ko.digest(), en.digest());
    /// assert!(ko.digest().starts_with("fnv1a64:"));
    /// # Ok::<(), daglo::models::ValidationError>(())
    /// ```
    pub fn digest(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("fnv1a64:{:016x}", crate::fnv1a64(&json))
    }

    /// A builder. Values are checked against the contract in [`build`](JobOptionsBuilder::build),
    /// which names the first offending field.
    pub fn builder() -> JobOptionsBuilder {
        JobOptionsBuilder::default()
    }

    /// Checks every set value against the contract and names the first field that is wrong.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(stt) = &self.stt_config {
            if let Some(boost) = &stt.keyword_boost {
                if let Some(strength) = boost.boost {
                    check_range("sttConfig.keywordBoost.boost", strength, 1, 15)?;
                }
                if boost.keywords.iter().any(|k| k.trim().is_empty()) {
                    return Err(ValidationError::new(
                        "sttConfig.keywordBoost.keywords",
                        "keywords must not be empty",
                    ));
                }
            }
            if let Some(channels) = &stt.multi_channel {
                check_range(
                    "sttConfig.multiChannel.channelCount",
                    channels.channel_count,
                    1,
                    2,
                )?;
            }
            if let Some(hint) = stt
                .speaker_diarization
                .as_ref()
                .and_then(|d| d.speaker_count_hint)
            {
                check_range("sttConfig.speakerDiarization.speakerCountHint", hint, 2, u32::MAX)?;
            }
        }
        if let Some(max) = self
            .nlp_config
            .as_ref()
            .and_then(|n| n.keyword_extraction.as_ref())
            .and_then(|k| k.max_count)
        {
            check_range("nlpConfig.keywordExtraction.maxCount", max, 1, u32::MAX)?;
        }
        if let Some(callback) = &self.callback {
            check_http_url("callback.url", &callback.url)?;
            for (name, value) in &callback.headers {
                check_header(name, value)?;
            }
        }
        Ok(())
    }
}

fn check_range(field: &'static str, value: u32, min: u32, max: u32) -> Result<(), ValidationError> {
    if (min..=max).contains(&value) {
        return Ok(());
    }
    let expected = if max == u32::MAX {
        format!("at least {min}")
    } else {
        format!("between {min} and {max}")
    };
    Err(ValidationError::new(field, format!("{value} is not {expected}")))
}

/// Checks that `value` is an absolute `http`/`https` URL with a host.
pub(crate) fn check_http_url(field: &'static str, value: &str) -> Result<(), ValidationError> {
    let shown = crate::error::excerpt(value, 80);
    let url = url::Url::parse(value)
        .map_err(|e| ValidationError::new(field, format!("`{shown}` is not an absolute URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ValidationError::new(
            field,
            format!("`{shown}` must use http or https, not `{}`", url.scheme()),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ValidationError::new(field, format!("`{shown}` has no host")));
    }
    Ok(())
}

fn check_header(name: &str, value: &str) -> Result<(), ValidationError> {
    // RFC 9110 token characters; anything else would be refused by any HTTP stack.
    let is_tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return Err(ValidationError::new(
            "callback.headers",
            format!("`{}` is not a valid header name", crate::error::excerpt(name, 40)),
        ));
    }
    // The value is usually a secret: name the header, never echo the value.
    if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(ValidationError::new(
            "callback.headers",
            format!("the value of `{name}` contains control characters"),
        ));
    }
    Ok(())
}

/// Builds [`JobOptions`], checking each value against the contract.
///
/// ```
/// use daglo::{JobOptions, Language};
///
/// let options = JobOptions::builder()
///     .language(Language::EnUs)
///     .speaker_diarization(Some(3))
///     .keyword_extraction(5)
///     .build()?;
/// assert_eq!(
///     serde_json::to_value(&options)?["sttConfig"]["speakerDiarization"]["speakerCountHint"],
///     3
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default, Clone)]
pub struct JobOptionsBuilder {
    options: JobOptions,
    deferred: Option<ValidationError>,
}

impl JobOptionsBuilder {
    fn stt(&mut self) -> &mut SttConfig {
        self.options.stt_config.get_or_insert_with(SttConfig::default)
    }

    fn nlp(&mut self) -> &mut NlpConfig {
        self.options.nlp_config.get_or_insert_with(NlpConfig::default)
    }

    /// Sets `sttConfig.model`.
    #[must_use]
    pub fn model(mut self, model: Model) -> Self {
        self.stt().model = Some(model);
        self
    }

    /// Sets `sttConfig.language`.
    #[must_use]
    pub fn language(mut self, language: Language) -> Self {
        self.stt().language = Some(language);
        self
    }

    /// Sets `sttConfig.language` from its wire code; an undocumented code fails [`build`](Self::build).
    #[must_use]
    pub fn language_code(mut self, code: &str) -> Self {
        match code.parse() {
            Ok(language) => self.stt().language = Some(language),
            Err(e) => {
                self.deferred.get_or_insert(e);
            }
        }
        self
    }

    /// Turns on `sttConfig.keywordBoost` for `keywords` with strength `boost` (`1..=15`), or —
    /// with `None` — without a strength, so the service applies its default (5).
    ///
    /// ```
    /// use daglo::JobOptions;
    ///
    /// let strong = JobOptions::builder().keyword_boost(["다글로"], 12).build()?;
    /// let default = JobOptions::builder().keyword_boost(["다글로"], None).build()?;
    /// let json = serde_json::to_value(&default)?;
    /// assert!(json["sttConfig"]["keywordBoost"].get("boost").is_none());
    /// # let _ = strong;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn keyword_boost<I, S>(mut self, keywords: I, boost: impl Into<Option<u32>>) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.stt().keyword_boost = Some(KeywordBoost {
            enable: true,
            keywords: keywords.into_iter().map(Into::into).collect(),
            boost: boost.into(),
        });
        self
    }

    /// Sets `sttConfig.multiChannel.channelCount` (`1..=2`).
    #[must_use]
    pub fn channel_count(mut self, channel_count: u32) -> Self {
        self.stt().multi_channel = Some(MultiChannel { channel_count });
        self
    }

    /// Turns on speaker diarization, optionally hinting how many speakers (at least 2).
    #[must_use]
    pub fn speaker_diarization(mut self, speaker_count_hint: Option<u32>) -> Self {
        self.stt().speaker_diarization = Some(SpeakerDiarization {
            enable: true,
            speaker_count_hint,
        });
        self
    }

    /// Turns on keyword extraction of at most `max_count` keywords (at least 1).
    #[must_use]
    pub fn keyword_extraction(mut self, max_count: u32) -> Self {
        self.nlp().keyword_extraction = Some(KeywordExtraction {
            enable: true,
            max_count: Some(max_count),
        });
        self
    }

    /// Turns sentiment analysis on or off explicitly.
    #[must_use]
    pub fn sentiment_analysis(mut self, enable: bool) -> Self {
        self.nlp().sentiment_analysis = Some(SentimentAnalysis { enable });
        self
    }

    /// Sets the callback; it replaces any callback set before.
    #[must_use]
    pub fn callback(mut self, callback: Callback) -> Self {
        self.options.callback = Some(callback);
        self
    }

    /// Adds one key to `custom`.
    #[must_use]
    pub fn custom(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.options
            .custom
            .get_or_insert_with(JsonObject::new)
            .insert(key.into(), value.into());
        self
    }

    /// Checks everything and returns the options, or the first invalid field.
    pub fn build(self) -> Result<JobOptions, ValidationError> {
        if let Some(e) = self.deferred {
            return Err(e);
        }
        self.options.validate()?;
        Ok(self.options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_options_are_omitted() {
        let json = serde_json::to_string(&JobOptions::builder().build().unwrap()).unwrap();
        assert_eq!(json, "{}");
        let json =
            serde_json::to_value(JobOptions::builder().language(Language::JaJp).build().unwrap()).unwrap();
        assert_eq!(json, serde_json::json!({"sttConfig": {"language": "ja-JP"}}));
    }

    #[test]
    fn every_bound_names_its_field() {
        let cases: Vec<(JobOptionsBuilder, &str)> = vec![
            (
                JobOptions::builder().keyword_boost(["a"], 0),
                "sttConfig.keywordBoost.boost",
            ),
            (
                JobOptions::builder().keyword_boost(["a"], 16),
                "sttConfig.keywordBoost.boost",
            ),
            (
                JobOptions::builder().channel_count(0),
                "sttConfig.multiChannel.channelCount",
            ),
            (
                JobOptions::builder().channel_count(3),
                "sttConfig.multiChannel.channelCount",
            ),
            (
                JobOptions::builder().speaker_diarization(Some(1)),
                "sttConfig.speakerDiarization.speakerCountHint",
            ),
            (
                JobOptions::builder().keyword_extraction(0),
                "nlpConfig.keywordExtraction.maxCount",
            ),
            (JobOptions::builder().language_code("xx-XX"), "sttConfig.language"),
            (
                JobOptions::builder().callback(Callback::new("/relative")),
                "callback.url",
            ),
            (
                JobOptions::builder().callback(Callback::new("ftp://h/x")),
                "callback.url",
            ),
            (
                JobOptions::builder().callback(Callback::new("https://h/x").header("Bad Name", "v")),
                "callback.headers",
            ),
            (
                JobOptions::builder().callback(Callback::new("https://h/x").header("X-Key", "a\r\nb")),
                "callback.headers",
            ),
        ];
        for (builder, field) in cases {
            let err = builder.build().unwrap_err();
            assert_eq!(err.field(), field, "{err}");
        }
    }

    #[test]
    fn bounds_themselves_are_accepted() {
        JobOptions::builder()
            .keyword_boost(["회의"], 1)
            .keyword_boost(["회의"], 15)
            .channel_count(2)
            .speaker_diarization(Some(2))
            .keyword_extraction(1)
            .callback(Callback::new("http://localhost:9/cb").header("Authorization", "Bearer x"))
            .build()
            .unwrap();
    }

    #[test]
    fn callback_debug_hides_header_values() {
        let cb = Callback::new("https://h/cb").header("Authorization", "Bearer topsecret");
        let shown = format!("{cb:?}");
        assert!(shown.contains("Authorization"));
        assert!(!shown.contains("topsecret"));
        let err = JobOptions::builder()
            .callback(Callback::new("https://h/cb").header("X-Key", "topsecret\n"))
            .build()
            .unwrap_err();
        assert!(!err.to_string().contains("topsecret"));
    }
}
