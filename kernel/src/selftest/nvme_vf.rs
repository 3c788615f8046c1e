//! `[test] scenario = "nvme-vf"`: an NVMe VF at work for a guest, with the hypervisor running the
//! guest's driver on its behalf (QEMU has no VMX, so no vCPU can).
//!
//! The driver first does what a guest's driver does in its configuration space, through the entry
//! points a running vCPU's exits reach (`guest_driver`: port I/O exits): it places the VF's BAR0
//! in its BAR window and turns memory decode and bus mastering on; the exit path maps the BAR in
//! guest A's EPT, and the controller's registers are reached at the host-physical address that
//! EPT mapping gives (where a vCPU's accesses would land, with no exit).
//!
//! Guest A is the first guest given a VF whose secondary controller Conduit brought online
//! (`crate::nvme`). The admin-queue driver (`crate::nvme::Controller`, the same one a guest would
//! run) is given three pages of guest A's memory for its queues and data, addressed by
//! guest-physical address: every DMA of the VF goes through guest A's IOMMU domain under the VF's
//! own requester ID. The script:
//! 1. Enable the VF's controller, Identify Controller: the 4 KiB result lands in guest A's memory;
//!    serial and model number equal the PF's.
//! 2. Identify with PRP1 just past the end of guest A's memory, then at guest B's host-physical
//!    address, then at the IOVA of the PF's admin queues in the hypervisor-owned domain: each
//!    transfer is blocked, recorded as a fault with the VF's BDF, the address and the reason;
//!    guest B's memory and the hypervisor's pages (the VT-d root table, the PF's admin queues)
//!    keep their checksums; the command's status is logged decoded.
//! 3. The VF still answers Identify for guest A.
//!
//! `[test] scenario = "nvme-vf-bad"` checks the bring-up's error path instead: VFs the PF refused
//! (the first two configured VFs get deliberately broken requests) are assigned to no guest, the
//! others are online and assigned.

use super::guest_driver::{GuestView, virtual_bdf};
use super::vtd_edu::checksum;
use crate::guest::Guest;
use crate::guest::boot::{self, Placed};
use crate::iommu;
use crate::nvme::regs::{ADMIN_PAGES, AdminMemory, PAGE};
use crate::nvme::{self, Controller, OnlineVf};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use conduit_hw::apic;
use conduit_hw::memory::{Memory, PhysWindow};
use conduit_hw::vtd::fault::Fault;
use conduit_nvme::{Cns, Command, IdentifyController};
use conduit_pci::Bdf;
use log::info;

/// Fault reason of a DMA write to an unmapped page (VT-d spec, Appendix A; QEMU reports 05h).
const NO_WRITE: u8 = 0x05;

/// Guest A with its VF.
struct Subject {
    guest: Placed,
    pf: Bdf,
    vf: OnlineVf,
}

fn find_subject() -> Result<Subject, String> {
    boot::placed()
        .into_iter()
        .find_map(|g| {
            let (pf, vf) = g
                .devices
                .iter()
                .find_map(|b| nvme::online_vf(b.bdf).filter(|_| b.segment == 0))?;
            Some(Subject { guest: g, pf, vf })
        })
        .ok_or_else(|| String::from("no guest was given an NVMe VF that is online"))
}

/// The run's Identify with the data pointer at `prp1`; interrupts on while waiting, so that the
/// fault event interrupt can report. Returns the completion's status text and the faults.
fn identify_at(c: &mut Controller, prp1: u64) -> Result<(String, Vec<Fault>), String> {
    let irq = apic::ready();
    if irq {
        x86_64::instructions::interrupts::enable();
    }
    let done = c.admin(
        Command::identify(Cns::Controller, 0, prp1),
        "Identify Controller",
    );
    if irq {
        x86_64::instructions::interrupts::disable();
    }
    let status = match done {
        Ok(c) => format!("completed with NVMe status {}", c.status()),
        Err(e) => format!("did not complete: {e}"),
    };
    Ok((status, iommu::service_faults()))
}

struct Sums {
    guest_b: Option<(String, u64, u64)>,
    /// The hypervisor's pages: the VT-d root table, the PF's admin memory.
    root: u64,
    pf_admin: u64,
}

fn sums(window: &PhysWindow, b: Option<&Placed>, root: u64, pf_admin: (u64, u64)) -> Sums {
    Sums {
        guest_b: b.map(|g| (g.name.clone(), g.hpa, checksum(window, g.hpa, g.size))),
        root: checksum(window, root, PAGE),
        pf_admin: checksum(window, pf_admin.0, pf_admin.1),
    }
}

/// Guest A's driver places the VF's BARs and turns memory decode and bus mastering on through
/// its configuration ports; returns the host-physical address guest A's EPT now maps its BAR0
/// to, which must be the VF's BAR0.
fn map_bar0(view: &mut GuestView, s: &Subject) -> Result<u64, String> {
    let vbdf = virtual_bdf(s.guest.index, s.vf.bdf)
        .ok_or_else(|| format!("{} is not in guest A's topology", s.vf.bdf))?;
    let bars = crate::pci::get()
        .and_then(|p| p.function(s.vf.bdf))
        .ok_or("the VF was not enumerated")?
        .bars;
    let placed = view.place_bars(vbdf, bars.iter().copied())?;
    let gpa = placed
        .iter()
        .find(|(index, _)| *index == 0)
        .map(|(_, gpa)| *gpa)
        .ok_or("the VF has no memory BAR0")?;
    view.write(vbdf, 0x04, 2, 0x0006)?;
    let hpa = view
        .guest()
        .ept_walk(gpa)
        .ok()
        .and_then(|w| w.translation())
        .map(|t| t.phys);
    if hpa != Some(s.vf.bar0) {
        return Err(format!(
            "guest A's BAR0 at GPA {gpa:#x} maps to {hpa:x?}, not the VF's BAR0 {:#x}",
            s.vf.bar0
        ));
    }
    info!(
        "selftest: nvme-vf: guest A's driver placed BAR0 of its {vbdf} at GPA {gpa:#x} and turned \
         memory decode and bus mastering on through its configuration ports; its EPT maps the BAR \
         to HPA {:#x}, the VF's BAR0",
        s.vf.bar0
    );
    Ok(s.vf.bar0)
}

/// Runs the script; returns the number of steps passed.
pub fn run(mem: &'static Memory, guests: &mut [Guest]) -> Result<usize, String> {
    iommu::status().map_err(|why| format!("DMA remapping is not enabled: {why}"))?;
    let s = find_subject()?;
    let guest = guests
        .iter_mut()
        .find(|g| g.pci.index == s.guest.index)
        .ok_or_else(|| format!("guest \"{}\" was not placed", s.guest.name))?;
    let bar0 = map_bar0(&mut GuestView::new(guest, mem)?, &s)?;
    let a = &s.guest;
    let domain = a.domain.ok_or("guest A has no IOMMU domain")?;
    let pf_id = nvme::pf_identity(s.pf).ok_or("the PF's Identify data is missing")?;
    let window = PhysWindow::new(mem, true);
    // The driver's three pages in the middle of guest A's memory, by guest-physical address.
    let gpa = (a.size / 2) & !(PAGE - 1);
    if gpa + ADMIN_PAGES * PAGE > a.size {
        return Err(format!("guest {} is too small for the queues", a.name));
    }
    let dma = AdminMemory {
        window,
        hpa: a.hpa + gpa,
        device: gpa,
    };
    info!(
        "selftest: nvme-vf: guest A = \"{}\" ({} MiB at HPA {:#x}, IOMMU domain {domain}), VF {} \
         of {} (secondary controller {:#x}, {} VQ, {} VI), BAR0 {:#x}; its driver's admin queues \
         at GPA {:#x} (SQ), {:#x} (CQ), data at {:#x}, all in guest A's memory; no vCPU runs guest \
         A: the hypervisor drives the VF on its behalf",
        a.name,
        a.size >> 20,
        a.hpa,
        s.vf.bdf,
        s.pf,
        s.vf.scid,
        s.vf.nvq,
        s.vf.nvi,
        s.vf.bar0,
        dma.sq(),
        dma.cq(),
        dma.data()
    );
    let mut c =
        Controller::open(mem, s.vf.bdf, bar0, s.vf.bar0_len, dma).map_err(|e| format!("{e}"))?;
    let cap = c.cap();
    info!(
        "selftest: nvme-vf: VF {}: CAP {:#018x} (MQES {}, TO {} ms, DSTRD {}), version {}",
        s.vf.bdf,
        cap.0,
        cap.max_queue_entries(),
        cap.timeout_ms(),
        cap.doorbell_stride_field(),
        c.version()
    );
    let result = script(&mut c, &s, &pf_id, mem);
    if let Err(e) = c.disable() {
        log::warn!(
            "selftest: nvme-vf: VF {}: disabling at the end: {e}",
            s.vf.bdf
        );
    }
    result
}

fn script(
    c: &mut Controller,
    s: &Subject,
    pf_id: &IdentifyController,
    mem: &'static Memory,
) -> Result<usize, String> {
    let a = &s.guest;
    let window = PhysWindow::new(mem, true);
    c.enable().map_err(|e| format!("VF {}: {e}", s.vf.bdf))?;
    // [1] Identify Controller into guest A's memory.
    let data_gpa = c.memory().data();
    let data = c
        .identify(
            Cns::Controller,
            0,
            "Identify Controller (CNS 01h) through the VF",
        )
        .map_err(|e| format!("VF {}: {e}", s.vf.bdf))?;
    let id = IdentifyController::parse(&data[..]).map_err(|e| format!("{e}"))?;
    let in_guest = checksum(&window, a.hpa + data_gpa, PAGE);
    let copied = {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for w in data.as_chunks::<8>().0 {
            h = (h ^ u64::from_le_bytes(*w)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        h
    };
    if in_guest != copied {
        return Err(format!(
            "the Identify data read back ({copied:#018x}) is not what guest A's page holds \
             ({in_guest:#018x})"
        ));
    }
    info!(
        "selftest: nvme-vf [1] Identify Controller through VF {}: 4 KiB landed at GPA {data_gpa:#x} \
         (HPA {:#x}) in guest A's memory (checksum {in_guest:#018x}): VID {:#06x}, SN \"{}\", MN \
         \"{}\", FR \"{}\", controller ID {:#x}",
        s.vf.bdf,
        a.hpa + data_gpa,
        id.vid,
        id.serial,
        id.model,
        id.firmware,
        id.cntlid
    );
    if id.serial != pf_id.serial || id.model != pf_id.model {
        return Err(format!(
            "the VF reports SN \"{}\" MN \"{}\", the PF SN \"{}\" MN \"{}\"",
            id.serial, id.model, pf_id.serial, pf_id.model
        ));
    }
    if id.cntlid != s.vf.scid {
        return Err(format!(
            "the VF's controller ID {:#x} is not its secondary controller ID {:#x}",
            id.cntlid, s.vf.scid
        ));
    }
    info!(
        "selftest: nvme-vf [1] the VF's SN \"{}\" and MN \"{}\" equal the PF's; its controller ID \
         {:#x} is the secondary controller's",
        id.serial, id.model, id.cntlid
    );
    // [2]-[4] Data pointers outside guest A's memory.
    let b = boot::placed().into_iter().find(|g| g.name != a.name);
    let root = iommu::units()
        .first()
        .ok_or("no remapping unit")?
        .root_table;
    let mut targets: Vec<(String, u64)> = alloc::vec![(
        format!("GPA {:#x}, just past the end of guest A's memory", a.size),
        a.size
    )];
    if let Some(g) = &b {
        targets.push((format!("guest \"{}\"'s memory (its HPA)", g.name), g.hpa));
    }
    targets.push((
        String::from("the IOVA of the PF's admin queues in the hypervisor-owned domain"),
        nvme::pf::PF_IOVA,
    ));
    let pf_admin = nvme::pf_admin_memory(s.pf).ok_or("the PF's admin memory is unknown")?;
    let mut step = 1;
    for (what, prp1) in targets {
        step += 1;
        if prp1 < a.size {
            return Err(format!(
                "{what} at {prp1:#x} lies inside guest A's IOVA window"
            ));
        }
        let before = sums(&window, b.as_ref(), root, pf_admin);
        let (status, faults) = identify_at(c, prp1)?;
        let after = sums(&window, b.as_ref(), root, pf_admin);
        let blocked = |f: &Fault| {
            f.source == s.vf.bdf && f.address == prp1 && f.write && f.reason == NO_WRITE
        };
        match faults.as_slice() {
            [f] if blocked(f) => {}
            [] => {
                return Err(format!(
                    "Identify to {what}: no DMA fault recorded ({status})"
                ));
            }
            other => {
                return Err(format!(
                    "Identify to {what}: expected one write fault from {} at {prp1:#x} with \
                     reason {NO_WRITE:#04x}, found {other:?}",
                    s.vf.bdf
                ));
            }
        }
        if let (Some(x), Some(y)) = (&before.guest_b, &after.guest_b)
            && x.2 != y.2
        {
            return Err(format!(
                "guest \"{}\"'s memory changed: {:#018x} -> {:#018x}",
                x.0, x.2, y.2
            ));
        }
        if (before.root, before.pf_admin) != (after.root, after.pf_admin) {
            return Err(format!(
                "the hypervisor's pages changed: root table {:#018x} -> {:#018x}, PF admin \
                 memory {:#018x} -> {:#018x}",
                before.root, after.root, before.pf_admin, after.pf_admin
            ));
        }
        let b_text = after.guest_b.map_or_else(String::new, |(n, hpa, sum)| {
            format!("guest \"{n}\" (HPA {hpa:#x}) {sum:#018x}, ")
        });
        info!(
            "selftest: nvme-vf [{step}] Identify with PRP1 = {prp1:#x} ({what}): DMA write blocked \
             (source {}, reason {NO_WRITE:#04x}); the command {status}; unchanged: {b_text}\
             hypervisor's root table (HPA {root:#x}) {:#018x}, PF admin queues (HPA {:#x}) \
             {:#018x}",
            s.vf.bdf, after.root, pf_admin.0, after.pf_admin
        );
    }
    // The controller still works for guest A after the faults.
    let again = c
        .identify(
            Cns::Controller,
            0,
            "Identify Controller (CNS 01h) after the faults",
        )
        .map_err(|e| format!("VF {}: {e}", s.vf.bdf))?;
    let again = IdentifyController::parse(&again[..]).map_err(|e| format!("{e}"))?;
    if again.serial != id.serial {
        return Err(String::from("the VF answers differently after the faults"));
    }
    step += 1;
    info!(
        "selftest: nvme-vf [{step}] VF {} still serves guest A after the blocked transfers: SN \
         \"{}\"",
        s.vf.bdf, again.serial
    );
    Ok(step)
}

/// `nvme-vf-bad`: the broken VFs are unassigned, the others online and assigned.
pub fn run_bad() -> Result<usize, String> {
    let pci = crate::pci::get().ok_or("no PCI enumeration")?;
    let placed = boot::placed();
    let mut online = 0;
    for g in &placed {
        for b in &g.devices {
            let Some(crate::pci::sriov::VfOf { pf, index }) =
                pci.function_at(*b).and_then(|f| f.vf)
            else {
                continue;
            };
            match nvme::vf_status(pf, index) {
                Some(Ok(_)) => online += 1,
                Some(Err(why)) => {
                    return Err(format!(
                        "VF {b} is assigned to guest \"{}\" although it is not online: {why}",
                        g.name
                    ));
                }
                None => {}
            }
        }
    }
    let mut failed = 0;
    for f in pci.functions() {
        for index in 0..u16::from(u8::MAX) {
            if let Some(Err(why)) = nvme::vf_status(f.bdf, index) {
                failed += 1;
                info!(
                    "selftest: nvme-vf-bad: VF {index} of {} is not online and assigned to no \
                     guest: {why}",
                    f.bdf
                );
            }
        }
    }
    info!("selftest: nvme-vf-bad: {failed} VF(s) refused, {online} online and assigned");
    if failed < 2 || online == 0 {
        return Err(format!(
            "expected the broken VFs to be refused and the others to come online: {failed} \
             refused, {online} online and assigned"
        ));
    }
    Ok(failed + online)
}
