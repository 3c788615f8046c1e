//! The physical CPUs as the schedulers see them (`conduit_hw::percpu`, started by `crate::cpus`):
//! which are online, their APIC IDs, this CPU's index, the IPI that makes another CPU look at its
//! requests, each CPU's idle time and the guest exits it handled (the `cpus` shell command's
//! columns), and which CPU runs which guest for the interrupt path.

use crate::guest::boot::CpuInfo;
use alloc::format;
use alloc::vec::Vec;
use conduit_config::placement::CpuUp;
use conduit_hw::percpu::{self, CpuState};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// CPUs the schedulers can number (`conduit_config::placement::MAX_CPUS`).
pub const MAX: usize = conduit_config::placement::MAX_CPUS;

/// VM exits of guests handled per CPU.
static EXITS: [AtomicU64; MAX] = [const { AtomicU64::new(0) }; MAX];

/// vCPUs a guest can have (`conduit_config::guest::MAX_VCPUS`).
const MAX_VCPUS: usize = conduit_config::guest::MAX_VCPUS as usize;

/// Per guest (by its configuration index), per vCPU: 1 + the CPU that runs it (0: not placed).
static GUEST_CPUS: [[AtomicUsize; MAX_VCPUS]; crate::irq::dispatch::MAX_GUESTS] =
    [const { [const { AtomicUsize::new(0) }; MAX_VCPUS] }; crate::irq::dispatch::MAX_GUESTS];

/// This CPU's index.
pub fn this_cpu() -> usize {
    percpu::current().index()
}

/// Every numbered CPU of the machine for placement: its APIC ID, and online or why not.
pub fn boot_view() -> Vec<CpuInfo> {
    percpu::all()
        .map(|c| CpuInfo {
            apic_id: c.apic_id(),
            up: match c.state() {
                CpuState::Online => CpuUp::Online,
                CpuState::Failed => CpuUp::Down(format!(
                    "APIC ID {}: did not start: {}",
                    c.apic_id(),
                    c.failure().unwrap_or("no reason recorded")
                )),
                s => CpuUp::Down(format!("APIC ID {}: {s}", c.apic_id())),
            },
        })
        .collect()
}

/// The online CPUs by index.
pub fn online() -> impl Iterator<Item = usize> {
    percpu::all()
        .filter(|c| c.state() == CpuState::Online)
        .map(|c| c.index())
}

/// CPU `cpu`'s APIC ID.
pub fn apic_id(cpu: usize) -> Option<u32> {
    percpu::get(cpu).map(|c| c.apic_id())
}

/// Sends CPU `cpu` the IPI that ends its guest's slice (an external-interrupt exit) or wakes it
/// from HLT. A CPU that cannot be reached finds the request at its next look between slices.
pub fn kick(cpu: usize) {
    if let Err(e) = conduit_hw::smp::wake(cpu) {
        log::warn!("sched: cpu {cpu} not kicked: {e}");
    }
}

/// Starts the scheduler `main` on every online application processor (`crate::cpus`).
pub fn start_schedulers(main: fn(usize) -> !) {
    crate::cpus::run_on_aps(main);
}

/// Runs `wait` (a sleep until an interrupt) and counts it as this CPU's idle time.
pub fn idle(wait: impl FnOnce()) {
    let start = conduit_hw::rdtsc();
    wait();
    percpu::current().add_idle(conduit_hw::rdtsc().wrapping_sub(start));
}

/// Interrupts CPU `cpu` took on `vector`.
#[cfg(feature = "selftest")]
pub fn vector_count(cpu: usize, vector: u8) -> u64 {
    percpu::get(cpu).map_or(0, |c| c.vector_count(vector))
}

/// Counts `n` guest exits handled by CPU `cpu`.
pub fn count_exits(cpu: usize, n: u64) {
    if let Some(c) = EXITS.get(cpu) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// Guest exits handled by CPU `cpu` so far.
pub fn exits(cpu: usize) -> u64 {
    EXITS.get(cpu).map_or(0, |c| c.load(Ordering::Relaxed))
}

/// Records that CPU `cpus[k]` runs vCPU k of guest `id` (its configuration index).
pub fn place(id: u16, cpus: &[usize]) {
    if let Some(row) = GUEST_CPUS.get(usize::from(id)) {
        for (k, slot) in row.iter().enumerate() {
            slot.store(cpus.get(k).map_or(0, |c| c + 1), Ordering::Release);
        }
    }
}

/// IPIs from the interrupt path to a guest's CPU that could not be sent ([`guest_interrupt`]).
static LOST_KICKS: AtomicU64 = AtomicU64::new(0);

/// An interrupt of guest `id` for its vCPU `vcpu` was taken here (the interrupt path,
/// lock-free). A CPU that runs one of the guest's vCPUs sends nobody anything: it moves the
/// vector into the receiving vCPU's local APIC itself when it next holds the guest, and hands it
/// on from there to a vCPU elsewhere (`guest::vplatform_exits`); any other CPU sends the
/// receiving vCPU's CPU (vCPU 0's for a vCPU not placed) the IPI, so that a halted CPU wakes and
/// injects the guest's vector at its next entry rather than after its next tick. One that cannot
/// be sent is counted ([`lost_kicks`]); the vector stays pending for the guest all the same.
pub fn guest_interrupt(id: u16, vcpu: u8) {
    let Some(row) = GUEST_CPUS.get(usize::from(id)) else {
        return;
    };
    let here = this_cpu() + 1;
    if row.iter().any(|c| c.load(Ordering::Acquire) == here) {
        return;
    }
    let cpu_of = |k: usize| {
        row.get(k)
            .and_then(|c| c.load(Ordering::Acquire).checked_sub(1))
    };
    let Some(target) = cpu_of(usize::from(vcpu)).or_else(|| cpu_of(0)) else {
        return;
    };
    if conduit_hw::smp::wake(target).is_err() {
        LOST_KICKS.fetch_add(1, Ordering::Relaxed);
    }
}

/// IPIs to a guest's CPU the interrupt path could not send.
pub fn lost_kicks() -> u64 {
    LOST_KICKS.load(Ordering::Relaxed)
}
