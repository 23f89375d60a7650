//! Sign-in attempts limited per account and per address: failures inside a sliding window.
//! Kept in memory: one server process serves the embedded deployment; a restart forgets.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct SignInLimiter {
    window: Duration,
    per_account: usize,
    per_address: usize,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl SignInLimiter {
    pub fn new(window: Duration, per_account: usize, per_address: usize) -> Self {
        SignInLimiter { window, per_account, per_address, failures: Mutex::new(HashMap::new()) }
    }

    fn recent(&self, map: &mut HashMap<String, VecDeque<Instant>>, key: &str, now: Instant) -> usize {
        let Some(times) = map.get_mut(key) else { return 0 };
        while times.front().is_some_and(|t| now.duration_since(*t) > self.window) {
            times.pop_front();
        }
        times.len()
    }

    /// Whether another attempt is allowed now for this login from this address.
    pub fn allowed(&self, login: &str, address: &str, now: Instant) -> bool {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        self.recent(&mut map, &format!("login:{login}"), now) < self.per_account
            && self.recent(&mut map, &format!("addr:{address}"), now) < self.per_address
    }

    pub fn record_failure(&self, login: &str, address: &str, now: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded memory: forget everything when an attacker sprays many keys.
        if map.len() > 100_000 {
            map.clear();
        }
        map.entry(format!("login:{login}")).or_default().push_back(now);
        map.entry(format!("addr:{address}")).or_default().push_back(now);
    }

    /// A successful sign-in clears the account's failures (not the address's).
    pub fn record_success(&self, login: &str) {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).remove(&format!("login:{login}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_locked_after_its_failures_then_freed_by_time() {
        let limiter = SignInLimiter::new(Duration::from_secs(60), 3, 100);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.allowed("gp", "10.0.0.1", t0));
            limiter.record_failure("gp", "10.0.0.1", t0);
        }
        assert!(!limiter.allowed("gp", "10.0.0.2", t0), "the account is limited whatever the address");
        assert!(limiter.allowed("other", "10.0.0.1", t0), "another account from the same address is not (yet)");
        assert!(limiter.allowed("gp", "10.0.0.1", t0 + Duration::from_secs(61)));
    }

    #[test]
    fn an_address_spraying_accounts_is_limited() {
        let limiter = SignInLimiter::new(Duration::from_secs(60), 3, 5);
        let t0 = Instant::now();
        for n in 0..5 {
            limiter.record_failure(&format!("user{n}"), "10.0.0.9", t0);
        }
        assert!(!limiter.allowed("user99", "10.0.0.9", t0));
        assert!(limiter.allowed("user99", "10.0.0.8", t0));
    }
}
