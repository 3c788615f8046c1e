//! From device scopes to PCI functions, and from a function to the DRHD that translates it.
//!
//! Scope paths (VT-d spec §8.3.1): the first (device, function) pair lives on the Start Bus; each
//! further pair lives on the secondary bus of the bridge named by the previous pair. A bridge
//! scope (type 2) covers the bridge and every function on the buses behind it, i.e. its
//! `[secondary, subordinate]` range (§8.3.1, "PCI Sub-hierarchy"). Bus numbers are assigned by
//! software, so resolution needs live config reads: [`BridgeBus`].
//!
//! Which unit translates a function (§8.3): a DRHD whose scopes name it (directly or through a
//! bridge) wins; otherwise the DRHD of the same segment with INCLUDE_PCI_ALL, if any. VFs are
//! covered like any other function behind the bridge or unit that covers their routing ID
//! (§8.3.3 "Implications for SR-IOV"); with ARI the routing ID is the same number (§8.3.2).

use core::ops::RangeInclusive;

use conduit_pci::{Bdf, ConfigAccess};

use crate::error::{DmarError, ResolveError};
use crate::scope::{DeviceScope, ScopeType};
use crate::structures::Drhd;
use crate::table::Dmar;

/// Answers bus-number questions about bridges (a view of PCI config space on one segment).
pub trait BridgeBus {
    /// Secondary Bus Number of the PCI-to-PCI bridge at `bridge`; `None` if there is no bridge
    /// there or it has no secondary bus yet (0).
    fn secondary_bus(&self, bridge: Bdf) -> Option<u8>;

    /// Subordinate Bus Number of the bridge at `bridge`; `None` as for `secondary_bus`.
    fn subordinate_bus(&self, bridge: Bdf) -> Option<u8>;
}

/// [`BridgeBus`] over a [`conduit_pci::ConfigAccess`] (reads the Type 1 header bus numbers).
#[derive(Debug)]
pub struct PciBridges<'c, C: ?Sized>(pub &'c C);

impl<C: ConfigAccess + ?Sized> BridgeBus for PciBridges<'_, C> {
    fn secondary_bus(&self, bridge: Bdf) -> Option<u8> {
        conduit_pci::bridge_buses(self.0, bridge)
            .ok()
            .and_then(|b| b.range())
            .map(|r| *r.start())
    }

    fn subordinate_bus(&self, bridge: Bdf) -> Option<u8> {
        conduit_pci::bridge_buses(self.0, bridge)
            .ok()
            .and_then(|b| b.range())
            .map(|r| *r.end())
    }
}

/// The functions a device scope stands for.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Coverage {
    /// The function the path resolves to (the bridge itself for bridge scopes; the source-id of
    /// an I/OxAPIC, HPET or ACPI-namespace device).
    pub device: Bdf,
    /// For bridge scopes: the buses behind the bridge, every function on which is covered.
    pub buses: Option<RangeInclusive<u8>>,
}

impl Coverage {
    /// Whether `bdf` is the scope's device or sits on a bus behind it.
    #[must_use]
    pub fn covers(&self, bdf: Bdf) -> bool {
        bdf == self.device || self.buses.as_ref().is_some_and(|r| r.contains(&bdf.bus()))
    }
}

fn checked_bdf(bus: u8, device: u8, function: u8) -> Result<Bdf, ResolveError> {
    Bdf::new(bus, device, function).ok_or(ResolveError::InvalidPathEntry {
        bus,
        device,
        function,
    })
}

impl DeviceScope<'_> {
    /// Resolves the path to the function it names, walking intermediate bridges' secondary buses.
    pub fn resolve<B: BridgeBus + ?Sized>(&self, bridges: &B) -> Result<Bdf, ResolveError> {
        let mut bus = self.start_bus();
        let mut path = self.path().peekable();
        let mut current = None;
        while let Some(entry) = path.next() {
            let bdf = checked_bdf(bus, entry.device, entry.function)?;
            if path.peek().is_some() {
                bus = bridges
                    .secondary_bus(bdf)
                    .ok_or(ResolveError::NotABridge { bdf })?;
            }
            current = Some(bdf);
        }
        current.ok_or(ResolveError::EmptyPath)
    }

    /// Resolves the scope and, for a bridge scope, the bus range behind the bridge.
    pub fn coverage<B: BridgeBus + ?Sized>(&self, bridges: &B) -> Result<Coverage, ResolveError> {
        let device = self.resolve(bridges)?;
        let buses = if self.scope_type() == ScopeType::Bridge {
            let sec = bridges
                .secondary_bus(device)
                .ok_or(ResolveError::NotABridge { bdf: device })?;
            let sub = bridges.subordinate_bus(device).unwrap_or(sec).max(sec);
            Some(sec..=sub)
        } else {
            None
        };
        Ok(Coverage { device, buses })
    }

    /// Whether this PCI scope (endpoint or bridge) covers `bdf`. Scopes of other types, and scopes
    /// that do not resolve (absent or unconfigured bridges), cover nothing.
    pub fn covers_pci<B: BridgeBus + ?Sized>(&self, bridges: &B, bdf: Bdf) -> bool {
        matches!(self.scope_type(), ScopeType::Endpoint | ScopeType::Bridge)
            && self.coverage(bridges).is_ok_and(|c| c.covers(bdf))
    }
}

impl<'a> Dmar<'a> {
    /// The DRHD translating DMA from PCI function `bdf` of `segment`: a unit whose endpoint or
    /// bridge scopes cover it, else the segment's INCLUDE_PCI_ALL unit, else `None` (the
    /// function is not under remapping hardware). Table errors are returned; scopes that do not
    /// resolve on this machine are skipped.
    pub fn drhd_for_device<B: BridgeBus + ?Sized>(
        &self,
        segment: u16,
        bdf: Bdf,
        bridges: &B,
    ) -> Result<Option<Drhd<'a>>, DmarError> {
        let mut include_all = None;
        for d in self.drhds_checked() {
            let d = d?;
            if d.segment() != segment {
                continue;
            }
            if d.include_pci_all() {
                include_all = include_all.or(Some(d));
                continue;
            }
            for scope in d.scopes() {
                if scope?.covers_pci(bridges, bdf) {
                    return Ok(Some(d));
                }
            }
        }
        Ok(include_all)
    }

    /// The DRHD whose scope lists the I/OxAPIC with `ioapic_id`, and the source-id that APIC
    /// uses in interrupt requests (for IRTE source validation). `bridges` must be those of the
    /// DRHD's segment: see [`Dmar::ioapic_scope`] to learn the segment first.
    pub fn drhd_for_ioapic<B: BridgeBus + ?Sized>(
        &self,
        ioapic_id: u8,
        bridges: &B,
    ) -> Result<Option<(Drhd<'a>, Bdf)>, DmarError> {
        self.special_scope(ScopeType::IoApic, ioapic_id, bridges)
    }

    /// The DRHD whose scope lists the HPET block `hpet_number`, and its source-id.
    pub fn drhd_for_hpet<B: BridgeBus + ?Sized>(
        &self,
        hpet_number: u8,
        bridges: &B,
    ) -> Result<Option<(Drhd<'a>, Bdf)>, DmarError> {
        self.special_scope(ScopeType::Hpet, hpet_number, bridges)
    }

    /// The DRHD whose scope lists the I/OxAPIC with `ioapic_id`, and that scope, unresolved: its
    /// path is read through the bridges of the DRHD's segment (VT-d spec §8.3: a DRHD's scopes
    /// are in its segment), which the caller picks from [`Drhd::segment`].
    pub fn ioapic_scope(
        &self,
        ioapic_id: u8,
    ) -> Result<Option<(Drhd<'a>, DeviceScope<'a>)>, DmarError> {
        for d in self.drhds_checked() {
            let d = d?;
            for scope in d.scopes() {
                let scope = scope?;
                if scope.scope_type() == ScopeType::IoApic && scope.enumeration_id() == ioapic_id {
                    return Ok(Some((d, scope)));
                }
            }
        }
        Ok(None)
    }

    fn special_scope<B: BridgeBus + ?Sized>(
        &self,
        kind: ScopeType,
        id: u8,
        bridges: &B,
    ) -> Result<Option<(Drhd<'a>, Bdf)>, DmarError> {
        for d in self.drhds_checked() {
            let d = d?;
            for scope in d.scopes() {
                let scope = scope?;
                if scope.scope_type() == kind
                    && scope.enumeration_id() == id
                    && let Ok(sid) = scope.resolve(bridges)
                {
                    return Ok(Some((d, sid)));
                }
            }
        }
        Ok(None)
    }

    /// DRHDs in table order, with structure errors passed through.
    fn drhds_checked(&self) -> impl Iterator<Item = Result<Drhd<'a>, DmarError>> + use<'a> {
        self.structures().filter_map(|s| match s {
            Ok(crate::RemappingStructure::Drhd(d)) => Some(Ok(d)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
    }
}
