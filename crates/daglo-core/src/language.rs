//! The recognition languages the service documents.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ValidationError;

macro_rules! languages {
    ($($variant:ident => $code:literal, $doc:literal;)*) => {
        /// A recognition language accepted by `sttConfig.language`.
        ///
        /// The codes are case-sensitive on the wire; [`Language::from_str`] accepts exactly the
        /// documented spelling and names the offending value otherwise.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Language {
            $(#[doc = $doc] $variant,)*
        }

        impl Language {
            /// Every documented language, in the order the service lists them.
            pub const ALL: &'static [Language] = &[$(Language::$variant,)*];

            /// The wire code, e.g. `"ko-KR"`.
            pub fn code(self) -> &'static str {
                match self {
                    $(Language::$variant => $code,)*
                }
            }
        }

        impl FromStr for Language {
            type Err = ValidationError;

            fn from_str(code: &str) -> Result<Self, Self::Err> {
                match code {
                    $($code => Ok(Language::$variant),)*
                    other => Err(ValidationError::new(
                        "sttConfig.language",
                        format!("`{}` is not a documented language code", crate::error::excerpt(other, 40)),
                    )),
                }
            }
        }
    };
}

languages! {
    KoKr => "ko-KR", "Korean (the service's default).";
    EnUs => "en-US", "English (US).";
    Mixed => "mixed", "Korean/English code-switching.";
    JaJp => "ja-JP", "Japanese.";
    CmnHansCn => "cmn-Hans-CN", "Mandarin Chinese, simplified script.";
    DeDe => "de-DE", "German.";
    FrFr => "fr-FR", "French.";
    EsEs => "es-ES", "Spanish.";
    ItIt => "it-IT", "Italian.";
    NlNl => "nl-NL", "Dutch.";
    SvSe => "sv-SE", "Swedish.";
    HiIn => "hi-IN", "Hindi.";
    RuRu => "ru-RU", "Russian.";
    ViVn => "vi-VN", "Vietnamese.";
    ThTh => "th-TH", "Thai.";
    IdId => "id-ID", "Indonesian.";
    FaIr => "fa-IR", "Persian.";
    CsCz => "cs-CZ", "Czech.";
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.code())
    }
}

impl Serialize for Language {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Language {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        code.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_and_case_matters() {
        assert_eq!(Language::ALL.len(), 18);
        for lang in Language::ALL {
            assert_eq!(lang.code().parse::<Language>().unwrap(), *lang);
        }
        let err = "EN-us".parse::<Language>().unwrap_err();
        assert_eq!(err.field(), "sttConfig.language");
        assert!(err.to_string().contains("EN-us"));
    }
}
