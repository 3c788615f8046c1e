//! Every guest of the run: the ones created (which the per-CPU schedulers run and the shell
//! inspects and steers), the ones refused at boot, and the VMX host they share, if this machine
//! has one.
//!
//! Each created guest sits in a [`Slot`] behind its own lock and is placed on one physical CPU
//! (`conduit_config::placement`), which alone runs it: that CPU takes the lock for a time slice
//! and between slices carries out what other CPUs asked of the guest ([`Request`], posted by
//! `crate::sched::remote`). What other CPUs read without the lock (the name, the placement,
//! whether it still runs) is kept beside it. The set is built once at boot and then shared,
//! `'static`, by every CPU.

use super::{Guest, State, VmxHost};
use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use conduit_hw::vmx::instr::VmFail;
use conduit_hw::vmx::vmcs::FieldError;
use conduit_shell::GuestDirectory;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use spin::{Mutex, MutexGuard};

/// A configured guest that was never created, and why.
#[derive(Debug, Clone)]
pub struct Refused {
    pub name: String,
    pub reason: String,
}

/// What another CPU asks the owner of a guest to do with it, between two slices.
pub type Work = Box<dyn FnOnce(&mut Guest, &Guests) + Send>;

/// A posted [`Work`] and what its poster waits on: 0 until it is done, then 1 + the TSC ticks the
/// work itself took on the owner's CPU.
pub struct Request {
    pub work: Work,
    pub done: Arc<AtomicU64>,
}

impl core::fmt::Debug for Request {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Request")
            .field("done", &(self.done.load(Ordering::Acquire) != 0))
            .finish_non_exhaustive()
    }
}

/// Where a guest runs (`conduit_config::placement::assign`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnCpu {
    /// The CPU that runs it, by index (MADT order, CPU 0 the bootstrap processor).
    pub cpu: usize,
    /// It has that CPU to itself: no time slices.
    pub dedicated: bool,
}

/// A created guest, where it runs, and what other CPUs may read without its lock.
#[derive(Debug)]
pub struct Slot {
    pub name: String,
    /// Its functions (fixed at creation).
    pub devices: Vec<conduit_pci::PciAddress>,
    /// One past the highest guest-physical address of its RAM.
    pub memory_end: u64,
    pub placed: OnCpu,
    guest: Mutex<Guest>,
    /// Whether it is runnable, as its CPU last saw it (after each slice and request).
    runnable: AtomicBool,
    /// A request another CPU posted (`crate::sched::remote`).
    request: Mutex<Option<Request>>,
    /// The guest's presence mask (`Guest::presence`): bit k while vCPU k is in VMX non-root
    /// operation, cleared by its CPU at the exit before it takes the lock again.
    presence: Arc<AtomicU64>,
    /// The CPU of each vCPU (index: vCPU).
    pub vcpu_cpus: Vec<usize>,
}

impl Slot {
    /// Guest `g`, placed: its vCPU k runs on CPU `vcpu_cpus[k]` (`placed.cpu`: vCPU 0's).
    pub fn new(mut g: Guest, placed: OnCpu, vcpu_cpus: Vec<usize>) -> Self {
        for (v, &cpu) in g.vcpus.iter_mut().zip(&vcpu_cpus) {
            v.home = cpu;
        }
        Self {
            presence: g.presence.clone(),
            vcpu_cpus,
            name: g.name.clone(),
            devices: g.devices.clone(),
            memory_end: g.memory_end(),
            placed,
            runnable: AtomicBool::new(g.state == State::Runnable),
            guest: Mutex::new(g),
            request: Mutex::new(None),
        }
    }

    /// The guest itself. A CPU that runs one of its vCPUs holds the lock while it handles an
    /// exit and prepares the next entry (`guest::run_slice`); another CPU takes it only once
    /// the guest cannot run any more (end-of-run reports), else it posts a [`Request`]. The wait
    /// serves this CPU's cross-CPU requests (the holder may wait for one: an INVEPT on every
    /// CPU of the guest).
    pub fn lock(&self) -> MutexGuard<'_, Guest> {
        conduit_hw::smp::lock_serving(&self.guest)
    }

    /// vCPU `k` left VMX non-root operation (its CPU, before it takes the lock again).
    pub fn left(&self, k: usize) {
        self.presence.fetch_and(!(1 << k), Ordering::AcqRel);
    }

    /// Whether CPU `cpu` runs one of its vCPUs.
    pub fn runs_on(&self, cpu: usize) -> bool {
        self.vcpu_cpus.contains(&cpu)
    }

    /// Whether the guest is runnable, as of its CPU's last look.
    pub fn runnable(&self) -> bool {
        self.runnable.load(Ordering::Acquire)
    }

    /// Records the guest's state for readers on other CPUs.
    pub fn publish(&self, g: &Guest) {
        self.runnable
            .store(g.state == State::Runnable, Ordering::Release);
    }

    /// The request slot.
    pub fn request(&self) -> MutexGuard<'_, Option<Request>> {
        self.request.lock()
    }
}

/// Why a guest's VMCSs could not move to the CPU placed to run it.
#[derive(Debug)]
pub enum MoveError {
    /// VMCLEAR on the creating CPU failed.
    Clear(VmFail),
    /// VMPTRLD on the new CPU failed.
    Load(VmFail),
    /// Writing the new CPU's host state failed.
    HostState(FieldError),
}

impl core::fmt::Display for MoveError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Clear(e) => write!(f, "VMCLEAR on the creating CPU: {e}"),
            Self::Load(e) => write!(f, "VMPTRLD: {e}"),
            Self::HostState(e) => write!(f, "host state: {e}"),
        }
    }
}

/// What placement does to a guest: its VMCSs move between CPUs, a dedicated CPU takes its time
/// slices away, and another guest's turn takes its extended state out of the registers.
impl Guest {
    /// Before another CPU loads them: VMCLEAR of each vCPU's VMCS on this CPU (the creating one),
    /// so that its state is in memory and it is active on no CPU (SDM Vol. 3C §25.11.1, "a VMCS
    /// must not be active on more than one logical processor").
    pub fn release_vmcs(&mut self) -> Result<(), MoveError> {
        for v in self.vcpus.iter_mut().filter_map(|v| v.vmx.as_mut()) {
            v.vmcs.clear().map_err(MoveError::Clear)?;
        }
        Ok(())
    }

    /// On each CPU that runs some of the guest's vCPUs, before their first entry there: each of
    /// those vCPUs' VMCS made current here and given this CPU's host state (its GDT, TSS, IDT
    /// bases: SDM Vol. 3C §25.5 "Host-State Area"), as `vcpu::setup` did on the creating CPU.
    pub fn adopt_vmcs(&mut self) -> Result<(), MoveError> {
        let here = crate::sched::cpus::this_cpu();
        let mine = self.vcpus.iter().filter(|v| v.home == here);
        for v in mine.filter_map(|v| v.vmx.as_ref()) {
            let mut current = v.vmcs.load().map_err(MoveError::Load)?;
            conduit_hw::vmx::write_host_state(&mut current).map_err(MoveError::HostState)?;
        }
        Ok(())
    }

    /// The guest has its CPU to itself (`dedicated = true`): its slice is made endless in effect
    /// (2^62 TSC ticks; the VMX-preemption timer starts at its largest count, 2^32 - 1), so no
    /// slice end takes the CPU from it; the timer still fires at the guest's own timer deadlines
    /// (`vplatform_exits::before_entry` arms the earlier of the two).
    pub fn dedicate(&mut self) {
        self.slice_tsc = 1 << 62;
        self.slice_ticks = u32::MAX;
    }

    /// This CPU's registers hold the extended state of one of the guest's vCPUs: saved, so that
    /// another guest's vCPU may load its own.
    pub fn save_ext(&mut self) {
        super::xstate::save_live(self);
    }
}

/// The guests and what they run on.
#[derive(Debug, Default)]
pub struct Guests {
    /// VMX, when it is on (`None` on a machine without VMX, or where VMXON failed): its shared
    /// bitmaps and VPID counter, locked for a guest's creation or restart.
    pub host: Option<Mutex<VmxHost>>,
    /// Why `host` is `None`, in words.
    pub no_vmx: Option<String>,
    /// The guests created, in configuration order.
    pub list: Vec<Slot>,
    /// The guests configured but not created.
    pub refused: Vec<Refused>,
    /// The guests placed on a machine without VMX (also in `refused`, with the reason): memory,
    /// EPT and functions exist, no vCPU runs them. Held for the machine's life so that what they
    /// own stays theirs; only the self-tests act on them (through the exit-path entry points).
    #[cfg_attr(
        not(feature = "selftest"),
        expect(
            dead_code,
            reason = "owned for the machine's life; read by the self-tests only"
        )
    )]
    pub without_vcpu: Mutex<Vec<Guest>>,
}

impl Guests {
    /// No guest, no VMX, for this reason.
    pub fn without_vmx(reason: String) -> Self {
        Self {
            no_vmx: Some(reason),
            ..Self::default()
        }
    }

    /// Whether some guest can still run, as their CPUs last saw them.
    pub fn any_runnable(&self) -> bool {
        self.list.iter().any(Slot::runnable)
    }

    /// The refusal of the configured guest `name`, if it was refused.
    pub fn refusal(&self, name: &str) -> Option<&Refused> {
        self.refused.iter().find(|r| r.name == name)
    }

    /// The guests CPU `cpu` runs a vCPU of, with their indices in [`Guests::list`].
    pub fn on_cpu(&self, cpu: usize) -> impl Iterator<Item = (usize, &Slot)> {
        self.list
            .iter()
            .enumerate()
            .filter(move |(_, s)| s.runs_on(cpu))
    }

    /// The guests whose vCPU 0 CPU `cpu` runs: that CPU carries out the requests other CPUs
    /// post for them.
    pub fn owned_by(&self, cpu: usize) -> impl Iterator<Item = (usize, &Slot)> {
        self.list
            .iter()
            .enumerate()
            .filter(move |(_, s)| s.placed.cpu == cpu)
    }
}

/// The shell names created guests; a guest is identified by its index in [`Guests::list`].
impl GuestDirectory for Guests {
    type Id = usize;

    fn lookup(&self, name: &str) -> Option<usize> {
        self.list.iter().position(|g| g.name == name)
    }

    fn address_limit(&self, guest: usize) -> u64 {
        self.list.get(guest).map_or(0, |s| s.memory_end)
    }
}
