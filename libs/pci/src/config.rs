//! The configuration-space accessor trait and the common header fields.
//!
//! Layout references: PCI Local Bus Spec 3.0 §6.1 (configuration space organisation), §6.2.1
//! (device identification), §6.2.2 (Command / Status), §6.2.4 (Header Type); PCIe Base Spec r6.0
//! §7.5.1.1 (Type 0/1 common registers).

use crate::bdf::Bdf;
use crate::error::PciError;

/// Register offsets of the Type 0/1 configuration header.
pub mod reg {
    /// Vendor ID (16 bits).
    pub const VENDOR_ID: u16 = 0x00;
    /// Device ID (16 bits).
    pub const DEVICE_ID: u16 = 0x02;
    /// Command (16 bits).
    pub const COMMAND: u16 = 0x04;
    /// Status (16 bits).
    pub const STATUS: u16 = 0x06;
    /// Revision ID (8 bits).
    pub const REVISION_ID: u16 = 0x08;
    /// Programming interface (8 bits); class code bytes are 0x09..=0x0b.
    pub const PROG_IF: u16 = 0x09;
    /// Sub-class (8 bits).
    pub const SUBCLASS: u16 = 0x0a;
    /// Base class (8 bits).
    pub const BASE_CLASS: u16 = 0x0b;
    /// Header Type (8 bits): layout in bits 6:0, multi-function in bit 7.
    pub const HEADER_TYPE: u16 = 0x0e;
    /// Base Address Register 0; BAR n is at `BAR0 + 4 * n`.
    pub const BAR0: u16 = 0x10;
    /// Type 1: Primary Bus Number.
    pub const PRIMARY_BUS: u16 = 0x18;
    /// Type 1: Secondary Bus Number.
    pub const SECONDARY_BUS: u16 = 0x19;
    /// Type 1: Subordinate Bus Number.
    pub const SUBORDINATE_BUS: u16 = 0x1a;
    /// Type 2 (CardBus): capabilities pointer.
    pub const CARDBUS_CAP_PTR: u16 = 0x14;
    /// Type 0/1: capabilities pointer.
    pub const CAP_PTR: u16 = 0x34;
    /// First byte of the PCIe extended configuration space.
    pub const EXT_CAP_START: u16 = 0x100;
    /// Size of a PCIe function's configuration space.
    pub const CONFIG_SPACE_SIZE: u16 = 0x1000;
}

/// Command register bits (PCI Local Bus Spec 3.0 §6.2.2).
pub mod command {
    /// I/O Space decode enable.
    pub const IO_SPACE: u16 = 1 << 0;
    /// Memory Space decode enable.
    pub const MEMORY_SPACE: u16 = 1 << 1;
    /// Bus Master enable.
    pub const BUS_MASTER: u16 = 1 << 2;
    /// INTx emulation disable.
    pub const INTX_DISABLE: u16 = 1 << 10;
}

/// Status register bits (PCI Local Bus Spec 3.0 §6.2.3).
pub mod status {
    /// Capabilities List: the capability pointer is valid.
    pub const CAP_LIST: u16 = 1 << 4;
}

/// Access to PCI configuration space, one function at a time.
///
/// Implementations: ECAM/MMCONFIG (PCIe Base Spec §7.2.2), the legacy `0xCF8/0xCFC` mechanism, or
/// a fake for tests. Contract:
/// - `offset` is a byte offset below 0x1000; `read32`/`write32` receive dword-aligned offsets.
/// - A function that does not exist reads as all ones (a master abort / Unsupported Request
///   completion), and writes to it are dropped. Offsets the mechanism cannot reach (0x100 and up
///   through `0xCF8`) should read as all ones as well.
///
/// The sub-dword helpers are derived from the dword accessors. Writes are read-modify-write of
/// the containing dword, which writes back the neighbouring bytes: this crate never uses them on a
/// dword that holds RW1C bits (Command/Status, SR-IOV Control/Status are written as whole dwords
/// with zeros in the status half). Implementations with native byte/word accesses should override
/// them.
pub trait ConfigAccess {
    /// Reads the dword at `offset` (dword aligned).
    fn read32(&self, bdf: Bdf, offset: u16) -> u32;

    /// Writes the dword at `offset` (dword aligned).
    fn write32(&mut self, bdf: Bdf, offset: u16, value: u32);

    /// Reads the word at `offset` (the low bit is ignored).
    fn read16(&self, bdf: Bdf, offset: u16) -> u16 {
        let dword = self.read32(bdf, offset & !3);
        (dword >> (u32::from(offset & 2) * 8)) as u16
    }

    /// Reads the byte at `offset`.
    fn read8(&self, bdf: Bdf, offset: u16) -> u8 {
        let dword = self.read32(bdf, offset & !3);
        (dword >> (u32::from(offset & 3) * 8)) as u8
    }

    /// Writes the word at `offset` by read-modify-write of its dword (see the trait docs).
    fn write16(&mut self, bdf: Bdf, offset: u16, value: u16) {
        let aligned = offset & !3;
        let shift = u32::from(offset & 2) * 8;
        let old = self.read32(bdf, aligned);
        let new = (old & !(0xffff << shift)) | (u32::from(value) << shift);
        self.write32(bdf, aligned, new);
    }

    /// Writes the byte at `offset` by read-modify-write of its dword (see the trait docs).
    fn write8(&mut self, bdf: Bdf, offset: u16, value: u8) {
        let aligned = offset & !3;
        let shift = u32::from(offset & 3) * 8;
        let old = self.read32(bdf, aligned);
        let new = (old & !(0xff << shift)) | (u32::from(value) << shift);
        self.write32(bdf, aligned, new);
    }
}

impl<T: ConfigAccess + ?Sized> ConfigAccess for &mut T {
    fn read32(&self, bdf: Bdf, offset: u16) -> u32 {
        (**self).read32(bdf, offset)
    }
    fn write32(&mut self, bdf: Bdf, offset: u16, value: u32) {
        (**self).write32(bdf, offset, value);
    }
    fn read16(&self, bdf: Bdf, offset: u16) -> u16 {
        (**self).read16(bdf, offset)
    }
    fn read8(&self, bdf: Bdf, offset: u16) -> u8 {
        (**self).read8(bdf, offset)
    }
    fn write16(&mut self, bdf: Bdf, offset: u16, value: u16) {
        (**self).write16(bdf, offset, value);
    }
    fn write8(&mut self, bdf: Bdf, offset: u16, value: u8) {
        (**self).write8(bdf, offset, value);
    }
}

/// Layout of the configuration header (Header Type bits 6:0, PCI Local Bus Spec 3.0 §6.2.1).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HeaderLayout {
    /// Type 0: endpoint (6 BARs).
    Endpoint,
    /// Type 1: PCI-to-PCI bridge (2 BARs, bus numbers, windows).
    Bridge,
    /// Type 2: CardBus bridge.
    CardBus,
    /// A reserved layout value.
    Unknown(u8),
}

impl HeaderLayout {
    /// Decodes bits 6:0 of the Header Type byte.
    #[must_use]
    pub const fn from_header_type(header_type: u8) -> Self {
        match header_type & 0x7f {
            0 => Self::Endpoint,
            1 => Self::Bridge,
            2 => Self::CardBus,
            other => Self::Unknown(other),
        }
    }

    /// Number of BARs in this layout (6, 2, 0 for CardBus/unknown).
    #[must_use]
    pub const fn bar_count(self) -> u8 {
        match self {
            Self::Endpoint => 6,
            Self::Bridge => 2,
            Self::CardBus | Self::Unknown(_) => 0,
        }
    }
}

/// Class code triple (PCI Local Bus Spec 3.0 §6.2.1, PCI Code and ID Assignment Spec).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ClassCode {
    /// Base class (offset 0x0b), e.g. 0x02 network, 0x01 storage, 0x06 bridge.
    pub base: u8,
    /// Sub-class (offset 0x0a).
    pub sub: u8,
    /// Programming interface (offset 0x09).
    pub prog_if: u8,
}

impl ClassCode {
    /// The 24-bit value `base << 16 | sub << 8 | prog_if`.
    #[must_use]
    pub const fn as_u32(self) -> u32 {
        ((self.base as u32) << 16) | ((self.sub as u32) << 8) | self.prog_if as u32
    }
}

/// The identification part of a function's configuration header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Header {
    /// Vendor ID.
    pub vendor_id: u16,
    /// Device ID.
    pub device_id: u16,
    /// Command register at the time of reading.
    pub command: u16,
    /// Status register at the time of reading.
    pub status: u16,
    /// Revision ID.
    pub revision: u8,
    /// Class code.
    pub class: ClassCode,
    /// Raw Header Type byte.
    pub header_type: u8,
}

impl Header {
    /// Header layout (bits 6:0 of Header Type).
    #[must_use]
    pub const fn layout(&self) -> HeaderLayout {
        HeaderLayout::from_header_type(self.header_type)
    }

    /// Multi-function device (bit 7 of Header Type): functions 1..=7 of this device may exist.
    #[must_use]
    pub const fn multi_function(&self) -> bool {
        self.header_type & 0x80 != 0
    }

    /// The Status register says a capability list is present.
    #[must_use]
    pub const fn has_capabilities(&self) -> bool {
        self.status & status::CAP_LIST != 0
    }
}

/// Whether a function answers: its Vendor ID is neither `0xffff` (nothing there) nor `0x0000`
/// (not a valid vendor; some broken bridges return it).
#[must_use]
pub fn is_present<C: ConfigAccess + ?Sized>(cfg: &C, bdf: Bdf) -> bool {
    !matches!(cfg.read16(bdf, reg::VENDOR_ID), 0xffff | 0x0000)
}

/// Reads the identification header. [`PciError::NotPresent`] if the function does not answer.
pub fn read_header<C: ConfigAccess + ?Sized>(cfg: &C, bdf: Bdf) -> Result<Header, PciError> {
    let id = cfg.read32(bdf, reg::VENDOR_ID);
    let vendor_id = id as u16;
    if matches!(vendor_id, 0xffff | 0x0000) {
        return Err(PciError::NotPresent { bdf });
    }
    let cmd_status = cfg.read32(bdf, reg::COMMAND);
    let class_rev = cfg.read32(bdf, reg::REVISION_ID);
    let hdr_dword = cfg.read32(bdf, reg::HEADER_TYPE & !3);
    Ok(Header {
        vendor_id,
        device_id: (id >> 16) as u16,
        command: cmd_status as u16,
        status: (cmd_status >> 16) as u16,
        revision: class_rev as u8,
        class: ClassCode {
            base: (class_rev >> 24) as u8,
            sub: (class_rev >> 16) as u8,
            prog_if: (class_rev >> 8) as u8,
        },
        header_type: (hdr_dword >> 16) as u8,
    })
}

/// Reads the Command register.
pub fn read_command<C: ConfigAccess + ?Sized>(cfg: &C, bdf: Bdf) -> u16 {
    cfg.read16(bdf, reg::COMMAND)
}

/// Writes the Command register as a whole dword with zeros in the Status half, so that the
/// RW1C Status bits are left alone (writing 0 to an RW1C bit has no effect, PCI Local Bus Spec
/// 3.0 §6.2.3).
pub fn write_command<C: ConfigAccess + ?Sized>(cfg: &mut C, bdf: Bdf, value: u16) {
    cfg.write32(bdf, reg::COMMAND, u32::from(value));
}
