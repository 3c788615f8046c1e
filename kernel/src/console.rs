//! Choosing the console (`docs/console.md`): the kernel starts on COM1 at 115200 8N1 (before
//! memory, the configuration and ACPI exist); once the configuration, the ACPI tables and the PCI
//! device list are read, [`choose`] programs the configured UART (`[hypervisor] console` and
//! `baud`) and moves the log and the debug shell there, announcing the choice and its reason on
//! both the early console and the chosen one.

use crate::pci;
use crate::platform::Platform;
use alloc::borrow::Cow;
use alloc::format;
use alloc::string::String;
use conduit_config::{BootConfig, ConsoleChoice};
use conduit_hw::console;
use conduit_hw::memory::Memory;
use conduit_hw::serial::Uart;
use conduit_pci::{BarKind, Bdf, PciAddress};
use conduit_uart::spcr::{self, Registers, Spcr};
use log::{info, warn};

/// PCI Command register bits (PCI Local Bus Spec 3.0 §6.2.2): I/O space and memory space decode.
const COMMAND_IO: u16 = 1 << 0;
const COMMAND_MEMORY: u16 = 1 << 1;

/// A UART to try, the rate to program, and why it was picked.
struct Candidate {
    uart: Uart,
    /// Physical location for the log (`port 0x2f8`, `MMIO 0xfe032000 (32-bit registers)`).
    location: String,
    baud: u32,
    why: String,
}

/// Picks, programs and switches to the configured console; see the module documentation.
pub fn choose(config: &BootConfig, platform: &Platform, mem: &Memory) {
    let setting = format!("conduit.toml console = \"{}\"", config.console.name());
    let candidate = match config.console {
        ConsoleChoice::Com1 => Ok(legacy(Uart::com1(), config.baud, setting.clone())),
        ConsoleChoice::Com2 => Ok(legacy(Uart::com2(), config.baud, setting.clone())),
        ConsoleChoice::Auto | ConsoleChoice::Spcr => from_spcr(config, platform, mem, &setting),
    };
    let (mut candidate, fell_back) = match candidate {
        Ok(c) => (c, None),
        Err(why) => {
            let com1 = legacy(Uart::com1(), config.baud, format!("{setting}, and {why}"));
            (com1, (config.console == ConsoleChoice::Spcr).then_some(()))
        }
    };
    match console::open(&mut candidate.uart, candidate.baud) {
        Ok(back) => {
            let Candidate {
                uart,
                location,
                why,
                ..
            } = candidate;
            let name = uart.name.clone();
            console::switch(Some(uart), || {
                if fell_back.is_some() {
                    warn!("console: {name} at {location}, {back}; chosen because {why}");
                } else {
                    info!("console: {name} at {location}, {back}; chosen because {why}");
                }
                info!("console: the log and the debug shell continue on {name} at {location}");
            });
        }
        Err(e) => {
            // Stay where the output goes now (the early COM1, or nowhere).
            console::switch(None, || match console::current() {
                Some((name, location)) => warn!(
                    "console: {} at {} does not work ({e}; it was chosen because {}): the log \
                     and the debug shell stay on {name} at {location}",
                    candidate.uart.name, candidate.location, candidate.why
                ),
                None => warn!(
                    "console: {} at {}: {e}; no UART answers: boot goes on without a console",
                    candidate.uart.name, candidate.location
                ),
            });
        }
    }
}

/// COM1 or COM2 at the configured rate.
fn legacy(uart: Uart, baud: u32, why: String) -> Candidate {
    let location = uart.location();
    Candidate {
        uart,
        location,
        baud,
        why,
    }
}

/// The UART the SPCR names, else the DBG2's first 16550, or why there is none to use (then COM1
/// is used).
fn from_spcr(
    config: &BootConfig,
    platform: &Platform,
    mem: &Memory,
    setting: &str,
) -> Result<Candidate, String> {
    let Some(bytes) = platform.spcr else {
        return match platform.dbg2 {
            Some(dbg2) => from_dbg2(config, dbg2, mem, setting),
            None => Err(String::from("the firmware has no ACPI SPCR or DBG2 table")),
        };
    };
    let table = spcr::parse(bytes).map_err(|e| format!("the ACPI SPCR table is unusable: {e}"))?;
    // The SPCR's rate is the one the firmware's redirection (and a BMC's serial-over-LAN) uses.
    let (baud, rate_from) = match table.baud {
        Some(b) => (b, "the SPCR's baud rate"),
        None => (
            config.baud,
            "conduit.toml's baud rate (the SPCR says \"as is\")",
        ),
    };
    let (uart, location) = match table.pci {
        Some(card) => pci_card(&table, card, mem)?,
        None => match table.registers {
            Some(Registers::Io { base }) => {
                let name = match base {
                    conduit_hw::serial::COM1 => Cow::Borrowed("COM1"),
                    conduit_hw::serial::COM2 => Cow::Borrowed("COM2"),
                    _ => Cow::Borrowed("the SPCR's UART"),
                };
                (Uart::port(base, name), format!("port {base:#x}"))
            }
            Some(Registers::Mmio { base, stride }) => {
                let uart = Uart::mmio(mem, base, stride, Cow::Borrowed("the SPCR's UART"))
                    .map_err(|e| {
                        format!("the SPCR's MMIO UART at {base:#x} cannot be mapped: {e}")
                    })?;
                (
                    uart,
                    format!("MMIO {base:#x} ({}-bit registers)", stride * 8),
                )
            }
            None => return Err(String::from("the SPCR gives no address")),
        },
    };
    Ok(Candidate {
        uart,
        location,
        baud,
        why: format!("the ACPI SPCR table names it ({setting}; {rate_from})"),
    })
}

/// The first 16550-type serial port of the DBG2 (which gives no baud rate: `baud` applies).
fn from_dbg2(
    config: &BootConfig,
    bytes: &[u8],
    mem: &Memory,
    setting: &str,
) -> Result<Candidate, String> {
    let port = conduit_uart::dbg2::parse(bytes)
        .map_err(|e| format!("there is no SPCR and the ACPI DBG2 table is unusable: {e}"))?;
    let name = Cow::Owned(format!("the DBG2's UART {}", port.index));
    let (uart, location) = match port.registers {
        Registers::Io { base } => (Uart::port(base, name), format!("port {base:#x}")),
        Registers::Mmio { base, stride } => (
            Uart::mmio(mem, base, stride, name)
                .map_err(|e| format!("the DBG2's MMIO UART at {base:#x} cannot be mapped: {e}"))?,
            format!("MMIO {base:#x} ({}-bit registers)", stride * 8),
        ),
    };
    Ok(Candidate {
        uart,
        location,
        baud: config.baud,
        why: format!(
            "there is no SPCR and the ACPI DBG2 table lists it ({setting}; conduit.toml's baud \
             rate)"
        ),
    })
}

/// A PCI serial card the SPCR names: its BAR from the device list enumerated at boot (I/O BAR for
/// an I/O-space SPCR or one without an address, memory BAR for a memory-space one), decoding
/// enabled.
fn pci_card(table: &Spcr, card: spcr::PciUart, mem: &Memory) -> Result<(Uart, String), String> {
    let bdf = Bdf::new(card.bus, card.dev, card.func)
        .map(|b| PciAddress::new(u16::from(card.segment), b))
        .ok_or_else(|| format!("the SPCR names {card}, not an address enumerated at boot"))?;
    let function = pci::get()
        .and_then(|p| p.function_at(bdf))
        .ok_or_else(|| format!("the SPCR names {card}, but no such function was enumerated"))?;
    if (function.vendor_id(), function.device_id()) != (card.vendor, card.device) {
        return Err(format!(
            "the SPCR names {card}, but {bdf} is {:04x}:{:04x}",
            function.vendor_id(),
            function.device_id()
        ));
    }
    let want_mmio = matches!(table.registers, Some(Registers::Mmio { .. }));
    let bar = function
        .bars
        .iter()
        .find(|b| (b.kind == BarKind::Io) != want_mmio && b.address != 0)
        .ok_or_else(|| {
            format!(
                "{card} has no assigned {} BAR",
                if want_mmio { "memory" } else { "I/O" }
            )
        })?;
    let name = Cow::Owned(format!("PCI serial card {bdf}"));
    if want_mmio {
        let stride = match table.registers {
            Some(Registers::Mmio { stride, .. }) => stride,
            _ => 1,
        };
        pci::enable_command_bits_at(bdf, COMMAND_MEMORY)
            .ok_or_else(|| format!("{card}: its command register cannot be written"))?;
        let uart = Uart::mmio(mem, bar.address, stride, name)
            .map_err(|e| format!("{card}: BAR{} cannot be mapped: {e}", bar.index))?;
        let location = format!(
            "MMIO {:#x} (BAR{}, {}-bit registers)",
            bar.address,
            bar.index,
            stride * 8
        );
        Ok((uart, location))
    } else {
        let base = u16::try_from(bar.address).map_err(|_| {
            format!(
                "{card}: I/O BAR{} at {:#x} is above 0xffff",
                bar.index, bar.address
            )
        })?;
        pci::enable_command_bits_at(bdf, COMMAND_IO)
            .ok_or_else(|| format!("{card}: its command register cannot be written"))?;
        Ok((
            Uart::port(base, name),
            format!("port {base:#x} (I/O BAR{})", bar.index),
        ))
    }
}
