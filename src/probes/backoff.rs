//! The platform's client backoff: 1 s x 2^attempt, capped at 32 s, plus up to 30% jitter, at
//! most 5 attempts; a 429's `Retry-After` wins over the formula.

use std::time::Duration;

use rand::Rng;

pub const MAX_ATTEMPTS: u32 = 5;
const BASE: Duration = Duration::from_secs(1);
const CAP: Duration = Duration::from_secs(32);

/// The delay before retry number `attempt` (0-based), with `jitter` in [0, 1) scaling the
/// extra 0-30%.
pub fn delay(attempt: u32, jitter: f64) -> Duration {
    let base = BASE
        .checked_mul(2u32.saturating_pow(attempt.min(16)))
        .unwrap_or(CAP)
        .min(CAP);
    base + base.mul_f64(0.3 * jitter.clamp(0.0, 1.0))
}

pub fn delay_random(attempt: u32) -> Duration {
    delay(attempt, rand::rng().random::<f64>())
}

/// `Retry-After` as seconds (the platform sends whole seconds), read as the receivers read it.
pub use crate::http_util::retry_after;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_one_second_caps_at_32_and_adds_at_most_30_percent() {
        assert_eq!(delay(0, 0.0), Duration::from_secs(1));
        assert_eq!(delay(1, 0.0), Duration::from_secs(2));
        assert_eq!(delay(5, 0.0), Duration::from_secs(32));
        assert_eq!(delay(9, 0.0), Duration::from_secs(32));
        assert_eq!(delay(2, 1.0), Duration::from_millis(5200));
        for a in 0..8 {
            let d = delay_random(a);
            let base = delay(a, 0.0);
            assert!(d >= base && d <= base.mul_f64(1.3), "{a}: {d:?}");
        }
    }
}
