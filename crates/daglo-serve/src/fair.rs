//! Weighted fair sharing of Daglo's submit budget among tenants: a [`RateBudget`] in front of
//! the real one (in-process, or shared on Redis) that gives each token to the tenant with work
//! waiting whose virtual time is lowest, then advances that tenant's time by `1 / share`
//! (start-time fair queuing). A tenant alone uses all of the budget; a tenant that arrives
//! behind another's queue of hundreds is served at its share from its first request, and
//! cannot bank credit while idle (its time starts at the lowest of those waiting).
//!
//! Which tenant a request is for comes from the task it runs in ([`for_tenant`]): the service
//! runs each submit on a task of its own, scoped to the job's tenant. Requests outside any
//! tenant (none for submits) draw from the budget directly.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use daglo::client::RateBudget;

tokio::task_local! {
    static TENANT: Arc<str>;
}

/// Runs `work` as `tenant`'s: the budget requests it makes are that tenant's.
pub(crate) async fn for_tenant<F: std::future::Future>(tenant: Arc<str>, work: F) -> F::Output {
    TENANT.scope(tenant, work).await
}

/// How long a tenant counts as waiting after its last ask, beyond the wait it was told: its
/// waiters ask again when that wait ends, so one that asks no more has nothing waiting.
const LINGER: Duration = Duration::from_millis(30);
/// How long a tenant that is not next waits before asking again.
const NOT_YOUR_TURN: Duration = Duration::from_millis(20);

/// The fair front of a budget.
pub(crate) struct FairBudget {
    inner: Arc<dyn RateBudget>,
    weights: HashMap<String, f64>,
    flows: Mutex<HashMap<Arc<str>, Flow>>,
}

#[derive(Debug, Clone, Copy)]
struct Flow {
    /// Its virtual time: what it has been served, divided by its weight.
    time: f64,
    /// Waiting until then (it asked, and was told to wait until about then).
    until: Instant,
}

impl std::fmt::Debug for FairBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FairBudget")
            .field("inner", &self.inner)
            .field("tenants", &self.weights.len())
            .finish_non_exhaustive()
    }
}

impl FairBudget {
    /// `inner`, shared by tenants in proportion to `weights` (a tenant not listed weighs 1).
    pub(crate) fn new(inner: Arc<dyn RateBudget>, weights: HashMap<String, f64>) -> Self {
        Self {
            inner,
            weights,
            flows: Mutex::default(),
        }
    }

    fn weight(&self, tenant: &str) -> f64 {
        self.weights.get(tenant).copied().unwrap_or(1.0).max(0.001)
    }
}

impl RateBudget for FairBudget {
    fn try_acquire(&self, now: Instant) -> Result<(), Duration> {
        let Ok(tenant) = TENANT.try_with(Arc::clone) else {
            return self.inner.try_acquire(now);
        };
        let mut flows = daglo::internal::lock(&self.flows);
        // Tenants that stopped asking wait no more.
        flows.retain(|_, flow| flow.until >= now);
        let lowest = flows.values().map(|f| f.time).fold(f64::INFINITY, f64::min);
        let flow = flows.entry(tenant.clone()).or_insert(Flow {
            time: if lowest.is_finite() { lowest } else { 0.0 },
            until: now,
        });
        flow.until = flow.until.max(now + LINGER);
        // The next turn is the lowest time's (ties: the name, so every process agrees).
        let next = flows
            .iter()
            .min_by(|a, b| a.1.time.total_cmp(&b.1.time).then_with(|| a.0.cmp(b.0)))
            .map(|(name, _)| name.clone());
        if next.as_deref() != Some(&*tenant) {
            return Err(NOT_YOUR_TURN);
        }
        let weight = self.weight(&tenant);
        match self.inner.try_acquire(now) {
            Ok(()) => {
                if let Some(flow) = flows.get_mut(&*tenant) {
                    flow.time += 1.0 / weight;
                }
                Ok(())
            }
            Err(wait) => {
                if let Some(flow) = flows.get_mut(&*tenant) {
                    flow.until = flow.until.max(now + wait + LINGER);
                }
                Err(wait)
            }
        }
    }

    fn on_rate_limited(&self, now: Instant) {
        self.inner.on_rate_limited(now);
    }

    fn on_success(&self, now: Instant) {
        self.inner.on_success(now);
    }

    fn current_rate(&self) -> f64 {
        self.inner.current_rate()
    }

    fn scope(&self) -> &'static str {
        self.inner.scope()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Who gets each of `n` tokens when `a` and `b` both wait, at virtual instants.
    fn served(weights: &[(&str, f64)], n: usize) -> Vec<String> {
        let budget = FairBudget::new(
            Arc::new(daglo::client::TokenBucket::new(10.0, 1)),
            weights.iter().map(|(n, w)| ((*n).to_owned(), *w)).collect(),
        );
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mut now = Instant::now();
        let mut order = Vec::new();
        while order.len() < n {
            let mut any = false;
            for (name, _) in weights {
                let granted = rt.block_on(for_tenant(Arc::from(*name), async {
                    budget.try_acquire(now).is_ok()
                }));
                if granted {
                    order.push((*name).to_owned());
                    any = true;
                }
            }
            if !any {
                now += Duration::from_millis(10);
            }
        }
        order
    }

    #[test]
    fn equal_shares_alternate() {
        let order = served(&[("a", 1.0), ("b", 1.0)], 20);
        let a = order.iter().filter(|n| *n == "a").count();
        assert!((9..=11).contains(&a), "{order:?}");
    }

    #[test]
    fn a_share_of_three_gets_three_quarters() {
        let order = served(&[("a", 3.0), ("b", 1.0)], 40);
        let a = order.iter().filter(|n| *n == "a").count();
        assert!((28..=32).contains(&a), "{order:?}");
    }

    #[test]
    fn alone_a_tenant_uses_all_of_it() {
        let order = served(&[("a", 1.0)], 10);
        assert_eq!(order.len(), 10);
    }

    #[test]
    fn outside_a_tenant_the_budget_is_drawn_directly() {
        let budget = FairBudget::new(Arc::new(daglo::client::TokenBucket::new(1.0, 1)), HashMap::new());
        let now = Instant::now();
        assert!(budget.try_acquire(now).is_ok());
        assert!(budget.try_acquire(now).is_err());
    }
}
