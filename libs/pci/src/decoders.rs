//! Who decodes which MMIO range, relative to a bridge, and placing a PF's VF BARs through every
//! bridge above it.
//!
//! A range decoded by a function is reached through every bridge whose bus range holds the
//! function's bus; a bridge's own windows contain what is behind it (PCI-to-PCI Bridge
//! Architecture Spec 1.2 §4.3). Relative to one bridge `B` every decoded range is therefore:
//! - *inner*: decoded behind `B` (functions on its buses, windows of bridges below it);
//! - *foreign*: decoded elsewhere (functions and bridges not below `B`, platform ranges);
//! - neither: `B`'s own windows and those of the bridges above `B`, which contain `B`'s window
//!   and grow with it.
//!
//! [`place_vf_space`] puts a PF's VF BARs behind the bridge directly above it
//! ([`crate::space::place_behind_bridge`]) and then makes every bridge further up cover that
//! bridge's new window ([`crate::space::cover`]), checking each against what is foreign to it.
//! No allocation: the caller lends scratch slices at least as long as the decoded list.

use crate::bdf::Bdf;
use crate::plan::MmioWindow;
use crate::space::{self, SpaceError};

/// What decodes a range.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Decoder {
    /// A function on `bus` (its BARs, or the VF BARs of a PF there).
    Function {
        /// The function's bus.
        bus: u8,
    },
    /// A window of bridge `bdf`.
    Bridge {
        /// The bridge.
        bdf: Bdf,
    },
    /// The platform (ECAM, interrupt controllers, ...), outside every PCI hierarchy.
    Platform,
}

/// A range and what decodes it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Decoded {
    /// The range (empty ranges are ignored).
    pub range: MmioWindow,
    /// Its decoder.
    pub by: Decoder,
}

/// A bridge: where it is, the buses it forwards to and its (non-prefetchable) memory window.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BridgeWindow {
    /// The bridge.
    pub bdf: Bdf,
    /// Secondary bus number.
    pub secondary: u8,
    /// Subordinate bus number.
    pub subordinate: u8,
    /// Its memory window (empty when closed).
    pub memory: MmioWindow,
}

impl BridgeWindow {
    /// Whether the bridge forwards to `bus`.
    #[must_use]
    pub const fn forwards(&self, bus: u8) -> bool {
        self.secondary != 0 && self.secondary <= bus && bus <= self.subordinate
    }

    const fn span(&self) -> u8 {
        self.subordinate.saturating_sub(self.secondary)
    }
}

/// One bridge window to (re)program for a placement.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct WindowChange {
    /// The bridge.
    pub bridge: Bdf,
    /// Its memory window now.
    pub before: MmioWindow,
    /// Its memory window afterwards (equal to `before` if it need not change).
    pub after: MmioWindow,
}

/// Why [`place_vf_space`] failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum VfSpaceError {
    /// No room, or a window that cannot grow safely; `bridge` is `None` on the root bus.
    Space {
        /// The bridge whose window failed.
        bridge: Option<Bdf>,
        /// Why.
        error: SpaceError,
    },
    /// A scratch or output slice is too short.
    Scratch {
        /// Entries needed.
        needed: usize,
        /// Entries given.
        capacity: usize,
    },
}

impl core::fmt::Display for VfSpaceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Space {
                bridge: Some(b),
                error,
            } => write!(f, "behind bridge {b}: {error}"),
            Self::Space {
                bridge: None,
                error,
            } => write!(f, "on the root bus: {error}"),
            Self::Scratch { needed, capacity } => {
                write!(f, "scratch space for {capacity} entries, {needed} needed")
            }
        }
    }
}

impl core::error::Error for VfSpaceError {}

/// Where a PF's VF BARs go.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VfSpace {
    /// The range for all its VF BARs.
    pub region: MmioWindow,
    /// How many entries of the output slice hold window changes (outermost bridge first).
    pub changes: usize,
}

/// Whether `above` is an ancestor of `bridge` (forwards to the bus `bridge` sits on).
fn is_above(above: Bdf, bridge: &BridgeWindow, bridges: &[BridgeWindow]) -> bool {
    bridges
        .iter()
        .any(|b| b.bdf == above && b.forwards(bridge.bdf.bus()))
}

/// Inner (`Some(true)`), foreign (`Some(false)`) or neither (`None`) relative to `bridge`
/// (`None` for the root bus, to which everything is foreign).
#[must_use]
pub fn side(d: &Decoded, bridge: Option<&BridgeWindow>, bridges: &[BridgeWindow]) -> Option<bool> {
    let behind = |bus: u8| bridge.is_some_and(|b| b.forwards(bus));
    match d.by {
        Decoder::Function { bus } => Some(behind(bus)),
        Decoder::Platform => Some(false),
        Decoder::Bridge { bdf } => match bridge {
            Some(b) if b.bdf == bdf || is_above(bdf, b, bridges) => None,
            _ => Some(behind(bdf.bus())),
        },
    }
}

/// Copies the inner and foreign ranges relative to `bridge` into the scratch slices; returns how
/// many of each. The slices must be at least `decoded.len()` long.
pub fn classify(
    decoded: &[Decoded],
    bridges: &[BridgeWindow],
    bridge: Option<&BridgeWindow>,
    inner: &mut [MmioWindow],
    foreign: &mut [MmioWindow],
) -> Result<(usize, usize), VfSpaceError> {
    let short = inner.len().min(foreign.len());
    if short < decoded.len() {
        return Err(VfSpaceError::Scratch {
            needed: decoded.len(),
            capacity: short,
        });
    }
    let (mut i, mut f) = (0, 0);
    for d in decoded.iter().filter(|d| !d.range.is_empty()) {
        match side(d, bridge, bridges) {
            Some(true) => {
                inner[i] = d.range;
                i += 1;
            }
            Some(false) => {
                foreign[f] = d.range;
                f += 1;
            }
            None => {}
        }
    }
    Ok((i, f))
}

/// The innermost bridge forwarding to `bus` whose bus span is above `more_than` (`None`: any).
fn next_out(bridges: &[BridgeWindow], bus: u8, more_than: Option<u8>) -> Option<&BridgeWindow> {
    bridges
        .iter()
        .filter(|b| b.forwards(bus) && more_than.is_none_or(|m| b.span() > m))
        .min_by_key(|b| b.span())
}

/// Finds `size` bytes aligned to `align` (a power of two) for the VF BARs of a PF on `pf_bus`,
/// inside `bounds`, and the window every bridge above the PF must then have. `changes` receives
/// one entry per bridge above the PF, outermost first; `inner`/`foreign` are scratch space of at
/// least `decoded.len()` entries. Nothing is written to hardware.
#[allow(clippy::too_many_arguments)]
pub fn place_vf_space(
    decoded: &[Decoded],
    bridges: &[BridgeWindow],
    pf_bus: u8,
    bounds: MmioWindow,
    size: u64,
    align: u64,
    inner: &mut [MmioWindow],
    foreign: &mut [MmioWindow],
    changes: &mut [WindowChange],
) -> Result<VfSpace, VfSpaceError> {
    let Some(parent) = next_out(bridges, pf_bus, None) else {
        let (_, nf) = classify(decoded, bridges, None, inner, foreign)?;
        let region = space::find_free(bounds, &[&foreign[..nf]], size, align).ok_or(
            VfSpaceError::Space {
                bridge: None,
                error: SpaceError::NoRoom {
                    size,
                    align,
                    room: bounds,
                },
            },
        )?;
        return Ok(VfSpace { region, changes: 0 });
    };
    let depth = bridges.iter().filter(|b| b.forwards(pf_bus)).count();
    if changes.len() < depth {
        return Err(VfSpaceError::Scratch {
            needed: depth,
            capacity: changes.len(),
        });
    }
    let (ni, nf) = classify(decoded, bridges, Some(parent), inner, foreign)?;
    let placed = space::place_behind_bridge(
        parent.memory,
        bounds,
        &foreign[..nf],
        &inner[..ni],
        size,
        align,
    )
    .map_err(|error| VfSpaceError::Space {
        bridge: Some(parent.bdf),
        error,
    })?;
    changes[0] = WindowChange {
        bridge: parent.bdf,
        before: parent.memory,
        after: placed.window,
    };
    let mut n = 1;
    let mut covered = placed.window;
    let mut below = parent;
    while let Some(b) = next_out(bridges, pf_bus, Some(below.span())) {
        let (_, nf) = classify(decoded, bridges, Some(b), inner, foreign)?;
        let after = space::cover(b.memory, covered, bounds, &foreign[..nf]).map_err(|error| {
            VfSpaceError::Space {
                bridge: Some(b.bdf),
                error,
            }
        })?;
        if n >= changes.len() {
            return Err(VfSpaceError::Scratch {
                needed: n + 1,
                capacity: changes.len(),
            });
        }
        changes[n] = WindowChange {
            bridge: b.bdf,
            before: b.memory,
            after,
        };
        n += 1;
        covered = after;
        below = b;
    }
    changes[..n].reverse();
    Ok(VfSpace {
        region: placed.region,
        changes: n,
    })
}
