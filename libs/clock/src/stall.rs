//! Telling a wait whose clock stopped from one that is merely long.
//!
//! A busy-wait polls a clock until a deadline; if the clock never advances, the deadline never
//! comes and the wait never ends. The TSC advances between any two reads on every CPU and
//! emulator (a read takes tens of cycles: SDM Vol. 3B §18.17, the TSC increments at a constant
//! rate), so a clock that reads the same value `limit` times in a row has stopped, and the wait
//! must give up with that as its error.

/// Consecutive equal readings seen so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StallDetector {
    last: u64,
    still: u32,
    limit: u32,
}

/// The clock read the same value `reads` times in a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stalled {
    /// The value it kept reading.
    pub at: u64,
    /// How many reads in a row.
    pub reads: u32,
}

impl StallDetector {
    /// Starts from a first reading; `limit` equal readings in a row (at least 1) are a stall.
    #[must_use]
    pub const fn new(first: u64, limit: u32) -> Self {
        Self {
            last: first,
            still: 0,
            limit: if limit == 0 { 1 } else { limit },
        }
    }

    /// Takes the next reading; an error once it has equalled the previous ones `limit` times.
    pub fn observe(&mut self, t: u64) -> Result<(), Stalled> {
        if t == self.last {
            self.still += 1;
            if self.still >= self.limit {
                return Err(Stalled {
                    at: t,
                    reads: self.still,
                });
            }
        } else {
            self.last = t;
            self.still = 0;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frozen_clock_stalls_after_exactly_limit_equal_reads() {
        let mut d = StallDetector::new(42, 4);
        for _ in 0..3 {
            assert_eq!(d.observe(42), Ok(()));
        }
        assert_eq!(d.observe(42), Err(Stalled { at: 42, reads: 4 }));
        // It stays stalled.
        assert!(d.observe(42).is_err());
    }

    #[test]
    fn an_advancing_clock_never_stalls_and_a_change_resets_the_count() {
        let mut d = StallDetector::new(0, 3);
        for t in 1..10_000u64 {
            assert_eq!(d.observe(t / 2), Ok(()), "reading {t}");
        }
        let mut d = StallDetector::new(7, 3);
        assert_eq!(d.observe(7), Ok(()));
        assert_eq!(d.observe(7), Ok(()));
        assert_eq!(d.observe(8), Ok(()));
        assert_eq!(d.observe(8), Ok(()));
        assert_eq!(d.observe(8), Ok(()));
        assert!(d.observe(8).is_err());
        // A clock that goes backwards or wraps still advances.
        let mut d = StallDetector::new(u64::MAX, 2);
        assert_eq!(d.observe(0), Ok(()));
        assert_eq!(d.observe(u64::MAX), Ok(()));
    }

    #[test]
    fn a_zero_limit_means_one() {
        let mut d = StallDetector::new(5, 0);
        assert_eq!(d.observe(5), Err(Stalled { at: 5, reads: 1 }));
    }
}
