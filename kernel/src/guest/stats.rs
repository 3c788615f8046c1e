//! A guest's exit statistics, and its end-of-run report.

use super::{Guest, State};
use alloc::string::String;
use log::info;

/// IPI round trips between a guest's vCPUs on one physical CPU: from the exit of the sender's
/// ICR write (after which it gives the CPU up so that the target runs: `guest::vipi`) to the
/// sender's next VM entry, in TSC ticks. A synchronous call (the sender waits for the target's
/// answer) takes one round trip when the target answers within its turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundTrips {
    pub count: u64,
    pub total: u64,
    pub min: u64,
    pub max: u64,
}

impl RoundTrips {
    pub(super) const ZERO: Self = Self {
        count: 0,
        total: 0,
        min: u64::MAX,
        max: 0,
    };

    /// One more round trip of `ticks`.
    pub(super) fn add(&mut self, ticks: u64) {
        self.count += 1;
        self.total = self.total.saturating_add(ticks);
        self.min = self.min.min(ticks);
        self.max = self.max.max(ticks);
    }

    /// The mean, if any round trip was measured.
    pub fn mean(&self) -> Option<u64> {
        self.total.checked_div(self.count)
    }
}

/// Exit counts by basic exit reason, and time spent in the guest, since it last (re)started: one
/// vCPU's, or a guest's totals ([`Stats::sum`]).
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

    /// The sum of several vCPUs' statistics (a guest's totals).
    pub fn sum<'a>(all: impl IntoIterator<Item = &'a Self>) -> Self {
        let mut total = Self::ZERO;
        for s in all {
            for (t, n) in total.by_reason.iter_mut().zip(s.by_reason) {
                *t += n;
            }
            total.tsc_in_guest += s.tsc_in_guest;
        }
        total
    }

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

impl Guest {
    /// The exit counts as "name count" pairs, for the end-of-run report.
    pub fn report(&self) {
        let stats = self.stats();
        let total = stats.total_exits();
        let mut line = String::new();
        for (name, n) in stats.nonzero() {
            line.push_str(&alloc::format!(", {name}: {n}"));
        }
        let state = match &self.state {
            State::Runnable => String::from("runnable"),
            State::Exited(code) => alloc::format!("exited with code {code:#x}"),
            State::Stopped(why) => alloc::format!("stopped ({why})"),
        };
        info!(
            "guest \"{}\": {state}; {total} exits{line}; {} TSC ticks in guest",
            self.name, stats.tsc_in_guest
        );
        if let Some(mean) = self.round_trips.mean() {
            let r = &self.round_trips;
            info!(
                "guest \"{}\": {} IPI round trip(s) between its vCPUs (sender's IPI exit to its next entry): min {}, mean {mean}, max {} TSC ticks",
                self.name, r.count, r.min, r.max
            );
        }
        if self.vcpus.len() > 1 {
            for c in &self.vcpus {
                info!(
                    "guest \"{}\": vCPU {}: {} exits, {} TSC ticks in guest, {} virtual interrupt(s) and {} NMI(s) injected{}",
                    self.name,
                    c.index,
                    c.stats.total_exits(),
                    c.stats.tsc_in_guest,
                    c.events.injected,
                    c.events.nmis,
                    if c.started() { "" } else { "; never started" }
                );
            }
        }
        let injected: u64 = self.vcpus.iter().map(|v| v.events.injected).sum();
        let reinjected: u64 = self.vcpus.iter().map(|v| v.events.reinjected).sum();
        if injected + reinjected > 0 {
            let last = (self.vcpus.iter().rev())
                .find_map(|v| v.events.last_vector)
                .map_or(String::new(), |v| alloc::format!(" (last vector {v:#x})"));
            info!(
                "guest \"{}\": {} virtual interrupt(s) injected{last}, {} event(s) re-injected after an exit during delivery, {} device interrupt(s) routed to it",
                self.name,
                injected,
                reinjected,
                crate::irq::guest_interrupts(self.id())
            );
        }
        if let Some(p) = self.platform.as_ref() {
            info!(
                "guest \"{}\": local APIC by {}; {} interrupt message(s) to nobody (IPIs to APIC IDs it does not own, NMI/INIT/SIPI/SMI IPIs, I/O APIC messages of those modes)",
                self.name,
                if p.apicv {
                    "APIC virtualization"
                } else {
                    "software emulation"
                },
                p.dropped
            );
        }
    }
}
