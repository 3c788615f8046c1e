//! The memory type range registers every processor must agree on (Intel SDM Vol. 3A §12.11.8,
//! "MTRR Considerations in MP Systems": all processors use the same MTRR values). Which MSRs
//! there are follows IA32_MTRRCAP (§12.11.1): VCNT variable pairs (bits 7:0) and the fixed-range
//! registers when FIX (bit 8) is set; IA32_MTRR_DEF_TYPE always (§12.11.2.1).

use alloc::vec::Vec;

/// IA32_MTRRCAP.
pub const IA32_MTRRCAP: u32 = 0xfe;
const DEF_TYPE: u32 = 0x2ff;
const PHYS_BASE0: u32 = 0x200;
/// The fixed-range MTRRs (§12.11.2.2): address and the name's range part.
const FIXED: [(u32, &str); 11] = [
    (0x250, "FIX64K_00000"),
    (0x258, "FIX16K_80000"),
    (0x259, "FIX16K_A0000"),
    (0x268, "FIX4K_C0000"),
    (0x269, "FIX4K_C8000"),
    (0x26a, "FIX4K_D0000"),
    (0x26b, "FIX4K_D8000"),
    (0x26c, "FIX4K_E0000"),
    (0x26d, "FIX4K_E8000"),
    (0x26e, "FIX4K_F0000"),
    (0x26f, "FIX4K_F8000"),
];

/// One MTRR, by its architectural name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mtrr {
    DefType,
    Fixed(u32, &'static str),
    PhysBase(u32),
    PhysMask(u32),
}

impl Mtrr {
    /// Its MSR address.
    pub fn msr(self) -> u32 {
        match self {
            Self::DefType => DEF_TYPE,
            Self::Fixed(msr, _) => msr,
            Self::PhysBase(n) => PHYS_BASE0 + 2 * n,
            Self::PhysMask(n) => PHYS_BASE0 + 2 * n + 1,
        }
    }
}

impl core::fmt::Display for Mtrr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::DefType => f.write_str("IA32_MTRR_DEF_TYPE"),
            Self::Fixed(_, range) => write!(f, "IA32_MTRR_{range}"),
            Self::PhysBase(n) => write!(f, "IA32_MTRR_PHYSBASE{n}"),
            Self::PhysMask(n) => write!(f, "IA32_MTRR_PHYSMASK{n}"),
        }
    }
}

/// The MTRRs a processor with this IA32_MTRRCAP value has.
pub fn registers(mtrrcap: u64) -> Vec<Mtrr> {
    let mut out = alloc::vec![Mtrr::DefType];
    if mtrrcap & (1 << 8) != 0 {
        out.extend(FIXED.iter().map(|&(msr, name)| Mtrr::Fixed(msr, name)));
    }
    for n in 0..(mtrrcap & 0xff) as u32 {
        out.push(Mtrr::PhysBase(n));
        out.push(Mtrr::PhysMask(n));
    }
    out
}

/// One register whose value on a processor differs from the BSP's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mismatch {
    pub mtrr: Mtrr,
    pub bsp: u64,
    pub here: u64,
}

/// Compares `bsp` (the BSP's registers of [`registers`] and their values) with this
/// processor's, read by `read(msr)`; one [`Mismatch`] per register that differs, in order.
pub fn compare(bsp: &[(Mtrr, u64)], mut read: impl FnMut(u32) -> u64) -> Vec<Mismatch> {
    bsp.iter()
        .filter_map(|&(mtrr, bsp)| {
            let here = read(mtrr.msr());
            (here != bsp).then_some(Mismatch { mtrr, bsp, here })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_follow_mtrrcap() {
        assert_eq!(registers(0), [Mtrr::DefType], "no FIX, no variable pair");
        let r = registers(0x100 | 2);
        assert_eq!(r.len(), 1 + 11 + 4);
        assert_eq!(r[1].msr(), 0x250);
        assert_eq!(r[11].msr(), 0x26f);
        assert_eq!(r[12], Mtrr::PhysBase(0));
        assert_eq!((r[12].msr(), r[13].msr()), (0x200, 0x201));
        assert_eq!((r[14].msr(), r[15].msr()), (0x202, 0x203));
        let r = registers(8);
        assert_eq!(r.len(), 1 + 16, "variable pairs only");
        assert_eq!(r[16].msr(), 0x20f);
    }

    #[test]
    fn names() {
        assert_eq!(alloc::format!("{}", Mtrr::DefType), "IA32_MTRR_DEF_TYPE");
        assert_eq!(
            alloc::format!("{}", Mtrr::Fixed(0x259, "FIX16K_A0000")),
            "IA32_MTRR_FIX16K_A0000"
        );
        assert_eq!(
            alloc::format!("{}", Mtrr::PhysMask(3)),
            "IA32_MTRR_PHYSMASK3"
        );
    }

    #[test]
    fn compare_reports_each_difference() {
        let bsp: Vec<(Mtrr, u64)> = registers(0x101)
            .into_iter()
            .map(|m| (m, u64::from(m.msr()) * 3))
            .collect();
        assert!(compare(&bsp, |msr| u64::from(msr) * 3).is_empty());
        let diff = compare(&bsp, |msr| match msr {
            0x2ff => 0xc06,
            0x201 => 0,
            m => u64::from(m) * 3,
        });
        assert_eq!(
            diff,
            [
                Mismatch {
                    mtrr: Mtrr::DefType,
                    bsp: 0x2ff * 3,
                    here: 0xc06
                },
                Mismatch {
                    mtrr: Mtrr::PhysMask(0),
                    bsp: 0x201 * 3,
                    here: 0
                },
            ]
        );
    }
}
