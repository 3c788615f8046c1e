//! Running a guest for one time slice on this CPU: the guest picks its next runnable vCPU among
//! the ones placed here (round-robin; a vCPU waiting in HLT with nothing to wake it, or for a
//! start-up IPI, passed over), makes it current on this CPU (its VMCS, its extended state) and
//! enters it until the slice ends (VMX-preemption timer, HLT, a yield hypercall: SDM Vol. 3C
//! §26.5.1 "VMX-Preemption Timer") or the guest finishes.
//!
//! The guest's lock is held while an exit is handled and the next entry prepared, not while the
//! vCPU runs: a guest whose vCPUs are placed on several CPUs runs them there at the same time.
//! While vCPU k is in VMX non-root operation its bit in the guest's presence mask is set, and
//! whoever holds the lock meanwhile touches neither its registers nor its VMCS (another CPU
//! cannot load it) nor its local APIC's page (under APIC virtualization the processor running
//! it updates that page: interrupts for it wait in the platform's inbox,
//! `vplatform::VirtualPlatform::set_away`); it is sent an IPI instead, so that it leaves and
//! sees what changed.

use super::{Guest, Outcome, Slot, State, VmxHost, xstate};
use alloc::format;
use alloc::string::String;
use conduit_hw::rdtsc;
use conduit_hw::vmx::run::{self, GuestRegs};
use log::info;

impl Guest {
    /// The vCPU to run next on this CPU: the first after the current one, wrapping around, that
    /// is placed here, has started and is not waiting (`None`: each waits for an interrupt or a
    /// start-up IPI). A vCPU of a guest with a virtual platform that waits in HLT with nothing
    /// to wake it is passed over, as a halted processor stays halted until an interrupt (SDM
    /// Vol. 3A §9.10 "HLT"); the hypervisor's own test guests resume after a HLT at their next
    /// slice.
    fn pick_vcpu(&mut self) -> Option<usize> {
        let n = self.vcpus.len();
        let platform = self.has_platform();
        let from = self.current;
        (1..=n).map(|k| (from + k) % n).find(|&i| {
            self.here(i) && self.vcpus[i].started() && !(platform && self.vcpu_waiting(i))
        })
    }

    /// Whether vCPU `i` is placed on this CPU.
    pub fn here(&self, i: usize) -> bool {
        self.vcpus[i].home == crate::sched::cpus::this_cpu()
    }

    /// Whether every vCPU placed on this CPU is in HLT with nothing to wake it yet (no
    /// interrupt it could take, no timer due) or waits for a start-up IPI. Then this CPU may
    /// sleep until its next physical interrupt.
    pub fn waiting(&mut self) -> bool {
        let waiting = (0..self.vcpus.len()).all(|i| !self.here(i) || self.vcpu_waiting(i));
        // A device vector taken meanwhile for a vCPU on another CPU: that CPU is told now.
        self.deliver_signals();
        waiting
    }

    /// Whether vCPU `i` waits ([`Guest::current_waiting`]; its state is looked at as the exit
    /// handlers see it, with `i` current; the current vCPU is restored).
    fn vcpu_waiting(&mut self, i: usize) -> bool {
        let current = core::mem::replace(&mut self.current, i);
        let waiting = self.current_waiting();
        self.current = current;
        waiting
    }

    /// Prepares vCPU `i` (placed here) for its slice: programmed again after a restart by
    /// another CPU, its extended state in the registers, its VMCS current, its start-up IPI
    /// taken, its slice timed. `None` (with the guest stopped and the reason) if that fails.
    fn prepare(
        &mut self,
        host: Option<&spin::Mutex<VmxHost>>,
        i: usize,
    ) -> Option<conduit_hw::vmx::vmcs::Current> {
        self.current = i;
        if self.vcpus[i].needs_setup {
            let done = match host {
                Some(host) => self.setup_here(&mut conduit_hw::smp::lock_serving(host), i),
                None => Err(super::CreateError::Vmcs(String::from("no VMX"))),
            };
            if let Err(e) = done {
                self.stop(format!("restart failed: vCPU {i}: {e}"));
                return None;
            }
        }
        if let Err(e) = xstate::load(self) {
            self.stop(format!("cannot load its extended state: {e}"));
            return None;
        }
        let mut v = match self.load_vmcs() {
            Ok(v) => v,
            Err(e) => {
                self.stop(format!("cannot make its VMCS current: {e}"));
                return None;
            }
        };
        if let Some(vector) = self.vcpu_mut().startup.take() {
            // The state after INIT (SDM Vol. 3A §9.1.1): no register, event or IPI of before.
            let cpu = self.vcpu_mut();
            cpu.regs = GuestRegs::default();
            cpu.events.clear_pending();
            cpu.ipi_sent = None;
            cpu.halted = false;
            cpu.halted_without_if = false;
            if let Err(e) = super::vcpu::start_up(self, &mut v, vector) {
                self.stop(format!(
                    "vCPU {i}: cannot start it at its start-up IPI: {e}"
                ));
                return None;
            }
        }
        if let Err(e) = self.arm_timer(&mut v) {
            self.stop(format!("{e}"));
            return None;
        }
        super::devices::sync(self);
        Some(v)
    }
}

/// Runs the next runnable vCPU of the guest in `slot` that is placed on this CPU until it
/// yields or the guest finishes; returns how many exits it handled. Nothing runs when each of
/// those vCPUs waits for an interrupt. `host`: for a vCPU to be programmed again after a
/// restart.
pub fn run_slice(slot: &Slot, host: Option<&spin::Mutex<VmxHost>>) -> u64 {
    let mut g = slot.lock();
    let Some(i) = g.pick_vcpu() else {
        return 0;
    };
    let Some(mut v) = g.prepare(host, i) else {
        return 0;
    };
    let mut exits = 0;
    loop {
        crate::irq::interrupt_window();
        // A request's IPI taken in that window ends the slice before the entry, not at the
        // guest's next exit.
        if crate::sched::remote::wanted() {
            return exits;
        }
        // While the lock was not held another CPU may have INITed (and started) this vCPU or
        // restarted the guest; the current vCPU is whichever it handled last.
        g.current = i;
        let cpu = &g.vcpus[i];
        if !cpu.started() || cpu.startup.is_some() || cpu.needs_setup {
            return exits;
        }
        if let Err(e) = g.before_entry(&mut v) {
            g.stop(format!("{e}"));
            return exits;
        }
        if g.state != State::Runnable {
            return exits;
        }
        // What `before_entry` handed on (a device vector for another vCPU) is sent now, not at
        // this vCPU's next exit; this entry goes ahead (its events are in the VMCS already), so
        // whether this vCPU should give the CPU up is decided at that exit.
        g.deliver_signals();
        g.vcpus[i].halted = false;
        let inits = g.vcpus[i].inits;
        let start = rdtsc();
        if let Some(sent) = g.vcpus[i].ipi_sent.take() {
            g.round_trips.add(start.wrapping_sub(sent));
        }
        let launched = g.launched();
        g.set_present(i, true);
        let regs: *mut GuestRegs = &mut g.vcpus[i].regs;
        drop(g);
        // `regs` points into the guest's vCPU vector, never resized after creation and as old as
        // the slot; while this vCPU's presence bit is set no other CPU reads or writes its
        // registers (module docs), and this CPU takes the lock again before it touches the guest.
        // SAFETY: the VMCS is current, programmed and checked (`Guest::create`, `setup_here`);
        // `regs` is valid and used by this CPU alone until the exit (above).
        let entered = unsafe { run::enter(&mut *regs, launched) };
        let end = rdtsc();
        // An interrupt the exit acknowledged is handled (and EOIed) first, whatever became of
        // the guest meanwhile.
        let exited = entered.map(|()| super::exits::host_interrupt(&mut v));
        // Out of the guest: a CPU that waits for this (`Guest::quiesce`) holding the lock goes on.
        slot.left(i);
        g = slot.lock();
        g.set_present(i, false);
        g.current = i;
        g.vcpus[i].stats.tsc_in_guest += end.wrapping_sub(start);
        let reason = match exited {
            Ok(Ok(reason)) => reason,
            Ok(Err(e)) => {
                g.stop(format!("exit handling failed: {e}"));
                return exits;
            }
            Err(fail) => {
                let what = if launched { "VMRESUME" } else { "VMLAUNCH" };
                g.stop(format!("{what} failed: {fail}"));
                return exits;
            }
        };
        if !launched && i == 0 {
            // The start of the guest's boot, for figures measured from the log (scripts/bench).
            info!("guest \"{}\": first VM entry", g.name);
        } else if !launched {
            info!("guest \"{}\": vCPU {i}: first VM entry", g.name);
        }
        // Restarted by another CPU while it ran: this exit belongs to what was, and the VMCS
        // is programmed anew before the next entry.
        if g.vcpus[i].needs_setup {
            return exits;
        }
        g.set_launched();
        // INITed by another vCPU while it ran: this exit belongs to the context the INIT ended
        // (a start-up IPI, if one came too, is taken at its next slice: `prepare`).
        if g.vcpus[i].inits != inits {
            return exits;
        }
        // Stopped by another CPU while it ran: nothing of this exit is carried out.
        if g.state != State::Runnable {
            return exits;
        }
        exits += 1;
        let outcome = super::handle_exit(&mut g, &mut v, reason);
        // IPIs to other vCPUs: those here run next, after this exit; those elsewhere are sent
        // their CPU's IPI.
        let give_up = g.deliver_signals();
        match outcome {
            // Another CPU posted a request for this one (`sched::remote`): its IPI caused this
            // exit, and the slice ends here so that the request is carried out.
            Ok(Outcome::Resume) if !give_up && !crate::sched::remote::wanted() => continue,
            Ok(Outcome::Resume) => return exits,
            Ok(Outcome::Yield | Outcome::Done) => return exits,
            Err(e) => {
                g.stop(format!("exit handling failed: {e}"));
                return exits;
            }
        }
    }
}
