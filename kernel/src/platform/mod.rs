//! The platform as firmware describes it (ACPI): CPUs and interrupt controllers (MADT), PCI
//! configuration space (MCFG) and DMA remapping hardware (DMAR).

pub mod acpi;

pub use acpi::Platform;

/// Reads the ACPI tables from the RSDP the loader found. A missing or malformed table is reported
/// by name, and boot goes on without what depended on it.
pub fn discover(rsdp: Option<u64>, phys_offset: u64) -> Platform {
    acpi::discover(rsdp, phys_offset)
}
