//! Errors for invalid input and undecodable bodies.

use std::borrow::Cow;

/// A request value outside what the service documents.
///
/// [`field`](ValidationError::field) names the offending field in the contract's camelCase
/// spelling (`"sttConfig.keywordBoost.boost"`), so the message can be shown to whoever typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid `{field}`: {reason}")]
pub struct ValidationError {
    field: Cow<'static, str>,
    reason: String,
}

impl ValidationError {
    /// A validation error for `field`, explained by `reason`.
    pub fn new(field: impl Into<Cow<'static, str>>, reason: impl Into<String>) -> Self {
        ValidationError {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The contract's name of the field that was wrong.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// Why the value was refused.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// A body from the service (or a callback) that does not match the contract.
///
/// The [`path`](DecodeError::path) says where decoding stopped (`sttResults[0].words[3].startTime`)
/// and [`excerpt`](DecodeError::excerpt) holds the start of the body, cut to a bounded length,
/// so a log line shows what arrived without dumping megabytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not decode {what} at `{path}`: {message} (body starts: {excerpt:?})")]
pub struct DecodeError {
    what: &'static str,
    path: String,
    message: String,
    excerpt: String,
}

/// How many characters of an offending body an error keeps.
pub const EXCERPT_CHARS: usize = 200;

impl DecodeError {
    pub(crate) fn new(what: &'static str, path: String, message: String, body: &[u8]) -> Self {
        DecodeError {
            what,
            path: if path.is_empty() { ".".to_owned() } else { path },
            message,
            excerpt: excerpt(&String::from_utf8_lossy(body), EXCERPT_CHARS),
        }
    }

    /// What was being decoded, e.g. `"status body"`.
    pub fn what(&self) -> &'static str {
        self.what
    }

    /// The JSON path at which decoding failed; `"."` for the document itself.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The decoder's explanation.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The first [`EXCERPT_CHARS`] characters of the body.
    pub fn excerpt(&self) -> &str {
        &self.excerpt
    }
}

/// The first `max_chars` characters of `text`, with `…` appended when it was cut.
pub fn excerpt(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_cuts_on_character_boundaries() {
        assert_eq!(excerpt("안녕하세요", 2), "안녕…");
        assert_eq!(excerpt("short", 10), "short");
    }
}
