//! Time as a dependency: the [`Clock`] trait and the system clock. Code whose behaviour
//! depends on "now" (the lifecycle worker) takes a `Clock` or an explicit `now_ms`, so unit
//! tests and process-level tests can choose the time instead of waiting for it.

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch (UTC).
    fn now_ms(&self) -> i64;
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        crate::util::now_ms()
    }
}

/// A clock that always reads the same instant (tests, and `strata lifecycle run --now`).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub i64);

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.0
    }
}

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// The first midnight UTC at or after `ms` (S3 rounds lifecycle due times up to midnight).
pub fn ceil_to_midnight(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS) * DAY_MS + if ms.rem_euclid(DAY_MS) == 0 { 0 } else { DAY_MS }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn midnight_rounding() {
        assert_eq!(ceil_to_midnight(0), 0);
        assert_eq!(ceil_to_midnight(1), DAY_MS);
        assert_eq!(ceil_to_midnight(DAY_MS - 1), DAY_MS);
        assert_eq!(ceil_to_midnight(DAY_MS), DAY_MS);
        assert_eq!(ceil_to_midnight(-1), 0);
        assert_eq!(FixedClock(42).now_ms(), 42);
        assert!(SystemClock.now_ms() > 1_700_000_000_000);
    }
}
