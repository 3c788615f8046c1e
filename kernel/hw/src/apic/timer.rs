//! The local APIC timer (SDM Vol. 3A §11.5.4): the hypervisor's periodic tick.
//!
//! Its input is the processor's bus or core crystal clock, whose rate the architecture does not
//! fix, so it is calibrated against the 8254's channel 2 (a known 1.193182 MHz): the timer counts
//! down from the maximum in one-shot mode while the PIT counts 10 ms, three times, and the median
//! is kept (under an emulator the CPU thread can be descheduled inside a window, which skews that
//! one measurement either way: measured 91502 instead of ~62500 counts/ms once in QEMU TCG). Then
//! it runs in periodic mode (LVT timer bits 18:17 = 01b) with the count for the tick rate asked
//! for.

use super::{Reg, read, write};
use crate::pit;

/// Divide Configuration value for "divide by 16" (bits 3, 1:0 = 0b0_11).
const DIVIDE_BY_16: u32 = 0b0011;
const LVT_MASKED: u32 = 1 << 16;
const LVT_PERIODIC: u32 = 1 << 17;
/// PIT ticks of the calibration window (10 ms at 1.193182 MHz).
const CALIBRATION_PIT_TICKS: u16 = 11_932;
const CALIBRATION_MS: u64 = 10;
/// Give up on the PIT after this many TSC ticks (seconds on any CPU).
const CALIBRATION_DEADLINE_TSC: u64 = 1 << 34;

/// The result of calibrating the timer against the PIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Calibration {
    /// Timer counts (after the divide-by-16) per millisecond.
    pub counts_per_ms: u32,
    /// TSC ticks per millisecond measured over the same window (for the log).
    pub tsc_per_ms: u64,
}

/// Why the timer could not be calibrated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerError {
    /// The local APIC is not initialised.
    NoApic,
    /// The PIT's channel 2 output never rose (no PIT, or port 0x61 not wired).
    PitSilent,
    /// The timer did not count.
    Stopped,
}

impl core::fmt::Display for TimerError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::NoApic => "the local APIC is not initialised",
            Self::PitSilent => "the 8254's channel 2 output never rose",
            Self::Stopped => "the local APIC timer did not count",
        })
    }
}

/// Windows measured; the median is kept.
const CALIBRATION_ROUNDS: usize = 3;

/// Measures the timer's rate against the PIT (the median of three 10 ms windows). The timer is
/// left masked.
pub fn calibrate() -> Result<Calibration, TimerError> {
    if !super::ready() {
        return Err(TimerError::NoApic);
    }
    let mut rounds = [Calibration {
        counts_per_ms: 0,
        tsc_per_ms: 0,
    }; CALIBRATION_ROUNDS];
    for r in &mut rounds {
        *r = measure()?;
    }
    rounds.sort_unstable_by_key(|c| c.counts_per_ms);
    Ok(rounds[CALIBRATION_ROUNDS / 2])
}

/// One 10 ms window.
fn measure() -> Result<Calibration, TimerError> {
    write(Reg::LvtTimer, LVT_MASKED);
    write(Reg::TimerDivide, DIVIDE_BY_16);
    let mut tsc_start = 0;
    let ok = pit::channel2_wait(CALIBRATION_PIT_TICKS, CALIBRATION_DEADLINE_TSC, || {
        write(Reg::TimerInitial, u32::MAX);
        tsc_start = crate::rdtsc();
    });
    let remaining = read(Reg::TimerCurrent);
    let tsc = crate::rdtsc().wrapping_sub(tsc_start);
    write(Reg::TimerInitial, 0);
    if !ok {
        return Err(TimerError::PitSilent);
    }
    let elapsed = u32::MAX - remaining;
    if elapsed == 0 {
        return Err(TimerError::Stopped);
    }
    Ok(Calibration {
        counts_per_ms: (u64::from(elapsed) / CALIBRATION_MS).max(1) as u32,
        tsc_per_ms: tsc / CALIBRATION_MS,
    })
}

/// Starts the periodic tick: `vector` every `period_ms` milliseconds. Returns the initial count.
pub fn start_periodic(cal: &Calibration, vector: u8, period_ms: u32) -> u32 {
    let count = cal.counts_per_ms.saturating_mul(period_ms.max(1));
    write(Reg::TimerDivide, DIVIDE_BY_16);
    write(Reg::LvtTimer, LVT_PERIODIC | u32::from(vector));
    write(Reg::TimerInitial, count);
    count
}
