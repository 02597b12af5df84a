//! Reading the service's bodies as tolerantly as its published schema is: optional fields
//! optional, ids and times as strings or numbers, a fractional percent rounded, `null` where a
//! value was expected read as nothing. One odd value in one word must never cost the result.

use serde::de::{Deserialize, Deserializer};
use serde_json::Value;

use crate::offset::TimeOffset;

/// Text from a string, a number or a boolean; `None` for `null` and anything else.
pub(crate) fn opt_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(text(Value::deserialize(deserializer)?))
}

/// Text as [`opt_string`] reads it, `""` when there is none (`null`, absent).
pub(crate) fn string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(opt_string(deserializer)?.unwrap_or_default())
}

pub(crate) fn text(value: Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// A time offset, or `None` when it is absent or cannot be read (the word is kept either way).
pub(crate) fn time<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<TimeOffset>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    Ok(TimeOffset::deserialize(value).ok())
}

/// A boolean from `true`/`false`, `"true"`/`"false"` or `1`/`0`; `None` otherwise.
pub(crate) fn opt_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::Bool(flag) => Some(flag),
        Value::String(text) => text.trim().parse().ok(),
        Value::Number(number) => number.as_u64().filter(|n| *n <= 1).map(|n| n == 1),
        _ => None,
    })
}

/// A percent from an integer, a fraction (rounded) or a numeric string, clamped to 0..=100;
/// `None` when absent or unreadable.
pub(crate) fn percent<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    let number = match Value::deserialize(deserializer)? {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse::<f64>().ok(),
        _ => None,
    };
    Ok(number
        .filter(|p| p.is_finite())
        .map(|p| p.round().clamp(0.0, 100.0) as u32))
}

/// A list of strings; numbers become text, other entries are skipped, `null` is `None`.
pub(crate) fn opt_strings<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<String>>, D::Error> {
    // Charged: a list of a million one-letter keywords is refused, not built.
    Ok(match crate::budget::Charged::deserialize(deserializer)?.0 {
        Value::Array(items) => Some(items.into_iter().filter_map(text).collect()),
        Value::Null => None,
        other => text(other).map(|one| vec![one]),
    })
}

/// A number, from a number or a numeric string; `None` otherwise.
pub(crate) fn opt_f64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    })
}
