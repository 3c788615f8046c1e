//! The memory type range registers every processor must agree on (Intel SDM Vol. 3A §12.11.8,
//! "MTRR Considerations in MP Systems": all processors use the same MTRR values). Which MSRs
//! there are follows IA32_MTRRCAP (§12.11.1): VCNT variable pairs (bits 7:0) and the fixed-range
//! registers when FIX (bit 8) is set; IA32_MTRR_DEF_TYPE always (§12.11.2.1). A processor whose
//! values differ takes the BSP's: [`copy_writes`] lists the writes, in the order of the MTRR
//! update procedure (§12.11.8 steps 8-10, also §12.11.7.2 "MemTypeSet Function").

use alloc::vec::Vec;

/// IA32_MTRRCAP.
pub const IA32_MTRRCAP: u32 = 0xfe;
const DEF_TYPE: u32 = 0x2ff;
/// IA32_MTRR_DEF_TYPE.E (bit 11): MTRRs enabled; clear, all memory is uncacheable (§12.11.2.1).
const DEF_TYPE_E: u64 = 1 << 11;
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

/// The MSR writes that give a processor the BSP's MTRRs, from the BSP's registers and values
/// (`bsp`, as for [`compare`]) and the processor's differences from them (`diff`, [`compare`]'s
/// result). In order (§12.11.8 steps 8-10): IA32_MTRR_DEF_TYPE with E cleared (the ranges
/// disabled) unless it is clear already, each differing fixed or variable MTRR with the BSP's
/// value, then the BSP's IA32_MTRR_DEF_TYPE unless the register holds it already. Empty when
/// nothing differs. The caller runs them with caches disabled and flushed (steps 2-7 and
/// 11-15).
pub fn copy_writes(bsp: &[(Mtrr, u64)], diff: &[Mismatch]) -> Vec<(Mtrr, u64)> {
    let Some(bsp_def) = bsp
        .iter()
        .find(|(m, _)| *m == Mtrr::DefType)
        .map(|&(_, v)| v)
    else {
        return Vec::new();
    };
    if diff.is_empty() {
        return Vec::new();
    }
    let mut def = diff
        .iter()
        .find(|d| d.mtrr == Mtrr::DefType)
        .map_or(bsp_def, |d| d.here);
    let mut out = Vec::with_capacity(diff.len() + 2);
    if def & DEF_TYPE_E != 0 {
        def &= !DEF_TYPE_E;
        out.push((Mtrr::DefType, def));
    }
    out.extend(
        diff.iter()
            .filter(|d| d.mtrr != Mtrr::DefType)
            .map(|d| (d.mtrr, d.bsp)),
    );
    if def != bsp_def {
        out.push((Mtrr::DefType, bsp_def));
    }
    out
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

    /// The BSP's registers (FIX and two variable pairs) with QEMU/OVMF-like values: MTRRs and
    /// fixed ranges enabled, default UC; the fixed ranges WB below 640 KiB, one variable range.
    fn ovmf_like() -> Vec<(Mtrr, u64)> {
        registers(0x100 | 2)
            .into_iter()
            .map(|m| {
                let v = match m.msr() {
                    0x2ff => 0xc00,
                    0x250 | 0x258 => 0x0606_0606_0606_0606,
                    0x200 => 0x8000_0000,
                    0x201 => 0xf_8000_0800,
                    _ => 0,
                };
                (m, v)
            })
            .collect()
    }

    fn value(bsp: &[(Mtrr, u64)], msr: u32) -> u64 {
        bsp.iter().find(|(m, _)| m.msr() == msr).map_or(0, |p| p.1)
    }

    #[test]
    fn copy_from_reset_values() {
        // An AP after INIT-SIPI-SIPI as QEMU leaves it: every MTRR 0 (E clear: no disabling write).
        let bsp = ovmf_like();
        let diff = compare(&bsp, |_| 0);
        assert_eq!(diff.len(), 5);
        let writes = copy_writes(&bsp, &diff);
        let msrs: Vec<(u32, u64)> = writes.iter().map(|&(m, v)| (m.msr(), v)).collect();
        assert_eq!(
            msrs,
            [
                (0x250, 0x0606_0606_0606_0606),
                (0x258, 0x0606_0606_0606_0606),
                (0x200, 0x8000_0000),
                (0x201, 0xf_8000_0800),
                (0x2ff, 0xc00),
            ]
        );
        // Applied to the AP, nothing differs any more.
        let mut ap = alloc::collections::BTreeMap::new();
        for (m, v) in writes {
            ap.insert(m.msr(), v);
        }
        assert!(compare(&bsp, |msr| ap.get(&msr).copied().unwrap_or(0)).is_empty());
    }

    #[test]
    fn copy_disables_enabled_mtrrs_first() {
        let bsp = ovmf_like();
        // Enabled with another default type (WB) and one wrong variable mask.
        let diff = compare(&bsp, |msr| match msr {
            0x2ff => 0xc06,
            0x201 => 0xf_c000_0800,
            m => value(&bsp, m),
        });
        assert_eq!(
            copy_writes(&bsp, &diff),
            [
                (Mtrr::DefType, 0x406),
                (Mtrr::PhysMask(0), 0xf_8000_0800),
                (Mtrr::DefType, 0xc00),
            ]
        );
        // Same IA32_MTRR_DEF_TYPE, enabled: disabled around the range write, re-enabled after.
        let diff = compare(&bsp, |msr| match msr {
            0x258 => 0,
            m => value(&bsp, m),
        });
        assert_eq!(
            copy_writes(&bsp, &diff),
            [
                (Mtrr::DefType, 0x400),
                (Mtrr::Fixed(0x258, "FIX16K_80000"), 0x0606_0606_0606_0606),
                (Mtrr::DefType, 0xc00),
            ]
        );
    }

    #[test]
    fn copy_with_mtrrs_disabled_everywhere() {
        // E clear on both: the ranges are written without touching IA32_MTRR_DEF_TYPE.
        let bsp: Vec<(Mtrr, u64)> = registers(1)
            .into_iter()
            .map(|m| (m, if m == Mtrr::PhysBase(0) { 6 } else { 0 }))
            .collect();
        let diff = compare(&bsp, |_| 0);
        assert_eq!(copy_writes(&bsp, &diff), [(Mtrr::PhysBase(0), 6)]);
        // Only IA32_MTRR_DEF_TYPE differs, disabled here: one write.
        let diff = compare(
            &bsp,
            |msr| if msr == 0x2ff { 0x6 } else { value(&bsp, msr) },
        );
        assert_eq!(copy_writes(&bsp, &diff), [(Mtrr::DefType, 0)]);
    }

    #[test]
    fn nothing_to_copy() {
        let bsp = ovmf_like();
        assert!(copy_writes(&bsp, &compare(&bsp, |m| value(&bsp, m))).is_empty());
        assert!(copy_writes(&[], &[]).is_empty(), "no BSP snapshot");
    }
}
