//! Checking a [`GuestAcpi`], laying the tables out in one blob and linking them (RSDP → XSDT →
//! FADT, MADT, MCFG; FADT → DSDT).

use crate::config::{GuestAcpi, PciRoot};
use crate::{AcpiError, dsdt, madt};
use acpi_tables::Aml;
use acpi_tables::fadt::{FADTBuilder, Flags};
use acpi_tables::gas::{AccessSize, AddressSpace, GAS};
use acpi_tables::mcfg::MCFG;
use acpi_tables::rsdp::Rsdp;
use acpi_tables::xsdt::XSDT;
use alloc::vec::Vec;

/// Every table starts 16-byte aligned; the RSDP must, for the legacy scan (ACPI 6.5 §5.2.5.1).
const ALIGN: usize = 16;
/// The header every system description table starts with (ACPI 6.5 §5.2.6).
const SDT_HEADER_LEN: usize = 36;
/// An I/O APIC has at most 240 redirection entries (one per vector 16..=255).
const MAX_IOAPIC_PINS: u8 = 240;
/// ECAM: 1 MiB of configuration space per bus (PCIe Base Spec r6.0 §7.2.2).
const ECAM_BUS_SIZE: u64 = 1 << 20;
/// The PCI configuration mechanism's ports (PCI Local Bus Spec 3.0 §3.2.2.3.2).
const PCI_CONFIG_PORTS: core::ops::RangeInclusive<u16> = 0xcf8..=0xcff;
/// The ports of a 16550's register set.
const UART_PORTS: u16 = 8;
/// FADT IAPC_BOOT_ARCH (ACPI 6.5 Table 5.11): bit 0 `LEGACY_DEVICES` and bit 1 `8042` clear
/// (no ISA devices besides the UART the DSDT names, no keyboard controller); bit 2 `VGA Not
/// Present`, bit 4 `PCIe ASPM Controls` (the OS must not enable ASPM) and bit 5 `CMOS RTC Not
/// Present` set.
const IAPC_BOOT_ARCH: u16 = (1 << 2) | (1 << 4) | (1 << 5);
/// FADT Hypervisor Vendor Identity (§5.2.9): the vendor's name in the 8 bytes.
const HYPERVISOR_VENDOR: [u8; 8] = *b"Conduit\0";

/// A built table set: `bytes` go to guest-physical `base_gpa` (the address passed to
/// [`build`]); the RSDP is at its start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    /// The tables, in the order RSDP, XSDT, FADT, MADT, MCFG (if any), DSDT.
    pub bytes: Vec<u8>,
    /// The RSDP's guest-physical address (= `base_gpa`).
    pub rsdp_gpa: u64,
}

/// Builds the tables for `cfg` to be copied to guest-physical `base_gpa`, where `len` bytes are
/// available. Refuses a configuration that describes an impossible machine, a base that is not
/// 16-byte aligned or not below 4 GiB, and tables that need more than `len` bytes.
pub fn build(cfg: &GuestAcpi<'_>, base_gpa: u64, len: usize) -> Result<Tables, AcpiError> {
    validate(cfg)?;
    if !base_gpa.is_multiple_of(ALIGN as u64) || base_gpa.saturating_add(len as u64) > 1 << 32 {
        return Err(AcpiError::Base(base_gpa));
    }

    let madt = madt::build(cfg);
    let mcfg = cfg.pci.as_ref().map(|pci| mcfg(cfg, pci));
    let dsdt = dsdt::build(cfg);
    let fadt_len = acpi_tables::fadt::FADT::len();
    let xsdt_entries = 2 + usize::from(mcfg.is_some());

    // Offsets: RSDP, XSDT, FADT, MADT, MCFG, DSDT.
    let rsdp_off = 0;
    let xsdt_off = align(rsdp_off + Rsdp::len());
    let fadt_off = align(xsdt_off + SDT_HEADER_LEN + 8 * xsdt_entries);
    let madt_off = align(fadt_off + fadt_len);
    let mut end = align(madt_off + madt.len());
    let mcfg_off = mcfg.as_ref().map(|m| {
        let off = end;
        end = align(off + m.len());
        off
    });
    let dsdt_off = end;
    let need = dsdt_off + dsdt.len();
    if need > len {
        return Err(AcpiError::TooLarge { need, len });
    }
    let gpa = |off: usize| base_gpa + off as u64;

    let fadt = fadt(cfg, gpa(dsdt_off));
    let mut xsdt = XSDT::new(cfg.oem.id, cfg.oem.table_id, cfg.oem.revision);
    xsdt.add_entry(gpa(fadt_off));
    xsdt.add_entry(gpa(madt_off));
    if let Some(off) = mcfg_off {
        xsdt.add_entry(gpa(off));
    }
    let rsdp = Rsdp::new(cfg.oem.id, gpa(xsdt_off));

    let mut bytes = Vec::with_capacity(need);
    place(&mut bytes, rsdp_off, &aml_bytes(&rsdp));
    place(&mut bytes, xsdt_off, &aml_bytes(&xsdt));
    place(&mut bytes, fadt_off, &fadt);
    place(&mut bytes, madt_off, &madt);
    if let (Some(off), Some(mcfg)) = (mcfg_off, &mcfg) {
        place(&mut bytes, off, mcfg);
    }
    place(&mut bytes, dsdt_off, &dsdt);
    Ok(Tables {
        bytes,
        rsdp_gpa: base_gpa,
    })
}

/// The FADT (ACPI 6.5 §5.2.9) of a hardware-reduced platform: no PM1/PM2/PM timer/GPE blocks,
/// no SCI, no FACS; the sleep and reset registers are one-byte I/O ports.
fn fadt(cfg: &GuestAcpi<'_>, dsdt_gpa: u64) -> Vec<u8> {
    let mut fadt = FADTBuilder::new(cfg.oem.id, cfg.oem.table_id, cfg.oem.revision)
        .dsdt_64(dsdt_gpa)
        .flag(Flags::HwReducedAcpi)
        .flag(Flags::ResetRegSup);
    fadt.iapc_boot_arch = IAPC_BOOT_ARCH.into();
    fadt.reset_reg = io_byte(cfg.reset.port);
    fadt.reset_value = cfg.reset.value;
    fadt.sleep_control_reg = io_byte(cfg.sleep.control_port);
    fadt.sleep_status_reg = io_byte(cfg.sleep.status_port);
    fadt.hypervisor_vendor_identity = u64::from_le_bytes(HYPERVISOR_VENDOR).into();
    aml_bytes(&fadt.finalize())
}

/// A one-byte register at an I/O port (Generic Address Structure, ACPI 6.5 §5.2.3.2).
fn io_byte(port: u16) -> GAS {
    GAS::new(
        AddressSpace::SystemIo,
        8,
        0,
        AccessSize::ByteAccess,
        u64::from(port),
    )
}

/// The MCFG (PCI Firmware Spec 3.3 §4.1.2): one ECAM window, segment 0.
fn mcfg(cfg: &GuestAcpi<'_>, pci: &PciRoot<'_>) -> Vec<u8> {
    let mut mcfg = MCFG::new(cfg.oem.id, cfg.oem.table_id, cfg.oem.revision);
    mcfg.add_ecam(pci.ecam_base, 0, 0, pci.bus_end);
    aml_bytes(&mcfg)
}

fn aml_bytes(table: &dyn Aml) -> Vec<u8> {
    let mut bytes = Vec::new();
    table.to_aml_bytes(&mut bytes);
    bytes
}

fn align(off: usize) -> usize {
    off.next_multiple_of(ALIGN)
}

/// Writes `table` at `off`, zero-filling the alignment gap before it.
fn place(bytes: &mut Vec<u8>, off: usize, table: &[u8]) {
    bytes.resize(off, 0);
    bytes.extend_from_slice(table);
}

/// Refuses a configuration that no machine could have (see [`AcpiError`]).
fn validate(cfg: &GuestAcpi<'_>) -> Result<(), AcpiError> {
    if cfg.cpus.is_empty() {
        return Err(AcpiError::NoCpus);
    }
    for (i, &id) in cfg.cpus.iter().enumerate() {
        if id > 254 {
            return Err(AcpiError::ApicIdTooLarge(id));
        }
        if cfg.cpus[..i].contains(&id) {
            return Err(AcpiError::DuplicateApicId(id));
        }
    }

    let io = &cfg.ioapic;
    if io.pins == 0 || io.pins > MAX_IOAPIC_PINS {
        return Err(AcpiError::IoApicPins(io.pins));
    }
    let gsi = |g: u32| {
        if io.gsis().contains(&g) {
            Ok(())
        } else {
            Err(AcpiError::GsiOutOfRange(g))
        }
    };
    for (i, o) in cfg.isa_overrides.iter().enumerate() {
        let twice = cfg.isa_overrides[..i]
            .iter()
            .any(|p| p.isa_irq == o.isa_irq);
        if o.isa_irq > 15 || twice {
            return Err(AcpiError::IsaIrq(o.isa_irq));
        }
        gsi(o.gsi)?;
    }
    if let Some(serial) = cfg.serial {
        gsi(serial.gsi)?;
    }
    if let Some(pci) = &cfg.pci {
        validate_pci(pci, &gsi)?;
    }

    if cfg.sleep.s5_slp_typ > 7 {
        return Err(AcpiError::SleepType(cfg.sleep.s5_slp_typ));
    }
    validate_ports(cfg)
}

fn validate_pci(
    pci: &PciRoot<'_>,
    gsi: &dyn Fn(u32) -> Result<(), AcpiError>,
) -> Result<(), AcpiError> {
    let ecam_end = pci.ecam_base.checked_add(pci.ecam_len());
    if !pci.ecam_base.is_multiple_of(ECAM_BUS_SIZE) || ecam_end.is_none_or(|e| e > 1 << 32) {
        return Err(AcpiError::EcamBase(pci.ecam_base));
    }
    let m = &pci.mmio32;
    if m.start >= m.end
        || m.end > 1 << 32
        || !m.start.is_multiple_of(4096)
        || !m.end.is_multiple_of(4096)
    {
        return Err(AcpiError::MmioWindow);
    }
    if pci.io.is_empty() || pci.io.iter().any(|w| w.start() > w.end()) {
        return Err(AcpiError::IoWindow);
    }
    for (i, e) in pci.prt.iter().enumerate() {
        let twice = pci.prt[..i]
            .iter()
            .any(|p| p.device == e.device && p.pin == e.pin);
        if e.device > 31 || twice {
            return Err(AcpiError::PrtEntry {
                device: e.device,
                pin: e.pin,
            });
        }
        gsi(e.gsi)?;
    }
    Ok(())
}

/// The sleep control, sleep status and reset ports, the UART's and the PCI configuration ports
/// must all differ; a reset register inside 0xCF8..=0xCFF is the PC's reset control register
/// (0xCF9), which is a byte where configuration accesses are dwords.
fn validate_ports(cfg: &GuestAcpi<'_>) -> Result<(), AcpiError> {
    let mut fixed = alloc::vec![
        cfg.sleep.control_port,
        cfg.sleep.status_port,
        cfg.reset.port
    ];
    let mut not_config = alloc::vec![cfg.sleep.control_port, cfg.sleep.status_port];
    if let Some(s) = cfg.serial {
        let last = s
            .port
            .checked_add(UART_PORTS - 1)
            .ok_or(AcpiError::PortCollision(s.port))?;
        fixed.extend(s.port..=last);
        not_config.extend(s.port..=last);
    }
    for (i, &port) in fixed.iter().enumerate() {
        if fixed[..i].contains(&port) {
            return Err(AcpiError::PortCollision(port));
        }
    }
    match not_config.iter().find(|p| PCI_CONFIG_PORTS.contains(p)) {
        Some(&port) => Err(AcpiError::PortCollision(port)),
        None => Ok(()),
    }
}
