//! Routes: a device's MSI, or an ISA interrupt through an I/O APIC, each through one verified IRTE
//! on one vector of its owner.

#[cfg(feature = "selftest")]
use super::STATE;
use super::{IrqError, Source, State, dispatch, with_state};
use crate::pci::msi;
use conduit_irq::{Binding, IrteBuilder, MsiMessage, Owner, RemappableMsi, SourceQualifier};
#[cfg(feature = "selftest")]
use conduit_irq::{Polarity, RemappableRte, TriggerMode};
use conduit_pci::PciAddress;
use log::{error, info};

/// A device MSI routed through the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsiRoute {
    pub bdf: PciAddress,
    pub owner: Owner,
    /// IRTE index = the message's handle.
    pub index: u16,
    /// The physical vector the IRTE delivers.
    pub vector: u8,
    /// What the device was programmed with.
    pub message: MsiMessage,
}

/// Takes a vector and an IRT index for `owner`, undoing the first if the second fails.
pub(super) fn allocate(s: &mut State, owner: Owner) -> Result<(u8, u16), IrqError> {
    if s.ir.is_none() {
        return Err(IrqError::RemappingOff(s.ir_off.clone()));
    }
    let vector = s.vectors.alloc(owner)?;
    match s.irt.alloc(owner) {
        Ok(index) => Ok((vector, index)),
        Err(e) => {
            if let Err(free) = s.vectors.free(vector, owner) {
                error!("irq: {owner}: vector {vector:#x} taken for nothing not given back: {free}");
            }
            Err(e.into())
        }
    }
}

/// Gives back what a route that failed half-way took. The IRT index (and its vector) are freed
/// only once the entry is cleared and its invalidation completed: an entry that may still be live
/// in the table or a unit's interrupt entry cache keeps its index allocated (leaked, never handed
/// out again while it can deliver), and the failure is logged.
pub(super) fn undo(s: &mut State, owner: Owner, vector: u8, index: u16) {
    dispatch::unbind(vector);
    if let Err(e) = crate::iommu::clear_irte(index) {
        error!(
            "irq: {owner}: IRTE {index} (vector {vector:#x}) could not be cleared ({e}): the \
             index and its vector stay allocated and are never reused"
        );
        return;
    }
    if let Err(e) = s.irt.free(index, owner) {
        error!("irq: {owner}: IRTE {index} cleared but not given back: {e}");
    }
    if let Err(e) = s.vectors.free(vector, owner) {
        error!("irq: {owner}: vector {vector:#x} not given back: {e}");
    }
}

/// Which message-signalled interrupt of a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsiKind {
    /// The MSI capability (one message), programmed here (hypervisor-owned functions, while the
    /// kernel still owns configuration space): only the self-tests' DMA master does that.
    #[cfg(feature = "selftest")]
    Msi,
    /// The MSI capability, programmed by the caller with the returned message: a guest's
    /// function, whose configuration space the control task writes.
    MsiByCaller,
    /// One MSI-X table entry.
    Msix(u16),
}

/// Routes the MSI (or MSI-X entry) of `bdf` for `owner`'s vCPU `vcpu` (0 for the hypervisor): a
/// fresh vector, an IRTE aimed at the APIC ID of the CPU that runs that vCPU (Fixed, edge,
/// physical; the bootstrap processor for the hypervisor) that only `bdf` may use (SVT = 01b, SQ = 00b: all 16 requester-id
/// bits compared; written into the interrupt remapping table of `bdf`'s segment only, so its
/// namesake on another segment cannot use it), and the device programmed in remappable format
/// with that entry's handle (MSI enabled; an MSI-X entry unmasked, MSI-X Enable left to the
/// caller). For a guest,
/// `virtual_vector` is the vector its own driver programmed (injected on delivery), and the
/// vector's binding names `vcpu`, so that the interrupt path knows whom it is for. A vCPU the
/// guest was not placed with is refused before anything is taken.
pub fn bind_msi(
    owner: Owner,
    vcpu: u8,
    bdf: PciAddress,
    kind: MsiKind,
    virtual_vector: Option<u8>,
) -> Result<MsiRoute, IrqError> {
    with_state(|s| {
        let destination = s.destination(owner, usize::from(vcpu))?;
        let (vector, index) = allocate(s, owner)?;
        let irte = match IrteBuilder::new(destination, vector)
            .verify_requester(bdf.bdf.routing_id(), SourceQualifier::All)
            .build()
        {
            Ok(irte) => irte,
            Err(e) => {
                undo(s, owner, vector, index);
                return Err(e.into());
            }
        };
        if let Err(e) = s.install(owner, bdf.segment, index, &irte) {
            undo(s, owner, vector, index);
            return Err(e);
        }
        dispatch::bind(
            vector,
            Binding {
                owner,
                index: Some(index),
                virtual_vector,
                vcpu,
            },
        );
        // A fresh binding: a flood of the vector's earlier user is reported no more.
        s.reported.retain(|&v| v != vector);
        let message = RemappableMsi::single(index).encode();
        let programmed = match kind {
            #[cfg(feature = "selftest")]
            MsiKind::Msi => msi::program_msi(bdf, message).map(|_| ()),
            MsiKind::MsiByCaller => Ok(()),
            MsiKind::Msix(entry) => msi::program_msix_entry(s.mem, bdf, entry, message, false),
        };
        if let Err(e) = programmed {
            undo(s, owner, vector, index);
            return Err(e.into());
        }
        let (source, what) = match kind {
            #[cfg(feature = "selftest")]
            MsiKind::Msi => (Source::Msi(bdf), alloc::string::String::from("MSI")),
            MsiKind::MsiByCaller => (Source::Msi(bdf), alloc::string::String::from("MSI")),
            MsiKind::Msix(entry) => (
                Source::Msix { bdf, entry },
                alloc::format!("MSI-X entry {entry}"),
            ),
        };
        s.sources.push((index, vector, source));
        info!(
            "irq: {owner}: {what} of {bdf} -> IRTE {index} -> vector {vector:#x}{} on APIC {} \
             (fixed, edge, physical); source-id {bdf} verified (SVT=01, SQ=00); {} in \
             remappable format: address {:#010x} (handle {index}, SHV 0), data {:#06x}",
            virtual_vector.map_or_else(alloc::string::String::new, |v| alloc::format!(
                " (the guest's vector {v:#x}{})",
                if several_vcpus(s, owner) {
                    alloc::format!(" for its vCPU {vcpu}")
                } else {
                    alloc::string::String::new()
                }
            )),
            destination.id(),
            if kind == MsiKind::MsiByCaller {
                "to be programmed through the control task"
            } else {
                "device programmed"
            },
            message.address,
            message.data
        );
        Ok(MsiRoute {
            bdf,
            owner,
            index,
            vector,
            message,
        })
    })
}

/// Whether `owner` is a guest placed with more than one vCPU (its log lines name the vCPU).
fn several_vcpus(s: &State, owner: Owner) -> bool {
    matches!(owner, Owner::Guest(id) if s.placements.vcpus(id) > 1)
}

/// An ISA interrupt routed through an I/O APIC input.
#[cfg(feature = "selftest")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GsiRoute {
    pub isa: u8,
    pub gsi: u32,
    /// Index into the I/O APICs found at init, and its input.
    pub ioapic: usize,
    pub pin: u8,
    pub index: u16,
    pub vector: u8,
    /// The redirection entry written (masked).
    pub rte: u64,
}

/// Routes ISA IRQ `isa` for the hypervisor: the MADT's override gives the GSI, polarity and
/// trigger mode; the IRTE verifies the I/O APIC's source-id; the redirection entry is written in
/// remappable format (index, the IRTE's vector and trigger mode, §5.1.5.1) and left masked
/// ([`set_gsi_masked`] opens it).
#[cfg(feature = "selftest")]
pub fn route_isa(isa: u8) -> Result<GsiRoute, IrqError> {
    let owner = Owner::Hypervisor;
    with_state(|s| {
        let o = crate::platform::acpi::isa_route(&s.overrides, isa);
        let (ioapic, pin) = s
            .ioapics
            .iter()
            .enumerate()
            .find_map(|(i, io)| io.dev.pin_of(o.gsi).map(|p| (i, p)))
            .ok_or(IrqError::NoIoApic(o.gsi))?;
        let sid = s.ioapics[ioapic]
            .source_id
            .ok_or(IrqError::NoSourceId(s.ioapics[ioapic].dev.id()))?;
        let destination = s.destination(owner, 0)?;
        let (vector, index) = allocate(s, owner)?;
        let trigger = if o.level {
            TriggerMode::Level
        } else {
            TriggerMode::Edge
        };
        let irte = match IrteBuilder::new(destination, vector)
            .trigger_mode(trigger)
            .verify_requester(sid.bdf.routing_id(), SourceQualifier::All)
            .build()
        {
            Ok(i) => i,
            Err(e) => {
                undo(s, owner, vector, index);
                return Err(e.into());
            }
        };
        if let Err(e) = s.install(owner, sid.segment, index, &irte) {
            undo(s, owner, vector, index);
            return Err(e);
        }
        dispatch::bind(
            vector,
            Binding {
                owner,
                index: Some(index),
                virtual_vector: None,
                vcpu: 0,
            },
        );
        let polarity = if o.active_low {
            Polarity::ActiveLow
        } else {
            Polarity::ActiveHigh
        };
        let rte = RemappableRte::for_irte(index, &irte, polarity, true).encode();
        let io = &mut s.ioapics[ioapic];
        io.dev.write_rte(pin, rte);
        let readback = io.dev.read_rte(pin);
        s.sources
            .push((index, vector, Source::IoApic { ioapic, pin }));
        info!(
            "irq: ISA IRQ {isa} -> GSI {} (I/O APIC {} input {pin}, {}, active {}) -> IRTE \
             {index} -> vector {vector:#x}; source-id {sid} verified (SVT=01); redirection entry \
             {readback:#018x} (remappable format, masked)",
            o.gsi,
            s.ioapics[ioapic].dev.id(),
            if o.level { "level" } else { "edge" },
            if o.active_low { "low" } else { "high" },
        );
        Ok(GsiRoute {
            isa,
            gsi: o.gsi,
            ioapic,
            pin,
            index,
            vector,
            rte: readback,
        })
    })
}

/// Masks or unmasks the I/O APIC input of `route`.
#[cfg(feature = "selftest")]
pub fn set_gsi_masked(route: &GsiRoute, masked: bool) -> Result<(), IrqError> {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let mut guard = STATE.lock();
        let s = guard.as_mut().ok_or(IrqError::NotInitialised)?;
        let io = s
            .ioapics
            .get_mut(route.ioapic)
            .ok_or(IrqError::NoIoApic(route.gsi))?;
        io.dev.set_masked(route.pin, masked);
        Ok(())
    })
}
