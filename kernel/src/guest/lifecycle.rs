//! A guest's life beyond its creation: stopped (by the hypervisor or the operator), restarted
//! from its image, and, for a guest whose vCPUs run on several CPUs, the presence of each vCPU in
//! VMX non-root operation that stops and restarts respect (docs/vcpus.md, "One guest on several
//! CPUs").

use super::{CreateError, Guest, RoundTrips, STOPPED_BY_OPERATOR, State, VirtualUart, VmxHost};
use super::{devices, osboot, vcpu};
use alloc::string::String;
use log::{info, warn};

/// How long [`Guest::quiesce`] waits for a guest's vCPUs on other CPUs to leave it.
pub const QUIESCE_MS: u64 = 1000;

impl Guest {
    /// Stops the guest with a reason (it never runs again).
    pub fn stop(&mut self, reason: String) {
        self.uart.flush(&self.name);
        warn!("guest \"{}\" stopped: {reason}", self.name);
        self.state = State::Stopped(reason);
        // Its vCPUs on other CPUs leave at once and do not enter again.
        self.kick_running();
    }

    /// Stops the guest at the operator's request: it is not entered again until `restart`, and
    /// its functions stop mastering the bus (Command.BME cleared: no more DMA or MSI from them).
    /// Its memory, EPT and IOMMU domain stay, with the functions assigned. Returns each function
    /// with its Command register after the write (`None`: it did not answer).
    pub fn stop_by_operator(&mut self) -> alloc::vec::Vec<(conduit_pci::PciAddress, Option<u16>)> {
        self.stop(String::from(STOPPED_BY_OPERATOR));
        // Physical configuration space belongs to the control task: it resets the guest's view
        // of each function and turns the device's bus mastering off.
        devices::reset_functions(self)
            .into_iter()
            .map(|(bdf, command)| {
                match command {
                    Some(c) => info!(
                        "guest \"{}\": {bdf} quiesced: bus mastering off (Command {c:#06x})",
                        self.name
                    ),
                    None => warn!("guest \"{}\": {bdf} did not answer", self.name),
                }
                (bdf, command)
            })
            .collect()
    }

    /// Builds the guest again from its spec in the memory, EPT, VPIDs and VMCSs it already has:
    /// memory zeroed and the image reloaded, registers and statistics reset; each VMCS cleared
    /// and programmed and checked as at creation, by the CPU that runs its vCPU (at once for
    /// this CPU's vCPUs, before their next entry for the others: [`Guest::setup_here`]). Its
    /// vCPUs on other CPUs are first made to leave the guest ([`Guest::quiesce`]). On failure the
    /// guest stays stopped.
    pub fn restart(&mut self, host: &mut VmxHost) -> Result<(), CreateError> {
        self.uart.flush(&self.name);
        self.state = State::Stopped(String::from("restarting"));
        let start = conduit_hw::rdtsc();
        let result = self.quiesce().map_err(CreateError::Vmcs).and_then(|left| {
            let here = crate::sched::cpus::this_cpu();
            let elsewhere = self.vcpus.iter().filter(|v| v.home != here).count();
            if elsewhere > 0 {
                info!(
                    "guest \"{}\": restart: {left} of its {elsewhere} vCPU(s) on other CPUs were \
                     in the guest and left it ({} TSC ticks)",
                    self.name,
                    conduit_hw::rdtsc().wrapping_sub(start)
                );
            }
            self.rebuild(host)
        });
        match &result {
            Ok(()) => {
                self.restarts += 1;
                self.state = State::Runnable;
                info!(
                    "guest \"{}\" restarted from its image (restart {})",
                    self.name, self.restarts
                );
            }
            Err(e) => self.stop(alloc::format!("restart failed: {e}")),
        }
        result
    }

    fn rebuild(&mut self, host: &mut VmxHost) -> Result<(), CreateError> {
        for vcpu in &mut self.vcpus {
            vcpu.reset(self.mem, &host.msrs)?;
            vcpu.needs_setup = true;
        }
        self.memory.reset();
        self.memory.load(&self.spec).map_err(CreateError::Layout)?;
        osboot::load(&mut self.memory, &self.spec).map_err(CreateError::OsBoot)?;
        let attached = self.uart.attached;
        self.uart = VirtualUart::new();
        self.uart.attached = attached;
        crate::irq::dispatch::clear_guest(self.id());
        self.round_trips = RoundTrips::ZERO;
        // The platform is the guest's: its models back to power-up (same frames, same mode).
        if let Some(p) = self.platform.as_mut() {
            p.reset(p.apicv, host.tsc.khz() * 1000)
                .map_err(|e| CreateError::Vmcs(alloc::format!("local APIC: {e:?}")))?;
            // Nothing the guest asserted before will see its EOI now.
            crate::irq::guest_reset(self.id());
        }
        let here = crate::sched::cpus::this_cpu();
        for i in 0..self.vcpus.len() {
            if self.vcpus[i].home == here {
                self.setup_here(host, i)?;
            }
        }
        Ok(())
    }

    /// Programs vCPU `i`'s VMCS again after a restart, on its own CPU (this one): VMCLEAR, then
    /// `vcpu::setup` as at creation (this CPU's host state, the guest state for its entry).
    pub(super) fn setup_here(&mut self, host: &mut VmxHost, i: usize) -> Result<(), CreateError> {
        self.vcpus[i].clear_vmcs()?;
        let current = core::mem::replace(&mut self.current, i);
        let spec = self.spec.clone();
        let result = vcpu::setup(host, self, &spec);
        self.current = current;
        self.vcpus[i].needs_setup = false;
        result
    }

    /// Makes every vCPU that runs on another CPU leave VMX non-root operation: each such CPU is
    /// sent the IPI that ends its guest's slice (an external-interrupt exit), and this CPU waits,
    /// serving its own cross-CPU requests, until none is left in the guest (at most
    /// [`QUIESCE_MS`]). The caller holds the guest's lock, so none enters again meanwhile; a vCPU
    /// that left finds the guest changed when it takes the lock (`run.rs`). Returns how many
    /// were inside.
    pub(super) fn quiesce(&self) -> Result<u32, String> {
        use core::sync::atomic::Ordering;
        let inside = self.presence.load(Ordering::Acquire);
        if inside == 0 {
            return Ok(0);
        }
        self.kick_running();
        let mut deadline = conduit_hw::time::Deadline::after_ms(QUIESCE_MS);
        loop {
            let left = self.presence.load(Ordering::Acquire);
            if left == 0 {
                return Ok(inside.count_ones());
            }
            conduit_hw::smp::serve_own_mailbox();
            match deadline.poll() {
                Ok(false) => core::hint::spin_loop(),
                Ok(true) | Err(_) => {
                    let k = left.trailing_zeros() as usize;
                    return Err(alloc::format!(
                        "vCPU {k} did not leave the guest on cpu {} within {QUIESCE_MS} ms",
                        self.vcpus.get(k).map_or(0, |v| v.home)
                    ));
                }
            }
        }
    }

    /// vCPU `i` is about to enter VMX non-root operation on its CPU (`true`, its presence bit
    /// set), or its CPU handles it again after an exit (`false`; the bit was cleared by
    /// [`Slot::left`] already): while present, what is sent to it waits in the platform's inbox.
    pub(super) fn set_present(&mut self, i: usize, present: bool) {
        use core::sync::atomic::Ordering;
        if present {
            self.presence.fetch_or(1 << i, Ordering::AcqRel);
        } else {
            self.presence.fetch_and(!(1 << i), Ordering::AcqRel);
        }
        if let Some(p) = self.platform.as_mut() {
            p.set_away(i, present);
        }
    }

    /// Sends the CPU of each vCPU in VMX non-root operation the IPI that makes it leave (it then
    /// sees what changed: a stop, a restart, an interrupt for it).
    pub(super) fn kick_running(&self) {
        let inside = self.presence.load(core::sync::atomic::Ordering::Acquire);
        for v in self.vcpus.iter().filter(|v| inside & (1 << v.index) != 0) {
            crate::sched::cpus::kick(v.home);
        }
    }
}
