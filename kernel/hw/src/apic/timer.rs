//! The local APIC timer (SDM Vol. 3A §11.5.4): the hypervisor's periodic tick.
//!
//! Its input is the processor's bus or core crystal clock, whose rate the architecture does not
//! fix, so it is measured against the TSC, whose rate [`time`] measured at boot: the timer counts
//! down from the maximum in one-shot mode for 10 ms of TSC ticks, three times, and the median is
//! kept (under an emulator the CPU thread can be descheduled inside a window, which skews that
//! one measurement either way: measured 91502 instead of ~62500 counts/ms once in QEMU TCG). Then
//! it runs in periodic mode (LVT timer bits 18:17 = 01b) with the count for the tick rate asked
//! for.

use super::{Reg, read, write};
use crate::time;
use conduit_clock::Rate;

/// Divide Configuration value for "divide by 16" (bits 3, 1:0 = 0b0_11).
const DIVIDE_BY_16: u32 = 0b0011;
const LVT_MASKED: u32 = 1 << 16;
const LVT_PERIODIC: u32 = 1 << 17;
/// One calibration window.
pub const CALIBRATION_MS: u64 = 10;
/// Windows measured; the median is kept.
const CALIBRATION_ROUNDS: usize = 3;

/// The result of calibrating the timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Calibration {
    /// Timer counts (after the divide-by-16) per millisecond.
    pub counts_per_ms: u32,
    /// The TSC rate it was measured with.
    pub tsc: Rate,
}

/// Why the timer could not be calibrated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerError {
    /// The local APIC is not initialised.
    NoApic,
    /// The TSC's rate is unknown (see [`time`]).
    NoClock,
    /// The TSC stopped during a window (the one clock's [`time::Deadline`] never came).
    TscStopped(time::ClockStopped),
    /// The timer did not count.
    Stopped,
}

impl core::fmt::Display for TimerError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoApic => f.write_str("the local APIC is not initialised"),
            Self::NoClock => f.write_str("the TSC rate is unknown"),
            Self::TscStopped(e) => write!(f, "during a {CALIBRATION_MS} ms window: {e}"),
            Self::Stopped => f.write_str("the local APIC timer did not count"),
        }
    }
}

/// Measures the timer's rate against the TSC (the median of three 10 ms windows). The timer is
/// left masked.
pub fn calibrate() -> Result<Calibration, TimerError> {
    if !super::ready() {
        return Err(TimerError::NoApic);
    }
    let tsc = time::rate().ok_or(TimerError::NoClock)?;
    let mut rounds = [0u32; CALIBRATION_ROUNDS];
    for r in &mut rounds {
        *r = measure()?;
    }
    rounds.sort_unstable();
    Ok(Calibration {
        counts_per_ms: rounds[CALIBRATION_ROUNDS / 2],
        tsc,
    })
}

/// One window of [`CALIBRATION_MS`] on the one clock (a [`time::Deadline`], which ends with an
/// error if the TSC stops): the timer's counts per millisecond. [`calibrate`] checked that the
/// TSC's rate is known, so the window is that many ms of the measured rate.
fn measure() -> Result<u32, TimerError> {
    write(Reg::LvtTimer, LVT_MASKED);
    write(Reg::TimerDivide, DIVIDE_BY_16);
    write(Reg::TimerInitial, u32::MAX);
    let mut window = time::Deadline::after_ms(CALIBRATION_MS);
    let ended = loop {
        match window.poll() {
            Ok(true) => break Ok(()),
            Ok(false) => core::hint::spin_loop(),
            Err(e) => break Err(e),
        }
    };
    let remaining = read(Reg::TimerCurrent);
    write(Reg::TimerInitial, 0);
    ended.map_err(TimerError::TscStopped)?;
    let elapsed = u32::MAX - remaining;
    if elapsed == 0 {
        return Err(TimerError::Stopped);
    }
    Ok((u64::from(elapsed) / CALIBRATION_MS).max(1) as u32)
}

/// Starts the periodic tick: `vector` every `period_ms` milliseconds. Returns the initial count.
pub fn start_periodic(cal: &Calibration, vector: u8, period_ms: u32) -> u32 {
    let count = cal.counts_per_ms.saturating_mul(period_ms.max(1));
    write(Reg::TimerDivide, DIVIDE_BY_16);
    write(Reg::LvtTimer, LVT_PERIODIC | u32::from(vector));
    write(Reg::TimerInitial, count);
    count
}
