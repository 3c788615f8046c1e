//! The filtered, rebuilt capability lists.
//!
//! Legacy list (PCI Local Bus Spec 3.0 §6.7): only an allow-list is linked, each capability at
//! its physical offset (drivers find them by walking, some by remembered offsets):
//!
//! - Power Management (0x01, PCIe Base Spec r6.0 §7.5.2): 8 bytes, read-only.
//! - MSI (0x05): emulated, see [`crate::msi`].
//! - PCI Express (0x10, §7.5.3): 0x24 bytes (version 1) or 0x3c (version 2), read-only except
//!   [`DEVCTL_GUEST_MASK`] of Device Control; Device Status reads zero; Initiate FLR (Device
//!   Control bit 15) is emulated as [`crate::Event::FunctionReset`] when Device Capabilities
//!   advertises FLR.
//! - MSI-X (0x11): emulated, see [`crate::msix`]; dropped if its table or PBA does not lie in an
//!   implemented memory BAR.
//!
//! Everything else (vendor-specific, VPD, …), a second capability with an allowed ID, one that
//! would overlap an already linked one or run past 0xff, is unlinked and its bytes read zero.
//! The physical list is walked with conduit-pci's bounded walker: a list that loops or points
//! out of range ends the walk there ([`crate::VirtualFunction::legacy_fault`]), and the virtual
//! list holds what was found before; it is always finite and well formed.
//!
//! Extended list (§7.6.3): by default nothing is shown: the header at 0x100 reads zero, the
//! "no extended capabilities" encoding. SR-IOV, ARI, AER, ACS, ATS and any other extended
//! capability a guest must not see stay hidden. A [`Policy`] may allow IDs with a length; those
//! are copied read-only and relinked (a null header with ID 0 heads the list when the first
//! allowed one is not at 0x100).

use alloc::vec::Vec;

use conduit_pci::caps::{cap_id, capabilities, ext_capabilities};
use conduit_pci::config::reg;
use conduit_pci::{Bdf, CapError, ConfigAccess};

use crate::bar::{BAR_COUNT, VirtualBar};
use crate::image::Image;
use crate::msi::{self, MsiInfo};
use crate::msix::{self, MsixInfo};

/// PCI Express capability registers used here (§7.5.3).
pub mod pcie {
    /// PCI Express Capabilities register (version in bits 3:0).
    pub const CAPS: u16 = 0x02;
    /// Device Capabilities.
    pub const DEVCAP: u16 = 0x04;
    /// Device Control.
    pub const DEVCTL: u16 = 0x08;
    /// Device Status.
    pub const DEVSTA: u16 = 0x0a;
    /// Device Capabilities: Function Level Reset Capability.
    pub const DEVCAP_FLR: u32 = 1 << 28;
    /// Device Control: Initiate Function Level Reset.
    pub const DEVCTL_FLR: u16 = 1 << 15;
    /// Length of a version 1 capability.
    pub const LEN_V1: u16 = 0x24;
    /// Length of a version 2 capability.
    pub const LEN_V2: u16 = 0x3c;
}

/// Device Control bits the guest may change (§7.5.3.4): the four error reporting enables
/// (bits 3:0), Enable Relaxed Ordering (4), Extended Tag Field Enable (8), Enable No Snoop (11)
/// and Max Read Request Size (14:12). Max Payload Size, Phantom Functions and Aux Power stay
/// read-only: they must match the fabric or the host's power policy.
pub const DEVCTL_GUEST_MASK: u16 = 0x000f | 0x0010 | 0x0100 | 0x0800 | 0x7000;

/// An extended capability a [`Policy`] lets the guest see, read-only.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ExtCapAllow {
    /// Extended capability ID.
    pub id: u16,
    /// Bytes to copy, header included (rounded up to dwords).
    pub len: u16,
}

/// What the builder may expose beyond the fixed legacy allow-list.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Policy<'a> {
    /// Extended capabilities shown read-only (empty by default: none).
    pub extended: &'a [ExtCapAllow],
}

impl Policy<'static> {
    /// No extended capabilities.
    pub const DEFAULT: Self = Self { extended: &[] };
}

/// Why a physical capability is not in the virtual list.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HideReason {
    /// Not on the allow-list.
    NotAllowed,
    /// An earlier capability with the same ID is linked.
    Duplicate,
    /// It overlaps a linked capability.
    Overlap,
    /// It runs past the end of its space, or (MSI-X) its table/PBA is outside the BARs.
    Malformed,
}

/// A physical capability left out of the virtual lists.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HiddenCap {
    /// A legacy capability.
    Legacy {
        /// Capability ID.
        id: u8,
        /// Physical offset.
        offset: u16,
        /// Why.
        reason: HideReason,
    },
    /// An extended capability.
    Extended {
        /// Extended capability ID.
        id: u16,
        /// Physical offset.
        offset: u16,
        /// Why.
        reason: HideReason,
    },
}

/// The PCI Express capability as emulated.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct PcieInfo {
    pub(crate) offset: u16,
    pub(crate) flr: bool,
}

/// Result of the capability build.
#[derive(Debug, Default)]
pub(crate) struct CapLayout {
    pub(crate) msi: Option<MsiInfo>,
    pub(crate) msix: Option<MsixInfo>,
    pub(crate) pcie: Option<PcieInfo>,
    pub(crate) any_legacy: bool,
    pub(crate) hidden: Vec<HiddenCap>,
    pub(crate) legacy_fault: Option<CapError>,
    pub(crate) extended_fault: Option<CapError>,
}

enum Kind {
    Pm,
    Msi(MsiInfo),
    Msix(MsixInfo),
    Pcie(PcieInfo),
}

fn overlaps(kept: &[(u16, u16)], start: u16, len: u16) -> bool {
    kept.iter()
        .any(|&(s, l)| start < s.saturating_add(l) && s < start.saturating_add(len))
}

/// Builds both lists into `img`.
pub(crate) fn build<C: ConfigAccess + ?Sized>(
    img: &mut Image,
    cfg: &C,
    bdf: Bdf,
    bars: &[Option<VirtualBar>; BAR_COUNT],
    policy: &Policy<'_>,
) -> CapLayout {
    let mut out = CapLayout::default();
    build_legacy(img, cfg, bdf, bars, &mut out);
    build_extended(img, cfg, bdf, policy, &mut out);
    out
}

fn build_legacy<C: ConfigAccess + ?Sized>(
    img: &mut Image,
    cfg: &C,
    bdf: Bdf,
    bars: &[Option<VirtualBar>; BAR_COUNT],
    out: &mut CapLayout,
) {
    let mut kept: Vec<(u16, u16, u8, Kind)> = Vec::new();
    for item in capabilities(cfg, bdf) {
        let cap = match item {
            Ok(cap) => cap,
            Err(e) => {
                out.legacy_fault = Some(e);
                break;
            }
        };
        let (id, off) = (cap.id, cap.offset);
        let hide = |reason| HiddenCap::Legacy {
            id,
            offset: off,
            reason,
        };
        let kind = match id {
            cap_id::PM => Kind::Pm,
            cap_id::MSI => Kind::Msi(MsiInfo::from_control(off, cfg.read16(bdf, off + 2))),
            cap_id::MSIX => Kind::Msix(MsixInfo::read(cfg, bdf, off)),
            cap_id::PCIE => Kind::Pcie(PcieInfo {
                offset: off,
                flr: cfg.read32(bdf, off + pcie::DEVCAP) & pcie::DEVCAP_FLR != 0,
            }),
            _ => {
                out.hidden.push(hide(HideReason::NotAllowed));
                continue;
            }
        };
        let len = match &kind {
            Kind::Pm => 8,
            Kind::Msi(m) => m.byte_len(),
            Kind::Msix(_) => msix::CAP_LEN,
            Kind::Pcie(_) if cfg.read16(bdf, off + pcie::CAPS) & 0xf >= 2 => pcie::LEN_V2,
            Kind::Pcie(_) => pcie::LEN_V1,
        };
        let ranges: Vec<(u16, u16)> = kept.iter().map(|k| (k.0, k.1)).collect();
        let reason = if kept.iter().any(|k| k.2 == id) {
            Some(HideReason::Duplicate)
        } else if off + len > 0x100 || matches!(&kind, Kind::Msix(m) if !m.fits(bars)) {
            Some(HideReason::Malformed)
        } else if overlaps(&ranges, off, len) {
            Some(HideReason::Overlap)
        } else {
            None
        };
        match reason {
            Some(r) => out.hidden.push(hide(r)),
            None => kept.push((off, len, id, kind)),
        }
    }
    for (off, len, _, _) in &kept {
        for i in 0..*len {
            img.set8(off + i, cfg.read8(bdf, off + i));
        }
    }
    let first = kept.first().map_or(0, |k| k.0 as u8);
    img.set8(reg::CAP_PTR, first);
    for (i, (off, _, _, kind)) in kept.iter().enumerate() {
        let next = kept.get(i + 1).map_or(0, |k| k.0 as u8);
        img.set8(off + 1, next);
        match kind {
            Kind::Pm => {}
            Kind::Msi(m) => {
                msi::setup(img, m);
                out.msi = Some(*m);
            }
            Kind::Msix(m) => {
                msix::setup(img, m);
                out.msix = Some(*m);
            }
            Kind::Pcie(p) => {
                img.set16(off + pcie::DEVSTA, 0);
                img.set_wmask16(off + pcie::DEVCTL, DEVCTL_GUEST_MASK);
                out.pcie = Some(*p);
            }
        }
    }
    out.any_legacy = !kept.is_empty();
}

fn build_extended<C: ConfigAccess + ?Sized>(
    img: &mut Image,
    cfg: &C,
    bdf: Bdf,
    policy: &Policy<'_>,
    out: &mut CapLayout,
) {
    // (offset, dword-rounded length, id, version)
    let mut kept: Vec<(u16, u16, u16, u8)> = Vec::new();
    for item in ext_capabilities(cfg, bdf) {
        let cap = match item {
            Ok(cap) => cap,
            Err(e) => {
                out.extended_fault = Some(e);
                break;
            }
        };
        let (id, off) = (cap.id, cap.offset);
        let reason = match policy.extended.iter().find(|a| a.id == id) {
            None => Some(HideReason::NotAllowed),
            Some(allow) => {
                let len = allow.len.max(4).div_ceil(4).saturating_mul(4);
                let ranges: Vec<(u16, u16)> = kept.iter().map(|k| (k.0, k.1)).collect();
                if kept.iter().any(|k| k.2 == id) {
                    Some(HideReason::Duplicate)
                } else if u32::from(off) + u32::from(len) > 0x1000 {
                    Some(HideReason::Malformed)
                } else if overlaps(&ranges, off, len) {
                    Some(HideReason::Overlap)
                } else {
                    kept.push((off, len, id, cap.version));
                    None
                }
            }
        };
        if let Some(reason) = reason {
            out.hidden.push(HiddenCap::Extended {
                id,
                offset: off,
                reason,
            });
        }
    }
    for &(off, len, _, _) in &kept {
        for d in (4..len).step_by(4) {
            img.set32(off + d, cfg.read32(bdf, off + d));
        }
    }
    let header = |id: u16, version: u8, next: u16| {
        u32::from(id) | (u32::from(version & 0xf) << 16) | (u32::from(next) << 20)
    };
    if let Some(&(first, ..)) = kept.first()
        && first != reg::EXT_CAP_START
    {
        img.set32(reg::EXT_CAP_START, header(0, 0, first));
    }
    for (i, &(off, _, id, version)) in kept.iter().enumerate() {
        let next = kept.get(i + 1).map_or(0, |k| k.0);
        img.set32(off, header(id, version, next));
    }
}
