//! Word timings: the protobuf `Duration` shape `{seconds: "<decimal string>", nanos: <int>}`.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};

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

#[derive(Deserialize)]
#[serde(untagged)]
enum Seconds {
    Text(String),
    Number(i64),
}

#[derive(Deserialize)]
struct WireDuration {
    #[serde(default)]
    seconds: Option<Seconds>,
    #[serde(default)]
    nanos: Option<i64>,
}

impl<'de> Deserialize<'de> for TimeOffset {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireDuration::deserialize(deserializer)?;
        let seconds: u64 = match wire.seconds {
            None => 0,
            Some(Seconds::Number(n)) => u64::try_from(n)
                .map_err(|_| de::Error::custom(format!("seconds must not be negative, got {n}")))?,
            Some(Seconds::Text(text)) => text.trim().parse().map_err(|_| {
                de::Error::custom(format!(
                    "seconds must be a non-negative decimal integer string, got {:?}",
                    crate::error::excerpt(&text, 30)
                ))
            })?,
        };
        let nanos = wire.nanos.unwrap_or(0);
        let nanos = u32::try_from(nanos)
            .ok()
            .filter(|n| *n < 1_000_000_000)
            .ok_or_else(|| de::Error::custom(format!("nanos must be in 0..1000000000, got {nanos}")))?;
        Ok(Self(Duration::new(seconds, nanos)))
    }
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
