//! Typed errors of DMAR parsing and device-scope resolution. Offsets are byte offsets from the
//! start of the table.

use conduit_pci::Bdf;

/// A malformed DMAR table.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum DmarError {
    /// The buffer is too short to hold what must be there.
    #[error("truncated: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes in the buffer.
        available: usize,
    },
    /// The signature is not `DMAR`.
    #[error("signature {found:?} is not DMAR")]
    BadSignature {
        /// The four bytes found.
        found: [u8; 4],
    },
    /// The header's Length is larger than the buffer.
    #[error("table length {length} exceeds the {available}-byte buffer")]
    LengthExceedsBuffer {
        /// The Length field.
        length: u32,
        /// Bytes in the buffer.
        available: usize,
    },
    /// The header's Length is smaller than the fixed DMAR header (48 bytes).
    #[error("table length {length} is shorter than the 48-byte DMAR header")]
    LengthTooSmall {
        /// The Length field.
        length: u32,
    },
    /// The bytes of the table do not sum to zero.
    #[error("checksum mismatch: bytes sum to {sum:#04x}")]
    BadChecksum {
        /// The byte sum (mod 256) of the whole table.
        sum: u8,
    },
    /// Fewer than four bytes left for a remapping structure header.
    #[error("structure header at {offset} truncated")]
    StructureHeaderTruncated {
        /// Where the structure starts.
        offset: usize,
    },
    /// A remapping structure's Length is 0 or below the minimum for its type.
    #[error("structure type {structure_type} at {offset}: length {length} too small")]
    StructureTooShort {
        /// Where the structure starts.
        offset: usize,
        /// Its Type.
        structure_type: u16,
        /// Its Length.
        length: u16,
    },
    /// A remapping structure's Length runs past the end of the table.
    #[error("structure at {offset}: length {length} overruns the table ({remaining} bytes left)")]
    StructureOverrun {
        /// Where the structure starts.
        offset: usize,
        /// Its Length.
        length: u16,
        /// Bytes left in the table from `offset`.
        remaining: usize,
    },
    /// Fewer than two bytes left for a device scope's type and length.
    #[error("device scope header at {offset} truncated")]
    ScopeHeaderTruncated {
        /// Where the scope starts.
        offset: usize,
    },
    /// A device scope's Length is below 8 (6-byte header plus one path entry).
    #[error("device scope at {offset}: length {length} too small")]
    ScopeTooShort {
        /// Where the scope starts.
        offset: usize,
        /// Its Length.
        length: u8,
    },
    /// A device scope's Length runs past the end of its remapping structure.
    #[error(
        "device scope at {offset}: length {length} overruns its structure ({remaining} bytes left)"
    )]
    ScopeOverrun {
        /// Where the scope starts.
        offset: usize,
        /// Its Length.
        length: u8,
        /// Bytes left in the structure from `offset`.
        remaining: usize,
    },
    /// A device scope's path is not a whole number of (device, function) pairs.
    #[error("device scope at {offset}: length {length} leaves an odd path")]
    ScopeOddPath {
        /// Where the scope starts.
        offset: usize,
        /// Its Length.
        length: u8,
    },
}

/// Why a device scope could not be resolved to PCI functions.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ResolveError {
    /// A path entry's device is above 31 or its function above 7.
    #[error(
        "path entry {device:#x}.{function:#x} on bus {bus:#04x} is not a valid device/function"
    )]
    InvalidPathEntry {
        /// Bus of the entry.
        bus: u8,
        /// Device number found.
        device: u8,
        /// Function number found.
        function: u8,
    },
    /// An intermediate path element (or a bridge scope's target) is not a bridge with a
    /// configured secondary bus.
    #[error("{bdf}: not a bridge with a secondary bus")]
    NotABridge {
        /// The function that should have been a bridge.
        bdf: Bdf,
    },
    /// The scope has no path entries (only possible on unvalidated input).
    #[error("device scope has an empty path")]
    EmptyPath,
}
