//! Rate limits for everything that could enumerate people or be guessed (look-ups, sign-in,
//! verification codes, public requests, API keys): fixed windows per key (an address, an
//! identity, a username — hashed under a vault key), counted in the store so that every
//! process on one database shares one budget, with the time given by the caller so tests can
//! move it.

use std::collections::HashMap;
use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

/// How many refused keys a process remembers before the stale ones are swept.
const SWEEP_AT: usize = 100_000;

/// One event to count against a shared limit: the limit's name (`lookup-ip`, `signin-user` …),
/// its rate, and what it is counted for (an address, an identity, a username — hashed under
/// a key of the vault before it goes anywhere).
#[derive(Debug, Clone, Copy)]
pub struct Hit<'a> {
    /// The limit's name; the same value under two limits counts apart.
    pub limit: &'static str,
    /// At most this many per window.
    pub rate: (u32, Duration),
    /// What is counted.
    pub value: &'a [u8],
}

/// What a shared limit says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within every limit.
    Allowed,
    /// Over one: come back after `wait`. `record` is true the first time this process refuses
    /// that key in its window — audit that refusal; the rest are only counted (see
    /// [`SharedLimits::take_unrecorded`]), so a flood of refusals cannot flood the audit.
    Refused {
        /// How long until the window ends.
        wait: Duration,
        /// Whether to audit this refusal one by one.
        record: bool,
    },
}

/// Rate limits that hold across every process sharing one store (several `steward serve` on
/// one PostgreSQL, or the CLI beside the server): fixed windows aligned to the epoch, so every
/// process counts into the same window, with the counts in the store under keyed hashes.
/// Keys this process has seen refused are remembered until their window ends, so refusals
/// cost no store round trip.
pub struct SharedLimits {
    secret: zeroize::Zeroizing<[u8; 32]>,
    blocked: Mutex<HashMap<[u8; 32], OffsetDateTime>>,
    unrecorded: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for SharedLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedLimits").finish_non_exhaustive()
    }
}

/// The end of the fixed window of length `window` that holds `now`.
fn window_end(now: OffsetDateTime, window: Duration) -> OffsetDateTime {
    let len = window.whole_nanoseconds().max(1);
    let t = now.unix_timestamp_nanos();
    let end = (t.div_euclid(len) + 1) * len;
    OffsetDateTime::from_unix_timestamp_nanos(end).unwrap_or(now + window)
}

impl SharedLimits {
    /// Limits whose keys are hashed under `secret` (the same in every process of one vault).
    pub fn new(secret: zeroize::Zeroizing<[u8; 32]>) -> Self {
        Self {
            secret,
            blocked: Mutex::new(HashMap::new()),
            unrecorded: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn key(&self, hit: &Hit<'_>) -> [u8; 32] {
        use hmac::{KeyInit, Mac};
        let Ok(mut mac) = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&*self.secret)
        else {
            return [0; 32];
        };
        mac.update(hit.limit.as_bytes());
        mac.update(&[0]);
        mac.update(hit.value);
        mac.finalize().into_bytes().into()
    }

    /// Counts `hits` at `now` in `store`: allowed only if every one is within its rate.
    /// Refused events count too, so hammering does not pay off.
    pub async fn check<S: crate::access::storage::AccessStore>(
        &self,
        store: &S,
        hits: &[Hit<'_>],
        now: OffsetDateTime,
    ) -> Result<Verdict, crate::storage::StoreError> {
        let mut events: Vec<([u8; 32], OffsetDateTime)> = Vec::with_capacity(hits.len());
        for hit in hits {
            let key = self.key(hit);
            if !events.iter().any(|(k, _)| *k == key) {
                events.push((key, window_end(now, hit.rate.1)));
            }
        }
        if let Some(until) = self.blocked_until(&events, now) {
            self.unrecorded
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Ok(Verdict::Refused {
                wait: until - now,
                record: false,
            });
        }
        let counts = store.count_events(&events).await?;
        let mut refused: Option<OffsetDateTime> = None;
        // Only the caller that first marks a key blocked records the refusal: of many refused
        // at the same moment, one is audited and the rest are counted.
        let mut first = false;
        for ((hit, (key, end)), count) in hits.iter().zip(&events).zip(counts) {
            if count > u64::from(hit.rate.0.max(1)) {
                if let Ok(mut blocked) = self.blocked.lock() {
                    if blocked.len() >= SWEEP_AT {
                        blocked.retain(|_, until| *until > now);
                    }
                    let earlier = blocked.insert(*key, *end);
                    first |= earlier.is_none_or(|until| until <= now);
                }
                refused = Some(refused.map_or(*end, |r| r.max(*end)));
            }
        }
        Ok(match refused {
            None => Verdict::Allowed,
            Some(until) => {
                if !first {
                    self.unrecorded
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Verdict::Refused {
                    wait: until - now,
                    record: first,
                }
            }
        })
    }

    fn blocked_until(
        &self,
        events: &[([u8; 32], OffsetDateTime)],
        now: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        let blocked = self.blocked.lock().ok()?;
        events
            .iter()
            .filter_map(|(k, _)| blocked.get(k).copied())
            .filter(|until| *until > now)
            .max()
    }

    /// How many refusals were not audited one by one since the last call (for a summary entry).
    pub fn take_unrecorded(&self) -> u64 {
        self.unrecorded
            .swap(0, std::sync::atomic::Ordering::Relaxed)
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
    fn rates_read_like_people_write_them() {
        assert_eq!(parse_rate("60/min"), Ok((60, Duration::MINUTE)));
        assert_eq!(parse_rate(" 5 / s "), Ok((5, Duration::SECOND)));
        assert!(parse_rate("0/min").is_err());
        assert!(parse_rate("lots").is_err());
    }
}
