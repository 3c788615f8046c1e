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

/// Why a guest's MOV to CR0 or CR4 raises #GP(0) (SDM Vol. 3A §2.5, Vol. 2B "MOV—Move to/from
/// Control Registers").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrWriteError {
    /// Bits 63:32 set.
    Reserved,
    /// PG without PE.
    PagingWithoutProtection,
    /// NW without CD.
    NotWriteThroughWithoutCacheDisable,
    /// PG with EFER.LME but without CR4.PAE.
    LongModeWithoutPae,
    /// PG cleared while executing 64-bit code (long mode is left from compatibility mode only).
    LeavingLongModeFrom64BitCode,
    /// A CR4 bit the processor does not allow (or VMXE, which the guest does not have).
    Cr4BitNotAllowed(u64),
    /// CR4.PAE cleared in long mode.
    PaeClearedInLongMode,
}

/// What a guest's emulated MOV to CR0 leaves behind: the CR0 the processor runs with (the
/// fixed bits forced), the read shadow (what the guest wrote), and whether the guest is now in
/// IA-32e mode (EFER.LMA, which the VM-entry control "IA-32e mode guest" must equal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cr0Write {
    pub actual: u64,
    pub shadow: u64,
    pub long_mode: bool,
}

/// A guest's MOV to CR0 of `value` (SDM Vol. 3A §2.5, §9.8.5 "Initializing IA-32e Mode"): the
/// checks the processor makes, and the IA-32e mode transition when paging is turned on with
/// EFER.LME set or off in long mode. `old_shadow`: CR0 as the guest last wrote it; `efer`: the
/// guest's IA32_EFER; `code64`: CS.L is set (64-bit code); `cr4_pae`: the guest's CR4.PAE.
pub fn guest_cr0_write(
    fixed: FixedBits,
    old_shadow: u64,
    value: u64,
    efer: u64,
    code64: bool,
    cr4_pae: bool,
) -> Result<Cr0Write, CrWriteError> {
    const LME: u64 = 1 << 8;
    const LMA: u64 = 1 << 10;
    if value >> 32 != 0 {
        return Err(CrWriteError::Reserved);
    }
    if value & cr0::PG != 0 && value & cr0::PE == 0 {
        return Err(CrWriteError::PagingWithoutProtection);
    }
    if value & cr0::NW != 0 && value & cr0::CD == 0 {
        return Err(CrWriteError::NotWriteThroughWithoutCacheDisable);
    }
    let was_paging = old_shadow & cr0::PG != 0;
    let paging = value & cr0::PG != 0;
    let mut long_mode = efer & LMA != 0;
    if paging && !was_paging && efer & LME != 0 {
        if !cr4_pae {
            return Err(CrWriteError::LongModeWithoutPae);
        }
        long_mode = true;
    }
    if !paging && was_paging && long_mode {
        if code64 {
            return Err(CrWriteError::LeavingLongModeFrom64BitCode);
        }
        long_mode = false;
    }
    Ok(Cr0Write {
        actual: fixed.apply(value),
        shadow: value,
        long_mode,
    })
}

/// CR4 bits a guest may not set because the features behind them are not offered (their
/// CPUID bits are clear): VMXE and SMXE (no VMX or SMX), LA57 (no 5-level paging), PKE (PKRU is
/// not among the XSAVE components guests get, so it would not be switched), CET. The hypervisor
/// owns them in the CR4 guest/host mask, so setting one exits and gets #GP.
pub const GUEST_CR4_REFUSED: u64 = cr4::VMXE | cr4::SMXE | cr4::LA57 | cr4::PKE | cr4::CET;

/// A guest's MOV to CR4 of `value`: refused where the processor does not allow a bit (`fixed`'s
/// FIXED1), where the guest sets a bit of [`GUEST_CR4_REFUSED`], or where it clears PAE in long
/// mode; else the CR4 to run with (the fixed bits forced) and the read shadow.
pub fn guest_cr4_write(
    fixed: FixedBits,
    value: u64,
    long_mode: bool,
) -> Result<(u64, u64), CrWriteError> {
    let bad = fixed.forbidden_ones(value) | (value & GUEST_CR4_REFUSED);
    if bad != 0 {
        return Err(CrWriteError::Cr4BitNotAllowed(bad));
    }
    if long_mode && value & cr4::PAE == 0 {
        return Err(CrWriteError::PaeClearedInLongMode);
    }
    Ok((fixed.apply(value), value))
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

    const LME: u64 = 1 << 8;
    const LMA: u64 = 1 << 10;

    #[test]
    fn cr0_write_keeps_fixed_bits_and_tracks_long_mode() {
        let f = FixedBits::guest_cr0(&BOCHS_TIGERLAKE, true);
        let linux = cr0::PE | cr0::MP | cr0::ET | cr0::NE | cr0::WP | cr0::AM | cr0::PG;
        // Linux's real-mode reboot: from compatibility code, PE|ET kept, CD|NW set, NE and PG
        // cleared: long mode ends, NE stays 1 underneath, the guest reads back what it wrote.
        let v = cr0::PE | cr0::ET | cr0::CD | cr0::NW;
        let w = guest_cr0_write(f, linux, v, LME | LMA, false, true).unwrap();
        assert_eq!(w.shadow, v);
        assert_eq!(w.actual, v | cr0::NE);
        assert!(!w.long_mode);
        // Then PE off: real mode (unrestricted guest).
        let w = guest_cr0_write(f, v, cr0::ET, LME, false, true).unwrap();
        assert_eq!(w.actual, cr0::ET | cr0::NE);
        // Paging on with LME and PAE enters long mode.
        let w = guest_cr0_write(f, cr0::PE, cr0::PE | cr0::PG, LME, false, true).unwrap();
        assert!(w.long_mode);
    }

    #[test]
    fn cr0_write_refusals() {
        let f = FixedBits::guest_cr0(&BOCHS_TIGERLAKE, true);
        let on = cr0::PE | cr0::PG | cr0::NE;
        assert_eq!(
            guest_cr0_write(f, on, on | (1 << 32), LME | LMA, true, true),
            Err(CrWriteError::Reserved)
        );
        assert_eq!(
            guest_cr0_write(f, 0, cr0::PG, 0, false, false),
            Err(CrWriteError::PagingWithoutProtection)
        );
        assert_eq!(
            guest_cr0_write(f, on, on | cr0::NW, LME | LMA, true, true),
            Err(CrWriteError::NotWriteThroughWithoutCacheDisable)
        );
        assert_eq!(
            guest_cr0_write(f, cr0::PE, cr0::PE | cr0::PG, LME, false, false),
            Err(CrWriteError::LongModeWithoutPae)
        );
        assert_eq!(
            guest_cr0_write(f, on, cr0::PE, LME | LMA, true, true),
            Err(CrWriteError::LeavingLongModeFrom64BitCode)
        );
    }

    #[test]
    fn cr4_write() {
        let f = FixedBits::cr4(&BOCHS_TIGERLAKE);
        assert_eq!(
            guest_cr4_write(f, cr4::PAE | cr4::PGE, true),
            Ok((cr4::PAE | cr4::PGE | cr4::VMXE, cr4::PAE | cr4::PGE))
        );
        assert_eq!(
            guest_cr4_write(f, cr4::PAE | cr4::VMXE, true),
            Err(CrWriteError::Cr4BitNotAllowed(cr4::VMXE))
        );
        assert_eq!(
            guest_cr4_write(f, cr4::PAE | cr4::LA57, true),
            Err(CrWriteError::Cr4BitNotAllowed(cr4::LA57))
        );
        assert_eq!(
            guest_cr4_write(f, cr4::PAE | cr4::PKE, true),
            Err(CrWriteError::Cr4BitNotAllowed(cr4::PKE))
        );
        assert_eq!(
            guest_cr4_write(f, cr4::PGE, true),
            Err(CrWriteError::PaeClearedInLongMode)
        );
    }
}
