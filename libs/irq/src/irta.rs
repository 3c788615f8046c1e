//! The Interrupt Remapping Table Address Register, IRTA_REG (VT-d ch. 11, register descriptions;
//! the table itself is §9.10):
//!
//! | bits | field |
//! |---|---|
//! | 63:12 | IRTA: physical address of the table, 4-KiB aligned |
//! | 11 | EIME: extended interrupt mode (x2APIC, 32-bit destination IDs) |
//! | 10:4 | reserved (0) |
//! | 3:0 | S: the table has 2^(S+1) entries of 16 bytes |

use crate::error::FormatError;
use crate::types::ApicMode;

const EIME: u64 = 1 << 11;
const RESERVED: u64 = 0x7f0;
const SIZE_MASK: u64 = 0xf;
const PAGE: u64 = 4096;

/// Bytes per IRTE.
pub const IRTE_BYTES: usize = 16;

/// The S field of IRTA_REG: a table of 2^(S+1) entries, S in 0..=15 (2..=65536 entries).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub struct IrtSize(u8);

impl IrtSize {
    /// The largest table: 65536 entries (1 MiB).
    pub const MAX: Self = Self(15);

    /// From the 4-bit S field; `None` above 15.
    pub const fn from_field(s: u8) -> Option<Self> {
        if s <= 15 { Some(Self(s)) } else { None }
    }

    /// The smallest size with at least `entries` entries; `None` for more than 65536.
    pub const fn for_entries(entries: usize) -> Option<Self> {
        let mut s = 0;
        while s <= 15 {
            if (2usize << s) >= entries {
                return Some(Self(s));
            }
            s += 1;
        }
        None
    }

    /// The S field.
    pub const fn field(self) -> u8 {
        self.0
    }

    /// Number of entries, 2^(S+1).
    pub const fn entries(self) -> usize {
        2 << self.0
    }

    /// Size of the table in bytes.
    pub const fn bytes(self) -> usize {
        self.entries() * IRTE_BYTES
    }

    /// Alignment to place the table at: 4 KiB, or its own size when larger. The VT-d
    /// specification only asks for 4 KiB, but some implementations document the stricter rule
    /// (the VTD0_INTR_REMAP_TABLE_BASE register of Intel's Xeon E5/Core i7 IIO datasheets: "if
    /// the table is larger than 4 KB it must be size-aligned"); the hypervisor allocates so.
    pub const fn alignment(self) -> u64 {
        let bytes = self.bytes() as u64;
        if bytes > PAGE { bytes } else { PAGE }
    }
}

/// IRTA_REG's fields.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct Irta {
    /// Physical address of the table.
    pub table: u64,
    /// EIME: the APIC ID width of every entry.
    pub mode: ApicMode,
    /// S.
    pub size: IrtSize,
}

impl Irta {
    /// The register value; the table address must be 4-KiB aligned (placing it at
    /// [`IrtSize::alignment`] is the caller's choice).
    pub const fn encode(&self) -> Result<u64, FormatError> {
        let align = PAGE;
        if !self.table.is_multiple_of(align) {
            return Err(FormatError::MisalignedTable {
                addr: self.table,
                align,
            });
        }
        let eime = if matches!(self.mode, ApicMode::X2Apic) {
            EIME
        } else {
            0
        };
        Ok(self.table | eime | self.size.0 as u64)
    }

    /// Decodes a register value; reserved bits 10:4 set are an error.
    pub const fn decode(raw: u64) -> Result<Self, FormatError> {
        if raw & RESERVED != 0 {
            return Err(FormatError::ReservedBits {
                field: "IRTA_REG",
                bits: raw & RESERVED,
            });
        }
        Ok(Self {
            table: raw & !(PAGE - 1),
            mode: if raw & EIME != 0 {
                ApicMode::X2Apic
            } else {
                ApicMode::XApic
            },
            size: IrtSize((raw & SIZE_MASK) as u8),
        })
    }
}
