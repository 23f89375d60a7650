//! Repeated refusals by one account: more than `limit` refused patient requests inside a sliding
//! window throttle that account's patient requests for a while, and the moment it trips raises an
//! alarm for the administrator. Someone walking through patient ids, or flooding a patient's
//! access log with refusals, is stopped after a few dozen requests; a professional who mistypes
//! an address now and then never meets it.
//!
//! Kept in the database (table `refusal_throttle`, read and written by `Access`), so that every
//! instance over one database counts an account's refusals together: this module only decides,
//! over the state the database hands it.

use std::time::Duration;

/// The throttle's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// More refusals than this inside `window` trip the throttle.
    pub limit: usize,
    pub window: Duration,
    /// How long a tripped account's patient requests are refused.
    pub block_for: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy { limit: 20, window: Duration::from_secs(10 * 60), block_for: Duration::from_secs(15 * 60) }
    }
}

/// One account's refusals (epoch milliseconds, the window's only) and its block, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefusalState {
    pub refusals: Vec<i64>,
    /// Epoch milliseconds; 0: never blocked.
    pub blocked_until: i64,
}

/// What one more refusal did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalOutcome {
    /// Under the limit.
    Counted,
    /// This refusal tripped the throttle: raise the alarm (once per block). The refusals in the
    /// window, this one included.
    Tripped { refusals: usize },
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl ThrottlePolicy {
    /// Whether this account's patient requests are refused now.
    pub fn blocked(&self, state: &RefusalState, now_ms: i64) -> bool {
        now_ms < state.blocked_until
    }

    /// The account's state after one more refusal at `now_ms`, and what it did.
    pub fn record_refusal(&self, mut state: RefusalState, now_ms: i64) -> (RefusalState, RefusalOutcome) {
        let window = millis(self.window);
        state.refusals.retain(|t| now_ms - *t <= window);
        state.refusals.push(now_ms);
        let already_blocked = self.blocked(&state, now_ms);
        if state.refusals.len() > self.limit && !already_blocked {
            state.blocked_until = now_ms.saturating_add(millis(self.block_for));
            let refusals = state.refusals.len();
            // A fresh count for after the block: the next alarm needs as many refusals again.
            state.refusals.clear();
            return (state, RefusalOutcome::Tripped { refusals });
        }
        (state, RefusalOutcome::Counted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ThrottlePolicy {
        ThrottlePolicy { limit: 3, window: Duration::from_secs(60), block_for: Duration::from_secs(120) }
    }

    #[test]
    fn more_refusals_than_the_limit_trip_the_throttle_once_then_it_lifts() {
        let policy = policy();
        let t0 = 1_000_000;
        let mut a = RefusalState::default();
        for _ in 0..3 {
            let (next, outcome) = policy.record_refusal(a, t0);
            assert_eq!(outcome, RefusalOutcome::Counted);
            a = next;
        }
        assert!(!policy.blocked(&a, t0));
        let (a, outcome) = policy.record_refusal(a, t0);
        assert_eq!(outcome, RefusalOutcome::Tripped { refusals: 4 });
        assert!(policy.blocked(&a, t0) && !policy.blocked(&RefusalState::default(), t0), "that account only");
        let (a, outcome) = policy.record_refusal(a, t0);
        assert_eq!(outcome, RefusalOutcome::Counted, "one alarm per block");
        assert!(!policy.blocked(&a, t0 + 121_000), "lifted after a while");
    }

    #[test]
    fn refusals_spread_over_time_never_trip_it() {
        let policy = policy();
        let mut a = RefusalState::default();
        for n in 0..20 {
            let (next, outcome) = policy.record_refusal(a, 1_000_000 + 30_000 * n);
            assert_eq!(outcome, RefusalOutcome::Counted);
            a = next;
        }
        assert!(a.refusals.len() <= 3, "only the window's refusals are kept");
    }
}
