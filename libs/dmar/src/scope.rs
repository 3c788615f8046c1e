//! Device Scope structures (VT-d spec §8.3.1).
//!
//! Layout: Type (1), Length (1), Flags (1, defined for SIDP scopes in VT-d 4.x; reserved
//! elsewhere), Reserved (1), Enumeration ID (1), Start Bus Number (1), then the Path: a list of
//! (Device, Function) byte pairs. The first pair names a function on the start bus; each further
//! pair names a function on the secondary bus of the bridge named by the pair before it
//! (§8.3.1, "Path"). Types: 1 PCI endpoint, 2 PCI sub-hierarchy (bridge), 3 I/OxAPIC
//! (§8.3.1.1), 4 MSI-capable HPET (§8.3.1.2), 5 ACPI namespace device (§8.3.1.3).

use crate::bytes::{u8_at, u16_at};
use crate::error::DmarError;

/// Smallest legal device scope: 6-byte header plus one path entry.
pub const MIN_SCOPE_LEN: u8 = 8;

/// Device Scope Entry Type (§8.3.1).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ScopeType {
    /// 1: PCI Endpoint Device.
    Endpoint,
    /// 2: PCI Sub-hierarchy: the bridge and every function behind it.
    Bridge,
    /// 3: I/OxAPIC; Enumeration ID is its I/O APIC ID.
    IoApic,
    /// 4: MSI-capable HPET; Enumeration ID is its HPET number.
    Hpet,
    /// 5: ACPI namespace device; Enumeration ID is its ACPI device number (see ANDD).
    AcpiNamespace,
    /// 0 or a reserved value.
    Unknown(u8),
}

impl ScopeType {
    /// Decodes the type byte.
    #[must_use]
    pub const fn from_u8(t: u8) -> Self {
        match t {
            1 => Self::Endpoint,
            2 => Self::Bridge,
            3 => Self::IoApic,
            4 => Self::Hpet,
            5 => Self::AcpiNamespace,
            other => Self::Unknown(other),
        }
    }

    /// The type byte.
    #[must_use]
    pub const fn as_u8(self) -> u8 {
        match self {
            Self::Endpoint => 1,
            Self::Bridge => 2,
            Self::IoApic => 3,
            Self::Hpet => 4,
            Self::AcpiNamespace => 5,
            Self::Unknown(t) => t,
        }
    }
}

/// One (Device, Function) element of a scope path, as found in the table (not range-checked:
/// see [`crate::resolve`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PathEntry {
    /// Device number.
    pub device: u8,
    /// Function number.
    pub function: u8,
}

/// A validated device scope, borrowing the table bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DeviceScope<'a> {
    offset: usize,
    bytes: &'a [u8],
}

impl<'a> DeviceScope<'a> {
    /// Offset of the scope from the start of the table.
    #[must_use]
    pub const fn offset(&self) -> usize {
        self.offset
    }

    /// The scope's raw bytes (exactly Length bytes).
    #[must_use]
    pub const fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Entry type.
    #[must_use]
    pub fn scope_type(&self) -> ScopeType {
        ScopeType::from_u8(u8_at(self.bytes, 0).unwrap_or(0))
    }

    /// Flags byte (offset 2).
    #[must_use]
    pub fn flags(&self) -> u8 {
        u8_at(self.bytes, 2).unwrap_or(0)
    }

    /// Enumeration ID (I/O APIC ID, HPET number or ACPI device number; 0 for PCI scopes).
    #[must_use]
    pub fn enumeration_id(&self) -> u8 {
        u8_at(self.bytes, 4).unwrap_or(0)
    }

    /// Start Bus Number.
    #[must_use]
    pub fn start_bus(&self) -> u8 {
        u8_at(self.bytes, 5).unwrap_or(0)
    }

    /// The path, first element first.
    pub fn path(&self) -> impl ExactSizeIterator<Item = PathEntry> + 'a {
        self.bytes
            .get(6..)
            .unwrap_or(&[])
            .as_chunks::<2>()
            .0
            .iter()
            .map(|&[device, function]| PathEntry { device, function })
    }

    /// Number of path entries.
    #[must_use]
    pub fn path_len(&self) -> usize {
        self.bytes.len().saturating_sub(6) / 2
    }
}

/// Iterator over the device scopes of a remapping structure. Yields one `Err` on a malformed
/// scope and then ends.
#[derive(Clone, Debug)]
pub struct DeviceScopes<'a> {
    bytes: &'a [u8],
    base: usize,
    pos: usize,
    done: bool,
}

impl<'a> DeviceScopes<'a> {
    /// Scopes in `bytes`, which start at table offset `base`.
    pub(crate) const fn new(bytes: &'a [u8], base: usize) -> Self {
        Self {
            bytes,
            base,
            pos: 0,
            done: false,
        }
    }

    /// An iterator over nothing (for structures without scopes).
    pub(crate) const fn empty() -> Self {
        Self {
            bytes: &[],
            base: 0,
            pos: 0,
            done: true,
        }
    }

    fn step(&mut self) -> Option<Result<DeviceScope<'a>, DmarError>> {
        let remaining = self.bytes.len().checked_sub(self.pos)?;
        if remaining == 0 {
            return None;
        }
        let offset = self.base + self.pos;
        let Some(length) = u16_at(self.bytes, self.pos).map(|h| (h >> 8) as u8) else {
            return Some(Err(DmarError::ScopeHeaderTruncated { offset }));
        };
        if length < MIN_SCOPE_LEN {
            return Some(Err(DmarError::ScopeTooShort { offset, length }));
        }
        if usize::from(length) > remaining {
            return Some(Err(DmarError::ScopeOverrun {
                offset,
                length,
                remaining,
            }));
        }
        if length % 2 != 0 {
            return Some(Err(DmarError::ScopeOddPath { offset, length }));
        }
        let end = self.pos + usize::from(length);
        let bytes = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(Ok(DeviceScope { offset, bytes }))
    }
}

impl<'a> Iterator for DeviceScopes<'a> {
    type Item = Result<DeviceScope<'a>, DmarError>;

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
