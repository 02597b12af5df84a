//! The job statuses and their order.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A job's status, as the service reports it in `status`.
///
/// In life order: [`AiRequested`](Status::AiRequested) → [`Uploaded`](Status::Uploaded) →
/// [`FileProcessing`](Status::FileProcessing) → [`Transcribing`](Status::Transcribing) →
/// [`PostProcessing`](Status::PostProcessing) → [`Transcribed`](Status::Transcribed), or one of
/// the three failures. A value the service adds later arrives as [`Unknown`](Status::Unknown) and
/// is treated as still in progress, so a new status never breaks a waiting client.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// The job was accepted.
    AiRequested,
    /// The audio has been received.
    Uploaded,
    /// The audio is being decoded.
    FileProcessing,
    /// Recognition is running.
    Transcribing,
    /// Recognition is done; post-processing (NLP) runs.
    PostProcessing,
    /// Finished successfully.
    Transcribed,
    /// Failed: the request carried bad values.
    InputError,
    /// Failed: transcription failed; a later resubmit may work.
    TranscriptError,
    /// Failed: the file is bad.
    FileError,
    /// A status this version does not know.
    Unknown(String),
}

impl Status {
    /// Every known status, in life order, failures last.
    pub const KNOWN: [Self; 9] = [
        Self::AiRequested,
        Self::Uploaded,
        Self::FileProcessing,
        Self::Transcribing,
        Self::PostProcessing,
        Self::Transcribed,
        Self::InputError,
        Self::TranscriptError,
        Self::FileError,
    ];

    /// The wire spelling, e.g. `"file_processing"`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::AiRequested => "ai_requested",
            Self::Uploaded => "uploaded",
            Self::FileProcessing => "file_processing",
            Self::Transcribing => "transcribing",
            Self::PostProcessing => "post_processing",
            Self::Transcribed => "transcribed",
            Self::InputError => "input_error",
            Self::TranscriptError => "transcript_error",
            Self::FileError => "file_error",
            Self::Unknown(other) => other,
        }
    }

    /// Parses the wire spelling; anything unrecognised becomes [`Status::Unknown`].
    pub fn parse(value: &str) -> Self {
        Self::KNOWN
            .iter()
            .find(|s| s.as_str() == value)
            .cloned()
            .unwrap_or_else(|| Self::Unknown(value.to_owned()))
    }

    /// The job has ended, successfully or not; its status will not change again.
    pub fn is_terminal(&self) -> bool {
        self.is_success() || self.is_failure()
    }

    /// The job ended with a transcript (which may be empty).
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Transcribed)
    }

    /// The job ended in one of the three failure statuses.
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::InputError | Self::TranscriptError | Self::FileError)
    }

    /// The position in a job's life: `0` for `ai_requested` up to `5` for every terminal status;
    /// `None` for an unknown status, which has no known place.
    ///
    /// A receiver uses it to let statuses only move forward.
    pub fn stage(&self) -> Option<u8> {
        match self {
            Self::AiRequested => Some(0),
            Self::Uploaded => Some(1),
            Self::FileProcessing => Some(2),
            Self::Transcribing => Some(3),
            Self::PostProcessing => Some(4),
            Self::Transcribed | Self::InputError | Self::TranscriptError | Self::FileError => Some(5),
            Self::Unknown(_) => None,
        }
    }

    /// Whether moving from `self` to `next` goes forward in a job's life.
    ///
    /// Nothing follows a terminal status; an unknown status may follow or precede any
    /// non-terminal one (its place is unknown), but never a terminal one.
    pub fn may_advance_to(&self, next: &Self) -> bool {
        if self.is_terminal() {
            return false;
        }
        match (self.stage(), next.stage()) {
            (Some(now), Some(then)) => then > now,
            _ => true,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for Status {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Read from the text where it lies: a known status allocates nothing.
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = Status;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Status, E> {
                Ok(Status::parse(value))
            }
        }
        deserializer.deserialize_str(Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_status() -> impl Strategy<Value = Status> {
        prop_oneof![
            (0..9usize).prop_map(|i| Status::KNOWN[i].clone()),
            "[a-z_]{1,20}".prop_map(|s| Status::parse(&s)),
        ]
    }

    #[test]
    fn classification() {
        let terminal: Vec<_> = Status::KNOWN.iter().filter(|s| s.is_terminal()).collect();
        assert_eq!(terminal.len(), 4);
        assert!(Status::Transcribed.is_success());
        assert!(!Status::FileError.is_success());
        assert!(!Status::Unknown("queued".into()).is_terminal());
    }

    proptest! {
        #[test]
        fn wire_round_trip(status in any_status()) {
            let json = serde_json::to_string(&status).unwrap();
            prop_assert_eq!(serde_json::from_str::<Status>(&json).unwrap(), status);
        }

        #[test]
        fn nothing_advances_out_of_a_terminal_status(a in any_status(), b in any_status()) {
            if a.is_terminal() {
                prop_assert!(!a.may_advance_to(&b));
            }
            // Forward moves are never also backward moves.
            if let (Some(x), Some(y)) = (a.stage(), b.stage()) {
                prop_assert_eq!(a.may_advance_to(&b) && !a.is_terminal(), y > x && !a.is_terminal());
            }
        }
    }
}
