//! The DMAR table: ACPI header, DMAR fields, and the walk over remapping structures.
//!
//! VT-d spec §8.1 "DMA Remapping Reporting Structure": the standard 36-byte ACPI header
//! (ACPI spec §5.2.6) with signature `DMAR`, then Host Address Width (1 byte, holding N for a
//! width of N+1 bits), Flags (1 byte: bit 0 INTR_REMAP, bit 1 X2APIC_OPT_OUT, bit 2
//! DMA_CTRL_PLATFORM_OPT_IN_FLAG), 10 reserved bytes, and from offset 48 the remapping structures
//! (§8.2). The checksum byte makes all Length bytes of the table sum to zero (mod 256).

use core::fmt;

use crate::bytes::{array_at, u8_at, u16_at, u32_at};
use crate::error::DmarError;
use crate::structures::{RemappingStructure, min_length};

/// Size of the standard ACPI table header.
pub const ACPI_HEADER_LEN: usize = 36;
/// Offset of the first remapping structure.
pub const DMAR_HEADER_LEN: usize = 48;

/// The standard ACPI system description table header (ACPI spec §5.2.6).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AcpiHeader {
    /// Signature (`DMAR`).
    pub signature: [u8; 4],
    /// Length of the whole table in bytes.
    pub length: u32,
    /// Revision.
    pub revision: u8,
    /// Checksum byte.
    pub checksum: u8,
    /// OEM ID.
    pub oem_id: [u8; 6],
    /// OEM Table ID.
    pub oem_table_id: [u8; 8],
    /// OEM Revision.
    pub oem_revision: u32,
    /// Creator (ASL compiler) ID.
    pub creator_id: [u8; 4],
    /// Creator revision.
    pub creator_revision: u32,
}

/// The DMAR Flags byte.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DmarFlags(pub u8);

impl DmarFlags {
    /// Bit 0: the platform supports interrupt remapping.
    pub const INTR_REMAP: u8 = 1 << 0;
    /// Bit 1: firmware asks the OS not to enable x2APIC mode (only valid with INTR_REMAP).
    pub const X2APIC_OPT_OUT: u8 = 1 << 1;
    /// Bit 2: the platform supports DMA control opt-in (see §8.1 and the platform opt-in
    /// requirements for pre-boot DMA protection).
    pub const DMA_CTRL_PLATFORM_OPT_IN: u8 = 1 << 2;

    /// INTR_REMAP is set.
    #[must_use]
    pub const fn intr_remap(self) -> bool {
        self.0 & Self::INTR_REMAP != 0
    }

    /// X2APIC_OPT_OUT is set.
    #[must_use]
    pub const fn x2apic_opt_out(self) -> bool {
        self.0 & Self::X2APIC_OPT_OUT != 0
    }

    /// DMA_CTRL_PLATFORM_OPT_IN_FLAG is set.
    #[must_use]
    pub const fn dma_ctrl_platform_opt_in(self) -> bool {
        self.0 & Self::DMA_CTRL_PLATFORM_OPT_IN != 0
    }
}

impl fmt::Debug for DmarFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DmarFlags({:#04x}", self.0)?;
        for (bit, name) in [
            (Self::INTR_REMAP, "INTR_REMAP"),
            (Self::X2APIC_OPT_OUT, "X2APIC_OPT_OUT"),
            (Self::DMA_CTRL_PLATFORM_OPT_IN, "DMA_CTRL_PLATFORM_OPT_IN"),
        ] {
            if self.0 & bit != 0 {
                write!(f, " {name}")?;
            }
        }
        write!(f, ")")
    }
}

/// Parsing options.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ParseOptions {
    /// Reject a table whose bytes do not sum to zero (default: true).
    pub verify_checksum: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self {
            verify_checksum: true,
        }
    }
}

/// A parsed DMAR table borrowing its bytes.
///
/// [`Dmar::parse`] checks the header, the Length against the buffer, the checksum, and walks
/// every remapping structure and device scope once, so a successfully parsed table iterates
/// without errors. The iterators still return `Result`s: they never panic and never trust the
/// bytes blindly.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Dmar<'a> {
    bytes: &'a [u8],
    header: AcpiHeader,
}

impl<'a> Dmar<'a> {
    /// Parses and fully validates a DMAR table. `bytes` may extend past the table's Length (e.g.
    /// a mapped page); only Length bytes are used.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, DmarError> {
        Self::parse_with(bytes, ParseOptions::default())
    }

    /// [`Dmar::parse`] with options (e.g. to accept firmware with a wrong checksum).
    pub fn parse_with(bytes: &'a [u8], options: ParseOptions) -> Result<Self, DmarError> {
        let available = bytes.len();
        let truncated = DmarError::Truncated {
            needed: DMAR_HEADER_LEN,
            available,
        };
        let signature: [u8; 4] = array_at(bytes, 0).ok_or(truncated)?;
        if &signature != b"DMAR" {
            return Err(DmarError::BadSignature { found: signature });
        }
        let length = u32_at(bytes, 4).ok_or(truncated)?;
        let len = usize::try_from(length).unwrap_or(usize::MAX);
        if len > available {
            return Err(DmarError::LengthExceedsBuffer { length, available });
        }
        if len < DMAR_HEADER_LEN {
            return Err(DmarError::LengthTooSmall { length });
        }
        let bytes = bytes.get(..len).ok_or(truncated)?;
        if options.verify_checksum {
            let sum = bytes.iter().fold(0u8, |s, &b| s.wrapping_add(b));
            if sum != 0 {
                return Err(DmarError::BadChecksum { sum });
            }
        }
        let header = AcpiHeader {
            signature,
            length,
            revision: u8_at(bytes, 8).unwrap_or(0),
            checksum: u8_at(bytes, 9).unwrap_or(0),
            oem_id: array_at(bytes, 10).unwrap_or_default(),
            oem_table_id: array_at(bytes, 16).unwrap_or_default(),
            oem_revision: u32_at(bytes, 24).unwrap_or(0),
            creator_id: array_at(bytes, 28).unwrap_or_default(),
            creator_revision: u32_at(bytes, 32).unwrap_or(0),
        };
        let dmar = Self { bytes, header };
        dmar.validate()?;
        Ok(dmar)
    }

    /// Walks every structure and every device scope; the first error found.
    pub fn validate(&self) -> Result<(), DmarError> {
        for s in self.structures() {
            for scope in s?.scopes() {
                scope?;
            }
        }
        Ok(())
    }

    /// The table bytes (exactly Length bytes).
    #[must_use]
    pub const fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The ACPI header.
    #[must_use]
    pub const fn header(&self) -> &AcpiHeader {
        &self.header
    }

    /// The raw Host Address Width byte (N).
    #[must_use]
    pub fn host_address_width_raw(&self) -> u8 {
        u8_at(self.bytes, ACPI_HEADER_LEN).unwrap_or(0)
    }

    /// Maximum DMA physical addressability in bits: N + 1 (e.g. 48 for 0x2f).
    #[must_use]
    pub fn host_address_width(&self) -> u16 {
        u16::from(self.host_address_width_raw()) + 1
    }

    /// The Flags byte.
    #[must_use]
    pub fn flags(&self) -> DmarFlags {
        DmarFlags(u8_at(self.bytes, ACPI_HEADER_LEN + 1).unwrap_or(0))
    }

    /// The remapping structures in table order.
    #[must_use]
    pub fn structures(&self) -> Structures<'a> {
        Structures {
            bytes: self.bytes,
            pos: DMAR_HEADER_LEN,
            done: false,
        }
    }

    /// The DRHDs in table order. On a parsed (hence validated) table this sees every DRHD; on a
    /// framing error it would simply stop.
    pub fn drhds(&self) -> impl Iterator<Item = crate::Drhd<'a>> + use<'a> {
        self.structures()
            .map_while(Result::ok)
            .filter_map(|s| match s {
                RemappingStructure::Drhd(d) => Some(d),
                _ => None,
            })
    }
}

/// Iterator over remapping structures. Yields one `Err` on a malformed structure and then ends.
#[derive(Clone, Debug)]
pub struct Structures<'a> {
    bytes: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Structures<'a> {
    fn step(&mut self) -> Option<Result<RemappingStructure<'a>, DmarError>> {
        let remaining = self.bytes.len().checked_sub(self.pos)?;
        if remaining == 0 {
            return None;
        }
        let offset = self.pos;
        let (Some(structure_type), Some(length)) =
            (u16_at(self.bytes, offset), u16_at(self.bytes, offset + 2))
        else {
            return Some(Err(DmarError::StructureHeaderTruncated { offset }));
        };
        if length < min_length(structure_type) {
            return Some(Err(DmarError::StructureTooShort {
                offset,
                structure_type,
                length,
            }));
        }
        if usize::from(length) > remaining {
            return Some(Err(DmarError::StructureOverrun {
                offset,
                length,
                remaining,
            }));
        }
        let end = offset + usize::from(length);
        let bytes = self.bytes.get(offset..end)?;
        self.pos = end;
        Some(Ok(RemappingStructure::new(structure_type, offset, bytes)))
    }
}

impl<'a> Iterator for Structures<'a> {
    type Item = Result<RemappingStructure<'a>, DmarError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.step();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structure_iterator_yields_one_error_then_ends() {
        // Bypass `parse` to walk a malformed body directly.
        let mut bytes = [0u8; 60];
        bytes[48..52].copy_from_slice(&[0x42, 0, 8, 0]); // unknown, 8 bytes
        bytes[56..60].copy_from_slice(&[0, 0, 0, 0]); // DRHD with Length 0
        let mut it = Structures {
            bytes: &bytes,
            pos: DMAR_HEADER_LEN,
            done: false,
        };
        assert!(matches!(
            it.next(),
            Some(Ok(RemappingStructure::Unknown {
                structure_type: 0x42,
                ..
            }))
        ));
        assert_eq!(
            it.next(),
            Some(Err(DmarError::StructureTooShort {
                offset: 56,
                structure_type: 0,
                length: 0
            }))
        );
        assert_eq!(it.next(), None);
        assert_eq!(it.next(), None);
    }

    #[test]
    fn scope_iterator_yields_one_error_then_ends() {
        let bytes = [1u8, 8, 0, 0, 0, 0, 2, 0, 1, 3, 0, 0];
        let mut it = crate::DeviceScopes::new(&bytes, 100);
        assert!(matches!(it.next(), Some(Ok(s)) if s.offset() == 100));
        assert_eq!(
            it.next(),
            Some(Err(DmarError::ScopeTooShort {
                offset: 108,
                length: 3
            }))
        );
        assert_eq!(it.next(), None);
    }
}
