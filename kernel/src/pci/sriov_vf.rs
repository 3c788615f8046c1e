//! The VFs of an enabled PF: waiting for them to answer, reading them as functions, and checking
//! that their BARs decode where they were placed.
//!
//! A VF's Vendor and Device ID read 0xffff (PCIe Base Spec r6.0 §9.3.4.1.1-2): its identity is
//! the PF's Vendor ID and the SR-IOV VF Device ID, and it is read through
//! [`conduit_pci::VfConfig`]. Its BAR registers are read-only zero (§9.3.4.1.11): its BARs are
//! its slices of the PF's VF BARs. Its Command register's Memory Space Enable "does not apply"
//! to VFs (§9.3.4.1.3: VF MSE in the PF governs decode), and hardware that follows that ignores
//! the write; QEMU's VFs, however, decode their BARs only with it set. Conduit sets it so that
//! VFs decode on both, right after VF MSE was set in the PF.
//!
//! The decode check reads entry 0 of the VF's MSI-X table through the BAR that holds it: after
//! reset the entry's Vector Control has its Mask bit set (PCI Local Bus Spec 3.0 §6.8.2.9), so a
//! read of 0x1 shows the aperture answers at its new address; all ones or zeros show it does not
//! (QEMU reads unassigned MMIO as zero).

use super::access::Access;
use super::sriov::{Enabled, PfInfo, VfOf};
use super::{Function, report};
use alloc::format;
use alloc::vec::Vec;
use conduit_hw::memory::{Memory, mmio};
use conduit_hw::time;
use conduit_pci::config::{self, command};
use conduit_pci::{Bdf, ConfigAccess, VfConfig, cap_id};
use log::{info, warn};

/// Poll interval while VFs still answer with Configuration Request Retry Status.
const VF_READY_POLL_US: u64 = 10_000;
/// MSI-X capability: Table Offset/Table BIR register (PCI Local Bus Spec 3.0 §6.8.2.4).
const MSIX_TABLE: u16 = 0x04;
/// Vector Control within an MSI-X table entry.
const MSIX_VECTOR_CONTROL: u64 = 0x0c;

/// Waits for the VFs of `e` to answer (within `budget` µs shared by all PFs), logs each and
/// builds its function. Returns the functions and, per VF index, the BDF of those that answered.
pub(super) fn discover(
    cfg: &mut Access,
    e: &Enabled,
    info: &PfInfo,
    mem: &Memory,
    budget: &mut u64,
) -> (Vec<Function>, Vec<Option<Bdf>>) {
    let pf = info.pf;
    let mut vfs = Vec::new();
    let mut slots = Vec::new();
    let mut below_4g = true;
    let mut decoding = 0usize;
    for index in 0..e.cap.num_vfs {
        let Ok(vf) = e.cap.vf(index) else {
            slots.push(None);
            continue;
        };
        let view = VfConfig::new(&mut *cfg, vf, info.vendor, info.vf_device);
        while !view.answers() && *budget > 0 {
            if let Err(e) = time::delay_us(VF_READY_POLL_US) {
                warn!("sriov:   {vf}: waiting for VF {index} of {pf} to answer: {e}");
                *budget = 0;
            }
            *budget = budget.saturating_sub(VF_READY_POLL_US);
        }
        let Ok(header) = conduit_pci::read_header(&view, vf) else {
            warn!("sriov:   {vf}: VF {index} of {pf} does not answer configuration requests");
            slots.push(None);
            continue;
        };
        let raw = view.raw_id();
        let mut problems = Vec::new();
        let mut caps = Vec::new();
        for c in conduit_pci::capabilities(&view, vf) {
            match c {
                Ok(c) => caps.push(c),
                Err(err) => problems.push(format!("capabilities: {err}")),
            }
        }
        let mut ext_caps = Vec::new();
        for c in conduit_pci::ext_capabilities(&view, vf) {
            match c {
                Ok(c) => ext_caps.push(c),
                Err(err) => problems.push(format!("extended capabilities: {err}")),
            }
        }
        let bars = conduit_pci::vf_function_bars(&e.vf_bars, index).unwrap_or_default();
        below_4g &= bars
            .iter()
            .all(|b| b.address.saturating_add(b.size) <= 1 << 32);
        let f = Function {
            // SR-IOV is handled on segment 0 only (`super::sriov::init`).
            segment: 0,
            bdf: vf,
            header: conduit_pci::Header {
                vendor_id: info.vendor,
                device_id: info.vf_device,
                ..header
            },
            bars,
            caps,
            ext_caps,
            bridge: None,
            depth: e.depth,
            problems,
            vf: Some(VfOf { pf, index }),
            intx: super::Intx::default(),
        };
        report::log_function(&f);
        info!(
            "sriov:   {vf}: ID registers read {:04x}:{:04x}{}",
            raw as u16,
            raw >> 16,
            if raw == u32::MAX {
                " (as PCIe r6.0 §9.3.4.1.1 says): identity from the PF and its VF Device ID"
            } else {
                ""
            }
        );
        let cmd = config::read_command(&*cfg, vf);
        config::write_command(cfg, vf, cmd | command::MEMORY_SPACE);
        decoding += usize::from(check_decode(cfg, mem, &f));
        slots.push(Some(vf));
        vfs.push(f);
    }
    info!(
        "sriov: {pf}: {} of {} VFs answer, {decoding} with MSI-X tables decoding; {}",
        vfs.len(),
        e.cap.num_vfs,
        if below_4g {
            "every VF BAR below 4 GiB"
        } else {
            "VF BARs above 4 GiB, where firmware put them"
        }
    );
    (vfs, slots)
}

/// Reads the Vector Control of MSI-X entry 0 through the VF's BAR; true if it reads as after
/// reset (masked). VFs without MSI-X are not checked (false).
fn check_decode(cfg: &Access, mem: &Memory, f: &Function) -> bool {
    let Some(msix) = f.caps.iter().find(|c| c.id == cap_id::MSIX) else {
        return false;
    };
    let table = cfg.read32(f.bdf, msix.offset + MSIX_TABLE);
    let bir = (table & 0x7) as u8;
    let offset = u64::from(table & !0x7);
    let Some(bar) = f.bars.get(bir) else {
        warn!(
            "sriov:   {}: MSI-X table in BAR{bir}, which the VF does not have",
            f.bdf
        );
        return false;
    };
    let at = offset + MSIX_VECTOR_CONTROL;
    if at + 4 > bar.size {
        warn!(
            "sriov:   {}: MSI-X table at BAR{bir}+{offset:#x} lies outside the BAR",
            f.bdf
        );
        return false;
    }
    let value = match mmio::map(mem, bar.address + (at & !0xfff), 0x1000)
        .and_then(|m| m.block::<u32>(at & 0xfff))
    {
        Ok(reg) => reg.read(),
        Err(e) => {
            warn!("sriov:   {}: cannot map BAR{bir}: {e}", f.bdf);
            return false;
        }
    };
    if value & 1 == 1 && value != u32::MAX {
        info!(
            "sriov:   {}: BAR{bir} decodes at {:#x}: MSI-X entry 0 Vector Control {value:#x} (masked, as after reset)",
            f.bdf, bar.address
        );
        true
    } else {
        warn!(
            "sriov:   {}: BAR{bir} at {:#x} does not decode: MSI-X entry 0 Vector Control reads {value:#x}",
            f.bdf, bar.address
        );
        false
    }
}
