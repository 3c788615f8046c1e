//! Busy-wait delays against a clock of known frequency, for waits that specifications state in
//! wall-clock time (e.g. the 100 ms after setting SR-IOV VF Enable).
//!
//! Preferred clock: the ACPI PM timer (ACPI 6.5 §4.8.3.3), a free-running 3.579545 MHz counter
//! of 24 or 32 bits that the FADT locates. Without one (hardware-reduced ACPI, no ACPI at all):
//! channel 2 of the 8254 PIT (1.193182 MHz), counted down in mode 0 with its gate opened
//! through port 0x61 and its OUT pin read back there (the method firmware uses to calibrate the
//! TSC). The TSC is not used: its rate is unknown under emulators.

use crate::time::PmTimer;
use x86_64::instructions::port::Port;

/// PM timer frequency in Hz.
const PM_TIMER_HZ: u64 = 3_579_545;
/// PIT input clock in Hz.
const PIT_HZ: u64 = 1_193_182;
/// NMI status and control: bit 0 gates PIT channel 2, bit 1 drives the speaker, bit 5 reads
/// channel 2's OUT.
const PORT_B: u16 = 0x61;
const PIT_CHANNEL2: u16 = 0x42;
const PIT_COMMAND: u16 = 0x43;

/// The clock a delay was measured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    PmTimer { port: u16 },
    Pit,
}

impl core::fmt::Display for Clock {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::PmTimer { port } => write!(f, "ACPI PM timer at port {port:#x}"),
            Self::Pit => write!(f, "PIT channel 2"),
        }
    }
}

/// Spins for at least `us` microseconds; returns the clock used.
pub fn wait_us(us: u64, pm_timer: Option<PmTimer>) -> Clock {
    match pm_timer {
        Some(t) => {
            pm_wait(t, us);
            Clock::PmTimer { port: t.port }
        }
        None => {
            pit_wait(us);
            Clock::Pit
        }
    }
}

fn pm_read(t: PmTimer) -> u32 {
    // SAFETY: the FADT names this port as the PM timer's counter register, which is read-only
    // and has no side effects on reading.
    unsafe { Port::<u32>::new(t.port).read() }
}

fn pm_wait(t: PmTimer, us: u64) {
    let mask: u64 = if t.bits32 { 0xffff_ffff } else { 0x00ff_ffff };
    let ticks = us.saturating_mul(PM_TIMER_HZ).div_ceil(1_000_000);
    let mut elapsed = 0u64;
    let mut last = u64::from(pm_read(t)) & mask;
    // Accumulate the wrapping difference between successive reads: the counter wraps every
    // ~4.7 s (24-bit) or ~20 min (32-bit), far longer than one loop iteration.
    while elapsed < ticks {
        core::hint::spin_loop();
        let now = u64::from(pm_read(t)) & mask;
        elapsed += now.wrapping_sub(last) & mask;
        last = now;
    }
}

fn pit_wait(us: u64) {
    let mut remaining = us.saturating_mul(PIT_HZ).div_ceil(1_000_000);
    while remaining > 0 {
        let chunk = remaining.min(0xffff);
        pit_countdown(chunk as u16);
        remaining -= chunk;
    }
}

/// Counts `count` PIT ticks on channel 2 (mode 0: OUT rises when the count reaches zero).
fn pit_countdown(count: u16) {
    let mut port_b = Port::<u8>::new(PORT_B);
    let mut command = Port::<u8>::new(PIT_COMMAND);
    let mut data = Port::<u8>::new(PIT_CHANNEL2);
    // SAFETY: ports 0x42, 0x43 and 0x61 are the legacy PIT and NMI status/control registers.
    // Channel 2 drives only the PC speaker, which stays off (bit 1 of port 0x61 cleared); no
    // other part of Conduit uses the PIT.
    unsafe {
        let saved = port_b.read();
        port_b.write(saved & !0x03);
        // Channel 2, lobyte/hibyte, mode 0, binary.
        command.write(0b1011_0000);
        data.write(count as u8);
        data.write((count >> 8) as u8);
        // Open the gate: counting starts.
        port_b.write((saved & !0x02) | 0x01);
        while port_b.read() & 0x20 == 0 {
            core::hint::spin_loop();
        }
        port_b.write(saved & !0x02);
    }
}
