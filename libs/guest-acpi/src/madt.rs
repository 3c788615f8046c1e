//! The MADT (ACPI 6.5 §5.2.12): local APICs, the I/O APIC, interrupt source overrides and the
//! LINT1 NMI.

use crate::config::GuestAcpi;
use acpi_tables::Aml;
use acpi_tables::madt::{EnabledStatus, IoApic, ProcessorLocalApic};
use acpi_tables::sdt::Sdt;
use alloc::vec::Vec;

/// MADT revision of ACPI 6.5.
const REVISION: u8 = 6;
/// Interrupt Controller Structure types (ACPI 6.5 Table 5.21).
const TYPE_INTERRUPT_SOURCE_OVERRIDE: u8 = 2;
const TYPE_LOCAL_APIC_NMI: u8 = 4;
/// "All processors" in a Local APIC NMI structure's ACPI Processor UID (§5.2.12.7).
const ALL_PROCESSORS: u8 = 0xff;
/// NMI on LINT1: edge-triggered, active high (MPS INTI flags 0b01_01), as on PC platforms.
const LINT1_NMI_FLAGS: u16 = 0b0101;

/// The MADT for `cfg` (already validated). Flags are 0: `PCAT_COMPAT` clear, so the OS knows
/// there is no 8259 pair to mask or route through (Table 5.20).
pub(crate) fn build(cfg: &GuestAcpi<'_>) -> Vec<u8> {
    let mut madt = Sdt::new(
        *b"APIC",
        44,
        REVISION,
        cfg.oem.id,
        cfg.oem.table_id,
        cfg.oem.revision,
    );
    madt.write_u32(36, cfg.lapic_addr);
    madt.write_u32(40, 0);

    for (uid, &apic_id) in cfg.cpus.iter().enumerate() {
        // Both fit a byte: `tables::validate` refuses APIC IDs above 254, so there are at most
        // 255 CPUs.
        let lapic = ProcessorLocalApic::new(uid as u8, apic_id as u8, EnabledStatus::Enabled);
        append(&mut madt, &lapic);
    }
    let io = &cfg.ioapic;
    append(&mut madt, &IoApic::new(io.id, io.addr, io.gsi_base));

    for o in cfg.isa_overrides {
        // Interrupt Source Override (§5.2.12.5): type, length 10, bus 0 (ISA), source, GSI,
        // flags.
        let mut s = [0u8; 10];
        s[0] = TYPE_INTERRUPT_SOURCE_OVERRIDE;
        s[1] = 10;
        s[2] = 0;
        s[3] = o.isa_irq;
        s[4..8].copy_from_slice(&o.gsi.to_le_bytes());
        s[8..10].copy_from_slice(&o.inti_flags().to_le_bytes());
        madt.append_slice(&s);
    }

    // Local APIC NMI (§5.2.12.7): type, length 6, UID, flags, LINT#.
    let mut nmi = [0u8; 6];
    nmi[0] = TYPE_LOCAL_APIC_NMI;
    nmi[1] = 6;
    nmi[2] = ALL_PROCESSORS;
    nmi[3..5].copy_from_slice(&LINT1_NMI_FLAGS.to_le_bytes());
    nmi[5] = 1;
    madt.append_slice(&nmi);

    madt.as_slice().to_vec()
}

fn append(sdt: &mut Sdt, structure: &dyn Aml) {
    let mut bytes = Vec::new();
    structure.to_aml_bytes(&mut bytes);
    sdt.append_slice(&bytes);
}
