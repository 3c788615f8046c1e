//! The firmware tables of a guest that runs an operating system: ACPI (`conduit-guest-acpi`)
//! describing exactly the virtual platform the hypervisor emulates for it: one local APIC per
//! vCPU at [`LAPIC_GPA`], the I/O APIC at [`IOAPIC_GPA`], COM1 on GSI 4, the PCI root with its
//! ECAM window and BAR window, hardware-reduced power-off and reset through the ports
//! `power.rs` serves (ACPI 6.5 §4.1, §4.8.3.6, §4.8.3.7).

use super::devices::BAR_WINDOW;
use super::mmio::{ECAM_GPA, ECAM_LEN};
use super::vplatform::{IOAPIC_GPA, LAPIC_GPA};
use alloc::vec::Vec;
use conduit_bootproto::layout::{FIRMWARE_END, FIRMWARE_GPA};
use conduit_guest_acpi::{
    DEFAULT_OEM, GuestAcpi, IoApic, PCI_IO_WINDOWS, PciRoot, RESET, SLEEP, Serial, build,
};

/// The ACPI tables of a guest with `vcpus` vCPUs (APIC IDs 0..vcpus), to be written at
/// `FIRMWARE_GPA` with the RSDP first.
pub fn acpi_tables(vcpus: u32) -> Result<Vec<u8>, conduit_guest_acpi::AcpiError> {
    let cpus: Vec<u32> = (0..vcpus).collect();
    let ioapic = IoApic {
        addr: IOAPIC_GPA as u32,
        ..IoApic::DEFAULT
    };
    let cfg = GuestAcpi {
        oem: DEFAULT_OEM,
        cpus: &cpus,
        lapic_addr: LAPIC_GPA as u32,
        ioapic,
        isa_overrides: &[],
        pci: Some(PciRoot {
            ecam_base: ECAM_GPA,
            bus_end: ((ECAM_LEN >> 20) - 1) as u8,
            mmio32: BAR_WINDOW,
            io: &PCI_IO_WINDOWS,
            prt: &[],
        }),
        sleep: SLEEP,
        reset: RESET,
        serial: Some(Serial::COM1),
    };
    let t = build(&cfg, FIRMWARE_GPA, (FIRMWARE_END - FIRMWARE_GPA) as usize)?;
    Ok(t.bytes)
}
