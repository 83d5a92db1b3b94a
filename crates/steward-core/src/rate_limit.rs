//! Rate limits for everything that could enumerate people (look-ups, sign-in, verification):
//! a generic cell-rate algorithm per key (an IP address, a hashed identity, a username), with
//! the time given by the caller so tests can move it.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

/// At most `limit` events per `window` per key, in bursts of up to `limit`.
#[derive(Debug)]
pub struct RateLimiter<K> {
    limit: u32,
    window: Duration,
    /// Per key, the theoretical arrival time of the next event.
    cells: Mutex<HashMap<K, OffsetDateTime>>,
}

/// How many keys are kept before the stale ones are swept.
const SWEEP_AT: usize = 100_000;

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// A limiter allowing `limit` events per `window` for each key.
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit: limit.max(1),
            window,
            cells: Mutex::new(HashMap::new()),
        }
    }

    /// The limit and window, as `60/min` reads them.
    pub fn rate(&self) -> (u32, Duration) {
        (self.limit, self.window)
    }

    /// Counts an event for `key` at `now`: `Ok` if allowed, or how long to wait.
    pub fn check(&self, key: &K, now: OffsetDateTime) -> Result<(), Duration> {
        let interval = self.window / self.limit;
        let tolerance = self.window - interval;
        let Ok(mut cells) = self.cells.lock() else {
            // A poisoned lock means a panic elsewhere; refuse rather than let everything in.
            return Err(self.window);
        };
        if cells.len() >= SWEEP_AT {
            cells.retain(|_, tat| *tat > now);
        }
        let tat = cells.get(key).copied().unwrap_or(now).max(now);
        if tat - now > tolerance {
            return Err(tat - now - tolerance);
        }
        cells.insert(key.clone(), tat + interval);
        Ok(())
    }
}

/// Reads a rate such as `60/min`, `5/s`, `1000/hour`.
pub fn parse_rate(text: &str) -> Result<(u32, Duration), String> {
    let err = || format!("`{text}` is not a rate; write it like `60/min`, `5/s` or `1000/hour`");
    let (n, unit) = text.trim().split_once('/').ok_or_else(err)?;
    let n: u32 = n.trim().parse().map_err(|_| err())?;
    let window = match unit.trim() {
        "s" | "sec" | "second" => Duration::SECOND,
        "min" | "minute" => Duration::MINUTE,
        "h" | "hour" => Duration::HOUR,
        "day" => Duration::DAY,
        _ => return Err(err()),
    };
    if n == 0 {
        return Err(format!("`{text}`: a rate of 0 would refuse everything"));
    }
    Ok((n, window))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused_until_time_passes() {
        let limiter = RateLimiter::new(5, Duration::MINUTE);
        let t0 = OffsetDateTime::UNIX_EPOCH;
        for _ in 0..5 {
            assert!(limiter.check(&"1.2.3.4", t0).is_ok());
        }
        let wait = limiter.check(&"1.2.3.4", t0).unwrap_err();
        assert_eq!(wait, Duration::seconds(12));
        // Another key is not affected.
        assert!(limiter.check(&"5.6.7.8", t0).is_ok());
        // One interval later, one more event.
        assert!(
            limiter
                .check(&"1.2.3.4", t0 + Duration::seconds(12))
                .is_ok()
        );
        assert!(
            limiter
                .check(&"1.2.3.4", t0 + Duration::seconds(12))
                .is_err()
        );
        // A refused event does not push the wait further.
        assert!(limiter.check(&"1.2.3.4", t0 + Duration::MINUTE * 2).is_ok());
    }

    #[test]
    fn rates_read_like_people_write_them() {
        assert_eq!(parse_rate("60/min"), Ok((60, Duration::MINUTE)));
        assert_eq!(parse_rate(" 5 / s "), Ok((5, Duration::SECOND)));
        assert!(parse_rate("0/min").is_err());
        assert!(parse_rate("lots").is_err());
    }
}
