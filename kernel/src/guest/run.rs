//! Running a guest for one time slice: the guest picks its next runnable vCPU (round-robin; a
//! vCPU waiting in HLT with nothing to wake it, or for a start-up IPI, passed over), makes it current on this CPU (its
//! VMCS, its extended state) and enters it until the slice ends (VMX-preemption timer, HLT, a
//! yield hypercall: SDM Vol. 3C §26.5.1 "VMX-Preemption Timer") or the guest finishes.

use super::{Guest, Outcome, State, xstate};
use alloc::format;
use conduit_hw::rdtsc;
use conduit_hw::vmx::run;
use log::info;

impl Guest {
    /// The vCPU to run next: the first after the current one, wrapping around, that has started
    /// and is not waiting (`None`: each waits for an interrupt or a start-up IPI). A vCPU of a
    /// guest with a virtual platform that waits in HLT with nothing to wake it is passed over, as
    /// a halted processor stays halted until an interrupt (SDM Vol. 3A §9.10 "HLT"); the
    /// hypervisor's own test guests resume after a HLT at their next slice.
    fn pick_vcpu(&mut self) -> Option<usize> {
        let n = self.vcpus.len();
        let platform = self.has_platform();
        let from = self.current;
        (1..=n)
            .map(|k| (from + k) % n)
            .find(|&i| self.vcpus[i].started() && !(platform && self.vcpu_waiting(i)))
    }

    /// Whether every vCPU is in HLT with nothing to wake it yet (no interrupt it could take, no
    /// timer due) or waits for a start-up IPI. Then the CPU may sleep until the next physical
    /// interrupt.
    pub fn waiting(&mut self) -> bool {
        (0..self.vcpus.len()).all(|i| self.vcpu_waiting(i))
    }

    /// Whether vCPU `i` waits ([`Guest::current_waiting`]; its state is looked at as the exit
    /// handlers see it, with `i` current; the current vCPU is restored).
    fn vcpu_waiting(&mut self, i: usize) -> bool {
        let current = core::mem::replace(&mut self.current, i);
        let waiting = self.current_waiting();
        self.current = current;
        waiting
    }
}

/// Runs `g`'s next runnable vCPU until it yields or the guest finishes. Nothing runs when each
/// of its vCPUs waits for an interrupt.
pub fn run_slice(g: &mut Guest) {
    let Some(i) = g.pick_vcpu() else {
        return;
    };
    g.current = i;
    if let Err(e) = xstate::load(g) {
        g.stop(format!("cannot load its extended state: {e}"));
        return;
    }
    let mut v = match g.load_vmcs() {
        Ok(v) => v,
        Err(e) => {
            g.stop(format!("cannot make its VMCS current: {e}"));
            return;
        }
    };
    if let Some(vector) = g.vcpu_mut().startup.take()
        && let Err(e) = super::vcpu::start_up(g, &mut v, vector)
    {
        g.stop(format!(
            "vCPU {i}: cannot start it at its start-up IPI: {e}"
        ));
        return;
    }
    if let Err(e) = g.arm_timer(&mut v) {
        g.stop(format!("{e}"));
        return;
    }
    super::devices::sync(g);
    loop {
        crate::irq::interrupt_window();
        // A request's IPI taken in that window ends the slice before the entry, not at the
        // guest's next exit.
        if crate::sched::remote::wanted() {
            return;
        }
        if let Err(e) = g.before_entry(&mut v) {
            g.stop(format!("{e}"));
            return;
        }
        if g.state != State::Runnable {
            return;
        }
        g.vcpus[i].halted = false;
        let start = rdtsc();
        if let Some(sent) = g.vcpus[i].ipi_sent.take() {
            g.round_trips.add(start.wrapping_sub(sent));
        }
        let launched = g.launched();
        // SAFETY: the VMCS is current and was fully programmed and checked by `Guest::create`
        // (or by `Guest::restart`).
        let entered = unsafe { run::enter(&mut g.vcpus[i].regs, launched) };
        g.vcpus[i].stats.tsc_in_guest += rdtsc().wrapping_sub(start);
        if let Err(fail) = entered {
            let what = if launched { "VMRESUME" } else { "VMLAUNCH" };
            g.stop(format!("{what} failed: {fail}"));
            return;
        }
        if !launched && i == 0 {
            // The start of the guest's boot, for figures measured from the log (scripts/bench).
            info!("guest \"{}\": first VM entry", g.name);
        } else if !launched {
            info!("guest \"{}\": vCPU {i}: first VM entry", g.name);
        }
        g.set_launched();
        let outcome = super::handle_exit(g, &mut v);
        // IPIs to other vCPUs: they run next, after this exit.
        let give_up = g.deliver_signals();
        match outcome {
            // Another CPU posted a request for this one (`sched::remote`): its IPI caused this
            // exit, and the slice ends here so that the request is carried out.
            Ok(Outcome::Resume) if !give_up && !crate::sched::remote::wanted() => continue,
            Ok(Outcome::Resume) => return,
            Ok(Outcome::Yield | Outcome::Done) => return,
            Err(e) => {
                g.stop(format!("exit handling failed: {e}"));
                return;
            }
        }
    }
}
