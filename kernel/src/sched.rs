//! The scheduler: round-robin over the guests' vCPUs on this CPU. A slice ends when the VMX
//! preemption timer fires, or earlier at HLT or a yield hypercall (SDM Vol. 3C, "VMX-Preemption
//! Timer"). Between slices, and all the time once no guest is runnable, the debug shell polls the
//! serial line; it never waits for input. A guest with a virtual platform that halted with nothing
//! to wake it is not entered until an interrupt or its timer is due. When every runnable guest
//! waits, the CPU sleeps until the next interrupt (the tick at the latest), or, if a guest's timer
//! is due before the next tick, waits for it with interrupts enabled (`irq::wait_for_interrupt_until`).

use crate::guest::{self, Guest, Guests, State};
use crate::irq;
use crate::platform::Platform;
use crate::shell::{Flow, Shell, World};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use conduit_config::{OnCrash, OnIdle};
use log::info;

/// Runs the guests and the shell until the run ends: with `OnIdle::Exit` once no guest is
/// runnable, with `OnIdle::Shell` when the operator types `quit`.
pub fn run(guests: &mut Guests, platform: &Platform, on_idle: OnIdle) {
    let mut shell = (on_idle == OnIdle::Shell || !guests.list.is_empty()).then(Shell::new);
    if !guests.list.is_empty() {
        info!("running {} guest(s) round-robin", guests.list.len());
    }
    if let Some(shell) = shell.as_mut() {
        shell.start(on_idle);
    }
    let mut busy = guests.any_runnable();
    let mut next = 0;
    // The guest one of whose vCPUs' x87/SSE/AVX state and debug registers this CPU holds
    // (`guest::xstate`).
    let mut fpu_owner = None;
    loop {
        if all_waiting(&mut guests.list) {
            let earliest = guests
                .list
                .iter()
                .filter(|g| g.state == State::Runnable)
                .filter_map(Guest::next_deadline)
                .min();
            idle_until_interrupt(earliest);
        }
        match pick(&mut guests.list, next) {
            Pick::Waiting => {}
            Pick::Run(i) => {
                next = i + 1;
                guest::release_ext(&mut guests.list, &mut fpu_owner, i);
                guest::run_slice(&mut guests.list[i]);
                if let Some(why) = guests.list[i].take_reset() {
                    reset(guests, i, why);
                }
                busy = true;
            }
            Pick::Finished => {
                if busy {
                    report_finished(&guests.list);
                    busy = false;
                }
                if on_idle == OnIdle::Exit {
                    return;
                }
                core::hint::spin_loop();
            }
        }
        // A source the interrupt path cut off is masked at its device and reported here.
        irq::service_floods();
        // The igb PFs' mailboxes are served here (`igb::mailbox`: polling, not an interrupt).
        crate::igb::mailbox::poll();
        let mut world = World {
            guests: &mut *guests,
            platform,
        };
        if let Some(shell) = shell.as_mut()
            && shell.poll(&mut world) == Flow::Quit
        {
            let running = guests.list.iter().filter(|g| g.state == State::Runnable);
            info!(
                "quit: the operator ended the run with {} guest(s) still running",
                running.count()
            );
            if busy {
                for g in &guests.list {
                    g.report();
                }
            }
            return;
        }
    }
}

/// Guest `i` reset its processor: it is built again from its image, or stopped, as its
/// configuration says (`on_crash`); the other guests are not touched.
fn reset(guests: &mut Guests, i: usize, why: String) {
    let g = &mut guests.list[i];
    info!("guest \"{}\": {why}", g.name);
    match (g.spec().on_crash, guests.host.as_mut()) {
        (OnCrash::Restart { max_restarts }, Some(host)) if g.restarts < max_restarts => {
            // On failure `restart` has stopped the guest with the reason already.
            if let Err(e) = g.restart(host) {
                log::warn!("guest \"{}\": not restarted after the reset: {e}", g.name);
            }
        }
        (OnCrash::Restart { max_restarts }, _) => g.stop(format!(
            "{why}; not restarted: {} restart(s) already (on_crash = \"restart\", max_restarts = {max_restarts})",
            g.restarts
        )),
        (OnCrash::Stop, _) => g.stop(format!("{why} (on_crash = \"stop\")")),
    }
}

/// The end-of-run report once no guest is runnable.
fn report_finished(guests: &[Guest]) {
    info!("every guest has finished");
    let counts: Vec<_> = guests
        .iter()
        .map(|g| format!("{}={}", g.name, g.stats().by_reason[52]))
        .collect();
    info!("preemption-timer exits per guest: {}", counts.join(" "));
    for g in guests {
        g.report();
    }
}

/// Whether every runnable guest is in HLT with nothing to wake it yet: no interrupt it could
/// take and no timer due. Then the CPU may sleep until the next physical interrupt.
fn all_waiting(guests: &mut [Guest]) -> bool {
    let mut runnable = guests
        .iter_mut()
        .filter(|g| g.state == State::Runnable)
        .peekable();
    runnable.peek().is_some() && runnable.all(|g| g.waiting())
}

/// Halts the CPU until the next interrupt (the earliest guest timer deadline or the hypervisor's
/// tick at the latest, every `irq::TICK_MS`; a device interrupt of a guest at once), instead of
/// re-entering halted guests in a loop. Without a running tick nothing is guaranteed to wake the CPU: it does not sleep.
fn idle_until_interrupt(deadline: Option<u64>) {
    if crate::irq::tick_running() {
        crate::irq::wait_for_interrupt_until(deadline);
    }
}

/// What the scheduler does next.
enum Pick {
    /// Run this guest.
    Run(usize),
    /// Guests are runnable, but each waits in HLT for an interrupt (the next loop sleeps).
    Waiting,
    /// No guest is runnable any more.
    Finished,
}

/// The next runnable guest at or after `from`, wrapping around. A guest with a virtual platform
/// that waits in HLT with nothing to wake it is passed over, as a halted processor stays halted
/// until an interrupt (SDM Vol. 3A §9.10 "HLT"); the hypervisor's own test guests resume after a
/// HLT at their next slice, as they always have.
fn pick(guests: &mut [Guest], from: usize) -> Pick {
    let n = guests.len();
    let mut runnable = false;
    for i in (0..n).map(|k| (from + k) % n) {
        let g = &mut guests[i];
        if g.state != State::Runnable {
            continue;
        }
        runnable = true;
        if !(g.has_platform() && g.waiting()) {
            return Pick::Run(i);
        }
    }
    if runnable {
        Pick::Waiting
    } else {
        Pick::Finished
    }
}
