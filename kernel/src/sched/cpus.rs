//! The physical CPUs as the schedulers see them: which are online, their APIC IDs, this CPU's
//! index, the IPI that makes another CPU look at its requests, and the guests' exits each CPU
//! handled (the `cpus` shell command's exit column).

use crate::guest::boot::CpuInfo;
use crate::platform::Platform;
use alloc::vec::Vec;
use conduit_config::placement::CpuUp;
use core::sync::atomic::{AtomicU64, Ordering};

/// CPUs the schedulers can number (`conduit_config::placement::MAX_CPUS`).
pub const MAX: usize = conduit_config::placement::MAX_CPUS;

/// VM exits of guests handled per CPU.
static EXITS: [AtomicU64; MAX] = [const { AtomicU64::new(0) }; MAX];

/// This CPU's index.
pub fn this_cpu() -> usize {
    0
}

/// Every CPU of the machine for placement: the bootstrap processor online, the others of the
/// MADT listed as not started.
pub fn boot_view(platform: &Platform) -> Vec<CpuInfo> {
    let bsp = conduit_hw::apic::id();
    let mut view = alloc::vec![CpuInfo {
        apic_id: bsp,
        up: CpuUp::Online,
    }];
    view.extend(
        platform
            .local_apic_ids
            .iter()
            .filter(|&&a| a != bsp)
            .map(|&apic_id| CpuInfo {
                apic_id,
                up: CpuUp::Down(alloc::string::String::from("not started")),
            }),
    );
    view
}

/// The online CPUs by index.
pub fn online() -> impl Iterator<Item = usize> {
    0..1
}

/// CPU `cpu`'s APIC ID.
pub fn apic_id(cpu: usize) -> Option<u32> {
    (cpu == 0).then(conduit_hw::apic::id)
}

/// Sends CPU `cpu` the IPI that ends its guest's slice or wakes it from HLT.
pub fn kick(_cpu: usize) {}

/// Starts the scheduler `main` on every online application processor.
pub fn start_schedulers(_main: fn(usize) -> !) {}

/// Runs `wait` (a sleep until an interrupt) as this CPU's idle time.
pub fn idle(wait: impl FnOnce()) {
    wait();
}

/// Interrupts CPU `cpu` took on `vector`.
#[cfg(feature = "selftest")]
pub fn vector_count(cpu: usize, vector: u8) -> u64 {
    if cpu == 0 {
        conduit_hw::apic::deliveries(vector)
    } else {
        0
    }
}

/// Counts `n` guest exits handled by CPU `cpu`.
pub fn count_exits(cpu: usize, n: u64) {
    if let Some(c) = EXITS.get(cpu) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}
