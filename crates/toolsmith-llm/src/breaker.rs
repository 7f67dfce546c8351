//! A circuit breaker for one endpoint: after `threshold` consecutive failed attempts it opens
//! and calls fail fast; after `cooldown` one probe is let through (half-open); its success
//! closes the breaker, its failure opens it again.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

#[derive(Debug)]
pub struct CircuitBreaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<BreakerState>,
}

impl CircuitBreaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        CircuitBreaker {
            threshold: threshold.max(1),
            cooldown,
            state: Mutex::new(BreakerState::Closed { failures: 0 }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BreakerState> {
        // The state is a plain value: a panic elsewhere cannot leave it half-written.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn state(&self) -> BreakerState {
        *self.lock()
    }

    /// May an attempt go out now? `Err(wait)` when the breaker is open (or a probe is out).
    pub fn acquire(&self) -> Result<(), Duration> {
        let mut state = self.lock();
        match *state {
            BreakerState::Closed { .. } => Ok(()),
            BreakerState::Open { until } => {
                let now = Instant::now();
                if now >= until {
                    *state = BreakerState::HalfOpen { probing: true };
                    Ok(())
                } else {
                    Err(until - now)
                }
            }
            BreakerState::HalfOpen { probing: true } => Err(Duration::ZERO),
            BreakerState::HalfOpen { probing: false } => {
                *state = BreakerState::HalfOpen { probing: true };
                Ok(())
            }
        }
    }

    /// The endpoint answered (even with an error of the caller's making, such as a 400).
    pub fn on_success(&self) {
        *self.lock() = BreakerState::Closed { failures: 0 };
    }

    /// The endpoint failed: 5xx, timeout, connection error, unusable body.
    pub fn on_failure(&self) {
        let mut state = self.lock();
        *state = match *state {
            BreakerState::Closed { failures } if failures + 1 < self.threshold => {
                BreakerState::Closed {
                    failures: failures + 1,
                }
            }
            _ => BreakerState::Open {
                until: Instant::now() + self.cooldown,
            },
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_probes_after_cooldown_and_closes_on_success() {
        let breaker = CircuitBreaker::new(2, Duration::from_millis(30));
        assert!(breaker.acquire().is_ok());
        breaker.on_failure();
        assert_eq!(breaker.state(), BreakerState::Closed { failures: 1 });
        breaker.on_failure();
        assert!(matches!(breaker.state(), BreakerState::Open { .. }));
        assert!(breaker.acquire().is_err());

        std::thread::sleep(Duration::from_millis(40));
        assert!(breaker.acquire().is_ok(), "one probe after the cool-down");
        assert_eq!(
            breaker.acquire(),
            Err(Duration::ZERO),
            "only one probe at a time"
        );
        breaker.on_failure();
        assert!(
            matches!(breaker.state(), BreakerState::Open { .. }),
            "a failed probe reopens"
        );

        std::thread::sleep(Duration::from_millis(40));
        assert!(breaker.acquire().is_ok());
        breaker.on_success();
        assert_eq!(breaker.state(), BreakerState::Closed { failures: 0 });
    }

    #[test]
    fn a_success_resets_the_count() {
        let breaker = CircuitBreaker::new(3, Duration::from_secs(1));
        breaker.on_failure();
        breaker.on_failure();
        breaker.on_success();
        breaker.on_failure();
        assert_eq!(breaker.state(), BreakerState::Closed { failures: 1 });
    }
}
