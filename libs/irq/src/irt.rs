//! Interrupt-remapping-table index allocation with owners.
//!
//! The table has 2^(S+1) entries, S being IRTA_REG's size field ([`IrtSize`]). Storage is a fixed
//! array of `MAX` owner slots (no allocation; 65536 slots for the largest table), so an allocator
//! can live in a `static` built with [`IrtAllocator::empty`] and be sized later with
//! [`IrtAllocator::configure`].
//!
//! Multi-message MSI (PCI Local Bus spec, MSI capability: Multiple Message Enable) gives a function
//! 1, 2, 4, 8, 16 or 32 consecutive messages; with a remappable-format message whose subhandle is 0
//! they select `base..base + count` (VT-d §5.1.2.2), so [`IrtAllocator::alloc_block`] hands out
//! such runs, aligned to their size.

use crate::error::{AllocError, Resource};
use crate::irta::IrtSize;
use crate::types::Owner;

/// Largest multi-message MSI block.
pub const MAX_BLOCK: usize = 32;

/// Owners of the entries of one interrupt remapping table; `MAX` is the storage capacity.
#[derive(Clone, Debug)]
pub struct IrtAllocator<const MAX: usize> {
    owners: [Option<Owner>; MAX],
    entries: usize,
    used: usize,
}

impl<const MAX: usize> IrtAllocator<MAX> {
    /// An allocator for a table of no entries (everything is exhausted until configured).
    pub const fn empty() -> Self {
        Self {
            owners: [None; MAX],
            entries: 0,
            used: 0,
        }
    }

    /// An allocator for a table of `size`.
    pub fn new(size: IrtSize) -> Result<Self, AllocError> {
        let mut this = Self::empty();
        this.configure(size)?;
        Ok(this)
    }

    /// Sizes the table; refused while any index is allocated, or if `size` exceeds `MAX`.
    pub fn configure(&mut self, size: IrtSize) -> Result<(), AllocError> {
        if self.used != 0 {
            return Err(AllocError::InUse(self.used));
        }
        if size.entries() > MAX {
            return Err(AllocError::TableTooLarge {
                entries: size.entries(),
                capacity: MAX,
            });
        }
        self.entries = size.entries();
        Ok(())
    }

    /// Entries in the table.
    pub const fn entries(&self) -> usize {
        self.entries
    }

    /// Allocated entries.
    pub const fn used(&self) -> usize {
        self.used
    }

    /// Who holds `index`, if anyone.
    pub fn owner(&self, index: u16) -> Option<Owner> {
        self.slots().get(usize::from(index)).copied().flatten()
    }

    /// The lowest free index, now held by `owner`.
    pub fn alloc(&mut self, owner: Owner) -> Result<u16, AllocError> {
        self.alloc_block(owner, 1)
    }

    /// `count` consecutive free indices starting at a multiple of `count` (a power of two in
    /// 1..=32), now held by `owner`; returns the first.
    pub fn alloc_block(&mut self, owner: Owner, count: usize) -> Result<u16, AllocError> {
        if !count.is_power_of_two() || count > MAX_BLOCK {
            return Err(AllocError::InvalidBlock { base: 0, count });
        }
        let exhausted = AllocError::Exhausted {
            resource: Resource::IrtIndex,
            count,
        };
        let base = (0..self.entries)
            .step_by(count)
            .find(|&b| {
                self.slots()
                    .get(b..b + count)
                    .is_some_and(|s| s.iter().all(Option::is_none))
            })
            .ok_or(exhausted)?;
        let first = u16::try_from(base).map_err(|_| exhausted)?;
        for slot in self.owners.iter_mut().skip(base).take(count) {
            *slot = Some(owner);
        }
        self.used += count;
        Ok(first)
    }

    /// Gives `index` back; only its owner may, and only once.
    pub fn free(&mut self, index: u16, requester: Owner) -> Result<(), AllocError> {
        self.free_block(index, 1, requester)
    }

    /// Gives a block back: every entry must be held by `requester`, or nothing is freed.
    pub fn free_block(
        &mut self,
        base: u16,
        count: usize,
        requester: Owner,
    ) -> Result<(), AllocError> {
        self.check_block(base, count, requester)?;
        for slot in self.owners.iter_mut().skip(usize::from(base)).take(count) {
            *slot = None;
        }
        self.used -= count;
        Ok(())
    }

    /// `Ok` when `requester` holds `index`.
    pub fn check(&self, index: u16, requester: Owner) -> Result<(), AllocError> {
        self.check_block(index, 1, requester)
    }

    /// `Ok` when `requester` holds all of `base..base + count` (`count` ≥ 1).
    pub fn check_block(&self, base: u16, count: usize, requester: Owner) -> Result<(), AllocError> {
        let start = usize::from(base);
        if count == 0 {
            return Err(AllocError::InvalidBlock {
                base: base.into(),
                count,
            });
        }
        let end = start.saturating_add(count);
        if end > self.entries {
            // The first index outside the table.
            let value = if start >= self.entries {
                base.into()
            } else {
                self.entries as u32
            };
            return Err(AllocError::OutOfRange {
                resource: Resource::IrtIndex,
                value,
            });
        }
        for (i, slot) in self.slots().iter().enumerate().take(end).skip(start) {
            let value = i as u32;
            match *slot {
                None => {
                    return Err(AllocError::NotAllocated {
                        resource: Resource::IrtIndex,
                        value,
                    });
                }
                Some(owner) if owner != requester => {
                    return Err(AllocError::NotOwner {
                        resource: Resource::IrtIndex,
                        value,
                        owner,
                        requester,
                    });
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// The indices `owner` holds, ascending.
    pub fn owned_by(&self, owner: Owner) -> impl Iterator<Item = u16> + '_ {
        self.slots()
            .iter()
            .zip(0..=u16::MAX)
            .filter(move |(slot, _)| **slot == Some(owner))
            .map(|(_, i)| i)
    }

    /// Frees every index `owner` holds (a guest being stopped); returns how many. The caller
    /// clears the IRTEs ([`crate::Irte::NOT_PRESENT`]) and invalidates the interrupt entry cache.
    pub fn release_all(&mut self, owner: Owner) -> usize {
        let mut released = 0;
        let entries = self.entries;
        for slot in self.owners.iter_mut().take(entries) {
            if *slot == Some(owner) {
                *slot = None;
                released += 1;
            }
        }
        self.used -= released;
        released
    }

    fn slots(&self) -> &[Option<Owner>] {
        self.owners.get(..self.entries).unwrap_or(&[])
    }
}
