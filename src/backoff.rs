//! The one way tessera waits between retries: a delay that doubles from a first value up
//! to a cap. Each caller keeps its own figures (most are LiveKit's own), not its own
//! arithmetic.

use std::time::Duration;

/// A doubling backoff: attempt `n` (0-based) waits `first · 2ⁿ`, at most `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Backoff {
    /// A backoff from `first` doubling up to `max`.
    pub const fn new(first: Duration, max: Duration) -> Backoff {
        Backoff { first, max }
    }

    /// The wait after failed attempt `n` (0-based).
    pub fn delay(&self, n: u32) -> Duration {
        self.first.saturating_mul(1u32 << n.min(20)).min(self.max)
    }

    /// The waits after each failure in turn (endless: the caller bounds the attempts).
    pub fn delays(self) -> impl Iterator<Item = Duration> {
        (0u32..).map(move |n| self.delay(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn doubles_from_the_first_delay_up_to_the_cap() {
        let b = Backoff::new(250 * MS, 60_000 * MS);
        let waits: Vec<_> = b.delays().take(10).collect();
        let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(
            ms,
            [250, 500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]
        );
    }

    #[test]
    fn never_overflows_however_many_attempts() {
        let b = Backoff::new(Duration::from_secs(1), Duration::MAX);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(1 << 20));
        assert_eq!(Backoff::new(MS, MS).delay(1000), MS);
    }
}
