//! Remapping structures (VT-d spec §8.2 "Remapping Structure Types" and §8.3–§8.9).
//!
//! Every structure starts with Type (2 bytes) and Length (2 bytes). Known types:
//!
//! | Type | Structure | §   | Fixed part | Scopes |
//! |------|-----------|-----|-----------:|:------:|
//! | 0 | DRHD: DMA Remapping Hardware Unit Definition          | 8.3 | 16 | yes |
//! | 1 | RMRR: Reserved Memory Region Reporting               | 8.4 | 24 | yes |
//! | 2 | ATSR: Root Port ATS Capability Reporting             | 8.5 |  8 | yes |
//! | 3 | RHSA: Remapping Hardware Static Affinity             | 8.6 | 20 | no  |
//! | 4 | ANDD: ACPI Name-space Device Declaration             | 8.7 |  8 | no  |
//! | 5 | SATC: SoC Integrated Address Translation Cache       | 8.8 |  8 | yes |
//! | 6 | SIDP: SoC Integrated Device Property Reporting       | 8.9 |  8 | yes |
//!
//! Other types are reserved for future use; software must skip them by Length (§8.2), which the
//! parser does, reporting them as [`RemappingStructure::Unknown`].

use crate::bytes::{u8_at, u16_at, u32_at, u64_at};
use crate::scope::DeviceScopes;

/// Type values of the remapping structures.
pub mod structure_type {
    /// DMA Remapping Hardware Unit Definition.
    pub const DRHD: u16 = 0;
    /// Reserved Memory Region Reporting.
    pub const RMRR: u16 = 1;
    /// Root Port ATS Capability Reporting.
    pub const ATSR: u16 = 2;
    /// Remapping Hardware Static Affinity.
    pub const RHSA: u16 = 3;
    /// ACPI Name-space Device Declaration.
    pub const ANDD: u16 = 4;
    /// SoC Integrated Address Translation Cache Reporting.
    pub const SATC: u16 = 5;
    /// SoC Integrated Device Property Reporting.
    pub const SIDP: u16 = 6;
}

/// Minimum Length of a structure of `structure_type` (its fixed part); 4 for unknown types.
#[must_use]
pub const fn min_length(structure_type: u16) -> u16 {
    match structure_type {
        structure_type::DRHD => 16,
        structure_type::RMRR => 24,
        structure_type::RHSA => 20,
        structure_type::ATSR
        | structure_type::ANDD
        | structure_type::SATC
        | structure_type::SIDP => 8,
        _ => 4,
    }
}

/// One remapping structure, borrowing the table bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RemappingStructure<'a> {
    /// DMA Remapping Hardware Unit Definition (§8.3).
    Drhd(Drhd<'a>),
    /// Reserved Memory Region Reporting (§8.4).
    Rmrr(Rmrr<'a>),
    /// Root Port ATS Capability Reporting (§8.5).
    Atsr(Atsr<'a>),
    /// Remapping Hardware Static Affinity (§8.6).
    Rhsa(Rhsa<'a>),
    /// ACPI Name-space Device Declaration (§8.7).
    Andd(Andd<'a>),
    /// SoC Integrated Address Translation Cache Reporting (§8.8).
    Satc(Satc<'a>),
    /// SoC Integrated Device Property Reporting (§8.9).
    Sidp(Sidp<'a>),
    /// A reserved type, skipped by its Length.
    Unknown {
        /// The Type field.
        structure_type: u16,
        /// Offset from the start of the table.
        offset: usize,
        /// The whole structure (Length bytes).
        bytes: &'a [u8],
    },
}

impl<'a> RemappingStructure<'a> {
    /// Wraps validated structure bytes (Length bytes, at least [`min_length`]).
    pub(crate) fn new(structure_type: u16, offset: usize, bytes: &'a [u8]) -> Self {
        let raw = Raw { offset, bytes };
        match structure_type {
            structure_type::DRHD => Self::Drhd(Drhd(raw)),
            structure_type::RMRR => Self::Rmrr(Rmrr(raw)),
            structure_type::ATSR => Self::Atsr(Atsr(raw)),
            structure_type::RHSA => Self::Rhsa(Rhsa(raw)),
            structure_type::ANDD => Self::Andd(Andd(raw)),
            structure_type::SATC => Self::Satc(Satc(raw)),
            structure_type::SIDP => Self::Sidp(Sidp(raw)),
            _ => Self::Unknown {
                structure_type,
                offset,
                bytes,
            },
        }
    }

    /// The structure's device scopes (empty for RHSA, ANDD and unknown types).
    #[must_use]
    pub fn scopes(&self) -> DeviceScopes<'a> {
        match self {
            Self::Drhd(s) => s.scopes(),
            Self::Rmrr(s) => s.scopes(),
            Self::Atsr(s) => s.scopes(),
            Self::Satc(s) => s.scopes(),
            Self::Sidp(s) => s.scopes(),
            Self::Rhsa(_) | Self::Andd(_) | Self::Unknown { .. } => DeviceScopes::empty(),
        }
    }
}

/// Shared representation: offset in the table and the structure's bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Raw<'a> {
    offset: usize,
    bytes: &'a [u8],
}

impl<'a> Raw<'a> {
    fn u8(&self, off: usize) -> u8 {
        u8_at(self.bytes, off).unwrap_or(0)
    }
    fn u16(&self, off: usize) -> u16 {
        u16_at(self.bytes, off).unwrap_or(0)
    }
    fn u32(&self, off: usize) -> u32 {
        u32_at(self.bytes, off).unwrap_or(0)
    }
    fn u64(&self, off: usize) -> u64 {
        u64_at(self.bytes, off).unwrap_or(0)
    }
    fn scopes_from(&self, start: usize) -> DeviceScopes<'a> {
        DeviceScopes::new(self.bytes.get(start..).unwrap_or(&[]), self.offset + start)
    }
}

macro_rules! common {
    ($t:ident) => {
        impl<'a> $t<'a> {
            /// Offset of the structure from the start of the table.
            #[must_use]
            pub const fn offset(&self) -> usize {
                self.0.offset
            }
            /// The structure's raw bytes (exactly Length bytes).
            #[must_use]
            pub const fn bytes(&self) -> &'a [u8] {
                self.0.bytes
            }
        }
    };
}

/// DMA Remapping Hardware Unit Definition (§8.3): one remapping hardware unit.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Drhd<'a>(Raw<'a>);
common!(Drhd);

impl<'a> Drhd<'a> {
    /// Flags bit 0: INCLUDE_PCI_ALL.
    pub const INCLUDE_PCI_ALL: u8 = 1 << 0;

    /// Flags byte.
    #[must_use]
    pub fn flags(&self) -> u8 {
        self.0.u8(4)
    }

    /// INCLUDE_PCI_ALL: the unit covers every PCI-compatible device of its segment not claimed by
    /// another unit's scopes; its scopes then list only I/OxAPICs and HPETs (§8.3).
    #[must_use]
    pub fn include_pci_all(&self) -> bool {
        self.flags() & Self::INCLUDE_PCI_ALL != 0
    }

    /// Size field (offset 5; reserved before VT-d 3.x, 0 there): bits 3:0 give the register set
    /// size as 2^N 4 KiB pages.
    #[must_use]
    pub fn size_field(&self) -> u8 {
        self.0.u8(5)
    }

    /// Register set size in bytes: `4 KiB << (size & 0xf)` (4 KiB for size 0).
    #[must_use]
    pub fn register_set_size(&self) -> u64 {
        4096u64 << (self.size_field() & 0xf)
    }

    /// PCI Segment Number.
    #[must_use]
    pub fn segment(&self) -> u16 {
        self.0.u16(6)
    }

    /// Register Base Address (page aligned).
    #[must_use]
    pub fn register_base(&self) -> u64 {
        self.0.u64(8)
    }

    /// Device scopes.
    #[must_use]
    pub fn scopes(&self) -> DeviceScopes<'a> {
        self.0.scopes_from(16)
    }
}

/// Reserved Memory Region Reporting (§8.4): memory that the listed devices may DMA to at any time
/// and that must stay identity mapped for them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Rmrr<'a>(Raw<'a>);
common!(Rmrr);

impl<'a> Rmrr<'a> {
    /// PCI Segment Number.
    #[must_use]
    pub fn segment(&self) -> u16 {
        self.0.u16(6)
    }

    /// Reserved Memory Region Base Address (4 KiB aligned).
    #[must_use]
    pub fn base(&self) -> u64 {
        self.0.u64(8)
    }

    /// Reserved Memory Region Limit Address: the last byte, inclusive.
    #[must_use]
    pub fn limit(&self) -> u64 {
        self.0.u64(16)
    }

    /// Device scopes (endpoints that use the region).
    #[must_use]
    pub fn scopes(&self) -> DeviceScopes<'a> {
        self.0.scopes_from(24)
    }
}

/// Root Port ATS Capability Reporting (§8.5).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Atsr<'a>(Raw<'a>);
common!(Atsr);

impl<'a> Atsr<'a> {
    /// Flags bit 0: ALL_PORTS.
    pub const ALL_PORTS: u8 = 1 << 0;

    /// Flags byte.
    #[must_use]
    pub fn flags(&self) -> u8 {
        self.0.u8(4)
    }

    /// ALL_PORTS: every root port of the segment supports ATS transactions.
    #[must_use]
    pub fn all_ports(&self) -> bool {
        self.flags() & Self::ALL_PORTS != 0
    }

    /// PCI Segment Number.
    #[must_use]
    pub fn segment(&self) -> u16 {
        self.0.u16(6)
    }

    /// Device scopes (root ports, when not ALL_PORTS).
    #[must_use]
    pub fn scopes(&self) -> DeviceScopes<'a> {
        self.0.scopes_from(8)
    }
}

/// Remapping Hardware Static Affinity (§8.6): the NUMA proximity domain of a unit.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Rhsa<'a>(Raw<'a>);
common!(Rhsa);

impl Rhsa<'_> {
    /// Register Base Address of the DRHD this applies to.
    #[must_use]
    pub fn register_base(&self) -> u64 {
        self.0.u64(8)
    }

    /// Proximity Domain (as in SRAT).
    #[must_use]
    pub fn proximity_domain(&self) -> u32 {
        self.0.u32(16)
    }
}

/// ACPI Name-space Device Declaration (§8.7): names the ACPI device behind an ACPI-namespace
/// device scope's Enumeration ID.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Andd<'a>(Raw<'a>);
common!(Andd);

impl<'a> Andd<'a> {
    /// ACPI Device Number (matches an ACPI-namespace scope's Enumeration ID).
    #[must_use]
    pub fn acpi_device_number(&self) -> u8 {
        self.0.u8(7)
    }

    /// ACPI Object Name: the bytes from offset 8 up to (not including) the first NUL, or to the
    /// end of the structure if there is none.
    #[must_use]
    pub fn object_name(&self) -> &'a [u8] {
        let name = self.0.bytes.get(8..).unwrap_or(&[]);
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        name.get(..end).unwrap_or(&[])
    }
}

/// SoC Integrated Address Translation Cache Reporting (§8.8).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Satc<'a>(Raw<'a>);
common!(Satc);

impl<'a> Satc<'a> {
    /// Flags bit 0: ATC_REQUIRED.
    pub const ATC_REQUIRED: u8 = 1 << 0;

    /// Flags byte.
    #[must_use]
    pub fn flags(&self) -> u8 {
        self.0.u8(4)
    }

    /// ATC_REQUIRED: the listed devices need ATS enabled to function correctly.
    #[must_use]
    pub fn atc_required(&self) -> bool {
        self.flags() & Self::ATC_REQUIRED != 0
    }

    /// PCI Segment Number.
    #[must_use]
    pub fn segment(&self) -> u16 {
        self.0.u16(6)
    }

    /// Device scopes (SoC-integrated devices with an ATC).
    #[must_use]
    pub fn scopes(&self) -> DeviceScopes<'a> {
        self.0.scopes_from(8)
    }
}

/// SoC Integrated Device Property Reporting (§8.9).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Sidp<'a>(Raw<'a>);
common!(Sidp);

impl<'a> Sidp<'a> {
    /// PCI Segment Number.
    #[must_use]
    pub fn segment(&self) -> u16 {
        self.0.u16(6)
    }

    /// Device scopes; their Flags bytes carry the device properties.
    #[must_use]
    pub fn scopes(&self) -> DeviceScopes<'a> {
        self.0.scopes_from(8)
    }
}
