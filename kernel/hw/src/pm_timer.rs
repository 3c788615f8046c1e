//! The ACPI power-management timer (ACPI 6.5 §4.8.3.3): a free-running 3.579545 MHz counter of 24
//! or 32 bits in system I/O space, located by the FADT (X_PM_TMR_BLK / PM_TMR_BLK, and flag
//! TMR_VAL_EXT for 32 bits). The owner of that port: [`super::time`] measures the TSC against it.
//!
//! Platform code finds it in the FADT and hands it over as a [`PmTimer`]; this module knows
//! nothing of ACPI tables.

use x86_64::instructions::port::Port;

/// The counter's frequency in Hz.
pub const FREQUENCY_HZ: u64 = 3_579_545;

/// Polls of the counter before a wait gives up: a wait is at most 55 ms here, and one read of an
/// I/O port takes far longer than 55 ms / 2^26 (0.8 ns) on any machine or emulator.
const POLL_LIMIT: u64 = 1 << 26;
/// TSC ticks before a wait gives up, whatever the TSC's rate: 2^31 ticks are 0.2 s at 10 GHz.
const TSC_LIMIT: u64 = 1 << 31;

/// The PM timer the FADT describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PmTimer {
    /// Its counter's I/O port.
    pub port: u16,
    /// 32-bit counter (FADT flag TMR_VAL_EXT); else 24-bit.
    pub bits32: bool,
}

/// A wait on the PM timer that did not end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    pub port: u16,
}

impl core::fmt::Display for Stopped {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "the ACPI PM timer at port {:#x} did not advance (2^26 reads or 2^31 TSC ticks)",
            self.port
        )
    }
}

impl PmTimer {
    fn mask(self) -> u64 {
        if self.bits32 {
            0xffff_ffff
        } else {
            0x00ff_ffff
        }
    }

    fn read(self) -> u64 {
        // SAFETY: the FADT names this port as the PM timer's counter register (ACPI 6.5
        // §4.8.3.3), which is read-only and has no side effects on reading; only this module
        // reads it.
        u64::from(unsafe { Port::<u32>::new(self.port).read() }) & self.mask()
    }

    /// Spins until the counter advanced at least `ticks` (at most 2^23, well within one wrap of
    /// a 24-bit counter); calls `started` right after the first read. Returns the ticks that
    /// actually passed between the first and the last read.
    pub fn wait_ticks(self, ticks: u64, started: impl FnOnce()) -> Result<u64, Stopped> {
        let mask = self.mask();
        let first = self.read();
        started();
        let tsc_start = super::rdtsc();
        for _ in 0..POLL_LIMIT {
            // The counter wraps every ~4.7 s (24-bit): the masked difference from the first read
            // is exact as long as the wait is shorter.
            let elapsed = self.read().wrapping_sub(first) & mask;
            if elapsed >= ticks {
                return Ok(elapsed);
            }
            if super::rdtsc().wrapping_sub(tsc_start) > TSC_LIMIT {
                break;
            }
            core::hint::spin_loop();
        }
        Err(Stopped { port: self.port })
    }
}
