//! `cpus`: every physical CPU Conduit numbered (MADT order, the BSP is 0): its APIC ID, state (a
//! failed CPU with the reason), the ticks of its own local APIC timer, the share of its time spent
//! halted waiting for work since it came online, and the interrupts it took. [`columns`] is the
//! one place a row is built; the per-CPU scheduler's columns follow it: the guest exits the CPU
//! handled and the guests placed on it (`sched`).

use super::say;
use crate::guest::Guests;
use alloc::string::String;
use alloc::vec::Vec;
use conduit_hw::percpu::{self, CpuState, PerCpu};

/// `cpus`.
pub fn cpus(guests: &Guests) {
    say!(
        "cpus: {} numbered, {} online",
        percpu::count(),
        percpu::all()
            .filter(|c| c.state() == CpuState::Online)
            .count()
    );
    say!("  cpu  apic id  state    ticks       idle  interrupts  guest exits  guests");
    let now = conduit_hw::rdtsc();
    for c in percpu::all() {
        if c.state() != CpuState::Online {
            say!("  {}", columns(c, now));
            continue;
        }
        let names: Vec<&str> = guests
            .on_cpu(c.index())
            .map(|(_, s)| s.name.as_str())
            .collect();
        say!(
            "  {}  {:>11}  {}",
            columns(c, now),
            crate::sched::cpus::exits(c.index()),
            if names.is_empty() {
                String::from("-")
            } else {
                names.join(", ")
            }
        );
    }
}

/// One CPU's row at TSC value `now`.
pub fn columns(c: &PerCpu, now: u64) -> String {
    let state = match (c.state(), c.failure()) {
        (CpuState::Failed, Some(why)) => alloc::format!("failed: {why}"),
        (s, _) => alloc::format!("{s}"),
    };
    if c.state() != CpuState::Online {
        return alloc::format!("{:>3}  {:>7}  {state}", c.index(), c.apic_id());
    }
    let up = now.saturating_sub(c.online_tsc()).max(1);
    let idle = (u128::from(c.idle_tsc()) * 1000 / u128::from(up)).min(1000) as u64;
    alloc::format!(
        "{:>3}  {:>7}  {state:<7}  {:>10}  {:>3}.{}%  {:>10}",
        c.index(),
        c.apic_id(),
        c.ticks(),
        idle / 10,
        idle % 10,
        c.interrupts()
    )
}
