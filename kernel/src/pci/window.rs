//! The MMIO space below 4 GiB that the hypervisor hands out for VF BARs it must move
//! ([`super::sriov`]: firmware left them unassigned or not forwarded, or the named quirk), and
//! the bridge windows that must forward it.
//!
//! [`MmioMap`] records every range that something already decodes or the firmware claims: memory
//! BARs and both memory windows of every bridge (read from their Type 1 headers), as enumeration
//! found them, and every entry of the UEFI memory map (reserved and MMIO ranges included), the
//! DMAR's remapping-unit register sets, the MCFG's ECAM windows, the I/O APICs and the local APIC
//! ([`conduit_pci::freemap`]). The space VF BARs may use is bounded by
//! `[lowest address firmware gave a PCI BAR or window, 0xfebfffff]`: below the lowest PCI
//! address lies RAM and firmware memory (the top of low memory on PC platforms), above
//! 0xfec00000 the I/O APIC, HPET, local APIC and boot flash sit. Inside those bounds a PF's VF
//! BARs take one contiguous range inside the memory window of the bridge above the PF, which is
//! grown (in 1 MiB blocks) only over space nothing else decodes, and every bridge further up is
//! grown to cover it ([`conduit_pci::decoders`] and [`conduit_pci::space`] do the arithmetic,
//! host-tested). Windows are written outermost first, then the bridges' Memory Space Enable is
//! set (PCI-to-PCI Bridge Architecture Spec 1.2 §3.2.5.8, §4.3; PCIe Base Spec r6.0 §7.5.1.3.8).
//!
//! The non-prefetchable memory window is used for every VF BAR, also prefetchable ones (allowed:
//! a prefetchable BAR may sit in non-prefetchable space, not the reverse): it is 32-bit by
//! definition, which is what a move is for (QEMU's igb VFs do not decode 64-bit addresses).

use super::Function;
use crate::platform::Platform;
use alloc::vec::Vec;
use bootloader_api::info::MemoryRegionKind;
use conduit_hw::memory::Memory;
use conduit_pci::config::command;
use conduit_pci::{
    Bdf, BridgeWindow, Claim, ConfigAccess, Decoded, Decoder, MmioWindow, VfSpaceError,
    WindowChange, WindowError,
};
use log::{error, info};

/// Highest byte VF BARs may use: just below the I/O APIC's conventional base.
const TOP: u64 = 0xfebf_ffff;
const LAPIC_DEFAULT: u64 = 0xfee0_0000;

/// Where a PF's VF BARs go, and every bridge window above it (outermost first).
#[derive(Debug, Clone)]
pub struct VfSpace {
    pub region: MmioWindow,
    pub windows: Vec<WindowChange>,
}

/// Why no space could be found or programmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaceError {
    /// Firmware assigned no PCI memory below 4 GiB: there is nothing to take bounds from.
    NoBounds,
    Space(VfSpaceError),
    Window(WindowError),
}

impl core::fmt::Display for PlaceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoBounds => write!(
                f,
                "firmware placed no PCI memory below 4 GiB: no MMIO range known to be free"
            ),
            Self::Space(e) => write!(f, "{e}"),
            Self::Window(e) => write!(f, "programming a bridge window: {e}"),
        }
    }
}

/// The decoded MMIO ranges of the machine.
#[derive(Debug)]
pub struct MmioMap {
    decoded: Vec<Decoded>,
    bridges: Vec<BridgeWindow>,
    /// Index in `decoded` of each bridge's memory window, by position in `bridges`.
    memory_entry: Vec<usize>,
    bounds: Option<MmioWindow>,
}

impl MmioMap {
    /// Records what `functions` and the platform decode; logs the bridge windows.
    pub fn new(
        cfg: &impl ConfigAccess,
        functions: &[Function],
        platform: &Platform,
        mem: &Memory,
    ) -> Self {
        let mut decoded = Vec::new();
        let mut bridges = Vec::new();
        let mut memory_entry = Vec::new();
        for f in functions {
            // Segment 0's bridges are the ones that may grow; another segment's functions decode
            // outside every one of them, like the platform's ranges.
            let by = if f.segment == 0 {
                Decoder::Function { bus: f.bdf.bus() }
            } else {
                Decoder::Platform
            };
            for bar in f.bars.iter().filter(|b| b.is_memory() && b.address != 0) {
                if let Some(range) = MmioWindow::at(bar.address, bar.size) {
                    decoded.push(Decoded { range, by });
                }
            }
            if f.segment != 0 {
                continue;
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
            let by = Decoder::Bridge { bdf: f.bdf };
            memory_entry.push(decoded.len());
            decoded.push(Decoded {
                range: w.memory,
                by,
            });
            decoded.push(Decoded {
                range: w.prefetchable,
                by,
            });
            bridges.push(BridgeWindow {
                bdf: f.bdf,
                secondary: *buses.start(),
                subordinate: *buses.end(),
                memory: w.memory,
            });
        }
        let lowest = decoded
            .iter()
            .filter(|d| !d.range.is_empty() && d.range.base <= TOP)
            .map(|d| d.range.base)
            .min();
        let claimed = firmware_claims(platform, mem);
        let mut merged = alloc::vec![
            Decoded {
                range: MmioWindow { base: 1, limit: 0 },
                by: Decoder::Platform,
            };
            claimed.len()
        ];
        // Fail closed: without the firmware's claims no free space is known, so no window is
        // opened or grown (`bounds` stays `None`) and VF BARs stay where firmware put them.
        let Some(n) = conduit_pci::claims(claimed.iter().copied(), &mut merged) else {
            error!(
                "window: the firmware's claims ({} range(s)) could not be merged: no bridge \
                 window is opened or grown",
                claimed.len()
            );
            return Self {
                decoded,
                bridges,
                memory_entry,
                bounds: None,
            };
        };
        let below_4g = merged[..n]
            .iter()
            .filter(|d| d.range.base <= MmioWindow::LIMIT_4G)
            .count();
        info!(
            "window: firmware claims {n} range(s) ({below_4g} below 4 GiB) no new window may take: \
             the memory map's {} entries ({} neither usable nor the loader's: firmware, ACPI, \
             reserved or MMIO), the DMAR's register sets, the I/O APICs, the local APIC and the \
             MCFG's ECAM windows",
            mem.map().len(),
            mem.map()
                .iter()
                .filter(|e| !matches!(
                    e.kind,
                    MemoryRegionKind::Usable | MemoryRegionKind::Bootloader
                ))
                .count()
        );
        for d in merged[..n]
            .iter()
            .filter(|d| d.range.base <= MmioWindow::LIMIT_4G)
        {
            info!("window:   claimed by firmware: {}", d.range);
        }
        decoded.extend_from_slice(&merged[..n]);
        let bounds = lowest.map(|base| MmioWindow { base, limit: TOP });
        match bounds {
            Some(b) => info!(
                "window: VF BARs go below 4 GiB, in {b} (from the lowest address firmware gave \
                 PCI to below the I/O APIC), avoiding {} decoded range(s)",
                decoded.iter().filter(|d| !d.range.is_empty()).count()
            ),
            None => info!("window: firmware placed no PCI memory below 4 GiB"),
        }
        Self {
            decoded,
            bridges,
            memory_entry,
            bounds,
        }
    }

    /// The outermost bridge above `pf` that does not forward `range` (in neither of its memory
    /// windows); `None` if every bridge above forwards it.
    pub fn not_forwarding(&self, pf: Bdf, range: MmioWindow) -> Option<Bdf> {
        conduit_pci::first_not_forwarding(&self.decoded, &self.bridges, pf.bus(), range)
    }

    /// Turns on Memory Space Enable in every bridge above `pf` that has it off (PCI-to-PCI Bridge
    /// Architecture Spec 1.2 §3.2.5.8: without it the bridge forwards no memory request, whatever
    /// its windows say); returns the bridges changed.
    pub fn enable_decode_above(&self, cfg: &mut impl ConfigAccess, pf: Bdf) -> Vec<Bdf> {
        let mut changed = Vec::new();
        for b in self.bridges.iter().filter(|b| b.forwards(pf.bus())) {
            let cmd = conduit_pci::config::read_command(cfg, b.bdf);
            if cmd & command::MEMORY_SPACE == 0 {
                conduit_pci::config::write_command(cfg, b.bdf, cmd | command::MEMORY_SPACE);
                changed.push(b.bdf);
            }
        }
        changed
    }

    /// Finds `size` bytes aligned to `align` for the VF BARs of `pf`; nothing is written yet.
    pub fn place(&self, pf: Bdf, size: u64, align: u64) -> Result<VfSpace, PlaceError> {
        let bounds = self.bounds.ok_or(PlaceError::NoBounds)?;
        let n = self.decoded.len();
        let mut inner = alloc::vec![MmioWindow { base: 1, limit: 0 }; n];
        let mut foreign = inner.clone();
        let closed = WindowChange {
            bridge: pf,
            before: MmioWindow { base: 1, limit: 0 },
            after: MmioWindow { base: 1, limit: 0 },
        };
        let mut windows = alloc::vec![closed; self.bridges.len()];
        let placed = conduit_pci::place_vf_space(
            &self.decoded,
            &self.bridges,
            pf.bus(),
            bounds,
            size,
            align,
            &mut inner,
            &mut foreign,
            &mut windows,
        )
        .map_err(PlaceError::Space)?;
        windows.truncate(placed.changes);
        Ok(VfSpace {
            region: placed.region,
            windows,
        })
    }

    /// Programs the windows of `space` (outermost first), turns on the bridges' memory decode
    /// and records the VF BAR region as decoded on `pf`'s bus.
    pub fn commit(
        &mut self,
        cfg: &mut impl ConfigAccess,
        pf: Bdf,
        space: &VfSpace,
    ) -> Result<(), PlaceError> {
        for w in &space.windows {
            if w.before != w.after {
                conduit_pci::write_memory_window(cfg, w.bridge, w.after)
                    .map_err(PlaceError::Window)?;
                if let Some(i) = self.bridges.iter().position(|b| b.bdf == w.bridge) {
                    self.bridges[i].memory = w.after;
                    if let Some(d) = self
                        .memory_entry
                        .get(i)
                        .and_then(|&e| self.decoded.get_mut(e))
                    {
                        d.range = w.after;
                    }
                }
            }
            let cmd = conduit_pci::config::read_command(cfg, w.bridge);
            if cmd & command::MEMORY_SPACE == 0 {
                conduit_pci::config::write_command(cfg, w.bridge, cmd | command::MEMORY_SPACE);
            }
        }
        self.decoded.push(Decoded {
            range: space.region,
            by: Decoder::Function { bus: pf.bus() },
        });
        Ok(())
    }
}

/// What the firmware claims (UEFI 2.10 §7.2; ACPI 6.5 §5.2.12; VT-d 4.1 §8.3; PCI Firmware Spec
/// 3.3 §4.1.2): every memory-map entry, every DMAR remapping unit's register set, the I/O APICs,
/// the local APIC and the ECAM windows.
fn firmware_claims(platform: &Platform, mem: &Memory) -> Vec<Claim> {
    let mut out: Vec<Claim> = mem
        .map()
        .iter()
        .map(|e| Claim {
            start: e.start,
            end: e.end,
        })
        .collect();
    if let Some(dmar) = platform
        .dmar
        .and_then(|b| conduit_dmar::Dmar::parse(b).ok())
    {
        for unit in dmar.drhds() {
            out.push(Claim::at(unit.register_base(), unit.register_set_size()));
        }
    }
    for e in &platform.ecam {
        let buses = u64::from(e.bus_end.saturating_sub(e.bus_start)) + 1;
        out.push(Claim::at(
            e.base + (u64::from(e.bus_start) << 20),
            buses << 20,
        ));
    }
    for io in &platform.io_apics {
        out.push(Claim::at(u64::from(io.address), 0x1000));
    }
    out.push(Claim::at(
        platform.local_apic_address.unwrap_or(LAPIC_DEFAULT),
        0x1000,
    ));
    out
}
