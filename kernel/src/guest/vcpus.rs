//! One virtual processor of a guest: what each vCPU has for itself (its VMCS, registers, pending
//! events and virtual timer, MSR area, extended state, statistics), as opposed to what all of a
//! guest's vCPUs share (memory, EPT, devices, I/O APIC, UART: [`super::Guest`]).

use super::{Stats, events, msrs, xstate};
use conduit_clock::Rate;
use conduit_hw::vmx::run::GuestRegs;
use conduit_hw::vmx::vmcs::VmcsRegion;
use conduit_vmx::caps::VmxCapabilities;

/// Placeholder fixed bits of a vCPU without a VMCS (`vcpu::setup` sets the real ones).
const NO_FIXED_BITS: conduit_vmx::cr::FixedBits = conduit_vmx::cr::FixedBits {
    fixed0: 0,
    fixed1: u64::MAX,
};

/// Where a vCPU is in the multiprocessor start-up (SDM Vol. 3A §9.4 "Multiple-Processor (MP)
/// Initialization"): the bootstrap processor runs from the guest's entry point; the others wait
/// for a start-up IPI, after their INIT or from power-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// It runs (or waits in HLT like any running processor).
    Active,
    /// Wait-for-SIPI: it is not entered until a start-up IPI arrives. The hypervisor keeps it
    /// out of VMX non-root operation instead of entering it in the VMCS activity state
    /// "wait-for-SIPI" (SDM Vol. 3C §25.4.2), since its start-up IPIs are virtual: they come
    /// from the guest's own local APICs, never from the physical bus.
    WaitForSipi,
}

/// One vCPU (vCPU 0 is the guest's bootstrap processor).
#[derive(Debug)]
pub struct Vcpu {
    /// Its index in the guest, which is also its local APIC ID.
    pub index: usize,
    /// The physical CPU that runs it (placement: `conduit_config::placement::vcpu_cpu`). Only
    /// that CPU loads its VMCS and holds its extended state in its registers.
    pub home: usize,
    /// Its VMCS is to be programmed again on its CPU before its next entry: its guest was
    /// restarted by another CPU, which cannot load this VMCS (`Guest::rebuild`).
    pub(super) needs_setup: bool,
    /// Running, or waiting for a start-up IPI.
    pub activity: Activity,
    /// A start-up IPI's vector (the start page) it takes at its next slice
    /// (`vcpu::start_up`).
    pub(super) startup: Option<u8>,
    /// Start-up IPIs it took since its guest (re)started.
    pub starts: u32,
    /// INITs it received (counts on): its CPU drops an exit that was in flight when one came
    /// (`run.rs`).
    pub(super) inits: u32,
    /// Its VPID (0: no VMCS).
    pub vpid: u16,
    /// Its VMCS and the VMX capabilities it was set up for; `None` for a guest placed on a
    /// machine without VMX, whose vCPUs never run.
    pub(super) vmx: Option<VmxVcpu>,
    pub regs: GuestRegs,
    pub stats: Stats,
    /// What the next entries inject, and the virtual timer (`events.rs`).
    pub events: events::Events,
    /// Its last slice ended in HLT: it waits for its next slice (HLT yields the CPU).
    pub halted: bool,
    /// That HLT ran with RFLAGS.IF clear (an OS guest then stays halted).
    pub(super) halted_without_if: bool,
    /// Its emulated MSRs and the policy of which MSRs it has (`msr_exits.rs`); `None` without a
    /// VMCS.
    pub(super) msr_state: Option<conduit_cpu_policy::MsrState>,
    /// The VMX-fixed bits of its CR0 and CR4 (`cr_exits.rs` forces them under what the guest
    /// writes).
    pub(super) cr_fixed: (conduit_vmx::cr::FixedBits, conduit_vmx::cr::FixedBits),
    /// The VMCS TSC offset as last written (`msr_exits.rs`): its TSC is the host's plus this.
    pub(super) tsc_offset: u64,
    /// The TSC value at which its current time slice ends.
    pub(super) slice_end: u64,
    /// The TSC value at which it gave the CPU up after sending an IPI to another vCPU: its next
    /// entry ends an IPI round trip (`Guest::round_trips`).
    pub(super) ipi_sent: Option<u64>,
}

/// What a vCPU that runs has beyond its registers: its VMCS, and the capabilities its
/// invalidations (INVEPT) depend on.
#[derive(Debug)]
pub(super) struct VmxVcpu {
    pub(super) vmcs: VmcsRegion,
    pub(super) caps: VmxCapabilities,
    /// Its extended state and debug registers (`xstate.rs`).
    pub(super) ext: xstate::ExtState,
    /// Its MSR area (`msrs.rs`).
    pub(super) msrs: msrs::GuestMsrs,
}

impl Vcpu {
    /// vCPU `index` in its initial state (the BSP active, the others waiting for a start-up
    /// IPI), with this VMCS (`None`: it never runs); `tsc` rates its virtual timer.
    pub(super) fn new(index: usize, vpid: u16, vmx: Option<VmxVcpu>, tsc: Rate) -> Self {
        Self {
            index,
            home: 0,
            needs_setup: false,
            activity: Self::power_up(index),
            startup: None,
            starts: 0,
            inits: 0,
            vpid,
            vmx,
            regs: GuestRegs::default(),
            stats: Stats::ZERO,
            events: events::Events::new(0, false, tsc),
            halted: false,
            halted_without_if: false,
            msr_state: None,
            cr_fixed: (NO_FIXED_BITS, NO_FIXED_BITS),
            tsc_offset: 0,
            slice_end: 0,
            ipi_sent: None,
        }
    }

    /// Back to the initial state for a restart of its guest, on the same VPID and frames; its
    /// VMCS is cleared and programmed again by [`Vcpu::clear_vmcs`] and `vcpu::setup` on its own
    /// CPU. It must not be in VMX non-root operation meanwhile (`Guest::quiesce`).
    pub(super) fn reset(
        &mut self,
        mem: &'static conduit_hw::memory::Memory,
        host: &msrs::HostMsrs,
    ) -> Result<(), super::CreateError> {
        let vmx = self
            .vmx
            .as_mut()
            .ok_or_else(|| super::CreateError::Vmcs("the guest has no vCPU".into()))?;
        vmx.ext.reset();
        vmx.msrs.reset(mem, host);
        self.regs = GuestRegs::default();
        self.stats = Stats::ZERO;
        self.halted = false;
        self.halted_without_if = false;
        self.tsc_offset = 0;
        self.activity = Self::power_up(self.index);
        self.startup = None;
        self.starts = 0;
        self.ipi_sent = None;
        Ok(())
    }

    /// VMCLEAR of its VMCS on this CPU, its home (SDM Vol. 3C §25.11.3): in memory and not
    /// launched, for `vcpu::setup` to program as new.
    pub(super) fn clear_vmcs(&mut self) -> Result<(), super::CreateError> {
        let vmx = self
            .vmx
            .as_mut()
            .ok_or_else(|| super::CreateError::Vmcs("the guest has no vCPU".into()))?;
        vmx.vmcs
            .clear()
            .map_err(|e| super::CreateError::Vmcs(alloc::format!("VMCLEAR: {e}")))
    }

    /// The activity at power-up: the BSP (vCPU 0) runs, the others wait for a start-up IPI.
    fn power_up(index: usize) -> Activity {
        if index == 0 {
            Activity::Active
        } else {
            Activity::WaitForSipi
        }
    }

    /// Whether it has started (it is not waiting for a start-up IPI).
    pub fn started(&self) -> bool {
        self.activity == Activity::Active
    }
}
