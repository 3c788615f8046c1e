//! Capability lists: the legacy list in the first 256 bytes and the PCIe extended list from 0x100.
//!
//! Legacy list: PCI Local Bus Spec 3.0 §6.7. The pointer at 0x34 (0x14 for CardBus) is valid when
//! Status bit 4 is set; each capability starts with an ID byte and a next-pointer byte; pointers
//! lie in 0x40..=0xfc with the two low bits reserved as zero; 0 ends the list.
//!
//! Extended list: PCIe Base Spec r6.0 §7.6.3. It starts at 0x100 with a dword header: ID in bits
//! 15:0, version in 19:16, next offset in 31:20 (0 ends the list). A header of 0 at 0x100 means no
//! extended capabilities.
//!
//! Both walks are bounded: every offset visited is remembered in a bitmap, so a list that loops
//! ends with [`CapError::Loop`] instead of spinning; pointers outside the legal range or with the
//! reserved low bits set end it with [`CapError::OutOfRange`] / [`CapError::Misaligned`]. This is
//! stricter than "mask the low bits" (which §6.7 asks of software): a device that sets them is out
//! of spec, and a hypervisor fails closed on it.

use crate::bdf::Bdf;
use crate::config::{ConfigAccess, HeaderLayout, reg, status};
use crate::error::CapError;

/// Legacy capability IDs (PCI Code and ID Assignment Spec §2).
pub mod cap_id {
    /// Power Management.
    pub const PM: u8 = 0x01;
    /// MSI.
    pub const MSI: u8 = 0x05;
    /// Vendor specific.
    pub const VENDOR: u8 = 0x09;
    /// Bridge subsystem vendor ID.
    pub const SSVID: u8 = 0x0d;
    /// PCI Express.
    pub const PCIE: u8 = 0x10;
    /// MSI-X.
    pub const MSIX: u8 = 0x11;
}

/// Extended capability IDs (PCI Code and ID Assignment Spec §3).
pub mod ext_cap_id {
    /// Advanced Error Reporting.
    pub const AER: u16 = 0x0001;
    /// Access Control Services.
    pub const ACS: u16 = 0x000d;
    /// Alternative Routing-ID Interpretation.
    pub const ARI: u16 = 0x000e;
    /// Address Translation Services.
    pub const ATS: u16 = 0x000f;
    /// Single Root I/O Virtualization.
    pub const SRIOV: u16 = 0x0010;
}

/// A legacy capability: its ID and the offset of its header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Capability {
    /// Capability ID.
    pub id: u8,
    /// Offset of the capability header in configuration space.
    pub offset: u16,
}

/// An extended capability: its ID, version and offset.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ExtCapability {
    /// Extended capability ID.
    pub id: u16,
    /// Capability version (header bits 19:16).
    pub version: u8,
    /// Offset of the capability header in configuration space.
    pub offset: u16,
}

/// Iterator over the legacy capability list; see [`capabilities`].
#[derive(Debug)]
pub struct Capabilities<'a, C: ?Sized> {
    cfg: &'a C,
    bdf: Bdf,
    next: u16,
    visited: u64,
    pending_error: Option<CapError>,
    done: bool,
}

/// Walks the legacy capability list of `bdf`.
///
/// Yields `Ok` capabilities in list order; a malformed list yields one `Err` and then ends. An
/// absent function yields [`CapError::NotPresent`]; a function whose Status has no Capabilities
/// List bit yields nothing.
pub fn capabilities<C: ConfigAccess + ?Sized>(cfg: &C, bdf: Bdf) -> Capabilities<'_, C> {
    let mut it = Capabilities {
        cfg,
        bdf,
        next: 0,
        visited: 0,
        pending_error: None,
        done: false,
    };
    let id = cfg.read32(bdf, reg::VENDOR_ID);
    if matches!(id as u16, 0xffff | 0x0000) {
        it.pending_error = Some(CapError::NotPresent { bdf });
        return it;
    }
    if cfg.read16(bdf, reg::STATUS) & status::CAP_LIST == 0 {
        it.done = true;
        return it;
    }
    let ptr_reg = match HeaderLayout::from_header_type(cfg.read8(bdf, reg::HEADER_TYPE)) {
        HeaderLayout::CardBus => reg::CARDBUS_CAP_PTR,
        _ => reg::CAP_PTR,
    };
    it.next = u16::from(cfg.read8(bdf, ptr_reg));
    it
}

impl<C: ConfigAccess + ?Sized> Iterator for Capabilities<'_, C> {
    type Item = Result<Capability, CapError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(err) = self.pending_error.take() {
            self.done = true;
            return Some(Err(err));
        }
        if self.done {
            return None;
        }
        let bdf = self.bdf;
        let p = self.next;
        let step = if p == 0 {
            None
        } else if p & 3 != 0 {
            Some(Err(CapError::Misaligned { bdf, pointer: p }))
        } else if !(0x40..=0xfc).contains(&p) {
            Some(Err(CapError::OutOfRange { bdf, pointer: p }))
        } else if self.visited & (1u64 << (p / 4)) != 0 {
            Some(Err(CapError::Loop { bdf, offset: p }))
        } else {
            self.visited |= 1u64 << (p / 4);
            let header = self.cfg.read16(bdf, p);
            if header == 0xffff {
                Some(Err(CapError::AllOnes { bdf, offset: p }))
            } else {
                self.next = header >> 8;
                Some(Ok(Capability {
                    id: header as u8,
                    offset: p,
                }))
            }
        };
        if !matches!(step, Some(Ok(_))) {
            self.done = true;
        }
        step
    }
}

/// Iterator over the extended capability list; see [`ext_capabilities`].
#[derive(Debug)]
pub struct ExtCapabilities<'a, C: ?Sized> {
    cfg: &'a C,
    bdf: Bdf,
    next: u16,
    visited: [u64; 16],
    pending_error: Option<CapError>,
    done: bool,
}

/// Walks the PCIe extended capability list of `bdf`, starting at 0x100.
///
/// A header of 0 or all ones at 0x100 means there is no extended list (a conventional function,
/// or an access mechanism that cannot reach offsets above 0xff): nothing is yielded. An absent
/// function yields [`CapError::NotPresent`]. A malformed list yields one `Err` and then ends.
pub fn ext_capabilities<C: ConfigAccess + ?Sized>(cfg: &C, bdf: Bdf) -> ExtCapabilities<'_, C> {
    let mut it = ExtCapabilities {
        cfg,
        bdf,
        next: reg::EXT_CAP_START,
        visited: [0; 16],
        pending_error: None,
        done: false,
    };
    let id = cfg.read32(bdf, reg::VENDOR_ID);
    if matches!(id as u16, 0xffff | 0x0000) {
        it.pending_error = Some(CapError::NotPresent { bdf });
        return it;
    }
    if matches!(cfg.read32(bdf, reg::EXT_CAP_START), 0 | u32::MAX) {
        it.done = true;
    }
    it
}

impl<C: ConfigAccess + ?Sized> Iterator for ExtCapabilities<'_, C> {
    type Item = Result<ExtCapability, CapError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(err) = self.pending_error.take() {
            self.done = true;
            return Some(Err(err));
        }
        if self.done {
            return None;
        }
        let bdf = self.bdf;
        let p = self.next;
        let slot = usize::from(p / 4);
        let (word, bit) = (slot / 64, 1u64 << (slot % 64));
        let step = if p == 0 {
            None
        } else if p & 3 != 0 {
            Some(Err(CapError::Misaligned { bdf, pointer: p }))
        } else if !(reg::EXT_CAP_START..reg::CONFIG_SPACE_SIZE).contains(&p) {
            Some(Err(CapError::OutOfRange { bdf, pointer: p }))
        } else if self.visited.get(word).is_some_and(|w| w & bit != 0) {
            Some(Err(CapError::Loop { bdf, offset: p }))
        } else {
            if let Some(w) = self.visited.get_mut(word) {
                *w |= bit;
            }
            let header = self.cfg.read32(bdf, p);
            if header == u32::MAX {
                Some(Err(CapError::AllOnes { bdf, offset: p }))
            } else {
                self.next = (header >> 20) as u16;
                Some(Ok(ExtCapability {
                    id: header as u16,
                    version: ((header >> 16) & 0xf) as u8,
                    offset: p,
                }))
            }
        };
        if !matches!(step, Some(Ok(_))) {
            self.done = true;
        }
        step
    }
}

/// Offset of the first legacy capability with `id`, `None` if the list has none.
///
/// Errors in the list before the match are returned; errors after it are not looked for.
pub fn find_capability<C: ConfigAccess + ?Sized>(
    cfg: &C,
    bdf: Bdf,
    id: u8,
) -> Result<Option<u16>, CapError> {
    for cap in capabilities(cfg, bdf) {
        let cap = cap?;
        if cap.id == id {
            return Ok(Some(cap.offset));
        }
    }
    Ok(None)
}

/// Offset of the first extended capability with `id`, `None` if the list has none.
///
/// Errors in the list before the match are returned; errors after it are not looked for.
pub fn find_ext_capability<C: ConfigAccess + ?Sized>(
    cfg: &C,
    bdf: Bdf,
    id: u16,
) -> Result<Option<u16>, CapError> {
    for cap in ext_capabilities(cfg, bdf) {
        let cap = cap?;
        if cap.id == id {
            return Ok(Some(cap.offset));
        }
    }
    Ok(None)
}
