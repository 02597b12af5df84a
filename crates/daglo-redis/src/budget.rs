//! [`RedisBudget`]: one endpoint's request budget, shared by every process on an account.

use daglo_core::internal::lock;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use daglo_client::{RateBudget, TokenBucket};
use redis::Script;
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tracing::{info, warn};

use crate::store::RedisStore;

/// How far ahead a slot may be reserved: a process holds at most one reservation, so a slot it
/// took and did not use costs the others at most this much.
const MAX_AHEAD: Duration = Duration::from_millis(500);
/// A reserved slot not used within this long after it opened is given up.
const STALE_AFTER: Duration = Duration::from_millis(100);
/// How long a caller waits for a reservation's answer before asking again.
const ASK_AGAIN: Duration = Duration::from_millis(1);
/// How often a budget that fell back probes Redis again.
const PROBE_EVERY: Duration = Duration::from_millis(500);

/// The settings of a [`RedisBudget`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BudgetOptions {
    /// Requests per second for every process together (default 16: 80 % of Daglo's 20 per
    /// endpoint).
    pub per_second: f64,
    /// Requests allowed back to back (default 2).
    pub burst: u32,
    /// Requests per second **this process** allows itself while Redis is unreachable (default
    /// 2). The shared budget cannot be consulted then, so each process falls back to this share:
    /// work goes on slowly rather than stopping, and up to eight processes stay within the
    /// service's limit. A `429` still halves it.
    pub fallback_per_second: f64,
}

impl Default for BudgetOptions {
    fn default() -> Self {
        Self {
            per_second: 16.0,
            burst: 2,
            fallback_per_second: 2.0,
        }
    }
}

/// One endpoint's budget (submit, status or SRT), shared through Redis by every process that
/// names the same account: GCRA in a script on Redis's clock, so the processes' own clocks do
/// not matter. A `429` any process sees halves the rate for all of them (once a second at most);
/// it recovers by 10 % of the configured rate per second.
///
/// It implements the synchronous [`RateBudget`] by **reserving ahead**: when a caller finds no
/// slot, a background task reserves the next shared slot (one round trip) and the caller is told
/// to come back when it opens. A process holds at most one reservation, at most half a second
/// ahead.
///
/// **When Redis is unreachable** it falls back to a local token bucket at
/// [`BudgetOptions::fallback_per_second`], logs it once, probes Redis every half second, and
/// returns to the shared budget as soon as Redis answers. Real time only: the `now` its callers
/// pass must be `Instant::now()`.
pub struct RedisBudget {
    shared: Arc<Shared>,
    task: AbortHandle,
}

struct Shared {
    endpoint: String,
    options: BudgetOptions,
    local: Mutex<Local>,
    wake: Notify,
    fallback: TokenBucket,
}

#[derive(Debug)]
struct Local {
    /// The slot this process reserved, and when it opens.
    reserved: Option<Instant>,
    /// No slot within [`MAX_AHEAD`]: when to ask again.
    retry_at: Option<Instant>,
    /// The shared rate, as Redis last said.
    rate: f64,
    /// Redis is unreachable: the fallback bucket is in use.
    fallen_back: bool,
    /// A `429` to report to the shared budget.
    cut_pending: bool,
}

impl Drop for RedisBudget {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl fmt::Debug for RedisBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBudget")
            .field("endpoint", &self.shared.endpoint)
            .field("options", &self.shared.options)
            .field("local", &*self.shared.lock())
            .finish()
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Local> {
        lock(&self.local)
    }
}

impl RedisBudget {
    /// The budget named `endpoint` (for example `status`) of `account` on `store`. Processes
    /// that share one Daglo account use the same account name and namespace; the name is a
    /// label, never the API token.
    ///
    /// # Panics
    /// Outside a Tokio runtime (it starts the reservation task).
    pub fn new(store: &RedisStore, account: &str, endpoint: &str, options: BudgetOptions) -> Self {
        let shared = Arc::new(Shared {
            endpoint: store.key(&["budget", account, endpoint]),
            local: Mutex::new(Local {
                reserved: None,
                retry_at: None,
                rate: options.per_second,
                fallen_back: false,
                cut_pending: false,
            }),
            wake: Notify::new(),
            fallback: TokenBucket::new(options.fallback_per_second, 1),
            options,
        });
        let task = tokio::spawn(reserve(store.clone(), Arc::downgrade(&shared))).abort_handle();
        Self { shared, task }
    }

    /// Whether Redis is unreachable and the local fallback is in use.
    pub fn fallen_back(&self) -> bool {
        self.shared.lock().fallen_back
    }
}

impl RateBudget for RedisBudget {
    fn try_acquire(&self, now: Instant) -> Result<(), Duration> {
        let mut local = self.shared.lock();
        if local.fallen_back {
            drop(local);
            self.shared.wake.notify_one();
            return self.shared.fallback.try_acquire(now);
        }
        if let Some(at) = local.reserved {
            if at > now {
                return Err(at - now);
            }
            local.reserved = None;
            if now.saturating_duration_since(at) <= STALE_AFTER {
                return Ok(());
            }
        }
        let wait = local
            .retry_at
            .map_or(ASK_AGAIN, |at| at.saturating_duration_since(now).max(ASK_AGAIN));
        drop(local);
        self.shared.wake.notify_one();
        Err(wait)
    }

    fn on_rate_limited(&self, now: Instant) {
        self.shared.lock().cut_pending = true;
        self.shared.fallback.on_rate_limited(now);
        self.shared.wake.notify_one();
    }

    fn on_success(&self, now: Instant) {
        self.shared.fallback.on_success(now);
    }

    fn current_rate(&self) -> f64 {
        let local = self.shared.lock();
        if local.fallen_back {
            self.shared.fallback.current_rate()
        } else {
            local.rate
        }
    }

    fn scope(&self) -> &'static str {
        if self.shared.lock().fallen_back {
            "local"
        } else {
            "shared"
        }
    }
}

/// The reservation task: on demand, reserves the next shared slot, and reports `429`s.
async fn reserve(store: RedisStore, shared: std::sync::Weak<Shared>) {
    let reserve = Script::new(include_str!("scripts/gcra_reserve.lua"));
    let cut = Script::new(include_str!("scripts/gcra_cut.lua"));
    loop {
        // Wait for demand. The budget owns this task (its drop aborts it), so holding a strong
        // reference while waiting cannot keep it alive.
        let Some(budget) = shared.upgrade() else { return };
        budget.wake.notified().await;
        let options = budget.options.clone();
        let cut_pending = std::mem::take(&mut budget.lock().cut_pending);
        let mut conn = store.conn();
        if cut_pending {
            let floor = (options.per_second / 16.0).max(0.01);
            let started = Instant::now();
            let answer: Result<String, _> = cut
                .key(&budget.endpoint)
                .arg(options.per_second)
                .arg(floor)
                .invoke_async(&mut conn)
                .await;
            daglo_core::telemetry::redis_operation("budget", answer.is_ok(), started.elapsed().as_secs_f64());
            if let Ok(rate) = answer {
                let rate = rate.parse().unwrap_or(options.per_second);
                budget.lock().rate = rate;
                warn!(endpoint = %budget.endpoint, rate, "429 from the service; the shared budget is cut for every process");
            }
        }
        {
            let local = budget.lock();
            let waiting = local.retry_at.is_some_and(|at| at > Instant::now());
            if local.reserved.is_some() && !local.fallen_back || waiting {
                continue;
            }
        }
        let asked = Instant::now();
        let answer: Result<(u8, u64, String), _> = reserve
            .key(&budget.endpoint)
            .arg(options.per_second)
            .arg(options.burst.max(1))
            .arg(u64::try_from(MAX_AHEAD.as_micros()).unwrap_or(u64::MAX))
            .invoke_async(&mut conn)
            .await;
        daglo_core::telemetry::redis_operation("budget", answer.is_ok(), asked.elapsed().as_secs_f64());
        let probe_later = {
            let mut local = budget.lock();
            let mut probe_later = false;
            match answer {
                Ok((reserved, delay_us, rate)) => {
                    if local.fallen_back {
                        info!(endpoint = %budget.endpoint, "Redis answers again; back on the shared budget");
                    }
                    local.fallen_back = false;
                    local.rate = rate.parse().unwrap_or(local.rate);
                    let opens = asked + Duration::from_micros(delay_us);
                    if reserved == 1 {
                        local.reserved = Some(opens);
                        local.retry_at = None;
                    } else {
                        local.retry_at = Some(opens.checked_sub(MAX_AHEAD).unwrap_or(opens));
                    }
                }
                Err(error) => {
                    if !local.fallen_back {
                        warn!(endpoint = %budget.endpoint, %error, fallback_per_second = options.fallback_per_second,
                        "Redis unreachable; this process falls back to its own small budget");
                    }
                    local.fallen_back = true;
                    local.reserved = None;
                    local.retry_at = None;
                    probe_later = true;
                }
            }
            probe_later
        };
        if probe_later {
            tokio::time::sleep(PROBE_EVERY).await;
        }
    }
}
