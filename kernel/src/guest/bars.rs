//! A guest's BAR mappings: memory BARs in its EPT (uncached, the MSI-X table's pages left out),
//! I/O BARs as forwarded port ranges. Every mapping is checked first: the BAR must be the one
//! enumeration found for the function the guest owns at that virtual BDF, and the guest's
//! address must lie page-aligned in its BAR window [`BAR_WINDOW`] (I/O: below 0x10000, clear of
//! the configuration and console ports) without overlapping another mapping. Each EPT change is
//! followed by INVEPT (Intel SDM Vol. 3C §29.4.3.1).

use super::Guest;
use super::devices::{Assigned, BAR_WINDOW, IoMap, MemMap, size_text};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use conduit_paging::{Access, Attributes, MemoryType};
use conduit_pci::Bdf;
use core::ops::Range;
use log::{error, info};

const PAGE: u64 = 4096;
/// Ports an I/O BAR may not shadow: the configuration ports and the virtual console.
const RESERVED_PORTS: [Range<u32>; 2] = [0xcf8..0xd00, 0x3f8..0x400];

/// The physical BAR the event names, checked against what enumeration found for the function.
pub(super) fn physical_bar(
    g: &Guest,
    vbdf: Bdf,
    index: u8,
    size: u64,
    phys: u64,
) -> Result<Assigned, String> {
    let f = g
        .pci
        .functions
        .iter()
        .find(|f| f.vbdf == vbdf)
        .ok_or("no such function")?;
    let ok = f
        .bars
        .iter()
        .any(|b| b.index == index && b.size == size && b.address == phys);
    if !ok {
        return Err(format!(
            "the control task named {phys:#x}+{size:#x}, which is not BAR{index} of {}",
            f.bdf
        ));
    }
    Ok(f.clone())
}

pub(super) fn map_memory(
    g: &mut Guest,
    vbdf: Bdf,
    index: u8,
    gpa: u64,
    size: u64,
    phys: u64,
) -> Result<(), String> {
    let f = physical_bar(g, vbdf, index, size, phys)?;
    if size < PAGE || !gpa.is_multiple_of(PAGE) || !phys.is_multiple_of(PAGE) {
        return Err(String::from(
            "BARs smaller than a page or not page-aligned are not passed through",
        ));
    }
    let end = gpa.checked_add(size).ok_or("address overflows")?;
    if gpa < BAR_WINDOW.start || end > BAR_WINDOW.end {
        return Err(format!(
            "outside the guest's BAR window {:#x}-{:#x}",
            BAR_WINDOW.start,
            BAR_WINDOW.end - 1
        ));
    }
    if let Some(o) = g
        .pci
        .mem_maps
        .iter()
        .find(|m| gpa < m.gpa + m.size && m.gpa < end)
    {
        return Err(format!(
            "overlaps BAR{} of {} at {:#x}",
            o.index, o.vbdf, o.gpa
        ));
    }
    // The MSI-X table's pages stay unmapped: the guest's accesses to them trap.
    let hole = f
        .msix
        .filter(|(bir, _, _)| *bir == index)
        .map(|(_, off, n)| {
            let start = u64::from(off) & !(PAGE - 1);
            let end = (u64::from(off) + u64::from(n) * 16).next_multiple_of(PAGE);
            start..end.min(size)
        });
    let parts: Vec<Range<u64>> = match &hole {
        Some(h) => [0..h.start, h.end..size]
            .into_iter()
            .filter(|r| !r.is_empty())
            .collect(),
        None => alloc::vec![0..size],
    };
    let trap = match (&hole, f.msix) {
        (Some(h), Some((_, off, n))) => Some(super::mmio::Trap {
            vbdf,
            bar_gpa: gpa,
            pages: h.clone(),
            table: u64::from(off)..u64::from(off) + u64::from(n) * 16,
            phys: conduit_hw::memory::mmio::map(g.mem, phys + h.start, h.end - h.start).ok(),
        }),
        _ => None,
    };
    let uc = Attributes::new(Access::RW, MemoryType::Uncacheable);
    let mut frames = conduit_hw::memory::Frames::new(g.mem);
    for r in &parts {
        g.ept
            .map(
                &mut frames,
                gpa + r.start,
                phys + r.start,
                r.end - r.start,
                uc,
            )
            .map_err(|e| format!("EPT: {e}"))?;
    }
    invept(g);
    g.pci.mem_maps.push(MemMap {
        vbdf,
        index,
        gpa,
        size,
        trap,
    });
    let trapped = hole.map_or(String::new(), |h| {
        format!(
            ", MSI-X table page(s) {:#x}-{:#x} trapped",
            gpa + h.start,
            gpa + h.end - 1
        )
    });
    info!(
        "guest \"{}\": BAR{index} of {vbdf} ({}) mapped: GPA {gpa:#x}-{:#x} -> HPA {phys:#x} ({}, uncached, no exits){trapped}",
        g.name,
        f.bdf,
        end - 1,
        size_text(size)
    );
    Ok(())
}

pub(super) fn map_io(
    g: &mut Guest,
    vbdf: Bdf,
    index: u8,
    port: u64,
    size: u64,
    phys: u64,
) -> Result<(), String> {
    let f = physical_bar(g, vbdf, index, size, phys)?;
    let end = port
        .checked_add(size)
        .filter(|e| *e <= 0x1_0000)
        .ok_or("beyond port 0xffff")?;
    let (port, end, phys) = (port as u32, end as u32, phys as u32);
    if RESERVED_PORTS.iter().any(|r| port < r.end && r.start < end) {
        return Err(String::from("overlaps the configuration or console ports"));
    }
    if g.pci
        .io_maps
        .iter()
        .any(|m| port < m.port + m.size && m.port < end)
    {
        return Err(String::from("overlaps another I/O BAR"));
    }
    g.pci.io_maps.push(IoMap {
        vbdf,
        index,
        port,
        size: end - port,
        phys,
    });
    info!(
        "guest \"{}\": I/O BAR{index} of {vbdf} ({}) at ports {port:#x}-{:#x} -> {phys:#x} (forwarded)",
        g.name,
        f.bdf,
        end - 1
    );
    Ok(())
}

pub(super) fn unmap_bar(g: &mut Guest, vbdf: Bdf, index: u8) {
    g.pci
        .io_maps
        .retain(|m| !(m.vbdf == vbdf && m.index == index));
    let Some(at) = g
        .pci
        .mem_maps
        .iter()
        .position(|m| m.vbdf == vbdf && m.index == index)
    else {
        return;
    };
    let m = g.pci.mem_maps.remove(at);
    let mut frames = conduit_hw::memory::Frames::new(g.mem);
    if let Err(e) = g.ept.unmap(&mut frames, m.gpa, m.size) {
        error!(
            "guest \"{}\": unmapping BAR{index} of {vbdf} at {:#x}: {e}",
            g.name, m.gpa
        );
    }
    invept(g);
    info!(
        "guest \"{}\": BAR{index} of {vbdf} unmapped from GPA {:#x}",
        g.name, m.gpa
    );
}

/// INVEPT after an EPT change, on every CPU that runs one of the guest's vCPUs. A translation
/// that may outlive its mapping (an unmapped or quarantined BAR still reachable) is not left
/// behind: the guest is stopped with the reason.
fn invept(g: &mut Guest) {
    if let Err(e) = g.invept() {
        error!("guest \"{}\": {e}", g.name);
        g.stop(format!("{e} after an EPT change of a BAR mapping"));
    }
}
