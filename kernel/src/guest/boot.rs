//! Bringing the configured guests up: memory, image, IOMMU domain and assigned functions, and
//! (where VMX is available) the vCPU. A guest that cannot be loaded is reported and skipped; the
//! others go on.

use super::layout::GuestMemory;
use super::spec::{self, GuestSpec};
use super::{Guest, VmxHost};
use crate::arch::x86_64::{cpu::VmxInfo, vmx};
use crate::iommu::{self, DomainId};
use crate::memory::Memory;
use crate::pci::DeviceRef;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use conduit_config::{Bundle, DeviceAssignment, DeviceSel, GuestConfig};
use conduit_pci::Bdf;
use log::{error, info, warn};
use spin::Mutex;

/// A guest whose memory and IOMMU domain exist, whether or not a vCPU runs it.
#[derive(Debug, Clone)]
pub struct Placed {
    pub name: String,
    /// Host-physical base of its memory (GPA 0) and its size.
    pub hpa: u64,
    pub size: u64,
    /// Its IOMMU domain (IOVA = GPA), when DMA remapping is on.
    pub domain: Option<DomainId>,
    /// The functions assigned to it.
    pub devices: Vec<Bdf>,
}

static PLACED: Mutex<Vec<Placed>> = Mutex::new(Vec::new());

/// Every guest [`start_all`] placed, in configuration order.
pub fn placed() -> Vec<Placed> {
    PLACED.lock().clone()
}

/// Creates every configured guest. Returns the guests whose vCPUs can run (none without VMX).
pub fn start_all(
    bundle: &Bundle<'static>,
    vmx_info: Option<&VmxInfo>,
    mem: &'static Memory,
) -> Vec<Guest> {
    let configs = &bundle.config.guests;
    let mut guests = Vec::new();
    if configs.is_empty() {
        return guests;
    }
    let mut host = match vmx_info.map(|info| vmx::enable(info, mem).map(|v| VmxHost::new(v, mem))) {
        None => None,
        Some(Ok(Some(host))) => Some(host),
        Some(Ok(None)) => {
            error!("vmx: no memory for the I/O and MSR bitmaps: vCPUs cannot run");
            None
        }
        Some(Err(e)) => {
            error!("vmx: {e}: vCPUs cannot run");
            None
        }
    };
    let unsafe_no_iommu = bundle.config.unsafe_no_iommu;
    for c in configs {
        let spec = match spec::from_config(c, bundle.image(&c.image)) {
            Ok(spec) => spec,
            Err(e) => {
                error!("guest \"{}\" cannot be loaded: {e}; skipped", c.name);
                continue;
            }
        };
        match &mut host {
            Some(host) => match Guest::create(host, mem, &spec) {
                Ok(g) => {
                    let (hpa, size) = g.memory_region();
                    attach_devices(c, hpa, size, unsafe_no_iommu);
                    guests.push(g);
                }
                Err(e) => error!("guest \"{}\" refused before entry: {e}", c.name),
            },
            None => without_vcpus(c, &spec, mem, unsafe_no_iommu),
        }
    }
    guests
}

/// A machine without VMX (QEMU's TCG): the guest's memory, image and IOMMU domain are created and
/// its devices assigned, exactly as where vCPUs run; only the vCPU is not started.
fn without_vcpus(c: &GuestConfig, spec: &GuestSpec, mem: &'static Memory, unsafe_no_iommu: bool) {
    let mut memory = match GuestMemory::allocate(mem, spec.memory_mib) {
        Ok(m) => m,
        Err(e) => return error!("guest \"{}\" cannot be loaded: {e}; skipped", c.name),
    };
    if let Err(e) = memory.load(spec) {
        return error!("guest \"{}\" cannot be loaded: {e}; skipped", c.name);
    }
    // The frames stay the guest's (and its domain's) for the life of the machine: GuestMemory
    // does not free on drop.
    let (hpa, size) = (memory.host.0, memory.size);
    let devices = attach_devices(c, hpa, size, unsafe_no_iommu);
    warn!(
        "guest \"{}\": {} MiB at HPA {hpa:#x}, {} function(s) assigned; its vCPUs are not started because VMX is absent",
        c.name,
        c.memory_mib,
        devices.len()
    );
}

/// Creates the guest's IOMMU domain (IOVA = GPA over exactly its memory) and assigns its
/// functions; records the guest in [`placed`]. Returns the functions assigned.
fn attach_devices(c: &GuestConfig, hpa: u64, size: u64, unsafe_no_iommu: bool) -> Vec<Bdf> {
    let mut domain = None;
    let assigned = attach_to_domain(c, hpa, size, unsafe_no_iommu, &mut domain);
    PLACED.lock().push(Placed {
        name: c.name.clone(),
        hpa,
        size,
        domain,
        devices: assigned.clone(),
    });
    assigned
}

fn attach_to_domain(
    c: &GuestConfig,
    hpa: u64,
    size: u64,
    unsafe_no_iommu: bool,
    created: &mut Option<DomainId>,
) -> Vec<Bdf> {
    let mut assigned = Vec::new();
    let domain = match iommu::status() {
        Ok(()) => {
            let region = iommu::GuestMemory {
                gpa: 0,
                hpa,
                len: size,
            };
            match iommu::create_domain(&c.name, &[region]) {
                Ok(d) => {
                    *created = Some(d);
                    Some(d)
                }
                Err(e) => {
                    error!(
                        "guest \"{}\": no IOMMU domain: {e}; its devices are not assigned",
                        c.name
                    );
                    return assigned;
                }
            }
        }
        Err(why) => {
            if !c.devices.is_empty() && !unsafe_no_iommu {
                error!(
                    "guest \"{}\": {} function(s) not assigned: DMA remapping is off ({why}); set [hypervisor] unsafe_no_iommu = true to assign without protection",
                    c.name,
                    c.devices.len()
                );
                return assigned;
            }
            None
        }
    };
    for d in &c.devices {
        match assign_one(d, domain) {
            Ok(bdf) => {
                match domain {
                    Some(id) => info!(
                        "guest \"{}\": assigned {bdf} ({d}) in IOMMU domain {id}",
                        c.name
                    ),
                    None => warn!(
                        "guest \"{}\": assigned {bdf} ({d}) WITHOUT DMA remapping (unsafe_no_iommu): it can reach all memory",
                        c.name
                    ),
                }
                assigned.push(bdf);
            }
            Err(e) => error!("guest \"{}\": {d} not assigned: {e}", c.name),
        }
    }
    assigned
}

fn assign_one(d: &DeviceAssignment, domain: Option<DomainId>) -> Result<Bdf, String> {
    let r = match d.function {
        DeviceSel::Bdf { bus, dev, func } => DeviceRef::Address(
            Bdf::new(bus, dev, func).ok_or_else(|| format!("{d} is not a valid address"))?,
        ),
        DeviceSel::Id { vendor, device } => DeviceRef::Id { vendor, device },
    };
    if let Some(index) = d.vf {
        return assign_vf(r, index, domain);
    }
    match domain {
        Some(id) => iommu::assign_device(r, id).map_err(|e| format!("{e}")),
        None => crate::pci::get()
            .and_then(|pci| pci.resolve(r))
            .map(|f| f.bdf)
            .ok_or_else(|| format!("no such function on this machine ({r})")),
    }
}

/// VF `index` of the PF `r` names. Only VFs of NVMe PFs whose secondary controllers Conduit
/// brought online (`crate::nvme`) are assigned; a VF that could not be brought online stays
/// unassigned, with the reason.
fn assign_vf(r: DeviceRef, index: u16, domain: Option<DomainId>) -> Result<Bdf, String> {
    let pci = crate::pci::get().ok_or("no PCI enumeration")?;
    let pf = pci
        .resolve(r)
        .map(|f| f.bdf)
        .ok_or_else(|| format!("no such function on this machine ({r})"))?;
    let vf = match crate::nvme::vf_status(pf, index) {
        None => {
            return Err(String::from(
                "assigning SR-IOV virtual functions other than those of NVMe PFs is not \
                 supported by this build",
            ));
        }
        Some(Err(why)) => return Err(format!("VF {index} of {pf} is not online: {why}")),
        Some(Ok(v)) => v,
    };
    let command = crate::nvme::vfs::enable_vf_command(pci, vf.bdf);
    info!(
        "guest VF {} of {pf}: secondary controller {:#x} online, memory decode and bus mastering on (Command \
         {command:#06x})",
        vf.bdf, vf.scid
    );
    match domain {
        Some(id) => iommu::assign(vf.bdf, id)
            .map(|()| vf.bdf)
            .map_err(|e| format!("{e}")),
        None => Ok(vf.bdf),
    }
}
