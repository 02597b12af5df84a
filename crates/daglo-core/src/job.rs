//! Jobs as data: the id a job keeps across restarts, where it stands, and what it looked like
//! at a moment — what a `Transcriber`'s job table hands out and a journal keeps.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::delivery::OutcomeKind;
use crate::error::ValidationError;
use crate::request::Rid;
use crate::status::Status;

/// The longest [`JobId`], key or label accepted, in bytes.
pub const MAX_JOB_TEXT: usize = 4096;

/// Identifies one job of a transcriber, stable across restarts (it is kept in the journal) and
/// serialised as its text (`job_` and 26 base32 characters for the ids this crate makes).
///
/// ```
/// use daglo_core::JobId;
///
/// let id = JobId::random();
/// let again: JobId = id.as_str().parse()?;
/// assert_eq!(again, id);
/// assert!("job with spaces".parse::<JobId>().is_err());
/// # Ok::<(), daglo_core::ValidationError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    /// A fresh id: 128 bits from the process's randomly keyed SipHash over a counter and the
    /// clock — unique, not secret (an id is no credential).
    pub fn random() -> Self {
        use std::hash::{BuildHasher, Hasher};
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
        let half = |salt: u64| {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u64(salt);
            hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
            hasher.write_u128(
                SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos(),
            );
            hasher.write_u32(std::process::id());
            hasher.finish()
        };
        let mut bits = (u128::from(half(1)) << 64) | u128::from(half(2));
        let mut text = String::with_capacity(30);
        text.push_str("job_");
        for _ in 0..26 {
            text.push(char::from(ALPHABET[(bits & 31) as usize]));
            bits >>= 5;
        }
        Self(text)
    }

    /// The id of a journal entry written before jobs had ids (`entry-<n>`).
    pub fn legacy(entry: i64) -> Self {
        Self(format!("entry-{entry}"))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks text that names a job or labels it: 1 to [`MAX_JOB_TEXT`] bytes, no control
/// characters. `what` names the field in the error.
pub fn check_job_text(what: &'static str, text: &str) -> Result<(), ValidationError> {
    if text.is_empty() {
        return Err(ValidationError::new(what, "must not be empty"));
    }
    if text.len() > MAX_JOB_TEXT {
        return Err(ValidationError::new(
            what,
            format!("{} bytes is over the {MAX_JOB_TEXT}-byte limit", text.len()),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(ValidationError::new(what, "must not contain control characters"));
    }
    Ok(())
}

impl FromStr for JobId {
    type Err = ValidationError;

    /// A job id: 1 to 4096 of `A-Z a-z 0-9 _ -`.
    fn from_str(text: &str) -> Result<Self, ValidationError> {
        check_job_text("job id", text)?;
        if !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(ValidationError::new(
                "job id",
                "may hold only letters, digits, `_` and `-`",
            ));
        }
        Ok(Self(text.to_owned()))
    }
}

impl<'de> Deserialize<'de> for JobId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JobId({})", self.0)
    }
}

/// Where a job stands. Serialised in `snake_case` (`gave_up`, `not_submitted`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum JobState {
    /// The submit is under way in this process.
    Submitting,
    /// Submitted: the job runs at the service (and is billed).
    Running,
    /// Ended with a transcript (or an empty one: no speech).
    Finished,
    /// Ended with a failure status.
    Failed,
    /// The wait stopped (a deadline, an expired callback registration, a wait that failed);
    /// the job may still run at the service: resume it by its rid.
    GaveUp,
    /// A submit was started and its answer never recorded (a crash, a lost connection): a job
    /// may exist and be billed. Never submitted again automatically.
    Uncertain,
    /// The submit was refused in a way that created no job.
    NotSubmitted,
}

impl JobState {
    /// Every state, in the order above.
    pub const ALL: [Self; 7] = [
        Self::Submitting,
        Self::Running,
        Self::Finished,
        Self::Failed,
        Self::GaveUp,
        Self::Uncertain,
        Self::NotSubmitted,
    ];

    /// The serialised spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitting => "submitting",
            Self::Running => "running",
            Self::Finished => "finished",
            Self::Failed => "failed",
            Self::GaveUp => "gave_up",
            Self::Uncertain => "uncertain",
            Self::NotSubmitted => "not_submitted",
        }
    }

    /// Whether nothing more will happen to the job by itself: finished, failed, not submitted.
    /// (A job given up on or uncertain may still be resumed or settled.)
    pub fn is_ended(self) -> bool {
        matches!(self, Self::Finished | Self::Failed | Self::NotSubmitted)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = ValidationError;

    fn from_str(text: &str) -> Result<Self, ValidationError> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| {
                ValidationError::new(
                    "state",
                    format!(
                        "`{}` is not one of {}",
                        text.escape_debug(),
                        Self::ALL.map(Self::as_str).join(", ")
                    ),
                )
            })
    }
}

/// A job at one moment: plain data with public fields, serialisable (times as RFC 3339 text,
/// durations as seconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobSnapshot {
    /// The job.
    pub id: JobId,
    /// The caller's key, which made the start idempotent.
    pub key: Option<String>,
    /// The caller's labels.
    pub labels: BTreeMap<String, String>,
    /// What was transcribed: a file path, a URL, or an uploaded file's name.
    pub input: String,
    /// The strategy that delivers its result (`polling`, `callback`, `hybrid`).
    pub strategy: String,
    /// Where it stands.
    pub state: JobState,
    /// The service's job id, once the submit was answered.
    pub rid: Option<Rid>,
    /// The last status the service reported.
    pub status: Option<Status>,
    /// The last progress the service reported, in percent.
    pub progress: Option<u32>,
    /// How long until the job is predicted to end, from the rate its progress rose at.
    #[serde(rename = "eta_secs", with = "crate::secs::option", default)]
    pub eta: Option<Duration>,
    /// Progress has not moved for far longer than predicted (the job may be queued or stuck).
    pub stalled: bool,
    /// How it ended, once it ended.
    pub outcome: Option<OutcomeKind>,
    /// Why it was not submitted, or why the wait stopped.
    pub reason: Option<String>,
    /// The status requests it cost so far (polls, a final's confirmation, retries).
    #[serde(default)]
    pub status_requests: u64,
    /// When the job was started.
    #[serde(with = "rfc3339")]
    pub created_at: SystemTime,
    /// When it last changed.
    #[serde(with = "rfc3339")]
    pub updated_at: SystemTime,
}

impl JobSnapshot {
    /// A job about to be submitted.
    pub fn new(id: JobId, input: impl Into<String>, strategy: impl Into<String>) -> Self {
        let now = SystemTime::now();
        Self {
            id,
            key: None,
            labels: BTreeMap::new(),
            input: input.into(),
            strategy: strategy.into(),
            state: JobState::Submitting,
            rid: None,
            status: None,
            progress: None,
            eta: None,
            stalled: false,
            outcome: None,
            reason: None,
            status_requests: 0,
            created_at: now,
            updated_at: now,
        }
    }
}

/// Which jobs to list: every condition set must hold. The default lists every job.
///
/// ```
/// use daglo_core::{JobFilter, JobState};
///
/// let filter = JobFilter::default().state(JobState::Running).label("team", "sales").limit(50);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobFilter {
    /// Only jobs in one of these states (any state when empty).
    #[serde(default)]
    pub states: Vec<JobState>,
    /// Only the job with this key.
    #[serde(default)]
    pub key: Option<String>,
    /// Only jobs carrying every one of these labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// At most this many, newest first.
    #[serde(default)]
    pub limit: Option<usize>,
}

impl JobFilter {
    /// Also accepts jobs in `state` (called again, any of the states given).
    #[must_use]
    pub fn state(mut self, state: JobState) -> Self {
        self.states.push(state);
        self
    }

    /// Only the job with `key`.
    #[must_use]
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Only jobs labelled `name` = `value`.
    #[must_use]
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(name.into(), value.into());
        self
    }

    /// At most `limit` jobs, newest first.
    #[must_use]
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Whether `job` passes the filter (the limit aside).
    pub fn matches(&self, job: &JobSnapshot) -> bool {
        (self.states.is_empty() || self.states.contains(&job.state))
            && self.key.as_ref().is_none_or(|key| job.key.as_ref() == Some(key))
            && self
                .labels
                .iter()
                .all(|(name, value)| job.labels.get(name) == Some(value))
    }
}

/// Where a list of jobs goes on: the position after the last job of a page
/// ([`JobPage::next`]). Opaque: written and read back as text (`daglo serve`'s `next_cursor`),
/// never built by hand. A cursor from a transcriber with a journal names a journal position;
/// one without a journal, a job and its creation time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobCursor(Position);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Position {
    /// Older than this journal entry.
    Entry(i64),
    /// Older than this job (creation time in ms, then id), in a transcriber without a journal.
    Job(u64, JobId),
}

impl JobCursor {
    /// The position after journal entry `entry`.
    pub fn entry(entry: crate::EntryId) -> Self {
        Self(Position::Entry(entry.0))
    }

    /// The position after `job`, in a list of jobs ordered newest first by creation.
    pub fn job(job: &JobSnapshot) -> Self {
        let ms = job
            .created_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        Self(Position::Job(
            u64::try_from(ms).unwrap_or(u64::MAX),
            job.id.clone(),
        ))
    }

    /// The journal entry it goes on after, for a cursor of a transcriber with a journal.
    pub fn as_entry(&self) -> Option<crate::EntryId> {
        match &self.0 {
            Position::Entry(entry) => Some(crate::EntryId(*entry)),
            Position::Job(..) => None,
        }
    }

    /// Whether `job` comes after the position (is older), for a cursor of a transcriber
    /// without a journal; `None` for a journal cursor.
    pub fn is_before(&self, job: &JobSnapshot) -> Option<bool> {
        match (&self.0, Self::job(job).0) {
            (Position::Job(at, last), Position::Job(ms, id)) => Some((ms, &id) < (*at, last)),
            _ => None,
        }
    }
}

impl fmt::Display for JobCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Position::Entry(entry) => write!(f, "e{entry}"),
            Position::Job(ms, id) => write!(f, "m{ms}.{id}"),
        }
    }
}

/// A text that is not a [`JobCursor`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{}` is not a cursor of this list (pass the `next_cursor` of the page before)", crate::internal::safe(.0))]
pub struct CursorError(String);

impl std::str::FromStr for JobCursor {
    type Err = CursorError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || CursorError(text.chars().take(80).collect());
        if let Some(digits) = text.strip_prefix('e') {
            // Written one way only: digits, no sign, no leading zero.
            return digits
                .parse::<i64>()
                .ok()
                .filter(|entry| *entry > 0 && entry.to_string() == digits)
                .map(|entry| Self(Position::Entry(entry)))
                .ok_or_else(bad);
        }
        if let Some((ms, id)) = text.strip_prefix('m').and_then(|rest| rest.split_once('.')) {
            return match (ms.parse::<u64>(), id.parse::<JobId>()) {
                (Ok(ms), Ok(id)) => Ok(Self(Position::Job(ms, id))),
                _ => Err(bad()),
            };
        }
        Err(bad())
    }
}

/// One page of jobs ([`Transcriber::page`](../daglo/struct.Transcriber.html#method.page)):
/// newest first, and where the next page starts when there is one.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct JobPage {
    /// The jobs, newest first.
    pub jobs: Vec<JobSnapshot>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<JobCursor>,
}

impl JobPage {
    /// A page of `jobs`, the next starting at `next`.
    pub fn new(jobs: Vec<JobSnapshot>, next: Option<JobCursor>) -> Self {
        Self { jobs, next }
    }
}

/// What happened to a job, in order, as [`Transcriber::events`](../daglo/struct.Transcriber.html)
/// streams it. The stream ends after [`Ended`](JobEvent::Ended).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum JobEvent {
    /// The submit was answered: the job runs under `rid`.
    Submitted {
        /// The service's job id.
        rid: Rid,
    },
    /// The status or the progress changed.
    Progress {
        /// The status now.
        status: Status,
        /// Percent done, when the service said.
        progress: Option<u32>,
        /// The predicted time left.
        #[serde(rename = "eta_secs", with = "crate::secs::option", default)]
        eta: Option<Duration>,
    },
    /// Progress has not moved for far longer than predicted.
    Stalled,
    /// The job reached `state` and nothing more will be streamed: finished, failed, not
    /// submitted, gave up or uncertain.
    Ended {
        /// Where it ended.
        state: JobState,
        /// How, when it ran to its end.
        outcome: Option<OutcomeKind>,
    },
}

impl JobEvent {
    /// The event's name as the `event` field spells it (`submitted`, `progress`, `stalled`,
    /// `ended`): what a Server-Sent Events stream names it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Submitted { .. } => "submitted",
            Self::Progress { .. } => "progress",
            Self::Stalled => "stalled",
            Self::Ended { .. } => "ended",
        }
    }
}

/// RFC 3339 text for a [`SystemTime`] (UTC, milliseconds), to and from serde.
pub mod rfc3339 {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use serde::{Deserialize, Deserializer, Serializer};

    /// `2026-12-01T12:30:00.250Z` for `time` (times before 1970 are written as 1970).
    pub fn format(time: SystemTime) -> String {
        let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (year, month, day) = civil_from_days(days as i64);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60,
            since.subsec_millis()
        )
    }

    /// Reads `YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)`.
    pub fn parse(text: &str) -> Option<SystemTime> {
        let b = text.as_bytes();
        let digits = |range: std::ops::Range<usize>| -> Option<i64> {
            let part = text.get(range)?;
            part.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| part.parse().ok())?
        };
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
            return None;
        }
        let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
        let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        let mut rest = &text[19..];
        let mut nanos = 0u32;
        if let Some(fraction) = rest.strip_prefix('.') {
            let len = fraction.bytes().take_while(u8::is_ascii_digit).count();
            if len == 0 {
                return None;
            }
            let kept = &fraction[..len.min(9)];
            nanos = kept.parse::<u32>().ok()? * 10u32.pow(9 - kept.len() as u32);
            rest = &fraction[len..];
        }
        let offset = match rest {
            "Z" | "z" => 0,
            _ if rest.len() == 6 && matches!(&rest[3..4], ":") => {
                let sign = match &rest[..1] {
                    "+" => 1,
                    "-" => -1,
                    _ => return None,
                };
                let hours: i64 = rest[1..3].parse().ok()?;
                let minutes: i64 = rest[4..6].parse().ok()?;
                sign * (hours * 3600 + minutes * 60)
            }
            _ => return None,
        };
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
        let secs = u64::try_from(secs).ok()?;
        UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
    }

    // Howard Hinnant's civil-date algorithms.
    fn civil_from_days(days: i64) -> (i64, u32, u32) {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        (year, month, day)
    }

    fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
        let year = if month <= 2 { year - 1 } else { year };
        let era = year.div_euclid(400);
        let yoe = year.rem_euclid(400);
        let mp = (month + 9) % 12;
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// Serialises as [`format()`].
    pub fn serialize<S: Serializer>(time: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format(*time))
    }

    /// Deserialises with [`parse()`].
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse(&text).ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not an RFC 3339 time")))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn round_trips_and_reads_offsets() {
            let time = UNIX_EPOCH + Duration::from_millis(1_796_125_854_280);
            let text = format(time);
            assert_eq!(text, "2026-12-01T11:50:54.280Z");
            assert_eq!(parse(&text), Some(time));
            assert_eq!(parse("2026-12-01T20:50:54.280+09:00"), Some(time));
            assert_eq!(format(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
            assert_eq!(
                parse("2024-02-29T00:00:00Z"),
                Some(UNIX_EPOCH + Duration::from_secs(1_709_164_800))
            );
            for bad in [
                "",
                "2026-13-01T00:00:00Z",
                "2026-12-01 00:00",
                "2026-12-01T00:00:00",
                "2026-12-01T00:00:00.Z",
            ] {
                assert_eq!(parse(bad), None, "{bad}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_and_parse_back() {
        let (a, b) = (JobId::random(), JobId::random());
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 30);
        assert_eq!(a.as_str().parse::<JobId>().unwrap(), a);
        assert!("".parse::<JobId>().is_err());
        assert!("a/b".parse::<JobId>().is_err());
        assert!("x".repeat(4097).parse::<JobId>().is_err());
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<JobId>(&json).unwrap(), a);
        assert!(serde_json::from_str::<JobId>("\"bad id\"").is_err());
    }

    #[test]
    fn states_spell_as_documented() {
        for state in JobState::ALL {
            assert_eq!(state.as_str().parse::<JobState>().unwrap(), state);
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
        let error = "done".parse::<JobState>().unwrap_err().to_string();
        assert!(error.contains("not_submitted"), "{error}");
    }

    #[test]
    fn snapshots_serialise_with_plain_field_names() {
        let mut job = JobSnapshot::new(JobId::random(), "a.wav", "polling");
        job.key = Some("meeting-42".into());
        job.eta = Some(Duration::from_secs(12));
        let value = serde_json::to_value(&job).unwrap();
        for field in [
            "id",
            "key",
            "labels",
            "state",
            "status",
            "progress",
            "eta_secs",
            "rid",
            "created_at",
            "updated_at",
        ] {
            assert!(value.get(field).is_some(), "{field} in {value}");
        }
        assert_eq!(value["state"], "submitting");
        assert_eq!(value["eta_secs"].as_f64(), Some(12.0));
        let back: JobSnapshot = serde_json::from_value(value).unwrap();
        assert_eq!(back.id, job.id);
    }

    #[test]
    fn filters_combine_their_conditions() {
        let mut job = JobSnapshot::new(JobId::random(), "a.wav", "polling");
        job.state = JobState::Running;
        job.labels.insert("team".into(), "sales".into());
        assert!(JobFilter::default().matches(&job));
        assert!(
            JobFilter::default()
                .state(JobState::Running)
                .label("team", "sales")
                .matches(&job)
        );
        assert!(!JobFilter::default().state(JobState::Finished).matches(&job));
        assert!(
            JobFilter::default()
                .state(JobState::Finished)
                .state(JobState::Running)
                .matches(&job)
        );
        assert!(!JobFilter::default().label("team", "ops").matches(&job));
        assert!(!JobFilter::default().key("k").matches(&job));
    }
}
