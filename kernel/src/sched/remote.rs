//! Cross-CPU operations on a guest: the CPU that runs a guest's vCPU 0 carries out what other
//! CPUs ask of the guest (a vCPU's VMCS can only be loaded by its own CPU), so another CPU (the shell on CPU 0) that must read or change the guest posts the work in
//! the guest's request slot, marks the owner as wanted and sends it an IPI (`cpus::kick`). The
//! IPI makes the owner leave its guest (an external-interrupt exit: the slice ends when a request
//! is wanted, `wanted`) or wakes it from HLT; between two slices the owner carries the work out
//! with the guest locked and flags it done. The poster waits with interrupts enabled, never
//! longer than [`ANSWER_MS`]; a request not taken by then is withdrawn and reported.

use super::cpus;
use crate::guest::{Guest, Guests, Request};
use alloc::boxed::Box;
use alloc::sync::Arc;
use conduit_hw::time::Deadline;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// How long a poster waits for the owner of a guest.
pub const ANSWER_MS: u64 = 1000;

/// Per CPU: a request for one of its guests is posted and not yet served.
static WANTED: [AtomicBool; cpus::MAX] = [const { AtomicBool::new(false) }; cpus::MAX];

/// Why a cross-CPU request did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteError {
    /// No guest with this index.
    NoGuest(usize),
    /// Another request for the guest is pending.
    Busy { cpu: usize },
    /// The owner did not take the request within [`ANSWER_MS`]: withdrawn.
    NoAnswer { cpu: usize },
    /// The owner took it but did not finish within [`ANSWER_MS`] (it finishes later).
    Late { cpu: usize },
    /// The clock stopped while waiting.
    ClockStopped { cpu: usize },
}

impl core::fmt::Display for RemoteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::NoGuest(i) => write!(f, "no guest {i}"),
            Self::Busy { cpu } => write!(f, "cpu {cpu} has a request for this guest pending"),
            Self::NoAnswer { cpu } => write!(
                f,
                "cpu {cpu} did not take the request within {ANSWER_MS} ms (withdrawn)"
            ),
            Self::Late { cpu } => write!(
                f,
                "cpu {cpu} took the request but did not finish it within {ANSWER_MS} ms"
            ),
            Self::ClockStopped { cpu } => {
                write!(f, "the clock stopped while waiting for cpu {cpu}")
            }
        }
    }
}

/// A request another CPU carried out, timed in TSC ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundTrip {
    /// From posting it to seeing it done (on the poster's CPU).
    pub total: u64,
    /// The work itself (on the owner's CPU); the rest is the cross-CPU request: the IPI, the end
    /// of the guest's slice, the hand-over.
    pub work: u64,
}

/// Runs `work` on guest `index` on the CPU that runs the guest: at once (with the guest locked)
/// when that is this CPU (`Ok(None)`), else posted there and waited for (`Ok(Some(round
/// trip))`).
pub fn with_guest(
    guests: &Guests,
    index: usize,
    work: impl FnOnce(&mut Guest, &Guests) + Send + 'static,
) -> Result<Option<RoundTrip>, RemoteError> {
    let slot = guests.list.get(index).ok_or(RemoteError::NoGuest(index))?;
    let cpu = slot.placed.cpu;
    if cpu == cpus::this_cpu() {
        let mut g = slot.lock();
        work(&mut g, guests);
        slot.publish(&g);
        return Ok(None);
    }
    let done = Arc::new(AtomicU64::new(0));
    {
        let mut r = slot.request();
        if r.is_some() {
            return Err(RemoteError::Busy { cpu });
        }
        *r = Some(Request {
            work: Box::new(work),
            done: done.clone(),
        });
    }
    let start = conduit_hw::rdtsc();
    if let Some(w) = WANTED.get(cpu) {
        w.store(true, Ordering::Release);
    }
    cpus::kick(cpu);
    let mut deadline = Deadline::after_ms(ANSWER_MS);
    loop {
        let finished = done.load(Ordering::Acquire);
        if finished != 0 {
            return Ok(Some(RoundTrip {
                total: conduit_hw::rdtsc().wrapping_sub(start),
                work: finished - 1,
            }));
        }
        match deadline.poll() {
            Ok(false) => crate::irq::interrupt_window(),
            Ok(true) => break,
            Err(_) => {
                withdraw(slot);
                return Err(RemoteError::ClockStopped { cpu });
            }
        }
        core::hint::spin_loop();
    }
    if withdraw(slot) {
        Err(RemoteError::NoAnswer { cpu })
    } else {
        Err(RemoteError::Late { cpu })
    }
}

/// Takes a request back that its owner has not taken yet; `false` if it was taken already.
fn withdraw(slot: &crate::guest::Slot) -> bool {
    slot.request().take().is_some()
}

/// Whether a request for a guest of this CPU waits: the running slice ends at the next exit.
pub fn wanted() -> bool {
    WANTED
        .get(cpus::this_cpu())
        .is_some_and(|w| w.load(Ordering::Acquire))
}

/// Carries out the requests posted for CPU `cpu`'s guests (between two slices).
pub fn serve(guests: &Guests, cpu: usize) {
    let Some(flag) = WANTED.get(cpu) else {
        return;
    };
    if !flag.swap(false, Ordering::AcqRel) {
        return;
    }
    for (_, slot) in guests.owned_by(cpu) {
        let Some(request) = slot.request().take() else {
            continue;
        };
        let start = conduit_hw::rdtsc();
        let mut g = slot.lock();
        (request.work)(&mut g, guests);
        slot.publish(&g);
        drop(g);
        let took = conduit_hw::rdtsc().wrapping_sub(start);
        request
            .done
            .store(took.saturating_add(1), Ordering::Release);
    }
}
