//! Where interrupts may go: the CPUs of the machine (the hypervisor may target any of them) and,
//! per guest, the APIC ID of the CPU each of its vCPUs runs on. A guest's interrupt for vCPU k is
//! aimed at vCPU k's CPU; the IRTE authorization ([`crate::authorize_irte`]) lets a guest target
//! the CPU of any of its vCPUs and no other, in physical destination mode only (a logical
//! destination could select CPUs the guest does not own: VT-d spec §9.10, Intel SDM Vol. 3A
//! §11.6.2.2).

use crate::authorize::DestinationPolicy;
use crate::types::{Destination, DestinationMode, GuestId, Owner};
use alloc::vec::Vec;

/// Why a guest could not be placed.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum PlacementError {
    /// A guest has at least one vCPU.
    #[error("guest {0}: no vCPU to place")]
    NoVcpus(u16),
    /// The APIC ID is no CPU of the machine.
    #[error("no CPU has APIC ID {0}")]
    NoSuchCpu(u32),
    /// An interrupt for a vCPU the requester does not have.
    #[error("{owner} has no vCPU {vcpu}")]
    NoSuchVcpu {
        /// Who asked.
        owner: Owner,
        /// The vCPU named.
        vcpu: usize,
    },
}

/// The CPUs interrupts may be aimed at, and the CPUs each guest's vCPUs run on (by APIC ID).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Placements {
    /// The bootstrap processor: the hypervisor's own interrupts go there, and a guest's until it
    /// is placed.
    boot: u32,
    /// Every CPU of the machine.
    cpus: Vec<u32>,
    /// Per placed guest, the APIC ID of each vCPU's CPU (index: vCPU).
    guests: Vec<(GuestId, Vec<u32>)>,
}

impl Placements {
    /// The machine's CPUs (`cpus`, the bootstrap processor `boot` added if missing); no guest
    /// placed.
    pub fn new(boot: u32, mut cpus: Vec<u32>) -> Self {
        if !cpus.contains(&boot) {
            cpus.push(boot);
        }
        Self {
            boot,
            cpus,
            guests: Vec::new(),
        }
    }

    /// Whether `apic` is a CPU of the machine.
    pub fn has_cpu(&self, apic: u32) -> bool {
        self.cpus.contains(&apic)
    }

    /// Adds a CPU found after the list was made (an online processor no table listed).
    pub fn add_cpu(&mut self, apic: u32) {
        if !self.has_cpu(apic) {
            self.cpus.push(apic);
        }
    }

    /// Records guest `id`'s vCPUs: vCPU k runs on the CPU with APIC ID `apics[k]` (a CPU may
    /// carry several of them). Replaces an earlier placement. Refused, changing nothing, if
    /// `apics` is empty or names a CPU the machine lacks.
    pub fn place(&mut self, id: GuestId, apics: &[u32]) -> Result<(), PlacementError> {
        if apics.is_empty() {
            return Err(PlacementError::NoVcpus(id.0));
        }
        if let Some(&missing) = apics.iter().find(|a| !self.has_cpu(**a)) {
            return Err(PlacementError::NoSuchCpu(missing));
        }
        self.guests.retain(|(g, _)| *g != id);
        self.guests.push((id, apics.to_vec()));
        Ok(())
    }

    /// The APIC IDs of guest `id`'s vCPUs' CPUs (index: vCPU); the bootstrap processor alone for
    /// a guest not placed.
    pub fn apics(&self, id: GuestId) -> &[u32] {
        self.guests
            .iter()
            .find(|(g, _)| *g == id)
            .map_or(core::slice::from_ref(&self.boot), |(_, a)| a.as_slice())
    }

    /// The APIC ID an interrupt of `owner` for its vCPU `vcpu` goes to: that vCPU's CPU for a
    /// placed guest, the bootstrap processor for the hypervisor (vCPU 0 only) and for a guest not
    /// placed yet. A vCPU the guest was not placed with is refused.
    pub fn apic_of(&self, owner: Owner, vcpu: usize) -> Result<u32, PlacementError> {
        let apic = match owner {
            Owner::Hypervisor => (vcpu == 0).then_some(self.boot),
            Owner::Guest(id) => match self.guests.iter().find(|(g, _)| *g == id) {
                Some((_, apics)) => apics.get(vcpu).copied(),
                None => Some(self.boot),
            },
        };
        apic.ok_or(PlacementError::NoSuchVcpu { owner, vcpu })
    }

    /// How many vCPUs guest `id` was placed with (0: not placed).
    pub fn vcpus(&self, id: GuestId) -> usize {
        self.guests
            .iter()
            .find(|(g, _)| *g == id)
            .map_or(0, |(_, a)| a.len())
    }
}

impl DestinationPolicy for Placements {
    /// Physical destination mode only; the hypervisor any CPU of the machine, a guest the CPU
    /// of one of its vCPUs.
    fn may_target(&self, requester: Owner, mode: DestinationMode, d: Destination) -> bool {
        mode == DestinationMode::Physical
            && match requester {
                Owner::Hypervisor => self.has_cpu(d.id()),
                Owner::Guest(id) => self.apics(id).contains(&d.id()),
            }
    }
}
