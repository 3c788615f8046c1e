//! Cross-CPU requests: [`call_on`] posts a function and its argument to the target CPU's mailbox
//! (`conduit_smp::mailbox`) and sends the [`vectors::CALL`] IPI; the target runs it in its
//! interrupt handler ([`on_call_ipi`]), whether it was halted, in the hypervisor or in a guest
//! (the IPI causes an external-interrupt VM exit, and the exit path dispatches the vector). The
//! sender must have interrupts enabled (a CPU that waits for another with IF = 0 cannot serve
//! the requests others send it meanwhile); it waits up to a deadline, serving its own mailbox.
//!
//! A request runs in interrupt context on the target: it must not take a lock (the target may
//! have been interrupted holding it) and should be short (an invalidation, a flag).

use super::wait_serving;
use crate::apic::{self, Ipi, IpiError, IpiTarget, vectors};
use crate::percpu::{self, CpuState};
use conduit_smp::mailbox::{Cancel, Request};

/// How long [`call_on`] waits for the target's mailbox and for its reply.
pub const CALL_MS: u64 = 100;

/// Why a cross-CPU request did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallError {
    /// No CPU has that number.
    NoSuchCpu(usize),
    /// The caller has interrupts disabled; it could not serve a request sent to itself while
    /// it waits.
    InterruptsOff(usize),
    /// The CPU is not online.
    Offline(usize, CpuState),
    /// Another request kept the target's mailbox busy past the deadline.
    Busy(usize),
    /// The IPI could not be sent.
    Ipi(IpiError),
    /// No reply within the deadline; `Withdrawn`: the request never ran, `Abandoned`: it is
    /// still running.
    Timeout(usize, Cancel),
}

impl core::fmt::Display for CallError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoSuchCpu(c) => write!(f, "there is no cpu {c}"),
            Self::InterruptsOff(c) => {
                write!(f, "a call to cpu {c} with interrupts disabled (refused)")
            }
            Self::Offline(c, s) => write!(f, "cpu {c} is {s}"),
            Self::Busy(c) => write!(f, "cpu {c}'s mailbox stayed busy for {CALL_MS} ms"),
            Self::Ipi(e) => write!(f, "IPI: {e}"),
            Self::Timeout(c, Cancel::Withdrawn) => {
                write!(
                    f,
                    "cpu {c} did not take the request within {CALL_MS} ms (withdrawn)"
                )
            }
            Self::Timeout(c, _) => {
                write!(f, "cpu {c} did not finish the request within {CALL_MS} ms")
            }
        }
    }
}

/// Runs `f(arg)` on CPU `cpu` and returns its result: directly when `cpu` is this CPU, else by
/// mailbox and IPI. Another CPU is only called with interrupts enabled
/// ([`CallError::InterruptsOff`] otherwise: the flag is never changed behind the caller's back).
pub fn call_on(cpu: usize, f: fn(u64) -> u64, arg: u64) -> Result<u64, CallError> {
    let target = percpu::get(cpu).ok_or(CallError::NoSuchCpu(cpu))?;
    if target.index() == percpu::current().index() {
        return Ok(f(arg));
    }
    if !x86_64::instructions::interrupts::are_enabled() {
        return Err(CallError::InterruptsOff(cpu));
    }
    match target.state() {
        CpuState::Online => {}
        s => return Err(CallError::Offline(cpu, s)),
    }
    let mailbox = &target.mailbox;
    if !wait_serving(CALL_MS, || mailbox.claim()) {
        return Err(CallError::Busy(cpu));
    }
    mailbox.post(Request {
        what: f as usize as u64,
        arg,
    });
    if let Err(e) = apic::send_ipi(IpiTarget::Apic(target.apic_id()), Ipi::Fixed(vectors::CALL)) {
        return match mailbox.cancel() {
            Cancel::Completed(r) => Ok(r),
            _ => Err(CallError::Ipi(e)),
        };
    }
    let mut reply = None;
    if wait_serving(CALL_MS, || {
        reply = mailbox.collect();
        reply.is_some()
    }) && let Some(r) = reply
    {
        return Ok(r);
    }
    match mailbox.cancel() {
        Cancel::Completed(r) => Ok(r),
        c => Err(CallError::Timeout(cpu, c)),
    }
}

/// Runs `f` with interrupts enabled and restores the interrupt flag after: how code that runs
/// with interrupts disabled (the hypervisor outside its interrupt windows) opens a window for
/// cross-CPU calls, explicitly. Nothing `f` runs may hold a lock an interrupt handler takes.
pub fn with_interrupts<R>(f: impl FnOnce() -> R) -> R {
    let was = x86_64::instructions::interrupts::are_enabled();
    x86_64::instructions::interrupts::enable();
    let r = f();
    if !was {
        x86_64::instructions::interrupts::disable();
    }
    r
}

/// The [`vectors::CALL`] IPI arrived: runs what this CPU's mailbox holds (nothing, for a mere
/// wake-up). Called by the interrupt path, before EOI.
pub fn on_call_ipi() {
    crate::power::stop_if_leaving();
    serve_own_mailbox();
}

/// Runs the request posted to this CPU's mailbox, if there is one, without waiting for its IPI:
/// the fallback of the idle loop and of every waiting path, so that a lost or late IPI delays a
/// request instead of losing it. Taking the request is atomic, so the IPI's handler and this
/// never both run it. `true` if a request ran.
pub fn serve_own_mailbox() -> bool {
    let mailbox = &percpu::current().mailbox;
    if !mailbox.pending() {
        return false;
    }
    if let Some(req) = mailbox.take() {
        // SAFETY: only `call_on` posts requests, and its `what` is always a `fn(u64) -> u64`
        // (cast to an address above); function pointers and u64 have the same size here.
        let f: fn(u64) -> u64 = unsafe { core::mem::transmute(req.what as usize) };
        mailbox.finish(f(req.arg));
        return true;
    }
    false
}

/// Takes `lock`, serving this CPU's own mailbox while another CPU holds it: a CPU that waits
/// for a lock with interrupts disabled would not take the cross-CPU requests sent to it
/// meanwhile, and the holder may be waiting for one of them ([`call_on`]: an INVEPT on every
/// CPU, a TLB shootdown). Serving is lock-free, so it cannot deadlock with the holder.
pub fn lock_serving<T>(lock: &spin::Mutex<T>) -> spin::MutexGuard<'_, T> {
    loop {
        if let Some(guard) = lock.try_lock() {
            return guard;
        }
        if !x86_64::instructions::interrupts::are_enabled() {
            serve_own_mailbox();
        }
        core::hint::spin_loop();
    }
}

/// Wakes CPU `cpu` (from HLT, or out of its guest) with a [`vectors::CALL`] IPI carrying no
/// request.
pub fn wake(cpu: usize) -> Result<(), CallError> {
    let target = percpu::get(cpu).ok_or(CallError::NoSuchCpu(cpu))?;
    apic::send_ipi(IpiTarget::Apic(target.apic_id()), Ipi::Fixed(vectors::CALL))
        .map_err(CallError::Ipi)
}

/// Flushes this CPU's whole TLB, global entries included (toggling CR4.PGE, SDM Vol. 3A
/// §4.10.4.1); returns 0.
fn flush_tlb(_: u64) -> u64 {
    use x86_64::registers::control::{Cr4, Cr4Flags};
    let cr4 = Cr4::read();
    if cr4.contains(Cr4Flags::PAGE_GLOBAL) {
        // SAFETY: clearing and restoring PGE only invalidates TLB entries.
        unsafe {
            Cr4::write(cr4 - Cr4Flags::PAGE_GLOBAL);
            Cr4::write(cr4);
        }
    } else {
        x86_64::instructions::tlb::flush_all();
    }
    0
}

/// TLB shootdown after the hypervisor changed or removed its own mappings (this CPU already
/// invalidated them): every other online CPU flushes its TLB. Returns how many CPUs flushed; the
/// first failure otherwise.
pub fn flush_tlb_everywhere() -> Result<usize, CallError> {
    let me = percpu::current().index();
    let mut flushed = 0;
    for cpu in percpu::all().filter(|c| c.index() != me && c.state() == CpuState::Online) {
        call_on(cpu.index(), flush_tlb, 0)?;
        flushed += 1;
    }
    Ok(flushed)
}
