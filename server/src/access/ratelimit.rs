//! Sign-in throttling: an exponential delay per account and per client address, kept in the
//! database (`sign_in_throttle`), so several server processes over one database throttle alike
//! and a restart forgets nothing.
//!
//! Why a delay and not a lock-out: a lock-out of N minutes after 5 failures lets anyone who
//! knows a login keep its owner out for ever. A delay that doubles with each failure (capped at
//! a few minutes) slows guessing just as well, while the real user waits at most the cap; an
//! attempt refused during a delay neither counts nor extends it.
//!
//! Why the attempt is reserved before the password is checked: the failure count is raised
//! (and the delay set) in the same transaction that decides whether the attempt may go on, so
//! 100 parallel guesses cannot all pass the check before the first failure is recorded. A
//! success gives the reservation back (the account's count is cleared, the address's lowered).
//!
//! The decisions are plain functions over [`Throttle`] values ([`ThrottlePolicy::reserve`]);
//! [`reserve`], [`succeeded`] and [`prune`] apply them to the table.

use crate::store::db::Db;
use sha2::{Digest, Sha256};

/// The count of failures behind one key and when the last one was reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Throttle {
    pub failures: u32,
    /// Epoch milliseconds.
    pub last_at: i64,
}

/// How fast the delay grows for one kind of key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures allowed without any delay (typos).
    pub free_failures: u32,
    /// The first delay, in milliseconds; each further failure doubles it.
    pub base_ms: i64,
    /// The longest delay, in milliseconds.
    pub cap_ms: i64,
    /// A key with no failure for this long starts again from zero.
    pub forget_after_ms: i64,
}

impl ThrottlePolicy {
    /// Per account: five typos free, then 1 s, 2 s, 4 s… up to 5 minutes.
    pub const ACCOUNT: ThrottlePolicy =
        ThrottlePolicy { free_failures: 5, base_ms: 1_000, cap_ms: 5 * 60_000, forget_after_ms: 60 * 60_000 };
    /// Per client address: several users may share one (a clinic behind one router), so more
    /// failures are free before the same doubling delay.
    pub const ADDRESS: ThrottlePolicy =
        ThrottlePolicy { free_failures: 20, base_ms: 1_000, cap_ms: 5 * 60_000, forget_after_ms: 60 * 60_000 };

    /// The wait imposed after `failures` failures.
    pub(crate) fn delay_ms(&self, failures: u32) -> i64 {
        if failures < self.free_failures {
            return 0;
        }
        let doublings = (failures - self.free_failures).min(40);
        self.base_ms.saturating_mul(1i64 << doublings).min(self.cap_ms)
    }

    /// The count that still matters at `now` (old failures are forgotten).
    fn current(&self, state: Throttle, now: i64) -> Throttle {
        if now.saturating_sub(state.last_at) > self.forget_after_ms { Throttle::default() } else { state }
    }

    /// Whether an attempt may go on at `now`: the state to write (this attempt counted as a
    /// failure until it succeeds), or how many milliseconds to wait.
    pub(crate) fn reserve(&self, state: Throttle, now: i64) -> Result<Throttle, i64> {
        let state = self.current(state, now);
        let free_at = state.last_at.saturating_add(self.delay_ms(state.failures));
        if state.failures > 0 && now < free_at {
            return Err(free_at - now);
        }
        Ok(Throttle { failures: state.failures.saturating_add(1), last_at: now })
    }
}

/// What an attempt is throttled by: its account (a hash of the login: the table never holds a
/// login, known or not) and its client address.
pub(crate) fn account_key(login: &str) -> String {
    let digest: String = Sha256::digest(login.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    format!("account:{digest}")
}

pub(crate) fn address_key(address: &str) -> String {
    format!("address:{address}")
}

/// The outcome of [`reserve`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reservation {
    /// The attempt may check the password.
    Granted,
    /// Refused: the account or the address must wait this many milliseconds.
    Wait(i64),
}

async fn read(tx: &mut sqlx::AnyConnection, key: &str) -> Result<Throttle, sqlx::Error> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT failures, last_at FROM sign_in_throttle WHERE key = $1").bind(key).fetch_optional(&mut *tx).await?;
    Ok(row.map(|(failures, last_at)| Throttle { failures: u32::try_from(failures).unwrap_or(u32::MAX), last_at }).unwrap_or_default())
}

async fn write(tx: &mut sqlx::AnyConnection, key: &str, state: Throttle) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sign_in_throttle (key, failures, last_at) VALUES ($1, $2, $3)
         ON CONFLICT (key) DO UPDATE SET failures = $2, last_at = $3",
    )
    .bind(key)
    .bind(i64::from(state.failures))
    .bind(state.last_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Decides and reserves one attempt for these keys, atomically: the write transaction takes the
/// database's write lock first, so no other attempt (of this process or another) reads the
/// counts between this read and this write. Nothing is written when the attempt is refused.
pub(crate) async fn reserve(db: &Db, keys: &[(&str, ThrottlePolicy)], now: i64) -> Result<Reservation, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let mut next = Vec::with_capacity(keys.len());
    let mut wait = 0i64;
    for (key, policy) in keys {
        match policy.reserve(read(&mut tx, key).await?, now) {
            Ok(state) => next.push((*key, state)),
            Err(ms) => wait = wait.max(ms),
        }
    }
    if wait > 0 {
        tx.rollback().await?;
        return Ok(Reservation::Wait(wait));
    }
    for (key, state) in next {
        write(&mut tx, key, state).await?;
    }
    tx.commit().await?;
    Ok(Reservation::Granted)
}

/// A successful sign-in: the account starts again from zero; the address gets this attempt's
/// reservation back (not more: an attacker signing in to an account of their own between two
/// guesses must not clear the address's count).
pub(crate) async fn succeeded(db: &Db, account: &str, address: &str) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    sqlx::query("DELETE FROM sign_in_throttle WHERE key = $1").bind(account).execute(&mut *tx).await?;
    sqlx::query("UPDATE sign_in_throttle SET failures = CASE WHEN failures > 1 THEN failures - 1 ELSE 0 END WHERE key = $1")
        .bind(address)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Keeps the table bounded: forgotten rows go, then the oldest beyond `max_entries`. Eviction
/// under a spray from many addresses forgets the oldest counts first (documented limit).
pub(crate) async fn prune(db: &Db, keys: &[(&str, ThrottlePolicy)], now: i64, max_entries: usize) -> Result<(), sqlx::Error> {
    let forget_after = keys.iter().map(|(_, policy)| policy.forget_after_ms).max().unwrap_or(0);
    let forget_before = now.saturating_sub(forget_after);
    sqlx::query("DELETE FROM sign_in_throttle WHERE last_at < $1").bind(forget_before).execute(db.pool()).await?;
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sign_in_throttle").fetch_one(db.pool()).await?;
    let excess = count - i64::try_from(max_entries).unwrap_or(i64::MAX);
    if excess > 0 {
        sqlx::query("DELETE FROM sign_in_throttle WHERE key IN (SELECT key FROM sign_in_throttle ORDER BY last_at LIMIT $1)")
            .bind(excess)
            .execute(db.pool())
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: ThrottlePolicy = ThrottlePolicy::ACCOUNT;

    #[test]
    fn the_delay_doubles_after_the_free_failures_and_is_capped() {
        assert_eq!((0..5).map(|n| P.delay_ms(n)).collect::<Vec<_>>(), [0; 5]);
        assert_eq!((5..9).map(|n| P.delay_ms(n)).collect::<Vec<_>>(), [1_000, 2_000, 4_000, 8_000]);
        assert_eq!(P.delay_ms(20), 5 * 60_000);
        assert_eq!(P.delay_ms(u32::MAX), 5 * 60_000, "no overflow");
    }

    #[test]
    fn a_guesser_is_slowed_but_the_user_is_never_locked_out_for_good() {
        let mut state = Throttle::default();
        let mut now = 1_000_000;
        // An attacker hammering: each failure reserved, then refused until the delay passes.
        for _ in 0..30 {
            state = P.reserve(state, now).expect("allowed once the delay has passed");
            let delay = P.delay_ms(state.failures);
            if delay > 0 {
                let wait = P.reserve(state, now + 1).expect_err("the next attempt waits");
                assert!(wait <= P.cap_ms, "never more than the cap: {wait}");
                assert_eq!(P.reserve(state, now + 1).unwrap_err(), wait, "a refused attempt does not extend the delay");
            }
            now += delay;
        }
        // The real user, once the (capped) delay has passed, gets an attempt.
        assert!(P.reserve(state, now).is_ok());
        assert!(P.delay_ms(state.failures) <= 5 * 60_000);
    }

    #[test]
    fn old_failures_are_forgotten() {
        let state = Throttle { failures: 50, last_at: 0 };
        assert_eq!(P.reserve(state, P.forget_after_ms + 1), Ok(Throttle { failures: 1, last_at: P.forget_after_ms + 1 }));
    }

    #[test]
    fn the_table_never_holds_a_login() {
        let key = account_key("medecin");
        assert!(!key.contains("medecin") && key.len() == "account:".len() + 64, "{key}");
    }
}
