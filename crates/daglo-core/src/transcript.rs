//! Transcripts to read: the words of a result in order, grouped by speaker into utterances, and
//! as WebVTT subtitles — all from the word timings every result carries.

use std::fmt::{self, Write as _};
use std::time::Duration;

use crate::body::{StatusBody, Word};

/// The longest cue text [`StatusBody::to_vtt`] writes before it starts another cue (two lines of
/// about 42 characters, the usual subtitle limit).
pub const MAX_CUE_CHARS: usize = 84;

/// The longest a cue lasts before [`StatusBody::to_vtt`] starts another one.
pub const MAX_CUE_DURATION: Duration = Duration::from_secs(7);

/// One word of a transcript and the channel it was heard on ([`StatusBody::words`]).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct ChannelWord<'a> {
    /// The channel: the index of its result in `sttResults` (0 unless the audio was
    /// transcribed per channel).
    pub channel: usize,
    /// The word, with its times and speaker as the service sent them.
    pub word: &'a Word,
}

/// Consecutive words of one speaker on one channel ([`StatusBody::utterances`]).
///
/// `Display` writes it as a line of a transcript: `Speaker 1: …` with diarization, `Channel 2:
/// …` for a second channel without it, the bare text otherwise.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Utterance {
    /// The channel the words were heard on (see [`ChannelWord::channel`]).
    pub channel: usize,
    /// The speaker label the service gave the words (`"1"`, `"2"`, …), with diarization.
    pub speaker: Option<String>,
    /// When the first word starts.
    pub start: Duration,
    /// When the last word ends (never before `start`).
    pub end: Duration,
    /// The words' text, joined as written and trimmed.
    pub text: String,
    /// The words, in order.
    pub words: Vec<Word>,
}

impl Utterance {
    /// Who spoke, for a reader: `Speaker 1`, `Channel 2` (multichannel audio without
    /// diarization), or `None` when neither is known.
    pub fn label(&self, channels: usize) -> Option<String> {
        match &self.speaker {
            Some(speaker) => Some(format!("Speaker {speaker}")),
            None if channels > 1 => Some(format!("Channel {}", self.channel + 1)),
            None => None,
        }
    }
}

impl fmt::Display for Utterance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.speaker {
            Some(speaker) => write!(f, "Speaker {speaker}: {}", self.text),
            None if self.channel > 0 => write!(f, "Channel {}: {}", self.channel + 1, self.text),
            None => f.write_str(&self.text),
        }
    }
}

/// Appends a word's text to `text`, with a space between two words when neither brings one
/// (the service's words carry their trailing space; others may not).
fn push_word(text: &mut String, word: &str) {
    let needs_space = !text.is_empty()
        && !text.ends_with(char::is_whitespace)
        && !word.starts_with(char::is_whitespace)
        && !word.is_empty();
    if needs_space {
        text.push(' ');
    }
    text.push_str(word);
}

fn start_of(word: &Word) -> Option<Duration> {
    word.start_time.map(|t| t.as_duration())
}

fn end_of(word: &Word) -> Option<Duration> {
    word.end_time.map(|t| t.as_duration())
}

/// Groups `words` (one channel's) into runs: a new run where `split` says so between the last
/// word of the current run and the next one.
fn runs<'a>(
    channel: usize,
    words: &'a [Word],
    mut split: impl FnMut(&Utterance, &'a Word) -> bool,
) -> Vec<Utterance> {
    let mut out: Vec<Utterance> = Vec::new();
    // A word without times is placed where the one before it ended.
    let mut clock = Duration::ZERO;
    for word in words {
        let start = start_of(word).unwrap_or(clock);
        let end = end_of(word).unwrap_or(start).max(start);
        clock = clock.max(end);
        let open = out.last().is_some_and(|last| !split(last, word));
        if !open {
            out.push(Utterance {
                channel,
                speaker: word.speaker.clone(),
                start,
                end,
                text: String::new(),
                words: Vec::new(),
            });
        }
        if let Some(current) = out.last_mut() {
            current.end = current.end.max(end);
            push_word(&mut current.text, &word.word);
            current.words.push(word.clone());
        }
    }
    for utterance in &mut out {
        let trimmed = utterance.text.trim();
        if trimmed.len() != utterance.text.len() {
            utterance.text = trimmed.to_owned();
        }
    }
    out
}

/// Merges per-channel sequences by start time, keeping each channel's order (a stable k-way
/// merge: ties go to the lower channel).
fn merge(channels: Vec<Vec<Utterance>>) -> Vec<Utterance> {
    let total = channels.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(total);
    let mut iters: Vec<std::iter::Peekable<std::vec::IntoIter<Utterance>>> =
        channels.into_iter().map(|c| c.into_iter().peekable()).collect();
    loop {
        let next = iters
            .iter_mut()
            .enumerate()
            .filter_map(|(i, it)| it.peek().map(|u| (u.start, i)))
            .min();
        let Some((_, i)) = next else { break };
        if let Some(utterance) = iters[i].next() {
            out.push(utterance);
        }
    }
    out
}

impl StatusBody {
    /// Every word of the result, in order — the first channel's, then the next one's — with its
    /// channel. Empty while the job runs and when it ended without text.
    ///
    /// ```
    /// use daglo::StatusBody;
    /// use daglo::models::{Status, SttResult, TimeOffset, Word};
    /// use std::time::Duration;
    ///
    /// let at = |ms| TimeOffset::from(Duration::from_millis(ms));
    /// let mut result = SttResult::new("Hello there.");
    /// result.words = vec![Word::new("Hello ", at(0), at(400)), Word::new("there.", at(450), at(900))];
    /// let mut body = StatusBody::new(Status::Transcribed);
    /// body.stt_results = Some(vec![result]);
    ///
    /// let words: Vec<&str> = body.words().map(|w| w.word.word.as_str()).collect();
    /// assert_eq!(words, ["Hello ", "there."]);
    /// ```
    pub fn words(&self) -> impl Iterator<Item = ChannelWord<'_>> + '_ {
        self.stt_results
            .iter()
            .flatten()
            .enumerate()
            .flat_map(|(channel, result)| result.words.iter().map(move |word| ChannelWord { channel, word }))
    }

    /// The result as speaker turns: consecutive words of one speaker on one channel grouped,
    /// each with its speaker, start, end and text; the channels' turns interleaved by start
    /// time (each channel's in its own order). Every word is in exactly one utterance. Without
    /// diarization a channel is one utterance.
    ///
    /// ```
    /// use daglo::StatusBody;
    /// use daglo::models::{Status, SttResult, TimeOffset, Word};
    /// use std::time::Duration;
    ///
    /// let at = |ms| TimeOffset::from(Duration::from_millis(ms));
    /// let said = |text, from, to, speaker: &str| {
    ///     let mut word = Word::new(text, at(from), at(to));
    ///     word.speaker = Some(speaker.to_owned());
    ///     word
    /// };
    /// let mut result = SttResult::new("Hi. Hello, how are you?");
    /// result.words = vec![
    ///     said("Hi. ", 0, 300, "1"),
    ///     said("Hello, ", 500, 900, "2"),
    ///     said("how ", 900, 1100, "2"),
    ///     said("are ", 1100, 1200, "2"),
    ///     said("you?", 1200, 1500, "2"),
    /// ];
    /// let mut body = StatusBody::new(Status::Transcribed);
    /// body.stt_results = Some(vec![result]);
    ///
    /// let turns: Vec<String> = body.utterances().iter().map(ToString::to_string).collect();
    /// assert_eq!(turns, ["Speaker 1: Hi.", "Speaker 2: Hello, how are you?"]);
    /// assert_eq!(body.utterances()[1].start, Duration::from_millis(500));
    /// ```
    pub fn utterances(&self) -> Vec<Utterance> {
        let channels = self
            .stt_results
            .iter()
            .flatten()
            .enumerate()
            .map(|(channel, result)| {
                runs(channel, &result.words, |current, word| {
                    current.speaker != word.speaker
                })
            })
            .collect();
        merge(channels)
    }

    /// The speaker turns as text, one per line (`Speaker 1: …`; `Channel 2: …` for multichannel
    /// audio without diarization); `None` when the result has no speaker and one channel, where
    /// [`full_transcript`](Self::full_transcript) says it all.
    pub fn transcript_by_speaker(&self) -> Option<String> {
        let channels = self.stt_results.as_deref().map_or(0, <[_]>::len);
        let utterances = self.utterances();
        if channels <= 1 && utterances.iter().all(|u| u.speaker.is_none()) {
            return None;
        }
        let mut out = String::new();
        for utterance in utterances.iter().filter(|u| !u.text.is_empty()) {
            match utterance.label(channels) {
                Some(label) => {
                    let _ = writeln!(out, "{label}: {}", utterance.text);
                }
                None => {
                    let _ = writeln!(out, "{}", utterance.text);
                }
            }
        }
        Some(out)
    }

    /// WebVTT subtitles from the word timings: a cue per sentence (the words' `segmentId`) of one
    /// speaker, split further at [`MAX_CUE_CHARS`] characters and [`MAX_CUE_DURATION`]; a
    /// speaker's cues carry a voice tag (`<v Speaker 1>`), and multichannel audio without
    /// diarization is voiced by channel. Cue times never go backwards. A result without words
    /// gives the header alone.
    ///
    /// ```
    /// use daglo::StatusBody;
    /// use daglo::models::{Status, SttResult, TimeOffset, Word};
    /// use std::time::Duration;
    ///
    /// let at = |ms| TimeOffset::from(Duration::from_millis(ms));
    /// let mut result = SttResult::new("Hello there.");
    /// result.words = vec![Word::new("Hello ", at(0), at(400)), Word::new("there.", at(450), at(900))];
    /// let mut body = StatusBody::new(Status::Transcribed);
    /// body.stt_results = Some(vec![result]);
    ///
    /// assert_eq!(body.to_vtt(), "WEBVTT\n\n1\n00:00:00.000 --> 00:00:00.900\nHello there.\n\n");
    /// ```
    pub fn to_vtt(&self) -> String {
        let mut out = String::from("WEBVTT\n\n");
        let mut last_start = Duration::ZERO;
        for (index, cue) in self.cues().into_iter().enumerate() {
            // Never backwards, never empty (a cue ends after it starts).
            let start = cue.start.max(last_start);
            let end = cue.end.max(start + Duration::from_millis(1));
            last_start = start;
            let _ = writeln!(out, "{}\n{} --> {}", index + 1, vtt_time(start), vtt_time(end));
            match &cue.voice {
                Some(voice) => {
                    let _ = writeln!(out, "<v {}>{}\n", escape_vtt(voice), escape_vtt(&cue.text));
                }
                None => {
                    let _ = writeln!(out, "{}\n", escape_vtt(&cue.text));
                }
            }
        }
        out
    }

    /// SubRip subtitles from the word timings, cut as [`to_vtt`](Self::to_vtt) cuts them, each
    /// cue of a speaker starting `Speaker 1: ` (`Channel 2: ` for multichannel audio without
    /// diarization) — for when the speakers matter: the SRT Daglo serves
    /// (`Client::srt`) names none.
    pub fn to_srt(&self) -> String {
        let mut out = String::new();
        let mut last_start = Duration::ZERO;
        for (index, cue) in self.cues().into_iter().enumerate() {
            let start = cue.start.max(last_start);
            let end = cue.end.max(start + Duration::from_millis(1));
            last_start = start;
            let text = cue.text.replace(['\r', '\n'], " ");
            let _ = writeln!(out, "{}\n{} --> {}", index + 1, srt_time(start), srt_time(end));
            match &cue.voice {
                Some(voice) => {
                    let _ = writeln!(out, "{voice}: {text}\n");
                }
                None => {
                    let _ = writeln!(out, "{text}\n");
                }
            }
        }
        out
    }

    /// Whether any word carries a speaker label (diarization was asked, and the service gave
    /// them).
    pub fn has_speakers(&self) -> bool {
        self.words().any(|w| w.word.speaker.is_some())
    }

    /// The cues of [`to_vtt`](Self::to_vtt), in order.
    fn cues(&self) -> Vec<Cue> {
        let results = self.stt_results.as_deref().unwrap_or_default();
        let channels = results.len();
        let per_channel = results
            .iter()
            .enumerate()
            .map(|(channel, result)| {
                runs(channel, &result.words, |current, word| {
                    let next_len =
                        current.text.trim_end().chars().count() + word.word.trim().chars().count() + 1;
                    let next_end = end_of(word).unwrap_or(current.end).max(current.end);
                    current.speaker != word.speaker
                        || current.words.last().map(|w| &w.segment_id) != Some(&word.segment_id)
                        || (next_len > MAX_CUE_CHARS && !current.text.trim().is_empty())
                        || next_end.saturating_sub(current.start) > MAX_CUE_DURATION
                })
            })
            .collect();
        merge(per_channel)
            .into_iter()
            .filter(|u| !u.text.is_empty())
            .map(|u| Cue {
                channel: u.channel,
                voice: u.label(channels),
                start: u.start,
                end: u.end,
                text: u.text,
            })
            .collect()
    }
}

/// One subtitle.
struct Cue {
    /// The channel its words were heard on (the tests follow each channel's words).
    #[cfg_attr(not(test), expect(dead_code, reason = "read by the tests"))]
    channel: usize,
    voice: Option<String>,
    start: Duration,
    end: Duration,
    text: String,
}

/// `HH:MM:SS.mmm`.
fn vtt_time(at: Duration) -> String {
    let ms = at.as_millis();
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// `HH:MM:SS,mmm`: a SubRip timestamp (the emulator's `/srt` writes these too).
pub fn srt_time(at: Duration) -> String {
    vtt_time(at).replace('.', ",")
}

/// Cue text as WebVTT wants it: `&`, `<` and `>` escaped (so no `-->` either), each line break
/// a space (a blank line would end the cue).
fn escape_vtt(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::SttResult;
    use crate::offset::TimeOffset;
    use crate::status::Status;
    use proptest::prelude::*;

    fn at(ms: u64) -> TimeOffset {
        TimeOffset::from(Duration::from_millis(ms))
    }

    fn body(channels: Vec<Vec<Word>>) -> StatusBody {
        let mut body = StatusBody::new(Status::Transcribed);
        body.stt_results = Some(
            channels
                .into_iter()
                .map(|words| {
                    let mut result = SttResult::new("");
                    result.words = words;
                    result
                })
                .collect(),
        );
        body
    }

    fn word(text: &str, from: u64, to: u64, speaker: Option<&str>, segment: &str) -> Word {
        let mut word = Word::new(text, at(from), at(to));
        word.speaker = speaker.map(str::to_owned);
        word.segment_id = Some(segment.to_owned());
        word
    }

    #[test]
    fn two_channels_interleave_by_time_and_are_voiced_by_channel() {
        let body = body(vec![
            vec![
                word("Hello. ", 0, 500, None, "1"),
                word("Fine. ", 3000, 3500, None, "2"),
            ],
            vec![
                word("Hi, ", 1000, 1400, None, "1"),
                word("how are you? ", 1400, 2500, None, "1"),
            ],
        ]);
        let turns: Vec<String> = body.utterances().iter().map(ToString::to_string).collect();
        assert_eq!(turns, ["Hello. Fine.", "Channel 2: Hi, how are you?"]);
        assert_eq!(
            body.transcript_by_speaker().unwrap(),
            "Channel 1: Hello. Fine.\nChannel 2: Hi, how are you?\n"
        );
        let vtt = body.to_vtt();
        assert_eq!(
            vtt,
            "WEBVTT\n\n\
             1\n00:00:00.000 --> 00:00:00.500\n<v Channel 1>Hello.\n\n\
             2\n00:00:01.000 --> 00:00:02.500\n<v Channel 2>Hi, how are you?\n\n\
             3\n00:00:03.000 --> 00:00:03.500\n<v Channel 1>Fine.\n\n"
        );
    }

    #[test]
    fn cues_split_at_speakers_sentences_and_length_and_text_is_escaped() {
        let long: Vec<Word> = (0..40)
            .map(|i| word("word ", i * 100, i * 100 + 90, Some("1"), "1"))
            .collect();
        let vtt = body(vec![long]).to_vtt();
        let lines: Vec<&str> = vtt.lines().filter(|l| l.starts_with("<v ")).collect();
        assert!(lines.len() >= 3, "{vtt}");
        assert!(
            lines
                .iter()
                .all(|l| l.chars().count() <= MAX_CUE_CHARS + "<v Speaker 1>".len())
        );
        let tricky = body(vec![vec![word("a<b>&c --> d\n", 0, 10, Some("<1>"), "1")]]).to_vtt();
        assert!(
            tricky.contains("<v Speaker &lt;1&gt;>a&lt;b&gt;&amp;c --&gt; d\n"),
            "{tricky}"
        );
        let sentences = body(vec![vec![
            word("One. ", 0, 100, Some("1"), "1"),
            word("Two. ", 100, 200, Some("1"), "2"),
        ]])
        .to_vtt();
        assert_eq!(sentences.matches(" --> ").count(), 2, "{sentences}");
    }

    #[test]
    fn srt_names_the_speakers() {
        let body = body(vec![vec![
            word("Hi. ", 0, 300, Some("1"), "1"),
            word("Hello. ", 1000, 1500, Some("2"), "2"),
        ]]);
        assert!(body.has_speakers());
        assert_eq!(
            body.to_srt(),
            "1\n00:00:00,000 --> 00:00:00,300\nSpeaker 1: Hi.\n\n2\n00:00:01,000 --> 00:00:01,500\nSpeaker 2: Hello.\n\n"
        );
    }

    #[test]
    fn no_words_no_cues_and_no_speaker_no_turns() {
        assert_eq!(StatusBody::new(Status::Transcribing).to_vtt(), "WEBVTT\n\n");
        assert!(StatusBody::new(Status::Transcribing).utterances().is_empty());
        let plain = body(vec![vec![
            word("Hello ", 0, 10, None, "1"),
            word("world", 10, 20, None, "1"),
        ]]);
        assert_eq!(plain.transcript_by_speaker(), None);
        assert_eq!(plain.utterances()[0].text, "Hello world");
    }

    /// Any words: speakers from a few, times anywhere (missing, overlapping, backwards).
    fn words() -> impl Strategy<Value = Vec<Vec<Word>>> {
        let word = (
            "[a-z<&>]{0,12}( )?",
            proptest::option::of(0u64..60_000),
            proptest::option::of(0u64..60_000),
            proptest::option::of(prop_oneof!["1", "2", "3"]),
            proptest::option::of(prop_oneof!["1", "2"]),
        )
            .prop_map(|(text, start, end, speaker, segment)| {
                let mut word = Word::new(text, at(0), at(0));
                word.start_time = start.map(at);
                word.end_time = end.map(at);
                word.speaker = speaker;
                word.segment_id = segment;
                word
            });
        proptest::collection::vec(proptest::collection::vec(word, 0..60), 0..3)
    }

    proptest! {
        #[test]
        fn every_word_once_in_order_in_utterances_and_cue_times_never_go_backwards(channels in words()) {
            let body = body(channels.clone());
            // words(): every word, in channel order.
            let all: Vec<&Word> = body.words().map(|w| w.word).collect();
            let expected: Vec<&Word> = channels.iter().flatten().collect();
            prop_assert_eq!(all, expected);
            // utterances(): each channel's words once, in order.
            let utterances = body.utterances();
            for (channel, words) in channels.iter().enumerate() {
                let seen: Vec<&Word> = utterances
                    .iter()
                    .filter(|u| u.channel == channel)
                    .flat_map(|u| &u.words)
                    .collect();
                prop_assert_eq!(seen, words.iter().collect::<Vec<_>>());
            }
            for u in &utterances {
                prop_assert!(u.start <= u.end);
                prop_assert!(u.words.iter().all(|w| w.speaker == u.speaker));
            }
            // The cues: each channel's words once, in order (as the words of their text).
            let cues = body.cues();
            for (channel, words) in channels.iter().enumerate() {
                let said: Vec<&str> = words.iter().flat_map(|w| w.word.split_whitespace()).collect();
                let cued: Vec<&str> = cues
                    .iter()
                    .filter(|c| c.channel == channel)
                    .flat_map(|c| c.text.split_whitespace())
                    .collect();
                prop_assert_eq!(cued, said);
            }
            let vtt = body.to_vtt();
            prop_assert!(vtt.starts_with("WEBVTT\n\n"));
            let mut last = String::new();
            for line in vtt.lines().filter(|l| l.contains(" --> ")) {
                let (start, end) = line.split_once(" --> ").unwrap();
                prop_assert!(start >= last.as_str(), "{} after {}", start, last);
                prop_assert!(end > start, "{}", line);
                last = start.to_owned();
            }
            // A cue's text never holds a line break or an unescaped `<` outside its voice tag.
            for block in vtt.split("\n\n").skip(1).filter(|b| !b.is_empty()) {
                let lines: Vec<&str> = block.lines().collect();
                prop_assert_eq!(lines.len(), 3, "{}", block);
                let text = lines[2].strip_prefix("<v ").map_or(lines[2], |t| t.split_once('>').map_or(t, |(_, rest)| rest));
                prop_assert!(!text.contains('<') && !text.contains('>'), "{}", block);
            }
        }
    }
}
