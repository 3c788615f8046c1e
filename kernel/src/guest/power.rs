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
use conduit_guest_acpi::power::SleepControl;
use conduit_guest_acpi::{ResetRegister, SleepRegisters};
use log::info;

/// The sleep registers and the reset register the guest's FADT names (`firmware.rs`).
const SLEEP: SleepRegisters = conduit_guest_acpi::SLEEP;
const RESET: ResetRegister = conduit_guest_acpi::RESET;
const KBC_COMMAND_PORT: u16 = 0x64;
const KBC_PULSE_RESET: u8 = 0xfe;
/// Reset control register at 0xCF9: bit 2 starts the reset, whatever the other bits say.
const RST_CPU: u8 = 1 << 2;
/// Sleep status register: WAK_STS (bit 7).
const WAK_STS: u8 = 1 << 7;

/// Whether `port` is one of the platform's power ports.
pub fn claims(g: &Guest, port: u16) -> bool {
    g.platform.is_some()
        && matches!(
            port,
            p if p == SLEEP.control_port
                || p == SLEEP.status_port
                || p == RESET.port
                || p == KBC_COMMAND_PORT
        )
}

/// A byte written to a power port.
pub fn port_out(g: &mut Guest, port: u16, value: u8) {
    if port == SLEEP.control_port {
        match SLEEP.control_write(value) {
            SleepControl::PowerOff => {
                g.power_off(String::from("ACPI S5 through the sleep control register"))
            }
            SleepControl::Unsupported(typ) => info!(
                "guest \"{}\": sleep type {typ} is not supported (only S5); ignored",
                g.name
            ),
            SleepControl::Ignored => {}
        }
    } else if port == RESET.port && (RESET.is_reset(port, value) || value & RST_CPU != 0) {
        g.request_reset(alloc::format!(
            "reset through the reset control register (port {port:#x} = {value:#04x})"
        ));
    } else if port == KBC_COMMAND_PORT && value == KBC_PULSE_RESET {
        g.request_reset(String::from(
            "reset through the keyboard controller (port 0x64 = 0xfe)",
        ));
    }
}

/// A byte read from a power port: the sleep status register reports "woken" (never asleep);
/// the keyboard controller's status reads 0 (buffers empty: a reset command is taken at once);
/// the reset control register reads 0.
pub fn port_in(port: u16) -> u8 {
    if port == SLEEP.status_port {
        WAK_STS
    } else {
        0
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
