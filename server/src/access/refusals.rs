//! Repeated refusals by one account: more than `limit` refused patient requests inside a sliding
//! window throttle that account's patient requests for a while, and the moment it trips raises an
//! alarm for the administrator. Someone walking through patient ids, or flooding a patient's
//! access log with refusals, is stopped after a few dozen requests; a professional who mistypes
//! an address now and then never meets it.
//!
//! Kept in memory (one server process; a restart forgets), as the sign-in limiter is.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

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

#[derive(Default)]
struct AccountState {
    refusals: VecDeque<Instant>,
    blocked_until: Option<Instant>,
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

pub struct RefusalThrottle {
    policy: ThrottlePolicy,
    accounts: Mutex<HashMap<Uuid, AccountState>>,
}

impl RefusalThrottle {
    pub fn new(policy: ThrottlePolicy) -> Self {
        RefusalThrottle { policy, accounts: Mutex::new(HashMap::new()) }
    }

    pub fn policy(&self) -> ThrottlePolicy {
        self.policy
    }

    /// Whether this account's patient requests are refused now.
    pub fn blocked(&self, account: Uuid, now: Instant) -> bool {
        let accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        accounts.get(&account).and_then(|s| s.blocked_until).is_some_and(|until| now < until)
    }

    pub fn record_refusal(&self, account: Uuid, now: Instant) -> RefusalOutcome {
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded memory: accounts are few, but never let the map grow without end.
        if accounts.len() > 100_000 {
            accounts.clear();
        }
        let state = accounts.entry(account).or_default();
        while state.refusals.front().is_some_and(|t| now.duration_since(*t) > self.policy.window) {
            state.refusals.pop_front();
        }
        state.refusals.push_back(now);
        let already_blocked = state.blocked_until.is_some_and(|until| now < until);
        if state.refusals.len() > self.policy.limit && !already_blocked {
            state.blocked_until = Some(now + self.policy.block_for);
            let refusals = state.refusals.len();
            // A fresh count for after the block: the next alarm needs as many refusals again.
            state.refusals.clear();
            return RefusalOutcome::Tripped { refusals };
        }
        RefusalOutcome::Counted
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
        let throttle = RefusalThrottle::new(policy());
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(throttle.record_refusal(a, t0), RefusalOutcome::Counted);
        }
        assert!(!throttle.blocked(a, t0));
        assert_eq!(throttle.record_refusal(a, t0), RefusalOutcome::Tripped { refusals: 4 });
        assert!(throttle.blocked(a, t0) && !throttle.blocked(b, t0), "that account only");
        assert_eq!(throttle.record_refusal(a, t0), RefusalOutcome::Counted, "one alarm per block");
        assert!(!throttle.blocked(a, t0 + Duration::from_secs(121)), "lifted after a while");
    }

    #[test]
    fn refusals_spread_over_time_never_trip_it() {
        let throttle = RefusalThrottle::new(policy());
        let a = Uuid::new_v4();
        let t0 = Instant::now();
        for n in 0..20 {
            assert_eq!(throttle.record_refusal(a, t0 + Duration::from_secs(30 * n)), RefusalOutcome::Counted);
        }
    }
}
