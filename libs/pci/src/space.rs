//! Finding MMIO space for VF BARs behind a bridge: free ranges, and how far a bridge's memory
//! window may grow.
//!
//! A VF BAR is decoded only if every bridge between the root complex and its PF forwards the
//! address (PCI-to-PCI Bridge Architecture Spec 1.2 §4.3; PCIe Base Spec r6.0 §7.5.1.3.8). So the
//! VF BARs of a PF go into one contiguous range that lies inside the memory window of the bridge
//! directly above the PF, growing that window where it is too small, but only over space that
//! nothing else decodes: a window that swallowed another function's BAR or another bridge's window
//! would steal its accesses.
//!
//! The caller classifies every decoded range on the machine relative to that bridge:
//! - `inner`: decoded behind the bridge (BARs of functions on its buses, windows of bridges
//!   below it, VF BARs already placed there). VF BARs must avoid them, the window may hold them.
//! - `foreign`: decoded elsewhere (other functions and bridges, platform ranges such as ECAM or
//!   the I/O APIC). Neither the VF BARs nor the grown window may touch them. The windows of the
//!   bridges *above* are neither: they contain this window and grow with it
//!   ([`cover`]).
//!
//! Every function here is pure arithmetic over inclusive [`MmioWindow`]s; empty windows in the
//! lists are ignored.

use crate::plan::MmioWindow;
use crate::window::{self, WINDOW_GRANULE};

/// Where a request went.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Placement {
    /// The range for the VF BARs (`size` bytes aligned to the requested alignment).
    pub region: MmioWindow,
    /// The bridge's memory window afterwards (whole 1 MiB blocks).
    pub window: MmioWindow,
    /// The window had to be opened or grown (it must be reprogrammed).
    pub grown: bool,
}

/// Why no range was found.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum SpaceError {
    /// Size 0 or an alignment that is not a power of two.
    #[error("bad request: {size:#x} bytes aligned to {align:#x}")]
    BadRequest {
        /// Bytes asked for.
        size: u64,
        /// Alignment asked for.
        align: u64,
    },
    /// The bridge's current window already overlaps something decoded elsewhere, or lies
    /// outside the bounds: growing it would not make it safe.
    #[error(
        "window {window} overlaps {other}, which is decoded elsewhere or outside the MMIO bounds"
    )]
    WindowConflict {
        /// The bridge's window.
        window: MmioWindow,
        /// The foreign range (or the bounds) in the way.
        other: MmioWindow,
    },
    /// Not enough free space.
    #[error(
        "no {size:#x} bytes aligned to {align:#x} free in {room} (the most the window can grow to without touching ranges decoded elsewhere)"
    )]
    NoRoom {
        /// Bytes asked for.
        size: u64,
        /// Alignment asked for.
        align: u64,
        /// Where it was looked for.
        room: MmioWindow,
    },
}

fn align_up(v: u64, align: u64) -> Option<u64> {
    v.checked_add(align - 1).map(|x| x & !(align - 1))
}

fn all<'a>(sets: &'a [&'a [MmioWindow]]) -> impl Iterator<Item = &'a MmioWindow> + 'a {
    sets.iter().flat_map(|s| s.iter()).filter(|w| !w.is_empty())
}

/// The lowest range of `size` bytes, aligned to `align` (a power of two), inside `within` and
/// overlapping nothing in `used`.
#[must_use]
pub fn find_free(
    within: MmioWindow,
    used: &[&[MmioWindow]],
    size: u64,
    align: u64,
) -> Option<MmioWindow> {
    if size == 0 || !align.is_power_of_two() || within.is_empty() {
        return None;
    }
    let mut base = align_up(within.base, align)?;
    loop {
        let candidate = MmioWindow::at(base, size)?;
        if candidate.limit > within.limit {
            return None;
        }
        // Skip past the furthest-reaching range in the way; the base only ever increases.
        match all(used)
            .filter(|u| u.overlaps(&candidate))
            .map(|u| u.limit)
            .max()
        {
            None => return Some(candidate),
            Some(end) => base = align_up(end.checked_add(1)?, align)?,
        }
    }
}

/// The highest range of `size` bytes, aligned to `align` (a power of two), inside `within` and
/// overlapping nothing in `used`.
#[must_use]
pub fn find_free_highest(
    within: MmioWindow,
    used: &[&[MmioWindow]],
    size: u64,
    align: u64,
) -> Option<MmioWindow> {
    if size == 0 || !align.is_power_of_two() || within.is_empty() {
        return None;
    }
    let mut base = within.limit.checked_sub(size - 1)? & !(align - 1);
    loop {
        if base < within.base {
            return None;
        }
        let candidate = MmioWindow::at(base, size)?;
        // Skip below the lowest-starting range in the way; the base only ever decreases.
        match all(used)
            .filter(|u| u.overlaps(&candidate))
            .map(|u| u.base)
            .min()
        {
            None => return Some(candidate),
            Some(start) => base = start.checked_sub(size)? & !(align - 1),
        }
    }
}

/// The largest range inside `bounds` that contains `window` and overlaps nothing in `foreign`:
/// how far the window may grow. Errors if `window` is not inside `bounds` or already overlaps a
/// foreign range.
pub fn room_around(
    window: MmioWindow,
    bounds: MmioWindow,
    foreign: &[&[MmioWindow]],
) -> Result<MmioWindow, SpaceError> {
    if !bounds.contains(&window) {
        return Err(SpaceError::WindowConflict {
            window,
            other: bounds,
        });
    }
    let mut room = bounds;
    for f in all(foreign) {
        if f.overlaps(&window) {
            return Err(SpaceError::WindowConflict { window, other: *f });
        }
        if f.limit < window.base {
            room.base = room.base.max(f.limit + 1);
        } else if f.base > window.limit {
            room.limit = room.limit.min(f.base - 1);
        }
    }
    Ok(room)
}

/// Finds `size` bytes aligned to `align` for VF BARs behind a bridge whose memory window is
/// `current` (empty if closed), within `bounds` (the MMIO space the platform leaves to PCI below
/// 4 GiB). Prefers free space inside the current window; else grows the window (in 1 MiB
/// blocks) into free space around it, upwards or downwards, whichever grows it less; a closed
/// window is opened on the lowest free blocks.
pub fn place_behind_bridge(
    current: MmioWindow,
    bounds: MmioWindow,
    foreign: &[MmioWindow],
    inner: &[MmioWindow],
    size: u64,
    align: u64,
) -> Result<Placement, SpaceError> {
    if size == 0 || !align.is_power_of_two() {
        return Err(SpaceError::BadRequest { size, align });
    }
    let no_room = |room: MmioWindow| SpaceError::NoRoom { size, align, room };
    if current.is_empty() {
        // Nothing is forwarded yet: open a window on whole free blocks.
        let room = window::round_in(bounds).ok_or(no_room(bounds))?;
        let blocks = align_up(size, WINDOW_GRANULE).ok_or(no_room(room))?;
        let win = find_free(room, &[foreign, inner], blocks, align.max(WINDOW_GRANULE))
            .ok_or(no_room(room))?;
        let region = MmioWindow::at(win.base, size).ok_or(no_room(room))?;
        return Ok(Placement {
            region,
            window: win,
            grown: true,
        });
    }
    if let Some(region) = find_free(current, &[inner], size, align) {
        return Ok(Placement {
            region,
            window: current,
            grown: false,
        });
    }
    let room = room_around(current, bounds, &[foreign])?;
    // Whole blocks only, so that the rounded-out window stays inside the room.
    let blocks = window::round_in(room).ok_or(no_room(room))?;
    // The lowest place from the window's base upwards, and the highest from its limit down:
    // whichever grows the window less (each may use free space at the window's edge).
    let up = find_free(
        MmioWindow {
            base: current.base,
            limit: blocks.limit,
        },
        &[inner],
        size,
        align,
    );
    let down = find_free_highest(
        MmioWindow {
            base: blocks.base,
            limit: current.limit,
        },
        &[inner],
        size,
        align,
    );
    let grow = |r: MmioWindow| window::round_out(current.hull(&r));
    let region = match (up, down) {
        (Some(u), Some(d)) if grow(d).size() < grow(u).size() => d,
        (Some(u), _) => u,
        (None, Some(d)) => d,
        (None, None) => return Err(no_room(blocks)),
    };
    Ok(Placement {
        region,
        window: grow(region),
        grown: true,
    })
}

/// The window a bridge *above* must have so that it still forwards `inner_window` (the grown
/// window of a bridge below it): its current window grown to cover it, in whole blocks. Errors if
/// that would touch a range in `foreign` (decoded outside this bridge) or leave `bounds`.
pub fn cover(
    current: MmioWindow,
    inner_window: MmioWindow,
    bounds: MmioWindow,
    foreign: &[MmioWindow],
) -> Result<MmioWindow, SpaceError> {
    let grown = window::round_out(current.hull(&inner_window));
    if !bounds.contains(&grown) {
        return Err(SpaceError::WindowConflict {
            window: grown,
            other: bounds,
        });
    }
    match foreign.iter().find(|f| f.overlaps(&grown)) {
        Some(f) => Err(SpaceError::WindowConflict {
            window: grown,
            other: *f,
        }),
        None => Ok(grown),
    }
}
