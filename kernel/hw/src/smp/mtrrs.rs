//! The APs' memory type range registers, compared with the BSP's (`conduit_smp::mtrr`).

use crate::msr;
use alloc::vec::Vec;
use conduit_smp::mtrr::{self, Mtrr};
use log::warn;

/// This CPU's IA32_MTRRCAP and MTRRs, if CPUID.01H:EDX.MTRR (bit 12) reports them (SDM Vol. 3A
/// §12.11.1).
pub(super) fn read() -> Option<(u64, Vec<(Mtrr, u64)>)> {
    if core::arch::x86_64::__cpuid(1).edx & (1 << 12) == 0 {
        return None;
    }
    // SAFETY: CPUID reports MTRRs, so IA32_MTRRCAP exists.
    let cap = unsafe { msr::read(mtrr::IA32_MTRRCAP) };
    let values = mtrr::registers(cap)
        .into_iter()
        // SAFETY: IA32_MTRRCAP lists these MTRRs as present on this CPU.
        .map(|m| (m, unsafe { msr::read(m.msr()) }))
        .collect();
    Some((cap, values))
}

/// Warns about every MTRR of this AP that differs from the BSP's: all processors must use the
/// same values (SDM Vol. 3A §12.11.8), or memory types differ by CPU.
pub(super) fn check(index: usize, apic_id: u32, bsp: &Option<(u64, Vec<(Mtrr, u64)>)>) {
    let Some((bsp_cap, bsp_values)) = bsp else {
        return;
    };
    let Some((cap, _)) = read() else {
        warn!("cpu {index} (APIC ID {apic_id}): no MTRRs, the BSP has them");
        return;
    };
    if cap != *bsp_cap {
        warn!(
            "cpu {index} (APIC ID {apic_id}): IA32_MTRRCAP {cap:#x} differs from the BSP's \
             {bsp_cap:#x}"
        );
        return;
    }
    // SAFETY: this CPU's IA32_MTRRCAP equals the BSP's, so it has the same MTRRs.
    for d in mtrr::compare(bsp_values, |m| unsafe { msr::read(m) }) {
        warn!(
            "cpu {index} (APIC ID {apic_id}): MTRR {} (MSR {:#x}) is {:#x}, the BSP's {:#x}",
            d.mtrr,
            d.mtrr.msr(),
            d.here,
            d.bsp
        );
    }
}
