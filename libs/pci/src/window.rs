//! The memory windows of a PCI-to-PCI bridge (Type 1 header): what address ranges it forwards
//! from its primary to its secondary side.
//!
//! Registers (PCIe Base Spec r6.0 §7.5.1.3.8–§7.5.1.3.10; PCI-to-PCI Bridge Architecture Spec 1.2
//! §3.2.5.8–§3.2.5.10):
//!
//! | off  | register                              |
//! |------|---------------------------------------|
//! | 0x20 | Memory Base (16)                      |
//! | 0x22 | Memory Limit (16)                     |
//! | 0x24 | Prefetchable Memory Base (16)         |
//! | 0x26 | Prefetchable Memory Limit (16)        |
//! | 0x28 | Prefetchable Base Upper 32 Bits (32)  |
//! | 0x2c | Prefetchable Limit Upper 32 Bits (32) |
//!
//! Bits 15:4 of each base/limit word are address bits 31:20; a base's low 20 address bits are 0
//! and a limit's are all ones, so windows have 1 MiB granularity. The (non-prefetchable) memory
//! window is 32-bit only. The prefetchable window is 64-bit when bits 3:0 of its base and limit
//! read `0001b` (then the Upper 32 Bits registers hold address bits 63:32), 32-bit when `0000b`.
//! A window whose base is above its limit is closed: the bridge forwards nothing of that type.
//! A prefetchable BAR may be placed in the non-prefetchable window (the reverse is not allowed);
//! the window only forwards while the bridge's Command register has Memory Space Enable set.

use crate::bdf::Bdf;
use crate::config::{self, ConfigAccess, HeaderLayout};
use crate::error::PciError;
use crate::plan::MmioWindow;

/// Granularity of bridge memory windows: 1 MiB.
pub const WINDOW_GRANULE: u64 = 1 << 20;

/// Register offsets of the Type 1 header's memory windows.
pub mod reg {
    /// Memory Base; Memory Limit is the upper word of the same dword.
    pub const MEMORY_BASE: u16 = 0x20;
    /// Memory Limit.
    pub const MEMORY_LIMIT: u16 = 0x22;
    /// Prefetchable Memory Base; Prefetchable Memory Limit is the upper word.
    pub const PREF_BASE: u16 = 0x24;
    /// Prefetchable Memory Limit.
    pub const PREF_LIMIT: u16 = 0x26;
    /// Prefetchable Base Upper 32 Bits.
    pub const PREF_BASE_UPPER: u16 = 0x28;
    /// Prefetchable Limit Upper 32 Bits.
    pub const PREF_LIMIT_UPPER: u16 = 0x2c;
}

/// Why a window could not be encoded or written.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum WindowError {
    /// Header access failed (absent function, not a bridge).
    #[error(transparent)]
    Pci(#[from] PciError),
    /// The base is not 1 MiB aligned, or the limit does not end a 1 MiB block.
    #[error("window {window} is not made of whole 1 MiB blocks")]
    Unaligned {
        /// The window asked for.
        window: MmioWindow,
    },
    /// The memory window is 32-bit: it cannot reach at or above 4 GiB.
    #[error("window {window} does not fit the 32-bit memory window")]
    Above4G {
        /// The window asked for.
        window: MmioWindow,
    },
    /// The bridge did not take the value (read back differs).
    #[error("{bdf}: memory window reads back {read} after writing {wrote}")]
    NotTaken {
        /// The bridge.
        bdf: Bdf,
        /// What was written.
        wrote: MmioWindow,
        /// What reads back.
        read: MmioWindow,
    },
}

/// A bridge's memory windows as read from its header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BridgeWindows {
    /// The memory window; empty (`base > limit`) when closed.
    pub memory: MmioWindow,
    /// The prefetchable memory window; empty when closed or not implemented.
    pub prefetchable: MmioWindow,
    /// The prefetchable window decodes 64-bit addresses.
    pub prefetchable_64bit: bool,
}

/// Decodes the Memory Base / Memory Limit words.
#[must_use]
pub const fn decode_memory_window(base: u16, limit: u16) -> MmioWindow {
    MmioWindow {
        base: ((base as u64) & 0xfff0) << 16,
        limit: (((limit as u64) & 0xfff0) << 16) | 0xf_ffff,
    }
}

/// Decodes the prefetchable window from its base/limit words and their Upper 32 Bits registers
/// (ignored unless the words say the window is 64-bit). Returns the window and whether it is
/// 64-bit.
#[must_use]
pub const fn decode_prefetchable_window(
    base: u16,
    limit: u16,
    base_upper: u32,
    limit_upper: u32,
) -> (MmioWindow, bool) {
    let is64 = base & 0xf == 1;
    let (bu, lu) = if is64 {
        ((base_upper as u64) << 32, (limit_upper as u64) << 32)
    } else {
        (0, 0)
    };
    (
        MmioWindow {
            base: bu | (((base as u64) & 0xfff0) << 16),
            limit: lu | (((limit as u64) & 0xfff0) << 16) | 0xf_ffff,
        },
        is64,
    )
}

/// Encodes a memory window as the `(Memory Base, Memory Limit)` words. An empty window encodes
/// as the canonical closed window (base 0xfff00000 above limit 0x000fffff).
pub const fn encode_memory_window(window: MmioWindow) -> Result<(u16, u16), WindowError> {
    if window.is_empty() {
        return Ok((0xfff0, 0x0000));
    }
    if !window.base.is_multiple_of(WINDOW_GRANULE)
        || window.limit | (WINDOW_GRANULE - 1) != window.limit
    {
        return Err(WindowError::Unaligned { window });
    }
    if window.limit > 0xffff_ffff {
        return Err(WindowError::Above4G { window });
    }
    Ok((
        ((window.base >> 16) as u16) & 0xfff0,
        ((window.limit >> 16) as u16) & 0xfff0,
    ))
}

/// Rounds `window` out to whole 1 MiB blocks (what a bridge window covering it must be).
#[must_use]
pub const fn round_out(window: MmioWindow) -> MmioWindow {
    if window.is_empty() {
        return window;
    }
    MmioWindow {
        base: window.base & !(WINDOW_GRANULE - 1),
        limit: window.limit | (WINDOW_GRANULE - 1),
    }
}

/// The whole 1 MiB blocks inside `window`; `None` if there is none.
#[must_use]
pub const fn round_in(window: MmioWindow) -> Option<MmioWindow> {
    if window.is_empty() {
        return None;
    }
    let Some(base) = window.base.checked_add(WINDOW_GRANULE - 1) else {
        return None;
    };
    let base = base & !(WINDOW_GRANULE - 1);
    let limit = if window.limit | (WINDOW_GRANULE - 1) == window.limit {
        window.limit
    } else {
        match (window.limit & !(WINDOW_GRANULE - 1)).checked_sub(1) {
            Some(l) => l,
            None => return None,
        }
    };
    if limit < base {
        return None;
    }
    Some(MmioWindow { base, limit })
}

fn check_bridge<C: ConfigAccess + ?Sized>(cfg: &C, bdf: Bdf) -> Result<(), PciError> {
    let header = config::read_header(cfg, bdf)?;
    if header.layout() == HeaderLayout::Bridge {
        Ok(())
    } else {
        Err(PciError::NotABridge {
            bdf,
            header_type: header.header_type,
        })
    }
}

/// Reads both memory windows of the bridge at `bdf`.
pub fn read_bridge_windows<C: ConfigAccess + ?Sized>(
    cfg: &C,
    bdf: Bdf,
) -> Result<BridgeWindows, PciError> {
    check_bridge(cfg, bdf)?;
    let mem = cfg.read32(bdf, reg::MEMORY_BASE);
    let pref = cfg.read32(bdf, reg::PREF_BASE);
    let (prefetchable, prefetchable_64bit) = decode_prefetchable_window(
        pref as u16,
        (pref >> 16) as u16,
        cfg.read32(bdf, reg::PREF_BASE_UPPER),
        cfg.read32(bdf, reg::PREF_LIMIT_UPPER),
    );
    Ok(BridgeWindows {
        memory: decode_memory_window(mem as u16, (mem >> 16) as u16),
        prefetchable,
        prefetchable_64bit,
    })
}

/// Programs the memory window of the bridge at `bdf` (whole 1 MiB blocks below 4 GiB) with one
/// dword write, so that base and limit change together, and checks that it reads back.
pub fn write_memory_window<C: ConfigAccess + ?Sized>(
    cfg: &mut C,
    bdf: Bdf,
    window: MmioWindow,
) -> Result<(), WindowError> {
    let (base, limit) = encode_memory_window(window)?;
    check_bridge(cfg, bdf)?;
    cfg.write32(
        bdf,
        reg::MEMORY_BASE,
        u32::from(base) | (u32::from(limit) << 16),
    );
    let read = read_bridge_windows(cfg, bdf)?.memory;
    let same = (read.is_empty() && window.is_empty()) || read == window;
    if same {
        Ok(())
    } else {
        Err(WindowError::NotTaken {
            bdf,
            wrote: window,
            read,
        })
    }
}
