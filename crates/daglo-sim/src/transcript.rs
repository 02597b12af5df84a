//! Deterministic transcripts: words, timings, speakers and keywords from a seed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use daglo_core::{JobOptions, Language, Sentiment, SentimentScore, SttResult, TimeOffset, Word};

use daglo_core::SplitMix64;

const KOREAN: &[&str] = &[
    "안녕하세요",
    "오늘",
    "회의를",
    "시작하겠습니다",
    "다음",
    "분기",
    "매출은",
    "예상보다",
    "높았습니다",
    "고객",
    "의견을",
    "정리해",
    "보겠습니다",
    "일정은",
    "금요일까지",
    "확인",
    "부탁드립니다",
    "감사합니다",
    "질문",
    "있으신가요",
    "네",
    "그렇습니다",
    "자료를",
    "공유하겠습니다",
];

const ENGLISH: &[&str] = &[
    "hello",
    "everyone",
    "today",
    "we",
    "review",
    "the",
    "quarterly",
    "numbers",
    "revenue",
    "grew",
    "faster",
    "than",
    "expected",
    "customers",
    "asked",
    "for",
    "a",
    "shorter",
    "release",
    "cycle",
    "let's",
    "agree",
    "on",
    "next",
    "steps",
    "thanks",
    "question",
    "please",
    "share",
    "slides",
];

/// Generates the `sttResults` for a job: one entry per channel, words spread over
/// `audio_duration`, segments of 6–14 words, speakers and keywords when asked for.
pub(crate) fn generate(seed: u64, audio_duration: Duration, options: &JobOptions) -> Vec<SttResult> {
    let mut rng = SplitMix64::new(seed);
    let stt = options.stt_config.as_ref();
    let vocabulary = match stt.and_then(|s| s.language) {
        None | Some(Language::KoKr | Language::Mixed) => KOREAN,
        Some(_) => ENGLISH,
    };
    let boosted: Vec<&str> = stt
        .and_then(|s| s.keyword_boost.as_ref())
        .filter(|b| b.enable)
        .map(|b| b.keywords.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let speakers = stt
        .and_then(|s| s.speaker_diarization.as_ref())
        .filter(|d| d.enable)
        .map(|d| d.speaker_count_hint.unwrap_or(2).max(1));
    let channels = stt
        .and_then(|s| s.multi_channel.as_ref())
        .map_or(1, |m| m.channel_count.max(1)) as usize;

    let mut per_channel: Vec<Vec<Word>> = vec![Vec::new(); channels];
    let end = audio_duration.as_millis() as u64;
    let mut at_ms = 300;
    let mut segment = 0usize;
    'segments: loop {
        let length = rng.range(6, 15);
        for index in 0..length {
            let span = rng.range(250, 600);
            if at_ms + span > end {
                break 'segments;
            }
            let use_keyword = !boosted.is_empty() && rng.range(0, 7) == 0;
            let stem = if use_keyword {
                boosted[rng.range(0, boosted.len() as u64) as usize]
            } else {
                vocabulary[rng.range(0, vocabulary.len() as u64) as usize]
            };
            let text = if index + 1 == length {
                format!("{stem}. ")
            } else {
                format!("{stem} ")
            };
            let mut word = Word::new(text, millis(at_ms), millis(at_ms + span));
            word.segment_id = Some((segment + 1).to_string());
            word.speaker = speakers.map(|n| (segment as u32 % n + 1).to_string());
            per_channel[segment % channels].push(word);
            at_ms += span + rng.range(40, 200);
        }
        segment += 1;
    }

    let keyword_limit = options
        .nlp_config
        .as_ref()
        .and_then(|n| n.keyword_extraction.as_ref())
        .filter(|k| k.enable)
        .map(|k| k.max_count.unwrap_or(5) as usize);
    let sentiment = options
        .nlp_config
        .as_ref()
        .and_then(|n| n.sentiment_analysis.as_ref())
        .is_some_and(|s| s.enable);
    per_channel
        .into_iter()
        .map(|mut words| {
            let mut result = SttResult::new(
                words
                    .iter()
                    .map(|w| w.word.as_str())
                    .collect::<String>()
                    .trim_end(),
            );
            // `keywords` and `hasKeyword` come from extraction alone, and agree: a word is
            // flagged exactly when its stem is one of the result's keywords.
            if let Some(limit) = keyword_limit {
                let keywords = top_words(&words, limit);
                for word in &mut words {
                    word.has_keyword = Some(keywords.iter().any(|k| k == stem(&word.word)));
                }
                result.keywords = Some(keywords);
            }
            if sentiment {
                let (label, score) = sentiment_of(&mut rng);
                result.sentiment = Some(label);
                result.sentiment_score = Some(score);
            }
            result.words = words;
            result
        })
        .collect()
}

/// A word without its trailing space and sentence stop.
fn stem(word: &str) -> &str {
    word.trim().trim_end_matches('.')
}

/// A deterministic sentiment: three percentages summing to 100, labelled by the largest.
fn sentiment_of(rng: &mut SplitMix64) -> (Sentiment, SentimentScore) {
    let positive = rng.range(0, 1001) as f64 / 10.0;
    let negative = (rng.range(0, 1001) as f64 / 10.0).min(100.0 - positive);
    let neutral = ((100.0 - positive - negative) * 10.0).round() / 10.0;
    let label = if positive >= negative && positive >= neutral {
        Sentiment::Positive
    } else if negative >= neutral {
        Sentiment::Negative
    } else {
        Sentiment::Neutral
    };
    (label, SentimentScore::new(neutral, negative, positive))
}

fn millis(ms: u64) -> TimeOffset {
    TimeOffset::from(Duration::from_millis(ms))
}

fn top_words(words: &[Word], limit: usize) -> Vec<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for word in words {
        *counts.entry(stem(&word.word)).or_default() += 1;
    }
    let mut ranked: Vec<_> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    ranked
        .into_iter()
        .take(limit)
        .map(|(w, _)| w.to_owned())
        .collect()
}

/// Renders results as SubRip subtitles: one cue per segment, all channels merged in time order.
pub(crate) fn srt(results: &[SttResult]) -> String {
    let mut segments: BTreeMap<(Duration, String), (Duration, String)> = BTreeMap::new();
    let mut by_id: BTreeMap<String, (Duration, Duration, String)> = BTreeMap::new();
    for word in results.iter().flat_map(|r| &r.words) {
        let id = word.segment_id.clone().unwrap_or_default();
        let entry = by_id.entry(id).or_insert_with(|| {
            (
                word.start_time.unwrap_or_default().as_duration(),
                word.end_time.unwrap_or_default().as_duration(),
                String::new(),
            )
        });
        entry.1 = entry.1.max(word.end_time.unwrap_or_default().as_duration());
        entry.2.push_str(&word.word);
    }
    for (id, (start, end, text)) in by_id {
        segments.insert((start, id), (end, text));
    }
    let mut out = String::new();
    for (index, ((start, _), (end, text))) in segments.into_iter().enumerate() {
        let _ = write!(
            out,
            "{}\n{} --> {}\n{}\n\n",
            index + 1,
            daglo_core::internal::srt_time(start),
            daglo_core::internal::srt_time(end),
            text.trim()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_words_and_times_stay_inside_the_audio() {
        let options = JobOptions::builder()
            .speaker_diarization(Some(3))
            .build()
            .unwrap();
        let a = generate(42, Duration::from_secs(30), &options);
        let b = generate(42, Duration::from_secs(30), &options);
        assert_eq!(a, b);
        let words = &a[0].words;
        assert!(words.len() > 20);
        assert!(words.windows(2).all(|w| w[0].end_time <= w[1].start_time));
        assert!(words.last().unwrap().end_time.unwrap().as_duration() <= Duration::from_secs(30));
        assert!(words.iter().all(|w| w.speaker.is_some()));
        assert_ne!(generate(43, Duration::from_secs(30), &options), a);
    }

    #[test]
    fn channels_keywords_and_srt() {
        let options = JobOptions::builder()
            .channel_count(2)
            .keyword_extraction(3)
            .keyword_boost(["daglo"], 5)
            .language(Language::EnUs)
            .build()
            .unwrap();
        let results = generate(1, Duration::from_secs(60), &options);
        assert_eq!(results.len(), 2);
        assert!(results.iter().all(|r| r.keywords.as_ref().unwrap().len() <= 3));
        assert!(
            results
                .iter()
                .flat_map(|r| &r.words)
                .any(|w| w.has_keyword == Some(true))
        );
        let subtitles = srt(&results);
        assert!(subtitles.starts_with("1\n00:00:00,300 --> "), "{subtitles}");
    }
}
