//! Per-CPU data: what each CPU is (index, APIC ID, state) and what it counted (ticks, interrupts
//! per vector, idle time), plus its request mailbox ([`crate::smp`]).
//!
//! The record of the running CPU is [`current`]: the CPU's index comes from GDTR's base
//! ([`gdt::current_cpu`]), because each CPU loads its own GDT. That is lock-free, costs one
//! SGDT, and nothing outside ring 0 can change it: the control task (ring 3) may load any
//! selector into GS or FS (which would change their bases), but LGDT is privileged, and a VM
//! exit restores GDTR's base from the VMCS's HOST_GDTR_BASE, which [`crate::vmx::write_host_state`]
//! takes from the CPU that loads the VMCS. Before a CPU loaded its GDT (early boot on the BSP),
//! [`current`] is CPU 0's record.

use crate::gdt::{self, MAX_CPUS};
use conduit_smp::mailbox::Mailbox;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use spin::Once;

/// A CPU's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuState {
    /// Not numbered (beyond [`count`]).
    Absent,
    /// INIT-SIPI-SIPI sent, not checked in yet.
    Starting,
    /// Running Conduit.
    Online,
    /// Did not come up; [`PerCpu::failure`] says why.
    Failed,
}

impl CpuState {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Starting,
            2 => Self::Online,
            3 => Self::Failed,
            _ => Self::Absent,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            Self::Absent => 0,
            Self::Starting => 1,
            Self::Online => 2,
            Self::Failed => 3,
        }
    }
}

impl core::fmt::Display for CpuState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Absent => "absent",
            Self::Starting => "starting",
            Self::Online => "online",
            Self::Failed => "failed",
        })
    }
}

/// One CPU's record.
#[derive(Debug)]
pub struct PerCpu {
    index: usize,
    apic_id: AtomicU32,
    state: AtomicU8,
    failure: Once<alloc::string::String>,
    ticks: AtomicU64,
    interrupts: AtomicU64,
    vectors: [AtomicU64; 256],
    idle_tsc: AtomicU64,
    online_tsc: AtomicU64,
    vmx_on: AtomicBool,
    /// Cross-CPU requests to this CPU ([`crate::smp::call_on`]).
    pub mailbox: Mailbox,
}

impl PerCpu {
    const fn new(index: usize) -> Self {
        Self {
            index,
            apic_id: AtomicU32::new(0),
            state: AtomicU8::new(0),
            failure: Once::new(),
            ticks: AtomicU64::new(0),
            interrupts: AtomicU64::new(0),
            vectors: [const { AtomicU64::new(0) }; 256],
            idle_tsc: AtomicU64::new(0),
            online_tsc: AtomicU64::new(0),
            vmx_on: AtomicBool::new(false),
            mailbox: Mailbox::new(),
        }
    }

    /// The CPU's number (MADT order, the BSP is 0).
    pub fn index(&self) -> usize {
        self.index
    }

    pub fn apic_id(&self) -> u32 {
        self.apic_id.load(Ordering::Acquire)
    }

    pub fn state(&self) -> CpuState {
        CpuState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Why the CPU did not come up, once it [`CpuState::Failed`].
    pub fn failure(&self) -> Option<&str> {
        self.failure.get().map(alloc::string::String::as_str)
    }

    /// Ticks of this CPU's local APIC timer.
    pub fn ticks(&self) -> u64 {
        self.ticks.load(Ordering::Relaxed)
    }

    /// Interrupts this CPU handled (every vector).
    pub fn interrupts(&self) -> u64 {
        self.interrupts.load(Ordering::Relaxed)
    }

    /// Interrupts this CPU handled on `vector`.
    pub fn vector_count(&self, vector: u8) -> u64 {
        self.vectors[usize::from(vector)].load(Ordering::Relaxed)
    }

    /// TSC ticks this CPU spent halted waiting for work.
    pub fn idle_tsc(&self) -> u64 {
        self.idle_tsc.load(Ordering::Relaxed)
    }

    /// The TSC when the CPU came online.
    pub fn online_tsc(&self) -> u64 {
        self.online_tsc.load(Ordering::Relaxed)
    }

    /// Whether the CPU is in VMX root operation.
    pub fn vmx_on(&self) -> bool {
        self.vmx_on.load(Ordering::Acquire)
    }

    /// Counts one interrupt on `vector` (the interrupt path, on this CPU).
    pub fn count_interrupt(&self, vector: u8) {
        self.interrupts.fetch_add(1, Ordering::Relaxed);
        self.vectors[usize::from(vector)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one tick (the interrupt path, on this CPU).
    pub fn count_tick(&self) {
        self.ticks.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `tsc` ticks of idle time.
    pub fn add_idle(&self, tsc: u64) {
        self.idle_tsc.fetch_add(tsc, Ordering::Relaxed);
    }

    /// Records that VMXON succeeded on this CPU.
    pub fn set_vmx_on(&self) {
        self.vmx_on.store(true, Ordering::Release);
    }

    pub(crate) fn set_starting(&self, apic_id: u32) {
        self.apic_id.store(apic_id, Ordering::Release);
        self.state
            .store(CpuState::Starting.to_u8(), Ordering::Release);
    }

    /// Starting -> Online; `false` if the CPU was given up on meanwhile.
    pub(crate) fn set_online(&self) -> bool {
        self.online_tsc.store(crate::rdtsc(), Ordering::Relaxed);
        self.state
            .compare_exchange(
                CpuState::Starting.to_u8(),
                CpuState::Online.to_u8(),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// Starting -> Failed with `why`; `false` if it came online meanwhile.
    pub(crate) fn set_failed(&self, why: alloc::string::String) -> bool {
        let given_up = self
            .state
            .compare_exchange(
                CpuState::Starting.to_u8(),
                CpuState::Failed.to_u8(),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok();
        if given_up {
            self.failure.call_once(|| why);
        }
        given_up
    }
}

static CPUS: [PerCpu; MAX_CPUS] = {
    let mut cpus = [const { PerCpu::new(0) }; MAX_CPUS];
    let mut i = 0;
    while i < MAX_CPUS {
        cpus[i].index = i;
        i += 1;
    }
    cpus
};
/// CPUs numbered (online or not): indices 0..COUNT.
static COUNT: AtomicUsize = AtomicUsize::new(1);

/// The record of the CPU this runs on.
pub fn current() -> &'static PerCpu {
    &CPUS[gdt::current_cpu().unwrap_or(0)]
}

/// CPU `index`'s record, if it is numbered.
pub fn get(index: usize) -> Option<&'static PerCpu> {
    (index < count()).then(|| &CPUS[index])
}

/// How many CPUs are numbered (the BSP counts from the start).
pub fn count() -> usize {
    COUNT.load(Ordering::Acquire)
}

/// Every numbered CPU's record.
pub fn all() -> impl Iterator<Item = &'static PerCpu> {
    CPUS[..count()].iter()
}

/// Numbers CPU `index` (< MAX_CPUS) with `apic_id`, as starting (the BSP: online at once).
pub(crate) fn add(index: usize, apic_id: u32) -> &'static PerCpu {
    let cpu = &CPUS[index];
    cpu.set_starting(apic_id);
    COUNT.fetch_max(index + 1, Ordering::AcqRel);
    cpu
}

/// Marks the BSP (CPU 0) online with `apic_id`.
pub fn bsp_online(apic_id: u32) {
    let bsp = add(0, apic_id);
    bsp.set_online();
}
