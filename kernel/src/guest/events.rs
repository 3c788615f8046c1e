//! A guest's events: what its next VM entry injects, and its virtual timer.
//!
//! Sources: the IDT-vectoring information of the last exit (an event whose delivery the exit
//! interrupted is delivered again, SDM Vol. 3C "Information for VM Exits That Occur During Event
//! Delivery"), a #GP the hypervisor raises for a refused instruction, and virtual interrupts: the
//! vectors `irq::dispatch` marks pending for the guest (its devices' interrupts through its own
//! IRTEs, and its virtual timer). `conduit_vmx::inject::plan` decides; this module reads and
//! writes the VMCS fields: the VM-entry interruption-information, exception error code and
//! instruction length, and the "interrupt-window exiting" control, which is on exactly while a
//! virtual interrupt waits for the guest to set RFLAGS.IF or leave an STI / MOV SS shadow (SDM
//! "Interrupt-Window Exiting and Virtual-Interrupt Delivery"). For Conduit's own test guests an
//! injected vector needs no EOI; a guest with a virtual platform takes its vectors from its
//! local APIC (`vplatform_exits.rs`).

use super::Guest;
use crate::irq::dispatch;
use conduit_abi::{HC_TIMER_MAX_DELAY_US, HC_TIMER_MIN_VECTOR};
use conduit_clock::Rate;
use conduit_hw::rdtsc;
use conduit_hw::vmx::vmcs::{Current, FieldError};
use conduit_irq::GuestId;
use conduit_vmx::controls::PrimaryControls;
use conduit_vmx::exit::vector;
use conduit_vmx::fields::{Control32, Guest32, GuestNatural, ReadOnly32};
use conduit_vmx::inject::{self, Event, Interruptibility, Source};

/// Why a timer request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerError {
    /// Not 0 (disarm) and not 0x20-0xFF.
    Vector(u64),
    /// Not 1 to `HC_TIMER_MAX_DELAY_US`.
    Delay(u64),
}

/// The one-shot virtual timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Timer {
    /// TSC value at which the vector becomes pending.
    deadline: u64,
    vector: u8,
}

/// A guest's pending events and the state of its window control.
#[derive(Debug, Clone)]
pub struct Events {
    /// The event the last exit interrupted.
    reinject: Option<Event>,
    /// A fault for the next entry (#GP for a refused MSR access, #UD for an instruction the
    /// guest does not have): its vector.
    fault: Option<u8>,
    /// The primary processor-based controls as set up, without interrupt-window exiting.
    primary: u32,
    /// Whether "interrupt-window exiting" is on in the VMCS now.
    window: bool,
    /// Whether this CPU can set "interrupt-window exiting" at all.
    window_supported: bool,
    timer: Option<Timer>,
    /// The TSC's rate, for the virtual timer's deadlines.
    tsc: Rate,
    /// Virtual interrupts injected so far, and the last vector.
    pub injected: u64,
    pub last_vector: Option<u8>,
    /// Events delivered again after an exit during their delivery.
    pub reinjected: u64,
    /// An NMI IPI waits for the vCPU to accept an NMI.
    nmi: bool,
    /// NMIs injected so far.
    pub nmis: u64,
}

impl Events {
    /// No events; `primary` is the primary processor-based controls value the VMCS holds.
    pub fn new(primary: u32, window_supported: bool, tsc: Rate) -> Self {
        Self {
            reinject: None,
            fault: None,
            primary,
            window: false,
            window_supported,
            timer: None,
            tsc,
            injected: 0,
            last_vector: None,
            reinjected: 0,
            nmi: false,
            nmis: 0,
        }
    }

    /// Queues an NMI (an NMI IPI from one of the guest's vCPUs); NMIs queued while one waits
    /// are one NMI.
    pub fn queue_nmi(&mut self) {
        self.nmi = true;
    }

    /// Whether an NMI waits: it ends a HLT.
    pub fn nmi_pending(&self) -> bool {
        self.nmi
    }

    /// Drops what waits for the next entries (an INIT of the vCPU): the interrupted event, a
    /// queued fault, a queued NMI.
    pub fn clear_pending(&mut self) {
        self.reinject = None;
        self.fault = None;
        self.nmi = false;
    }

    /// The event whose delivery the last exit interrupted, if any (to be delivered again).
    pub fn interrupted_delivery(&self) -> Option<Event> {
        self.reinject
    }

    /// Queues a #GP(0) for the next entry; RIP stays on the faulting instruction.
    pub fn raise_gp(&mut self) {
        self.fault.get_or_insert(vector::GP);
    }

    /// Queues a #UD for the next entry; RIP stays on the instruction.
    pub fn raise_ud(&mut self) {
        self.fault.get_or_insert(vector::UD);
    }

    /// Whether a #GP is queued (not yet in the VMCS).
    pub fn gp_queued(&self) -> bool {
        self.fault == Some(vector::GP)
    }

    /// The TSC's rate the virtual timer counts in; also what the guest's CPUID leaves 0x15/0x16
    /// state (`msr_exits.rs`).
    pub fn tsc(&self) -> Rate {
        self.tsc
    }

    /// The virtual timer, if armed: its vector and the microseconds left (0 once due).
    pub fn timer(&self) -> Option<(u8, u64)> {
        self.timer.map(|t| {
            let left = self.tsc.us_in_ticks(t.deadline.saturating_sub(rdtsc()));
            (t.vector, left)
        })
    }

    /// Whether a virtual interrupt waits for the guest to become interruptible (the window
    /// control is on for it).
    pub fn waiting(&self) -> bool {
        self.window
    }

    /// `HC_TIMER`: arms the one-shot timer (`vector` 0 disarms it).
    pub fn arm_timer(&mut self, vector: u64, delay_us: u64) -> Result<(), TimerError> {
        if vector == 0 {
            self.timer = None;
            return Ok(());
        }
        if !(HC_TIMER_MIN_VECTOR..=0xff).contains(&vector) {
            return Err(TimerError::Vector(vector));
        }
        if !(1..=HC_TIMER_MAX_DELAY_US).contains(&delay_us) {
            return Err(TimerError::Delay(delay_us));
        }
        self.timer = Some(Timer {
            deadline: rdtsc().saturating_add(self.tsc.ticks_in_us(delay_us)),
            vector: vector as u8,
        });
        Ok(())
    }
}

/// After an exit that can interrupt event delivery: keeps the event whose delivery it
/// interrupted, to deliver it again.
pub fn after_exit(g: &mut Guest, v: &mut Current) -> Result<(), FieldError> {
    let info = v.get(ReadOnly32::IdtVectoringInfo)?;
    if info & (1 << 31) == 0 {
        return Ok(());
    }
    let error_code = v.get(ReadOnly32::IdtVectoringErrorCode)?;
    let length = v.get(ReadOnly32::ExitInstructionLength)?;
    g.vcpu_mut().events.reinject = Event::from_vectoring(info, error_code, length);
    Ok(())
}

/// The HLT that exited was completed by the hypervisor (RIP advanced past it): an STI shadow that
/// covered it ends with it (SDM Vol. 3C, "Guest Non-Register State"). Other emulated instructions
/// leave the blocking bits as they were, which saves a VMREAD per exit: a stale shadow can only
/// delay a pending interrupt by one instruction (injection reads the bits and waits for the
/// window), never deliver one early.
pub fn end_shadow(v: &mut Current) -> Result<(), FieldError> {
    let state = Interruptibility(v.get(Guest32::InterruptibilityState)?);
    if state.in_shadow() {
        v.set(Guest32::InterruptibilityState, state.after_instruction().0)?;
    }
    Ok(())
}

/// Whether a HLT should not give up the CPU: the guest can take an interrupt that is already
/// pending (RFLAGS.IF = 1), which ends the HLT at once.
pub fn wakes_at_once(g: &mut Guest, v: &mut Current) -> Result<bool, FieldError> {
    let id = g.id();
    poll_timer(g, id);
    if !dispatch::has_pending(id) {
        return Ok(false);
    }
    Ok(v.get(GuestNatural::Rflags)? & inject::RFLAGS_IF != 0)
}

fn poll_timer(g: &mut Guest, id: GuestId) {
    if let Some(t) = g.vcpu().events.timer
        && rdtsc() >= t.deadline
    {
        g.vcpu_mut().events.timer = None;
        dispatch::raise(id, t.vector);
    }
}

/// An NMI goes in when nothing else does (no event to deliver again, no fault) and nothing
/// blocks it: blocking by NMI, by MOV SS and by STI (SDM Vol. 3C §25.4.2 Table 25-3; VM entry
/// refuses an NMI injection under MOV-SS blocking, §27.3.1.5, and one under STI blocking is
/// left for the next entry too). Otherwise it waits for a later entry. Returns whether it went
/// in.
fn inject_nmi(g: &mut Guest, v: &mut Current) -> Result<bool, FieldError> {
    let ev = &g.vcpu().events;
    if ev.reinject.is_some() || ev.fault.is_some() {
        return Ok(false);
    }
    // Bits 0 (STI), 1 (MOV SS) and 3 (NMI) of the interruptibility state.
    if v.get(Guest32::InterruptibilityState)? & 0b1011 != 0 {
        return Ok(false);
    }
    v.set(Control32::EntryInterruptionInfo, NMI_INFO)?;
    let ev = &mut g.vcpu_mut().events;
    ev.nmi = false;
    ev.nmis += 1;
    Ok(true)
}

/// VM-entry interruption information of an NMI: valid, type 2 (NMI), vector 2 (SDM Vol. 3C
/// §25.8.3, Table 25-17).
const NMI_INFO: u32 = (1 << 31) | (2 << 8) | 2;

/// Before every entry: writes the event to inject (if any) and sets the window control. The
/// highest pending virtual vector is taken from `dispatch` only when it goes in now; otherwise it
/// stays pending there (a higher one arriving meanwhile overtakes it).
pub fn before_entry(g: &mut Guest, v: &mut Current) -> Result<(), FieldError> {
    if g.vcpu().events.nmi && inject_nmi(g, v)? {
        return Ok(());
    }
    let id = g.id();
    if g.vcpu().events.timer.is_some() {
        poll_timer(g, id);
    }
    // A guest with a virtual local APIC: the APIC's highest deliverable vector (software
    // emulation; with APIC virtualization the CPU delivers and this is `None`). Others: the
    // vectors `dispatch` holds for it.
    let platform = g.platform.is_some();
    let apic_vector = if platform {
        super::vplatform_exits::software_vector(g)
    } else {
        None
    };
    // With APIC virtualization the CPU delivers, but a vector that waits while the guest cannot
    // take it is held back with the window control (`Vlapic::hold_virtual_delivery`: Bochs 2.7
    // would otherwise nest it into the guest's interrupts-off region on a host interrupt).
    let hold = platform && super::vplatform_exits::hold_virtual_delivery(g, v)?;
    let ev = &mut g.vcpu_mut().events;
    let waiting = if platform {
        apic_vector.is_some() || hold
    } else {
        dispatch::has_pending(id)
    };
    // The common case, on every entry: nothing to inject, no window open.
    if ev.reinject.is_none() && ev.fault.is_none() && !ev.window && !waiting {
        return Ok(());
    }
    let interrupt = if platform {
        apic_vector
    } else {
        dispatch::take_pending(id)
    };
    let reinject = ev.reinject.take();
    let gp = ev.fault.take().map(|v| Event::exception(v, 0));
    // A local APIC offers its next vector only after this one's EOI (or once it is accepted).
    let more = interrupt.is_some() && !platform && dispatch::has_pending(id);
    let (rflags, state) = if interrupt.is_some() && reinject.is_none() && gp.is_none() {
        (
            v.get(GuestNatural::Rflags)?,
            Interruptibility(v.get(Guest32::InterruptibilityState)?),
        )
    } else {
        (0, Interruptibility(0))
    };
    let plan = inject::plan(reinject, gp, interrupt, more, rflags, state);
    let injected = plan.inject;
    if let Some((event, source)) = injected {
        v.set(Control32::EntryInterruptionInfo, event.info.0)?;
        if event.info.error_code_valid() {
            v.set(Control32::EntryExceptionErrorCode, event.error_code)?;
        }
        if event.info.kind().needs_instruction_length() {
            v.set(Control32::EntryInstructionLength, event.instruction_length)?;
        }
        match source {
            Source::Interrupt => {
                ev.injected += 1;
                ev.last_vector = event.interrupt_vector();
            }
            Source::Reinjection => ev.reinjected += 1,
            Source::Exception => {}
        }
    }
    let window = (plan.window || hold) && ev.window_supported;
    let went_in = matches!(injected, Some((_, Source::Interrupt)));
    if let Some(vector) = interrupt {
        if platform {
            // Injected: IRR → ISR. Not injected: it stays in IRR.
            if went_in {
                super::vplatform_exits::acknowledged(g, vector);
            }
        } else if !went_in {
            dispatch::raise(id, vector);
        }
    }
    let ev = &mut g.vcpu_mut().events;
    if window != ev.window {
        let bits = if window {
            ev.primary | PrimaryControls::INTERRUPT_WINDOW_EXITING.bits()
        } else {
            ev.primary
        };
        v.set(Control32::PrimaryProcessorControls, bits)?;
        ev.window = window;
    }
    Ok(())
}
