//! SR-IOV physical-function management at boot, as the configuration asks: only PFs that some
//! `[[guest.device]] ... vf = N` names get VFs, and only as many as the highest index named
//! needs (NumVFs = that index + 1, at most TotalVFs). Every other PF's SR-IOV capability is read
//! for the log and left exactly as firmware set it. The VFs enabled join the function list so
//! that the IOMMU can translate them and guests can be given them.
//!
//! Per PF used, in the order the PCIe Base Spec r6.0 asks for:
//! 1. Read the SR-IOV capability (§9.3.3). If firmware left VF Enable set, clear it and wait
//!    1 s before touching the capability again (§9.3.3.3.1).
//! 2. ARI (§6.13): if the PF has an ARI capability and the Downstream Port above supports ARI
//!    forwarding, enable it (Device Control 2) and set ARI Capable Hierarchy in the
//!    lowest-numbered PF (§9.3.3.3.5), so VFs may use function numbers 8-255 of the bus. VFs with
//!    a non-zero device number (igb's at 01:10.0) are unreachable otherwise: such a PF is refused.
//!    (Forwarding is never enabled towards a non-ARI device, which would answer device numbers
//!    other than 0 as aliases of itself.)
//! 3. NumVFs as needed (§9.3.3.7), then re-read First VF Offset and VF Stride, which may change
//!    with NumVFs and ARI Capable Hierarchy (§9.3.3.9, §9.3.3.10); VF *n* is at routing ID
//!    `PF + offset + n * stride`.
//! 4. Size the VF BARs through the capability (§9.3.3.14). Where firmware placed them and every
//!    bridge above the PF forwards the whole range (for NumVFs VFs), they stay there. They are
//!    moved below 4 GiB ([`super::window`], space nothing decodes or the firmware claims) only
//!    where firmware left a VF BAR unassigned, outside a window above the PF, or for the one
//!    named quirk: [`sriov_bars::QUIRK_IGB_VF_BAR_32`].
//! 5. VF Enable and VF MSE together (§9.3.3.3.1, §9.3.3.3.4); after the last PF, one wait of
//!    100 ms before the first configuration request to a VF (§9.3.3.3.1), then up to 1 s more
//!    for VFs still answering with Configuration Request Retry Status (which reads as all ones
//!    through ECAM). A wait whose clock does not advance ends with [`EnableError::Clock`]: the
//!    VFs are disabled again.
//! 6. Every VF that answers is logged (BDF, vendor:device taken from the PF and the VF Device ID,
//!    since a VF's own ID registers read 0xffff per §9.3.4.1.1, its BARs and capabilities),
//!    checked to decode its BARs, and added to the function list after its PF
//!    ([`super::sriov_vf`]).
//!
//! A PF that fails a step keeps VF Enable clear; the reason is kept, logged and given to anyone
//! who asks for one of its VFs ([`vf_of`]).

use super::access::Access;
use super::window::{MmioMap, PlaceError};
use super::{DeviceRef, Function, report, sriov_bars, sriov_vf};
use crate::platform::Platform;
use alloc::string::String;
use alloc::vec::Vec;
use conduit_hw::memory::Memory;
use conduit_hw::time;
use conduit_pci::pcie;
use conduit_pci::{Bars, Bdf, CapError, PlanError, SriovCap, SriovError, ext_cap_id};
use log::{info, warn};
use spin::Once;

/// The wait after VF Enable before configuration requests to the VFs (§9.3.3.3.1).
const VF_ENABLE_WAIT_US: u64 = 100_000;
/// How long VFs may keep answering with Configuration Request Retry Status after that.
const VF_READY_BUDGET_US: u64 = 900_000;
/// The wait after clearing VF Enable before the capability may be read again (§9.3.3.3.1).
const VF_DISABLE_WAIT_US: u64 = 1_000_000;

/// One configured use of a VF: `[[guest.device]] function = ..., vf = index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub pf: DeviceRef,
    pub index: u16,
}

/// Every VF the configuration names, in configuration order.
pub fn wanted(config: &conduit_config::BootConfig) -> Vec<Wanted> {
    config
        .guests
        .iter()
        .flat_map(|g| g.devices.iter())
        .filter_map(|d| {
            Some(Wanted {
                pf: DeviceRef::from_config(d.function)?,
                index: d.vf?,
            })
        })
        .collect()
}

/// Which PF a function is a VF of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VfOf {
    pub pf: Bdf,
    pub index: u16,
}

/// Why a PF's VFs are not enabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnableError {
    Sriov(SriovError),
    Cap(CapError),
    /// TotalVFs is 0.
    NoVfs,
    /// NumVFs reads back 0 after writing TotalVFs.
    NumVfsNotTaken {
        wrote: u16,
    },
    /// Some VFs have a non-zero device number but the port above cannot forward ARI requests.
    AriNeeded {
        port: Bdf,
    },
    Plan(PlanError),
    Space(PlaceError),
    /// A programmed VF BAR does not read back below 4 GiB.
    Above4G {
        index: u8,
        address: u64,
    },
    /// A wait on the way did not end properly: the clock did not advance.
    Clock {
        what: &'static str,
        error: time::ClockStopped,
    },
}

impl core::fmt::Display for EnableError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Sriov(e) => write!(f, "{e}"),
            Self::Cap(e) => write!(f, "{e}"),
            Self::NoVfs => write!(f, "TotalVFs is 0"),
            Self::NumVfsNotTaken { wrote } => {
                write!(f, "NumVFs reads back 0 after writing {wrote}")
            }
            Self::AriNeeded { port } => write!(
                f,
                "its VFs need ARI forwarding, which the port above ({port}) does not support"
            ),
            Self::Plan(e) => write!(f, "VF BARs: {e}"),
            Self::Space(e) => write!(f, "no MMIO space for the VF BARs below 4 GiB: {e}"),
            Self::Above4G { index, address } => {
                write!(f, "VF BAR{index} reads back {address:#x}, not below 4 GiB")
            }
            Self::Clock { what, error } => write!(f, "{what}: {error}"),
        }
    }
}

impl From<SriovError> for EnableError {
    fn from(e: SriovError) -> Self {
        Self::Sriov(e)
    }
}

/// What became of one PF.
#[derive(Debug, Clone)]
pub enum PfStatus {
    /// VF Enable is set with `num_vfs` VFs; `vfs[i]` is VF *i* if it answered.
    Enabled {
        num_vfs: u16,
        vfs: Vec<Option<Bdf>>,
    },
    Refused(EnableError),
    /// No configured VF of this PF (or only indices at or beyond TotalVFs): its SR-IOV
    /// capability is left as firmware set it.
    NotWanted,
}

/// One SR-IOV PF.
#[derive(Debug, Clone)]
pub struct PfInfo {
    pub pf: Bdf,
    pub vendor: u16,
    pub device: u16,
    pub total_vfs: u16,
    pub vf_device: u16,
    pub status: PfStatus,
}

static PFS: Once<Vec<PfInfo>> = Once::new();

/// Every SR-IOV PF enumeration found, once [`init`] ran.
pub fn pfs() -> &'static [PfInfo] {
    PFS.get().map_or(&[], Vec::as_slice)
}

/// Why a configured VF cannot be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VfError {
    NoSriov { pf: Bdf },
    BeyondTotal { pf: Bdf, index: u16, total: u16 },
    NotEnabled { pf: Bdf, why: EnableError },
    BeyondEnabled { pf: Bdf, index: u16, num_vfs: u16 },
    NotWanted { pf: Bdf, index: u16 },
    NotAnswering { pf: Bdf, index: u16 },
}

impl core::fmt::Display for VfError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoSriov { pf } => write!(f, "{pf} has no SR-IOV capability: it has no VFs"),
            Self::BeyondTotal { pf, index, total } => write!(
                f,
                "VF index {index} is at or beyond TotalVFs {total} of {pf}"
            ),
            Self::NotEnabled { pf, why } => write!(f, "the VFs of {pf} are not enabled: {why}"),
            Self::BeyondEnabled { pf, index, num_vfs } => write!(
                f,
                "VF index {index} is at or beyond the {num_vfs} VFs enabled on {pf}"
            ),
            Self::NotWanted { pf, index } => write!(
                f,
                "VF {index} of {pf} is not enabled: no `[[guest.device]]` named a VF of it at boot"
            ),
            Self::NotAnswering { pf, index } => write!(
                f,
                "VF {index} of {pf} did not answer configuration requests after VF Enable"
            ),
        }
    }
}

/// Why the VFs of `pf` were refused at boot, if they were.
pub fn refused(pf: Bdf) -> Option<EnableError> {
    match &pfs().iter().find(|p| p.pf == pf)?.status {
        PfStatus::Refused(why) => Some(why.clone()),
        PfStatus::Enabled { .. } | PfStatus::NotWanted => None,
    }
}

/// The BDF of VF `index` of `pf`, if that VF is enabled and answered.
pub fn vf_of(pf: Bdf, index: u16) -> Result<Bdf, VfError> {
    let info = pfs()
        .iter()
        .find(|p| p.pf == pf)
        .ok_or(VfError::NoSriov { pf })?;
    if index >= info.total_vfs {
        return Err(VfError::BeyondTotal {
            pf,
            index,
            total: info.total_vfs,
        });
    }
    match &info.status {
        PfStatus::Refused(why) => Err(VfError::NotEnabled {
            pf,
            why: why.clone(),
        }),
        PfStatus::NotWanted => Err(VfError::NotWanted { pf, index }),
        PfStatus::Enabled { num_vfs, vfs } => match vfs.get(usize::from(index)) {
            None => Err(VfError::BeyondEnabled {
                pf,
                index,
                num_vfs: *num_vfs,
            }),
            Some(None) => Err(VfError::NotAnswering { pf, index }),
            Some(Some(bdf)) => Ok(*bdf),
        },
    }
}

/// A PF whose VFs were enabled, waiting to be discovered.
pub(super) struct Enabled {
    info: usize,
    pub cap: SriovCap,
    /// The VF BARs as programmed.
    pub vf_bars: Bars,
    /// The PF's depth in the tree.
    pub depth: u8,
}

/// Enables, on every SR-IOV PF in `functions` that `wanted` names, as many VFs as the highest
/// index named needs, and appends the VFs after their PFs; leaves every other PF as it is.
pub fn init(
    cfg: &mut Access,
    functions: &mut Vec<Function>,
    platform: &Platform,
    mem: &Memory,
    wanted: &[Wanted],
) {
    // `cfg` reaches segment 0 through `ConfigAccess`: PFs elsewhere keep SR-IOV as firmware set it.
    let candidates: Vec<(usize, u16)> = functions
        .iter()
        .enumerate()
        .filter(|(_, f)| f.segment == 0)
        .filter_map(|(i, f)| {
            f.ext_caps
                .iter()
                .find(|c| c.id == ext_cap_id::SRIOV)
                .map(|c| (i, c.offset))
        })
        .collect();
    if candidates.is_empty() {
        PFS.call_once(Vec::new);
        return;
    }
    let mut map = MmioMap::new(&*cfg, functions, platform, mem);
    let mut infos = Vec::new();
    let mut enabled = Vec::new();
    for (i, offset) in candidates {
        let f = &functions[i];
        let mut info = PfInfo {
            pf: f.bdf,
            vendor: f.vendor_id(),
            device: f.device_id(),
            total_vfs: 0,
            vf_device: 0,
            status: PfStatus::Refused(EnableError::NoVfs),
        };
        let indices: Vec<u16> = wanted
            .iter()
            .filter(|w| {
                super::resolve_in(functions, w.pf).map(super::Function::address)
                    == Some(f.address())
            })
            .map(|w| w.index)
            .collect();
        match prepare(cfg, &mut map, functions, f, offset, &indices, &mut info) {
            Ok(None) => {}
            Ok(Some((mut cap, vf_bars))) => match cap.enable_vfs(cfg, true) {
                Ok(()) => {
                    info!(
                        "sriov: {}: {} VFs enabled (VF Enable and VF MSE set, control {:#06x})",
                        f.bdf, cap.num_vfs, cap.control
                    );
                    enabled.push(Enabled {
                        info: infos.len(),
                        cap,
                        vf_bars,
                        depth: f.depth,
                    });
                }
                Err(e) => {
                    if let Err(undo) = cap.set_num_vfs(cfg, 0) {
                        warn!(
                            "sriov: {}: NumVFs not reset to 0 after the failure: {undo}",
                            f.bdf
                        );
                    }
                    info.status = refuse(f.bdf, e.into());
                }
            },
            Err(e) => info.status = refuse(f.bdf, e),
        }
        infos.push(info);
    }
    if !enabled.is_empty() {
        match time::delay_us(VF_ENABLE_WAIT_US) {
            Ok(()) => info!(
                "sriov: waited 100 ms after VF Enable (TSC at {}, {}) before configuration requests to VFs (PCIe r6.0 §9.3.3.3.1)",
                time::wait_rate(),
                time::Origin
            ),
            Err(error) => {
                // Without a working clock the VFs' readiness cannot be waited for: disable them.
                for e in core::mem::take(&mut enabled) {
                    let mut cap = e.cap;
                    let info = &mut infos[e.info];
                    if let Err(undo) = cap.disable_vfs(cfg).and_then(|()| cap.set_num_vfs(cfg, 0)) {
                        warn!(
                            "sriov: {}: VFs not disabled after the failure: {undo}",
                            info.pf
                        );
                    }
                    info.status = refuse(
                        info.pf,
                        EnableError::Clock {
                            what: "the 100 ms wait after VF Enable",
                            error,
                        },
                    );
                }
            }
        }
    }
    let mut budget = VF_READY_BUDGET_US;
    let mut found: Vec<(Bdf, Vec<Function>)> = Vec::new();
    for e in &enabled {
        let info = &mut infos[e.info];
        let (vfs, slots) = sriov_vf::discover(cfg, e, info, mem, &mut budget);
        info.status = PfStatus::Enabled {
            num_vfs: e.cap.num_vfs,
            vfs: slots,
        };
        found.push((info.pf, vfs));
    }
    let added: usize = found.iter().map(|(_, v)| v.len()).sum();
    if added != 0 {
        let old = core::mem::take(functions);
        for f in old {
            let pf = f.bdf;
            functions.push(f);
            if let Some((_, vfs)) = found.iter_mut().find(|(p, _)| *p == pf) {
                functions.append(vfs);
            }
        }
        info!(
            "pci: {} functions after enabling SR-IOV ({added} VFs)",
            functions.len()
        );
    }
    PFS.call_once(|| infos);
}

fn refuse(pf: Bdf, e: EnableError) -> PfStatus {
    warn!("sriov: {pf}: VFs not enabled: {e}");
    PfStatus::Refused(e)
}

/// Steps 1-4 for one PF: everything up to VF Enable. `Ok(None)`: the configuration wants no VF
/// of it (`indices` lists the VF indices it names), and nothing was written.
fn prepare(
    cfg: &mut Access,
    map: &mut MmioMap,
    functions: &[Function],
    f: &Function,
    offset: u16,
    indices: &[u16],
    info: &mut PfInfo,
) -> Result<Option<(SriovCap, Bars)>, EnableError> {
    let pf = f.bdf;
    let mut cap = SriovCap::read(&*cfg, pf, offset)?;
    info.total_vfs = cap.total_vfs;
    info.vf_device = cap.vf_device_id;
    info!(
        "sriov: {pf} {:04x}:{:04x} SR-IOV: TotalVFs {}, InitialVFs {}, offset {:#x}, stride {}, VF device {:#06x}, page sizes {:#x} (system {})",
        info.vendor,
        info.device,
        cap.total_vfs,
        cap.initial_vfs,
        cap.first_vf_offset,
        cap.vf_stride,
        cap.vf_device_id,
        cap.supported_page_sizes,
        cap.system_page_bytes()
            .map_or_else(|| String::from("?"), report::size)
    );
    let Some(need) = indices
        .iter()
        .filter(|&&i| i < cap.total_vfs)
        .max()
        .map(|&i| i + 1)
    else {
        info!(
            "sriov: {pf}: no configured VF {}: SR-IOV left as firmware set it (NumVFs {}, VF Enable {})",
            if indices.is_empty() {
                "uses it"
            } else {
                "index is below its TotalVFs"
            },
            cap.num_vfs,
            if cap.vf_enabled() { "on" } else { "off" }
        );
        info.status = PfStatus::NotWanted;
        return Ok(None);
    };
    if cap.vf_enabled() {
        warn!("sriov: {pf}: firmware left VF Enable set: clearing it and waiting 1 s");
        cap.disable_vfs(cfg)?;
        time::delay_us(VF_DISABLE_WAIT_US).map_err(|error| EnableError::Clock {
            what: "the 1 s wait after clearing VF Enable",
            error,
        })?;
        cap.refresh(&*cfg)?;
    }
    let port = functions
        .iter()
        .find(|b| b.bridge.is_some_and(|r| r.secondary == pf.bus()))
        .map(|b| b.bdf);
    // ARI forwarding only towards an ARI device: a non-ARI device below a port forwarding
    // device numbers other than 0 would answer them as aliases of itself (§6.13).
    let pf_ari = f.ext_caps.iter().any(|c| c.id == ext_cap_id::ARI);
    let ari = match port {
        Some(p)
            if pf_ari && pcie::ari_forwarding_supported(&*cfg, p).map_err(EnableError::Cap)? =>
        {
            pcie::set_ari_forwarding(cfg, p, true).map_err(EnableError::Cap)?
        }
        _ => false,
    };
    let lowest_pf = functions
        .iter()
        .filter(|o| o.bdf.bus() == pf.bus() && o.ext_caps.iter().any(|c| c.id == ext_cap_id::SRIOV))
        .map(|o| o.bdf)
        .min()
        == Some(pf);
    if ari && lowest_pf {
        cap.set_ari_capable_hierarchy(cfg, true)?;
    }
    if let Some(p) = port {
        info!(
            "sriov: {pf}: upstream port {p}: ARI forwarding {}; ARI Capable Hierarchy {}",
            match (ari, pf_ari) {
                (true, _) => "enabled",
                (false, true) => "not supported by the port",
                (false, false) => "not used (the PF has no ARI capability)",
            },
            if cap.ari_capable_hierarchy() {
                "set"
            } else {
                "clear"
            }
        );
    }
    cap.set_num_vfs(cfg, need)?;
    let Some(last_index) = cap.num_vfs.checked_sub(1) else {
        return Err(EnableError::NumVfsNotTaken { wrote: need });
    };
    let first = cap.vf(0)?;
    let last = cap.vf(last_index)?;
    info!(
        "sriov: {pf}: NumVFs {} (VF {} is the highest the configuration uses; TotalVFs {}): First VF Offset {:#x}, VF Stride {} -> VFs {first} to {last}",
        cap.num_vfs,
        need - 1,
        cap.total_vfs,
        cap.first_vf_offset,
        cap.vf_stride
    );
    if let Some(p) = port
        && !ari
        && cap.vfs_need_ari_forwarding()?
    {
        cap.set_num_vfs(cfg, 0)?;
        return Err(EnableError::AriNeeded { port: p });
    }
    match sriov_bars::place_vf_bars(cfg, map, &mut cap, (info.vendor, info.device)) {
        Ok(bars) => Ok(Some((cap, bars))),
        Err(e) => {
            if let Err(undo) = cap.set_num_vfs(cfg, 0) {
                warn!("sriov: {pf}: NumVFs not reset to 0 after the failure: {undo}");
            }
            Err(e)
        }
    }
}
