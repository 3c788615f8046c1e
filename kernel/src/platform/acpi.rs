//! ACPI table discovery through the `acpi` crate (ACPI 6.5, 5.2 "ACPI System Description Tables").
//! DMAR (VT-d spec, 8.1 "DMA Remapping Reporting Structure") is only located and checked here; its
//! structures are parsed by the DMAR library.

use acpi::sdt::{SdtHeader, Signature};
use acpi::{
    AcpiError, AcpiHandler, AcpiTable, AcpiTables, InterruptModel, PhysicalMapping, PlatformInfo,
};
use alloc::string::String;
use alloc::vec::Vec;
use conduit_hw::pm_timer::PmTimer;
use core::fmt::Write;
use core::ptr::NonNull;
use log::{debug, info, warn};

/// Maps ACPI tables through the loader's physical-memory window.
#[derive(Clone, Copy, Debug)]
struct OffsetHandler {
    phys_offset: u64,
}

impl AcpiHandler for OffsetHandler {
    unsafe fn map_physical_region<T>(
        &self,
        physical_address: usize,
        size: usize,
    ) -> PhysicalMapping<Self, T> {
        let virt = (self.phys_offset + physical_address as u64) as *mut T;
        // SAFETY: the loader maps the first 4 GiB and all RAM (firmware's tables) at `phys_offset`;
        // only ECAM's range (device memory, no table) ever leaves that window, at hand-over. The
        // pointer is non-null: the offset window never starts at 0.
        unsafe {
            PhysicalMapping::new(
                physical_address,
                NonNull::new_unchecked(virt),
                size,
                size,
                *self,
            )
        }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

/// The DMAR table as far as the `acpi` crate needs to know it: a header with the right signature.
#[repr(C, packed)]
struct Dmar {
    header: SdtHeader,
}

// SAFETY: `Dmar` is exactly the SDT header every ACPI table starts with; the rest of the table is
// only read through the length the validated header gives.
unsafe impl AcpiTable for Dmar {
    const SIGNATURE: Signature = Signature::DMAR;

    fn header(&self) -> &SdtHeader {
        &self.header
    }
}

/// The SPCR table as far as the `acpi` crate needs to know it (the table is decoded by
/// `conduit_uart::spcr`).
#[repr(C, packed)]
struct Spcr {
    header: SdtHeader,
}

// SAFETY: as for `Dmar`: exactly the SDT header; the rest is read through the validated length.
unsafe impl AcpiTable for Spcr {
    const SIGNATURE: Signature = Signature::SPCR;

    fn header(&self) -> &SdtHeader {
        &self.header
    }
}

/// The DBG2 table as far as the `acpi` crate needs to know it (decoded by `conduit_uart::dbg2`).
#[repr(C, packed)]
struct Dbg2 {
    header: SdtHeader,
}

// SAFETY: as for `Dmar`: exactly the SDT header; the rest is read through the validated length.
unsafe impl AcpiTable for Dbg2 {
    const SIGNATURE: Signature = Signature::DBG2;

    fn header(&self) -> &SdtHeader {
        &self.header
    }
}

/// An I/O APIC from the MADT.
#[derive(Debug, Clone, Copy)]
pub struct IoApic {
    pub id: u8,
    pub address: u32,
    pub gsi_base: u32,
}

/// An interrupt source override from the MADT (ACPI 6.5 §5.2.12.5): ISA IRQ `isa` arrives on
/// `gsi` with this polarity and trigger mode ("conforms to the bus" is ISA's: high, edge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IsaOverride {
    pub isa: u8,
    pub gsi: u32,
    pub active_low: bool,
    pub level: bool,
    /// The override's MPS INTI flags state the polarity / the trigger mode (rather than
    /// "conforms to the bus specification", ACPI 6.5 Table 5.26).
    pub polarity_stated: bool,
    pub trigger_stated: bool,
}

impl IsaOverride {
    /// The override as INTx routing reads it: what it does not state is the bus's.
    pub fn line_override(&self) -> conduit_irq::LineOverride {
        use conduit_irq::{Polarity, TriggerMode};
        conduit_irq::LineOverride {
            isa: self.isa,
            gsi: self.gsi,
            polarity: self.polarity_stated.then_some(if self.active_low {
                Polarity::ActiveLow
            } else {
                Polarity::ActiveHigh
            }),
            trigger: self.trigger_stated.then_some(if self.level {
                TriggerMode::Level
            } else {
                TriggerMode::Edge
            }),
        }
    }
}

/// Where ISA IRQ `isa` arrives given the MADT's `overrides`: the override if there is one, else
/// the GSI of the same number, edge-triggered, active high (ACPI 6.5 §5.2.12.5).
#[cfg(feature = "selftest")]
pub fn isa_route(overrides: &[IsaOverride], isa: u8) -> IsaOverride {
    overrides
        .iter()
        .find(|o| o.isa == isa)
        .copied()
        .unwrap_or(IsaOverride {
            isa,
            gsi: u32::from(isa),
            active_low: false,
            level: false,
            polarity_stated: false,
            trigger_stated: false,
        })
}

/// One MCFG allocation (PCI Firmware Spec 3.3 §4.1.2).
pub type Ecam = conduit_pci::EcamWindow;

/// What the firmware told us about the machine.
#[derive(Debug, Default)]
pub struct Platform {
    /// The FADT's PM timer, when it is in I/O space.
    pub pm_timer: Option<PmTimer>,
    pub local_apic_ids: Vec<u32>,
    /// The processor entries of the MADT in table order, with their Enabled flag (for
    /// `cpus::start`; `local_apic_ids` lists them all).
    pub cpus: Vec<conduit_smp::numbering::MadtCpu>,
    pub local_apic_address: Option<u64>,
    pub io_apics: Vec<IoApic>,
    /// ISA IRQs that do not arrive on the GSI of the same number, or not edge / active high.
    pub isa_overrides: Vec<IsaOverride>,
    pub ecam: Vec<Ecam>,
    /// The whole DMAR table (header included), when present and its checksum is right.
    pub dmar: Option<&'static [u8]>,
    /// The whole SPCR table (header included), when present and its checksum is right.
    pub spcr: Option<&'static [u8]>,
    /// The whole DBG2 table (header included), when present and its checksum is right.
    pub dbg2: Option<&'static [u8]>,
}

impl Platform {
    pub fn cpu_count(&self) -> usize {
        self.local_apic_ids.len()
    }

    pub fn has_dmar(&self) -> bool {
        self.dmar.is_some()
    }
}

fn describe(e: &AcpiError) -> String {
    match e {
        AcpiError::TableMissing(sig) => alloc::format!("{sig} table not found"),
        AcpiError::SdtInvalidChecksum(sig) => alloc::format!("{sig} table has a bad checksum"),
        AcpiError::SdtInvalidSignature(sig) => alloc::format!("{sig} table has a bad signature"),
        AcpiError::InvalidMadt(m) => alloc::format!("MADT is malformed: {m:?}"),
        other => alloc::format!("{other:?}"),
    }
}

pub fn discover(rsdp: Option<u64>, phys_offset: u64) -> Platform {
    let mut platform = Platform::default();
    let handler = OffsetHandler { phys_offset };
    let found = match rsdp {
        // SAFETY: the loader passes the RSDP address the firmware published in the EFI system
        // table; `from_rsdp` validates signature and checksum before using it.
        Some(addr) => unsafe { AcpiTables::from_rsdp(handler, addr as usize) }
            .map_err(|e| alloc::format!("the RSDP at {addr:#x} is unusable ({})", describe(&e))),
        None => {
            info!(
                "ACPI: the firmware published no RSDP; scanning the EBDA and BIOS area (ACPI 5.2.5.1)"
            );
            // SAFETY: the scan reads the EBDA pointer at 0x40e and the ranges 0xe0000-0xfffff,
            // all mapped through the physical-memory window; a candidate is used only if its
            // signature and checksum are valid.
            unsafe { AcpiTables::search_for_rsdp_bios(handler) }
                .map_err(|e| alloc::format!("no RSDP in the EBDA or BIOS area ({})", describe(&e)))
        }
    };
    let tables = match found {
        Ok(t) => t,
        Err(why) => {
            warn!("ACPI: {why}: no MADT, MCFG or DMAR; PCI enumeration and VT-d are unavailable");
            return platform;
        }
    };
    let mut names = String::new();
    for h in tables.headers() {
        let _ = write!(names, " {}", h.signature);
    }
    info!("ACPI: revision {}, tables:{names}", tables.revision());

    madt(&tables, &mut platform);
    mcfg(&tables, &mut platform);
    dmar(&tables, &mut platform, phys_offset);
    platform.spcr = console_table::<Spcr>(&tables, phys_offset);
    platform.dbg2 = console_table::<Dbg2>(&tables, phys_offset);
    platform
}

fn madt(tables: &AcpiTables<OffsetHandler>, p: &mut Platform) {
    let info = match PlatformInfo::new(tables) {
        Ok(i) => i,
        Err(e) => {
            warn!(
                "MADT: unusable ({}): no CPU or IOAPIC information",
                describe(&e)
            );
            return;
        }
    };
    match &info.pm_timer {
        Some(t) if t.base.address_space == acpi::address::AddressSpace::SystemIo => {
            if let Ok(port) = u16::try_from(t.base.address) {
                p.pm_timer = Some(PmTimer {
                    port,
                    bits32: t.supports_32bit,
                });
            }
        }
        Some(t) => warn!(
            "FADT: PM timer in address space {:?}: not used",
            t.base.address_space
        ),
        None => {}
    }
    if let Some(cpus) = &info.processor_info {
        p.local_apic_ids.push(cpus.boot_processor.local_apic_id);
        p.local_apic_ids
            .extend(cpus.application_processors.iter().map(|c| c.local_apic_id));
        p.cpus = core::iter::once(&cpus.boot_processor)
            .chain(cpus.application_processors.iter())
            .map(|c| conduit_smp::numbering::MadtCpu {
                apic_id: c.local_apic_id,
                enabled: c.state != acpi::platform::ProcessorState::Disabled,
            })
            .collect();
    }
    match &info.interrupt_model {
        InterruptModel::Apic(apic) => {
            p.local_apic_address = Some(apic.local_apic_address);
            p.io_apics.extend(apic.io_apics.iter().map(|i| IoApic {
                id: i.id,
                address: i.address,
                gsi_base: i.global_system_interrupt_base,
            }));
            p.isa_overrides
                .extend(apic.interrupt_source_overrides.iter().map(|o| IsaOverride {
                    isa: o.isa_source,
                    gsi: o.global_system_interrupt,
                    active_low: matches!(
                        o.polarity,
                        acpi::platform::interrupt::Polarity::ActiveLow
                    ),
                    level: matches!(
                        o.trigger_mode,
                        acpi::platform::interrupt::TriggerMode::Level
                    ),
                    polarity_stated: !matches!(
                        o.polarity,
                        acpi::platform::interrupt::Polarity::SameAsBus
                    ),
                    trigger_stated: !matches!(
                        o.trigger_mode,
                        acpi::platform::interrupt::TriggerMode::SameAsBus
                    ),
                }));
        }
        _ => warn!("MADT: not found or no APIC interrupt model: no IOAPIC"),
    }
    info!(
        "MADT: {} CPU(s), local APIC ids {:?}, local APIC at {:#x}",
        p.local_apic_ids.len(),
        p.local_apic_ids,
        p.local_apic_address.unwrap_or(0)
    );
    for io in &p.io_apics {
        info!(
            "MADT: IOAPIC id {} at {:#x}, GSI base {}",
            io.id, io.address, io.gsi_base
        );
    }
    for o in &p.isa_overrides {
        info!(
            "MADT: ISA IRQ {} -> GSI {} ({}, active {})",
            o.isa,
            o.gsi,
            if o.level { "level" } else { "edge" },
            if o.active_low { "low" } else { "high" }
        );
    }
}

fn mcfg(tables: &AcpiTables<OffsetHandler>, p: &mut Platform) {
    match tables.find_table::<acpi::mcfg::Mcfg>() {
        Ok(mcfg) => {
            for e in mcfg.entries() {
                let ecam = Ecam {
                    base: e.base_address,
                    segment: e.pci_segment_group,
                    bus_start: e.bus_number_start,
                    bus_end: e.bus_number_end,
                };
                info!(
                    "MCFG: ECAM base {:#x}, segment {}, buses {}-{}",
                    ecam.base, ecam.segment, ecam.bus_start, ecam.bus_end
                );
                p.ecam.push(ecam);
            }
            if p.ecam.is_empty() {
                warn!("MCFG: present but lists no ECAM region: PCI enumeration unavailable");
            }
        }
        Err(e) => warn!("MCFG: {}: PCI enumeration unavailable", describe(&e)),
    }
}

fn dmar(tables: &AcpiTables<OffsetHandler>, p: &mut Platform, phys_offset: u64) {
    match tables.find_table::<Dmar>() {
        Ok(table) => {
            let bytes = whole_table(&table, phys_offset);
            let len = bytes.len();
            info!(
                "DMAR: present at {:#x}, {len} bytes, host address width {}, flags {:#x}",
                table.physical_start(),
                bytes.get(36).map_or(0, |w| u32::from(*w) + 1),
                bytes.get(37).copied().unwrap_or(0)
            );
            let mut hex = String::with_capacity(len * 2);
            for b in bytes {
                let _ = write!(hex, "{b:02x}");
            }
            debug!("DMAR bytes: {hex}");
            p.dmar = Some(bytes);
        }
        Err(AcpiError::TableMissing(_)) => {
            info!("DMAR: not present: no DMA remapping on this machine")
        }
        Err(e) => warn!("DMAR: {}: booting without DMA remapping", describe(&e)),
    }
}

/// A table that can name the console (SPCR: Microsoft's Serial Port Console Redirection table;
/// DBG2: its Debug Port Table 2), located and checksummed here, decoded by the console
/// (`crate::console`).
fn console_table<T: AcpiTable>(
    tables: &AcpiTables<OffsetHandler>,
    phys_offset: u64,
) -> Option<&'static [u8]> {
    let name = T::SIGNATURE;
    match tables.find_table::<T>() {
        Ok(table) => {
            let bytes = whole_table(&table, phys_offset);
            let len = bytes.len();
            info!(
                "{name}: present at {:#x}, {len} bytes, revision {}",
                table.physical_start(),
                bytes.get(8).copied().unwrap_or(0)
            );
            Some(bytes)
        }
        Err(AcpiError::TableMissing(_)) => {
            info!("{name}: not present");
            None
        }
        Err(e) => {
            warn!("{name}: {}: not used", describe(&e));
            None
        }
    }
}

/// The whole of a table the acpi crate found (header included, `length` bytes), through the
/// loader's physical-memory window, for the libraries that decode it.
fn whole_table<T: AcpiTable>(
    table: &PhysicalMapping<OffsetHandler, T>,
    phys_offset: u64,
) -> &'static [u8] {
    let len = table.get().header().length as usize;
    let virt = phys_offset + table.physical_start() as u64;
    // SAFETY: the table was mapped and validated (signature, checksum over `length` bytes) by the
    // acpi crate; firmware tables stay in place for the life of the machine.
    unsafe { core::slice::from_raw_parts(virt as *const u8, len) }
}
