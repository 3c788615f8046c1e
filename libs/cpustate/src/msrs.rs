//! The MSRs each guest has its own copy of, switched by the VMCS MSR areas, and the MSR bitmap
//! that lets the guest access them directly (SDM Vol. 3C §25.6.9, §25.7.2, §25.8.2).

/// The SYSCALL MSRs (SDM Vol. 3A §5.8.8), SWAPGS's KERNEL_GS_BASE and RDTSCP's TSC_AUX
/// (SDM Vol. 4, Table 2-2).
pub const IA32_STAR: u32 = 0xc000_0081;
pub const IA32_LSTAR: u32 = 0xc000_0082;
pub const IA32_CSTAR: u32 = 0xc000_0083;
pub const IA32_FMASK: u32 = 0xc000_0084;
pub const IA32_KERNEL_GS_BASE: u32 = 0xc000_0102;
pub const IA32_TSC_AUX: u32 = 0xc000_0103;
/// IA32_SPEC_CTRL (SDM Vol. 4, Table 2-2): the guest's speculation controls (IBRS, STIBP, SSBD)
/// apply while it runs; the host's return at every exit.
pub const IA32_SPEC_CTRL: u32 = 0x48;
/// SYSENTER's MSRs: guest-state and host-state fields of the VMCS, switched by every VM entry and
/// exit without the MSR areas (SDM Vol. 3C §25.4.1, §25.5).
pub const IA32_SYSENTER_CS: u32 = 0x174;
pub const IA32_SYSENTER_ESP: u32 = 0x175;
pub const IA32_SYSENTER_EIP: u32 = 0x176;

const ALL: [u32; 7] = [
    IA32_STAR,
    IA32_LSTAR,
    IA32_CSTAR,
    IA32_FMASK,
    IA32_KERNEL_GS_BASE,
    IA32_TSC_AUX,
    IA32_SPEC_CTRL,
];
const WITHOUT_TSC_AUX: [u32; 6] = [
    IA32_STAR,
    IA32_LSTAR,
    IA32_CSTAR,
    IA32_FMASK,
    IA32_KERNEL_GS_BASE,
    IA32_SPEC_CTRL,
];

/// The SDM's name of a switched or passed-through MSR (`"?"` for any other).
pub fn name(msr: u32) -> &'static str {
    match msr {
        IA32_STAR => "STAR",
        IA32_LSTAR => "LSTAR",
        IA32_CSTAR => "CSTAR",
        IA32_FMASK => "FMASK",
        IA32_KERNEL_GS_BASE => "KERNEL_GS_BASE",
        IA32_TSC_AUX => "TSC_AUX",
        IA32_SPEC_CTRL => "SPEC_CTRL",
        IA32_SYSENTER_CS => "SYSENTER_CS",
        IA32_SYSENTER_ESP => "SYSENTER_ESP",
        IA32_SYSENTER_EIP => "SYSENTER_EIP",
        _ => "?",
    }
}

/// The MSRs the areas switch. TSC_AUX only where it exists (CPUID.80000001H:EDX.RDTSCP[bit 27]
/// or CPUID.(EAX=07H,ECX=0):ECX.RDPID[bit 22]): loading an MSR that does not exist fails the VM
/// entry or exit.
/// SPEC_CTRL only where it exists (CPUID.(EAX=07H,ECX=0):EDX bit 26 IBRS/IBPB, 27 STIBP or
/// 31 SSBD).
pub fn switched(has_tsc_aux: bool, has_spec_ctrl: bool) -> &'static [u32] {
    match (has_tsc_aux, has_spec_ctrl) {
        (true, true) => &ALL,
        (true, false) => &ALL[..6],
        (false, true) => &WITHOUT_TSC_AUX,
        (false, false) => &ALL[..5],
    }
}

/// The MSRs a guest reads and writes without a VM exit: the switched ones and SYSENTER's.
pub fn passed_through(has_tsc_aux: bool, has_spec_ctrl: bool) -> impl Iterator<Item = u32> {
    switched(has_tsc_aux, has_spec_ctrl).iter().copied().chain([
        IA32_SYSENTER_CS,
        IA32_SYSENTER_ESP,
        IA32_SYSENTER_EIP,
    ])
}

/// One entry of an MSR-load or MSR-store area (SDM Vol. 3C §25.7.2, Table 25-15): 16 bytes, the
/// area 16-byte aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct MsrEntry {
    pub index: u32,
    pub reserved: u32,
    pub value: u64,
}

const _: () = assert!(core::mem::size_of::<MsrEntry>() == 16);

impl MsrEntry {
    pub fn new(index: u32, value: u64) -> Self {
        Self {
            index,
            reserved: 0,
            value,
        }
    }
}

/// An MSR list longer than the CPU takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyMsrs {
    pub count: usize,
    pub max: usize,
}

impl core::fmt::Display for TooManyMsrs {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} MSRs to switch, the CPU takes at most {} per area",
            self.count, self.max
        )
    }
}

/// The most entries an MSR area may have on a CPU whose IA32_VMX_MISC is `misc`:
/// 512 × (N + 1) with N = bits 27:25 (SDM Vol. 3D §A.6).
pub fn max_count(misc: u64) -> usize {
    512 * (((misc >> 25) & 7) as usize + 1)
}

/// Whether `count` entries fit every area on this CPU.
pub fn check_count(count: usize, misc: u64) -> Result<(), TooManyMsrs> {
    let max = max_count(misc);
    if count > max {
        Err(TooManyMsrs { count, max })
    } else {
        Ok(())
    }
}

/// An MSR the bitmap cannot name (outside 0-0x1FFF and 0xC0000000-0xC0001FFF): its accesses
/// always exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotInBitmap(pub u32);

/// The byte and bit of `msr` in the 4-KiB MSR bitmap: read bitmaps for low MSRs at 0, for high
/// MSRs at 1024; write bitmaps at 2048 and 3072 (SDM Vol. 3C §25.6.9).
fn position(msr: u32, write: bool) -> Result<(usize, u8), NotInBitmap> {
    let (base, n) = match msr {
        0..=0x1fff => (0, msr),
        0xc000_0000..=0xc000_1fff => (1024, msr - 0xc000_0000),
        _ => return Err(NotInBitmap(msr)),
    };
    let base = base + if write { 2048 } else { 0 };
    Ok((base + (n / 8) as usize, (n % 8) as u8))
}

/// Clears `msr`'s read and write bits: the guest's RDMSR and WRMSR of it no longer exit.
pub fn pass_through(bitmap: &mut [u8; 4096], msr: u32) -> Result<(), NotInBitmap> {
    for write in [false, true] {
        let (byte, bit) = position(msr, write)?;
        bitmap[byte] &= !(1 << bit);
    }
    Ok(())
}

/// Whether a guest's RDMSR (`write` false) or WRMSR of `msr` exits under `bitmap`.
pub fn intercepts(bitmap: &[u8; 4096], msr: u32, write: bool) -> bool {
    position(msr, write)
        .ok()
        .is_none_or(|(byte, bit)| bitmap[byte] & (1 << bit) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists() {
        assert_eq!(switched(true, false).len(), 6);
        assert_eq!(switched(false, false), &ALL[..5]);
        assert!(!switched(false, false).contains(&IA32_TSC_AUX));
        assert_eq!(switched(true, true).len(), 7);
        assert_eq!(switched(false, true).len(), 6);
        assert!(switched(false, true).contains(&IA32_SPEC_CTRL));
        assert!(!switched(false, true).contains(&IA32_TSC_AUX));
        assert_eq!(passed_through(true, false).count(), 9);
        let names: Vec<_> = passed_through(true, false).map(name).collect();
        assert_eq!(
            names.join(" "),
            "STAR LSTAR CSTAR FMASK KERNEL_GS_BASE TSC_AUX SYSENTER_CS SYSENTER_ESP SYSENTER_EIP"
        );
        assert_eq!(name(0x10), "?");
    }

    #[test]
    fn counts() {
        assert_eq!(max_count(0), 512);
        assert_eq!(max_count(3 << 25), 2048);
        // Bochs' IA32_VMX_MISC.
        assert_eq!(max_count(0x0000_0000_0000_01e5), 512);
        assert_eq!(check_count(6, 0), Ok(()));
        assert_eq!(
            check_count(513, 0),
            Err(TooManyMsrs {
                count: 513,
                max: 512
            })
        );
        assert_eq!(check_count(513, 1 << 25), Ok(()));
    }

    #[test]
    fn bitmap_positions() {
        // LSTAR = high MSR 0x82: byte 1024 + 16, bit 2; write half at 3072 + 16.
        let mut b = [0xffu8; 4096];
        pass_through(&mut b, IA32_LSTAR).unwrap();
        assert_eq!(b[1024 + 16], 0xfb);
        assert_eq!(b[3072 + 16], 0xfb);
        assert_eq!(b.iter().filter(|&&x| x != 0xff).count(), 2);
        // SYSENTER_CS = 0x174: byte 46, bit 4.
        pass_through(&mut b, IA32_SYSENTER_CS).unwrap();
        assert_eq!(b[46], 0xef);
        assert_eq!(b[2048 + 46], 0xef);
        assert!(!intercepts(&b, IA32_LSTAR, false));
        assert!(!intercepts(&b, IA32_LSTAR, true));
        assert!(intercepts(&b, IA32_STAR, false));
        assert!(intercepts(&b, 0x10, true));
    }

    #[test]
    fn outside_the_bitmap() {
        let mut b = [0xffu8; 4096];
        assert_eq!(
            pass_through(&mut b, 0x4000_0000),
            Err(NotInBitmap(0x4000_0000))
        );
        assert!(b.iter().all(|&x| x == 0xff));
        assert!(intercepts(&b, 0x4000_0000, false));
    }

    #[test]
    fn every_passed_through_msr_is_clear_and_nothing_else() {
        let mut b = [0xffu8; 4096];
        for m in passed_through(true, true) {
            pass_through(&mut b, m).unwrap();
        }
        for m in passed_through(true, true) {
            assert!(
                !intercepts(&b, m, false) && !intercepts(&b, m, true),
                "{m:#x}"
            );
        }
        assert_eq!(b.iter().map(|x| x.count_zeros()).sum::<u32>(), 20);
    }
}
