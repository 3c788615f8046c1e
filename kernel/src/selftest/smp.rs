//! `[test] scenario = "smp"` (and `"smp-ghost"`): every CPU at work.
//!
//! 1. each CPU's own tick rises (its local APIC timer, counted in its record);
//! 2. cross-CPU calls reach each AP, run there (each answers with the index of the CPU it ran
//!    on) and return; their round trips are timed in TSC ticks (emulated instructions in Bochs);
//! 3. a TLB shootdown (the one the hypervisor's unmaps use): a page remapped to another frame
//!    with an INVLPG on the BSP only reads the new frame on every AP after it;
//! 4. where QEMU's edu device, interrupt remapping and a third CPU exist: edu's MSI through an
//!    IRTE whose destination is CPU 2's APIC ID arrives on CPU 2, counted there, and nowhere
//!    else;
//! 5. once the guests are placed, where some CPU is in VMX operation ([`after_guests`]): INVEPT
//!    single-context on every such CPU,
//! 6. INVVPID single-context on every such CPU,
//! 7. a VMCS written on each other such CPU, VMCLEARed there by request and read back on the BSP
//!    (what moving a VMCS to another CPU needs);
//! 8. (in [`run`], after 4) the guard page below each AP's kernel stack is not mapped, and the
//!    stack's lowest page above it is: an overflow faults there (read from the page tables; no
//!    stack is overflowed).
//!
//! `smp-ghost` adds a MADT entry for an APIC ID no processor has ([`GHOST_APIC_ID`]); the start-up
//! must report it as not started and bring the others up.

use super::edu::{self, Edu};
use super::intremap::{ONE_INTERRUPT, wait_with_interrupts};
use crate::irq::{self, MsiKind};
use crate::pci::{self, DeviceRef};
use alloc::string::String;
use alloc::vec::Vec;
use conduit_config::TestCase;
use conduit_hw::memory::Memory;
use conduit_hw::memory::{FRAME_SIZE, mmio};
use conduit_hw::percpu::{self, CpuState};
use conduit_hw::vmx::instr;
use conduit_hw::vmx::vmcs::{self, VmcsRegion};
use conduit_hw::{rdtsc, smp};
use conduit_irq::{ApicMode, Destination, IrteBuilder, Owner, SourceQualifier};
use conduit_pci::config::command;
use conduit_smp::numbering::MadtCpu;
use conduit_vmx::fields::GuestNatural;
use core::sync::atomic::{AtomicU64, Ordering};
use log::info;

/// The APIC ID of the processor `smp-ghost` adds to the MADT's list (8 bits: xAPIC too).
pub const GHOST_APIC_ID: u32 = 0x3e;
/// BSP ticks to watch the others' ticks over.
const TICKS: u64 = 5;
/// Timed cross-CPU calls per AP.
const CALLS: usize = 9;
/// edu raises aimed at CPU 2.
const RAISES: u64 = 8;

/// The processor entries the test adds to the MADT's.
pub fn extra_cpus(test: Option<TestCase>) -> Vec<MadtCpu> {
    match test {
        Some(TestCase::SmpGhost) => alloc::vec![MadtCpu {
            apic_id: GHOST_APIC_ID,
            enabled: true,
        }],
        _ => Vec::new(),
    }
}

/// Answers with the index of the CPU it runs on, plus `arg`.
fn whoami(arg: u64) -> u64 {
    percpu::current().index() as u64 * 1000 + arg
}

/// Runs the script; returns the number of steps passed. The cross-CPU calls need interrupts
/// enabled: the script runs in an interrupt window.
pub fn run(mem: &'static Memory) -> Result<usize, String> {
    smp::with_interrupts(|| script(mem))
}

fn script(mem: &'static Memory) -> Result<usize, String> {
    let online: Vec<_> = percpu::all()
        .filter(|c| c.state() == CpuState::Online)
        .collect();
    let aps: Vec<_> = online.iter().filter(|c| c.index() != 0).collect();
    if aps.is_empty() {
        return Err(String::from("only the BSP is online"));
    }
    let mut steps = 0;

    // [1] Every CPU's tick.
    let before: Vec<u64> = online.iter().map(|c| c.ticks()).collect();
    if !super::intremap::wait_ticks(TICKS) {
        return Err(String::from("the BSP's tick does not run"));
    }
    let mut line = String::new();
    for (c, t0) in online.iter().zip(&before) {
        let t1 = c.ticks();
        line.push_str(&alloc::format!(
            "{}cpu {} (APIC ID {}) {t0} -> {t1}",
            if line.is_empty() { "" } else { ", " },
            c.index(),
            c.apic_id()
        ));
        if t1 <= *t0 {
            return Err(alloc::format!(
                "cpu {}'s tick did not rise ({t0} -> {t1})",
                c.index()
            ));
        }
    }
    info!("selftest: smp [1] ticks rose on every online CPU: {line}");
    steps += 1;

    // [2] A cross-CPU call to each AP: checked, then timed (the median of CALLS round trips).
    for c in &aps {
        let mut trips = [0u64; CALLS];
        for (i, trip) in trips.iter_mut().enumerate() {
            let t0 = rdtsc();
            let r = smp::call_on(c.index(), whoami, i as u64).map_err(|e| alloc::format!("{e}"))?;
            *trip = rdtsc().wrapping_sub(t0);
            if r != c.index() as u64 * 1000 + i as u64 {
                return Err(alloc::format!(
                    "the call to cpu {} ran elsewhere (reply {r})",
                    c.index()
                ));
            }
        }
        trips.sort_unstable();
        info!(
            "selftest: smp [2] cross-CPU call cpu 0 -> cpu {} (APIC ID {}): ran there {CALLS} \
             times, round trip median {} TSC ticks (min {}, max {})",
            c.index(),
            c.apic_id(),
            trips[CALLS / 2],
            trips[0],
            trips[CALLS - 1]
        );
    }
    steps += 1;

    // [3] TLB shootdown.
    let stale = shootdown(mem, &aps)?;
    info!(
        "selftest: smp [3] TLB shootdown: a page remapped with a local INVLPG only reads the new \
         frame on {} AP(s) after the shootdown (before it: {stale} of them still read the old)",
        aps.len()
    );
    steps += 1;

    // [4] edu's MSI to CPU 2.
    if let Some(cpu2) = online.iter().find(|c| c.index() == 2)
        && let Ok(ir) = crate::iommu::interrupt_remapping()
        && let Some(f) = pci::get().and_then(|p| {
            p.resolve(DeviceRef::Id {
                vendor: edu::VENDOR,
                device: edu::DEVICE,
            })
        })
    {
        let edu = Edu::open(mem, f)?;
        pci::enable_command_bits(edu.bdf, command::MEMORY_SPACE | command::BUS_MASTER)
            .ok_or("cannot write edu's Command register")?;
        let route = irq::bind_msi(
            Owner::Hypervisor,
            0,
            conduit_pci::PciAddress::on_segment0(edu.bdf),
            MsiKind::Msi,
            None,
        )
        .map_err(|e| alloc::format!("{e}"))?;
        let dest = match ir.mode {
            ApicMode::X2Apic => Destination::X2Apic(cpu2.apic_id()),
            ApicMode::XApic => Destination::XApic(cpu2.apic_id() as u8),
        };
        let irte = IrteBuilder::new(dest, route.vector)
            .verify_requester(edu.bdf.routing_id(), SourceQualifier::All)
            .build()
            .map_err(|e| alloc::format!("{e}"))?;
        let result = irq::program_irte(Owner::Hypervisor, route.index, &irte)
            .map_err(|e| alloc::format!("{e}"))
            .and_then(|()| raise_on(&edu, route.vector, cpu2, &online));
        let released = irq::release(Owner::Hypervisor, route.index, Some(route.vector));
        let (on2, elsewhere) = result?;
        released.map_err(|e| alloc::format!("releasing edu's IRTE: {e}"))?;
        info!(
            "selftest: smp [4] edu's MSI through IRTE {} -> vector {:#x} on cpu 2 (APIC ID {}, \
             {} destination): {RAISES} raised, {on2} counted on cpu 2, {elsewhere} on other CPUs",
            route.index,
            route.vector,
            cpu2.apic_id(),
            match ir.mode {
                ApicMode::X2Apic => "32-bit x2APIC",
                ApicMode::XApic => "8-bit xAPIC",
            }
        );
        steps += 1;
    }

    // [8] The guard pages below the APs' kernel stacks.
    let line = stack_guards(mem, aps.len())?;
    info!("selftest: smp [8] the guard page below each AP's kernel stack is not mapped: {line}");
    steps += 1;
    Ok(steps)
}

/// Checks, for each start slot in use (at least `aps`), that the page below its kernel stack is
/// not mapped and the stack's lowest page is; describes them.
fn stack_guards(mem: &'static Memory, aps: usize) -> Result<String, String> {
    let guards = smp::kernel_stack_guards();
    if guards.len() < aps {
        return Err(alloc::format!(
            "{} start slot(s) with stacks for {aps} AP(s) online",
            guards.len()
        ));
    }
    let mut line = String::new();
    for (slot, guard) in guards {
        if let Some(phys) = mmio::translate(mem, guard) {
            return Err(alloc::format!(
                "the guard page below slot {slot}'s kernel stack ({guard:#x}) maps {phys:#x}"
            ));
        }
        let Some(lowest) = mmio::translate(mem, guard + FRAME_SIZE) else {
            return Err(alloc::format!(
                "slot {slot}'s kernel stack is not mapped above its guard page ({guard:#x})"
            ));
        };
        line.push_str(&alloc::format!(
            "{}slot {slot} guard {guard:#x} not mapped, stack bottom -> {lowest:#x}",
            if line.is_empty() { "" } else { ", " }
        ));
    }
    Ok(line)
}

/// Whether some CPU is in VMX operation (then [`after_guests`] has something to do).
pub fn any_vmx() -> bool {
    percpu::all().any(|c| c.vmx_on())
}

/// Once the guests are placed (the BSP turned VMX on for them), on every CPU in VMX operation:
/// [5] INVEPT single-context, [6] INVVPID single-context, [7] a VMCS written on each other such
/// CPU, VMCLEARed there by request and read back here. Returns the steps passed (in an
/// interrupt window, as [`run`]).
pub fn after_guests(mem: &'static Memory) -> Result<usize, String> {
    smp::with_interrupts(|| vmx_steps(mem))
}

fn vmx_steps(mem: &'static Memory) -> Result<usize, String> {
    // A well-formed EPTP (WB, 4 levels) of a table no guest uses: nothing cached to drop.
    let eptp = 0x1000 | 6 | (3 << 3);
    let n = conduit_hw::vmx::invept_everywhere(eptp).map_err(|e| alloc::format!("{e}"))?;
    info!("selftest: smp [5] INVEPT single-context on {n} CPU(s) in VMX operation");
    // A VPID no guest has (guests count up from 1).
    let n = conduit_hw::vmx::invvpid_everywhere(0xfff0).map_err(|e| alloc::format!("{e}"))?;
    info!("selftest: smp [6] INVVPID single-context on {n} CPU(s) in VMX operation");
    let caps = conduit_hw::vmx::capabilities().ok_or("no CPU reports its VMX capabilities")?;
    let region =
        |what| VmcsRegion::new(mem, caps.basic.revision).map_err(|e| alloc::format!("{what}: {e}"));
    let mut moved = region("VMCS region")?;
    let park = region("parking VMCS region")?;
    PARK_VMCS.store(park.phys(), Ordering::Release);
    let me = percpu::current().index();
    let mut cleared = Vec::new();
    for c in percpu::all().filter(|c| c.vmx_on() && c.index() != me) {
        let mark = MARK + c.index() as u64;
        match smp::call_on(c.index(), write_mark, moved.phys()) {
            Ok(0) => {}
            Ok(code) => {
                return Err(alloc::format!(
                    "cpu {}: VMPTRLD/VMWRITE failed ({code})",
                    c.index()
                ));
            }
            Err(e) => return Err(alloc::format!("{e}")),
        }
        moved
            .clear_on(c.index())
            .map_err(|e| alloc::format!("{e}"))?;
        let read = moved
            .load()
            .map_err(|e| alloc::format!("VMPTRLD on cpu {me}: {e}"))?
            .get(GuestNatural::Rip)
            .map_err(|e| alloc::format!("{e}"))?;
        moved
            .clear()
            .map_err(|e| alloc::format!("VMCLEAR on cpu {me}: {e}"))?;
        if read != mark {
            return Err(alloc::format!(
                "the guest RIP cpu {} wrote ({mark:#x}) reads {read:#x} on cpu {me} after the \
                 VMCLEAR by request",
                c.index()
            ));
        }
        cleared.push(alloc::format!("cpu {} ({read:#x})", c.index()));
    }
    info!(
        "selftest: smp [7] a VMCS written on another CPU, VMCLEARed there by request, reads the \
         same on cpu {me}: {}",
        if cleared.is_empty() {
            String::from("no other CPU")
        } else {
            cleared.join(", ")
        }
    );
    Ok(3)
}

/// The guest RIP [`write_mark`] writes on CPU n: `MARK + n`.
const MARK: u64 = 0xc0de_0000;
/// The region [`write_mark`] makes current after its write when no VMCS was current before.
static PARK_VMCS: AtomicU64 = AtomicU64::new(0);

/// On an AP, by request: VMPTRLD of the region at `phys`, VMWRITE of its guest RIP (`MARK` +
/// this CPU's index), then the VMCS current before made current again (or, if there was none,
/// the parking region loaded and VMCLEARed), so that the region stays active here, not current,
/// its state possibly only in this CPU. 0, or which step failed.
fn write_mark(phys: u64) -> u64 {
    let mark = MARK + percpu::current().index() as u64;
    // SAFETY: the selftest calls this only on CPUs in VMX operation.
    let before = unsafe { vmcs::vmptrst() };
    // SAFETY: VMX is on; `phys` is the selftest's own VMCS region (right revision, not current
    // anywhere: the BSP VMCLEARed it).
    if unsafe { instr::vmptrld(phys) }.is_err() {
        return 1;
    }
    // SAFETY: VMX is on and the region just loaded is current; guest RIP is writable.
    if unsafe { instr::vmwrite(GuestNatural::Rip.encoding(), mark) }.is_err() {
        return 2;
    }
    let park = PARK_VMCS.load(Ordering::Acquire);
    // SAFETY: `before` was this CPU's current VMCS (the code this request interrupted may be
    // about to enter a guest with it, so it is made current again); the parking region is the
    // selftest's own, and VMCLEAR of it leaves no VMCS current, as before.
    let restored = unsafe {
        if before != u64::MAX {
            instr::vmptrld(before)
        } else {
            instr::vmptrld(park).and_then(|()| instr::vmclear(park))
        }
    };
    if restored.is_err() { 3 } else { 0 }
}

/// [3]: a page P mapped to frame A is read on each AP (caching P -> A in its TLB), remapped to
/// frame B with an INVLPG on this CPU only, and after [`smp::flush_tlb_everywhere`] every AP
/// must read B's value. Returns how many APs still read A between the remap and the shootdown
/// (informative: a TLB may drop an entry at any time).
fn shootdown(mem: &'static Memory, aps: &[&&'static percpu::PerCpu]) -> Result<usize, String> {
    const A: u64 = 0xaaaa_0001;
    const B: u64 = 0xbbbb_0002;
    let frame = || {
        mem.frames
            .lock()
            .allocate()
            .ok_or_else(|| String::from("no frame for the shootdown test"))
    };
    let (fa, fb) = (frame()?, frame()?);
    let page = mmio::map(mem, fa.0, FRAME_SIZE).map_err(|e| alloc::format!("{e}"))?;
    let cell = page.block::<u64>(0).map_err(|e| alloc::format!("{e}"))?;
    let result = (|| {
        cell.write(A);
        // SAFETY: both frames were just allocated for this test and the mapping is its own;
        // the frames are only reached through `page`.
        unsafe { mmio::retarget_local(mem, &page, fb.0) }.map_err(|e| alloc::format!("{e}"))?;
        cell.write(B);
        // SAFETY: as above.
        unsafe { mmio::retarget_local(mem, &page, fa.0) }.map_err(|e| alloc::format!("{e}"))?;
        let read_on = |c: &percpu::PerCpu| {
            smp::call_on(c.index(), read_u64, page.virt(0)).map_err(|e| alloc::format!("{e}"))
        };
        for c in aps {
            let v = read_on(c)?;
            if v != A {
                return Err(alloc::format!(
                    "cpu {} reads {v:#x} before the remap",
                    c.index()
                ));
            }
        }
        // SAFETY: as above.
        unsafe { mmio::retarget_local(mem, &page, fb.0) }.map_err(|e| alloc::format!("{e}"))?;
        let mut stale = 0;
        for c in aps {
            if read_on(c)? == A {
                stale += 1;
            }
        }
        smp::flush_tlb_everywhere().map_err(|e| alloc::format!("{e}"))?;
        for c in aps {
            let v = read_on(c)?;
            if v != B {
                return Err(alloc::format!(
                    "cpu {} reads {v:#x} after the shootdown, not the new frame's {B:#x}",
                    c.index()
                ));
            }
        }
        Ok(stale)
    })();
    // SAFETY: the test is done with the mapping; `cell` is not used again.
    unsafe { mmio::unmap(mem, &page) }.map_err(|e| alloc::format!("{e}"))?;
    let mut frames = mem.frames.lock();
    frames.free(fa);
    frames.free(fb);
    result
}

/// Reads the u64 at kernel address `virt` (on the CPU this runs on).
fn read_u64(virt: u64) -> u64 {
    // SAFETY: `shootdown` passes the address of its own mapped, aligned test page and waits for
    // the reply while the mapping lives.
    unsafe { core::ptr::read_volatile(virt as *const u64) }
}

/// Raises edu's interrupt [`RAISES`] times; returns how many arrived on `target` and on the
/// other CPUs.
fn raise_on(
    edu: &Edu,
    vector: u8,
    target: &percpu::PerCpu,
    online: &[&'static percpu::PerCpu],
) -> Result<(u64, u64), String> {
    let count = |c: &percpu::PerCpu| c.vector_count(vector);
    let before: Vec<u64> = online.iter().map(|c| count(c)).collect();
    let start = count(target);
    for i in 0..RAISES {
        let want = start + i + 1;
        edu.raise(1);
        if !wait_with_interrupts(ONE_INTERRUPT, || count(target) >= want) {
            let counts: Vec<u64> = online.iter().map(|c| count(c)).collect();
            return Err(alloc::format!(
                "raise {} of {RAISES} did not arrive on cpu {} (vector {vector:#x} per CPU: \
                 {before:?} -> {counts:?}; edu status {:#x})",
                i + 1,
                target.index(),
                edu.irq_status()
            ));
        }
        edu.ack(1);
    }
    let on_target = count(target) - start;
    let elsewhere: u64 = online
        .iter()
        .zip(&before)
        .filter(|(c, _)| c.index() != target.index())
        .map(|(c, b)| count(c) - b)
        .sum();
    if on_target != RAISES || elsewhere != 0 {
        return Err(alloc::format!(
            "{on_target} of {RAISES} raises counted on cpu {}, {elsewhere} elsewhere",
            target.index()
        ));
    }
    Ok((on_target, elsewhere))
}
