//! CR0 and CR4 in VMX operation: bit names and the VMX-fixed bits (SDM Vol. 3D, Appendix A.7
//! "VMX-Fixed Bits in CR0" and A.8 "VMX-Fixed Bits in CR4").
//!
//! A bit set in IA32_VMX_CRn_FIXED0 must be 1; a bit clear in IA32_VMX_CRn_FIXED1 must be 0. This
//! holds for the host while in VMX operation and for the guest's CR0/CR4 fields at VM entry, except
//! that with "unrestricted guest" the guest's CR0.PE and CR0.PG may be 0 (Vol. 3C, "Checks on Guest
//! Control Registers, Debug Registers, and MSRs").

use crate::caps::VmxMsrs;

/// CR0 bits (SDM Vol. 3A, "Control Registers").
pub mod cr0 {
    pub const PE: u64 = 1 << 0;
    pub const MP: u64 = 1 << 1;
    pub const EM: u64 = 1 << 2;
    pub const TS: u64 = 1 << 3;
    pub const ET: u64 = 1 << 4;
    pub const NE: u64 = 1 << 5;
    pub const WP: u64 = 1 << 16;
    pub const AM: u64 = 1 << 18;
    pub const NW: u64 = 1 << 29;
    pub const CD: u64 = 1 << 30;
    pub const PG: u64 = 1 << 31;
}

/// CR4 bits (SDM Vol. 3A, "Control Registers").
pub mod cr4 {
    pub const VME: u64 = 1 << 0;
    pub const PVI: u64 = 1 << 1;
    pub const TSD: u64 = 1 << 2;
    pub const DE: u64 = 1 << 3;
    pub const PSE: u64 = 1 << 4;
    pub const PAE: u64 = 1 << 5;
    pub const MCE: u64 = 1 << 6;
    pub const PGE: u64 = 1 << 7;
    pub const PCE: u64 = 1 << 8;
    pub const OSFXSR: u64 = 1 << 9;
    pub const OSXMMEXCPT: u64 = 1 << 10;
    pub const UMIP: u64 = 1 << 11;
    pub const LA57: u64 = 1 << 12;
    pub const VMXE: u64 = 1 << 13;
    pub const SMXE: u64 = 1 << 14;
    pub const FSGSBASE: u64 = 1 << 16;
    pub const PCIDE: u64 = 1 << 17;
    pub const OSXSAVE: u64 = 1 << 18;
    pub const SMEP: u64 = 1 << 20;
    pub const SMAP: u64 = 1 << 21;
    pub const PKE: u64 = 1 << 22;
    pub const CET: u64 = 1 << 23;
}

/// A pair of VMX-fixed MSRs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedBits {
    /// Bits that must be 1.
    pub fixed0: u64,
    /// Bits that may be 1 (a clear bit must be 0).
    pub fixed1: u64,
}

impl FixedBits {
    /// IA32_VMX_CR0_FIXED0/1.
    pub fn cr0(m: &VmxMsrs) -> Self {
        Self {
            fixed0: m.cr0_fixed0,
            fixed1: m.cr0_fixed1,
        }
    }
    /// IA32_VMX_CR4_FIXED0/1.
    pub fn cr4(m: &VmxMsrs) -> Self {
        Self {
            fixed0: m.cr4_fixed0,
            fixed1: m.cr4_fixed1,
        }
    }
    /// The fixed bits that apply to a guest's CR0: with "unrestricted guest", PE and PG are
    /// exempt from FIXED0.
    pub fn guest_cr0(m: &VmxMsrs, unrestricted_guest: bool) -> Self {
        let mut f = Self::cr0(m);
        if unrestricted_guest {
            f.fixed0 &= !(cr0::PE | cr0::PG);
        }
        f
    }
    /// `value` with the must-be-1 bits set and the must-be-0 bits cleared.
    pub fn apply(self, value: u64) -> u64 {
        (value | self.fixed0) & self.fixed1
    }
    /// Must-be-1 bits that `value` clears.
    pub fn missing_ones(self, value: u64) -> u64 {
        self.fixed0 & !value
    }
    /// Must-be-0 bits that `value` sets.
    pub fn forbidden_ones(self, value: u64) -> u64 {
        value & !self.fixed1
    }
    pub fn allows(self, value: u64) -> bool {
        self.missing_ones(value) == 0 && self.forbidden_ones(value) == 0
    }
    /// Bits with a fixed value: the host must own them in the CR0/CR4 guest/host mask, and
    /// the read shadow supplies what the guest believes they are.
    pub fn fixed_mask(self) -> u64 {
        self.fixed0 | !self.fixed1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::BOCHS_TIGERLAKE;

    #[test]
    fn tigerlake_fixed_bits() {
        let c0 = FixedBits::cr0(&BOCHS_TIGERLAKE);
        assert_eq!(c0.fixed0, cr0::PE | cr0::NE | cr0::PG);
        assert_eq!(c0.apply(0), 0x8000_0021);
        let g = FixedBits::guest_cr0(&BOCHS_TIGERLAKE, true);
        assert_eq!(g.fixed0, cr0::NE);
        assert!(g.allows(cr0::ET | cr0::NE));
        assert!(!c0.allows(cr0::ET | cr0::NE));
        let c4 = FixedBits::cr4(&BOCHS_TIGERLAKE);
        assert_eq!(c4.missing_ones(cr4::PAE), cr4::VMXE);
        assert_eq!(
            c4.forbidden_ones(cr4::PAE | cr4::VMXE | cr4::SMXE),
            cr4::SMXE
        );
        assert_eq!(
            c4.forbidden_ones(cr4::LA57),
            cr4::LA57,
            "tigerlake has no 5-level paging"
        );
        assert_eq!(c4.fixed_mask() & 0xffff_ffff, 0xff08_f000);
    }
}
