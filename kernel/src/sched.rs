//! The scheduler: round-robin over the guests' vCPUs on this CPU. A slice ends when the VMX
//! preemption timer fires, or earlier at HLT or a yield hypercall (SDM Vol. 3C, "VMX-Preemption
//! Timer").

use crate::arch::x86_64::rdtsc;
use crate::arch::x86_64::vmx::run;
use crate::guest::{self, Guest, Outcome, State};
use alloc::format;
use alloc::vec::Vec;
use log::info;

/// Runs every guest until each has exited or been stopped.
pub fn run_all(guests: &mut [Guest]) {
    if guests.is_empty() {
        return;
    }
    info!("running {} guest(s) round-robin", guests.len());
    let mut next = 0;
    while let Some(i) = pick(guests, next) {
        next = i + 1;
        run_slice(&mut guests[i]);
    }
    info!("every guest has finished");
    let counts: Vec<_> = guests
        .iter()
        .map(|g| format!("{}={}", g.name, g.stats.by_reason[52]))
        .collect();
    info!("preemption-timer exits per guest: {}", counts.join(" "));
    for g in guests.iter() {
        g.report();
    }
}

/// The next runnable guest at or after `from`, wrapping around.
fn pick(guests: &[Guest], from: usize) -> Option<usize> {
    let n = guests.len();
    (0..n)
        .map(|k| (from + k) % n)
        .find(|&i| guests[i].state == State::Runnable)
}

/// Runs `g` until it yields or finishes.
fn run_slice(g: &mut Guest) {
    let mut v = match g.load_vmcs() {
        Ok(v) => v,
        Err(e) => {
            g.stop(format!("cannot make its VMCS current: {e}"));
            return;
        }
    };
    if let Err(e) = g.arm_timer(&mut v) {
        g.stop(format!("{e}"));
        return;
    }
    loop {
        crate::irq::interrupt_window();
        if let Err(e) = guest::inject_pending(g, &mut v) {
            g.stop(format!("{e}"));
            return;
        }
        let start = rdtsc();
        let launched = g.launched();
        // SAFETY: the VMCS is current and was fully programmed and checked by `Guest::create`.
        let entered = unsafe { run::enter(&mut g.regs, launched) };
        g.stats.tsc_in_guest += rdtsc().wrapping_sub(start);
        if let Err(fail) = entered {
            let what = if launched { "VMRESUME" } else { "VMLAUNCH" };
            g.stop(format!("{what} failed: {fail}"));
            return;
        }
        g.set_launched();
        match guest::handle_exit(g, &mut v) {
            Ok(Outcome::Resume) => continue,
            Ok(Outcome::Yield | Outcome::Done) => return,
            Err(e) => {
                g.stop(format!("exit handling failed: {e}"));
                return;
            }
        }
    }
}
