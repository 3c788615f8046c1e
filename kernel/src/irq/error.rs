//! [`IrqError`]: why an interrupt could not be set up.

use crate::iommu::IommuError;
use crate::pci::msi::MsiError;
use alloc::string::String;
use conduit_irq::{AllocError, FormatError, PlacementError};
use core::fmt;

/// Why an interrupt could not be set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IrqError {
    /// Interrupt remapping is off: device interrupts are not routed.
    RemappingOff(String),
    /// [`init`] did not run.
    NotInitialised,
    /// Allocation or ownership (includes refused IRTE requests).
    Alloc(AllocError),
    /// An entry that cannot be encoded.
    Format(FormatError),
    Iommu(IommuError),
    Msi(MsiError),
    /// No I/O APIC has this GSI.
    NoIoApic(u32),
    /// The DMAR names no source-id for this I/O APIC, so its entry could not be verified.
    NoSourceId(u8),
    /// A function's INTx cannot be given to a guest.
    Intx(String),
    /// A guest's placement (a CPU of no vCPU, an APIC ID no CPU has, a vCPU the guest lacks).
    Placement(PlacementError),
}

impl fmt::Display for IrqError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RemappingOff(r) => write!(f, "interrupt remapping is off ({r})"),
            Self::NotInitialised => write!(f, "interrupts are not initialised"),
            Self::Alloc(e) => write!(f, "{e}"),
            Self::Format(e) => write!(f, "{e}"),
            Self::Iommu(e) => write!(f, "{e}"),
            Self::Msi(e) => write!(f, "{e}"),
            Self::NoIoApic(gsi) => write!(f, "no I/O APIC has GSI {gsi}"),
            Self::NoSourceId(id) => write!(f, "the DMAR names no source-id for I/O APIC {id}"),
            Self::Intx(why) => f.write_str(why),
            Self::Placement(e) => write!(f, "{e}"),
        }
    }
}

impl From<AllocError> for IrqError {
    fn from(e: AllocError) -> Self {
        Self::Alloc(e)
    }
}
impl From<PlacementError> for IrqError {
    fn from(e: PlacementError) -> Self {
        Self::Placement(e)
    }
}
impl From<FormatError> for IrqError {
    fn from(e: FormatError) -> Self {
        Self::Format(e)
    }
}
impl From<IommuError> for IrqError {
    fn from(e: IommuError) -> Self {
        Self::Iommu(e)
    }
}
impl From<MsiError> for IrqError {
    fn from(e: MsiError) -> Self {
        Self::Msi(e)
    }
}
