//! `[test] scenario = "smp"` (and `"smp-ghost"`): every CPU at work.
//!
//! 1. each CPU's own tick rises (its local APIC timer, counted in its record);
//! 2. cross-CPU calls reach each AP, run there (each answers with the index of the CPU it ran
//!    on) and return; their round trips are timed in TSC ticks (emulated instructions in Bochs);
//! 3. a TLB shootdown (the one the hypervisor's unmaps use) reaches every AP;
//! 4. once the guests are placed, where some CPU is in VMX operation: INVEPT single-context on
//!    every such CPU ([`after_guests`]);
//! 5. where QEMU's edu device, interrupt remapping and a third CPU exist: edu's MSI through an
//!    IRTE whose destination is CPU 2's APIC ID arrives on CPU 2, counted there, and nowhere
//!    else.
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
use conduit_hw::percpu::{self, CpuState};
use conduit_hw::{rdtsc, smp};
use conduit_irq::{ApicMode, Destination, IrteBuilder, Owner, SourceQualifier};
use conduit_pci::config::command;
use conduit_smp::numbering::MadtCpu;
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

/// Runs the script; returns the number of steps passed.
pub fn run(mem: &'static Memory) -> Result<usize, String> {
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
    let flushed = smp::flush_tlb_everywhere().map_err(|e| alloc::format!("{e}"))?;
    if flushed != aps.len() {
        return Err(alloc::format!(
            "{flushed} of {} APs flushed their TLB",
            aps.len()
        ));
    }
    info!("selftest: smp [3] TLB shootdown: {flushed} AP(s) flushed their TLB");
    steps += 1;

    // [5] edu's MSI to CPU 2.
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
        let route = irq::bind_msi(Owner::Hypervisor, edu.bdf, MsiKind::Msi, None)
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
            "selftest: smp [5] edu's MSI through IRTE {} -> vector {:#x} on cpu 2 (APIC ID {}, \
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
    Ok(steps)
}

/// Whether some CPU is in VMX operation (then [`after_guests`] has something to do).
pub fn any_vmx() -> bool {
    percpu::all().any(|c| c.vmx_on())
}

/// Once the guests are placed (the BSP turned VMX on for them): [4] INVEPT single-context on
/// every CPU in VMX operation. Returns the steps passed.
pub fn after_guests() -> Result<usize, String> {
    // A well-formed EPTP (WB, 4 levels) of a table no guest uses: nothing cached to drop.
    let eptp = 0x1000 | 6 | (3 << 3);
    let n = conduit_hw::vmx::invept_everywhere(eptp).map_err(|e| alloc::format!("{e}"))?;
    info!("selftest: smp [4] INVEPT single-context on {n} CPU(s) in VMX operation");
    Ok(1)
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
