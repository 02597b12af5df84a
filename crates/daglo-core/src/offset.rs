//! Word timings: the protobuf `Duration` shape `{seconds: "<decimal string>", nanos: <int>}`.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};

use crate::lenient::Scalar;

/// An offset into the audio, exactly as precise as the wire form (nanoseconds).
///
/// The service sends `{"seconds": "12", "nanos": 500000000}` — seconds as a decimal *string*,
/// never a float — and this type converts that to and from [`Duration`] without rounding.
/// Decoding also accepts `seconds` as a JSON integer and either field absent (protobuf's JSON
/// form omits zeros); it refuses negative values and `nanos` outside `0..1_000_000_000`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TimeOffset(Duration);

impl TimeOffset {
    /// The offset as a [`Duration`].
    pub fn as_duration(self) -> Duration {
        self.0
    }
}

impl From<Duration> for TimeOffset {
    fn from(duration: Duration) -> Self {
        Self(duration)
    }
}

impl From<TimeOffset> for Duration {
    fn from(offset: TimeOffset) -> Self {
        offset.0
    }
}

impl fmt::Debug for TimeOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}s", self.0.as_secs(), self.0.subsec_nanos())
    }
}

impl Serialize for TimeOffset {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut state = serializer.serialize_struct("Duration", 2)?;
        state.serialize_field("seconds", &self.0.as_secs().to_string())?;
        state.serialize_field("nanos", &self.0.subsec_nanos())?;
        state.end()
    }
}

/// The fields of the wire form, read one by one: `seconds` and `nanos` (either may be absent
/// or `null`), other keys ignored; or, as serde reads a struct from a sequence, `[seconds,
/// nanos]`. A field that cannot be one makes the offset unreadable, with the reason.
#[derive(Default)]
struct Parts {
    seconds: Option<Scalar>,
    nanos: Option<Scalar>,
    /// More than two elements in the sequence form.
    too_long: bool,
}

impl Parts {
    fn from_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut parts = Self::default();
        // As a JSON object reads: the last of repeated keys wins.
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Seconds => parts.seconds = Some(map.next_value()?),
                Key::Nanos => parts.nanos = Some(map.next_value()?),
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(parts)
    }

    fn from_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Self, A::Error> {
        let mut parts = Self {
            seconds: seq.next_element()?,
            ..Self::default()
        };
        if parts.seconds.is_some() {
            parts.nanos = seq.next_element()?;
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {
            parts.too_long = true;
        }
        Ok(parts)
    }

    /// The offset the fields describe, or why they describe none.
    fn offset(self) -> Result<TimeOffset, String> {
        if self.too_long {
            return Err("a time offset has at most two fields, seconds and nanos".to_owned());
        }
        let seconds = match self.seconds.unwrap_or(Scalar::Null) {
            Scalar::Null => 0,
            Scalar::Unsigned(n) => n,
            Scalar::Negative(n) => return Err(format!("seconds must not be negative, got {n}")),
            Scalar::Text(text) => text.trim().parse().map_err(|_| {
                format!(
                    "seconds must be a non-negative decimal integer string, got {:?}",
                    crate::error::excerpt(&text, 30)
                )
            })?,
            Scalar::Float(f) => return Err(format!("seconds must be an integer, got {f}")),
            Scalar::Bool(_) | Scalar::Other => {
                return Err("seconds must be a decimal integer string or an integer".to_owned());
            }
        };
        let nanos = match self.nanos.unwrap_or(Scalar::Null) {
            Scalar::Null => 0,
            Scalar::Unsigned(n) => u32::try_from(n)
                .ok()
                .filter(|n| *n < 1_000_000_000)
                .ok_or_else(|| format!("nanos must be in 0..1000000000, got {n}"))?,
            Scalar::Negative(n) => return Err(format!("nanos must be in 0..1000000000, got {n}")),
            Scalar::Float(f) => return Err(format!("nanos must be an integer, got {f}")),
            Scalar::Text(_) | Scalar::Bool(_) | Scalar::Other => {
                return Err("nanos must be an integer".to_owned());
            }
        };
        Ok(TimeOffset(Duration::new(seconds, nanos)))
    }
}

/// A key of the wire form, read without allocating.
enum Key {
    Seconds,
    Nanos,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "seconds" => Key::Seconds,
                    "nanos" => Key::Nanos,
                    _ => Key::Other,
                })
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

/// Reads an offset strictly: anything but the wire form is an error.
struct Strict;

impl<'de> Visitor<'de> for Strict {
    type Value = TimeOffset;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a time offset {\"seconds\": \"<decimal>\", \"nanos\": <int>}")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<TimeOffset, A::Error> {
        Parts::from_map(map)?.offset().map_err(de::Error::custom)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<TimeOffset, A::Error> {
        Parts::from_seq(seq)?.offset().map_err(de::Error::custom)
    }
}

/// Reads any JSON value, answering the offset it is or why it is none; only malformed JSON is
/// an error (used by the lenient word reader, which keeps a word whose times it cannot read).
pub(crate) struct Lenient;

impl<'de> Visitor<'de> for Lenient {
    type Value = Result<TimeOffset, String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Ok(Parts::from_map(map)?.offset())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Ok(Parts::from_seq(seq)?.offset())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(Self)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Err("no time offset".to_owned()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visit_none()
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        self.visit_none()
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        self.visit_none()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        self.visit_none()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        self.visit_none()
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        self.visit_none()
    }
}

impl<'de> Deserialize<'de> for TimeOffset {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_struct("Duration", &["seconds", "nanos"], Strict)
    }
}

/// A time offset, or `None` when it is absent or cannot be read (the word is kept either way).
pub(crate) fn lenient_time<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<TimeOffset>, D::Error> {
    Ok(deserializer.deserialize_any(Lenient)?.ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn contract_example_converts_exactly() {
        let t: TimeOffset = serde_json::from_str(r#"{"seconds": "0", "nanos": 860000000}"#).unwrap();
        assert_eq!(t.as_duration(), Duration::from_millis(860));
        let t: TimeOffset = serde_json::from_str(r#"{"seconds": 7}"#).unwrap();
        assert_eq!(t.as_duration(), Duration::from_secs(7));
        let t: TimeOffset = serde_json::from_str("{}").unwrap();
        assert_eq!(t.as_duration(), Duration::ZERO);
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in [
            r#"{"seconds": "-1", "nanos": 0}"#,
            r#"{"seconds": "1.5", "nanos": 0}"#,
            r#"{"seconds": -3}"#,
            r#"{"seconds": "1", "nanos": 1000000000}"#,
            r#"{"seconds": "1", "nanos": -1}"#,
            r#"{"seconds": 1.5}"#,
        ] {
            assert!(serde_json::from_str::<TimeOffset>(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn round_trips_every_duration(secs in any::<u64>(), nanos in 0u32..1_000_000_000) {
            let d = Duration::new(secs, nanos);
            let json = serde_json::to_string(&TimeOffset::from(d)).unwrap();
            prop_assert_eq!(serde_json::from_str::<TimeOffset>(&json).unwrap().as_duration(), d);
            let expected = format!("\"seconds\":\"{secs}\"");
            prop_assert!(json.contains(&expected));
        }
    }
}
