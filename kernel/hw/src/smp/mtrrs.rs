//! The APs' memory type range registers: compared with the BSP's and, where they differ, set to
//! the BSP's (`conduit_smp::mtrr`). All processors of an MP system must use the same MTRR values
//! (Intel SDM Vol. 3A §12.11.8 "MTRR Considerations in MP Systems").

use crate::msr;
use alloc::vec::Vec;
use conduit_smp::mtrr::{self, Mtrr};
use log::{info, warn};
use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};

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

/// Gives this AP the BSP's MTRRs where its own differ (one line per AP that needed it). When
/// this AP has no MTRRs or another IA32_MTRRCAP than the BSP's it is only warned about and
/// nothing is written: the BSP's registers or memory types might not exist here.
pub(super) fn sync(index: usize, apic_id: u32, bsp: &Option<(u64, Vec<(Mtrr, u64)>)>) {
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
             {bsp_cap:#x}; its MTRRs are left as they are"
        );
        return;
    }
    // SAFETY: this CPU's IA32_MTRRCAP equals the BSP's, so it has the same MTRRs.
    let diff = mtrr::compare(bsp_values, |m| unsafe { msr::read(m) });
    let writes = mtrr::copy_writes(bsp_values, &diff);
    if writes.is_empty() {
        return;
    }
    // SAFETY: the same IA32_MTRRCAP means the same MTRRs, variable pairs and memory types as on
    // the BSP, whose values these are (the disabling write only clears E); they are the values
    // the other CPUs use, so memory gets on this CPU the type it has everywhere else.
    unsafe { write_all(&writes) };
    // SAFETY: the BSP's MTRRs exist here (the same IA32_MTRRCAP).
    let left = mtrr::compare(bsp_values, |m| unsafe { msr::read(m) });
    if left.is_empty() {
        info!(
            "cpu {index}: MTRRs set from the BSP's ({} MSRs differed)",
            diff.len()
        );
    }
    for d in left {
        warn!(
            "cpu {index} (APIC ID {apic_id}): MTRR {} (MSR {:#x}) is {:#x} after the copy, the \
             BSP's {:#x}",
            d.mtrr,
            d.mtrr.msr(),
            d.here,
            d.bsp
        );
    }
}

/// Writes MTRRs by the update procedure of SDM Vol. 3A §12.11.8 (also §12.11.7.2 "MemTypeSet
/// Function"), for this CPU alone: interrupts off; CR0.CD = 1, NW = 0 (no-fill cache mode);
/// WBINVD; TLBs flushed (CR4.PGE cleared if set, else a CR3 reload); the writes (the first
/// clears IA32_MTRR_DEF_TYPE.E where `conduit_smp::mtrr::copy_writes` says so); WBINVD and TLBs
/// flushed again; CR0.CD and NW restored; CR4.PGE restored; interrupts restored.
///
/// # Safety
/// Each MSR must exist on this CPU and its value be valid for it.
unsafe fn write_all(writes: &[(Mtrr, u64)]) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let cr0 = Cr0::read_raw();
        let cr4 = Cr4::read_raw();
        let cd = Cr0Flags::CACHE_DISABLE.bits();
        let nw = Cr0Flags::NOT_WRITE_THROUGH.bits();
        // SAFETY: no-fill cache mode only slows this CPU down; memory stays coherent (NW = 0).
        unsafe { Cr0::write_raw((cr0 | cd) & !nw) };
        flush_caches_and_tlbs(cr4);
        for &(m, value) in writes {
            // SAFETY: the caller guarantees the MSR and value; caches are off and flushed, as
            // the procedure requires around an MTRR change.
            unsafe { msr::write(m.msr(), value) };
        }
        flush_caches_and_tlbs(cr4);
        // SAFETY: the CR0 value this CPU had before (caching as it was).
        unsafe { Cr0::write_raw(cr0) };
        // SAFETY: the CR4 value this CPU had before; at most PGE was cleared meanwhile.
        unsafe { Cr4::write_raw(cr4) };
    });
}

/// WBINVD, then every TLB entry of this CPU invalidated, global ones included: with CR4.PGE set
/// (in `cr4`, the value before the procedure) by clearing it, otherwise by reloading CR3 (SDM
/// Vol. 3A §4.10.4.1). PGE stays clear until the caller restores CR4.
fn flush_caches_and_tlbs(cr4: u64) {
    // SAFETY: WBINVD writes back and invalidates this CPU's caches; no program state changes.
    unsafe { core::arch::asm!("wbinvd", options(nostack, preserves_flags)) };
    let pge = Cr4Flags::PAGE_GLOBAL.bits();
    if cr4 & pge != 0 {
        // SAFETY: clearing PGE only invalidates TLB entries (global ones included); the page
        // tables map the same memory.
        unsafe { Cr4::write_raw(cr4 & !pge) };
    } else {
        x86_64::instructions::tlb::flush_all();
    }
}
