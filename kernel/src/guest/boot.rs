//! Bringing the configured guests up: memory, image, IOMMU domain and assigned functions, and
//! (where VMX is available) the vCPU. A guest that cannot be loaded is reported and skipped; the
//! others go on.

use super::spec::{self, GuestSpec};
use super::{Guest, Guests, OnCpu, Refused, Slot, VmxHost};
use crate::iommu::{self, DomainId};
use crate::pci::DeviceRef;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use conduit_config::placement::{self, Assigned, CpuUp};
use conduit_config::{Bundle, DeviceAssignment, GuestConfig};
use conduit_hw::memory::Memory;
use conduit_hw::{cpu::VmxInfo, time, vmx};
use conduit_pci::{Bdf, PciAddress};
use log::{error, info, warn};
#[cfg(feature = "selftest")]
use spin::Mutex;

/// A guest whose memory and IOMMU domain exist, whether or not a vCPU runs it (recorded for the
/// self-tests, which play the guests' drivers where no vCPU runs).
#[cfg(feature = "selftest")]
#[derive(Debug, Clone)]
pub struct Placed {
    /// Its index in the configuration (its `GuestId` for interrupts, its topology in the control
    /// task).
    pub index: u16,
    pub name: String,
    /// Host-physical base of its memory (GPA 0) and its size.
    pub hpa: u64,
    pub size: u64,
    /// Its IOMMU domain (IOVA = GPA), when DMA remapping is on.
    pub domain: Option<DomainId>,
    /// The functions assigned to it.
    pub devices: Vec<PciAddress>,
    /// The CPU of each of its vCPUs (by index; index: vCPU), whose APIC ID that vCPU's
    /// interrupts go to.
    pub vcpu_cpus: Vec<usize>,
}

#[cfg(feature = "selftest")]
static PLACED: Mutex<Vec<Placed>> = Mutex::new(Vec::new());

/// Every guest [`start_all`] placed, in configuration order.
#[cfg(feature = "selftest")]
pub fn placed() -> Vec<Placed> {
    PLACED.lock().clone()
}

/// A physical CPU as placement sees it at boot: its APIC ID and whether it runs.
#[derive(Debug, Clone)]
pub struct CpuInfo {
    pub apic_id: u32,
    pub up: CpuUp,
}

/// Creates every configured guest, each placed on its CPU (`cpus`: every CPU of the machine by
/// index; a guest whose CPU the machine lacks or that did not start is refused naming the key).
/// Returns the guests whose vCPUs can run (none without VMX), the ones that could not be created
/// and why, and the VMX host.
pub fn start_all(
    bundle: &Bundle<'static>,
    vmx_info: Option<&VmxInfo>,
    mem: &'static Memory,
    cpus: &[CpuInfo],
) -> Guests {
    let configs = &bundle.config.guests;
    if configs.is_empty() {
        return Guests::without_vmx(String::from(
            "no guest is configured, so VMX was not turned on",
        ));
    }
    // Time slices and virtual timers are counted in TSC ticks: no guest runs on a guessed rate.
    let clock = time::no_rate_reason();
    if let Some(why) = &clock {
        error!("guests: {why}: no vCPU is started");
    }
    let (mut host, no_vmx) = match (vmx_info, time::rate()) {
        (Some(info), Some(tsc)) => {
            match vmx::enable(info, mem).map(|v| VmxHost::new(v, mem, tsc)) {
                Ok(Ok(host)) => (Some(host), None),
                Ok(Err(e)) => {
                    error!("vmx: {e}: vCPUs cannot run");
                    (None, Some(format!("{e}")))
                }
                Err(e) => {
                    error!("vmx: {e}: vCPUs cannot run");
                    (None, Some(format!("VMX could not be turned on: {e}")))
                }
            }
        }
        (None, _) => (
            None,
            Some(match &clock {
                Some(why) => format!("this CPU has no VMX, and {why}"),
                None => String::from("this CPU has no VMX"),
            }),
        ),
        (Some(_), None) => (None, clock.clone()),
    };
    // What the log says of a guest whose vCPU is not started.
    let because = match (vmx_info, &clock) {
        (None, None) => String::from("VMX is absent"),
        (None, Some(why)) => format!("VMX is absent, and {why}"),
        (Some(_), _) => no_vmx.clone().unwrap_or_default(),
    };
    let unsafe_no_iommu = bundle.config.unsafe_no_iommu;
    let wanted: Vec<_> = configs
        .iter()
        .map(|c| (c.name.as_str(), &c.placement))
        .collect();
    let states: Vec<CpuUp> = cpus.iter().map(|c| c.up.clone()).collect();
    let assigned = placement::assign(&wanted, &states);
    let mut list = Vec::new();
    let mut on_cpus = Vec::new();
    let mut refused = Vec::new();
    let mut placed_only = Vec::new();
    for (index, c) in configs.iter().enumerate() {
        let index = index as u16;
        let refuse = |reason: String| Refused {
            name: c.name.clone(),
            reason,
        };
        let (on, vcpu_cpus) = match place(index, c, &assigned[usize::from(index)], cpus) {
            Ok(on) => on,
            Err(reason) => {
                refused.push(refuse(reason));
                continue;
            }
        };
        let spec = match spec::from_config(c, |k| bundle.image(k)) {
            Ok(spec) => spec,
            Err(e) => {
                error!("guest \"{}\" cannot be loaded: {e}; skipped", c.name);
                refused.push(refuse(format!("cannot be loaded: {e}")));
                continue;
            }
        };
        match &mut host {
            Some(host) => match Guest::create(host, mem, &spec) {
                Ok(mut g) => {
                    let pieces = g.memory_pieces();
                    g.devices = attach_devices(index, c, &pieces, unsafe_no_iommu, &vcpu_cpus);
                    g.pci =
                        super::devices::register(index, &c.name, &g.devices, spec.has_platform());
                    list.push(g);
                    on_cpus.push((on, vcpu_cpus));
                }
                Err(e) => {
                    error!("guest \"{}\" refused before entry: {e}", c.name);
                    refused.push(refuse(format!("refused before entry: {e}")));
                }
            },
            None => {
                let why = no_vmx.as_deref().unwrap_or("no VMX");
                let reason = match without_vcpus(
                    index,
                    c,
                    &spec,
                    mem,
                    unsafe_no_iommu,
                    &because,
                    &vcpu_cpus,
                ) {
                    Ok(g) => {
                        let reason = format!(
                            "vCPU not started ({why}); memory, IOMMU domain and {} function(s) set up",
                            g.devices.len()
                        );
                        placed_only.push(g);
                        reason
                    }
                    Err(e) => format!("cannot be loaded: {e}"),
                };
                refused.push(refuse(reason));
            }
        }
    }
    // Every guest's functions are known now: a line shared with a function a guest does not
    // own can be told apart.
    {
        let mut all: Vec<&mut Guest> = list.iter_mut().chain(placed_only.iter_mut()).collect();
        super::intx::attach_all(&mut all);
    }
    let list = list
        .into_iter()
        .zip(on_cpus)
        .map(|(mut g, (on, vcpu_cpus))| {
            if on.dedicated {
                g.dedicate();
            }
            // Each vCPU's CPU loads its VMCS and writes its own host state before the first
            // entry (`sched`); here, the creating CPU lets go of them.
            if vcpu_cpus.iter().any(|&c| c != 0)
                && let Err(e) = g.release_vmcs()
            {
                g.stop(format!("its VMCS cannot leave cpu 0: {e}"));
            }
            Slot::new(g, on, vcpu_cpus)
        })
        .collect();
    Guests {
        host: host.map(spin::Mutex::new),
        no_vmx,
        list,
        refused,
        without_vcpu: spin::Mutex::new(placed_only),
    }
}

/// Where guest `index` (configuration `c`) runs, as `assigned` says, and the CPU of each of its
/// vCPUs: its device interrupts for vCPU k are routed to the APIC ID of vCPU k's CPU from now on
/// (`irq::place_guest`; its INTx to vCPU 0's). A guest that cannot be placed is refused with the
/// reason.
fn place(
    index: u16,
    c: &GuestConfig,
    assigned: &Result<Assigned, conduit_config::ConfigError>,
    cpus: &[CpuInfo],
) -> Result<(OnCpu, Vec<usize>), String> {
    let a = match assigned {
        Ok(a) => a,
        Err(e) => {
            error!("guest \"{}\" refused: {e}", c.name);
            return Err(format!("refused: {e}"));
        }
    };
    let cpu = usize::from(a.first());
    let vcpu_cpus: Vec<usize> = (0..c.vcpus as usize)
        .map(|k| placement::vcpu_cpu(&a.cpus, k).map_or(cpu, usize::from))
        .collect();
    let apic_of = |cpu: usize| cpus.get(cpu).map_or(0, |c| c.apic_id);
    let apic = apic_of(cpu);
    let apics: Vec<u32> = vcpu_cpus.iter().map(|&c| apic_of(c)).collect();
    crate::sched::cpus::place(index, &vcpu_cpus);
    if let Err(e) = crate::irq::place_guest(conduit_irq::GuestId(index), &apics) {
        warn!(
            "guest \"{}\": its interrupts cannot be routed to its vCPUs' CPUs {vcpu_cpus:?} \
             (APIC IDs {apics:?}): {e}",
            c.name
        );
    }
    let spans = if a.cpus.len() > 1 {
        let each: Vec<String> = (vcpu_cpus.iter().enumerate())
            .map(|(k, c)| format!("vCPU {k} on cpu {c}"))
            .collect();
        format!(
            "; its vCPUs span {} CPUs: {}",
            a.cpus.len(),
            each.join(", ")
        )
    } else {
        String::new()
    };
    info!(
        "guest \"{}\": on cpu {cpu} (APIC ID {apic}){}{}{spans}",
        c.name,
        if a.dedicated {
            ", dedicated"
        } else {
            ", shared"
        },
        if a.by_default {
            " (default placement: round-robin over the online CPUs)"
        } else {
            ""
        }
    );
    Ok((
        OnCpu {
            cpu,
            dedicated: a.dedicated,
        },
        vcpu_cpus,
    ))
}

/// A machine without VMX (QEMU's TCG), or without a known TSC rate: the guest's memory, image,
/// EPT and IOMMU domain are created and its devices assigned, exactly as where vCPUs run; only the
/// vCPUs are not started (`because` says why). Each vCPU's home is its CPU (`vcpu_cpus`), as a
/// `Slot` sets it where vCPUs run.
fn without_vcpus(
    index: u16,
    c: &GuestConfig,
    spec: &GuestSpec,
    mem: &'static Memory,
    unsafe_no_iommu: bool,
    because: &str,
    vcpu_cpus: &[usize],
) -> Result<Guest, super::CreateError> {
    let mut g = match Guest::without_vcpu(mem, spec) {
        Ok(g) => g,
        Err(e) => {
            error!("guest \"{}\" cannot be loaded: {e}; skipped", c.name);
            return Err(e);
        }
    };
    for (v, &cpu) in g.vcpus.iter_mut().zip(vcpu_cpus) {
        v.home = cpu;
    }
    // The frames stay the guest's (and its domain's) for the life of the machine: GuestMemory
    // does not free on drop.
    let pieces = g.memory_pieces();
    let hpa = pieces.first().map_or(0, |p| p.1);
    g.devices = attach_devices(index, c, &pieces, unsafe_no_iommu, vcpu_cpus);
    // The control task holds their virtual configuration space all the same.
    g.pci = super::devices::register(index, &c.name, &g.devices, spec.has_platform());
    warn!(
        "guest \"{}\": {} MiB at HPA {hpa:#x}, {} function(s) assigned; its vCPUs are not started because {because}",
        c.name,
        c.memory_mib,
        g.devices.len()
    );
    Ok(g)
}

/// Creates the guest's IOMMU domain (IOVA = GPA over exactly its memory: `pieces`, each
/// (GPA, HPA, length)) and assigns its functions; the test image records the guest for `placed`.
/// Returns the functions assigned.
fn attach_devices(
    #[cfg_attr(not(feature = "selftest"), expect(unused_variables))] index: u16,
    c: &GuestConfig,
    pieces: &[(u64, u64, u64)],
    unsafe_no_iommu: bool,
    #[cfg_attr(not(feature = "selftest"), expect(unused_variables))] vcpu_cpus: &[usize],
) -> Vec<PciAddress> {
    let mut domain = None;
    let assigned = attach_to_domain(c, pieces, unsafe_no_iommu, &mut domain);
    #[cfg(feature = "selftest")]
    PLACED.lock().push(Placed {
        index,
        name: c.name.clone(),
        hpa: pieces.first().map_or(0, |p| p.1),
        size: pieces.iter().map(|p| p.2).sum(),
        domain,
        devices: assigned.clone(),
        vcpu_cpus: vcpu_cpus.to_vec(),
    });
    assigned
}

fn attach_to_domain(
    c: &GuestConfig,
    pieces: &[(u64, u64, u64)],
    unsafe_no_iommu: bool,
    created: &mut Option<DomainId>,
) -> Vec<PciAddress> {
    let mut assigned = Vec::new();
    let domain = match iommu::status() {
        Ok(()) => {
            let regions: Vec<iommu::GuestMemory> = pieces
                .iter()
                .map(|&(gpa, hpa, len)| iommu::GuestMemory { gpa, hpa, len })
                .collect();
            match iommu::create_domain(&c.name, &regions) {
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
    for (j, d) in c.devices.iter().enumerate() {
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
            Err(e) => error!("guest \"{}\": device[{j}] {d} not assigned: {e}", c.name),
        }
    }
    assigned
}

/// Resolves a configured function, on any segment the MCFG lists (a VF is looked up through its
/// PF's SR-IOV state: the PF must exist, have an SR-IOV capability, `vf` must be below TotalVFs
/// and the VFs enabled) and assigns it to `domain`. A function the control task cannot reach
/// (no window of its decodes it, `crate::control::reaches`) is refused with that reason.
fn assign_one(d: &DeviceAssignment, domain: Option<DomainId>) -> Result<PciAddress, String> {
    let r =
        DeviceRef::from_config(d.function).ok_or_else(|| format!("{d} is not a valid address"))?;
    let r = match d.vf {
        None => r,
        Some(index) => {
            let pf = crate::pci::get()
                .and_then(|pci| pci.resolve(r))
                .ok_or_else(|| format!("no PF {r} on this machine"))?;
            sriov_segment(pf)?;
            let vf = crate::pci::sriov::vf_of(pf.bdf, index).map_err(|e| format!("{e}"))?;
            nvme_vf_ready(pf.bdf, index)?;
            DeviceRef::Address(PciAddress::on_segment0(vf))
        }
    };
    // The control task builds the function: one of its windows must decode it.
    if let Some(f) = crate::pci::get().and_then(|pci| pci.resolve(r)) {
        crate::control::reaches(f.address())?;
    }
    match domain {
        Some(id) => iommu::assign_device(r, id).map_err(|e| format!("{e}")),
        None => crate::pci::get()
            .and_then(|pci| pci.resolve(r))
            .map(crate::pci::Function::address)
            .ok_or_else(|| format!("no such function on this machine ({r})")),
    }
}

/// VFs are enabled on PFs of segment 0 only (`crate::pci::sriov`): a VF of a PF elsewhere does
/// not exist (`docs/hardware.md`, "PCI segments").
fn sriov_segment(pf: &crate::pci::Function) -> Result<(), String> {
    if pf.segment == 0 {
        return Ok(());
    }
    Err(format!(
        "{} is on PCI segment {:04x}: SR-IOV VFs are enabled on PFs of segment 0 only",
        pf.address(),
        pf.segment
    ))
}

/// A VF of an NVMe PF is only usable once its secondary controller is online
/// (`crate::nvme`); then it gets Memory Space and Bus Master Enable in its own Command register.
/// VFs of other PFs pass unchanged.
fn nvme_vf_ready(pf: Bdf, index: u16) -> Result<(), String> {
    let Some(status) = crate::nvme::vf_status(pf, index) else {
        return Ok(());
    };
    let vf = status.map_err(|why| format!("VF {index} of {pf} is not online: {why}"))?;
    let pci = crate::pci::get().ok_or("no PCI enumeration")?;
    let command = crate::nvme::vfs::enable_vf_command(pci, vf.bdf);
    info!(
        "guest VF {} of {pf}: secondary controller {:#x} online, memory decode and bus mastering \
         on (Command {command:#06x})",
        vf.bdf, vf.scid
    );
    Ok(())
}
