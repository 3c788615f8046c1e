//! Test-only scenarios, selected by `[test] scenario` in a test configuration.

use crate::memory::Memory;
use conduit_config::TestCase;
use log::{info, warn};
use x86_64::VirtAddr;
use x86_64::registers::control::Cr3;
use x86_64::structures::paging::{OffsetPageTable, PageTable, Translate};

/// Candidate addresses for the deliberate page fault: canonical, far from the kernel and from the
/// loader's mappings. The first that no page table maps is used.
const UNMAPPED_CANDIDATES: [u64; 3] = [
    0x0000_5a5a_0000_0000,
    0x0000_3c3c_0000_0000,
    0x0000_7e00_0000_0000,
];

pub fn run(test: TestCase, mem: &Memory) {
    match test {
        TestCase::PageFault => page_fault(mem),
    }
}

fn page_fault(mem: &Memory) {
    let (frame, _) = Cr3::read();
    let l4_virt = VirtAddr::new(mem.phys_offset() + frame.start_address().as_u64());
    // SAFETY: CR3 names the active level-4 table, reachable through the physical-memory window;
    // it is only read here.
    let l4: &mut PageTable = unsafe { &mut *l4_virt.as_mut_ptr() };
    // SAFETY: all physical memory is mapped at `phys_offset`.
    let tables = unsafe { OffsetPageTable::new(l4, VirtAddr::new(mem.phys_offset())) };
    let Some(addr) = UNMAPPED_CANDIDATES
        .into_iter()
        .find(|a| tables.translate_addr(VirtAddr::new(*a)).is_none())
    else {
        warn!("selftest: every candidate address is mapped; cannot provoke a page fault");
        return;
    };
    info!("selftest: reading unmapped address {addr:#x}: expect #PF");
    // SAFETY: deliberately unsound: the address is unmapped, so this read faults and the #PF
    // handler stops the machine. That is the test.
    let value = unsafe { core::ptr::read_volatile(addr as *const u64) };
    warn!("selftest: read {value:#x} from an unmapped address without a fault");
}
