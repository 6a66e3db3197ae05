//! When to try a failed delivery again, and when to stop trying: sweeps re-send outbox messages
//! and invoice e-mails on this schedule, so a few failures that keep failing move back in the
//! line (behind newer work) and are parked after a bounded number of attempts, for a person to
//! look at, instead of being retried every minute for ever.

use time::{Duration, OffsetDateTime};

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Due again at this instant.
    At(OffsetDateTime),
    /// Stop: the attempts are spent. Parked items wait for a redrive by an operator.
    Park,
}

/// Exponential backoff from `first`, capped at `cap`, for at most `max_attempts` attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub first: Duration,
    pub cap: Duration,
}

impl RetryPolicy {
    /// Deliveries to queues and mail servers: 1, 2, 4 … 60 minutes apart; parked after the
    /// 10th failure, about five hours after the first.
    pub const DELIVERY: Self = Self {
        max_attempts: 10,
        first: Duration::minutes(1),
        cap: Duration::hours(1),
    };

    /// After the `attempts`-th failed attempt (1 for the first failure) at `now`.
    pub fn after_failure(&self, attempts: u32, now: OffsetDateTime) -> Retry {
        if attempts >= self.max_attempts {
            return Retry::Park;
        }
        let doublings = attempts.saturating_sub(1).min(30);
        let delay = self
            .first
            .checked_mul(1i32 << doublings)
            .map_or(self.cap, |d| d.min(self.cap));
        Retry::At(now + delay)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn backs_off_doubling_up_to_the_cap_then_parks() {
        let now = datetime!(2026-11-30 12:00 UTC);
        let policy = RetryPolicy::DELIVERY;
        let delays: Vec<Retry> = (1..=10).map(|n| policy.after_failure(n, now)).collect();
        assert_eq!(delays[0], Retry::At(now + Duration::minutes(1)));
        assert_eq!(delays[1], Retry::At(now + Duration::minutes(2)));
        assert_eq!(delays[5], Retry::At(now + Duration::minutes(32)));
        assert_eq!(delays[6], Retry::At(now + Duration::hours(1)), "capped");
        assert_eq!(delays[8], Retry::At(now + Duration::hours(1)));
        assert_eq!(delays[9], Retry::Park, "the 10th failure parks it");
        assert_eq!(policy.after_failure(u32::MAX, now), Retry::Park);
    }
}
