//! Typed errors. Every failure on hostile or absent hardware is one of these; nothing panics.

use crate::bdf::Bdf;

/// Errors of header, BAR and bridge access.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum PciError {
    /// The function does not answer (Vendor ID reads `0xffff` or `0x0000`).
    #[error("{bdf}: no function present")]
    NotPresent {
        /// The function.
        bdf: Bdf,
    },
    /// A Type 1 (bridge) header was required.
    #[error("{bdf}: not a PCI-to-PCI bridge (header type {header_type:#04x})")]
    NotABridge {
        /// The function.
        bdf: Bdf,
        /// Its Header Type byte.
        header_type: u8,
    },
    /// BAR index beyond the header's BAR count.
    #[error("{bdf}: BAR index {index} out of range for this header")]
    BarIndexOutOfRange {
        /// The function.
        bdf: Bdf,
        /// The index asked for.
        index: u8,
    },
    /// A 64-bit memory BAR in the last BAR slot has no upper half.
    #[error("{bdf}: 64-bit BAR {index} has no room for its upper dword")]
    Bar64InLastSlot {
        /// The function.
        bdf: Bdf,
        /// The BAR index.
        index: u8,
    },
    /// Memory BAR type `11b` is reserved (PCI Local Bus Spec 3.0 §6.2.5.1).
    #[error("{bdf}: BAR {index} uses the reserved memory type")]
    ReservedBarType {
        /// The function.
        bdf: Bdf,
        /// The BAR index.
        index: u8,
    },
    /// An address does not fit the BAR (not aligned to its size, or above 4 GiB in a 32-bit BAR).
    #[error("{bdf}: address {address:#x} does not fit BAR {index}")]
    BadBarAddress {
        /// The function.
        bdf: Bdf,
        /// The BAR index.
        index: u8,
        /// The rejected address.
        address: u64,
    },
}

/// Errors of capability-list walks (PCI Local Bus Spec 3.0 §6.7, PCIe Base Spec §7.6.3).
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum CapError {
    /// The list revisits an offset: it loops.
    #[error("{bdf}: capability list loops back to {offset:#x}")]
    Loop {
        /// The function.
        bdf: Bdf,
        /// The offset seen twice.
        offset: u16,
    },
    /// A pointer leaves the legal range (0x40..=0xfc for the legacy list, 0x100..=0xffc for the
    /// extended list).
    #[error("{bdf}: capability pointer {pointer:#x} out of range")]
    OutOfRange {
        /// The function.
        bdf: Bdf,
        /// The bad pointer.
        pointer: u16,
    },
    /// A pointer is not dword aligned (its two reserved low bits are set).
    #[error("{bdf}: capability pointer {pointer:#x} is not dword aligned")]
    Misaligned {
        /// The function.
        bdf: Bdf,
        /// The bad pointer.
        pointer: u16,
    },
    /// A capability header read as all ones in the middle of a walk: the function went away.
    #[error("{bdf}: capability header at {offset:#x} reads all ones")]
    AllOnes {
        /// The function.
        bdf: Bdf,
        /// Where.
        offset: u16,
    },
    /// The function does not answer at all.
    #[error("{bdf}: no function present")]
    NotPresent {
        /// The function.
        bdf: Bdf,
    },
}
