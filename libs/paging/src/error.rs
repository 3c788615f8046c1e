//! The one error type of every table operation.

use crate::types::{Access, Level, MemoryType, PagingLevels};

/// Why a table operation was refused. Every variant is returned before the table changed, or
/// after the table was put back to an equivalent state (see each operation's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An input address (IOVA / GPA / virtual address) is not 4 KiB aligned.
    #[error("address {addr:#x} is not 4 KiB aligned")]
    MisalignedAddress {
        /// The offending address.
        addr: u64,
    },
    /// A physical address is not 4 KiB aligned.
    #[error("physical address {phys:#x} is not 4 KiB aligned")]
    MisalignedPhysical {
        /// The offending physical address.
        phys: u64,
    },
    /// A length is not a multiple of 4 KiB.
    #[error("length {len:#x} is not a multiple of 4 KiB")]
    MisalignedLength {
        /// The offending length.
        len: u64,
    },
    /// A range of length zero.
    #[error("empty range")]
    EmptyRange,
    /// An input address lies outside the table's address space: beyond its width
    /// (39 or 48 bits) or, for host paging, not canonical; or a range wraps around or crosses
    /// the non-canonical hole.
    #[error("address {addr:#x} is outside the {bits}-bit input address space")]
    AddressOutOfRange {
        /// The offending address: the range's start, or its last address.
        addr: u64,
        /// Input-address width of the table.
        bits: u32,
    },
    /// A physical address lies beyond the table's physical-address width.
    #[error("physical address {phys:#x} is beyond the {bits}-bit physical address width")]
    PhysicalOutOfRange {
        /// The start of the range if it is already beyond the width, else the first physical
        /// address beyond the width.
        phys: u64,
        /// Physical-address width of the table.
        bits: u8,
    },
    /// Part of the range to map is already mapped.
    #[error("address {addr:#x} is already mapped")]
    AlreadyMapped {
        /// The first mapped address inside the requested range.
        addr: u64,
    },
    /// The address has no translation.
    #[error("address {addr:#x} is not mapped")]
    NotMapped {
        /// The address looked up.
        addr: u64,
    },
    /// The frame allocator had no frame left.
    #[error("out of page-table frames")]
    OutOfFrames,
    /// The frame allocator returned a frame that is not 4 KiB aligned or lies beyond the
    /// physical-address width. The frame was handed back to it.
    #[error("frame allocator returned unusable frame {frame:#x}")]
    BadFrame {
        /// The frame returned.
        frame: u64,
    },
    /// The format cannot express these access rights (e.g. write-only in EPT, no read access in
    /// host paging, `USER` in EPT or VT-d, no rights at all).
    #[error("access rights {access:?} cannot be expressed by this format")]
    UnsupportedAccess {
        /// The rights requested.
        access: Access,
    },
    /// The format cannot express this memory type.
    #[error("memory type {memory_type:?} cannot be expressed by this format")]
    UnsupportedMemoryType {
        /// The type requested.
        memory_type: MemoryType,
    },
    /// The format does not support tables with this many levels (host 4-level paging has
    /// exactly four).
    #[error("{levels:?} levels are not supported by this format")]
    UnsupportedLevels {
        /// The levels requested.
        levels: PagingLevels,
    },
    /// The configured physical-address width is outside 32..=52.
    #[error("physical-address width {bits} is outside 32..=52")]
    InvalidPhysicalWidth {
        /// The width requested.
        bits: u8,
    },
    /// A read-only walk met an entry outside the memory it may read.
    #[error("paging entry at {phys:#x} is outside the readable memory")]
    Unreadable {
        /// Physical address of the entry.
        phys: u64,
    },
    /// A read-only walk met a present entry with reserved bits set (a page fault with the RSVD
    /// flag on the processor).
    #[error("level-{} entry {raw:#x} has reserved bits {bits:#x} set", level.number())]
    ReservedBits {
        /// Level of the table holding the entry.
        level: Level,
        /// The raw entry.
        raw: u64,
        /// The reserved bits that are set.
        bits: u64,
    },
}
