//! Root and context entries in legacy mode (§3.4.2, §3.4.3; formats in §9.1 "Root Entry" and
//! §9.3 "Context Entry"). Both are 128 bits, given here as (low, high) qwords.
//!
//! Root entry (one per bus): bit 0 P, bits 63:12 CTP (the context table); high qword reserved.
//! Context entry (one per devfn):
//! - low qword: bit 0 P, bit 1 FPD (fault processing disable), bits 3:2 TT (00 = untranslated
//!   requests through the second-level tables), bits 63:12 SLPTPTR;
//! - high qword: bits 2:0 AW (1 = 39-bit 3-level, 2 = 48-bit 4-level), bits 6:3 available to
//!   software, bit 7 reserved, bits 23:8 DID, bits 63:24 reserved.

use crate::caps::context_aw;
use conduit_paging::PagingLevels;

const PRESENT: u64 = 1;
/// Bits 63:12 holding a table address (limited to 52-bit physical addresses).
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// The root entry pointing at the context table `context_table` (4 KiB aligned).
pub const fn root_entry(context_table: u64) -> (u64, u64) {
    ((context_table & ADDR_MASK) | PRESENT, 0)
}

/// What a present context entry says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextEntry {
    /// Domain ID tagging the function's cached translations.
    pub did: u16,
    /// Root of the second-level tables.
    pub slptptr: u64,
    /// Depth of those tables.
    pub levels: PagingLevels,
}

impl ContextEntry {
    /// The entry as (low, high) qwords: present, FPD clear (faults are recorded), TT = 00.
    pub const fn encode(&self) -> (u64, u64) {
        let lo = (self.slptptr & ADDR_MASK) | PRESENT;
        let hi = context_aw(self.levels) | ((self.did as u64) << 8);
        (lo, hi)
    }

    /// The entry in (low, high), if it is present and of a kind [`ContextEntry::encode`] writes
    /// (TT = 00, AW 1 or 2).
    pub const fn decode(lo: u64, hi: u64) -> Option<Self> {
        if lo & PRESENT == 0 || (lo >> 2) & 3 != 0 {
            return None;
        }
        let levels = match hi & 7 {
            1 => PagingLevels::Three,
            2 => PagingLevels::Four,
            _ => return None,
        };
        Some(Self {
            did: (hi >> 8) as u16,
            slptptr: lo & ADDR_MASK,
            levels,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reserved bits of a legacy context entry's high qword, as QEMU 10 checks them
    /// (`VTD_CONTEXT_ENTRY_RSVD_HI`): bit 7 and bits 63:24.
    const RSVD_HI: u64 = 0xffff_ffff_ff00_0080;

    #[test]
    fn context_entry_round_trip_and_layout() {
        let e = ContextEntry {
            did: 0xbeef,
            slptptr: 0x1234_5000,
            levels: PagingLevels::Four,
        };
        let (lo, hi) = e.encode();
        assert_eq!(lo, 0x1234_5001);
        assert_eq!(hi, 0x00be_ef02);
        assert_eq!(hi & RSVD_HI, 0);
        assert_eq!(ContextEntry::decode(lo, hi), Some(e));
        let three = ContextEntry {
            levels: PagingLevels::Three,
            ..e
        };
        assert_eq!(three.encode().1 & 7, 1);
    }

    #[test]
    fn not_present_or_foreign_entries_do_not_decode() {
        assert_eq!(ContextEntry::decode(0x1234_5000, 0x102), None);
        // TT = 10 (pass-through) is not written by Conduit.
        assert_eq!(ContextEntry::decode(0x1234_5009, 0x102), None);
        assert_eq!(ContextEntry::decode(0x1234_5001, 0x103), None);
    }

    #[test]
    fn root_entry_layout() {
        assert_eq!(root_entry(0x7000), (0x7001, 0));
    }
}
