//! The per-source rate limit of fault reports: like device interrupts (a flood limit per source
//! per tick), a source that faults more than `limit` times within one tick has its further
//! faults of that tick counted instead of logged one by one. Other sources are not affected: the
//! fault interrupt keeps draining the records and their faults are still logged.
//!
//! A source is a requester ID qualified by its PCI segment (the same number on two segments is
//! two functions, VT-d spec §8.3). Fixed capacity, no allocation: `N` sources are tracked per tick; sources beyond that share
//! one extra bucket with the same limit.

use conduit_pci::PciAddress;

/// What to do with one fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Log it.
    Log,
    /// The source is over its limit this tick: count it only.
    Count,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    source: Option<PciAddress>,
    seen: u32,
    suppressed: u32,
}

const EMPTY: Entry = Entry {
    source: None,
    seen: 0,
    suppressed: 0,
};

/// Per-source fault counters of the current tick.
#[derive(Debug, Clone)]
pub struct FaultLimiter<const N: usize> {
    limit: u32,
    tick: u64,
    entries: [Entry; N],
    len: usize,
    /// Sources beyond the `N` tracked ones.
    other: Entry,
}

impl<const N: usize> FaultLimiter<N> {
    /// A limiter logging at most `limit` faults per source per tick.
    pub const fn new(limit: u32) -> Self {
        Self {
            limit,
            tick: 0,
            entries: [EMPTY; N],
            len: 0,
            other: EMPTY,
        }
    }

    /// The per-source limit.
    pub const fn limit(&self) -> u32 {
        self.limit
    }

    /// Counts one fault of `source` at `tick` and says whether to log it. A new tick starts new
    /// windows (suppressed counts not yet taken are kept until [`FaultLimiter::take_suppressed`]).
    pub fn admit(&mut self, tick: u64, source: PciAddress) -> Verdict {
        if tick != self.tick {
            self.tick = tick;
            for e in &mut self.entries[..self.len] {
                e.seen = 0;
            }
            self.other.seen = 0;
        }
        let index = self.entries[..self.len]
            .iter()
            .position(|e| e.source == Some(source));
        let entry = match index {
            Some(i) => &mut self.entries[i],
            None if self.len < N => {
                self.entries[self.len] = Entry {
                    source: Some(source),
                    ..EMPTY
                };
                self.len += 1;
                &mut self.entries[self.len - 1]
            }
            None => &mut self.other,
        };
        entry.seen = entry.seen.saturating_add(1);
        if entry.seen > self.limit {
            entry.suppressed = entry.suppressed.saturating_add(1);
            Verdict::Count
        } else {
            Verdict::Log
        }
    }

    /// Hands out, and resets, the faults counted without logging since the last call: per
    /// tracked source `(Some(source), n)`, and `(None, n)` for untracked sources. Sources that
    /// neither fault this tick nor have anything to report are forgotten.
    pub fn take_suppressed(&mut self, mut report: impl FnMut(Option<PciAddress>, u32)) {
        for e in &mut self.entries[..self.len] {
            if e.suppressed != 0 {
                report(e.source, e.suppressed);
                e.suppressed = 0;
            }
        }
        if self.other.suppressed != 0 {
            report(None, self.other.suppressed);
            self.other.suppressed = 0;
        }
        let mut kept = 0;
        for i in 0..self.len {
            if self.entries[i].seen != 0 {
                self.entries[kept] = self.entries[i];
                kept += 1;
            }
        }
        self.len = kept;
    }
}

/// The fault event interrupt's own rate limit. Logging less is not enough: a function whose DMA
/// faults without pause raises the fault event interrupt again as soon as its record is freed,
/// and so can keep a CPU in the handler. More than `limit` fault event interrupts within one tick
/// mask the interrupt (FECTL.IM, VT-d spec §10.4.10) for the rest of the tick; the next tick
/// unmasks it. Nothing is lost meanwhile: the unit keeps recording faults (and sets FECTL.IP,
/// delivered on unmasking), and polling drains the records as always.
#[derive(Debug, Clone)]
pub struct InterruptThrottle {
    limit: u32,
    tick: u64,
    seen: u32,
    masked: bool,
    /// Times the interrupt was masked since [`InterruptThrottle::take_masked`].
    episodes: u32,
}

impl InterruptThrottle {
    /// At most `limit` fault event interrupts per tick.
    pub const fn new(limit: u32) -> Self {
        Self {
            limit,
            tick: 0,
            seen: 0,
            masked: false,
            episodes: 0,
        }
    }

    /// One fault event interrupt during `tick`: `true` if the interrupt must be masked now.
    pub fn on_interrupt(&mut self, tick: u64) -> bool {
        if tick != self.tick {
            self.tick = tick;
            self.seen = 0;
        }
        self.seen = self.seen.saturating_add(1);
        if self.seen > self.limit && !self.masked {
            self.masked = true;
            self.episodes = self.episodes.saturating_add(1);
            return true;
        }
        false
    }

    /// Tick `tick` began: `true` if the interrupt was masked and must be unmasked now.
    pub fn on_tick(&mut self, tick: u64) -> bool {
        self.tick = tick;
        self.seen = 0;
        core::mem::take(&mut self.masked)
    }

    /// How many times the interrupt was masked since the last call (for the log).
    pub fn take_masked(&mut self) -> u32 {
        core::mem::take(&mut self.episodes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conduit_pci::Bdf;

    fn bdf(dev: u8) -> PciAddress {
        PciAddress::on_segment0(Bdf::new(0, dev, 0).expect("valid"))
    }

    fn taken<const N: usize>(l: &mut FaultLimiter<N>) -> Vec<(Option<PciAddress>, u32)> {
        let mut v = Vec::new();
        l.take_suppressed(|s, n| v.push((s, n)));
        v
    }

    #[test]
    fn a_storm_from_one_source_is_counted_others_still_logged() {
        let mut l = FaultLimiter::<4>::new(3);
        let verdicts: Vec<_> = (0..10).map(|_| l.admit(7, bdf(2))).collect();
        assert_eq!(&verdicts[..3], &[Verdict::Log; 3]);
        assert_eq!(&verdicts[3..], &[Verdict::Count; 7]);
        assert_eq!(
            l.admit(7, bdf(3)),
            Verdict::Log,
            "another source is not affected"
        );
        assert_eq!(taken(&mut l), [(Some(bdf(2)), 7)]);
        assert_eq!(taken(&mut l), [], "taken once");
    }

    #[test]
    fn a_new_tick_opens_a_new_window() {
        let mut l = FaultLimiter::<4>::new(2);
        for _ in 0..5 {
            l.admit(1, bdf(2));
        }
        assert_eq!(l.admit(2, bdf(2)), Verdict::Log);
        assert_eq!(l.admit(2, bdf(2)), Verdict::Log);
        assert_eq!(l.admit(2, bdf(2)), Verdict::Count);
        assert_eq!(taken(&mut l), [(Some(bdf(2)), 4)]);
    }

    #[test]
    fn sources_beyond_capacity_share_one_bucket() {
        let mut l = FaultLimiter::<2>::new(1);
        l.admit(1, bdf(1));
        l.admit(1, bdf(2));
        assert_eq!(l.admit(1, bdf(3)), Verdict::Log);
        assert_eq!(l.admit(1, bdf(4)), Verdict::Count);
        assert_eq!(l.admit(1, bdf(1)), Verdict::Count);
        assert_eq!(taken(&mut l), [(Some(bdf(1)), 1), (None, 1)]);
    }

    #[test]
    fn quiet_sources_are_forgotten_after_their_report() {
        let mut l = FaultLimiter::<1>::new(1);
        l.admit(1, bdf(1));
        l.admit(1, bdf(1));
        assert_eq!(taken(&mut l), [(Some(bdf(1)), 1)]);
        // A new tick: the slot is still held (seen this tick), so 00:02.0 goes to the bucket.
        assert_eq!(l.admit(1, bdf(2)), Verdict::Log);
        l.admit(2, bdf(2));
        taken(&mut l);
        // 00:01.0 did not fault in tick 2 and had nothing to report: its slot was freed, and
        // 00:02.0 now has a slot of its own (the bucket already saw one fault this tick).
        assert_eq!(l.admit(2, bdf(2)), Verdict::Log);
        assert_eq!(l.admit(2, bdf(2)), Verdict::Count);
        assert_eq!(l.admit(2, bdf(3)), Verdict::Count);
        assert_eq!(taken(&mut l), [(Some(bdf(2)), 1), (None, 1)]);
    }

    #[test]
    fn one_requester_id_on_two_segments_is_two_sources() {
        let mut l = FaultLimiter::<4>::new(1);
        let b = Bdf::new(1, 0, 0).expect("valid");
        assert_eq!(l.admit(1, PciAddress::new(0, b)), Verdict::Log);
        assert_eq!(l.admit(1, PciAddress::new(1, b)), Verdict::Log);
        assert_eq!(l.admit(1, PciAddress::new(1, b)), Verdict::Count);
        assert_eq!(taken(&mut l), [(Some(PciAddress::new(1, b)), 1)]);
    }

    #[test]
    fn a_fault_interrupt_storm_is_masked_until_the_next_tick() {
        let mut t = InterruptThrottle::new(3);
        let masks: Vec<bool> = (0..6).map(|_| t.on_interrupt(5)).collect();
        assert_eq!(masks, [false, false, false, true, false, false]);
        assert_eq!(t.take_masked(), 1);
        assert_eq!(t.take_masked(), 0);
        // The next tick unmasks once, and counts afresh.
        assert!(t.on_tick(6));
        assert!(!t.on_tick(7));
        assert_eq!((0..3).filter(|_| t.on_interrupt(7)).count(), 0);
        assert!(t.on_interrupt(7));
        // Interrupts of a later tick that nobody announced start a new count too.
        assert!(t.on_tick(8));
        assert!(!t.on_interrupt(9));
        assert_eq!(t.take_masked(), 1);
    }
}
