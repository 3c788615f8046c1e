//! Step 4 of [`super::sriov`]: the VF BARs of a PF, kept where firmware put them or moved below
//! 4 GiB, and the one named quirk that moves them.
//!
//! Firmware's placement is kept when every VF BAR is assigned (non-zero) and its range for NumVFs
//! VFs (PCIe Base Spec r6.0 §9.3.3.14: per-VF size × NumVFs from the programmed base) lies inside
//! a window of every bridge above the PF ([`super::window::MmioMap::not_forwarding`]); the
//! bridges' memory decode is turned on where it is off. Otherwise, or for
//! [`QUIRK_IGB_VF_BAR_32`], the BARs get space below 4 GiB ([`super::window`]).

use super::access::Access;
use super::report;
use super::sriov::EnableError;
use super::window::{MmioMap, VfSpace};
use alloc::string::String;
use alloc::vec::Vec;
use conduit_pci::{Bars, Bdf, MmioWindow, SriovCap, VfBarPlacement, VfBarRequest};
use core::fmt::Write;
use log::{info, warn};

/// The one device whose firmware VF BAR placement is not kept: QEMU's igb (82576 model, PF
/// 8086:10c9) VFs drop the upper 32 bits of their BAR addresses, so VF BARs above 4 GiB (where
/// OVMF puts them, in the root port's 64-bit prefetchable window) do not decode. Detected by the
/// PF's vendor:device and a VF BAR range reaching above 4 GiB; the VF BARs are then moved below
/// 4 GiB, and the log names the quirk.
pub const QUIRK_IGB_VF_BAR_32: &str = "igb-vf-bar-32";
const QUIRK_IGB_ID: (u16, u16) = (0x8086, 0x10c9);

/// Why firmware's VF BAR placement is not kept.
enum Move {
    /// A VF BAR is 0: firmware assigned it nothing.
    Unassigned { index: u8 },
    /// The range for NumVFs VFs is not inside a window of this bridge above the PF.
    NotForwarded {
        index: u8,
        range: MmioWindow,
        bridge: Bdf,
    },
    /// [`QUIRK_IGB_VF_BAR_32`].
    Quirk { index: u8, range: MmioWindow },
}

impl core::fmt::Display for Move {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Unassigned { index } => {
                write!(f, "firmware left VF BAR{index} unassigned (0)")
            }
            Self::NotForwarded {
                index,
                range,
                bridge,
            } => write!(
                f,
                "VF BAR{index} at {range} is outside the windows of bridge {bridge} above the PF"
            ),
            Self::Quirk { index, range } => write!(
                f,
                "quirk {QUIRK_IGB_VF_BAR_32}: VF BAR{index} at {range} reaches above 4 GiB and \
                 the VFs of 8086:10c9 (QEMU's igb) drop the upper 32 bits of their BAR addresses"
            ),
        }
    }
}

/// Whether firmware's placement of `sized` (for NumVFs VFs) can be kept; `None`: keep it.
fn must_move(map: &MmioMap, pf: Bdf, id: (u16, u16), sized: &Bars, num_vfs: u16) -> Option<Move> {
    for b in sized.iter() {
        if b.address == 0 {
            return Some(Move::Unassigned { index: b.index });
        }
        let range = conduit_pci::vf_bar_window(b, num_vfs)
            .and_then(|len| MmioWindow::at(b.address, len))
            .unwrap_or(MmioWindow {
                base: b.address,
                limit: u64::MAX,
            });
        if let Some(bridge) = map.not_forwarding(pf, range) {
            return Some(Move::NotForwarded {
                index: b.index,
                range,
                bridge,
            });
        }
        if id == QUIRK_IGB_ID && range.limit > MmioWindow::LIMIT_4G {
            return Some(Move::Quirk {
                index: b.index,
                range,
            });
        }
    }
    None
}

/// Step 4: sizes the VF BARs and keeps them where firmware put them, or places and programs them
/// below 4 GiB ([`must_move`]); returns them as they now are.
pub(super) fn place_vf_bars(
    cfg: &mut Access,
    map: &mut MmioMap,
    cap: &mut SriovCap,
    id: (u16, u16),
) -> Result<Bars, EnableError> {
    let pf = cap.pf;
    let sized = cap.size_vf_bars(cfg)?;
    let requests: Vec<VfBarRequest> = sized
        .iter()
        .map(|b| VfBarRequest::new(pf, b, cap.num_vfs))
        .collect();
    if requests.is_empty() {
        info!("sriov: {pf}: no VF BARs");
        return Ok(sized);
    }
    let mut line = String::new();
    for b in sized.iter() {
        let _ = write!(
            line,
            "{}VF BAR{} {} {} per VF, {} for {}",
            if line.is_empty() { "" } else { "; " },
            b.index,
            report::bar_kind(b),
            report::size(b.size),
            report::size(b.size.saturating_mul(u64::from(cap.num_vfs))),
            cap.num_vfs
        );
    }
    info!("sriov: {pf}: {line}");
    let why = match must_move(map, pf, id, &sized, cap.num_vfs) {
        None => {
            info!(
                "sriov: {pf}: kept where firmware put them: {} (inside a window of every bridge above)",
                ranges(&sized, cap.num_vfs)
            );
            for b in map.enable_decode_above(cfg, pf) {
                info!("sriov: {pf}: bridge {b} above had memory decode off: turned on");
            }
            return Ok(sized);
        }
        Some(why) => why,
    };
    if matches!(why, Move::Quirk { .. }) {
        warn!("sriov: {pf}: moving the VF BARs below 4 GiB: {why}");
    } else {
        info!("sriov: {pf}: moving the VF BARs below 4 GiB: {why}");
    }
    let (size, align) = conduit_pci::plan_span(&requests).map_err(EnableError::Plan)?;
    let space = map.place(pf, size, align).map_err(EnableError::Space)?;
    log_space(pf, size, &space);
    let mut out: Vec<Option<VfBarPlacement>> = alloc::vec![None; requests.len()];
    conduit_pci::plan_vf_bars(space.region, &requests, &mut out).map_err(EnableError::Plan)?;
    for p in out.iter().flatten() {
        if let Some(bar) = sized.get(p.request.bar_index) {
            cap.write_vf_bar(cfg, bar, p.base)?;
        }
    }
    map.commit(cfg, pf, &space).map_err(EnableError::Space)?;
    let programmed = cap.size_vf_bars(cfg)?;
    for b in programmed.iter() {
        if end(b, cap.num_vfs) > 1 << 32 {
            return Err(EnableError::Above4G {
                index: b.index,
                address: b.address,
            });
        }
    }
    info!(
        "sriov: {pf}: programmed {} (below 4 GiB, upper dwords 0)",
        ranges(&programmed, cap.num_vfs)
    );
    Ok(programmed)
}

/// One past the last byte VF BAR `b` decodes for `num_vfs` VFs (saturating).
fn end(b: &conduit_pci::Bar, num_vfs: u16) -> u64 {
    b.address
        .saturating_add(b.size.saturating_mul(u64::from(num_vfs)))
}

/// `VF BAR0 0x...-0x..., VF BAR3 0x...-0x...` for `num_vfs` VFs; BARs are assigned (non-zero).
fn ranges(bars: &Bars, num_vfs: u16) -> String {
    let mut line = String::new();
    for b in bars.iter() {
        let _ = write!(
            line,
            "{}VF BAR{} {:#x}-{:#x}",
            if line.is_empty() { "" } else { ", " },
            b.index,
            b.address,
            end(b, num_vfs) - 1
        );
    }
    line
}

fn log_space(pf: Bdf, size: u64, space: &VfSpace) {
    info!(
        "window: {pf}: VF BARs get {} ({})",
        space.region,
        report::size(size)
    );
    for w in &space.windows {
        if w.before == w.after {
            info!(
                "window: bridge {} memory window {} holds them (unchanged); memory decode on",
                w.bridge, w.after
            );
        } else {
            info!(
                "window: bridge {} memory window {} -> {} to hold them; memory decode on",
                w.bridge, w.before, w.after
            );
        }
    }
}
