//! What the guest's writes to the registers the FADT names mean, for the kernel's port
//! emulation: the hardware-reduced sleep control register (ACPI 6.5 §4.8.3.7) and the reset
//! register (§4.8.3.6).

use crate::config::{ResetRegister, SleepRegisters};

/// `SLP_EN` (bit 5) and `SLP_TYP` (bits 4:2) of the sleep control register.
const SLP_EN: u8 = 1 << 5;
const SLP_TYP_SHIFT: u8 = 2;
const SLP_TYP_MASK: u8 = 0b111;

/// A byte the guest wrote to the sleep control register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SleepControl {
    /// `SLP_EN` with the `SLP_TYP` of `\_S5_`: power off.
    PowerOff,
    /// `SLP_EN` with another `SLP_TYP`: a sleep state the tables do not offer.
    Unsupported(u8),
    /// `SLP_EN` clear: nothing happens (the other bits are only latched, §4.8.3.7).
    Ignored,
}

impl SleepRegisters {
    /// Decodes a byte written to [`SleepRegisters::control_port`].
    pub fn control_write(&self, value: u8) -> SleepControl {
        if value & SLP_EN == 0 {
            return SleepControl::Ignored;
        }
        let typ = (value >> SLP_TYP_SHIFT) & SLP_TYP_MASK;
        if typ == self.s5_slp_typ {
            SleepControl::PowerOff
        } else {
            SleepControl::Unsupported(typ)
        }
    }
}

impl ResetRegister {
    /// Whether a one-byte write of `value` to `port` is the reset the FADT describes.
    pub fn is_reset(&self, port: u16, value: u8) -> bool {
        port == self.port && value == self.value
    }
}
