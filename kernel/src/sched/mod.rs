//! The schedulers: one loop per CPU over the guests placed on that CPU (`guest::Guests`,
//! `conduit_config::placement`), round-robin. A slice ends when the VMX-preemption timer fires,
//! or earlier at HLT or a yield hypercall (SDM Vol. 3C §26.5.1 "VMX-Preemption Timer"), or when
//! another CPU posted a request for this one ([`remote`]). A guest on a dedicated CPU gets no
//! time slices: its preemption timer only serves its own timer deadlines, and it leaves the CPU
//! only for HLT, a request or its end.
//!
//! Between slices each CPU carries out the requests other CPUs posted for its guests; the
//! bootstrap processor (CPU 0) also polls the debug shell, the interrupt flood service and the
//! igb mailboxes, and once no guest of any CPU is runnable it makes the end-of-run report (once)
//! and, with `on_idle = "exit"`, ends the run. A guest with a virtual platform that halted with
//! nothing to wake it is not entered until an interrupt or its timer is due. When every runnable
//! guest of a CPU waits, that CPU sleeps until its next interrupt (its tick at the latest, a
//! request's IPI at once), or, if a guest's timer is due before the next tick, waits for it with
//! interrupts enabled (`irq::wait_for_interrupt_until`).

pub mod cpus;
pub mod remote;

use crate::guest::{self, Guest, Guests, Slot, State};
use crate::irq;
use crate::platform::Platform;
use crate::shell::{Flow, Shell, World};
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use conduit_config::{OnCrash, OnIdle};
use log::{info, warn};

/// The guests, shared by every CPU's scheduler once the run starts.
static GUESTS: spin::Once<&'static Guests> = spin::Once::new();

/// Runs the guests on every online CPU and the shell on this one (the bootstrap processor) until
/// the run ends: with `OnIdle::Exit` once no guest is runnable, with `OnIdle::Shell` when the
/// operator types `quit`.
pub fn run(guests: Guests, platform: &Platform, on_idle: OnIdle) {
    let guests: &'static Guests = GUESTS.call_once(|| Box::leak(Box::new(guests)));
    let mut shell = (on_idle == OnIdle::Shell || !guests.list.is_empty()).then(Shell::new);
    if !guests.list.is_empty() {
        let mut per_cpu = Vec::new();
        for c in cpus::online() {
            let names: Vec<&str> = guests.on_cpu(c).map(|(_, s)| s.name.as_str()).collect();
            if !names.is_empty() {
                per_cpu.push(format!("cpu {c}: {}", names.join(", ")));
            }
        }
        info!(
            "running {} guest(s) round-robin on {} CPU(s): {}",
            guests.list.len(),
            per_cpu.len(),
            per_cpu.join("; ")
        );
    }
    cpus::start_schedulers(ap_main);
    if let Some(shell) = shell.as_mut() {
        shell.start(on_idle);
    }
    let mut cpu = Cpu::new(0);
    let mut busy = guests.any_runnable();
    loop {
        if cpu.step(guests) == Step::Finished && !guests.any_runnable() {
            if busy {
                report_finished(guests);
                busy = false;
            }
            if on_idle == OnIdle::Exit {
                return;
            }
            // The shell is polled without sleeping: a tick's sleep would let a line typed at
            // 115200 baud overrun the UART's FIFO.
            core::hint::spin_loop();
        }
        busy |= guests.any_runnable();
        // A source the interrupt path cut off is masked at its device and reported here.
        irq::service_floods();
        // The igb PFs' mailboxes are served here (`igb::mailbox`: polling, not an interrupt).
        crate::igb::mailbox::poll();
        let mut world = World { guests, platform };
        if let Some(shell) = shell.as_mut()
            && shell.poll(&mut world) == Flow::Quit
        {
            let running = guests.list.iter().filter(|s| s.runnable());
            info!(
                "quit: the operator ended the run with {} guest(s) still running",
                running.count()
            );
            if busy {
                report_all(guests);
            }
            return;
        }
    }
}

/// An application processor's scheduler, for as long as the machine runs.
fn ap_main(index: usize) -> ! {
    let guests = GUESTS.wait();
    let mut cpu = Cpu::new(index);
    loop {
        if cpu.step(guests) == Step::Finished {
            idle_until_interrupt(None);
        }
    }
}

/// What one round of a CPU's scheduler did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// A guest ran for a slice, or each waits for an interrupt (then the CPU slept).
    Busy,
    /// No guest of this CPU is runnable.
    Finished,
}

/// One CPU's scheduler state.
struct Cpu {
    index: usize,
    /// Where the round-robin goes on (an index into `Guests::list`).
    next: usize,
    /// The guest whose extended state this CPU's registers hold (`guest::xstate`).
    fpu_owner: Option<usize>,
    /// Whether this CPU has made its guests' VMCSs its own ([`Cpu::adopt`]).
    adopted: bool,
}

impl Cpu {
    fn new(index: usize) -> Self {
        Self {
            index,
            next: 0,
            fpu_owner: None,
            adopted: index == 0,
        }
    }

    /// One round: the requests other CPUs posted, then one slice of the next runnable guest
    /// (or a sleep when each waits for an interrupt).
    fn step(&mut self, guests: &Guests) -> Step {
        if !self.adopted {
            self.adopt(guests);
        }
        remote::serve(guests, self.index);
        let mine: Vec<usize> = guests
            .on_cpu(self.index)
            .filter(|(_, s)| s.runnable())
            .map(|(i, _)| i)
            .collect();
        if mine.is_empty() {
            return Step::Finished;
        }
        if let Some(earliest) = all_waiting(guests, &mine) {
            idle_until_interrupt(earliest);
            remote::serve(guests, self.index);
        }
        let Some(i) = self.pick(guests, &mine) else {
            return Step::Busy;
        };
        self.next = i + 1;
        self.run_slice(guests, i);
        Step::Busy
    }

    /// The next runnable guest at or after the round-robin position, wrapping around. A guest
    /// with a virtual platform that waits in HLT with nothing to wake it is passed over, as a
    /// halted processor stays halted until an interrupt (SDM Vol. 3A §9.10 "HLT"); the
    /// hypervisor's own test guests resume after a HLT at their next slice, as they always have.
    fn pick(&self, guests: &Guests, mine: &[usize]) -> Option<usize> {
        let start = mine.iter().position(|&i| i >= self.next).unwrap_or(0);
        (0..mine.len())
            .map(|k| mine[(start + k) % mine.len()])
            .find(|&i| {
                let mut g = guests.list[i].lock();
                g.state == State::Runnable && !(g.has_platform() && g.waiting())
            })
    }

    /// Runs guest `i` for one slice on this CPU (one of its vCPUs placed here), then carries out
    /// a reset it asked for.
    fn run_slice(&mut self, guests: &Guests, i: usize) {
        let slot = &guests.list[i];
        if let Some(o) = self.fpu_owner.filter(|&o| o != i) {
            guests.list[o].lock().save_ext();
        }
        self.fpu_owner = Some(i);
        let exits = guest::run_slice(slot, guests.host.as_ref());
        cpus::count_exits(self.index, exits);
        let mut g = slot.lock();
        if let Some(why) = g.take_reset() {
            reset(guests, &mut g, why);
        }
        slot.publish(&g);
    }

    /// Makes the VMCSs of the vCPUs placed here this CPU's: created (and VMCLEARed) on the
    /// bootstrap processor, each is loaded here once and gets this CPU's host state (its GDT,
    /// TSS, IDT: `conduit_hw::vmx::write_host_state`) before its first entry. A guest whose
    /// VMCS cannot be taken over is stopped with the reason.
    fn adopt(&mut self, guests: &Guests) {
        for (_, slot) in guests.on_cpu(self.index) {
            let mut g = slot.lock();
            if let Err(e) = g.adopt_vmcs() {
                g.stop(format!(
                    "cpu {}: cannot take its VMCS over: {e}",
                    self.index
                ));
            }
            slot.publish(&g);
        }
        self.adopted = true;
    }
}

/// Guest `g` reset its processor: it is built again from its image, or stopped, as its
/// configuration says (`on_crash`), by the CPU that runs it; the other guests are not touched.
fn reset(guests: &Guests, g: &mut Guest, why: String) {
    info!("guest \"{}\": {why}", g.name);
    match (g.spec().on_crash, guests.host.as_ref()) {
        (OnCrash::Restart { max_restarts }, Some(host)) if g.restarts < max_restarts => {
            // On failure `restart` has stopped the guest with the reason already.
            if let Err(e) = g.restart(&mut conduit_hw::smp::lock_serving(host)) {
                warn!("guest \"{}\": not restarted after the reset: {e}", g.name);
            }
        }
        (OnCrash::Restart { max_restarts }, _) => g.stop(format!(
            "{why}; not restarted: {} restart(s) already (on_crash = \"restart\", max_restarts = {max_restarts})",
            g.restarts
        )),
        (OnCrash::Stop, _) => g.stop(format!("{why} (on_crash = \"stop\")")),
    }
}

/// The end-of-run report once no guest of any CPU is runnable.
fn report_finished(guests: &Guests) {
    info!("every guest has finished");
    let counts: Vec<_> = guests
        .list
        .iter()
        .map(|s| format!("{}={}", s.name, s.lock().stats().by_reason[52]))
        .collect();
    info!("preemption-timer exits per guest: {}", counts.join(" "));
    report_all(guests);
}

/// Each guest's report line. A guest still running on another CPU is reported by that CPU.
fn report_all(guests: &Guests) {
    for (i, s) in guests.list.iter().enumerate() {
        if let Err(e) = remote::with_guest(guests, i, |g, _| g.report()) {
            warn!("guest \"{}\": no report: {e}", s.name);
        }
    }
}

/// The earliest timer deadline of the runnable guests `mine` if every one of them is in HLT with
/// nothing to wake it yet (no interrupt it could take, no timer due): then the CPU may sleep
/// until the next physical interrupt. `None` when some guest can run.
fn all_waiting(guests: &Guests, mine: &[usize]) -> Option<Option<u64>> {
    let mut earliest: Option<u64> = None;
    for &i in mine {
        let mut g = guests.list[i].lock();
        if g.state != State::Runnable {
            continue;
        }
        if !g.waiting() {
            return None;
        }
        if let Some(d) = g.next_deadline() {
            earliest = Some(earliest.map_or(d, |e| e.min(d)));
        }
    }
    Some(earliest)
}

/// Halts the CPU until the next interrupt (the earliest guest timer deadline or the hypervisor's
/// tick at the latest, every `irq::TICK_MS`; a device interrupt of a guest or a request's IPI at
/// once), instead of re-entering halted guests in a loop. Without a running tick nothing is
/// guaranteed to wake the CPU: it does not sleep.
fn idle_until_interrupt(deadline: Option<u64>) {
    if irq::tick_running() {
        cpus::idle(|| irq::wait_for_interrupt_until(deadline));
    }
}

/// Where guest `slot`'s vCPUs run, for the shell: `vCPU 0, vCPU 1 on cpu N (APIC ID X)` when
/// they share one CPU, else each with its own (`vCPU 0 on cpu 0 (APIC ID 0), vCPU 1 on cpu 1
/// (APIC ID 1)`); `, dedicated` after a dedicated placement.
pub fn placement_text(slot: &Slot) -> String {
    let on = |cpu: usize| {
        format!(
            "cpu {cpu} (APIC ID {})",
            cpus::apic_id(cpu).map_or_else(|| String::from("?"), |a| format!("{a}"))
        )
    };
    let homes = &slot.vcpu_cpus;
    let text = if homes.iter().all(|&c| c == slot.placed.cpu) {
        let names: Vec<String> = (0..homes.len()).map(|k| format!("vCPU {k}")).collect();
        format!("{} on {}", names.join(", "), on(slot.placed.cpu))
    } else {
        let each: Vec<String> = (homes.iter().enumerate())
            .map(|(k, &c)| format!("vCPU {k} on {}", on(c)))
            .collect();
        each.join(", ")
    };
    let dedicated = if slot.placed.dedicated {
        ", dedicated"
    } else {
        ""
    };
    format!("{text}{dedicated}")
}
