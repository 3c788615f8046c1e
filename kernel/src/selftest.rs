//! Test-only scenarios, selected by `[test] scenario` in a test configuration. Built only into
//! the test image (feature `selftest`); the production image refuses such a configuration at
//! boot (`crate::config`).

mod clock_stopped;
mod control;
mod control_blame;
mod control_msi;
mod dmar_corrupt;
mod edu;
mod guest_driver;
mod igb_mailbox;
mod igb_net;
mod igb_ring;
mod igb_vf;
mod intremap;
mod intremap_checks;
mod intx;
mod nvme_io;
mod nvme_vf;
mod placement;
mod placement_span;
pub mod smp;
mod vtd_edu;

use conduit_config::TestCase;
use conduit_hw::memory::Memory;
use conduit_hw::power::{self, FailCode};
use log::{error, info, warn};
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

pub fn run(test: TestCase, mem: &'static Memory, vmx: bool) {
    let (name, result) = match test {
        TestCase::PageFault => return page_fault(mem),
        TestCase::VtdEdu => ("vtd-edu", vtd_edu::run(mem, vmx)),
        TestCase::VtdEduRegisterInvalidation => ("vtd-edu-reginv", vtd_edu::run(mem, vmx)),
        TestCase::DmarCorrupt => ("dmar-corrupt", dmar_corrupt::run(mem)),
        TestCase::Intremap => ("intremap", intremap::run(mem)),
        TestCase::ClockStopped => ("clock-stopped", clock_stopped::check()),
        TestCase::Smp | TestCase::SmpGhost => ("smp", smp::run(mem)),
        // These run once the guests are placed: see `after_guests`.
        TestCase::NvmeVf
        | TestCase::NvmeVfBad
        | TestCase::NvmeVfIo
        | TestCase::Control
        | TestCase::IgbVf
        | TestCase::IgbNet
        | TestCase::IgbMailbox
        | TestCase::Intx
        | TestCase::Placement => return,
    };
    report(name, result);
}

/// The self-tests that need the configured guests placed (memory, domains, devices, and their
/// functions in the control task); `guests` are the ones placed without a vCPU (no VMX), whose
/// drivers the self-tests play.
pub fn after_guests(test: TestCase, mem: &'static Memory, guests: &mut [crate::guest::Guest]) {
    let (name, result) = match test {
        TestCase::NvmeVf => ("nvme-vf", nvme_vf::run(mem, guests)),
        TestCase::NvmeVfBad => ("nvme-vf-bad", nvme_vf::run_bad()),
        TestCase::NvmeVfIo => ("nvme-vf-io", nvme_io::run(mem, guests)),
        TestCase::Control => ("control", control::run(mem, guests)),
        TestCase::IgbVf => ("igb-vf", igb_vf::run(mem, guests)),
        TestCase::IgbNet => ("igb-net", igb_net::run(mem, guests)),
        TestCase::IgbMailbox => ("igb-mailbox", igb_mailbox::run(mem, guests)),
        TestCase::Intx => ("intx", intx::run(mem, guests)),
        TestCase::Smp | TestCase::SmpGhost if smp::any_vmx() => ("smp-vmx", smp::after_guests(mem)),
        TestCase::Placement => ("placement", placement::run(mem, guests)),
        _ => return,
    };
    report(name, result);
    // The scenarios of VFs at work for guests end with what each guest got and caused.
    if matches!(
        test,
        TestCase::NvmeVf | TestCase::NvmeVfIo | TestCase::IgbVf | TestCase::IgbNet | TestCase::Intx
    ) {
        crate::guest::report::log_counters();
    }
}

fn report(name: &str, result: Result<usize, alloc::string::String>) {
    match result {
        Ok(steps) => info!("selftest: {name}: PASS ({steps} steps)"),
        Err(why) => {
            error!("selftest: {name}: FAIL: {why}");
            power::fail(FailCode::SelfTest);
        }
    }
}

/// Enumerates PCI as the scenario wants it: with the clock frozen for `clock-stopped`.
pub fn pci_init(
    platform: &crate::platform::Platform,
    mem: &Memory,
    wanted: &[crate::pci::sriov::Wanted],
    test: Option<TestCase>,
) {
    if test == Some(TestCase::ClockStopped) {
        clock_stopped::pci_init(platform, mem, wanted);
    } else {
        crate::pci::init(platform, mem, wanted);
    }
}

/// Brings the IOMMU up as the scenario wants it: from a corrupted copy of the DMAR for
/// `dmar-corrupt`, with register-based invalidation forced for `vtd-edu-reginv`, else as the
/// production image does.
pub fn iommu_init(mem: &'static Memory, test: Option<TestCase>, dmar: Option<&'static [u8]>) {
    let dmar = dmar_corrupt::dmar_for_boot(test, dmar);
    if test == Some(TestCase::VtdEduRegisterInvalidation) {
        crate::iommu::init_with_register_invalidation(mem, dmar.as_deref());
    } else {
        crate::iommu::init(mem, dmar.as_deref());
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
