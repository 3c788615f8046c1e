//! The 8254 programmable interval timer (Intel 82C54 data sheet; ports 0x40-0x43, and port 0x61
//! for channel 2's gate and output): the only module that touches those ports.
//!
//! Two uses: channel 2, gated through port 0x61 and polled on its output (bit 5), is a fixed
//! 1.193182 MHz reference that [`super::time`] measures the TSC against where the machine has no
//! ACPI PM timer, without any interrupt; and channel 0, whose output is ISA IRQ 0, is an
//! interrupt source that reaches the CPU through the I/O APIC (GSI 2 on PC platforms, per the
//! MADT's interrupt source override), used to prove remappable-format I/O APIC routing.

use x86_64::instructions::port::Port;

/// Input clock of every channel, in Hz.
pub const FREQUENCY_HZ: u32 = 1_193_182;

/// Polls of channel 2's output before a wait gives up: a count is at most 0xffff ticks (55 ms),
/// and one read of an I/O port takes far longer than 55 ms / 2^26 (0.8 ns) on any machine.
const POLL_LIMIT: u64 = 1 << 26;
/// TSC ticks before a wait gives up, whatever the TSC's rate: 2^31 ticks are 0.2 s at 10 GHz.
const TSC_LIMIT: u64 = 1 << 31;

/// Channel 2 does not behave as an 8254: no 8254, or port 0x61 does not reflect its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Silent {
    /// The output was already high after a mode 0 control word, which sets it low.
    NotLow,
    /// The output never rose.
    NeverRose,
}

impl core::fmt::Display for Silent {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::NotLow => {
                "the 8254's channel 2 output (port 0x61 bit 5) was high after programming"
            }
            Self::NeverRose => {
                "the 8254's channel 2 output never rose (2^26 reads or 2^31 TSC ticks of port 0x61)"
            }
        })
    }
}

#[cfg(feature = "selftest")]
const CHANNEL0: u16 = 0x40;
const CHANNEL2: u16 = 0x42;
const COMMAND: u16 = 0x43;
const PORT_B: u16 = 0x61;

/// Control word: channel in bits 7:6, access lobyte/hibyte (11b) in 5:4, mode in 3:1, binary.
const fn control(channel: u8, mode: u8) -> u8 {
    (channel << 6) | (0b11 << 4) | (mode << 1)
}

/// Port B: bit 0 gates channel 2, bit 1 enables the speaker, bit 5 reads channel 2's output.
const GATE2: u8 = 1 << 0;
const SPEAKER: u8 = 1 << 1;
const OUT2: u8 = 1 << 5;

fn write_count(port: u16, count: u16) {
    let mut data = Port::<u8>::new(port);
    // SAFETY: `port` is a channel's data port; after a lobyte/hibyte control word the channel
    // takes the count as two byte writes. Only this module touches the 8254's ports.
    unsafe {
        data.write(count as u8);
        data.write((count >> 8) as u8);
    }
}

fn command(value: u8) {
    // SAFETY: the mode/command register of the 8254, owned by this module.
    unsafe { Port::<u8>::new(COMMAND).write(value) };
}

/// Counts `count` ticks of channel 2 (mode 0, interrupt on terminal count) with the speaker off
/// and waits for its output to rise, calling `started` right after the gate opens. The gate is
/// closed again before returning.
pub fn channel2_wait(count: u16, started: impl FnOnce()) -> Result<(), Silent> {
    let mut port_b = Port::<u8>::new(PORT_B);
    // SAFETY: port 0x61 (NMI status and control / port B); only the gate and speaker bits are
    // changed, the others are written back as read. Channel 2 drives only the PC speaker, which
    // stays off, and only this module uses it.
    let b = unsafe { port_b.read() };
    // SAFETY: as above: gate low and speaker off while the channel is programmed.
    unsafe { port_b.write(b & !(GATE2 | SPEAKER)) };
    command(control(2, 0));
    write_count(CHANNEL2, count);
    // Mode 0 sets the output low on the control word (82C54 data sheet, "Mode 0"): a high
    // output now is not an 8254's (a port that reads all ones, say).
    // SAFETY: reading port B has no side effect.
    if unsafe { port_b.read() } & OUT2 != 0 {
        // SAFETY: as above: the gate and speaker bits restored to off.
        unsafe { port_b.write(b & !(GATE2 | SPEAKER)) };
        return Err(Silent::NotLow);
    }
    // SAFETY: as above: gate high starts the count; the speaker stays off.
    unsafe { port_b.write((b & !SPEAKER) | GATE2) };
    started();
    let start = super::rdtsc();
    let mut result = Err(Silent::NeverRose);
    for _ in 0..POLL_LIMIT {
        // SAFETY: reading port B has no side effect.
        if unsafe { port_b.read() } & OUT2 != 0 {
            result = Ok(());
            break;
        }
        if super::rdtsc().wrapping_sub(start) > TSC_LIMIT {
            break;
        }
        core::hint::spin_loop();
    }
    // SAFETY: as above: gate low again, speaker off.
    unsafe { port_b.write(b & !(GATE2 | SPEAKER)) };
    result
}

/// Starts channel 0 as a rate generator (mode 2) at about `hz` interrupts per second; returns the
/// divisor programmed.
#[cfg(feature = "selftest")]
pub fn start_channel0(hz: u32) -> u16 {
    let divisor = (FREQUENCY_HZ / hz.max(19)).clamp(2, 0xffff) as u16;
    command(control(0, 2));
    write_count(CHANNEL0, divisor);
    divisor
}

/// Stops channel 0's interrupts: a mode 0 control word without a count holds its output low.
#[cfg(feature = "selftest")]
pub fn stop_channel0() {
    command(control(0, 0));
}
