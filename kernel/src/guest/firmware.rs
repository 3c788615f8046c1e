//! The firmware tables of a guest that runs an operating system: ACPI (`conduit-guest-acpi`)
//! describing exactly the virtual platform the hypervisor emulates for it: one local APIC per
//! vCPU at [`LAPIC_GPA`], the I/O APIC at [`IOAPIC_GPA`], COM1 on GSI 4, the PCI root with its
//! ECAM window and BAR window with its `_PRT` (every device's INTx pins on inputs 16-23,
//! `intx.rs`), hardware-reduced power-off and reset through the ports `power.rs` serves
//! (ACPI 6.5 §4.1, §4.8.3.6, §4.8.3.7).

use super::devices::BAR_WINDOW;
use super::mmio::{ECAM_GPA, ECAM_LEN};
use super::vplatform::{IOAPIC_GPA, LAPIC_GPA};
use alloc::vec::Vec;
use conduit_bootproto::layout::{FIRMWARE_END, FIRMWARE_GPA};
use conduit_guest_acpi::{
    DEFAULT_OEM, GuestAcpi, IoApic, PCI_IO_WINDOWS, PciRoot, RESET, SLEEP, Serial, build,
};

/// The processor's reset vector, F000:FFF0 (SDM Vol. 3A §9.1.4 "First Instruction Executed").
const RESET_VECTOR: u64 = 0xf_fff0;

/// What the guest finds at the reset vector: the reset register's write, as a PC's firmware
/// would reset the machine when an OS jumps there to reboot (Linux's last reboot method on a
/// hardware-reduced ACPI platform without EFI: `machine_real_restart` leaves paging and protected
/// mode and jumps to F000:FFF0). 16-bit code: `mov dx, 0xcf9; mov al, 6; out dx, al; hlt; jmp $-1`.
const RESET_STUB: [u8; 10] = [0xba, 0xf9, 0x0c, 0xb0, 0x06, 0xee, 0xf4, 0xeb, 0xfd, 0x90];
const _: () =
    assert!(conduit_guest_acpi::RESET.port == 0xcf9 && conduit_guest_acpi::RESET.value == 6);
const _: () = assert!(RESET_VECTOR + RESET_STUB.len() as u64 <= FIRMWARE_END);

/// The firmware region of a guest with `vcpus` vCPUs (APIC IDs 0..vcpus), to be written at
/// `FIRMWARE_GPA`: the ACPI tables with the RSDP first, and the reset-vector code at 0xFFFF0.
pub fn acpi_tables(vcpus: u32) -> Result<Vec<u8>, conduit_guest_acpi::AcpiError> {
    let cpus: Vec<u32> = (0..vcpus).collect();
    let prt = super::intx::prt();
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
            prt: &prt,
        }),
        sleep: SLEEP,
        reset: RESET,
        serial: Some(Serial::COM1),
    };
    let stub_at = (RESET_VECTOR - FIRMWARE_GPA) as usize;
    let t = build(&cfg, FIRMWARE_GPA, stub_at)?;
    let mut bytes = t.bytes;
    bytes.resize(stub_at, 0);
    bytes.extend_from_slice(&RESET_STUB);
    Ok(bytes)
}
