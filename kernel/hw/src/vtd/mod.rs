//! Intel VT-d DMA remapping hardware (Intel Virtualization Technology for Directed I/O
//! Architecture Specification; section numbers of revision 3.x, where chapter 10 holds the
//! register descriptions: revision 4 moved them to chapter 11 with the same sub-numbering).
//!
//! This module is the hardware half: registers ([`regs`]), root and context tables ([`tables`]),
//! invalidation through the registers ([`inval`]) or the invalidation queue ([`qi`]), fault
//! recording and the fault event interrupt ([`fault`]), interrupt remapping (the table, its
//! enable sequence and interrupt-entry-cache invalidation, [`ir`]), and the unit that ties them
//! together ([`unit`]). Which bits go where (CAP/ECAP decoding, entry and descriptor layouts, fault
//! records) is pure logic in the host-tested `conduit_vtd` library. Second-level tables are built by `conduit_paging` (the same builder
//! as EPT) in its `VtdSecondLevel` format. Policy (which device belongs to which domain) lives in
//! the kernel's `iommu`.

pub mod access;
pub mod fault;
pub mod inval;
pub mod ir;
pub mod qi;
pub mod regs;
pub mod tables;
pub mod unit;

#[cfg(feature = "selftest")]
pub use conduit_vtd::Invalidation;
pub use conduit_vtd::caps;
pub use unit::{Method, RemappingUnit};

use crate::memory::mmio::MmioError;
use core::fmt;

/// Why the driver could not do what was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VtdError {
    /// The registers could not be mapped.
    Mmio(MmioError),
    /// No frame for a root, context or queue page.
    OutOfFrames,
    /// SAGAW offers no table depth the paging library builds (3 or 4 levels).
    UnsupportedWidth { sagaw: u8, mgaw: u32 },
    /// The hardware did not complete a command in time.
    Timeout { what: &'static str },
    /// The invalidation queue reported an error (FSTS.IQE/ICE/ITE) at descriptor `head`.
    QueueError { fsts: u32, head: u64 },
    /// More descriptors than one submission may carry.
    BatchTooLarge { len: usize },
    /// The unit lacks something an operation needs.
    Unsupported { what: &'static str },
    /// A global status bit did not read as required after its command.
    Status { what: &'static str, gsts: u32 },
    /// A global command or the PMR disable did not complete in time.
    Takeover(conduit_vtd::takeover::TakeoverError),
}

impl fmt::Display for VtdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Mmio(e) => write!(f, "register mapping: {e}"),
            Self::OutOfFrames => write!(f, "out of frames for remapping tables"),
            Self::UnsupportedWidth { sagaw, mgaw } => write!(
                f,
                "no supported table depth (SAGAW {sagaw:#x}, MGAW {mgaw}): need 3 or 4 levels"
            ),
            Self::Timeout { what } => write!(f, "timed out waiting for {what}"),
            Self::QueueError { fsts, head } => write!(
                f,
                "invalidation queue error (FSTS {fsts:#x}: {}{}{}) at descriptor {head}",
                if fsts & regs::fsts::IQE != 0 {
                    "IQE "
                } else {
                    ""
                },
                if fsts & regs::fsts::ICE != 0 {
                    "ICE "
                } else {
                    ""
                },
                if fsts & regs::fsts::ITE != 0 {
                    "ITE"
                } else {
                    ""
                }
            ),
            Self::BatchTooLarge { len } => {
                write!(f, "{len} invalidation descriptors in one submission")
            }
            Self::Unsupported { what } => write!(f, "unsupported: {what}"),
            Self::Status { what, gsts } => write!(f, "{what} (GSTS {gsts:#010x})"),
            Self::Takeover(e) => write!(f, "{e}"),
        }
    }
}
