//! What an allocated vector delivers to, packed into 64 bits so that an interrupt handler reads
//! it with one atomic load and never takes a lock.
//!
//! | bits | field |
//! |---|---|
//! | 63 | bound |
//! | 62 | owner is a guest |
//! | 55:48 | the guest's vCPU it is for |
//! | 47:32 | guest id |
//! | 31 | an IRTE index is present |
//! | 30 | a virtual vector is present |
//! | 23:16 | virtual vector (the guest's own vector, for injection) |
//! | 15:0 | IRTE index |

use crate::types::{GuestId, Owner};

const BOUND: u64 = 1 << 63;
const GUEST: u64 = 1 << 62;
const GUEST_SHIFT: u32 = 32;
const VCPU_SHIFT: u32 = 48;
const HAS_INDEX: u64 = 1 << 31;
const HAS_VIRTUAL: u64 = 1 << 30;
const VIRTUAL_SHIFT: u32 = 16;

/// Where interrupts on one physical vector go.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct Binding {
    /// Who the interrupt is for.
    pub owner: Owner,
    /// The IRTE that produces it (none for local sources such as the tick).
    pub index: Option<u16>,
    /// The guest's vector to inject it as.
    pub virtual_vector: Option<u8>,
    /// The guest's vCPU it is for (the one whose CPU the IRTE aims at; 0 for the hypervisor).
    pub vcpu: u8,
}

impl Binding {
    /// The packed form; never 0 (0 means "unbound").
    pub const fn pack(self) -> u64 {
        let mut raw = BOUND | ((self.vcpu as u64) << VCPU_SHIFT);
        if let Owner::Guest(GuestId(id)) = self.owner {
            raw |= GUEST | ((id as u64) << GUEST_SHIFT);
        }
        if let Some(index) = self.index {
            raw |= HAS_INDEX | index as u64;
        }
        if let Some(v) = self.virtual_vector {
            raw |= HAS_VIRTUAL | ((v as u64) << VIRTUAL_SHIFT);
        }
        raw
    }

    /// Unpacks; `None` when the bound bit is clear.
    pub const fn unpack(raw: u64) -> Option<Self> {
        if raw & BOUND == 0 {
            return None;
        }
        let owner = if raw & GUEST != 0 {
            Owner::Guest(GuestId((raw >> GUEST_SHIFT) as u16))
        } else {
            Owner::Hypervisor
        };
        Some(Self {
            owner,
            index: if raw & HAS_INDEX != 0 {
                Some(raw as u16)
            } else {
                None
            },
            virtual_vector: if raw & HAS_VIRTUAL != 0 {
                Some((raw >> VIRTUAL_SHIFT) as u8)
            } else {
                None
            },
            vcpu: (raw >> VCPU_SHIFT) as u8,
        })
    }
}
