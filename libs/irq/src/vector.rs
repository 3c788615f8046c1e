//! Local-APIC vector allocation with owners.
//!
//! Vectors 0x00..=0x1F are the architecture's exceptions (SDM Vol. 3A §6.2) and 0xFF is
//! conventionally the spurious vector, so 0x20..=0xFE are handed out. Vectors are per local
//! APIC: keep one allocator per destination CPU (or one for a shared vector space). The
//! hypervisor's fixed vectors (timer, IPIs, error, ...) are reserved at construction: they are
//! owned by [`Owner::Hypervisor`] for good and can be neither allocated nor freed.

use crate::error::{AllocError, Resource};
use crate::types::Owner;

/// First vector handed out.
pub const FIRST_VECTOR: u8 = 0x20;
/// Last vector handed out.
pub const LAST_VECTOR: u8 = 0xfe;

/// Owners of the 256 vectors of one local APIC.
#[derive(Clone, Debug)]
pub struct VectorAllocator {
    owners: [Option<Owner>; 256],
    reserved: [u64; 4],
}

const fn in_range(vector: u8) -> bool {
    FIRST_VECTOR <= vector && vector <= LAST_VECTOR
}

impl VectorAllocator {
    /// An allocator with `reserved` held by the hypervisor. Every reserved vector must lie in
    /// 0x20..=0xFE (the others are never handed out anyway); duplicates are fine.
    pub fn new(reserved: &[u8]) -> Result<Self, AllocError> {
        let mut this = Self {
            owners: [None; 256],
            reserved: [0; 4],
        };
        for &v in reserved {
            if !in_range(v) {
                return Err(AllocError::OutOfRange {
                    resource: Resource::Vector,
                    value: v.into(),
                });
            }
            this.reserved[usize::from(v / 64)] |= 1 << (v % 64);
            this.owners[usize::from(v)] = Some(Owner::Hypervisor);
        }
        Ok(this)
    }

    /// Whether `vector` was reserved at construction.
    pub const fn is_reserved(&self, vector: u8) -> bool {
        self.reserved[(vector / 64) as usize] & (1 << (vector % 64)) != 0
    }

    /// Who holds `vector`, if anyone (reserved vectors: the hypervisor).
    pub const fn owner(&self, vector: u8) -> Option<Owner> {
        self.owners[vector as usize]
    }

    /// The lowest free vector, now held by `owner`.
    pub fn alloc(&mut self, owner: Owner) -> Result<u8, AllocError> {
        let vector = (FIRST_VECTOR..=LAST_VECTOR)
            .find(|&v| self.owners[usize::from(v)].is_none())
            .ok_or(AllocError::Exhausted {
                resource: Resource::Vector,
                count: 1,
            })?;
        self.owners[usize::from(vector)] = Some(owner);
        Ok(vector)
    }

    /// Takes a specific vector for `owner`.
    pub fn alloc_at(&mut self, vector: u8, owner: Owner) -> Result<(), AllocError> {
        self.usable(vector)?;
        if let Some(holder) = self.owners[usize::from(vector)] {
            return Err(AllocError::AlreadyAllocated {
                resource: Resource::Vector,
                value: vector.into(),
                owner: holder,
            });
        }
        self.owners[usize::from(vector)] = Some(owner);
        Ok(())
    }

    /// Gives `vector` back; only its owner may, and only once.
    pub fn free(&mut self, vector: u8, requester: Owner) -> Result<(), AllocError> {
        self.usable(vector)?;
        self.check(vector, requester)?;
        self.owners[usize::from(vector)] = None;
        Ok(())
    }

    /// `Ok` when `requester` holds `vector` (reserved vectors: the hypervisor does).
    pub fn check(&self, vector: u8, requester: Owner) -> Result<(), AllocError> {
        match self.owners[usize::from(vector)] {
            None => Err(AllocError::NotAllocated {
                resource: Resource::Vector,
                value: vector.into(),
            }),
            Some(owner) if owner != requester => Err(AllocError::NotOwner {
                resource: Resource::Vector,
                value: vector.into(),
                owner,
                requester,
            }),
            Some(_) => Ok(()),
        }
    }

    /// The vectors `owner` holds, ascending (for the hypervisor, reserved ones included).
    pub fn owned_by(&self, owner: Owner) -> impl Iterator<Item = u8> + '_ {
        (0..=u8::MAX).filter(move |&v| self.owners[usize::from(v)] == Some(owner))
    }

    /// Frees every non-reserved vector `owner` holds (a guest being stopped); returns how many.
    pub fn release_all(&mut self, owner: Owner) -> usize {
        let mut released = 0;
        for v in FIRST_VECTOR..=LAST_VECTOR {
            if !self.is_reserved(v) && self.owners[usize::from(v)] == Some(owner) {
                self.owners[usize::from(v)] = None;
                released += 1;
            }
        }
        released
    }

    /// How many vectors are still free.
    pub fn free_count(&self) -> usize {
        (FIRST_VECTOR..=LAST_VECTOR)
            .filter(|&v| self.owners[usize::from(v)].is_none())
            .count()
    }

    fn usable(&self, vector: u8) -> Result<(), AllocError> {
        if !in_range(vector) {
            return Err(AllocError::OutOfRange {
                resource: Resource::Vector,
                value: vector.into(),
            });
        }
        if self.is_reserved(vector) {
            return Err(AllocError::Reserved(vector));
        }
        Ok(())
    }
}
