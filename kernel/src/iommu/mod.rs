//! DMA protection policy: one IOMMU domain per guest, mapping exactly that guest's memory
//! (IOVA = guest-physical address), and the assignment of PCI functions to domains.
//!
//! API for the guest runtime (all functions lock one global state; none may be called from an
//! interrupt handler):
//! - [`init`]: parse the DMAR, bring every remapping unit up and enable translation. From then on
//!   a function assigned to no domain has no context entry and its DMA is blocked. A missing or
//!   malformed DMAR (or a unit that fails) leaves remapping off, and every assignment is refused.
//! - [`create_domain`]`(name, &[GuestMemory])` -> [`DomainId`]: tables for every unit mapping the
//!   guest's memory. Memory owned by another domain is refused.
//! - [`assign`]`(bdf, domain)` (or [`assign_device`] with a `bb:dd.f` / `vvvv:dddd`
//!   [`DeviceRef`]) / [`unassign`]`(bdf)`: context entries, with the invalidations the unit needs
//!   (caching mode honoured).
//! - [`map`] / [`unmap`]`(domain, gpa, len)`: make a part of the guest's own memory reachable or
//!   unreachable for its devices (never anything else), with IOTLB invalidation.
//! - [`destroy_domain`], [`service_faults`] (decodes and logs DMA and interrupt-remapping
//!   faults), [`units`].
//! - [`view`], [`recent_faults`]: the units, domains and latest faults, for the debug shell;
//!   [`faults_from`]: the faults counted per requester since boot.
//! - Interrupt remapping ([`intremap`]): brought up with the units (the local APIC's mode is
//!   chosen there), one table per PCI segment; [`write_irte`] (into the table of a segment),
//!   [`clear_irte`], [`mask_irte`] / [`try_mask_irte`], [`read_irte`], [`interrupt_remapping`],
//!   [`ioapic_source_id`] for `crate::irq`, which decides what goes into the tables.

mod bringup;
mod dmar;
mod domain;
mod faults;
mod intremap;
mod view;

pub use domain::{DomainId, GuestMemory};
pub use faults::service_faults;
#[cfg(feature = "selftest")]
pub use intremap::read_irte;
pub use intremap::{
    IRT_ENTRIES, IrInfo, clear_irte, interrupt_remapping, ioapic_source_id, mask_irte,
    try_mask_irte, write_irte,
};
#[cfg(feature = "selftest")]
pub use view::faults_from;
pub use view::{View, recent_faults, view};

use crate::pci::DeviceRef;
use alloc::string::String;
use alloc::vec::Vec;
use conduit_dmar::Dmar;
use conduit_hw::memory::{Frames, Memory};
#[cfg(feature = "selftest")]
use conduit_hw::vtd::{Invalidation, Method};
use conduit_hw::vtd::{RemappingUnit, VtdError};
use conduit_pci::{Bdf, PciAddress};
use domain::Domain;
use log::{error, info};
use spin::Mutex;

/// Why an IOMMU operation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IommuError {
    /// DMA remapping is off on this machine; assigning would leave the device unprotected.
    RemappingDisabled {
        reason: String,
    },
    NoSuchDomain(DomainId),
    /// Enumeration found no function at this address.
    NoSuchFunction(PciAddress),
    /// Enumeration found no function matching a configured device.
    NoSuchDevice(DeviceRef),
    /// No remapping unit translates this function's DMA.
    NotTranslated(PciAddress),
    /// The function has a reserved memory region (RMRR) that would have to stay mapped.
    ReservedRegion {
        bdf: PciAddress,
        base: u64,
        limit: u64,
    },
    AlreadyAssigned {
        bdf: PciAddress,
        domain: DomainId,
    },
    #[cfg(feature = "selftest")]
    NotAssigned(PciAddress),
    /// The range is not (entirely) guest memory of the domain.
    #[cfg(feature = "selftest")]
    NotGuestMemory {
        domain: DomainId,
        gpa: u64,
        len: u64,
    },
    /// Misaligned, empty, wrapping or self-overlapping guest memory.
    BadRange {
        gpa: u64,
        len: u64,
    },
    /// The host memory already belongs to another domain.
    MemoryOwned {
        hpa: u64,
        owner: DomainId,
    },
    /// The domain still has functions assigned.
    #[cfg(feature = "selftest")]
    DomainBusy {
        domain: DomainId,
        devices: usize,
    },
    OutOfDomainIds,
    Paging(conduit_paging::Error),
    Hardware(VtdError),
    /// Interrupt remapping is off; interrupts cannot be routed through the table.
    InterruptRemappingOff {
        reason: String,
    },
}

impl core::fmt::Display for IommuError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::RemappingDisabled { reason } => write!(
                f,
                "DMA remapping is disabled ({reason}): the device would DMA unprotected"
            ),
            Self::NoSuchDomain(d) => write!(f, "no domain {d}"),
            Self::NoSuchFunction(b) => write!(f, "no PCI function at {b}"),
            Self::NoSuchDevice(d) => write!(f, "no PCI function matches {d}"),
            Self::NotTranslated(b) => write!(f, "no remapping unit translates {b}"),
            Self::ReservedRegion { bdf, base, limit } => write!(
                f,
                "{bdf} has a reserved memory region {base:#x}-{limit:#x} (RMRR) that firmware \
                 may DMA to at any time: it stays identity-mapped with the hypervisor"
            ),
            Self::AlreadyAssigned { bdf, domain } => {
                write!(f, "{bdf} is already assigned to domain {domain}")
            }
            #[cfg(feature = "selftest")]
            Self::NotAssigned(b) => write!(f, "{b} is not assigned"),
            #[cfg(feature = "selftest")]
            Self::NotGuestMemory { domain, gpa, len } => write!(
                f,
                "{gpa:#x}+{len:#x} is not guest memory of domain {domain}"
            ),
            Self::BadRange { gpa, len } => write!(f, "unusable range {gpa:#x}+{len:#x}"),
            Self::MemoryOwned { hpa, owner } => {
                write!(f, "host memory {hpa:#x} belongs to domain {owner}")
            }
            #[cfg(feature = "selftest")]
            Self::DomainBusy { domain, devices } => {
                write!(f, "domain {domain} still has {devices} function(s)")
            }
            Self::OutOfDomainIds => write!(f, "no domain ID left"),
            Self::Paging(e) => write!(f, "second-level tables: {e}"),
            Self::Hardware(e) => write!(f, "remapping hardware: {e}"),
            Self::InterruptRemappingOff { reason } => {
                write!(f, "interrupt remapping is off ({reason})")
            }
        }
    }
}

struct State {
    mem: &'static Memory,
    /// `None` while remapping is on; else why it is off.
    disabled: Option<String>,
    dmar: Vec<u8>,
    units: Vec<RemappingUnit>,
    /// Units that could not be brought up: the devices they translate are not remapped.
    failed: Vec<bringup::FailedUnit>,
    domains: Vec<Domain>,
    next_did: u16,
    /// The interrupt remapping tables, one per segment with units (empty while interrupt
    /// remapping is off).
    ir: intremap::Tables,
    /// Why interrupt remapping is off.
    ir_off: Option<String>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

/// What diagnostics need to know about a unit.
#[cfg(feature = "selftest")]
#[derive(Debug, Clone, Copy)]
pub struct UnitInfo {
    /// Register base.
    pub base: u64,
    /// Physical address of its root table.
    pub root_table: u64,
}

fn disable(mem: &'static Memory, reason: String) {
    disable_with(mem, reason, log::Level::Error);
}

fn disable_with(mem: &'static Memory, reason: String, level: log::Level) {
    log::log!(
        level,
        "iommu: DMA remapping disabled: {reason}; every device assignment will be refused"
    );
    *STATE.lock() = Some(State {
        mem,
        ir_off: Some(alloc::format!("DMA remapping is off: {reason}")),
        disabled: Some(reason),
        dmar: Vec::new(),
        units: Vec::new(),
        failed: Vec::new(),
        domains: Vec::new(),
        next_did: 1,
        ir: intremap::Tables::new(),
    });
}

/// Brings DMA remapping up from the DMAR table `dmar` (the whole table, header included).
pub fn init(mem: &'static Memory, dmar: Option<&[u8]>) {
    bringup::bring_up(mem, dmar, false);
}

/// TEST ONLY (feature `selftest`): [`init`] with register-based invalidation even where a unit
/// offers queued invalidation, so that the register path is exercised on such a unit.
#[cfg(feature = "selftest")]
pub fn init_with_register_invalidation(mem: &'static Memory, dmar: Option<&[u8]>) {
    bringup::bring_up(mem, dmar, true);
}

fn with_state<R>(f: impl FnOnce(&mut State) -> Result<R, IommuError>) -> Result<R, IommuError> {
    let mut guard = STATE.lock();
    match guard.as_mut() {
        Some(state) => f(state),
        None => Err(IommuError::RemappingDisabled {
            reason: String::from("the IOMMU was not initialised"),
        }),
    }
}

/// Whether DMA remapping is on; else why not.
pub fn status() -> Result<(), String> {
    match STATE.lock().as_ref() {
        Some(State { disabled: None, .. }) => Ok(()),
        Some(State {
            disabled: Some(r), ..
        }) => Err(r.clone()),
        None => Err(String::from("the IOMMU was not initialised")),
    }
}

/// The units under Conduit's control.
#[cfg(feature = "selftest")]
pub fn units() -> Vec<UnitInfo> {
    STATE.lock().as_ref().map_or_else(Vec::new, |s| {
        s.units
            .iter()
            .map(|u| UnitInfo {
                base: u.phys(),
                root_table: u.root_table(),
            })
            .collect()
    })
}

/// Creates a domain for a guest whose memory is `memory` and maps all of it (IOVA = GPA) on
/// every unit. With remapping off the domain exists without tables (a guest without devices
/// needs none); assignments to it are refused.
pub fn create_domain(name: &str, memory: &[GuestMemory]) -> Result<DomainId, IommuError> {
    with_state(|s| {
        let limit = s
            .units
            .iter()
            .map(|u| u.cap().domains())
            .min()
            .unwrap_or(1 << 16);
        if u32::from(s.next_did) >= limit {
            return Err(IommuError::OutOfDomainIds);
        }
        let id = DomainId(s.next_did);
        let mut frames = Frames::new(s.mem);
        let domain = Domain::new(id, name, memory, &s.domains, &s.units, &mut frames)?;
        s.next_did += 1;
        info!("iommu: created {}", domain.describe());
        s.domains.push(domain);
        Ok(id)
    })
}

fn domain_mut(s: &mut State, id: DomainId) -> Result<&mut Domain, IommuError> {
    s.domains
        .iter_mut()
        .find(|d| d.id == id)
        .ok_or(IommuError::NoSuchDomain(id))
}

/// Gives a domain's tables back. Refused while functions are assigned to it.
#[cfg(feature = "selftest")]
pub fn destroy_domain(id: DomainId) -> Result<(), IommuError> {
    with_state(|s| {
        let index = s
            .domains
            .iter()
            .position(|d| d.id == id)
            .ok_or(IommuError::NoSuchDomain(id))?;
        let devices = s.domains[index].devices.len();
        if devices != 0 {
            return Err(IommuError::DomainBusy {
                domain: id,
                devices,
            });
        }
        let domain = s.domains.swap_remove(index);
        let frames = domain.destroy(&mut Frames::new(s.mem));
        info!("iommu: destroyed domain {id}: {frames} table frame(s) freed");
        Ok(())
    })
}

/// Index of the unit translating `bdf` (a unit of its segment).
fn unit_index(s: &State, bdf: PciAddress) -> Result<usize, IommuError> {
    let pci = crate::pci::get().ok_or(IommuError::NoSuchFunction(bdf))?;
    pci.function_at(bdf)
        .ok_or(IommuError::NoSuchFunction(bdf))?;
    let table = Dmar::parse(&s.dmar).map_err(|e| IommuError::RemappingDisabled {
        reason: alloc::format!("DMAR: {e}"),
    })?;
    // An RMRR scope that cannot be read may name this device: refuse rather than assign it.
    let refused = bringup::rmrr_plan(
        &table,
        pci,
        bdf.segment,
        &[(bdf.bdf, conduit_dmar::Use::Assigned)],
    )
    .map_err(|e| IommuError::RemappingDisabled {
        reason: alloc::format!("DMAR: RMRRs not read: {e}"),
    })?;
    if let Some(e) = refused.first() {
        return Err(IommuError::ReservedRegion {
            bdf,
            base: e.range.base,
            limit: e.range.limit,
        });
    }
    let base = dmar::unit_for(&table, pci, bdf)
        .ok()
        .flatten()
        .ok_or(IommuError::NotTranslated(bdf))?;
    if let Some(f) = s.failed.iter().find(|f| f.base == base) {
        return Err(IommuError::RemappingDisabled {
            reason: alloc::format!("unit {base:#x} translating {bdf} failed: {}", f.reason),
        });
    }
    s.units
        .iter()
        .position(|u| u.phys() == base)
        .ok_or(IommuError::NotTranslated(bdf))
}

/// Assigns PCI function `bdf` of segment 0 to `domain` ([`assign_at`]).
pub fn assign(bdf: Bdf, domain: DomainId) -> Result<(), IommuError> {
    assign_at(PciAddress::on_segment0(bdf), domain)
}

/// Assigns PCI function `bdf` (of any segment) to `domain`: its context entry, on the unit of
/// its segment that translates it, points at the domain's tables, so its DMA reaches exactly the
/// guest's memory.
pub fn assign_at(bdf: PciAddress, domain: DomainId) -> Result<(), IommuError> {
    let result = with_state(|s| {
        if let Some(reason) = &s.disabled {
            return Err(IommuError::RemappingDisabled {
                reason: reason.clone(),
            });
        }
        let unit = unit_index(s, bdf)?;
        if let Some(owner) = s.domains.iter().find(|d| d.devices.contains(&bdf)) {
            return Err(IommuError::AlreadyAssigned {
                bdf,
                domain: owner.id,
            });
        }
        let mem = s.mem;
        let d = domain_mut(s, domain)?;
        let root = d.tables[unit].root();
        let levels = d.tables[unit].levels().count();
        let u = &mut s.units[unit];
        let unit_base = u.phys();
        let method = u
            .attach(&mut Frames::new(mem), bdf.bdf, domain.0, root)
            .map_err(IommuError::Hardware)?;
        let d = domain_mut(s, domain)?;
        d.devices.push(bdf);
        info!(
            "iommu: assigned {bdf} to domain {domain} \"{}\" on unit {:#x}: context entry DID \
             {domain}, {levels}-level tables at {root:#x}{}",
            d.name,
            unit_base,
            match method {
                Some(m) => alloc::format!(
                    "; caching mode: context cache (device, DID 0) and IOTLB (domain {domain}) \
                     invalidated by {m}"
                ),
                None => String::new(),
            }
        );
        Ok(())
    });
    if let Err(e) = &result {
        error!("iommu: refusing to assign {bdf} to domain {domain}: {e}");
    }
    result
}

/// Assigns the function a configuration names (`[ssss:]bb:dd.f` or `vvvv:dddd`) to `domain`;
/// returns its address.
pub fn assign_device(device: DeviceRef, domain: DomainId) -> Result<PciAddress, IommuError> {
    let at = crate::pci::get()
        .and_then(|pci| pci.resolve(device))
        .map(crate::pci::Function::address)
        .ok_or(IommuError::NoSuchDevice(device))?;
    assign_at(at, domain).map(|()| at)
}

/// Takes `bdf` of segment 0 away from its domain: no context entry, so its DMA is blocked again.
#[cfg(feature = "selftest")]
pub fn unassign(bdf: Bdf) -> Result<DomainId, IommuError> {
    let bdf = PciAddress::on_segment0(bdf);
    with_state(|s| {
        let d = s
            .domains
            .iter_mut()
            .find(|d| d.devices.contains(&bdf))
            .ok_or(IommuError::NotAssigned(bdf))?;
        d.devices.retain(|b| *b != bdf);
        let id = d.id;
        for u in s.units.iter_mut().filter(|u| u.segment() == bdf.segment) {
            if let Some((did, method)) = u.detach(bdf.bdf).map_err(IommuError::Hardware)? {
                info!(
                    "iommu: unassigned {bdf} from domain {id}: context entry cleared; context \
                     cache (device) and IOTLB (domain {did}) invalidated by {method}"
                );
            }
        }
        Ok(id)
    })
}

/// Invalidates `inv` of `domain` on every unit where the domain has functions; `present` says
/// the entries were made present (only caching mode needs that invalidated).
#[cfg(feature = "selftest")]
fn invalidate_domain(
    s: &mut State,
    domain: DomainId,
    inv: conduit_paging::Invalidation,
    present: bool,
) -> Result<Option<(Invalidation, Method)>, IommuError> {
    let Some(d) = s.domains.iter().find(|d| d.id == domain) else {
        return Err(IommuError::NoSuchDomain(domain));
    };
    let (base, order) = inv.aligned_block();
    let request = Invalidation::IotlbPages {
        did: domain.0,
        addr: base,
        order,
    };
    let users: Vec<usize> = s
        .units
        .iter()
        .enumerate()
        .filter(|(_, u)| {
            d.devices
                .iter()
                .any(|b| b.segment == u.segment() && u.context(b.bdf).is_some())
        })
        .map(|(i, _)| i)
        .collect();
    let mut done = None;
    for i in users {
        let u = &mut s.units[i];
        if present && !u.cap().cm() {
            continue;
        }
        done = Some((
            request,
            u.invalidate(&[request]).map_err(IommuError::Hardware)?,
        ));
    }
    Ok(done)
}

/// Makes `[gpa, gpa + len)` of the guest's own memory reachable by its devices again.
#[cfg(feature = "selftest")]
pub fn map(domain: DomainId, gpa: u64, len: u64) -> Result<(), IommuError> {
    with_state(|s| {
        let mem = s.mem;
        let d = domain_mut(s, domain)?;
        let hpa = d
            .backing(gpa, len)
            .ok_or(IommuError::NotGuestMemory { domain, gpa, len })?;
        let inv = d.map_tables(&mut Frames::new(mem), gpa, hpa, len)?;
        let done = match inv {
            Some(inv) => invalidate_domain(s, domain, inv, true)?,
            None => None,
        };
        info!(
            "iommu: domain {domain}: mapped IOVA {gpa:#x}-{:#x} -> HPA {hpa:#x}{}",
            gpa + len - 1,
            describe_invalidation(done, "no invalidation needed (CAP.CM = 0)")
        );
        Ok(())
    })
}

/// Makes `[gpa, gpa + len)` unreachable for the domain's devices (their DMA there faults).
#[cfg(feature = "selftest")]
pub fn unmap(domain: DomainId, gpa: u64, len: u64) -> Result<(), IommuError> {
    with_state(|s| {
        let mem = s.mem;
        let d = domain_mut(s, domain)?;
        if d.backing(gpa, len).is_none() {
            return Err(IommuError::NotGuestMemory { domain, gpa, len });
        }
        let inv = d.unmap_tables(&mut Frames::new(mem), gpa, len)?;
        let done = match inv {
            Some(inv) => invalidate_domain(s, domain, inv, false)?,
            None => None,
        };
        info!(
            "iommu: domain {domain}: unmapped IOVA {gpa:#x}-{:#x}{}",
            gpa + len - 1,
            describe_invalidation(done, "nothing cached to invalidate")
        );
        Ok(())
    })
}

#[cfg(feature = "selftest")]
fn describe_invalidation(done: Option<(Invalidation, Method)>, otherwise: &str) -> String {
    match done {
        Some((inv, method)) => alloc::format!("; invalidated {inv} by {method}"),
        None => alloc::format!("; {otherwise}"),
    }
}
