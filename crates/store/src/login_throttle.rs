//! Login throttling shared by every instance on one database: failures per key (an e-mail
//! or a client address).
//!
//! A slot is reserved *before* the password is verified, in one serialised transaction:
//! concurrent guesses cannot all pass the check, because each one that passes has already
//! counted as a failure. A correct password clears its keys again.

use std::time::Duration;

use time::OffsetDateTime;

use crate::{Result, Store, parse_ts, ts};

/// Failures allowed before a key is locked.
const FREE_ATTEMPTS: i64 = 5;
/// A key idle this long starts again from zero.
const FORGET_AFTER: time::Duration = time::Duration::HOUR;

/// How long a key is locked after its `failures`-th failure: 30 s after the fifth, doubling
/// with each further one, at most 15 minutes.
fn lock_after(failures: i64) -> Option<time::Duration> {
    (failures >= FREE_ATTEMPTS).then(|| {
        let doublings = (failures - FREE_ATTEMPTS).min(5) as u32;
        time::Duration::seconds((30i64 << doublings).min(900))
    })
}

/// The answer to an attempt to log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginAttempt {
    /// Verify the password; the attempt already counts as a failure until it is cleared.
    Reserved,
    /// Locked for this long; the password must not even be checked.
    Locked(Duration),
}

impl Store {
    /// Reserves a failure slot for each of `keys`, or answers how long the most locked one
    /// must still wait (reserving nothing).
    pub async fn reserve_login_attempt(&self, keys: &[String], now: OffsetDateTime) -> Result<LoginAttempt> {
        let mut tx = self.begin_write().await?;
        self.lock_table(&mut tx, "login_failures").await?;
        sqlx::query("DELETE FROM login_failures WHERE last_at < $1")
            .bind(ts(now - FORGET_AFTER))
            .execute(&mut *tx)
            .await?;
        let mut counts = Vec::with_capacity(keys.len());
        let mut wait = time::Duration::ZERO;
        for key in keys {
            let row: Option<(i64, Option<String>)> =
                sqlx::query_as("SELECT failures, locked_until FROM login_failures WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await?;
            let (failures, locked_until) = row.unwrap_or((0, None));
            if let Some(until) = locked_until.as_deref().map(parse_ts).transpose()? {
                wait = wait.max(until - now);
            }
            counts.push(failures);
        }
        if wait.is_positive() {
            tx.rollback().await?;
            return Ok(LoginAttempt::Locked(Duration::try_from(wait).unwrap_or(Duration::from_secs(1))));
        }
        for (key, failures) in keys.iter().zip(counts) {
            let failures = failures + 1;
            sqlx::query(
                "INSERT INTO login_failures (key, failures, last_at, locked_until) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, last_at = excluded.last_at,
                     locked_until = excluded.locked_until",
            )
            .bind(key)
            .bind(failures)
            .bind(ts(now))
            .bind(lock_after(failures).map(|lock| ts(now + lock)))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(LoginAttempt::Reserved)
    }

    /// A correct password: its keys start again from zero.
    pub async fn clear_login_failures(&self, keys: &[String]) -> Result<()> {
        for key in keys {
            sqlx::query("DELETE FROM login_failures WHERE key = $1").bind(key).execute(&self.pool).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_five_failures_doubling_up_to_fifteen_minutes() {
        assert_eq!(lock_after(4), None);
        assert_eq!(lock_after(5), Some(time::Duration::seconds(30)));
        assert_eq!(lock_after(6), Some(time::Duration::seconds(60)));
        assert_eq!(lock_after(10), Some(time::Duration::seconds(900)));
        assert_eq!(lock_after(50), Some(time::Duration::seconds(900)));
    }
}
