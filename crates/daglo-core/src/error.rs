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
        Self {
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
/// and [`message`](DecodeError::message) what kind of mismatch it was. Neither carries text from
/// the body — the decoder's quoted values are redacted — because a body may hold a transcript,
/// and errors end up in logs. [`excerpt`](DecodeError::excerpt) keeps the start of the body for
/// a caller who decides to look; `Display` and `Debug` never show it.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not decode {what} at `{path}`: {message}")]
pub struct DecodeError {
    what: &'static str,
    path: String,
    message: String,
    excerpt: String,
}

/// How many characters of an offending body an error keeps.
pub const EXCERPT_CHARS: usize = 200;

impl std::fmt::Debug for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodeError")
            .field("what", &self.what)
            .field("path", &self.path)
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

impl DecodeError {
    pub(crate) fn new(what: &'static str, path: &str, message: &str, body: &[u8]) -> Self {
        Self {
            what,
            path: if path.is_empty() {
                ".".to_owned()
            } else {
                excerpt(path, 200)
            },
            message: without_values(message),
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

    /// What kind of mismatch it was (`invalid type: string "…", expected u32`), with the
    /// values the body held redacted.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The first [`EXCERPT_CHARS`] characters of the body. **May hold transcript text**: this
    /// crate never logs or displays it; look at it only where that is acceptable.
    pub fn excerpt(&self) -> &str {
        &self.excerpt
    }
}

/// A decoder's message with every quoted value (`"…"`, `` `…` ``) redacted: serde quotes the
/// offending value (`invalid type: string "secret text"`), which may be transcript text. The
/// names in `missing field `x`` come from the schema, not the body, and are kept.
fn without_values(message: &str) -> String {
    if message.starts_with("missing field `") {
        return excerpt(message, 200);
    }
    let mut out = String::with_capacity(message.len().min(200));
    let mut quote: Option<char> = None;
    for c in message.chars() {
        match quote {
            Some(open) if c == open => {
                out.push('…');
                out.push(c);
                quote = None;
            }
            Some(_) => {}
            None => {
                out.push(c);
                if c == '"' || c == '`' {
                    quote = Some(c);
                }
            }
        }
        if out.len() > 200 {
            out.push('…');
            break;
        }
    }
    out
}

/// The first `max_chars` characters of `text`, with `…` appended when it was cut.
pub fn excerpt(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// An error and its causes on one line, `what failed: why: why` — each error's `Display` says
/// what failed and its `source()` the cause, so the whole chain is what to show a person.
///
/// ```
/// let error = std::io::Error::other("disk full");
/// assert_eq!(daglo_core::error_chain(&error), "disk full");
/// ```
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_messages_never_carry_the_body_s_values() {
        assert_eq!(
            without_values(
                r#"invalid type: string "secret merger acme", expected a sequence at line 1 column 9"#
            ),
            r#"invalid type: string "…", expected a sequence at line 1 column 9"#
        );
        assert_eq!(
            without_values("unknown variant `top secret`, expected `a`"),
            "unknown variant `…`, expected `…`"
        );
        assert_eq!(without_values("missing field `status`"), "missing field `status`");
        let error = DecodeError::new(
            "status body",
            "",
            "invalid type: string \"words\"",
            b"{\"x\": \"words\"}",
        );
        assert!(!error.to_string().contains("words"), "{error}");
        assert!(!format!("{error:?}").contains("words"), "{error:?}");
        assert_eq!(error.excerpt(), "{\"x\": \"words\"}");
    }

    #[test]
    fn excerpt_cuts_on_character_boundaries() {
        assert_eq!(excerpt("안녕하세요", 2), "안녕…");
        assert_eq!(excerpt("short", 10), "short");
    }
}
