//! `[test] scenario = "vtd-edu"`: DMA remapping proven with real DMA.
//!
//! Two DMA-test guests, A and B, get 16 MiB of memory each (at guest-physical 0x4000000, so that
//! the host-physical addresses of B's memory and of the hypervisor's tables lie outside A's IOVA
//! window and inside the edu's 28-bit DMA reach) and an IOMMU domain each. QEMU's edu device is
//! the DMA master. The script: DMA before assignment (blocked, no context entry); assignment to A
//! and a 4 KiB pattern round trip through A's memory; writes aimed at B's memory and at the
//! hypervisor's root table, and a read of the root table (all blocked); unmap, DMA (blocked),
//! map again, DMA (arrives): the invalidations are right; unassignment (blocked again). Every
//! blocked DMA must leave exactly one decoded fault record and change no byte (checksums).

use super::edu::{self, Direction, Edu};
use crate::iommu::{self, DomainId, GuestMemory};
use crate::pci::{self, DeviceRef};
use alloc::string::String;
use alloc::vec::Vec;
use conduit_hw::memory::{Memory, PhysAddr, PhysWindow};
use conduit_hw::vtd::fault::Fault;
use conduit_hw::{apic, rdtsc};
use conduit_pci::Bdf;
use conduit_pci::config::command;
use log::info;

/// Memory of each DMA-test guest.
const GUEST_BYTES: u64 = 16 << 20;
/// Guest-physical (= IOVA) base of each guest's memory.
const GUEST_GPA: u64 = 0x0400_0000;
/// The pattern's page and the page it is copied to, inside guest A.
const SRC: u64 = GUEST_GPA + 0x10_0000;
const DST: u64 = GUEST_GPA + 0x20_0000;
const PAGE: u64 = 4096;

/// Fault reasons (VT-d spec, Appendix A).
const NO_CONTEXT: u8 = 0x02;
const NO_WRITE: u8 = 0x05;
const NO_READ: u8 = 0x06;

struct Guest {
    name: &'static str,
    hpa: u64,
    domain: DomainId,
}

struct Test<'a> {
    window: PhysWindow,
    edu: &'a Edu,
}

/// FNV-1a (64-bit) over the little-endian 64-bit words of `[hpa, hpa + len)`.
pub(super) fn checksum(window: &PhysWindow, hpa: u64, len: u64) -> u64 {
    let base = window.virt(hpa).cast::<u64>();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for i in 0..(len / 8) as usize {
        // SAFETY: the range is RAM (guest memory or a hypervisor table) mapped through the
        // window; read volatile because a device may have written it.
        let w = unsafe { core::ptr::read_volatile(base.add(i)) };
        h = (h ^ w).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn fill(window: &PhysWindow, hpa: u64, len: u64, byte: u8) {
    // SAFETY: the range is guest memory owned by this test, mapped through the window.
    unsafe { core::ptr::write_bytes(window.virt(hpa), byte, len as usize) };
}

/// A deterministic 4 KiB pattern (xorshift64) written at `hpa`.
fn write_pattern(window: &PhysWindow, hpa: u64) {
    let base = window.virt(hpa).cast::<u64>();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for i in 0..(PAGE / 8) as usize {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // SAFETY: `hpa` is a page of guest A's memory, owned by this test.
        unsafe { core::ptr::write_volatile(base.add(i), x) };
    }
}

impl Test<'_> {
    /// Runs one edu transfer of a page with interrupts enabled (so that the fault event
    /// interrupt can arrive), then returns the faults it left.
    fn dma(&self, direction: Direction, iova: u64) -> Result<Vec<Fault>, String> {
        let irq = apic::ready();
        if irq {
            x86_64::instructions::interrupts::enable();
        }
        let result = self.edu.dma(direction, iova, PAGE);
        if irq {
            // Give an interrupt raised at the very end of the transfer time to arrive.
            let start = rdtsc();
            while rdtsc().wrapping_sub(start) < 1 << 24 {
                core::hint::spin_loop();
            }
            x86_64::instructions::interrupts::disable();
        }
        result.map_err(|e| alloc::format!("edu DMA at IOVA {iova:#x}: {e}"))?;
        Ok(iommu::service_faults())
    }

    fn checksum(&self, hpa: u64, len: u64) -> u64 {
        checksum(&self.window, hpa, len)
    }

    /// A DMA that must be blocked with exactly one fault record: source edu, the IOVA's page,
    /// the direction and `reason`.
    fn blocked(&self, direction: Direction, iova: u64, reason: u8) -> Result<(), String> {
        let faults = self.dma(direction, iova)?;
        let write = direction == Direction::ToRam;
        let matches = |f: &Fault| {
            f.source == self.edu.bdf && f.address == iova && f.write == write && f.reason == reason
        };
        match faults.as_slice() {
            [f] if matches(f) => Ok(()),
            [] => Err(alloc::format!(
                "DMA {} IOVA {iova:#x} was not blocked: no fault recorded",
                if write { "to" } else { "from" }
            )),
            other => Err(alloc::format!(
                "DMA {} IOVA {iova:#x}: expected one fault (source {}, reason {reason:#04x}), \
                 found {other:?}",
                if write { "to" } else { "from" },
                self.edu.bdf
            )),
        }
    }

    /// A DMA that must go through without any fault.
    fn allowed(&self, direction: Direction, iova: u64) -> Result<(), String> {
        let faults = self.dma(direction, iova)?;
        if faults.is_empty() {
            Ok(())
        } else {
            Err(alloc::format!("DMA at IOVA {iova:#x} faulted: {faults:?}"))
        }
    }
}

fn unchanged(what: &str, before: u64, after: u64) -> Result<(), String> {
    if before == after {
        Ok(())
    } else {
        Err(alloc::format!(
            "{what} changed: checksum {before:#018x} before, {after:#018x} after"
        ))
    }
}

fn allocate_guest(mem: &Memory, name: &'static str) -> Result<(u64, GuestMemory), String> {
    let frames = (GUEST_BYTES / PAGE) as usize;
    let hpa = mem
        .frames
        .lock()
        .allocate_contiguous(frames, 512)
        .ok_or_else(|| alloc::format!("no 16 MiB of memory for guest {name}"))?
        .0;
    Ok((
        hpa,
        GuestMemory {
            gpa: GUEST_GPA,
            hpa,
            len: GUEST_BYTES,
        },
    ))
}

/// An IOVA outside guest A's window and inside edu's reach, aimed at host-physical `hpa`.
fn outside_a(what: &str, hpa: u64) -> Result<u64, String> {
    let inside_a = (GUEST_GPA..GUEST_GPA + GUEST_BYTES).contains(&hpa);
    if inside_a || hpa + PAGE > edu::DMA_LIMIT {
        return Err(alloc::format!(
            "{what} at HPA {hpa:#x} is not usable as a target (inside guest A's IOVA window or \
             beyond edu's 28-bit reach)"
        ));
    }
    Ok(hpa)
}

/// Runs the script; returns the number of steps passed.
pub fn run(mem: &'static Memory, vmx: bool) -> Result<usize, String> {
    iommu::status().map_err(|why| alloc::format!("DMA remapping is not enabled: {why}"))?;
    let pci = pci::get().ok_or("no PCI enumeration")?;
    let edu_ref = DeviceRef::Id {
        vendor: edu::VENDOR,
        device: edu::DEVICE,
    };
    let f = pci
        .resolve(edu_ref)
        .ok_or_else(|| alloc::format!("no {edu_ref} (edu) device on this machine"))?;
    let edu = Edu::open(mem, f)?;
    pci::enable_command_bits(edu.bdf, command::MEMORY_SPACE | command::BUS_MASTER)
        .ok_or("cannot write edu's Command register")?;
    info!(
        "selftest: vtd-edu: edu {} ({edu_ref}): BAR0 {:#x} (1 MiB), id {:#010x}; memory space \
         and bus mastering enabled",
        edu.bdf,
        edu.bar(),
        edu::ID
    );
    let window = PhysWindow::new(mem, true);
    let (a_hpa, a_mem) = allocate_guest(mem, "A")?;
    let (b_hpa, b_mem) = allocate_guest(mem, "B")?;
    fill(&window, a_hpa, GUEST_BYTES, 0xa5);
    fill(&window, b_hpa, GUEST_BYTES, 0xb6);
    let describe = |e: iommu::IommuError| alloc::format!("{e}");
    let a = Guest {
        name: "A",
        hpa: a_hpa,
        domain: iommu::create_domain("A", &[a_mem]).map_err(describe)?,
    };
    let b = Guest {
        name: "B",
        hpa: b_hpa,
        domain: iommu::create_domain("B", &[b_mem]).map_err(describe)?,
    };
    for g in [&a, &b] {
        info!(
            "selftest: vtd-edu: guest {}: 16 MiB at GPA {GUEST_GPA:#x} = HPA {:#x}, IOMMU domain \
             {}; {}",
            g.name,
            g.hpa,
            g.domain,
            if vmx {
                "its vCPUs are not started by this self-test"
            } else {
                "its vCPUs are not started: VMX is not available on this CPU"
            }
        );
    }
    let test = Test { window, edu: &edu };
    let result = script(&test, &a, &b);
    // Whatever happened, the device leaves the guest, the test domains go away and their memory
    // goes back to the frame allocator.
    let _ = iommu::unassign(edu.bdf);
    for g in [&a, &b] {
        match iommu::destroy_domain(g.domain) {
            Ok(()) => {
                let mut frames = mem.frames.lock();
                for i in 0..GUEST_BYTES / PAGE {
                    frames.free(PhysAddr(g.hpa + i * PAGE));
                }
            }
            Err(e) => log::warn!("selftest: vtd-edu: domain {}: {e}", g.domain),
        }
    }
    result
}

fn script(t: &Test<'_>, a: &Guest, b: &Guest) -> Result<usize, String> {
    let edu_bdf: Bdf = t.edu.bdf;
    let unit = *iommu::units().first().ok_or("no remapping unit")?;
    let root = unit.root_table;
    let b_target = outside_a("guest B's memory", b.hpa)?;
    let root_target = outside_a("the VT-d root table", root)?;
    let hpa_a = |gpa: u64| a.hpa + (gpa - GUEST_GPA);
    let b_start = t.checksum(b.hpa, GUEST_BYTES);

    // The hypervisor refuses to map anything but the guest's own memory.
    match iommu::map(a.domain, root_target, PAGE) {
        Err(e) => info!(
            "selftest: vtd-edu: mapping IOVA {root_target:#x} (not guest A's memory) into domain \
             {} refused as it must be: {e}",
            a.domain
        ),
        Ok(()) => return Err(String::from("a page outside guest A's memory was mapped")),
    }

    // [1] No context entry yet: blocked with reason 0x02, nothing changes.
    let sums = |t: &Test<'_>| {
        (
            t.checksum(a.hpa, GUEST_BYTES),
            t.checksum(b.hpa, GUEST_BYTES),
            t.checksum(root, PAGE),
        )
    };
    let before = sums(t);
    t.blocked(Direction::ToRam, DST, NO_CONTEXT)?;
    let after = sums(t);
    unchanged("guest A's memory", before.0, after.0)?;
    unchanged("guest B's memory", before.1, after.1)?;
    unchanged("the root table", before.2, after.2)?;
    info!(
        "selftest: vtd-edu [1] edu not assigned: DMA write to IOVA {DST:#x} blocked (reason \
         {NO_CONTEXT:#04x}); unchanged: guest A {:#018x}, guest B {:#018x}, root table {:#018x}",
        after.0, after.1, after.2
    );

    // [2] Assigned to A: the pattern goes SRC -> edu buffer -> DST inside A, intact.
    iommu::assign(edu_bdf, a.domain).map_err(|e| alloc::format!("{e}"))?;
    write_pattern(&t.window, hpa_a(SRC));
    let pattern = t.checksum(hpa_a(SRC), PAGE);
    t.allowed(Direction::FromRam, SRC)?;
    t.allowed(Direction::ToRam, DST)?;
    let arrived = t.checksum(hpa_a(DST), PAGE);
    if arrived != pattern {
        return Err(alloc::format!(
            "the pattern arrived damaged: checksum {arrived:#018x}, sent {pattern:#018x}"
        ));
    }
    info!(
        "selftest: vtd-edu [2] edu assigned to guest A: 4 KiB pattern read from IOVA {SRC:#x} and \
         written to IOVA {DST:#x} arrived intact: checksum {arrived:#018x} == {pattern:#018x}"
    );

    // [3] A write aimed at guest B's memory (IOVA = B's HPA, outside A): blocked.
    let before = t.checksum(b.hpa, GUEST_BYTES);
    t.blocked(Direction::ToRam, b_target, NO_WRITE)?;
    let after = t.checksum(b.hpa, GUEST_BYTES);
    unchanged("guest B's memory", before, after)?;
    info!(
        "selftest: vtd-edu [3] DMA write to IOVA {b_target:#x} (guest B's memory, outside guest \
         A) blocked (reason {NO_WRITE:#04x}); guest B checksum {before:#018x} before, {after:#018x} \
         after"
    );

    // [4] A write aimed at the hypervisor's root table: blocked.
    let before = t.checksum(root, PAGE);
    t.blocked(Direction::ToRam, root_target, NO_WRITE)?;
    let after = t.checksum(root, PAGE);
    unchanged("the root table", before, after)?;
    info!(
        "selftest: vtd-edu [4] DMA write to IOVA {root_target:#x} (the hypervisor's root table of \
         unit {:#x}) blocked (reason {NO_WRITE:#04x}); root table checksum {before:#018x} before, \
         {after:#018x} after",
        unit.base
    );

    // [5] A read of the root table: blocked too.
    t.blocked(Direction::FromRam, root_target, NO_READ)?;
    info!(
        "selftest: vtd-edu [5] DMA read of IOVA {root_target:#x} (the hypervisor's VT-d root \
         table) blocked (reason {NO_READ:#04x})"
    );

    // [6] Unmap DST: the write that arrived in [2] now faults, and the page stays as it was.
    iommu::unmap(a.domain, DST, PAGE).map_err(|e| alloc::format!("{e}"))?;
    fill(&t.window, hpa_a(DST), PAGE, 0);
    let before = t.checksum(hpa_a(DST), PAGE);
    t.blocked(Direction::ToRam, DST, NO_WRITE)?;
    let after = t.checksum(hpa_a(DST), PAGE);
    unchanged("the unmapped page", before, after)?;
    info!(
        "selftest: vtd-edu [6] IOVA {DST:#x} unmapped: DMA write blocked (reason {NO_WRITE:#04x}); \
         page checksum {before:#018x} before, {after:#018x} after"
    );

    // [7] Map it again: the copy arrives intact.
    iommu::map(a.domain, DST, PAGE).map_err(|e| alloc::format!("{e}"))?;
    t.allowed(Direction::FromRam, SRC)?;
    t.allowed(Direction::ToRam, DST)?;
    let arrived = t.checksum(hpa_a(DST), PAGE);
    if arrived != pattern {
        return Err(alloc::format!(
            "after mapping again the pattern arrived damaged: {arrived:#018x} != {pattern:#018x}"
        ));
    }
    info!(
        "selftest: vtd-edu [7] IOVA {DST:#x} mapped again: DMA write arrived intact: checksum \
         {arrived:#018x} == {pattern:#018x}"
    );

    // [8] Unassigned: blocked again with reason 0x02.
    iommu::unassign(edu_bdf).map_err(|e| alloc::format!("{e}"))?;
    fill(&t.window, hpa_a(DST), PAGE, 0);
    let before = t.checksum(hpa_a(DST), PAGE);
    t.blocked(Direction::ToRam, DST, NO_CONTEXT)?;
    unchanged("guest A's page", before, t.checksum(hpa_a(DST), PAGE))?;
    info!(
        "selftest: vtd-edu [8] edu unassigned: DMA write to IOVA {DST:#x} blocked again (reason \
         {NO_CONTEXT:#04x})"
    );

    let b_end = t.checksum(b.hpa, GUEST_BYTES);
    unchanged("guest B's memory over the whole test", b_start, b_end)?;
    info!(
        "selftest: vtd-edu: guest B's memory unchanged over the whole test: {b_start:#018x} == \
         {b_end:#018x}"
    );
    Ok(8)
}
