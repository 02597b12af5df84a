//! Request budgets: how fast one endpoint may be called, shared by everything that calls it.

use daglo_core::internal::lock;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Paces requests to one endpoint (the service allows 20 a second per endpoint). The client
/// keeps one per endpoint and the poller shares the status one; behind a trait so a budget
/// shared by several processes (one Daglo account, many instances) can replace the in-process
/// [`TokenBucket`].
pub trait RateBudget: Send + Sync + fmt::Debug {
    /// Takes one request's worth of budget at `now`, or says how long until one may be available.
    fn try_acquire(&self, now: Instant) -> Result<(), Duration>;
    /// The service answered `429`: slow down.
    fn on_rate_limited(&self, now: Instant);
    /// A request went through: the budget may recover.
    fn on_success(&self, now: Instant);
    /// The rate currently allowed, in requests per second.
    fn current_rate(&self) -> f64;
    /// Whose budget it is, for the `daglo_budget_rate` gauge: `local` (this process's; the
    /// default) or `shared` (one every process draws from, as on Redis).
    fn scope(&self) -> &'static str {
        "local"
    }
}

/// A token bucket with multiplicative decrease on `429` and additive recovery.
///
/// Defaults keep well under Daglo's 20 requests/s per endpoint: 80 % of it (16/s) with a burst
/// of 2, so no one-second window ever holds more than 18 requests. A `429` halves the rate (not
/// below `floor`), at most once per second so one burst of refusals counts once, then the rate
/// climbs back by 10 % of the configured rate per second without refusals.
pub struct TokenBucket {
    configured: f64,
    burst: f64,
    floor: f64,
    state: Mutex<BucketState>,
}

#[derive(Debug)]
struct BucketState {
    rate: f64,
    tokens: f64,
    updated: Option<Instant>,
    last_cut: Option<Instant>,
}

impl TokenBucket {
    /// A bucket allowing `per_second` requests (at least 0.01) with bursts of `burst` (at least 1).
    pub fn new(per_second: f64, burst: u32) -> Self {
        let configured = if per_second.is_finite() {
            per_second.max(0.01)
        } else {
            1.0
        };
        let burst = f64::from(burst.max(1));
        Self {
            configured,
            burst,
            floor: (configured / 16.0).max(0.01),
            state: Mutex::new(BucketState {
                rate: configured,
                tokens: burst,
                updated: None,
                last_cut: None,
            }),
        }
    }

    /// 80 % of `limit` requests per second with a burst of 2: the default for a Daglo endpoint.
    pub fn under_limit(limit: u32) -> Self {
        Self::new(f64::from(limit) * 0.8, 2)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BucketState> {
        lock(&self.state)
    }

    /// Refills tokens and recovers the rate up to `now`.
    fn advance(&self, state: &mut BucketState, now: Instant) {
        let Some(updated) = state.updated else {
            state.updated = Some(now);
            return;
        };
        let elapsed = now.saturating_duration_since(updated).as_secs_f64();
        if elapsed <= 0.0 {
            return;
        }
        // Recover only once a second has passed since the last cut.
        if state
            .last_cut
            .is_none_or(|cut| now.saturating_duration_since(cut) >= Duration::from_secs(1))
        {
            state.rate = (self.configured * 0.1)
                .mul_add(elapsed, state.rate)
                .min(self.configured);
        }
        state.tokens = elapsed.mul_add(state.rate, state.tokens).min(self.burst);
        state.updated = Some(now);
    }
}

impl Default for TokenBucket {
    fn default() -> Self {
        Self::under_limit(20)
    }
}

impl RateBudget for TokenBucket {
    fn try_acquire(&self, now: Instant) -> Result<(), Duration> {
        let mut state = self.lock();
        self.advance(&mut state, now);
        if state.tokens >= 1.0 {
            state.tokens -= 1.0;
            return Ok(());
        }
        Err(Duration::from_secs_f64((1.0 - state.tokens) / state.rate))
    }

    fn on_rate_limited(&self, now: Instant) {
        let mut state = self.lock();
        self.advance(&mut state, now);
        if state
            .last_cut
            .is_some_and(|cut| now.saturating_duration_since(cut) < Duration::from_secs(1))
        {
            return;
        }
        state.rate = (state.rate / 2.0).max(self.floor);
        state.tokens = 0.0;
        state.last_cut = Some(now);
    }

    fn on_success(&self, now: Instant) {
        let mut state = self.lock();
        self.advance(&mut state, now);
    }

    fn current_rate(&self) -> f64 {
        self.lock().rate
    }
}

impl fmt::Debug for TokenBucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenBucket")
            .field("configured", &self.configured)
            .field("burst", &self.burst)
            .field("current", &self.current_rate())
            .finish()
    }
}

/// Waits until `budget` lets one request through.
pub(crate) async fn pace(budget: &dyn RateBudget, endpoint: &'static str) {
    let started = Instant::now();
    let mut waited = false;
    while let Err(wait) = budget.try_acquire(Instant::now()) {
        waited = true;
        tokio::time::sleep(wait).await;
    }
    let seconds = if waited {
        started.elapsed().as_secs_f64()
    } else {
        0.0
    };
    daglo_core::telemetry::budget_waited(endpoint, seconds);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_more_than_rate_plus_burst_in_any_second() {
        let bucket = TokenBucket::under_limit(20);
        let start = Instant::now();
        let mut granted = Vec::new();
        let mut now = start;
        while now < start + Duration::from_secs(10) {
            match bucket.try_acquire(now) {
                Ok(()) => granted.push(now),
                Err(wait) => now += wait,
            }
        }
        for (i, t) in granted.iter().enumerate() {
            let in_window = granted[i..]
                .iter()
                .take_while(|u| **u < *t + Duration::from_secs(1))
                .count();
            assert!(in_window <= 18, "{in_window} requests in the second from {t:?}");
        }
        assert!(granted.len() >= 160, "{} granted in 10 s", granted.len());
    }

    #[test]
    fn a_429_halves_the_rate_once_per_second_then_it_recovers() {
        let bucket = TokenBucket::new(16.0, 2);
        let t0 = Instant::now();
        bucket.on_success(t0);
        bucket.on_rate_limited(t0);
        assert_eq!(bucket.current_rate(), 8.0);
        bucket.on_rate_limited(t0 + Duration::from_millis(500));
        assert_eq!(bucket.current_rate(), 8.0, "a burst of 429s counts once");
        bucket.on_rate_limited(t0 + Duration::from_millis(1500));
        assert!(bucket.current_rate() < 8.0, "{}", bucket.current_rate());
        bucket.on_success(t0 + Duration::from_secs(10));
        assert!(
            (bucket.current_rate() - 16.0).abs() < 1e-9,
            "{}",
            bucket.current_rate()
        );
        for _ in 0..20 {
            bucket.on_rate_limited(t0 + Duration::from_secs(1000));
        }
        assert!(bucket.current_rate() >= 1.0);
    }
}
