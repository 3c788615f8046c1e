//! A guest's exit statistics.

/// Exit counts by basic exit reason, and time spent in the guest, since it last (re)started.
#[derive(Debug)]
pub struct Stats {
    pub by_reason: [u64; 96],
    pub tsc_in_guest: u64,
}

impl Stats {
    pub(super) const ZERO: Self = Self {
        by_reason: [0; 96],
        tsc_in_guest: 0,
    };

    /// Every exit counted.
    pub fn total_exits(&self) -> u64 {
        self.by_reason.iter().sum()
    }

    /// `(name, count)` of every reason that occurred, by reason number.
    pub fn nonzero(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.by_reason
            .iter()
            .enumerate()
            .filter(|&(_, &n)| n > 0)
            .map(|(reason, &n)| {
                let name = conduit_vmx::exit::BasicExitReason::from_raw(reason as u16)
                    .map_or("unknown", |r| r.name());
                (name, n)
            })
    }
}
