//! Host tests: the tables read back with independent parsers, the `acpi` crate for the static
//! tables and the `aml` crate for the DSDT, over a fake guest memory holding the blob.

mod dsdt;
mod intx;
mod refusals;

use crate::{
    DEFAULT_OEM, GuestAcpi, IoApic, IsaOverride, LAPIC_ADDR, PCI_IO_WINDOWS, PciRoot, Pin,
    Polarity, PrtEntry, RESET, SLEEP, Serial, Tables, Trigger, build,
};
use acpi::fadt::Fadt;
use acpi::mcfg::{Mcfg, PciConfigRegions};
use acpi::platform::ProcessorState;
use acpi::platform::interrupt::{LocalInterruptLine, NmiProcessor};
use acpi::{AcpiHandler, AcpiTables, InterruptModel, PhysicalMapping};
use std::ptr::NonNull;
use std::rc::Rc;

const BASE: u64 = 0xe0000;
const LEN: usize = 0x2_0000;
const ECAM: u64 = 0xe000_0000;
const CPUS: [u32; 3] = [0, 2, 5];
const PRT: [PrtEntry; 3] = [
    PrtEntry {
        device: 1,
        pin: Pin::IntA,
        gsi: 16,
    },
    PrtEntry {
        device: 2,
        pin: Pin::IntB,
        gsi: 17,
    },
    PrtEntry {
        device: 31,
        pin: Pin::IntD,
        gsi: 23,
    },
];
const TIMER_OVERRIDE: IsaOverride = IsaOverride {
    isa_irq: 0,
    gsi: 2,
    polarity: Polarity::ActiveHigh,
    trigger: Trigger::Edge,
};

fn pci() -> PciRoot<'static> {
    PciRoot {
        ecam_base: ECAM,
        bus_end: 0,
        mmio32: 0xc000_0000..0xe000_0000,
        io: &PCI_IO_WINDOWS,
        prt: &PRT,
    }
}

fn config() -> GuestAcpi<'static> {
    GuestAcpi {
        oem: DEFAULT_OEM,
        cpus: &CPUS,
        lapic_addr: LAPIC_ADDR,
        ioapic: IoApic::DEFAULT,
        isa_overrides: &[TIMER_OVERRIDE],
        pci: Some(pci()),
        sleep: SLEEP,
        reset: RESET,
        serial: Some(Serial::COM1),
    }
}

/// Guest memory from 0 to just past 1 MiB (the legacy RSDP scan reads up to there), with the
/// blob copied to its place; 8-byte aligned like real memory.
#[derive(Clone)]
struct Memory {
    words: Rc<Vec<u64>>,
}

impl Memory {
    const SIZE: usize = 0x10_0100;

    fn with(tables: &Tables) -> Memory {
        let mut bytes = vec![0u8; Self::SIZE];
        let at = tables.rsdp_gpa as usize;
        bytes[at..at + tables.bytes.len()].copy_from_slice(&tables.bytes);
        let words = bytes
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        Memory {
            words: Rc::new(words),
        }
    }
}

impl AcpiHandler for Memory {
    unsafe fn map_physical_region<T>(&self, phys: usize, size: usize) -> PhysicalMapping<Self, T> {
        assert!(
            phys + size <= Self::SIZE,
            "mapping {phys:#x}+{size:#x} outside guest memory"
        );
        let ptr = self.words.as_ptr().cast::<u8>().wrapping_add(phys) as *mut T;
        // SAFETY: `phys..phys + size` lies inside the live, immutable `words` buffer (asserted
        // above), which this mapping's clone of the `Rc` keeps alive; the parser only reads.
        unsafe {
            PhysicalMapping::new(
                phys,
                NonNull::new(ptr).expect("non-null"),
                size,
                size,
                self.clone(),
            )
        }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

fn parse(tables: &Tables) -> AcpiTables<Memory> {
    // SAFETY: `rsdp_gpa` is where `Memory::with` copied the blob, whose first bytes are the RSDP.
    unsafe { AcpiTables::from_rsdp(Memory::with(tables), tables.rsdp_gpa as usize) }
        .expect("RSDP and XSDT parse")
}

fn sum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b))
}

fn u32_at(bytes: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(bytes[off..off + 4].try_into().expect("4 bytes"))
}

/// The tables the XSDT lists, by signature and offset in the blob.
fn xsdt_entries(t: &Tables) -> Vec<([u8; 4], usize)> {
    let b = &t.bytes;
    let xsdt = (u64::from_le_bytes(b[24..32].try_into().expect("8")) - BASE) as usize;
    assert_eq!(&b[xsdt..xsdt + 4], b"XSDT");
    let len = u32_at(b, xsdt + 4) as usize;
    (xsdt + 36..xsdt + len)
        .step_by(8)
        .map(|e| {
            let off = (u64::from_le_bytes(b[e..e + 8].try_into().expect("8")) - BASE) as usize;
            (b[off..off + 4].try_into().expect("4"), off)
        })
        .collect()
}

fn dsdt_of(t: &Tables) -> &[u8] {
    let (_, fadt) = xsdt_entries(t)[0];
    let x_dsdt = u64::from_le_bytes(t.bytes[fadt + 140..fadt + 148].try_into().expect("8"));
    let off = (x_dsdt - BASE) as usize;
    &t.bytes[off..off + u32_at(&t.bytes, off + 4) as usize]
}

#[test]
fn rsdp_first_with_both_checksums_and_found_by_the_legacy_scan() {
    let t = build(&config(), BASE, LEN).expect("builds");
    assert_eq!(t.rsdp_gpa, BASE);
    assert_eq!(&t.bytes[..8], b"RSD PTR ");
    assert_eq!(t.bytes[15], 2, "revision 2");
    assert_eq!(sum(&t.bytes[..20]), 0, "ACPI 1.0 checksum");
    assert_eq!(u32_at(&t.bytes, 20), 36, "length");
    assert_eq!(sum(&t.bytes[..36]), 0, "extended checksum");

    // SAFETY: the fake memory covers the BIOS areas the scan reads.
    let found = unsafe { acpi::rsdp::Rsdp::search_for_on_bios(Memory::with(&t)) }
        .expect("legacy scan finds the RSDP");
    assert_eq!(found.physical_start() as u64, BASE);
}

#[test]
fn every_table_is_listed_aligned_and_checksummed() {
    let t = build(&config(), BASE, LEN).expect("builds");
    let entries = xsdt_entries(&t);
    let sigs: Vec<[u8; 4]> = entries.iter().map(|(s, _)| *s).collect();
    assert_eq!(sigs, [*b"FACP", *b"APIC", *b"MCFG"]);
    let dsdt = dsdt_of(&t);
    let tables = entries
        .iter()
        .map(|(_, off)| &t.bytes[*off..*off + u32_at(&t.bytes, off + 4) as usize])
        .chain([dsdt]);
    for table in tables {
        let name = String::from_utf8_lossy(&table[..4]).into_owned();
        assert_eq!(sum(table), 0, "{name} checksum");
        assert_eq!(&table[10..16], b"CNDUIT", "{name} OEM ID");
        let off = table.as_ptr() as usize - t.bytes.as_ptr() as usize;
        assert_eq!(off % 16, 0, "{name} at {off:#x}");
    }
    let xsdt_off = (u64::from_le_bytes(t.bytes[24..32].try_into().expect("8")) - BASE) as usize;
    assert_eq!(
        sum(&t.bytes[xsdt_off..xsdt_off + 36 + 24]),
        0,
        "XSDT checksum"
    );
    // The DSDT comes last: the blob ends with it.
    let dsdt_end = dsdt.as_ptr() as usize - t.bytes.as_ptr() as usize + dsdt.len();
    assert_eq!(dsdt_end, t.bytes.len());
}

/// A guest with N vCPUs, as the kernel describes it: local APIC IDs 0..N, vCPU 0 the bootstrap
/// processor, every other one enabled and waiting for a start-up IPI, UID = index.
#[test]
fn madt_lists_n_vcpus_with_ids_0_to_n() {
    for n in 1..=8u32 {
        let cpus: Vec<u32> = (0..n).collect();
        let cfg = GuestAcpi {
            cpus: &cpus,
            ..config()
        };
        let t = build(&cfg, BASE, LEN).expect("builds");
        let tables = parse(&t);
        let info = tables.platform_info().expect("MADT and FADT parse");
        let p = info.processor_info.expect("processors");
        assert_eq!(p.boot_processor.local_apic_id, 0);
        let aps: Vec<(u32, u32)> = p
            .application_processors
            .iter()
            .map(|ap| {
                assert_eq!(ap.state, ProcessorState::WaitingForSipi, "{n} vCPUs");
                (ap.processor_uid, ap.local_apic_id)
            })
            .collect();
        let want: Vec<(u32, u32)> = (1..n).map(|i| (i, i)).collect();
        assert_eq!(aps, want, "{n} vCPUs");
    }
}

#[test]
fn madt_gives_the_cpus_the_io_apic_the_override_and_the_nmi() {
    let t = build(&config(), BASE, LEN).expect("builds");
    let tables = parse(&t);
    let info = tables.platform_info().expect("MADT and FADT parse");

    let cpus = info.processor_info.expect("processors");
    assert_eq!(cpus.boot_processor.local_apic_id, 0);
    assert_eq!(cpus.boot_processor.processor_uid, 0);
    let aps: Vec<(u32, u32)> = cpus
        .application_processors
        .iter()
        .map(|p| {
            assert_eq!(p.state, ProcessorState::WaitingForSipi);
            (p.processor_uid, p.local_apic_id)
        })
        .collect();
    assert_eq!(aps, [(1, 2), (2, 5)]);

    let InterruptModel::Apic(apic) = info.interrupt_model else {
        panic!("not the APIC model: {:?}", info.interrupt_model);
    };
    assert_eq!(apic.local_apic_address, 0xfee0_0000);
    assert!(!apic.also_has_legacy_pics, "PCAT_COMPAT must be clear");
    let ioapics: Vec<(u8, u32, u32)> = apic
        .io_apics
        .iter()
        .map(|i| (i.id, i.address, i.global_system_interrupt_base))
        .collect();
    assert_eq!(ioapics, [(0, 0xfec0_0000, 0)]);
    assert_eq!(apic.interrupt_source_overrides.len(), 1);
    let o = &apic.interrupt_source_overrides[0];
    assert_eq!((o.isa_source, o.global_system_interrupt), (0, 2));
    assert_eq!(o.polarity, acpi::platform::interrupt::Polarity::ActiveHigh);
    assert_eq!(o.trigger_mode, acpi::platform::interrupt::TriggerMode::Edge);
    assert_eq!(apic.local_apic_nmi_lines.len(), 1);
    let nmi = &apic.local_apic_nmi_lines[0];
    assert_eq!(nmi.processor, NmiProcessor::All);
    assert_eq!(nmi.line, LocalInterruptLine::Lint1);
    assert!(info.pm_timer.is_none(), "hardware-reduced: no PM timer");
}

#[test]
fn fadt_is_hardware_reduced_with_sleep_and_reset_registers() {
    let t = build(&config(), BASE, LEN).expect("builds");
    let tables = parse(&t);
    let fadt = tables.find_table::<Fadt>().expect("FADT");
    let header = acpi::AcpiTable::header(&*fadt);
    assert_eq!(header.revision, 6);
    assert_eq!(header.length as usize, 276);
    let flags = fadt.flags;
    assert!(flags.system_is_hw_reduced_acpi());
    assert!(flags.supports_system_reset_via_fadt());
    let boot = fadt.iapc_boot_arch;
    assert!(!boot.legacy_devices_are_accessible());
    assert!(!boot.motherboard_implements_8042());
    assert!(boot.dont_probe_vga());
    assert!(boot.dont_enable_pcie_aspm());
    assert!(
        !boot.dont_enable_msi(),
        "the guest's functions use MSI/MSI-X"
    );
    assert_eq!({ fadt.sci_interrupt }, 0);

    let reset = fadt.reset_register().expect("reset register");
    assert_eq!(reset.address_space, acpi::address::AddressSpace::SystemIo);
    assert_eq!((reset.address, reset.bit_width), (0xcf9, 8));
    assert_eq!(fadt.reset_value, 0x06);
    let ctl = fadt
        .sleep_control_register()
        .expect("GAS")
        .expect("present");
    let sts = fadt.sleep_status_register().expect("GAS").expect("present");
    assert_eq!(ctl.address_space, acpi::address::AddressSpace::SystemIo);
    assert_eq!((ctl.address, ctl.bit_width), (0x600, 8));
    assert_eq!((sts.address, sts.bit_width), (0x601, 8));

    let dsdt = tables.dsdt().expect("DSDT");
    let dsdt_bytes = dsdt_of(&t);
    let dsdt_off = dsdt_bytes.as_ptr() as usize - t.bytes.as_ptr() as usize;
    assert_eq!(dsdt.address, BASE as usize + dsdt_off + 36);
    assert_eq!(dsdt.length as usize, dsdt_bytes.len() - 36);

    let (_, fadt_off) = xsdt_entries(&t)[0];
    let raw = &t.bytes[fadt_off..fadt_off + 276];
    assert_eq!(&raw[268..276], b"Conduit\0", "hypervisor vendor identity");
    assert_eq!(u32_at(raw, 36), 0, "no FACS (FIRMWARE_CTRL)");
    assert_eq!(&raw[132..140], &[0; 8], "no FACS (X_FIRMWARE_CTRL)");
    assert_eq!(u32_at(raw, 40), 0, "the DSDT only through X_DSDT");
}

#[test]
fn mcfg_gives_the_ecam_window_of_bus_0() {
    let t = build(&config(), BASE, LEN).expect("builds");
    let tables = parse(&t);
    let mcfg = tables.find_table::<Mcfg>().expect("MCFG");
    let entries: Vec<(u64, u16, u8, u8)> = mcfg
        .entries()
        .iter()
        .map(|e| {
            let (base, seg) = (e.base_address, e.pci_segment_group);
            (base, seg, e.bus_number_start, e.bus_number_end)
        })
        .collect();
    assert_eq!(entries, [(ECAM, 0, 0, 0)]);
    let regions = PciConfigRegions::new(&tables).expect("regions");
    assert_eq!(
        regions.physical_address(0, 0, 3, 1),
        Some(ECAM + (3 << 15) + (1 << 12))
    );
    assert_eq!(regions.physical_address(0, 1, 0, 0), None);
}
