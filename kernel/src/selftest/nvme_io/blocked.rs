//! Steps 3 and 4 of `nvme-vf-io`: writes of guest A's whose PRP1, or whose PRP list entry,
//! points outside guest A's memory; the VF's reads of those addresses must be blocked by the
//! IOMMU with a fault attributed to the VF, and guest B's memory and the hypervisor's pages must
//! keep their checksums.

use super::super::intremap::wait_ticks;
use super::super::vtd_edu::checksum;
use super::{BAD_LBA_BYTES, BUFFER_GPA, Driver, LIST_GPA, NO_READ, SCRATCH_GPA, Side, awaited};
use crate::iommu;
use crate::nvme::{self, regs::PAGE};
use alloc::format;
use alloc::string::String;
use conduit_hw::vtd::fault::Fault;
use conduit_nvme::{Command, Direction};
use conduit_pci::Bdf;
use log::info;

/// Guest B's memory and the hypervisor's pages.
fn protected_sums(b: &Side, root: u64, pf_admin: (u64, u64)) -> (u64, u64, u64) {
    (
        b.sum(0, b.guest.size),
        checksum(&b.window, root, PAGE),
        checksum(&b.window, pf_admin.0, pf_admin.1),
    )
}

/// One write that must be blocked: `prp1`, `prp2` and, for a list, its entries. Returns the
/// fault and the command's status text.
fn blocked_write(
    a: &Side,
    d: &mut Driver,
    pages: u64,
    prp1: u64,
    list: Option<[u64; 2]>,
    bad: u64,
) -> Result<(Fault, String), String> {
    let block = d.ns.block_size;
    let slba = BAD_LBA_BYTES / u64::from(block);
    let blocks = (pages * PAGE / u64::from(block)) as u32;
    let prp2 = match (pages, list) {
        (1, None) => 0,
        (3, Some(entries)) => {
            a.pages(LIST_GPA, 1).write_u64s(entries.into_iter());
            LIST_GPA
        }
        _ => {
            return Err(String::from(
                "a blocked write is one page, or three with a list",
            ));
        }
    };
    let cmd = Command::read_write(Direction::Write, d.nsid, slba, blocks, prp1, prp2)
        .map_err(|e| format!("{e}"))?;
    let status = match awaited(a, &mut d.q, cmd, "Write") {
        Ok(c) => format!("completed with NVMe status {}", c.status()),
        Err(e) => format!("did not complete: {e}"),
    };
    wait_ticks(2);
    let faults = iommu::service_faults();
    let ok = |f: &Fault| f.source == a.vf.bdf && f.address == bad && !f.write;
    match faults.as_slice() {
        [f] if ok(f) && f.reason == NO_READ => Ok((*f, status)),
        other => Err(format!(
            "Write with PRP {bad:#x}: expected one read fault from {} at {bad:#x} with reason \
             {NO_READ:#04x}, found {other:?} (the command {status})",
            a.vf.bdf
        )),
    }
}

/// One write of steps 3 and 4: `pages` pages from `prp1` (and a PRP list of `list`); the VF's
/// read of `bad` must be blocked.
struct BadWrite {
    step: u8,
    what: &'static str,
    pages: u64,
    prp1: u64,
    list: Option<[u64; 2]>,
    bad: u64,
}

/// Steps 3 and 4.
pub(super) fn bad_writes(a: &Side, da: &mut Driver, b: &Side, pf: Bdf) -> Result<(), String> {
    let root = iommu::units()
        .first()
        .ok_or("no remapping unit")?
        .root_table;
    let pf_admin = nvme::pf_admin_memory(pf).ok_or("the PF's admin memory is unknown")?;
    let b_buffer = b.guest.hpa + BUFFER_GPA;
    let pf_iova = nvme::pf::PF_IOVA;
    for bad in [b_buffer, pf_iova] {
        if bad < a.guest.size {
            return Err(format!(
                "{bad:#x} lies inside guest A's IOVA window: not a test of anything"
            ));
        }
    }
    let leaked = b.sum(BUFFER_GPA, PAGE);
    let cases = [
        BadWrite {
            step: 3,
            what: "PRP1 at guest B's buffer (its HPA)",
            pages: 1,
            prp1: b_buffer,
            list: None,
            bad: b_buffer,
        },
        BadWrite {
            step: 4,
            what: "PRP list entry 2 at the IOVA of the PF's admin queues (the hypervisor's domain)",
            pages: 3,
            prp1: BUFFER_GPA,
            list: Some([BUFFER_GPA + PAGE, pf_iova]),
            bad: pf_iova,
        },
    ];
    for BadWrite {
        step,
        what,
        pages,
        prp1,
        list,
        bad,
    } in cases
    {
        let before = protected_sums(b, root, pf_admin);
        let (f, status) = blocked_write(a, da, pages, prp1, list, bad)?;
        let after = protected_sums(b, root, pf_admin);
        if before != after {
            return Err(format!(
                "step {step}: checksums (guest B, root table, PF admin) {before:x?} -> {after:x?}"
            ));
        }
        // What the blocked write of step 3 left on the namespace is not guest B's data.
        let left = if step == 3 {
            let back = Command::read_write(
                Direction::Read,
                da.nsid,
                BAD_LBA_BYTES / u64::from(da.ns.block_size),
                (PAGE / u64::from(da.ns.block_size)) as u32,
                SCRATCH_GPA,
                0,
            )
            .map_err(|e| format!("{e}"))?;
            let c = awaited(a, &mut da.q, back, "Read").map_err(|e| format!("{e}"))?;
            let on_disk = a.sum(SCRATCH_GPA, PAGE);
            if !c.status().is_success() || on_disk == leaked {
                return Err(format!(
                    "step 3: reading the blocks back: status {}, checksum {on_disk:#018x} \
                     (guest B's page {leaked:#018x})",
                    c.status()
                ));
            }
            format!(
                "; the blocks read back hold checksum {on_disk:#018x}, not guest B's page \
                 ({leaked:#018x})"
            )
        } else {
            String::new()
        };
        info!(
            "selftest: nvme-vf-io [{step}] guest \"{}\" Write of {pages} page(s) with {what}: \
             DMA read of {bad:#x} blocked (source {}, reason {:#04x}: {}); the command \
             {status}{left}; unchanged: guest \"{}\" {:#018x}, root table (HPA {root:#x}) \
             {:#018x}, PF admin queues (HPA {:#x}) {:#018x}",
            a.guest.name,
            f.source,
            f.reason,
            conduit_vtd::reason_text(f.reason),
            b.guest.name,
            after.0,
            after.1,
            pf_admin.0,
            after.2
        );
    }
    Ok(())
}
