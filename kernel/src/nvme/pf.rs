//! An NVMe PF driven by the hypervisor: its admin queues in a hypervisor-owned IOMMU domain, and
//! the secondary controllers of its VFs (NVMe Base Spec 2.0 §8.26 "Virtualization Enhancements",
//! §5.22 "Virtualization Management command").
//!
//! The sequence (the one QEMU 10's nvme needs, `docs/platforms.md`):
//! 1. Identify Controller (CNS 01h): Virtualization Management must be supported (OACS bit 7);
//!    Primary Controller Capabilities (CNS 14h) and the Secondary Controller List (CNS 15h).
//! 2. Primary Controller Flexible Allocation (action 1h) of 0 VQ and 0 VI resources to the
//!    primary: every flexible resource goes to the secondaries. It takes effect at the primary's
//!    next Controller Level Reset, which for QEMU is a Function Level Reset of the PF (a CC.EN
//!    toggle does not apply it).
//! 3. FLR of the PF ([`crate::pci::reset`]), then the controller is enabled again. The FLR also
//!    clears NumVFs and VF Enable, so only now are the VFs enabled ([`super::vfs::enable`]).
//! 4. Per configured VF: with its secondary controller offline, Secondary Controller Assign
//!    (action 8h) of VI (at least 1) and VQ (at least 2: the admin queue and one I/O queue)
//!    resources, then Secondary Controller Online (action 9h).
//!
//! 5. The PF's namespaces attached to the online VFs' controllers ([`super::namespaces`]).
//!
//! After that the PF is never reset again (a reset, CC.EN 1 -> 0 included, takes every secondary
//! controller offline): its controller stays enabled for as long as the hypervisor runs.

use super::controller::{Controller, NvmeError};
use super::regs::{ADMIN_PAGES, AdminMemory, PAGE};
use super::{namespaces, vfs};
use crate::iommu::{self, DomainId, GuestMemory};
use crate::pci::{self, Function};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use conduit_hw::memory::{Memory, PhysWindow};
use conduit_nvme::{
    Cns, Command, IdentifyController, PrimaryControllerCaps, ResourceType, SecondaryControllerList,
    VirtAction,
};
use conduit_pci::Bdf;
use conduit_pci::config::command;
use log::{error, info, warn};

/// IOVA of the PF's admin memory in its hypervisor-owned domain.
pub const PF_IOVA: u64 = 0x1000_0000;

/// TEST ONLY (feature `selftest`): a deliberately wrong Virtualization Management request for
/// one VF.
#[cfg(feature = "selftest")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Break {
    /// Assign to a controller identifier the PF does not list.
    WrongControllerId,
    /// Ask for one VQ resource more than a secondary may have (VQFRSM + 1).
    TooManyQueues,
}

/// One VF a guest is configured to get.
#[derive(Debug, Clone)]
pub struct VfRequest {
    pub index: u16,
    pub guest: String,
    #[cfg(feature = "selftest")]
    pub test_break: Option<Break>,
}

/// A VF whose secondary controller is online.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnlineVf {
    pub index: u16,
    pub bdf: Bdf,
    /// Physical address of the VF's BAR0.
    pub bar0: u64,
    pub bar0_len: u64,
    pub scid: u16,
    pub nvq: u16,
    pub nvi: u16,
}

/// What became of a PF and its requested VFs.
pub struct Managed {
    pub pf: Bdf,
    /// The PF's controller (enabled, its admin queues in `domain`), if it came up.
    pub controller: Option<Controller>,
    pub identity: Option<IdentifyController>,
    pub domain: Option<DomainId>,
    /// Per requested VF index: online, or why not.
    pub vfs: Vec<(u16, Result<OnlineVf, String>)>,
}

/// Allocates the PF's admin memory and a domain mapping exactly it at [`PF_IOVA`], and assigns
/// the PF to that domain. Without DMA remapping the PF is only driven if `unsafe_no_iommu`
/// (then the controller is given host-physical addresses).
fn hypervisor_dma(
    mem: &'static Memory,
    pf: Bdf,
    unsafe_no_iommu: bool,
) -> Result<(AdminMemory, Option<DomainId>), String> {
    let window = PhysWindow::new(mem, true);
    let hpa = mem
        .frames
        .lock()
        .allocate_contiguous(ADMIN_PAGES as usize, 1)
        .ok_or("no frames for the PF's admin queues")?
        .0;
    let len = ADMIN_PAGES * PAGE;
    match iommu::status() {
        Ok(()) => {
            let name = format!("nvme-pf-{pf}");
            let region = GuestMemory {
                gpa: PF_IOVA,
                hpa,
                len,
            };
            let domain = iommu::create_domain(&name, &[region]).map_err(|e| format!("{e}"))?;
            iommu::assign(pf, domain).map_err(|e| format!("{e}"))?;
            info!(
                "nvme: {pf}: admin queues in hypervisor-owned IOMMU domain {domain} \"{name}\": \
                 IOVA {PF_IOVA:#x}-{:#x} -> HPA {hpa:#x} ({ADMIN_PAGES} pages: ASQ, ACQ, data); \
                 nothing else is mapped for the PF",
                PF_IOVA + len - 1
            );
            let dma = AdminMemory {
                window,
                hpa,
                device: PF_IOVA,
            };
            Ok((dma, Some(domain)))
        }
        Err(why) if unsafe_no_iommu => {
            warn!(
                "nvme: {pf}: DMA remapping is off ({why}): driving the PF WITHOUT protection \
                 (unsafe_no_iommu), admin queues at HPA {hpa:#x}"
            );
            let dma = AdminMemory {
                window,
                hpa,
                device: hpa,
            };
            Ok((dma, None))
        }
        Err(why) => Err(format!(
            "DMA remapping is off ({why}): the PF's DMA could not be confined; set [hypervisor] \
             unsafe_no_iommu = true to drive it anyway"
        )),
    }
}

fn log_primary(pf: Bdf, when: &str, p: &PrimaryControllerCaps) {
    info!(
        "nvme: {pf}: primary controller {:#x} {when}: VQ flexible {} (primary {}, secondaries \
         {}, private {}, at most {} per secondary), VI flexible {} (primary {}, secondaries {}, \
         private {}, at most {} per secondary)",
        p.cntlid,
        p.vq.total,
        p.vq.allocated_to_primary,
        p.vq.assigned_to_secondaries,
        p.vq.private,
        p.vq.max_per_secondary,
        p.vi.total,
        p.vi.allocated_to_primary,
        p.vi.assigned_to_secondaries,
        p.vi.private,
        p.vi.max_per_secondary
    );
}

fn log_secondaries(pf: Bdf, list: &SecondaryControllerList) {
    info!(
        "nvme: {pf}: secondary controller list: {} controller(s)",
        list.len()
    );
    for e in list.iter() {
        info!(
            "nvme: {pf}:   secondary controller {:#x} (primary {:#x}): VF number {}, {}, VQ {}, \
             VI {}",
            e.scid,
            e.pcid,
            e.vfn,
            if e.online { "online" } else { "offline" },
            e.nvq,
            e.nvi
        );
    }
}

fn identify_primary(c: &mut Controller, cntlid: u16) -> Result<PrimaryControllerCaps, NvmeError> {
    let what = "Identify Primary Controller Capabilities (CNS 14h)";
    let data = c.identify(Cns::PrimaryControllerCapabilities, cntlid, what)?;
    PrimaryControllerCaps::parse(&data[..]).map_err(|error| NvmeError::Parse { what, error })
}

fn identify_secondaries(c: &mut Controller) -> Result<SecondaryControllerList, NvmeError> {
    let what = "Identify Secondary Controller List (CNS 15h)";
    let data = c.identify(Cns::SecondaryControllerList, 0, what)?;
    SecondaryControllerList::parse(&data[..]).map_err(|error| NvmeError::Parse { what, error })
}

/// Virtualization Management with the action, resource type and count in the log and in the
/// error.
fn virt(
    c: &mut Controller,
    action: VirtAction,
    resource: ResourceType,
    cntlid: u16,
    count: u16,
) -> Result<u32, String> {
    let cmd = Command::virtualization_management(action, resource, cntlid, count);
    let done = c
        .admin(cmd, "Virtualization Management")
        .map_err(|e| format!("{} for controller {cntlid:#x}: {e}", action.name()))?;
    let status = done.status();
    if !status.is_success() {
        return Err(format!(
            "{} ({} {count}) for controller {cntlid:#x} failed: NVMe status {status}",
            action.name(),
            resource.short()
        ));
    }
    Ok(done.dw0)
}

/// Steps 1-3: the PF's controller up, flexible resources released, the FLR that applies it, the
/// controller enabled again, VFs enabled.
fn prepare_pf(
    pci: &pci::Pci,
    f: &Function,
    dma: AdminMemory,
    mem: &'static Memory,
    num_vfs: u16,
) -> Result<(Controller, IdentifyController, vfs::EnabledVfs), String> {
    let pf = f.bdf;
    let bar = f
        .bars
        .get(0)
        .filter(|b| b.is_memory())
        .ok_or_else(|| format!("{pf}: no memory BAR0"))?;
    pci::enable_command_bits(
        pf,
        command::MEMORY_SPACE | command::BUS_MASTER | command::INTX_DISABLE,
    )
    .ok_or_else(|| format!("{pf}: cannot write its Command register"))?;
    let mut c =
        Controller::open(mem, pf, bar.address, bar.size, dma).map_err(|e| format!("{e}"))?;
    let cap = c.cap();
    info!(
        "nvme: {pf}: BAR0 {:#x}, CAP {:#018x} (MQES {}, TO {} ms, DSTRD {} = {}-byte doorbells), \
         version {}",
        c.bar(),
        cap.0,
        cap.max_queue_entries(),
        cap.timeout_ms(),
        cap.doorbell_stride_field(),
        cap.doorbell_stride(),
        c.version()
    );
    c.enable().map_err(|e| format!("{e}"))?;
    let what = "Identify Controller (CNS 01h)";
    let data = c
        .identify(Cns::Controller, 0, what)
        .map_err(|e| format!("{e}"))?;
    let id = IdentifyController::parse(&data[..]).map_err(|e| format!("{what}: {e}"))?;
    info!(
        "nvme: {pf}: Identify Controller: VID {:#06x}, SSVID {:#06x}, SN \"{}\", MN \"{}\", FR \
         \"{}\", controller ID {:#x}, OACS {:#x}, version {}",
        id.vid,
        id.ssvid,
        id.serial,
        id.model,
        id.firmware,
        id.cntlid,
        id.oacs,
        conduit_nvme::Version(id.version)
    );
    if !id.virtualization_management() {
        return Err(format!(
            "{pf}: OACS {:#x}: no Virtualization Management: its VFs cannot be given resources",
            id.oacs
        ));
    }
    let primary = identify_primary(&mut c, id.cntlid).map_err(|e| format!("{e}"))?;
    log_primary(pf, "at boot", &primary);
    log_secondaries(
        pf,
        &identify_secondaries(&mut c).map_err(|e| format!("{e}"))?,
    );
    for rt in [ResourceType::Queue, ResourceType::Interrupt] {
        let kept = virt(
            &mut c,
            VirtAction::PrimaryFlexibleAllocation,
            rt,
            id.cntlid,
            0,
        )?;
        info!(
            "nvme: {pf}: Primary Controller Flexible Allocation: the primary keeps {kept} \
             flexible {} resources after its next reset",
            rt.short()
        );
    }
    let vfs_before = vfs::enabled_count(pci, pf);
    c.disable().map_err(|e| format!("{e}"))?;
    pci::reset::function_level_reset(pci, pf).map_err(|e| format!("{e}"))?;
    info!(
        "nvme: {pf}: function level reset done (configuration restored; NumVFs/VF Enable \
         cleared by the reset: {vfs_before} VF(s) were enabled before)"
    );
    c.enable().map_err(|e| format!("after the FLR: {e}"))?;
    let primary = identify_primary(&mut c, id.cntlid).map_err(|e| format!("{e}"))?;
    log_primary(pf, "after the FLR", &primary);
    let enabled = vfs::enable(pci, pf, num_vfs, vfs_before)?;
    info!(
        "nvme: {pf}: {} VF(s) enabled (NumVFs {}, VF BAR0 {:#x}, {} KiB per VF), VF Enable and VF \
         MSE set after the FLR",
        enabled.sriov.num_vfs,
        enabled.sriov.num_vfs,
        enabled.bar0.address,
        enabled.bar0.size / 1024
    );
    Ok((c, id, enabled))
}

/// Step 4 for one VF.
fn bring_online(
    c: &mut Controller,
    enabled: &vfs::EnabledVfs,
    // Read only by the test image's deliberate errors.
    #[cfg_attr(not(feature = "selftest"), expect(unused_variables))]
    primary: &PrimaryControllerCaps,
    list: &SecondaryControllerList,
    req: &VfRequest,
    share: (u16, u16),
) -> Result<OnlineVf, String> {
    let pf = c.bdf;
    let index = req.index;
    let (bdf, bar0) = enabled
        .vf(index)
        .ok_or_else(|| format!("VF {index} is not below NumVFs {}", enabled.sriov.num_vfs))?;
    let entry = list
        .for_vf(index)
        .ok_or_else(|| format!("{pf} lists no secondary controller for VF {index}"))?;
    #[cfg(not(feature = "selftest"))]
    let (scid, (nvq, nvi)) = (entry.scid, share);
    #[cfg(feature = "selftest")]
    let (scid, (nvq, nvi)) = test_break(pf, req, bdf, primary, list, entry.scid, share);
    use ResourceType::{Interrupt, Queue};
    use VirtAction::{SecondaryAssign, SecondaryOffline, SecondaryOnline};
    if entry.online {
        virt(c, SecondaryOffline, Queue, scid, 0)?;
    }
    virt(c, SecondaryAssign, Interrupt, scid, nvi)?;
    let rest = virt(c, SecondaryAssign, Queue, scid, nvq)
        .and_then(|_| virt(c, SecondaryOnline, Queue, scid, 0));
    if let Err(why) = rest {
        // Give back what was assigned: a secondary controller taken offline returns its
        // flexible resources (§5.22.1, Secondary Controller Offline).
        match virt(c, SecondaryOffline, Queue, scid, 0) {
            Ok(_) => info!(
                "nvme: {pf}: controller {scid:#x} taken offline again: the resources assigned to \
                 it return to the pool"
            ),
            Err(e) => warn!("nvme: {pf}: {e}"),
        }
        return Err(why);
    }
    let now = identify_secondaries(c).map_err(|e| format!("{e}"))?;
    let e = now
        .by_id(scid)
        .ok_or_else(|| format!("controller {scid:#x} vanished from the secondary list"))?;
    if !e.online {
        return Err(format!(
            "controller {scid:#x} is still offline after going online"
        ));
    }
    Ok(OnlineVf {
        index,
        bdf,
        bar0,
        bar0_len: enabled.bar0.size,
        scid,
        nvq: e.nvq,
        nvi: e.nvi,
    })
}

/// TEST ONLY (feature `selftest`): the controller identifier and (VQ, VI) resources VF `req` of
/// `pf` is brought online with: its own, or the deliberately wrong ones of its [`Break`].
#[cfg(feature = "selftest")]
fn test_break(
    pf: Bdf,
    req: &VfRequest,
    bdf: Bdf,
    primary: &PrimaryControllerCaps,
    list: &SecondaryControllerList,
    own_scid: u16,
    (nvq, nvi): (u16, u16),
) -> (u16, (u16, u16)) {
    let index = req.index;
    match req.test_break {
        Some(Break::WrongControllerId) => {
            let scid = list.iter().map(|e| e.scid).max().unwrap_or(0) + 1;
            warn!(
                "nvme: {pf}: TEST: VF {index} ({bdf}) addressed as controller {scid:#x}, which \
                 the PF does not list (its secondary controller is {own_scid:#x})"
            );
            (scid, (nvq, nvi))
        }
        Some(Break::TooManyQueues) => {
            let nvq = primary.vq.max_per_secondary + 1;
            warn!(
                "nvme: {pf}: TEST: VF {index} ({bdf}) asks for {nvq} VQ resources (at most {} \
                 per secondary)",
                primary.vq.max_per_secondary
            );
            (own_scid, (nvq, nvi))
        }
        None => (own_scid, (nvq, nvi)),
    }
}

/// Runs the whole sequence for PF `f` and the VFs `requests` name.
pub fn manage(
    pci: &pci::Pci,
    f: &Function,
    mem: &'static Memory,
    requests: &[VfRequest],
    unsafe_no_iommu: bool,
) -> Managed {
    let pf = f.bdf;
    let mut out = Managed {
        pf,
        controller: None,
        identity: None,
        domain: None,
        vfs: Vec::new(),
    };
    // A VF index beyond TotalVFs has no function and no secondary controller: refused alone.
    let total = pci.with_config(|cfg| {
        conduit_pci::SriovCap::find(&*cfg, pf)
            .ok()
            .flatten()
            .map_or(0, |c| c.total_vfs)
    });
    let (requests, beyond): (Vec<&VfRequest>, Vec<&VfRequest>) =
        requests.iter().partition(|r| r.index < total);
    for r in beyond {
        let why = format!(
            "VF index {} is not below the PF's TotalVFs {total}",
            r.index
        );
        error!(
            "nvme: {pf}: VF {} for guest \"{}\" cannot be brought online: {why}; it stays \
             unassigned",
            r.index, r.guest
        );
        out.vfs.push((r.index, Err(why)));
    }
    if requests.is_empty() {
        return out;
    }
    let fail_all = |out: &mut Managed, why: &str| {
        for r in &requests {
            out.vfs.push((r.index, Err(format!("PF {pf}: {why}"))));
        }
    };
    // A PF whose VFs enumeration refused (crate::pci::sriov) is not driven: its VFs were never
    // brought up and checked.
    if let Some(why) = crate::pci::sriov::refused(pf) {
        let why = format!("its VFs were not enabled at boot: {why}");
        error!("nvme: {pf}: not driven: {why}");
        fail_all(&mut out, &why);
        return out;
    }
    let (dma, domain) = match hypervisor_dma(mem, pf, unsafe_no_iommu) {
        Ok(d) => d,
        Err(why) => {
            error!("nvme: {pf}: not driven: {why}");
            fail_all(&mut out, &why);
            return out;
        }
    };
    out.domain = domain;
    let num_vfs = requests.iter().map(|r| r.index + 1).max().unwrap_or(1);
    let (mut c, id, enabled) = match prepare_pf(pci, f, dma, mem, num_vfs) {
        Ok(v) => v,
        Err(why) => {
            error!("nvme: {pf}: {why}");
            fail_all(&mut out, &why);
            return out;
        }
    };
    out.identity = Some(id);
    let after =
        identify_primary(&mut c, id.cntlid).and_then(|p| Ok((p, identify_secondaries(&mut c)?)));
    let (primary, list) = match after {
        Ok(v) => v,
        Err(e) => {
            error!("nvme: {pf}: {e}");
            fail_all(&mut out, &format!("{e}"));
            out.controller = Some(c);
            return out;
        }
    };
    log_secondaries(pf, &list);
    let mut free_vq = primary.vq.unassigned();
    let mut free_vi = primary.vi.unassigned();
    for (i, req) in requests.iter().enumerate() {
        let left = (requests.len() - i) as u32;
        let nvq = (free_vq / left)
            .min(u32::from(primary.vq.max_per_secondary))
            .max(2) as u16;
        let nvi = (free_vi / left)
            .min(u32::from(primary.vi.max_per_secondary))
            .max(1) as u16;
        let result = bring_online(&mut c, &enabled, &primary, &list, req, (nvq, nvi));
        match &result {
            Ok(v) => {
                free_vq = free_vq.saturating_sub(u32::from(v.nvq));
                free_vi = free_vi.saturating_sub(u32::from(v.nvi));
                info!(
                    "nvme: {pf}: VF {} ({}) for guest \"{}\": secondary controller {:#x} online \
                     with {} VQ and {} VI resources, BAR0 {:#x}",
                    v.index, v.bdf, req.guest, v.scid, v.nvq, v.nvi, v.bar0
                );
            }
            Err(why) => error!(
                "nvme: {pf}: VF {} for guest \"{}\" cannot be brought online: {why}; it stays \
                 unassigned",
                req.index, req.guest
            ),
        }
        out.vfs.push((req.index, result));
    }
    match identify_secondaries(&mut c) {
        Ok(list) => log_secondaries(pf, &list),
        Err(e) => warn!("nvme: {pf}: {e}"),
    }
    let online: Vec<OnlineVf> = out.vfs.iter().filter_map(|(_, r)| r.clone().ok()).collect();
    if !online.is_empty()
        && let Err(e) = namespaces::share(&mut c, &online)
    {
        error!("nvme: {pf}: the VFs' controllers do not see the PF's storage: {e}");
    }
    out.controller = Some(c);
    out
}
