//! An IOMMU domain: one guest's memory as its devices see it. IOVA = guest-physical address;
//! only the guest's own memory is ever mapped, so a device can reach nothing of the hypervisor
//! or of other guests.

use super::IommuError;
use crate::pci::report::size;
use alloc::string::String;
use alloc::vec::Vec;
use conduit_hw::memory::{Frames, PhysWindow};
use conduit_hw::vtd::RemappingUnit;
use conduit_paging::{Access, Attributes, Invalidation, PageTable, VtdSecondLevel};
use conduit_pci::PciAddress;
use core::fmt;
use log::error;

/// A domain ID (the DID of the context entries of the domain's functions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DomainId(pub u16);

impl fmt::Display for DomainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One contiguous piece of a guest's memory: `len` bytes at guest-physical `gpa`, backed by
/// host-physical `hpa`. All three are 4 KiB aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestMemory {
    pub gpa: u64,
    pub hpa: u64,
    pub len: u64,
}

impl GuestMemory {
    /// The host-physical address of `[gpa, gpa + len)` if the range lies inside this piece.
    #[cfg(feature = "selftest")]
    pub fn translate(&self, gpa: u64, len: u64) -> Option<u64> {
        let end = gpa.checked_add(len)?;
        (gpa >= self.gpa && end <= self.gpa + self.len).then(|| self.hpa + (gpa - self.gpa))
    }

    fn overlaps_hpa(&self, other: &GuestMemory) -> bool {
        self.hpa < other.hpa + other.len && other.hpa < self.hpa + self.len
    }

    fn overlaps_gpa(&self, other: &GuestMemory) -> bool {
        self.gpa < other.gpa + other.len && other.gpa < self.gpa + self.len
    }
}

/// Second-level tables of one domain on one unit.
pub type SlTable = PageTable<VtdSecondLevel, PhysWindow>;

pub struct Domain {
    pub id: DomainId,
    pub name: String,
    pub memory: Vec<GuestMemory>,
    /// One table per remapping unit, in unit order.
    pub tables: Vec<SlTable>,
    /// Functions whose context entries point at this domain.
    pub devices: Vec<PciAddress>,
}

impl Domain {
    /// Checks `memory` (alignment, no overlap within it or with `others`) and builds one table
    /// per unit mapping all of it.
    pub fn new(
        id: DomainId,
        name: &str,
        memory: &[GuestMemory],
        others: &[Domain],
        units: &[RemappingUnit],
        frames: &mut Frames<'_>,
    ) -> Result<Self, IommuError> {
        for (i, m) in memory.iter().enumerate() {
            let aligned = (m.gpa | m.hpa | m.len) & 0xfff == 0 && m.len != 0;
            let wraps = m.gpa.checked_add(m.len).is_none() || m.hpa.checked_add(m.len).is_none();
            if !aligned || wraps {
                return Err(IommuError::BadRange {
                    gpa: m.gpa,
                    len: m.len,
                });
            }
            let clash = memory[..i]
                .iter()
                .any(|o| o.overlaps_hpa(m) || o.overlaps_gpa(m));
            if clash {
                return Err(IommuError::BadRange {
                    gpa: m.gpa,
                    len: m.len,
                });
            }
            if let Some(owner) = others
                .iter()
                .find(|d| d.memory.iter().any(|o| o.overlaps_hpa(m)))
            {
                return Err(IommuError::MemoryOwned {
                    hpa: m.hpa,
                    owner: owner.id,
                });
            }
        }
        let mut domain = Self {
            id,
            name: String::from(name),
            memory: memory.to_vec(),
            tables: Vec::new(),
            devices: Vec::new(),
        };
        for unit in units {
            let table = PageTable::new(
                VtdSecondLevel::new(),
                unit.window(),
                unit.table_config(),
                frames,
            );
            match table {
                Ok(t) => domain.tables.push(t),
                Err(e) => {
                    domain.destroy(frames);
                    return Err(IommuError::Paging(e));
                }
            }
        }
        for m in memory {
            if let Err(e) = domain.map_tables(frames, m.gpa, m.hpa, m.len) {
                domain.destroy(frames);
                return Err(e);
            }
        }
        Ok(domain)
    }

    /// The host-physical address backing `[gpa, gpa + len)`, if the guest owns all of it.
    #[cfg(feature = "selftest")]
    pub fn backing(&self, gpa: u64, len: u64) -> Option<u64> {
        self.memory.iter().find_map(|m| m.translate(gpa, len))
    }

    /// Maps `[iova, iova + len)` to `hpa` in every unit's table; returns the range that was
    /// made present (the same for every unit).
    pub fn map_tables(
        &mut self,
        frames: &mut Frames<'_>,
        iova: u64,
        hpa: u64,
        len: u64,
    ) -> Result<Option<Invalidation>, IommuError> {
        let mut inv = None;
        for (i, t) in self.tables.iter_mut().enumerate() {
            match t.map(frames, iova, hpa, len, Attributes::wb(Access::RW)) {
                Ok(done) => inv = Some(done),
                Err(e) => {
                    // Units mapped before this one give the range back; one that cannot keeps
                    // it (the domain's own memory, so nothing foreign becomes reachable) and
                    // says so.
                    for (j, t) in self.tables[..i].iter_mut().enumerate() {
                        if let Err(undo) = t.unmap(frames, iova, len) {
                            error!(
                                "iommu: domain {}: IOVA {iova:#x} (+{len:#x}) stays mapped in \
                                 the table of unit {j} after a failed map: {undo}",
                                self.id
                            );
                        }
                    }
                    return Err(IommuError::Paging(e));
                }
            }
        }
        Ok(inv)
    }

    /// Unmaps `[iova, iova + len)` in every unit's table; returns what became stale.
    #[cfg(feature = "selftest")]
    pub fn unmap_tables(
        &mut self,
        frames: &mut Frames<'_>,
        iova: u64,
        len: u64,
    ) -> Result<Option<Invalidation>, IommuError> {
        let mut inv: Option<Invalidation> = None;
        for t in &mut self.tables {
            if let Some(done) = t.unmap(frames, iova, len).map_err(IommuError::Paging)? {
                inv = Some(inv.map_or(done, |i| i.merge(done)));
            }
        }
        Ok(inv)
    }

    /// Gives every table frame back. The domain must have no devices and its DID must have been
    /// invalidated.
    pub fn destroy(self, frames: &mut Frames<'_>) -> usize {
        self.tables.into_iter().map(|t| t.destroy(frames)).sum()
    }

    /// One line for the log.
    pub fn describe(&self) -> String {
        let mut s = alloc::format!("domain {} \"{}\":", self.id, self.name);
        for m in &self.memory {
            s.push_str(&alloc::format!(
                " IOVA {:#x}-{:#x} -> HPA {:#x} ({})",
                m.gpa,
                m.gpa + m.len - 1,
                m.hpa,
                size(m.len)
            ));
        }
        for t in &self.tables {
            s.push_str(&alloc::format!(
                "; {}-level table at {:#x}",
                t.levels().count(),
                t.root()
            ));
        }
        s
    }
}
