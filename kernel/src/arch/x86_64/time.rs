//! Calibrated waits: the TSC, measured once against the 8254 PIT's channel 2.
//!
//! Channel 2 (Intel 8254 datasheet; PC/AT ports 0x42 data, 0x43 mode/command, 0x61 gate and
//! OUT2 status) counts down at 1.193182 MHz. In mode 0 ("interrupt on terminal count") OUT2
//! rises when the count reaches zero; port 0x61 bit 0 gates the channel, bit 1 (speaker data)
//! stays clear, bit 5 reads OUT2. The TSC ticks during one 10 ms countdown give the TSC rate;
//! device drivers then wait with [`delay_ms`] and bound their polling with [`Deadline`].
//!
//! Where the PIT does not count (OUT2 never rises) a 3 GHz TSC is assumed and a warning logged:
//! waits are then only approximately right, never endless.

use super::rdtsc;
use core::sync::atomic::{AtomicU64, Ordering};
use x86_64::instructions::port::Port;

/// PIT input clock, Hz.
const PIT_HZ: u64 = 1_193_182;
/// The calibration countdown: 10 ms.
const CALIBRATION_MS: u64 = 10;
/// TSC ticks per millisecond assumed when the PIT cannot be used.
const FALLBACK_PER_MS: u64 = 3_000_000;
/// Spins after which a countdown that never finishes is given up.
const PIT_SPIN_LIMIT: u64 = 1 << 26;

const PORT_CH2: u16 = 0x42;
const PORT_MODE: u16 = 0x43;
const PORT_GATE: u16 = 0x61;
/// Mode/command: channel 2, lobyte/hibyte access, mode 0, binary.
const CH2_MODE0: u8 = 0b1011_0000;
const GATE: u8 = 1 << 0;
const SPEAKER: u8 = 1 << 1;
const OUT2: u8 = 1 << 5;

/// TSC ticks per millisecond; 0 until calibrated.
static TSC_PER_MS: AtomicU64 = AtomicU64::new(0);

/// Runs one mode-0 countdown of `count` PIT ticks; returns the TSC ticks it took, or `None` if
/// OUT2 never rose.
fn countdown(count: u16) -> Option<u64> {
    let mut gate = Port::<u8>::new(PORT_GATE);
    let mut mode = Port::<u8>::new(PORT_MODE);
    let mut data = Port::<u8>::new(PORT_CH2);
    // SAFETY: ports 0x42/0x43/0x61 are the PC's PIT channel 2 and its gate; only this module
    // uses them (the speaker stays off), and the sequence below is the datasheet's mode-0
    // programming: gate low, mode, count (low then high byte), gate high.
    unsafe {
        let old = gate.read();
        gate.write(old & !(GATE | SPEAKER));
        mode.write(CH2_MODE0);
        data.write(count as u8);
        data.write((count >> 8) as u8);
        let start = rdtsc();
        gate.write((old & !SPEAKER) | GATE);
        let mut spins = 0u64;
        while gate.read() & OUT2 == 0 {
            spins += 1;
            if spins > PIT_SPIN_LIMIT {
                gate.write(old & !SPEAKER);
                return None;
            }
            core::hint::spin_loop();
        }
        let ticks = rdtsc().wrapping_sub(start);
        gate.write(old & !(GATE | SPEAKER));
        Some(ticks)
    }
}

/// TSC ticks per millisecond, measuring on first use.
pub fn tsc_per_ms() -> u64 {
    let known = TSC_PER_MS.load(Ordering::Relaxed);
    if known != 0 {
        return known;
    }
    let count = (PIT_HZ * CALIBRATION_MS / 1000) as u16;
    let per_ms = match countdown(count) {
        Some(ticks) if ticks >= CALIBRATION_MS => ticks / CALIBRATION_MS,
        _ => {
            log::warn!(
                "time: the PIT's channel 2 does not count: assuming {} MHz TSC",
                FALLBACK_PER_MS / 1000
            );
            FALLBACK_PER_MS
        }
    };
    TSC_PER_MS.store(per_ms, Ordering::Relaxed);
    log::info!("time: TSC {per_ms} kHz (calibrated against the PIT's channel 2)");
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
