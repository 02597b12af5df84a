//! Reading the service's bodies as tolerantly as its published schema is: optional fields
//! optional, ids and times as strings or numbers, a fractional percent rounded, `null` where a
//! value was expected read as nothing. One odd value in one word must never cost the result.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// One JSON value as the lenient readers see it: a scalar, or `Other` for an array or object
/// (read past without being built — an odd nested value costs neither time nor memory).
///
/// The readers below used to go through [`Value`], which builds every value, maps and all,
/// before looking at it; at one or two per word that was most of a transcript's decode.
pub(crate) enum Scalar {
    Null,
    Bool(bool),
    /// A non-negative integer (JSON numbers that fit in `u64`).
    Unsigned(u64),
    /// A negative integer.
    Negative(i64),
    Float(f64),
    Text(String),
    /// An array or an object.
    Other,
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(u64::try_from(v).map_or(Scalar::Negative(v), Scalar::Unsigned))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::Unsigned(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Text(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar::Text(v))
    }

    fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Scalar, D::Error> {
        Scalar::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
}

impl Scalar {
    /// The value as text: a string as it is, a number or a boolean spelled as JSON spells it;
    /// `None` for `null`, arrays and objects.
    fn into_text(self) -> Option<String> {
        match self {
            Self::Text(text) => Some(text),
            Self::Unsigned(n) => Some(n.to_string()),
            Self::Negative(n) => Some(n.to_string()),
            // `serde_json`'s own spelling of a float (a non-finite one cannot come from JSON).
            Self::Float(f) => serde_json::Number::from_f64(f).map(|n| n.to_string()),
            Self::Bool(flag) => Some(flag.to_string()),
            Self::Null | Self::Other => None,
        }
    }

    /// The value as a number: a JSON number, or a string holding one.
    fn into_f64(self) -> Option<f64> {
        match self {
            Self::Unsigned(n) => Some(n as f64),
            Self::Negative(n) => Some(n as f64),
            Self::Float(f) => Some(f),
            Self::Text(text) => text.trim().parse().ok(),
            Self::Null | Self::Bool(_) | Self::Other => None,
        }
    }
}

/// Text from a string, a number or a boolean; `None` for `null` and anything else.
pub(crate) fn opt_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(Scalar::deserialize(deserializer)?.into_text())
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

/// A boolean from `true`/`false`, `"true"`/`"false"` or `1`/`0`; `None` otherwise.
pub(crate) fn opt_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    Ok(match Scalar::deserialize(deserializer)? {
        Scalar::Bool(flag) => Some(flag),
        Scalar::Text(text) => text.trim().parse().ok(),
        Scalar::Unsigned(n) => (n <= 1).then_some(n == 1),
        _ => None,
    })
}

/// A percent from an integer, a fraction (rounded) or a numeric string, clamped to 0..=100;
/// `None` when absent or unreadable.
pub(crate) fn percent<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    Ok(Scalar::deserialize(deserializer)?
        .into_f64()
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
    Ok(Scalar::deserialize(deserializer)?.into_f64())
}
