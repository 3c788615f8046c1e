//! The CPU's waits for interrupts: the short window before every VM entry, and the idle wait of
//! the scheduler bounded by the tick or a guest's timer deadline.

use super::{TICK_CAL, TICK_MS, dispatch};

/// Lets interrupts that arrived while the hypervisor ran with interrupts disabled be taken now
/// (STI; NOP; CLI: STI's one-instruction shadow ends at the NOP). Called before every VM entry,
/// so the tick and device interrupts are serviced at least once per entry. Architecturally a
/// pending interrupt would also cause a VM exit right after entry ("external-interrupt exiting");
/// Bochs 2.7 does not re-evaluate interrupt blocking at VM entry when the guest's RFLAGS.IF equals
/// the host's (measured: one external-interrupt exit per guest, then none).
pub fn interrupt_window() {
    x86_64::instructions::interrupts::enable();
    x86_64::instructions::nop();
    x86_64::instructions::interrupts::disable();
}

/// Sleeps until the next interrupt and handles it (STI; HLT: STI's shadow covers HLT, so an
/// interrupt pending already wakes it at once), then CLI again. For an idle scheduler; the tick
/// bounds the sleep. The caller counts the wait as idle time (`sched::cpus::idle`).
fn wait_for_interrupt() {
    x86_64::instructions::interrupts::enable_and_hlt();
    x86_64::instructions::interrupts::disable();
}

/// Waits like [`wait_for_interrupt`], but no longer than until TSC value `deadline` (a guest's
/// timer): a deadline beyond the next tick sleeps until an interrupt; one before it is waited for
/// with interrupts enabled, until it passes or an interrupt is handled (a device's, or the tick).
/// Reprogramming the tick timer to fire early instead hung the CPU under Bochs (the timer did not
/// fire again once its initial count was rewritten mid-period); the wait is bounded by the tick.
pub fn wait_for_interrupt_until(deadline: Option<u64>) {
    let now = conduit_hw::rdtsc();
    let soon = deadline
        .zip(TICK_CAL.get())
        .filter(|(d, c)| d.saturating_sub(now) < c.tsc.ticks_in_ms(u64::from(TICK_MS)));
    let Some((d, _)) = soon else {
        wait_for_interrupt();
        return;
    };
    let before = dispatch::interrupts_handled();
    while conduit_hw::rdtsc() < d && dispatch::interrupts_handled() == before {
        interrupt_window();
        core::hint::spin_loop();
    }
}
