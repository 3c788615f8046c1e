//! The MMIO space below 4 GiB that the hypervisor hands out for VF BARs, and the bridge windows
//! that must forward it.
//!
//! [`MmioMap`] records every range that something already decodes, as enumeration found it:
//! memory BARs, both memory windows of every bridge (read from their Type 1 headers), the ECAM
//! window, the I/O APICs and the local APIC. The space VF BARs may use is bounded by
//! `[lowest address firmware gave a PCI BAR or window, 0xfebfffff]`: below the lowest PCI
//! address lies RAM and firmware memory (the top of low memory on PC platforms), above
//! 0xfec00000 the I/O APIC, HPET, local APIC and boot flash sit. Inside those bounds a PF's VF
//! BARs take one contiguous range inside the memory window of the bridge above the PF, which is
//! grown (in 1 MiB blocks) only over space nothing else decodes, and every bridge further up is
//! grown to cover it ([`conduit_pci::space`] does the arithmetic). Windows are written outermost
//! first, then the bridges' Memory Space Enable is set (PCI-to-PCI Bridge Architecture Spec 1.2
//! §3.2.5.8, §4.3; PCIe Base Spec r6.0 §7.5.1.3.8).
//!
//! The non-prefetchable memory window is used for every VF BAR, also prefetchable ones (allowed:
//! a prefetchable BAR may sit in non-prefetchable space, not the reverse): it is 32-bit by
//! definition, and the machines Conduit targets need the VF BARs below 4 GiB (QEMU's igb VFs do
//! not decode 64-bit addresses).

use super::Function;
use crate::platform::Platform;
use alloc::vec::Vec;
use conduit_pci::config::command;
use conduit_pci::space::{self, SpaceError};
use conduit_pci::{Bdf, ConfigAccess, MmioWindow, WindowError};
use core::ops::RangeInclusive;
use log::info;

/// Highest byte VF BARs may use: just below the I/O APIC's conventional base.
const TOP: u64 = 0xfebf_ffff;
const LAPIC_DEFAULT: u64 = 0xfee0_0000;

/// What decodes a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Bar { bdf: Bdf, index: u8 },
    BridgeMemory { bdf: Bdf },
    BridgePrefetchable { bdf: Bdf },
    VfBars { pf: Bdf },
    Platform(&'static str),
}

#[derive(Debug, Clone, Copy)]
struct Claim {
    range: MmioWindow,
    owner: Owner,
}

#[derive(Debug, Clone)]
struct Bridge {
    bdf: Bdf,
    buses: RangeInclusive<u8>,
    memory: MmioWindow,
}

/// A bridge window change, for the log.
#[derive(Debug, Clone, Copy)]
pub struct WindowChange {
    pub bridge: Bdf,
    pub before: MmioWindow,
    pub after: MmioWindow,
}

/// Where a PF's VF BARs go, and what bridge windows change for it.
#[derive(Debug, Clone)]
pub struct VfSpace {
    pub region: MmioWindow,
    /// Every bridge above the PF, outermost first.
    pub windows: Vec<WindowChange>,
}

/// Why no space could be found or programmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VfSpaceError {
    /// Firmware assigned no PCI memory below 4 GiB: there is nothing to take bounds from.
    NoBounds,
    Space {
        bridge: Option<Bdf>,
        error: SpaceError,
    },
    Window(WindowError),
}

impl core::fmt::Display for VfSpaceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoBounds => write!(
                f,
                "firmware placed no PCI memory below 4 GiB: no MMIO range known to be free"
            ),
            Self::Space {
                bridge: Some(b),
                error,
            } => write!(f, "behind bridge {b}: {error}"),
            Self::Space {
                bridge: None,
                error,
            } => write!(f, "on the root bus: {error}"),
            Self::Window(e) => write!(f, "programming a bridge window: {e}"),
        }
    }
}

/// The decoded MMIO ranges of the machine.
#[derive(Debug)]
pub struct MmioMap {
    claims: Vec<Claim>,
    bridges: Vec<Bridge>,
    bounds: Option<MmioWindow>,
}

impl MmioMap {
    /// Records what `functions` and the platform decode; logs the bridge windows.
    pub fn new(cfg: &impl ConfigAccess, functions: &[Function], platform: &Platform) -> Self {
        let mut claims = Vec::new();
        let mut bridges = Vec::new();
        for f in functions {
            for bar in f.bars.iter().filter(|b| b.is_memory() && b.address != 0) {
                if let Some(range) = MmioWindow::at(bar.address, bar.size) {
                    claims.push(Claim {
                        range,
                        owner: Owner::Bar {
                            bdf: f.bdf,
                            index: bar.index,
                        },
                    });
                }
            }
            let (Some(buses), Ok(w)) = (
                f.bridge.and_then(|b| b.range()),
                conduit_pci::read_bridge_windows(cfg, f.bdf),
            ) else {
                continue;
            };
            info!(
                "window: bridge {} (buses {:02x}-{:02x}): memory window {}, prefetchable window {}{}",
                f.bdf,
                buses.start(),
                buses.end(),
                w.memory,
                w.prefetchable,
                match (w.prefetchable.is_empty(), w.prefetchable_64bit) {
                    (true, _) => "",
                    (false, true) => " (64-bit)",
                    (false, false) => " (32-bit)",
                }
            );
            claims.push(Claim {
                range: w.memory,
                owner: Owner::BridgeMemory { bdf: f.bdf },
            });
            claims.push(Claim {
                range: w.prefetchable,
                owner: Owner::BridgePrefetchable { bdf: f.bdf },
            });
            bridges.push(Bridge {
                bdf: f.bdf,
                buses,
                memory: w.memory,
            });
        }
        let lowest = claims
            .iter()
            .filter(|c| !c.range.is_empty() && c.range.base <= TOP)
            .map(|c| c.range.base)
            .min();
        for e in &platform.ecam {
            let buses = u64::from(e.bus_end.saturating_sub(e.bus_start)) + 1;
            let base = e.base + (u64::from(e.bus_start) << 20);
            if let Some(range) = MmioWindow::at(base, buses << 20) {
                claims.push(Claim {
                    range,
                    owner: Owner::Platform("ECAM"),
                });
            }
        }
        for io in &platform.io_apics {
            if let Some(range) = MmioWindow::at(u64::from(io.address), 0x1000) {
                claims.push(Claim {
                    range,
                    owner: Owner::Platform("I/O APIC"),
                });
            }
        }
        let lapic = platform.local_apic_address.unwrap_or(LAPIC_DEFAULT);
        if let Some(range) = MmioWindow::at(lapic, 0x1000) {
            claims.push(Claim {
                range,
                owner: Owner::Platform("local APIC"),
            });
        }
        let bounds = lowest.map(|base| MmioWindow { base, limit: TOP });
        match bounds {
            Some(b) => info!(
                "window: VF BARs go below 4 GiB, in {b} (from the lowest address firmware gave \
                 PCI to below the I/O APIC), avoiding {} decoded range(s)",
                claims.iter().filter(|c| !c.range.is_empty()).count()
            ),
            None => info!("window: firmware placed no PCI memory below 4 GiB"),
        }
        Self {
            claims,
            bridges,
            bounds,
        }
    }

    /// The bridges above `bus`, outermost first.
    fn path(&self, bus: u8) -> Vec<Bridge> {
        let mut path: Vec<Bridge> = self
            .bridges
            .iter()
            .filter(|b| b.buses.contains(&bus))
            .cloned()
            .collect();
        path.sort_by_key(|b| core::cmp::Reverse(usize::from(b.buses.end() - b.buses.start())));
        path
    }

    /// Splits the claims into those behind `bridge` and those decoded elsewhere. The bridge's
    /// own windows and those of the bridges above it are in neither.
    fn classify(&self, bridge: Option<&Bridge>) -> (Vec<MmioWindow>, Vec<MmioWindow>) {
        let (mut inner, mut foreign) = (Vec::new(), Vec::new());
        for c in &self.claims {
            let behind = |bus: u8| bridge.is_some_and(|b| b.buses.contains(&bus));
            let side = match c.owner {
                Owner::Bar { bdf, .. } => Some(behind(bdf.bus())),
                Owner::VfBars { pf } => Some(behind(pf.bus())),
                Owner::BridgeMemory { bdf } | Owner::BridgePrefetchable { bdf } => match bridge {
                    Some(b) if b.bdf == bdf => None,
                    Some(b) if self.is_above(bdf, b) => None,
                    _ => Some(behind(bdf.bus())),
                },
                Owner::Platform(_) => Some(false),
            };
            match side {
                Some(true) => inner.push(c.range),
                Some(false) => foreign.push(c.range),
                None => {}
            }
        }
        (inner, foreign)
    }

    /// Whether bridge `above` forwards to the bus `b` sits on.
    fn is_above(&self, above: Bdf, b: &Bridge) -> bool {
        self.bridges
            .iter()
            .any(|x| x.bdf == above && x.buses.contains(&b.bdf.bus()))
    }

    /// Finds `size` bytes aligned to `align` for the VF BARs of `pf`; nothing is written yet.
    pub fn place(&self, pf: Bdf, size: u64, align: u64) -> Result<VfSpace, VfSpaceError> {
        let bounds = self.bounds.ok_or(VfSpaceError::NoBounds)?;
        let path = self.path(pf.bus());
        let Some(parent) = path.last() else {
            let (_, foreign) = self.classify(None);
            let region =
                space::find_free(bounds, &[&foreign], size, align).ok_or(VfSpaceError::Space {
                    bridge: None,
                    error: SpaceError::NoRoom {
                        size,
                        align,
                        room: bounds,
                    },
                })?;
            return Ok(VfSpace {
                region,
                windows: Vec::new(),
            });
        };
        let (inner, foreign) = self.classify(Some(parent));
        let placed =
            space::place_behind_bridge(parent.memory, bounds, &foreign, &inner, size, align)
                .map_err(|error| VfSpaceError::Space {
                    bridge: Some(parent.bdf),
                    error,
                })?;
        let mut windows = Vec::with_capacity(path.len());
        windows.push(WindowChange {
            bridge: parent.bdf,
            before: parent.memory,
            after: placed.window,
        });
        let mut covered = placed.window;
        for b in path.iter().rev().skip(1) {
            let (_, foreign) = self.classify(Some(b));
            let after = space::cover(b.memory, covered, bounds, &foreign).map_err(|error| {
                VfSpaceError::Space {
                    bridge: Some(b.bdf),
                    error,
                }
            })?;
            windows.push(WindowChange {
                bridge: b.bdf,
                before: b.memory,
                after,
            });
            covered = after;
        }
        windows.reverse();
        Ok(VfSpace {
            region: placed.region,
            windows,
        })
    }

    /// Programs the windows of `space` (outermost first), turns on the bridges' memory decode
    /// and records the VF BAR region as decoded by `pf`.
    pub fn commit(
        &mut self,
        cfg: &mut impl ConfigAccess,
        pf: Bdf,
        space: &VfSpace,
    ) -> Result<(), VfSpaceError> {
        for w in &space.windows {
            if w.before != w.after {
                conduit_pci::write_memory_window(cfg, w.bridge, w.after)
                    .map_err(VfSpaceError::Window)?;
                for c in &mut self.claims {
                    if c.owner == (Owner::BridgeMemory { bdf: w.bridge }) {
                        c.range = w.after;
                    }
                }
                for b in &mut self.bridges {
                    if b.bdf == w.bridge {
                        b.memory = w.after;
                    }
                }
            }
            let cmd = conduit_pci::config::read_command(cfg, w.bridge);
            if cmd & command::MEMORY_SPACE == 0 {
                conduit_pci::config::write_command(cfg, w.bridge, cmd | command::MEMORY_SPACE);
            }
        }
        self.claims.push(Claim {
            range: space.region,
            owner: Owner::VfBars { pf },
        });
        Ok(())
    }
}
