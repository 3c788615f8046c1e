//! NVMe: the hypervisor's own use of NVMe PFs (secondary-controller management for the VFs it
//! hands to guests) and the admin-queue driver it is built on.
//!
//! At boot, [`init`] reads which VFs of NVMe PFs (class 01:08:02 with an SR-IOV capability) the
//! configuration gives to guests (`[[guest.device]] function = "02:00.0", vf = 0`) and, per PF,
//! runs [`pf::manage`]: the PF's admin queues live in a hypervisor-owned IOMMU domain mapping only
//! those buffers; the PF's flexible resources are released, the PF is reset (FLR) to apply that,
//! its VFs are enabled, and each configured VF's secondary controller is given VQ and VI
//! resources and brought online. A VF that cannot be brought online is reported with the NVMe
//! status decoded and is left unassigned ([`vf_status`]); the boot goes on.
//!
//! Policy lives here; the encodings (registers, queue entries, Identify structures, status codes)
//! are `conduit_nvme`'s.

pub mod controller;
/// The I/O path a guest's driver runs; in the hypervisor only the test image plays a guest's
/// driver with it.
#[cfg(feature = "selftest")]
pub mod io;
pub mod namespaces;
pub mod pf;
pub mod regs;
pub mod vfs;

pub use controller::Controller;
pub use pf::OnlineVf;

use crate::pci::{self, DeviceRef, Function};
use alloc::string::String;
use alloc::vec::Vec;
use conduit_config::Bundle;
use conduit_hw::memory::Memory;
#[cfg(feature = "selftest")]
use conduit_nvme::IdentifyController;
use conduit_pci::Bdf;
use log::info;
use spin::Mutex;

// SAFETY: the only non-`Send` fields are volatile pointers into the controller's BAR0, device
// memory mapped for the life of the hypervisor and valid from every CPU; a controller is only
// used through `&mut` behind the `MANAGED` lock, so its registers are never accessed concurrently.
unsafe impl Send for Controller {}

/// The PFs Conduit drives, after [`init`].
static MANAGED: Mutex<Vec<pf::Managed>> = Mutex::new(Vec::new());

/// Is `f` an NVM Express controller (class 01:08:02) with SR-IOV?
fn is_nvme_pf(f: &Function) -> bool {
    let c = f.header.class;
    (c.base, c.sub, c.prog_if) == (0x01, 0x08, 0x02)
        && f.ext_caps
            .iter()
            .any(|e| e.id == conduit_pci::ext_cap_id::SRIOV)
}

/// TEST ONLY (feature `selftest`): which configured NVMe VF (in configuration order) gets which
/// deliberate error.
#[cfg(feature = "selftest")]
fn test_break(test: Option<conduit_config::TestCase>, position: usize) -> Option<pf::Break> {
    use conduit_config::TestCase;
    match (test, position) {
        (Some(TestCase::NvmeVfBad), 0) => Some(pf::Break::WrongControllerId),
        (Some(TestCase::NvmeVfBad), 1) => Some(pf::Break::TooManyQueues),
        _ => None,
    }
}

/// The configured NVMe VFs, grouped by PF (in order of first mention).
fn plan(bundle: &Bundle<'_>, pci: &pci::Pci) -> Vec<(Bdf, Vec<pf::VfRequest>)> {
    let mut plans: Vec<(Bdf, Vec<pf::VfRequest>)> = Vec::new();
    for g in &bundle.config.guests {
        for d in &g.devices {
            let Some(index) = d.vf else { continue };
            let Some(f) = DeviceRef::from_config(d.function).and_then(|r| pci.resolve(r)) else {
                continue;
            };
            if !is_nvme_pf(f) {
                continue;
            }
            if let Some((_, list)) = plans.iter().find(|(b, _)| *b == f.bdf)
                && let Some(first) = list.iter().find(|r| r.index == index)
            {
                log::error!(
                    "nvme: {} VF {index} is configured for guest \"{}\" and for guest \"{}\": \
                     only \"{}\" can have it",
                    f.bdf,
                    first.guest,
                    g.name,
                    first.guest
                );
                continue;
            }
            let request = pf::VfRequest {
                index,
                guest: g.name.clone(),
                // Its position among the configured NVMe VFs: the requests planned so far.
                #[cfg(feature = "selftest")]
                test_break: test_break(
                    bundle.config.test,
                    plans.iter().map(|(_, list)| list.len()).sum(),
                ),
            };
            match plans.iter_mut().find(|(b, _)| *b == f.bdf) {
                Some((_, list)) => list.push(request),
                None => plans.push((f.bdf, alloc::vec![request])),
            }
        }
    }
    plans
}

/// Brings up every NVMe PF whose VFs the configuration gives to guests (see the module docs).
pub fn init(bundle: &Bundle<'_>, mem: &'static Memory) {
    let Some(pci) = pci::get() else { return };
    let plans = plan(bundle, pci);
    let mut managed = MANAGED.lock();
    for (pf_bdf, requests) in plans {
        let Some(f) = pci.function(pf_bdf) else {
            continue;
        };
        let indices: Vec<String> = requests
            .iter()
            .map(|r| alloc::format!("VF {} (guest \"{}\")", r.index, r.guest))
            .collect();
        info!(
            "nvme: {pf_bdf} {:04x}:{:04x}: secondary controllers wanted for {}",
            f.vendor_id(),
            f.device_id(),
            indices.join(", ")
        );
        let m = pf::manage(pci, f, mem, &requests, bundle.config.unsafe_no_iommu);
        let online = m.vfs.iter().filter(|(_, r)| r.is_ok()).count();
        info!("nvme: {pf_bdf}: {online} of {} VF(s) online", m.vfs.len());
        managed.push(m);
    }
}

/// What became of VF `index` of `pf`, if `pf` is an NVMe PF Conduit manages: online, or why not.
pub fn vf_status(pf: Bdf, index: u16) -> Option<Result<OnlineVf, String>> {
    let managed = MANAGED.lock();
    let m = managed.iter().find(|m| m.pf == pf)?;
    m.vfs
        .iter()
        .find(|(i, _)| *i == index)
        .map(|(_, r)| r.clone())
}

/// The PF's Identify Controller data, as read at boot.
#[cfg(feature = "selftest")]
pub fn pf_identity(pf: Bdf) -> Option<IdentifyController> {
    MANAGED.lock().iter().find(|m| m.pf == pf)?.identity
}

/// The PF a VF belongs to, with the VF's state, for a VF Conduit brought online.
#[cfg(feature = "selftest")]
pub fn online_vf(vf: Bdf) -> Option<(Bdf, OnlineVf)> {
    MANAGED.lock().iter().find_map(|m| {
        m.vfs.iter().find_map(|(_, r)| match r {
            Ok(v) if v.bdf == vf => Some((m.pf, *v)),
            _ => None,
        })
    })
}

/// Host-physical address and length of the PF's admin memory (its queues and data page).
#[cfg(feature = "selftest")]
pub fn pf_admin_memory(pf: Bdf) -> Option<(u64, u64)> {
    let managed = MANAGED.lock();
    let c = managed.iter().find(|m| m.pf == pf)?.controller.as_ref()?;
    Some((c.memory().hpa, regs::ADMIN_PAGES * regs::PAGE))
}
