//! Login throttling: slows down password guessing per e-mail and per client address.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Slows down password guessing: after 5 failures for one key (an e-mail or an address),
/// that key is locked for 30 s, doubling with each further failure up to 15 minutes.
#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

const FREE_ATTEMPTS: u32 = 5;

impl LoginThrottle {
    /// How long `key` must still wait, if it is locked.
    pub fn locked_for(&self, key: &str, now: Instant) -> Option<Duration> {
        let failures = self.failures.lock().expect("throttle lock");
        let (count, last) = failures.get(key)?;
        if *count < FREE_ATTEMPTS {
            return None;
        }
        let lock = Duration::from_secs(30u64 << (count - FREE_ATTEMPTS).min(5)).min(Duration::from_secs(900));
        (now < *last + lock).then(|| *last + lock - now)
    }

    pub fn failed(&self, key: &str, now: Instant) {
        let mut failures = self.failures.lock().expect("throttle lock");
        // Forget keys idle for an hour so the map cannot grow without bound.
        failures.retain(|_, (_, last)| now.saturating_duration_since(*last) < Duration::from_secs(3600));
        let entry = failures.entry(key.to_owned()).or_insert((0, now));
        entry.0 += 1;
        entry.1 = now;
    }

    pub fn succeeded(&self, key: &str) {
        self.failures.lock().expect("throttle lock").remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_locks_after_five_failures_and_doubles() {
        let throttle = LoginThrottle::default();
        let t0 = Instant::now();
        for i in 0..5 {
            assert_eq!(throttle.locked_for("a@x.org", t0), None, "attempt {i} is free");
            throttle.failed("a@x.org", t0);
        }
        assert_eq!(throttle.locked_for("a@x.org", t0), Some(Duration::from_secs(30)));
        assert_eq!(throttle.locked_for("a@x.org", t0 + Duration::from_secs(31)), None);
        throttle.failed("a@x.org", t0 + Duration::from_secs(31));
        assert_eq!(
            throttle.locked_for("a@x.org", t0 + Duration::from_secs(31)),
            Some(Duration::from_secs(60)),
            "the sixth failure doubles the lock"
        );
        assert_eq!(throttle.locked_for("b@x.org", t0), None, "other keys are not affected");
        throttle.succeeded("a@x.org");
        assert_eq!(throttle.locked_for("a@x.org", t0 + Duration::from_secs(31)), None);
    }
}
