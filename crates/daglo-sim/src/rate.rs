//! The per-endpoint rate limit: at most N accepted requests in any one-second window.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

const WINDOW: Duration = Duration::from_secs(1);

/// A sliding one-second window. It is stricter than a token bucket of the same rate (no burst
/// above N ever passes), so a client that stays under it stays under the real service's limit.
#[derive(Debug)]
pub(crate) struct SlidingWindow {
    limit: u32,
    accepted: VecDeque<Instant>,
}

impl SlidingWindow {
    pub(crate) fn new(limit: u32) -> Self {
        Self {
            limit,
            accepted: VecDeque::new(),
        }
    }

    /// Whether a request at `now` is within the limit; an accepted one is counted.
    pub(crate) fn try_acquire(&mut self, now: Instant) -> bool {
        while self
            .accepted
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW)
        {
            self.accepted.pop_front();
        }
        if self.accepted.len() >= self.limit as usize {
            return false;
        }
        self.accepted.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_the_limit_per_window_then_refuses_until_it_slides() {
        let start = Instant::now();
        let mut window = SlidingWindow::new(3);
        assert!((0..3).all(|_| window.try_acquire(start)));
        assert!(!window.try_acquire(start + Duration::from_millis(999)));
        assert!(window.try_acquire(start + WINDOW));
        assert_eq!(window.accepted.len(), 1);
    }
}
