//! The hypervisor's one clock: the TSC, its rate measured once at boot ([`init`]) against the
//! best reference the machine has, and every wait, deadline and time conversion from it.
//!
//! Reference: the ACPI PM timer ([`super::pm_timer`], 3.579545 MHz) where the FADT describes one,
//! else channel 2 of the 8254 ([`super::pit`], 1.193182 MHz). Three windows of 10 ms are measured
//! and the median kept: under an emulator the CPU thread can be descheduled inside one window,
//! which skews that one figure. What CPUID leaves 0x15/0x16 claim is compared and a disagreement
//! logged; the measurement wins ([`conduit_clock::select`]). If no reference works, the CPUID
//! figure is used, and without one there is no rate: [`rate`] answers `None`, and guests (whose
//! time slices and timers need it) are not started.
//!
//! Every user takes the rate from [`rate`]: preemption-timer slices, the control task's
//! watchdog, guests' virtual timers, the shell, the local APIC timer's calibration. Waits
//! ([`Deadline`], [`delay_us`], [`wait_ms`]) use [`wait_rate`]: the rate, or without one an
//! assumed 10 GHz TSC, so that a wait lasts at least as long as asked on any CPU. Every wait also
//! ends if its clock stops advancing, with the named error [`ClockStopped`], so that a stopped
//! time reference cannot hang the boot.

use super::pm_timer::{self, PmTimer};
use super::{pit, rdtsc};
use conduit_clock::{Cpuid, Leaf15, Leaf16, Rate, Selection, Source, StallDetector};
use core::fmt;
use spin::Once;

/// One calibration window, in microseconds.
const WINDOW_US: u64 = 10_000;
/// Windows measured; the median is kept.
const WINDOWS: usize = 3;
/// The TSC rate waits assume when none is known: faster than any CPU's, so waits are long enough.
const WAIT_FALLBACK: Rate = match Rate::from_khz(10_000_000) {
    Some(r) => r,
    None => panic!("non-zero"),
};

/// A reference clock the TSC was measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    PmTimer(PmTimer),
    Pit,
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PmTimer(t) => write!(f, "the ACPI PM timer at port {:#x}", t.port),
            Self::Pit => f.write_str("the 8254's channel 2"),
        }
    }
}

/// Why one reference gave no measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowError {
    PmTimer(pm_timer::Stopped),
    Pit(pit::Silent),
    /// The TSC did not advance during a window.
    TscStopped,
}

impl fmt::Display for WindowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PmTimer(e) => write!(f, "{e}"),
            Self::Pit(e) => write!(f, "{e}"),
            Self::TscStopped => f.write_str("the TSC did not advance during a 10 ms window"),
        }
    }
}

/// Why the TSC could not be calibrated: what each reference tried did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CalibrationError {
    /// The PM timer's failure; `None`: the machine describes no PM timer.
    pub pm_timer: Option<WindowError>,
    pub pit: WindowError,
}

impl fmt::Display for CalibrationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pm_timer {
            Some(e) => write!(f, "{e}; {}", self.pit),
            None => write!(f, "no ACPI PM timer; {}", self.pit),
        }
    }
}

/// The clock as set up at boot.
#[derive(Debug)]
struct Clock {
    selection: Selection<CalibrationError>,
    /// The reference of the measurement, if there is one.
    reference: Option<Reference>,
}

static CLOCK: Once<Clock> = Once::new();

/// Measures the TSC rate (once; later calls do nothing) and logs it with its reference and how
/// CPUID compares. Call as soon as the platform's description is read, before any wait.
pub fn init(pm_timer: Option<PmTimer>) {
    CLOCK.call_once(|| {
        let measured = calibrate(pm_timer);
        let reference = measured.as_ref().ok().map(|&(_, r)| r);
        let clock = Clock {
            selection: conduit_clock::select(measured.map(|(rate, _)| rate), &read_cpuid()),
            reference,
        };
        clock.log();
        clock
    });
}

impl Clock {
    fn log(&self) {
        let s = &self.selection;
        let Some(chosen) = s.chosen else {
            let why = self.no_rate_reason().unwrap_or_default();
            log::error!(
                "time: {why}: no guest will be started; waits assume a {WAIT_FALLBACK} TSC"
            );
            return;
        };
        match &s.measurement {
            Ok(_) => log::info!(
                "time: TSC {} ({}, median of {WINDOWS} windows of 10 ms; {})",
                chosen.rate,
                OriginOf(self),
                s.comparison()
            ),
            Err(e) => log::warn!(
                "time: the TSC could not be calibrated ({e}); TSC {} {} (not verified)",
                chosen.rate,
                OriginOf(self)
            ),
        }
    }

    fn no_rate_reason(&self) -> Option<alloc::string::String> {
        if self.selection.chosen.is_some() {
            return None;
        }
        Some(match &self.selection.measurement {
            Err(e) => alloc::format!(
                "the TSC rate is unknown: it could not be calibrated ({e}) and {}",
                self.selection.comparison()
            ),
            Ok(_) => alloc::string::String::from("the TSC rate is unknown"),
        })
    }
}

/// CPUID leaves 0x15 and 0x16, where the CPU has them.
fn read_cpuid() -> Cpuid {
    let cpuid = raw_cpuid::CpuId::new();
    Cpuid {
        leaf15: cpuid.get_tsc_info().map(|t| Leaf15 {
            denominator: t.denominator(),
            numerator: t.numerator(),
            crystal_hz: t.nominal_frequency(),
        }),
        leaf16: cpuid.get_processor_frequency_info().map(|f| Leaf16 {
            eax: u32::from(f.processor_base_frequency()),
        }),
    }
}

/// The median of [`WINDOWS`] windows against the PM timer if there is one and it works, else
/// against the 8254.
fn calibrate(pm_timer: Option<PmTimer>) -> Result<(Rate, Reference), CalibrationError> {
    let pm_error = match pm_timer {
        Some(t) => match median(|| pm_window(t)) {
            Ok(rate) => return Ok((rate, Reference::PmTimer(t))),
            Err(e) => {
                log::warn!("time: {e}: trying the 8254");
                Some(e)
            }
        },
        None => None,
    };
    median(pit_window)
        .map(|rate| (rate, Reference::Pit))
        .map_err(|pit| CalibrationError {
            pm_timer: pm_error,
            pit,
        })
}

fn median(mut window: impl FnMut() -> Result<Rate, WindowError>) -> Result<Rate, WindowError> {
    let mut rates = [WAIT_FALLBACK; WINDOWS];
    for r in &mut rates {
        *r = window()?;
    }
    conduit_clock::median(&mut rates).ok_or(WindowError::TscStopped)
}

/// One window against the PM timer: the TSC ticks while it counts 10 ms.
fn pm_window(t: PmTimer) -> Result<Rate, WindowError> {
    let ticks = (WINDOW_US * pm_timer::FREQUENCY_HZ).div_ceil(1_000_000);
    let mut start = 0;
    let counted = t
        .wait_ticks(ticks, || start = rdtsc())
        .map_err(WindowError::PmTimer)?;
    let tsc = rdtsc().wrapping_sub(start);
    Rate::measured(tsc, counted, pm_timer::FREQUENCY_HZ).ok_or(WindowError::TscStopped)
}

/// One window against the 8254's channel 2: the TSC ticks while it counts 10 ms.
fn pit_window() -> Result<Rate, WindowError> {
    let count = (WINDOW_US * u64::from(pit::FREQUENCY_HZ)).div_ceil(1_000_000);
    let mut start = 0;
    pit::channel2_wait(count as u16, || start = rdtsc()).map_err(WindowError::Pit)?;
    let tsc = rdtsc().wrapping_sub(start);
    Rate::measured(tsc, count, u64::from(pit::FREQUENCY_HZ)).ok_or(WindowError::TscStopped)
}

/// The TSC rate every user takes; `None`: neither measured nor stated by CPUID (or [`init`] has
/// not run).
pub fn rate() -> Option<Rate> {
    CLOCK.get().and_then(|c| c.selection.chosen).map(|c| c.rate)
}

/// Why [`rate`] is `None`, for refusals: `None` if there is a rate.
pub fn no_rate_reason() -> Option<alloc::string::String> {
    match CLOCK.get() {
        None => Some(alloc::string::String::from("the TSC was never calibrated")),
        Some(c) => c.no_rate_reason(),
    }
}

/// Where [`rate`] comes from, in words: `measured against the ACPI PM timer at port 0x608`, `as
/// CPUID 0x15 states`.
#[derive(Debug, Clone, Copy)]
pub struct Origin;

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match CLOCK.get() {
            Some(c) => write!(f, "{}", OriginOf(c)),
            None => f.write_str("not calibrated"),
        }
    }
}

struct OriginOf<'a>(&'a Clock);

impl fmt::Display for OriginOf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0.selection.chosen, self.0.reference) {
            (Some(c), Some(r)) if c.source == Source::Measured => {
                write!(f, "measured against {r}")
            }
            (Some(c), _) => write!(f, "as {} states", c.source),
            (None, _) => f.write_str("assumed for waits: the rate is unknown"),
        }
    }
}

/// The rate waits use: [`rate`], or an assumed 10 GHz TSC without one.
pub fn wait_rate() -> Rate {
    rate().unwrap_or(WAIT_FALLBACK)
}

/// Consecutive reads of the clock that may return the same value before a wait gives up: the
/// TSC advances between any two reads on every CPU and emulator (a read takes tens of cycles),
/// so 2^20 equal reads in a row mean the time reference has stopped.
const STILL_READS: u32 = 1 << 20;

/// A wait ended because its clock never advanced: without this, the wait would never end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockStopped {
    /// The value the clock kept reading.
    pub at: u64,
    /// How many times in a row.
    pub reads: u32,
}

impl fmt::Display for ClockStopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "clock stopped: the TSC read {:#x} {} times in a row, so the wait was abandoned \
             instead of hanging",
            self.at, self.reads
        )
    }
}

/// The time reference every wait reads: the TSC, or in the test image, after
/// [`freeze_for_test`], a clock that never advances.
fn now() -> u64 {
    #[cfg(feature = "selftest")]
    if let Some(at) = FROZEN.get().filter(|_| FROZEN_ON.load(Ordering::Acquire)) {
        return *at;
    }
    rdtsc()
}

#[cfg(feature = "selftest")]
static FROZEN: Once<u64> = Once::new();
#[cfg(feature = "selftest")]
static FROZEN_ON: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
#[cfg(feature = "selftest")]
use core::sync::atomic::Ordering;

/// Test image only: from now until [`thaw_for_test`], every wait reads a clock stuck at the
/// current TSC value (the time reference "stopped"), so that waits must end with
/// [`ClockStopped`] rather than hang.
#[cfg(feature = "selftest")]
pub fn freeze_for_test() -> u64 {
    let at = *FROZEN.call_once(rdtsc);
    FROZEN_ON.store(true, Ordering::Release);
    at
}

/// Test image only: waits read the TSC again.
#[cfg(feature = "selftest")]
pub fn thaw_for_test() {
    FROZEN_ON.store(false, Ordering::Release);
}

/// A point in time a given time from its creation, polled with [`Deadline::poll`].
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    start: u64,
    ticks: u64,
    stall: StallDetector,
}

impl Deadline {
    /// `us` microseconds from now.
    pub fn after_us(us: u64) -> Self {
        let start = now();
        Self {
            start,
            ticks: wait_rate().ticks_in_us(us),
            stall: StallDetector::new(start, STILL_READS),
        }
    }

    /// `ms` milliseconds from now.
    pub fn after_ms(ms: u64) -> Self {
        Self::after_us(ms.saturating_mul(1000))
    }

    /// Has the time passed? An error once the clock has read the same value [`STILL_READS`]
    /// times in a row: the deadline would never come.
    pub fn poll(&mut self) -> Result<bool, ClockStopped> {
        let t = now();
        if t.wrapping_sub(self.start) >= self.ticks {
            return Ok(true);
        }
        self.stall
            .observe(t)
            .map_err(|s| ClockStopped {
                at: s.at,
                reads: s.reads,
            })
            .map(|()| false)
    }
}

/// Busy-waits `us` microseconds; an error if the clock stopped (the wait was then shorter).
pub fn delay_us(us: u64) -> Result<(), ClockStopped> {
    let mut d = Deadline::after_us(us);
    while !d.poll()? {
        core::hint::spin_loop();
    }
    Ok(())
}

/// Busy-waits `ms` milliseconds; an error if the clock stopped.
pub fn delay_ms(ms: u64) -> Result<(), ClockStopped> {
    delay_us(ms.saturating_mul(1000))
}

/// Polls `done` until it holds (`Ok(true)`) or `ms` milliseconds passed (`Ok(false)`); an error
/// if the clock stopped before either.
pub fn wait_ms(ms: u64, mut done: impl FnMut() -> bool) -> Result<bool, ClockStopped> {
    let mut d = Deadline::after_ms(ms);
    loop {
        if done() {
            return Ok(true);
        }
        if d.poll()? {
            return Ok(done());
        }
        core::hint::spin_loop();
    }
}
