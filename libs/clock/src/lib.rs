//! The TSC rate for Conduit, pure and host-tested: which figure to trust, and conversions between
//! time and TSC ticks.
//!
//! The kernel measures the TSC against a reference clock of known frequency (the ACPI PM timer,
//! ACPI 6.5 §4.8.3.3, or the 8254's channel 2) and reads what the CPU claims about it:
//! - CPUID leaf 0x15 (SDM Vol. 2A, CPUID, "Time Stamp Counter and Nominal Core Crystal Clock
//!   Information Leaf"): EAX/EBX is the TSC / crystal clock ratio (EBX = 0: not enumerated) and
//!   ECX the crystal clock in Hz (0: not enumerated); TSC Hz = ECX × EBX / EAX ([`Leaf15`]).
//! - CPUID leaf 0x16 ("Processor Frequency Information Leaf"): EAX bits 15:0 the processor base
//!   frequency in MHz (0: not enumerated), which the SDM gives as the nominal TSC rate where
//!   leaf 0x15 does not ([`Leaf16`]).
//!
//! [`select`] applies the rule: a measurement wins; without one, leaf 0x15 if it yields a
//! frequency, else leaf 0x16; else there is no rate (and the kernel starts no guest). A claim that
//! differs from the measurement by more than 1 % is reported ([`Selection::disagreement`]): an
//! emulator's CPUID describes the CPU it models, not the speed at which it runs (Bochs' Tiger
//! Lake model claims 2419.2 MHz in leaf 0x15 while its TSC counts 50 million instructions a
//! second).
//!
//! Guests are told the chosen rate, not the CPU model's claim: [`guest_leaf15`] and
//! [`guest_leaf16`] are what the hypervisor answers to their CPUID leaves 0x15 and 0x16.
//!
//! [`StallDetector`] tells a wait whose clock stopped from a long one, so that every wait ends.
//!
//! [`Rate`] holds kHz, not MHz: a 50 MHz emulated TSC and a 2.6 GHz one both need that
//! resolution; its conversions compute in 128 bits and saturate.
#![cfg_attr(not(test), no_std)]

use core::fmt;

/// A TSC rate, in kHz (never zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rate {
    khz: u64,
}

/// `a × b / c`, rounded to the nearest integer, saturated to `u64` (`c` non-zero).
fn mul_div_round(a: u64, b: u64, c: u64) -> u64 {
    let (a, b, c) = (u128::from(a), u128::from(b), u128::from(c));
    let q = (a * b + c / 2) / c;
    u64::try_from(q).unwrap_or(u64::MAX)
}

/// `a × b / c`, rounded down, saturated to `u64` (`c` non-zero).
fn mul_div_floor(a: u64, b: u64, c: u64) -> u64 {
    let q = u128::from(a) * u128::from(b) / u128::from(c);
    u64::try_from(q).unwrap_or(u64::MAX)
}

impl Rate {
    /// `khz` kHz; `None` for 0.
    pub const fn from_khz(khz: u64) -> Option<Self> {
        if khz == 0 { None } else { Some(Self { khz }) }
    }

    /// `hz` Hz, rounded to the nearest kHz; `None` below 500 Hz.
    pub fn from_hz(hz: u64) -> Option<Self> {
        Self::from_khz(mul_div_round(hz, 1, 1000))
    }

    /// The rate of a TSC that advanced `tsc_ticks` while a reference clock of `reference_hz`
    /// advanced `reference_ticks`; `None` if either count is 0 (nothing to divide by, or a TSC
    /// that did not move).
    pub fn measured(tsc_ticks: u64, reference_ticks: u64, reference_hz: u64) -> Option<Self> {
        if reference_ticks == 0 || reference_hz == 0 {
            return None;
        }
        let khz = u128::from(tsc_ticks) * u128::from(reference_hz);
        let divisor = u128::from(reference_ticks) * 1000;
        let khz = (khz + divisor / 2) / divisor;
        Self::from_khz(u64::try_from(khz).unwrap_or(u64::MAX))
    }

    /// The rate in kHz.
    pub const fn khz(self) -> u64 {
        self.khz
    }

    /// TSC ticks in `us` microseconds (rounded down, saturated).
    pub fn ticks_in_us(self, us: u64) -> u64 {
        mul_div_floor(us, self.khz, 1000)
    }

    /// TSC ticks in `ms` milliseconds (saturated).
    pub fn ticks_in_ms(self, ms: u64) -> u64 {
        ms.saturating_mul(self.khz)
    }

    /// Whole microseconds in `ticks` TSC ticks (rounded down).
    pub fn us_in_ticks(self, ticks: u64) -> u64 {
        mul_div_floor(ticks, 1000, self.khz)
    }

    /// How far `other` is from `self`, in hundredths of a percent of `self` (rounded down).
    pub fn hundredths_of_percent_off(self, other: Rate) -> u64 {
        mul_div_floor(self.khz.abs_diff(other.khz), 10_000, self.khz)
    }

    /// Whether `other` is within 1 % of `self`.
    pub fn agrees_with(self, other: Rate) -> bool {
        u128::from(self.khz.abs_diff(other.khz)) * 100 <= u128::from(self.khz)
    }
}

/// `50.001 MHz`: MHz with three decimals (the full kHz resolution).
impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03} MHz", self.khz / 1000, self.khz % 1000)
    }
}

/// The median of some measurements (the upper one of an even count); `None` if there are none.
/// Sorts `rates`.
pub fn median(rates: &mut [Rate]) -> Option<Rate> {
    rates.sort_unstable();
    rates.get(rates.len() / 2).copied()
}

/// Why CPUID leaf 0x15 gives no TSC frequency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaf15Gap {
    /// EAX or EBX is 0: the TSC / crystal clock ratio is not enumerated.
    NoRatio,
    /// ECX is 0: the crystal clock frequency is not enumerated.
    NoCrystal,
}

impl fmt::Display for Leaf15Gap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoRatio => "leaf 0x15 enumerates no TSC/crystal ratio",
            Self::NoCrystal => "leaf 0x15 enumerates no crystal clock frequency",
        })
    }
}

/// CPUID leaf 0x15 as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leaf15 {
    /// EAX: the ratio's denominator.
    pub denominator: u32,
    /// EBX: the ratio's numerator.
    pub numerator: u32,
    /// ECX: the nominal core crystal clock in Hz.
    pub crystal_hz: u32,
}

impl Leaf15 {
    /// The TSC rate it states: crystal × numerator / denominator.
    pub fn rate(&self) -> Result<Rate, Leaf15Gap> {
        if self.denominator == 0 || self.numerator == 0 {
            return Err(Leaf15Gap::NoRatio);
        }
        if self.crystal_hz == 0 {
            return Err(Leaf15Gap::NoCrystal);
        }
        let hz = mul_div_round(
            u64::from(self.crystal_hz),
            u64::from(self.numerator),
            u64::from(self.denominator),
        );
        Rate::from_hz(hz).ok_or(Leaf15Gap::NoCrystal)
    }
}

/// CPUID leaf 0x16 as read: EAX.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leaf16 {
    pub eax: u32,
}

impl Leaf16 {
    /// The processor base frequency (EAX bits 15:0, MHz), if enumerated.
    pub fn rate(&self) -> Option<Rate> {
        Rate::from_khz(u64::from(self.eax & 0xffff) * 1000)
    }
}

/// What the CPU reports about its clocks; a leaf is `None` when it is beyond the maximum basic
/// leaf (CPUID 0: EAX).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cpuid {
    pub leaf15: Option<Leaf15>,
    pub leaf16: Option<Leaf16>,
}

/// Where a rate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Measured against a reference clock.
    Measured,
    /// CPUID leaf 0x15.
    Leaf15,
    /// CPUID leaf 0x16 (base frequency).
    Leaf16,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Measured => "measured",
            Self::Leaf15 => "CPUID 0x15",
            Self::Leaf16 => "CPUID 0x16",
        })
    }
}

/// A rate and where it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    pub rate: Rate,
    pub source: Source,
}

impl Cpuid {
    /// What the CPU claims: leaf 0x15 if it yields a frequency, else leaf 0x16's base frequency.
    pub fn claim(&self) -> Option<Choice> {
        if let Some(rate) = self.leaf15.and_then(|l| l.rate().ok()) {
            return Some(Choice {
                rate,
                source: Source::Leaf15,
            });
        }
        self.leaf16.and_then(|l| l.rate()).map(|rate| Choice {
            rate,
            source: Source::Leaf16,
        })
    }
}

/// A CPUID claim more than 1 % away from the measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disagreement {
    pub measured: Rate,
    pub claim: Choice,
    /// How far the claim is from the measurement, in hundredths of a percent.
    pub off: u64,
}

/// The outcome of [`select`]: the rate to use (if any), and what it was chosen from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection<E> {
    /// The rate every user takes; `None`: no rate at all.
    pub chosen: Option<Choice>,
    /// The measurement, or why there is none.
    pub measurement: Result<Rate, E>,
    /// What CPUID claims, if anything.
    pub claim: Option<Choice>,
    /// Why leaf 0x15, where the CPU has it, gives no frequency.
    pub leaf15_gap: Option<Leaf15Gap>,
}

/// Chooses the TSC rate: the measurement when there is one; else CPUID leaf 0x15, else 0x16;
/// else none.
pub fn select<E>(measurement: Result<Rate, E>, cpuid: &Cpuid) -> Selection<E> {
    let claim = cpuid.claim();
    let chosen = match &measurement {
        Ok(rate) => Some(Choice {
            rate: *rate,
            source: Source::Measured,
        }),
        Err(_) => claim,
    };
    Selection {
        chosen,
        measurement,
        claim,
        leaf15_gap: cpuid.leaf15.and_then(|l| l.rate().err()),
    }
}

impl<E> Selection<E> {
    /// The CPUID claim that is more than 1 % away from the measurement, if there is one.
    pub fn disagreement(&self) -> Option<Disagreement> {
        let measured = *self.measurement.as_ref().ok()?;
        let claim = self.claim?;
        (!measured.agrees_with(claim.rate)).then(|| Disagreement {
            measured,
            claim,
            off: measured.hundredths_of_percent_off(claim.rate),
        })
    }

    /// The comparison with CPUID, for the log: see [`Comparison`].
    pub fn comparison(&self) -> Comparison<'_, E> {
        Comparison(self)
    }
}

/// How the measurement compares with CPUID, in words: `CPUID 0x15 claims 2419.200 MHz: ignored
/// (4738.39 % off)`, `CPUID 0x16 claims 2600.000 MHz: agrees within 1 %`, `CPUID reports no TSC
/// frequency (leaf 0x15 enumerates no crystal clock frequency)`. Without a measurement: what
/// CPUID claims, or that it claims nothing.
#[derive(Debug)]
pub struct Comparison<'a, E>(&'a Selection<E>);

impl<E> fmt::Display for Comparison<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        match (s.claim, s.disagreement()) {
            (None, _) => {
                f.write_str("CPUID reports no TSC frequency")?;
                match s.leaf15_gap {
                    Some(gap) => write!(f, " ({gap})"),
                    None => Ok(()),
                }
            }
            (Some(claim), Some(d)) => write!(
                f,
                "{} claims {}: ignored ({}.{:02} % off)",
                claim.source,
                claim.rate,
                d.off / 100,
                d.off % 100
            ),
            (Some(claim), None) if s.measurement.is_ok() => {
                write!(
                    f,
                    "{} claims {}: agrees within 1 %",
                    claim.source, claim.rate
                )
            }
            (Some(claim), None) => write!(f, "{} claims {}", claim.source, claim.rate),
        }
    }
}

/// The crystal clock [`guest_leaf15`] states: 1 MHz, so that the ratio is the rate in kHz / 1000.
pub const GUEST_CRYSTAL_HZ: u32 = 1_000_000;

/// CPUID leaf 0x15 as a guest sees it: it states `rate` exactly (crystal 1 MHz, ratio
/// kHz / 1000), whatever the CPU's own leaf claims. The numerator saturates above 4.29 THz.
pub fn guest_leaf15(rate: Rate) -> Leaf15 {
    Leaf15 {
        denominator: 1000,
        numerator: u32::try_from(rate.khz).unwrap_or(u32::MAX),
        crystal_hz: GUEST_CRYSTAL_HZ,
    }
}

/// CPUID leaf 0x16 as a guest sees it (EAX, EBX, ECX): the base frequency is the TSC's rate in
/// MHz, rounded (at least 1, at most 65535); the maximum and bus frequencies are not enumerated
/// (0), since the CPU's own figures would not match the TSC's rate either.
pub fn guest_leaf16(rate: Rate) -> [u32; 3] {
    let mhz = mul_div_round(rate.khz, 1, 1000).clamp(1, 0xffff) as u32;
    [mhz, 0, 0]
}

mod stall;
pub use stall::{StallDetector, Stalled};

#[cfg(test)]
mod tests;
