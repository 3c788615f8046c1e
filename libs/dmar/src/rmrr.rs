//! Reserved memory regions (RMRR, VT-d spec §8.4) turned into a plan: which device keeps which
//! ranges identity-mapped, and which assignments are refused.
//!
//! A device named by an RMRR's scope (an endpoint, or a function behind a bridge scope) may DMA
//! to the region at any time, on its own (a USB controller's legacy keyboard emulation, an
//! integrated GPU scanning out the firmware framebuffer). While the hypervisor keeps such a
//! device, its domain maps exactly its RMRR ranges IOVA = HPA. Handing it to a guest would need
//! the ranges mapped inside the guest's address space as well, so the assignment is refused.

use crate::resolve::BridgeBus;
use crate::{Bdf, Dmar, DmarError, RemappingStructure};

/// One reserved range: `base` to `limit` inclusive.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Reserved {
    /// First byte (4 KiB aligned).
    pub base: u64,
    /// Last byte (inclusive; `limit + 1` 4 KiB aligned).
    pub limit: u64,
}

impl Reserved {
    /// Whether the range is usable as a page mapping: aligned, non-empty, not wrapping, and its
    /// length fits in 64 bits (the whole 2^64-byte space does not).
    #[must_use]
    pub const fn well_formed(&self) -> bool {
        self.base & 0xfff == 0
            && self.limit >= self.base
            && self.limit & 0xfff == 0xfff
            && self.limit - self.base < u64::MAX
    }

    /// Whether the whole range lies below `2^width` (a host address width of 64 bits or more
    /// covers every address).
    #[must_use]
    pub const fn below_width(&self, width: u16) -> bool {
        width >= 64 || self.limit >> width == 0
    }

    /// The highest address below `2^width` (`u64::MAX` for 64 bits or more).
    #[must_use]
    pub const fn highest_below(width: u16) -> u64 {
        if width >= 64 {
            u64::MAX
        } else {
            (1 << width) - 1
        }
    }

    /// Length in bytes: `limit - base + 1` for a [well-formed](Self::well_formed) range; 0 when
    /// `limit` is below `base`, and `u64::MAX` for the whole space (never an overflow).
    #[must_use]
    pub const fn bytes(&self) -> u64 {
        match self.limit.checked_sub(self.base) {
            Some(span) => span.saturating_add(1),
            None => 0,
        }
    }
}

/// What the configuration does with a device.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Use {
    /// The hypervisor keeps it.
    Kept,
    /// A guest is to get it.
    Assigned,
}

/// What the plan says for one (device, range).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Action {
    /// Map the range IOVA = HPA in the device's identity domain.
    Identity,
    /// The device is to be assigned but has this reserved range: refuse the assignment.
    Refused,
    /// The RMRR is malformed (misaligned, empty or wrapping): nothing can be mapped for it.
    Malformed,
    /// The RMRR reaches above the DMAR's host address width (VT-d spec §8.1, HAW: the largest
    /// physical address DMA can reach is 2^HAW - 1): no remapping structure can map it, so it is
    /// refused rather than mapped short.
    AboveHostWidth {
        /// The DMAR's host address width in bits.
        width: u16,
    },
}

/// One line of the plan.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PlanEntry {
    /// The device.
    pub device: Bdf,
    /// One of its reserved ranges.
    pub range: Reserved,
    /// What to do.
    pub action: Action,
}

impl<'a> Dmar<'a> {
    /// Calls `f` with every RMRR range of `segment` whose scope covers `bdf`, in table order.
    /// Scopes that do not resolve on this machine cover nothing; table errors are returned.
    pub fn rmrr_ranges<B: BridgeBus + ?Sized>(
        &self,
        segment: u16,
        bdf: Bdf,
        bridges: &B,
        mut f: impl FnMut(Reserved),
    ) -> Result<(), DmarError> {
        for s in self.structures() {
            let RemappingStructure::Rmrr(r) = s? else {
                continue;
            };
            if r.segment() != segment {
                continue;
            }
            for scope in r.scopes() {
                if scope?.covers_pci(bridges, bdf) {
                    f(Reserved {
                        base: r.base(),
                        limit: r.limit(),
                    });
                    break;
                }
            }
        }
        Ok(())
    }
}

/// The identity-domain plan: for each device of `devices` on `segment` and each RMRR range of
/// it, one [`PlanEntry`] through `out`: identity-mapped when kept, refused when assigned,
/// malformed when the RMRR cannot be mapped, above the host address width when its limit lies
/// beyond the DMAR's HAW.
pub fn identity_plan<B: BridgeBus + ?Sized>(
    dmar: &Dmar<'_>,
    segment: u16,
    bridges: &B,
    devices: &[(Bdf, Use)],
    mut out: impl FnMut(PlanEntry),
) -> Result<(), DmarError> {
    let width = dmar.host_address_width();
    for &(device, usage) in devices {
        dmar.rmrr_ranges(segment, device, bridges, |range| {
            let action = match usage {
                _ if !range.well_formed() => Action::Malformed,
                _ if !range.below_width(width) => Action::AboveHostWidth { width },
                Use::Kept => Action::Identity,
                Use::Assigned => Action::Refused,
            };
            out(PlanEntry {
                device,
                range,
                action,
            });
        })?;
    }
    Ok(())
}
