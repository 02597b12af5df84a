//! Polling-schedule maths: when to ask about a job next. Pure functions of what was observed;
//! the scheduler that acts on them lives in `daglo-poll`.
//!
//! Times are durations since the job started being watched, so nothing here needs a clock.

use std::time::Duration;

/// How a job's status requests are spaced. Each variant documents when to choose it.
///
/// It is configuration too (serde), tagged by `kind`, durations in seconds; every field of
/// `adaptive` is optional and defaults to [`AdaptivePolicy::default`]:
///
/// ```
/// use std::time::Duration;
/// use daglo::poll::PollPolicy;
///
/// let fixed: PollPolicy = serde_json::from_str(r#"{"kind": "fixed", "interval_secs": 3}"#)?;
/// assert_eq!(fixed, PollPolicy::Fixed(Duration::from_secs(3)));
/// let exponential: PollPolicy = serde_json::from_str(
///     r#"{"kind": "exponential", "initial_secs": 1, "factor": 2, "max_secs": 60}"#)?;
/// let adaptive: PollPolicy = serde_json::from_str(r#"{"kind": "adaptive"}"#)?;
/// assert_eq!(adaptive, PollPolicy::default());
/// assert!(serde_json::from_str::<PollPolicy>(r#"{"kind": "fixed", "interval": 3}"#).is_err());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "PolicyRepr", into = "PolicyRepr")]
#[non_exhaustive]
pub enum PollPolicy {
    /// The same interval every time (±10 % jitter; the first poll at a random phase).
    ///
    /// Choose it when jobs are short and similar and you want a predictable request rate, or
    /// to compare against. Detection latency is about half the interval; cost grows linearly
    /// with the job's length.
    Fixed(Duration),
    /// Intervals growing from `initial` by `factor` up to `max` (±10 % jitter).
    ///
    /// Choose it when job lengths vary widely and the service reports no useful progress:
    /// cost grows only logarithmically with the job's length, but a long job's result may wait
    /// up to `max` to be seen.
    Exponential {
        /// The first interval.
        initial: Duration,
        /// Growth per poll (values below 1 are treated as 1).
        factor: f64,
        /// The largest interval.
        max: Duration,
    },
    /// Predicts the completion instant from how fast `progress` rises (smoothed) — or from the
    /// audio's duration before any progress is seen — then polls sparsely early and densely near
    /// the predicted end, within `[min_interval, max_interval]`.
    ///
    /// Choose it by default: it asks least for a given detection latency whenever progress is
    /// reported, and degrades to exponential backoff when it is not.
    Adaptive(AdaptivePolicy),
}

impl Default for PollPolicy {
    fn default() -> Self {
        Self::Adaptive(AdaptivePolicy::default())
    }
}

/// The adaptive policy's settings.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AdaptivePolicy {
    /// Never poll a job more often than this.
    pub min_interval: Duration,
    /// Never leave a job unpolled longer than this.
    pub max_interval: Duration,
    /// The interval while nothing is known (grows ×2 per poll until progress is seen).
    pub initial_interval: Duration,
    /// Weight of the newest rate sample in the smoothed progress rate, in `(0, 1]`.
    pub smoothing: f64,
    /// Expected processing time per second of audio, used before progress is seen.
    pub processing_per_audio_second: f64,
    /// How long after the predicted completion to poll, to land just after it.
    pub margin: Duration,
}

impl Default for AdaptivePolicy {
    fn default() -> Self {
        Self {
            min_interval: Duration::from_millis(500),
            max_interval: Duration::from_secs(30),
            initial_interval: Duration::from_secs(3),
            smoothing: 0.5,
            processing_per_audio_second: 0.25,
            margin: Duration::from_millis(100),
        }
    }
}

/// The configuration form of [`PollPolicy`]: one place for its keys and their defaults.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum PolicyRepr {
    Fixed {
        #[serde(with = "crate::secs")]
        interval_secs: Duration,
    },
    Exponential {
        #[serde(with = "crate::secs")]
        initial_secs: Duration,
        factor: f64,
        #[serde(with = "crate::secs")]
        max_secs: Duration,
    },
    Adaptive {
        #[serde(with = "crate::secs", default = "adaptive::min_interval")]
        min_interval_secs: Duration,
        #[serde(with = "crate::secs", default = "adaptive::max_interval")]
        max_interval_secs: Duration,
        #[serde(with = "crate::secs", default = "adaptive::initial_interval")]
        initial_interval_secs: Duration,
        #[serde(default = "adaptive::smoothing")]
        smoothing: f64,
        #[serde(default = "adaptive::processing_per_audio_second")]
        processing_per_audio_second: f64,
        #[serde(with = "crate::secs", default = "adaptive::margin")]
        margin_secs: Duration,
    },
}

/// The adaptive policy's defaults, field by field, for the configuration form.
mod adaptive {
    use std::time::Duration;

    use super::AdaptivePolicy;

    pub(super) fn min_interval() -> Duration {
        AdaptivePolicy::default().min_interval
    }
    pub(super) fn max_interval() -> Duration {
        AdaptivePolicy::default().max_interval
    }
    pub(super) fn initial_interval() -> Duration {
        AdaptivePolicy::default().initial_interval
    }
    pub(super) fn smoothing() -> f64 {
        AdaptivePolicy::default().smoothing
    }
    pub(super) fn processing_per_audio_second() -> f64 {
        AdaptivePolicy::default().processing_per_audio_second
    }
    pub(super) fn margin() -> Duration {
        AdaptivePolicy::default().margin
    }
}

impl TryFrom<PolicyRepr> for PollPolicy {
    type Error = String;

    fn try_from(repr: PolicyRepr) -> Result<Self, String> {
        let positive = |name: &str, value: Duration| {
            if value.is_zero() {
                Err(format!("`{name}` must be above 0"))
            } else {
                Ok(value)
            }
        };
        Ok(match repr {
            PolicyRepr::Fixed { interval_secs } => Self::Fixed(positive("interval_secs", interval_secs)?),
            PolicyRepr::Exponential {
                initial_secs,
                factor,
                max_secs,
            } => {
                if !(factor.is_finite() && factor >= 1.0) {
                    return Err(format!(
                        "an exponential policy's `factor` must be at least 1, not {factor}"
                    ));
                }
                Self::Exponential {
                    initial: positive("initial_secs", initial_secs)?,
                    factor,
                    max: positive("max_secs", max_secs)?,
                }
            }
            PolicyRepr::Adaptive {
                min_interval_secs,
                max_interval_secs,
                initial_interval_secs,
                smoothing,
                processing_per_audio_second,
                margin_secs,
            } => {
                if !(smoothing > 0.0 && smoothing <= 1.0) {
                    return Err(format!("`smoothing` must be in (0, 1], not {smoothing}"));
                }
                if !(processing_per_audio_second.is_finite() && processing_per_audio_second > 0.0) {
                    return Err(format!(
                        "`processing_per_audio_second` must be above 0, not {processing_per_audio_second}"
                    ));
                }
                if max_interval_secs < min_interval_secs {
                    return Err("`max_interval_secs` must not be below `min_interval_secs`".to_owned());
                }
                Self::Adaptive(AdaptivePolicy {
                    min_interval: positive("min_interval_secs", min_interval_secs)?,
                    max_interval: max_interval_secs,
                    initial_interval: positive("initial_interval_secs", initial_interval_secs)?,
                    smoothing,
                    processing_per_audio_second,
                    margin: margin_secs,
                })
            }
        })
    }
}

impl From<PollPolicy> for PolicyRepr {
    fn from(policy: PollPolicy) -> Self {
        match policy {
            PollPolicy::Fixed(interval_secs) => Self::Fixed { interval_secs },
            PollPolicy::Exponential { initial, factor, max } => Self::Exponential {
                initial_secs: initial,
                factor,
                max_secs: max,
            },
            PollPolicy::Adaptive(adaptive) => Self::Adaptive {
                min_interval_secs: adaptive.min_interval,
                max_interval_secs: adaptive.max_interval,
                initial_interval_secs: adaptive.initial_interval,
                smoothing: adaptive.smoothing,
                processing_per_audio_second: adaptive.processing_per_audio_second,
                margin_secs: adaptive.margin,
            },
        }
    }
}

/// What has been observed of one job: enough to predict its end, and how steady that
/// prediction has been. About 88 bytes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProgressTracker {
    last: Option<(Duration, u32)>,
    rate_per_second: Option<f64>,
    polls: u32,
    overdue_polls: u32,
    /// The end predicted after the latest poll.
    predicted_end: Option<Duration>,
    /// How many polls in a row predicted the same end (within [`STEADY_TOLERANCE`]).
    steady: u32,
}

/// Two predictions of a job's end agree when they differ by at most this share of it.
const STEADY_TOLERANCE: f64 = 0.05;

impl ProgressTracker {
    /// Records a poll at `at` that reported `percent` (if any). `smoothing` weights the newest
    /// rate sample.
    pub fn observe(&mut self, at: Duration, percent: Option<u32>, smoothing: f64) {
        if self.predicted_remaining(at).is_some_and(|r| r.is_zero()) {
            self.overdue_polls += 1;
        }
        self.polls += 1;
        let Some(percent) = percent.map(|p| p.min(100)) else {
            return;
        };
        if let Some((then, before)) = self.last {
            let dt = at.saturating_sub(then).as_secs_f64();
            if dt > 0.0 && percent >= before {
                let sample = f64::from(percent - before) / dt;
                let alpha = smoothing.clamp(0.01, 1.0);
                self.rate_per_second = Some(match self.rate_per_second {
                    Some(rate) => alpha * sample + (1.0 - alpha) * rate,
                    None => sample,
                });
                if percent > before {
                    self.overdue_polls = 0;
                }
            }
        }
        self.last = Some((at, percent));
        // Is the job's end where the previous poll said it would be? A prediction that holds
        // is trusted with a longer jump towards it (see `AdaptivePolicy`).
        let end = self
            .predicted_remaining(at)
            .filter(|r| !r.is_zero())
            .map(|r| at + r);
        self.steady = match (self.predicted_end, end) {
            (Some(before), Some(now))
                if before.abs_diff(now).as_secs_f64() <= STEADY_TOLERANCE * now.as_secs_f64() =>
            {
                self.steady + 1
            }
            _ => 0,
        };
        self.predicted_end = end;
    }

    /// How many polls in a row confirmed the predicted end (0 after a poll that moved it).
    pub fn steady_predictions(&self) -> u32 {
        self.steady
    }

    /// How many polls were recorded.
    pub fn polls(&self) -> u32 {
        self.polls
    }

    /// The smoothed progress rate in percent per second, once two polls reported progress.
    pub fn rate_per_second(&self) -> Option<f64> {
        self.rate_per_second
    }

    /// Time left until the predicted completion, seen from `at` (zero when overdue); `None`
    /// while progress has not been seen rising.
    pub fn predicted_remaining(&self, at: Duration) -> Option<Duration> {
        let (then, percent) = self.last?;
        let rate = self.rate_per_second.filter(|r| *r > 0.0)?;
        // Reported percents are whole numbers, rounded down: on average the job was half a
        // percent further along than it said.
        let done = (f64::from(percent.min(100)) + 0.5).min(100.0);
        let from_then = Duration::try_from_secs_f64((100.0 - done) / rate).ok()?;
        Some((then + from_then).saturating_sub(at))
    }
}

impl PollPolicy {
    /// The wait before a job's first poll. `unit` is a random number in `[0, 1)` that spreads
    /// jobs submitted together; `audio` is the audio's duration when the caller knows it.
    pub fn first_delay(&self, audio: Option<Duration>, unit: f64) -> Duration {
        match self {
            Self::Fixed(interval) => interval.mul_f64(unit.clamp(0.0, 1.0)),
            Self::Exponential { initial, .. } => initial.mul_f64(0.5f64.mul_add(unit.clamp(0.0, 1.0), 0.5)),
            Self::Adaptive(adaptive) => {
                let base = audio
                    .map(|a| a.mul_f64(adaptive.processing_per_audio_second.max(0.0) / 2.0))
                    .unwrap_or(adaptive.initial_interval);
                clamp(base, adaptive.min_interval, adaptive.max_interval)
                    .mul_f64(0.5f64.mul_add(unit.clamp(0.0, 1.0), 0.5))
            }
        }
    }

    /// The wait before the next poll, after the poll recorded in `tracker` at `at`.
    pub fn next_interval(
        &self,
        tracker: &ProgressTracker,
        at: Duration,
        audio: Option<Duration>,
        unit: f64,
    ) -> Duration {
        let jitter = 0.2f64.mul_add(unit.clamp(0.0, 1.0), 0.9);
        match self {
            Self::Fixed(interval) => interval.mul_f64(jitter),
            Self::Exponential { initial, factor, max } => {
                let exponent = tracker.polls().saturating_sub(1).min(60) as i32;
                let grown = initial.as_secs_f64() * factor.max(1.0).powi(exponent);
                Duration::from_secs_f64(grown.min(max.as_secs_f64())).mul_f64(jitter)
            }
            Self::Adaptive(adaptive) => adaptive.next_interval(tracker, at, audio, jitter),
        }
    }
}

impl AdaptivePolicy {
    fn next_interval(
        &self,
        tracker: &ProgressTracker,
        at: Duration,
        audio: Option<Duration>,
        jitter: f64,
    ) -> Duration {
        let (min, max) = (self.min_interval, self.max_interval.max(self.min_interval));
        let predicted = tracker.predicted_remaining(at).or_else(|| {
            // Before progress moves, the audio's length is the best guess of the job's length.
            let expected = audio?.mul_f64(self.processing_per_audio_second.max(0.0));
            Some(expected.saturating_sub(at)).filter(|r| !r.is_zero())
        });
        match predicted {
            // Nothing known yet: back off from the initial interval.
            None if tracker.rate_per_second().is_none() => {
                let grown = self
                    .initial_interval
                    .mul_f64(2f64.powi(tracker.polls().saturating_sub(1).min(30) as i32));
                clamp(grown, min, max).mul_f64(jitter)
            }
            // The prediction has passed without completion: approach gently, doubling.
            None | Some(Duration::ZERO) => clamp(
                min.mul_f64(2f64.powi(tracker.overdue_polls.min(30) as i32)),
                min,
                max,
            )
            .mul_f64(jitter),
            // Far from the end: go part of the way — half while the prediction is new (sparse
            // early, denser as it nears), 90 % once a poll confirmed it, 97 % once two did.
            Some(remaining) => {
                let (share, jittered) = match tracker.steady {
                    0 => (0.5, true),
                    1 => (0.9, false),
                    _ => (0.97, false),
                };
                let step = remaining.mul_f64(share);
                if step > min && remaining.saturating_sub(step) > min {
                    let step = clamp(step, min, max);
                    if jittered { step.mul_f64(jitter) } else { step }
                } else {
                    // Close: aim just past the predicted end (never earlier, so no jitter below it).
                    clamp(remaining + self.margin, min, max)
                }
            }
        }
    }
}

fn clamp(value: Duration, min: Duration, max: Duration) -> Duration {
    value.max(min).min(max.max(min))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn linear_progress_predicts_the_end() {
        let mut tracker = ProgressTracker::default();
        tracker.observe(secs(0.0), Some(0), 0.5);
        assert_eq!(tracker.predicted_remaining(secs(0.0)), None);
        tracker.observe(secs(10.0), Some(10), 0.5);
        tracker.observe(secs(20.0), Some(20), 0.5);
        let remaining = tracker.predicted_remaining(secs(20.0)).unwrap();
        // 20 % reported means 20–21 % done: 79.5 s left on average.
        assert!((remaining.as_secs_f64() - 79.5).abs() < 1e-6, "{remaining:?}");
        assert_eq!(tracker.predicted_remaining(secs(200.0)), Some(Duration::ZERO));
    }

    #[test]
    fn adaptive_is_sparse_early_dense_late_and_lands_past_the_end() {
        let policy = PollPolicy::default();
        let PollPolicy::Adaptive(settings) = &policy else {
            unreachable!()
        };
        let mut tracker = ProgressTracker::default();
        // A 100 s job reporting progress linearly.
        let mut at = 0.0;
        let mut intervals = Vec::new();
        while at < 100.0 {
            tracker.observe(secs(at), Some(at as u32), 0.5);
            let wait = policy.next_interval(&tracker, secs(at), None, 0.5).as_secs_f64();
            intervals.push(wait);
            at += wait;
        }
        assert!(intervals.len() < 15, "{intervals:?}");
        assert!(
            at - 100.0 <= settings.margin.as_secs_f64() + 1.0,
            "landed {at} for an end at 100"
        );
        let later = &intervals[2..intervals.len() - 1];
        assert!(later.windows(2).all(|w| w[1] <= w[0] * 1.01), "{intervals:?}");
    }

    #[test]
    fn adaptive_uses_the_audio_duration_before_progress() {
        let policy = PollPolicy::default();
        let long = policy.first_delay(Some(secs(3600.0)), 0.99);
        let short = policy.first_delay(Some(secs(10.0)), 0.99);
        assert!(long > short, "{long:?} vs {short:?}");
    }

    proptest! {
        #[test]
        fn every_interval_respects_the_bounds(
            observations in proptest::collection::vec((0.0f64..5.0, 0u32..=100), 1..20),
            audio in proptest::option::of(0.0f64..20_000.0),
            unit in 0.0f64..1.0,
        ) {
            let policy = PollPolicy::default();
            let PollPolicy::Adaptive(settings) = &policy else { unreachable!() };
            let mut tracker = ProgressTracker::default();
            let mut at = 0.0;
            let mut percent = 0;
            for (step, p) in observations {
                at += step;
                percent = percent.max(p);
                tracker.observe(secs(at), Some(percent), settings.smoothing);
                let wait = policy.next_interval(&tracker, secs(at), audio.map(secs), unit);
                prop_assert!(wait >= settings.min_interval.mul_f64(0.9));
                prop_assert!(wait <= settings.max_interval.mul_f64(1.1));
            }
            let first = policy.first_delay(audio.map(secs), unit);
            prop_assert!(first <= settings.max_interval);
        }

        #[test]
        fn exponential_grows_to_its_cap(polls in 1u32..100, unit in 0.0f64..1.0) {
            let policy = PollPolicy::Exponential { initial: secs(1.0), factor: 2.0, max: secs(60.0) };
            let mut tracker = ProgressTracker::default();
            for i in 0..polls {
                tracker.observe(secs(f64::from(i)), None, 0.5);
            }
            let wait = policy.next_interval(&tracker, secs(0.0), None, unit);
            let expected = (2f64.powi(polls as i32 - 1)).min(60.0);
            prop_assert!((wait.as_secs_f64() - expected).abs() <= expected * 0.1 + 1e-9);
        }

        #[test]
        fn fixed_first_polls_spread_over_one_interval(unit in 0.0f64..1.0) {
            let first = PollPolicy::Fixed(secs(3.0)).first_delay(None, unit);
            prop_assert!(first <= secs(3.0));
        }
    }
}
