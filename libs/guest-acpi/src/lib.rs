//! The ACPI tables a Conduit guest finds in its memory instead of firmware: enough for an
//! unmodified OS (Linux first) to discover its CPUs, local APICs and I/O APIC, its PCI root with
//! the static interrupt routing, its console UART, and how to power off and reset, on its own.
//!
//! The platform described is *hardware-reduced ACPI* (ACPI 6.5 §4.1): no PM1 event/control
//! blocks, no PM timer, no GPE blocks and no SCI; power-off goes through the FADT's
//! `SLEEP_CONTROL_REG` (§4.8.3.7) and reset through `RESET_REG` (§4.8.3.6), both I/O ports the
//! kernel emulates. The set built by [`build`], at consecutive 16-byte aligned offsets of one blob:
//!
//! | table | ACPI 6.5 | contents |
//! |---|---|---|
//! | RSDP | §5.2.5 | revision 2, the XSDT's address, both checksums; first in the blob |
//! | XSDT | §5.2.8 | FADT, MADT, MCFG (when the guest has a PCI root) |
//! | FADT | §5.2.9 | revision 6.5, `HW_REDUCED_ACPI`, `RESET_REG_SUP`, `IAPC_BOOT_ARCH` (no 8042, no VGA, no CMOS RTC, no ASPM), `SLEEP_CONTROL_REG`/`SLEEP_STATUS_REG`, `RESET_REG`/`RESET_VALUE`, `X_DSDT`, hypervisor vendor identity `"Conduit"` |
//! | MADT | §5.2.12 | local APIC address, `PCAT_COMPAT` clear (no 8259), one enabled Processor Local APIC per vCPU, the I/O APIC, the configured interrupt source overrides, a Local APIC NMI on LINT1 for all processors |
//! | MCFG | PCI Firmware Spec 3.3 §4.1.2 | the ECAM window, segment 0, buses 0..=`bus_end` |
//! | DSDT | §5.2.11.1, §19 | `\_SB.ECAM` (`PNP0C02`: the ECAM window as a motherboard resource; Linux uses an MCFG window only if it is reserved, in the e820 map or so), `\_SB.PCI0` (`PNP0A08`/`PNP0A03`, `_SEG`, `_BBN`, `_UID`, `_CRS` bus range + I/O windows + 32-bit memory window, `_PRT` with static GSIs), `\_SB.COM1` (`PNP0501`, its ports and interrupt), `\_S5_` |
//!
//! There is no FACS (a hardware-reduced platform may omit it: FADT `FIRMWARE_CTRL` and
//! `X_FIRMWARE_CTRL` are zero, ACPI 6.5 §5.2.10) and no SPCR (the guest's console is named on its
//! command line, `console=ttyS0`).
//!
//! What Linux makes of these tables: with `HW_REDUCED_ACPI` it uses no 8259 (its legacy PIC is
//! the null one, so there are no pre-assigned ISA IRQs 0-15) and sets up no PIT timer interrupt;
//! ISA interrupts reach it only through ACPI devices, which is why the UART is in the DSDT (its
//! `_CRS` interrupt is a GSI; an interrupt source override would not create the ISA IRQ). PCI
//! interrupts come from `_PRT` (level, active low). It uses the MCFG window only once it is
//! reserved (`\_SB.ECAM` or the e820 map). It powers off by writing `SLP_TYP << 2 | SLP_EN`
//! (0x34 with [`SLEEP`]) to the sleep control port after writing `WAK_STS` (0x80) to the status
//! port, and reboots first through the reset register (0x06 to 0xCF9 with [`RESET`]).
//!
//! [`power`] decodes the guest's writes to the sleep control and reset registers described here.
//!
//! ```
//! use conduit_guest_acpi::{build, GuestAcpi, IoApic, PciRoot, Pin, PrtEntry, Serial};
//! use conduit_guest_acpi::{DEFAULT_OEM, LAPIC_ADDR, PCI_IO_WINDOWS, RESET, SLEEP};
//!
//! let prt = [PrtEntry { device: 1, pin: Pin::IntA, gsi: 16 }];
//! let cfg = GuestAcpi {
//!     oem: DEFAULT_OEM,
//!     cpus: &[0],
//!     lapic_addr: LAPIC_ADDR,
//!     ioapic: IoApic::DEFAULT,
//!     isa_overrides: &[],
//!     pci: Some(PciRoot {
//!         ecam_base: 0xe000_0000,
//!         bus_end: 0,
//!         mmio32: 0xc000_0000..0xe000_0000,
//!         io: &PCI_IO_WINDOWS,
//!         prt: &prt,
//!     }),
//!     sleep: SLEEP,
//!     reset: RESET,
//!     serial: Some(Serial::COM1),
//! };
//! let tables = build(&cfg, 0xe0000, 0x2_0000).expect("fits");
//! assert_eq!(tables.rsdp_gpa, 0xe0000);
//! assert_eq!(&tables.bytes[..8], b"RSD PTR ");
//! ```
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

extern crate alloc;

mod config;
mod dsdt;
mod madt;
pub mod power;
mod tables;

#[cfg(test)]
mod tests;

pub use config::{
    DEFAULT_OEM, GuestAcpi, IOAPIC_ADDR, IoApic, IsaOverride, LAPIC_ADDR, Oem, PCI_GSI_BASE,
    PCI_IO_WINDOWS, PciRoot, Pin, Polarity, PrtEntry, RESET, ResetRegister, SLEEP, Serial,
    SleepRegisters, Trigger, intx_gsi,
};
pub use tables::{Tables, build};

/// Why a table set was not built: the configuration would describe a machine that does not
/// exist, or the tables do not fit where the kernel wants them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcpiError {
    /// The guest has no CPU.
    #[error("the guest has no CPU")]
    NoCpus,
    /// A local APIC ID above 254: the Processor Local APIC structure holds 8 bits and 0xFF is
    /// the broadcast ID (ACPI 6.5 §5.2.12.2).
    #[error("local APIC ID {0} above 254")]
    ApicIdTooLarge(u32),
    /// The same local APIC ID twice.
    #[error("local APIC ID {0} given twice")]
    DuplicateApicId(u32),
    /// An I/O APIC with no pins, or more than an I/O APIC's 240 redirection entries.
    #[error("an I/O APIC with {0} pins (1..=240)")]
    IoApicPins(u8),
    /// A GSI that the guest's one I/O APIC does not serve.
    #[error("GSI {0} is not served by the I/O APIC")]
    GsiOutOfRange(u32),
    /// An interrupt source override for an ISA IRQ above 15, or twice for the same IRQ.
    #[error("interrupt source override for ISA IRQ {0}: above 15 or given twice")]
    IsaIrq(u8),
    /// A `_PRT` entry for a device number above 31, or twice for the same device and pin.
    #[error("_PRT entry for device {device}, {pin:?}: device above 31 or given twice")]
    PrtEntry {
        /// The PCI device number.
        device: u8,
        /// Its interrupt pin.
        pin: Pin,
    },
    /// The ECAM base is not 1 MiB aligned, or its window does not end below 4 GiB.
    #[error("ECAM base {0:#x}: not 1 MiB aligned or the window does not end below 4 GiB")]
    EcamBase(u64),
    /// The 32-bit memory window is empty, not page-aligned, or reaches past 4 GiB.
    #[error("the 32-bit memory window is empty, not page-aligned or reaches past 4 GiB")]
    MmioWindow,
    /// An I/O window is empty, or the PCI root has none.
    #[error("no I/O window, or an empty one")]
    IoWindow,
    /// Two of the fixed registers (sleep control, sleep status, reset, the UART's eight ports
    /// and the PCI configuration ports 0xCF8..=0xCFF) share the port.
    #[error("two fixed registers share I/O port {0:#x}")]
    PortCollision(u16),
    /// `SLP_TYP` must fit the 3-bit field of the sleep control register (ACPI 6.5 §4.8.3.7).
    #[error("SLP_TYP {0} does not fit 3 bits")]
    SleepType(u8),
    /// The blob's base is not 16-byte aligned (the legacy RSDP scan looks at 16-byte
    /// boundaries, ACPI 6.5 §5.2.5.1) or it does not lie below 4 GiB.
    #[error("base {0:#x}: not 16-byte aligned or not below 4 GiB")]
    Base(u64),
    /// The tables need `need` bytes, more than the `len` the caller offered.
    #[error("the tables need {need} bytes, {len} available")]
    TooLarge {
        /// Bytes the table set takes.
        need: usize,
        /// Bytes available.
        len: usize,
    },
}
