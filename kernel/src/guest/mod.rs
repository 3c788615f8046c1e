//! Guests: memory, EPT, vCPU (one VMCS each), console, exit handling policy and statistics.
//!
//! A guest that misbehaves (EPT violation outside its memory, triple fault, an exit Conduit does
//! not handle) is stopped and reported alone; the others go on.

mod bars;
pub mod boot;
mod cpu;
mod cr_exits;
pub mod devices;
pub mod events;
pub mod exits;
mod firmware;
pub mod interrupts;
mod intx;
mod layout;
mod lifecycle;
pub use layout::claim_identity;
pub mod mmio;
mod msr_exits;
mod msrs;
mod osboot;
mod power;
/// The per-guest counters the self-tests log and check.
#[cfg(feature = "selftest")]
pub mod report;
mod set;
mod stats;
pub use stats::{RoundTrips, Stats};
mod run;
pub mod spec;
pub use run::run_slice;
mod vcpu;
mod vcpus;
mod vipi;
use vcpus::VmxVcpu;
pub use vcpus::{Activity, Vcpu};
mod vplatform;
mod vplatform_exits;
mod vuart;
pub mod xstate;

use alloc::format;
use alloc::string::String;
use conduit_clock::Rate;
use conduit_hw::memory::{FRAME_SIZE, Memory, PhysAddr, PhysWindow};
use conduit_hw::vmx::Vmx;
use conduit_hw::vmx::instr::VmFail;
use conduit_hw::vmx::vmcs::{Current, FieldError, VmcsRegion};
use conduit_paging::{Ept, PageTable, Walk};
use conduit_vmx::caps::VmxCapabilities;
use conduit_vmx::fields::Guest32;
#[cfg(feature = "selftest")]
pub use cpu::CpuState;
use devices::GuestDevices;
pub use exits::{Outcome, handle as handle_exit};
use layout::GuestMemory;
use log::info;
pub use set::{Guests, OnCpu, Refused, Request, Slot};
use spec::GuestSpec;
use vuart::VirtualUart;

/// What a guest is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Runnable,
    /// Left through the exit hypercall with this code.
    Exited(u64),
    /// Stopped by the hypervisor: reason, RIP and (where there is one) the GPA.
    Stopped(String),
}

/// The reason a guest stopped when the operator stopped it (`stop` on the debug shell).
pub const STOPPED_BY_OPERATOR: &str = "by operator";

/// Resources shared by every vCPU on this CPU: VMX itself, the all-ones I/O bitmaps and the MSR
/// bitmap (every I/O port and MSR access exits, the handlers implement the policy, except the
/// MSRs each guest has its own copy of: `msrs.rs`), the host's side of MSR switching and XSAVE.
#[derive(Debug)]
pub struct VmxHost {
    pub vmx: Vmx,
    io_bitmap_a: PhysAddr,
    io_bitmap_b: PhysAddr,
    msr_bitmap: PhysAddr,
    msrs: msrs::HostMsrs,
    /// XSAVE on this CPU: what guests may put in XCR0, and their areas' size.
    pub xsave: conduit_hw::xsave::Xsave,
    /// The TSC's rate (`conduit_hw::time`), for time slices and virtual timers.
    pub tsc: Rate,
    next_vpid: u16,
    /// The APIC-access page every guest with APIC virtualization maps at its local APIC's
    /// address (SDM Vol. 3C §30.4); its contents are never used.
    apic_access: PhysAddr,
}

/// Why the resources every vCPU needs could not be set up.
#[derive(Debug)]
pub enum HostError {
    /// No frames for the I/O and MSR bitmaps.
    OutOfMemory,
    Msrs(msrs::MsrSetupError),
    Xsave(conduit_hw::xsave::XsaveError),
}

impl core::fmt::Display for HostError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::OutOfMemory => write!(f, "no memory for the I/O and MSR bitmaps"),
            Self::Msrs(e) => write!(f, "MSR switching: {e}"),
            Self::Xsave(e) => write!(f, "XSAVE: {e}"),
        }
    }
}

impl VmxHost {
    /// `tsc`: the TSC's rate; without one no vCPU is created (`boot::start_all`). Turns XSAVE on
    /// (CR4.OSXSAVE, before any VMCS takes the host's CR4) and reads the host's values of the
    /// switched MSRs (after the control task's SYSCALL set-up, `control::init`).
    pub fn new(vmx: Vmx, mem: &Memory, tsc: Rate) -> Result<Self, HostError> {
        let xsave = conduit_hw::xsave::enable().map_err(HostError::Xsave)?;
        let mut frames = mem.frames.lock();
        let (a, b, m) = (
            frames.allocate().ok_or(HostError::OutOfMemory)?,
            frames.allocate().ok_or(HostError::OutOfMemory)?,
            frames.allocate().ok_or(HostError::OutOfMemory)?,
        );
        let apic_access = frames.allocate().ok_or(HostError::OutOfMemory)?;
        drop(frames);
        let window = PhysWindow::new(mem, true);
        for f in [a, b, m] {
            // SAFETY: the frames were just allocated and are mapped through the window.
            unsafe { core::ptr::write_bytes(window.virt(f.0), 0xff, FRAME_SIZE as usize) };
        }
        // SAFETY: the MSR bitmap frame was just allocated, is 4 KiB and mapped through the window,
        // and nothing else refers to it yet.
        let bitmap = unsafe { &mut *window.virt(m.0).cast::<[u8; 4096]>() };
        let msrs = msrs::HostMsrs::new(mem, vmx.msrs.misc, bitmap).map_err(HostError::Msrs)?;
        info!(
            "xsave: XCR0 allowed for guests {:#x}, area {} bytes by the components' CPUID leaves ({} reported for all); MSR bitmap and VM-entry/exit MSR areas switch {}",
            xsave.mask(),
            xsave.area_size(),
            xsave.reported_size(),
            msrs.names()
        );
        Ok(Self {
            vmx,
            io_bitmap_a: a,
            io_bitmap_b: b,
            msr_bitmap: m,
            msrs,
            xsave,
            tsc,
            next_vpid: 1,
            apic_access,
        })
    }
}

impl VmxHost {
    /// A new vCPU: its own VPID, VMCS, extended state and MSR area (`vcpu::setup` programs it).
    fn vcpu(&mut self, mem: &'static Memory, index: usize) -> Result<Vcpu, CreateError> {
        let vpid = self.next_vpid;
        self.next_vpid = self.next_vpid.wrapping_add(1).max(1);
        let vmcs = VmcsRegion::new(mem, self.vmx.caps.basic.revision)
            .map_err(|e| CreateError::Vmcs(alloc::format!("VMCS allocation: {e}")))?;
        let vmx = VmxVcpu {
            vmcs,
            caps: self.vmx.caps,
            ext: xstate::ExtState::new(self.xsave),
            msrs: self.msrs.guest_area(mem)?,
        };
        Ok(Vcpu::new(index, vpid, Some(vmx), self.tsc))
    }
}

/// The EPTP of the EPT rooted at `root`: memory type WB (6), page-walk length 4 (encoded 3)
/// (SDM Vol. 3C §25.6.11 "Extended-Page-Table Pointer (EPTP)").
fn eptp(root: u64) -> u64 {
    root | 6 | (3 << 3)
}

/// One guest: its memory, EPT, devices, platform and console, shared by its vCPUs.
#[derive(Debug)]
pub struct Guest {
    pub name: String,
    memory: GuestMemory,
    ept: PageTable<Ept, PhysWindow>,
    eptp: u64,
    /// Its vCPUs (vCPU 0 is the bootstrap processor); never empty.
    pub vcpus: alloc::vec::Vec<Vcpu>,
    /// The vCPU that runs (or ran last): the one the exit handlers act on.
    pub current: usize,
    /// IPI round trips between its vCPUs since it last (re)started.
    pub round_trips: RoundTrips,
    /// CR3 of the boot page tables the hypervisor wrote for a 64-bit guest (`layout.rs`).
    boot_cr3: Option<u64>,
    pub state: State,
    uart: VirtualUart,
    /// VMX-preemption timer value for one time slice.
    slice_ticks: u32,
    /// The slice's length in TSC ticks.
    slice_tsc: u64,
    /// The VMX-preemption timer counts once every 2^`timer_shift` TSC ticks (IA32_VMX_MISC).
    timer_shift: u8,
    /// The local APIC, I/O APIC and UART interrupt line of a guest that runs an operating system
    /// (`None` for the hypervisor's own test guests, which take injected vectors without EOI).
    platform: Option<alloc::boxed::Box<vplatform::VirtualPlatform>>,
    /// A reset the guest asked for (`power.rs`), for the scheduler to carry out.
    reset_request: Option<String>,
    /// What the guest was built from: a restart builds it again from this.
    spec: GuestSpec,
    /// How often the operator restarted it.
    pub restarts: u32,
    /// The PCI functions assigned to it (in its IOMMU domain, which outlives a stop).
    pub devices: alloc::vec::Vec<conduit_pci::PciAddress>,
    /// Its view of those functions: configuration ports, BAR mappings (`devices.rs`).
    pub pci: GuestDevices,
    /// For EPT changes at run time (BAR mappings).
    mem: &'static Memory,
    /// Which vCPUs are in VMX non-root operation (bit k: vCPU k), shared with its [`Slot`]: a
    /// vCPU is entered without the guest's lock held (`run.rs`), so this is how the holder knows
    /// which vCPUs run elsewhere at this moment.
    presence: alloc::sync::Arc<core::sync::atomic::AtomicU64>,
}

/// Why a guest could not be created.
#[derive(Debug)]
pub enum CreateError {
    Layout(layout::LayoutError),
    /// An operating system's boot inputs could not be placed.
    OsBoot(osboot::OsBootError),
    Vmcs(String),
    /// The pre-entry guest-state check failed (SDM "Checks on the Guest-State Area").
    GuestState(conduit_vmx::guest_state::GuestStateError),
}

impl core::fmt::Display for CreateError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Layout(e) => write!(f, "{e}"),
            Self::OsBoot(e) => write!(f, "{e}"),
            Self::Vmcs(e) => write!(f, "{e}"),
            Self::GuestState(e) => write!(f, "invalid guest state: {e}"),
        }
    }
}

impl Guest {
    /// Builds the guest: memory, image, EPT, VMCS; then checks the guest state as VM entry
    /// would, so an invalid guest is refused before VMLAUNCH with the failing rule named.
    pub fn create(
        host: &mut VmxHost,
        mem: &'static Memory,
        spec: &GuestSpec,
    ) -> Result<Self, CreateError> {
        let mut guest = Self::with_memory(mem, spec, Some(&host.vmx.caps), host.tsc)?;
        let slice_tsc = host.tsc.ticks_in_us(u64::from(spec.time_slice_us));
        let slice_ticks = slice_tsc >> host.vmx.caps.misc.preemption_timer_rate;
        guest.slice_ticks = slice_ticks.clamp(1, u64::from(u32::MAX)) as u32;
        guest.slice_tsc = slice_tsc;
        guest.timer_shift = host.vmx.caps.misc.preemption_timer_rate;
        guest.vcpus = (0..spec.vcpus as usize)
            .map(|i| host.vcpu(mem, i))
            .collect::<Result<_, _>>()?;
        for i in 0..guest.vcpus.len() {
            guest.current = i;
            vcpu::setup(host, &mut guest, spec)?;
        }
        guest.current = 0;
        info!(
            "guest \"{}\": {} MiB at host {:#x}, EPTP {:#x}, VPID {}, slice {} us = {slice_tsc} TSC \
             ticks ({} preemption-timer ticks), virtual timer {} TSC ticks per ms (TSC {}), entry {:?}",
            guest.name,
            spec.memory_mib,
            guest.memory.host.0,
            guest.eptp,
            guest.vcpus[0].vpid,
            spec.time_slice_us,
            guest.slice_ticks,
            host.tsc.ticks_in_ms(1),
            host.tsc,
            spec.entry
        );
        if guest.vcpus.len() > 1 {
            let vpids: alloc::vec::Vec<_> = guest.vcpus.iter().map(|c| c.vpid).collect();
            info!(
                "guest \"{}\": {} vCPUs (local APIC IDs 0-{}, VPIDs {vpids:?}); vCPUs 1-{} wait for a start-up IPI",
                guest.name,
                guest.vcpus.len(),
                guest.vcpus.len() - 1,
                guest.vcpus.len() - 1
            );
        }
        Ok(guest)
    }

    /// Builds the guest on a machine without VMX: memory, image, EPT and (for a 64-bit guest)
    /// the boot structures, exactly as [`Guest::create`] does, and its `spec.vcpus` vCPUs
    /// without a VMCS, so nothing ever enters them. Its devices' accesses can still be carried
    /// out through the exit-path entry points ([`exits::io_exit`], [`mmio::ept_violation`]).
    pub fn without_vcpu(mem: &'static Memory, spec: &GuestSpec) -> Result<Self, CreateError> {
        // No vCPU ever runs this guest, so no virtual timer is armed; the rate only fills the field.
        let rate = conduit_hw::time::wait_rate();
        let mut guest = Self::with_memory(mem, spec, None, rate)?;
        guest.vcpus = (0..spec.vcpus as usize)
            .map(|i| Vcpu::new(i, 0, None, rate))
            .collect();
        // An OS guest's virtual platform, in software emulation, as `vcpu::setup` builds it where
        // vCPUs run: its I/O APIC receives the guest's INTx lines and its local APIC takes EOIs
        // through the same MMIO entry points (the self-tests' scripted drivers use them).
        if spec.has_platform() {
            let p =
                vplatform::VirtualPlatform::new(mem, guest.vcpus.len(), false, rate.khz() * 1000)
                    .map_err(|e| CreateError::Vmcs(alloc::format!("{e}")))?;
            guest.platform = Some(alloc::boxed::Box::new(p));
        }
        guest.boot_cr3 = match layout::boot_selectors(spec.entry) {
            Some(sel) => Some(
                guest
                    .memory
                    .build_long_mode(sel)
                    .map_err(CreateError::Layout)?,
            ),
            None => None,
        };
        Ok(guest)
    }

    /// What [`Guest::create`] and [`Guest::without_vcpu`] share: the guest's memory with its
    /// image loaded and its EPT (`caps`: the CPU's, for large pages; `None` without VMX), and
    /// every other field at its initial value. No vCPU yet (no VMCS, VPID 0, no time slice).
    fn with_memory(
        mem: &'static Memory,
        spec: &GuestSpec,
        caps: Option<&VmxCapabilities>,
        tsc: Rate,
    ) -> Result<Self, CreateError> {
        let mut memory = GuestMemory::allocate(mem, &spec.name, spec.memory_mib, spec.ram)
            .map_err(CreateError::Layout)?;
        memory.load(spec).map_err(CreateError::Layout)?;
        osboot::load(&mut memory, spec).map_err(CreateError::OsBoot)?;
        let ept = memory.build_ept(mem, caps).map_err(CreateError::Layout)?;
        Ok(Self {
            name: spec.name.clone(),
            memory,
            eptp: eptp(ept.root()),
            ept,
            vcpus: alloc::vec![Vcpu::new(0, 0, None, tsc)],
            current: 0,
            round_trips: RoundTrips::ZERO,
            boot_cr3: None,
            state: State::Runnable,
            uart: VirtualUart::new(),
            slice_ticks: 0,
            slice_tsc: 0,
            timer_shift: 0,
            platform: None,
            reset_request: None,
            spec: spec.clone(),
            restarts: 0,
            devices: alloc::vec::Vec::new(),
            pci: GuestDevices::default(),
            mem,
            presence: alloc::sync::Arc::default(),
        })
    }

    /// CR3 of the page tables the hypervisor wrote for a 64-bit guest (`None` for others).
    #[cfg(feature = "selftest")]
    pub fn boot_cr3(&self) -> Option<u64> {
        self.boot_cr3
    }

    /// What the guest was built from.
    pub fn spec(&self) -> &GuestSpec {
        &self.spec
    }

    /// The size of its memory (GPA `[0, size)`).
    pub fn memory_size(&self) -> u64 {
        self.memory.size
    }

    /// The host-physical address of its memory.
    pub fn memory_host(&self) -> u64 {
        self.memory.host.0
    }

    /// Its EPT pointer.
    pub fn eptp(&self) -> u64 {
        self.eptp
    }

    /// The walk of `gpa` through its EPT, level by level.
    pub fn ept_walk(&self, gpa: u64) -> Result<Walk, conduit_paging::Error> {
        self.ept.walk(gpa)
    }

    /// Whether a #GP is queued for the next entry (not yet in the VMCS).
    pub fn gp_queued(&self) -> bool {
        self.vcpu().events.gp_queued()
    }

    /// The state in words: `running`, `exited with code 0x64`, `stopped (why)`.
    pub fn state_text(&self) -> String {
        match &self.state {
            State::Runnable if self.vcpu().halted => {
                String::from("halted (in HLT until its next slice)")
            }
            State::Runnable => String::from("running"),
            State::Exited(code) => alloc::format!("exited with code {code:#x}"),
            State::Stopped(why) => alloc::format!("stopped ({why})"),
        }
    }

    /// The vCPU that runs (or ran last), which the exit handlers act on.
    pub fn vcpu(&self) -> &Vcpu {
        &self.vcpus[self.current]
    }

    /// The vCPU that runs, mutably.
    pub fn vcpu_mut(&mut self) -> &mut Vcpu {
        &mut self.vcpus[self.current]
    }

    /// " on vCPU N" (the current one) for a guest with several vCPUs, for the reason it stops or
    /// resets; empty for one vCPU.
    pub fn which_vcpu(&self) -> String {
        if self.vcpus.len() > 1 {
            alloc::format!(" on vCPU {}", self.current)
        } else {
            String::new()
        }
    }

    /// Its statistics: the sum of its vCPUs'.
    pub fn stats(&self) -> Stats {
        Stats::sum(self.vcpus.iter().map(|v| &v.stats))
    }
}

impl Guest {
    /// The guest's id for the interrupt path and the control task: its index in the
    /// configuration.
    pub fn id(&self) -> conduit_irq::GuestId {
        conduit_irq::GuestId(self.pci.index)
    }

    /// The guest's RAM as (GPA, HPA, length) pieces: one from GPA 0, or for identity-placed RAM
    /// its first MiB at GPA 0 and the rest at GPA = HPA.
    pub fn memory_pieces(&self) -> alloc::vec::Vec<(u64, u64, u64)> {
        self.memory.pieces().collect()
    }

    /// One past the highest guest-physical address of its RAM.
    pub fn memory_end(&self) -> u64 {
        self.memory.ram.end()
    }

    /// Makes this guest's VMCS current (once per time slice).
    pub fn load_vmcs(&self) -> Result<Current, VmFail> {
        self.vcpu().vmx.as_ref().ok_or(VmFail::Invalid)?.vmcs.load()
    }

    /// Starts a new time slice: the VMX-preemption timer counts down from the slice length (for
    /// a guest with a platform, from the earlier of its end and the guest's timer deadline,
    /// before every entry: `vplatform_exits::before_entry`).
    pub fn arm_timer(&mut self, v: &mut Current) -> Result<(), FieldError> {
        self.vcpu_mut().slice_end = conduit_hw::rdtsc().saturating_add(self.slice_tsc);
        v.set(Guest32::PreemptionTimerValue, self.slice_ticks)
    }

    /// Whether VMLAUNCH already succeeded (then entries use VMRESUME).
    pub fn launched(&self) -> bool {
        self.vcpu().vmx.as_ref().is_some_and(|v| v.vmcs.launched)
    }

    pub fn set_launched(&mut self) {
        if let Some(v) = self.vcpu_mut().vmx.as_mut() {
            v.vmcs.launched = true;
        }
    }

    /// Invalidates what processors cached from its EPT after a change (INVEPT single-context,
    /// SDM Vol. 3C §29.4.3.1): on this CPU when every vCPU runs here, else on each CPU that runs
    /// one of its vCPUs (`invept_on`, with interrupts enabled for the cross-CPU requests; a CPU
    /// that waits for this guest's lock serves them meanwhile). A guest without a vCPU has no
    /// translations cached anywhere.
    pub(super) fn invept(&self) -> Result<(), String> {
        let Some(caps) = self.vmx_caps() else {
            return Ok(());
        };
        let here = crate::sched::cpus::this_cpu();
        if self.vcpus.iter().all(|v| v.home == here) {
            return conduit_hw::vmx::invept(caps, self.eptp).map_err(|e| format!("INVEPT: {e}"));
        }
        let mut cpus: alloc::vec::Vec<usize> = self.vcpus.iter().map(|v| v.home).collect();
        cpus.sort_unstable();
        cpus.dedup();
        let eptp = self.eptp;
        conduit_hw::smp::with_interrupts(|| conduit_hw::vmx::invept_on(&cpus, eptp))
            .map(|_| ())
            .map_err(|e| format!("INVEPT on the guest's CPUs {cpus:?}: {e}"))
    }

    /// Its extended state (`None`: no vCPU).
    fn ext_mut(&mut self) -> Option<&mut xstate::ExtState> {
        self.vcpu_mut().vmx.as_mut().map(|v| &mut v.ext)
    }

    /// The VMX capabilities of its vCPU (`None`: no vCPU, so no hardware caches its EPT).
    fn vmx_caps(&self) -> Option<&VmxCapabilities> {
        self.vcpu().vmx.as_ref().map(|v| &v.caps)
    }
}
