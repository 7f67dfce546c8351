//! When to try again.

use std::time::Duration;

/// Exponential backoff with "equal jitter": attempt `n` waits between half and all of
/// `base · 2ⁿ` (capped at `max_delay`), so successive waits never overlap and always grow
/// until the cap, while concurrent callers still spread out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Upper bound on a server's `Retry-After`.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0 for the first retry). A server's `Retry-After`
    /// wins when given (bounded by `max_retry_after`).
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.max_retry_after);
        }
        let full = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.max_delay);
        let half = full / 2;
        let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(fastrand::u64(0..=jitter_ms))
    }
}

/// Parses `Retry-After`: delta seconds (RFC 9110 also allows an HTTP date, which we treat as
/// "no advice" rather than trusting two clocks to agree).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    value
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_without_overlap_until_the_cap() {
        let policy = RetryPolicy {
            max_retries: 6,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1600),
            max_retry_after: Duration::from_secs(5),
        };
        for _ in 0..200 {
            let delays: Vec<Duration> = (0..6).map(|n| policy.delay(n, None)).collect();
            for (n, d) in delays.iter().enumerate() {
                let full = Duration::from_millis(100 * (1 << n)).min(Duration::from_millis(1600));
                assert!(*d >= full / 2 && *d <= full, "retry {n}: {d:?}");
            }
            for pair in delays.windows(2).take(4) {
                assert!(pair[0] <= pair[1], "{delays:?}");
            }
        }
    }

    #[test]
    fn retry_after_wins_and_is_bounded() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.delay(0, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            policy.delay(0, Some(Duration::from_secs(600))),
            Duration::from_secs(60)
        );
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }
}
