//! Calibrated waits with deadlines: the TSC, measured once against the clock
//! [`super::delay`] uses (the ACPI PM timer, else the 8254 PIT's channel 2).
//!
//! [`super::delay`] busy-waits fixed times; drivers polling a device also need to stop polling
//! after a bound (NVMe's CAP.TO, a command timeout) without a second clock. The TSC ticks during
//! one 10 ms [`super::delay::wait_us`] give its rate; [`Deadline`] and [`wait_ms`] count TSC
//! ticks from then on.

use super::delay;
use super::rdtsc;
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Once;

/// The ACPI PM timer (ACPI 6.5 §4.8.3.3): a 3.579545 MHz counter in system I/O space, as the
/// FADT describes it (the kernel's `platform` reads the FADT).
#[derive(Debug, Clone, Copy)]
pub struct PmTimer {
    pub port: u16,
    /// 32-bit counter (FADT flag TMR_VAL_EXT); else 24-bit.
    pub bits32: bool,
}

/// The calibration wait: 10 ms.
const CALIBRATION_US: u64 = 10_000;

/// The PM timer the platform offers, if any (set once at boot).
static PM_TIMER: Once<Option<PmTimer>> = Once::new();
/// TSC ticks per millisecond; 0 until calibrated.
static TSC_PER_MS: AtomicU64 = AtomicU64::new(0);

/// Tells the calibration which clock to use; call once the ACPI tables are read.
pub fn init(pm_timer: Option<PmTimer>) {
    PM_TIMER.call_once(|| pm_timer);
}

/// TSC ticks per millisecond, measuring on first use.
pub fn tsc_per_ms() -> u64 {
    let known = TSC_PER_MS.load(Ordering::Relaxed);
    if known != 0 {
        return known;
    }
    let pm_timer = PM_TIMER.get().copied().flatten();
    let start = rdtsc();
    let clock = delay::wait_us(CALIBRATION_US, pm_timer);
    let ticks = rdtsc().wrapping_sub(start);
    let per_ms = (ticks / (CALIBRATION_US / 1000)).max(1);
    TSC_PER_MS.store(per_ms, Ordering::Relaxed);
    log::info!("time: TSC {per_ms} kHz (calibrated against the {clock})");
    per_ms
}

/// A point in time `ms` milliseconds from its creation.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    start: u64,
    ticks: u64,
}

impl Deadline {
    /// `ms` milliseconds from now.
    pub fn after_ms(ms: u64) -> Self {
        Self {
            start: rdtsc(),
            ticks: ms.saturating_mul(tsc_per_ms()),
        }
    }

    /// Has the time passed?
    pub fn expired(&self) -> bool {
        rdtsc().wrapping_sub(self.start) >= self.ticks
    }
}

/// Busy-waits `ms` milliseconds.
pub fn delay_ms(ms: u64) {
    let d = Deadline::after_ms(ms);
    while !d.expired() {
        core::hint::spin_loop();
    }
}

/// Polls `done` until it holds or `ms` milliseconds passed; returns whether it held.
pub fn wait_ms(ms: u64, mut done: impl FnMut() -> bool) -> bool {
    let d = Deadline::after_ms(ms);
    loop {
        if done() {
            return true;
        }
        if d.expired() {
            return done();
        }
        core::hint::spin_loop();
    }
}
