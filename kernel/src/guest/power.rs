//! Power and reset of a guest with a virtual platform: what its ACPI tables announce (ACPI 6.5
//! §4.8.3.7 "Sleep Control and Status Registers" of hardware-reduced ACPI, §4.8.3.6 "Reset
//! Register") and the legacy reset paths an x86 kernel also tries: the reset control register at
//! 0xCF9 (bit 2 "reset CPU") and the keyboard controller's pulse-reset command 0xFE on port 0x64.
//! A triple fault resets the processor like them (SDM Vol. 3A §6.15 "Double Fault Exception").
//!
//! S5 ends the guest ("powered off"); a reset stops it or builds it again from its image, as its
//! configuration says (`on_reset`). Only that guest is affected.

use super::{Guest, State};
use alloc::string::String;
use log::info;

/// The sleep control and status registers (one byte each) the guest's FADT names.
pub const SLEEP_CONTROL_PORT: u16 = 0x600;
pub const SLEEP_STATUS_PORT: u16 = 0x601;
/// The reset register the FADT names, and the value that resets (bit 2 with bit 1 "hard").
pub const RESET_PORT: u16 = 0xcf9;
pub const RESET_VALUE: u8 = 0x06;
/// The sleep type of S5 in the guest's DSDT (`\_S5`).
pub const S5_SLP_TYP: u8 = 5;
const KBC_COMMAND_PORT: u16 = 0x64;
const KBC_PULSE_RESET: u8 = 0xfe;
/// Sleep control register: SLP_TYP in bits 4:2, SLP_EN bit 5.
const SLP_EN: u8 = 1 << 5;
/// Reset control register: bit 2 starts the reset.
const RST_CPU: u8 = 1 << 2;
/// Sleep status register: WAK_STS (bit 7).
const WAK_STS: u8 = 1 << 7;

/// Whether `port` is one of the platform's power ports.
pub fn claims(g: &Guest, port: u16) -> bool {
    g.platform.is_some()
        && matches!(
            port,
            SLEEP_CONTROL_PORT | SLEEP_STATUS_PORT | RESET_PORT | KBC_COMMAND_PORT
        )
}

/// A byte written to a power port.
pub fn port_out(g: &mut Guest, port: u16, value: u8) {
    match port {
        SLEEP_CONTROL_PORT if value & SLP_EN != 0 => {
            let typ = (value >> 2) & 7;
            if typ == S5_SLP_TYP {
                g.power_off(String::from("ACPI S5 through the sleep control register"));
            } else {
                info!(
                    "guest \"{}\": sleep type {typ} is not supported (only S5); ignored",
                    g.name
                );
            }
        }
        RESET_PORT if value & RST_CPU != 0 => g.request_reset(alloc::format!(
            "reset through the reset control register (port {RESET_PORT:#x} = {value:#04x})"
        )),
        KBC_COMMAND_PORT if value == KBC_PULSE_RESET => g.request_reset(String::from(
            "reset through the keyboard controller (port 0x64 = 0xfe)",
        )),
        _ => {}
    }
}

/// A byte read from a power port: the sleep status register reports "woken" (never asleep);
/// the keyboard controller's status reads 0 (buffers empty: a reset command is taken at once);
/// the reset control register reads 0.
pub fn port_in(port: u16) -> u8 {
    match port {
        SLEEP_STATUS_PORT => WAK_STS,
        _ => 0,
    }
}

impl Guest {
    /// The guest turned itself off: it never runs again.
    pub fn power_off(&mut self, how: String) {
        self.uart.flush(&self.name);
        info!("guest \"{}\" powered off ({how})", self.name);
        self.state = State::Stopped(alloc::format!("powered off ({how})"));
    }

    /// The guest reset its processor: the scheduler restarts or stops it, as configured
    /// (`take_reset`).
    pub fn request_reset(&mut self, why: String) {
        self.uart.flush(&self.name);
        self.reset_request = Some(why);
    }

    /// The reset the guest asked for, if any (taken).
    pub fn take_reset(&mut self) -> Option<String> {
        self.reset_request.take()
    }
}
