//! What to inject at the next VM entry, and whether to ask for an interrupt-window exit (SDM Vol.
//! 3C, "Event Injection" in "VM Entries"; "Interrupt-Window Exiting and Virtual-Interrupt
//! Delivery"; "Information for VM Exits That Occur During Event Delivery"; Vol. 3A, "Masking
//! Maskable Hardware Interrupts" and "Masking Exceptions and Interrupts When Switching Stacks").
//!
//! Three sources compete for the one VM-entry interruption-information field:
//! 1. an event whose delivery a VM exit interrupted (the IDT-vectoring information): it must be
//!    delivered again first, or the guest loses it;
//! 2. an exception the hypervisor raises for an instruction it emulated (a refused RDMSR's #GP);
//! 3. a virtual external interrupt. It may only be injected when the guest could take it itself:
//!    RFLAGS.IF = 1 and no blocking by STI or by MOV SS (VM entry refuses an external interrupt
//!    with either blocking bit set, "Checks on Guest Non-Register State"). Otherwise the
//!    "interrupt-window exiting" control makes the guest exit at the first instruction boundary
//!    where it could, and the interrupt goes in then.
//!
//! [`plan`] is the decision; the kernel writes the fields and the control.

use crate::exit::{InterruptionInfo, InterruptionType};

/// RFLAGS.IF.
pub const RFLAGS_IF: u64 = 1 << 9;

/// The guest interruptibility-state field (SDM Vol. 3C, table "Format of Interruptibility State").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Interruptibility(pub u32);

impl Interruptibility {
    /// Bit 0: blocking by STI (the instruction after STI).
    pub const BLOCKING_BY_STI: u32 = 1 << 0;
    /// Bit 1: blocking by MOV SS / POP SS.
    pub const BLOCKING_BY_MOV_SS: u32 = 1 << 1;
    /// Bit 2: blocking by SMI.
    pub const BLOCKING_BY_SMI: u32 = 1 << 2;
    /// Bit 3: blocking by NMI.
    pub const BLOCKING_BY_NMI: u32 = 1 << 3;

    /// Whether an STI or MOV SS shadow blocks external interrupts now.
    pub const fn in_shadow(self) -> bool {
        self.0 & (Self::BLOCKING_BY_STI | Self::BLOCKING_BY_MOV_SS) != 0
    }

    /// The state once the hypervisor completed the instruction that exited: the STI and MOV SS
    /// shadows covered that instruction only and end with it (SMI and NMI blocking stay). When
    /// emulating an instruction, a VMM clears them as the processor would have.
    pub const fn after_instruction(self) -> Self {
        Self(self.0 & !(Self::BLOCKING_BY_STI | Self::BLOCKING_BY_MOV_SS))
    }
}

/// An event for the VM-entry interruption-information field with its error code and instruction
/// length (the latter two only where the type needs them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub info: InterruptionInfo,
    pub error_code: u32,
    pub instruction_length: u32,
}

impl Event {
    /// A virtual external interrupt.
    pub const fn external_interrupt(vector: u8) -> Self {
        Self {
            info: InterruptionInfo::external_interrupt(vector),
            error_code: 0,
            instruction_length: 0,
        }
    }

    /// A hardware exception (error code delivered for the vectors that push one).
    pub const fn exception(vector: u8, error_code: u32) -> Self {
        Self {
            info: InterruptionInfo::hardware_exception(vector),
            error_code,
            instruction_length: 0,
        }
    }

    /// The event to deliver again after an exit during its delivery, from the IDT-vectoring
    /// information and error code fields and the VM-exit instruction length (which the exit
    /// saves for software interrupts and exceptions). `None` when no event was being delivered.
    /// Bit 12 is undefined in the IDT-vectoring field and reserved on entry, so it is cleared.
    pub const fn from_vectoring(
        info: u32,
        error_code: u32,
        instruction_length: u32,
    ) -> Option<Self> {
        let info = InterruptionInfo(info & !(InterruptionInfo::NMI_UNBLOCKING));
        let Some(kind) = info.valid_kind() else {
            return None;
        };
        Some(Self {
            info,
            error_code: if info.error_code_valid() {
                error_code
            } else {
                0
            },
            instruction_length: if kind.needs_instruction_length() {
                instruction_length
            } else {
                0
            },
        })
    }

    /// Whether this is an external interrupt (and which vector).
    pub const fn interrupt_vector(self) -> Option<u8> {
        match self.info.valid_kind() {
            Some(InterruptionType::ExternalInterrupt) => Some(self.info.vector()),
            _ => None,
        }
    }
}

/// Where the injected event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The IDT-vectoring information of the last exit.
    Reinjection,
    /// An exception raised by the hypervisor.
    Exception,
    /// A pending virtual interrupt.
    Interrupt,
}

/// What the next VM entry does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// The event for the VM-entry interruption-information field, if any.
    pub inject: Option<(Event, Source)>,
    /// The value for the "interrupt-window exiting" control: on while a virtual interrupt waits
    /// for the guest to be able to take it (or waits behind the event injected now).
    pub window: bool,
}

/// The next entry's events: `reinject` (from the last exit's IDT-vectoring information) before
/// `exception` before the highest pending virtual `interrupt`, which needs RFLAGS.IF = 1 and no
/// STI / MOV SS shadow (`rflags`, `state` as the guest will be entered). `more`: other virtual
/// interrupts are pending besides `interrupt`; the window stays open for them, so the guest exits
/// as soon as it can take the next one (after the handler's IRET).
pub fn plan(
    reinject: Option<Event>,
    exception: Option<Event>,
    interrupt: Option<u8>,
    more: bool,
    rflags: u64,
    state: Interruptibility,
) -> Plan {
    let waiting = interrupt.is_some() || more;
    if let Some(e) = reinject {
        return Plan {
            inject: Some((e, Source::Reinjection)),
            window: waiting,
        };
    }
    if let Some(e) = exception {
        return Plan {
            inject: Some((e, Source::Exception)),
            window: waiting,
        };
    }
    match interrupt {
        Some(v) if rflags & RFLAGS_IF != 0 && !state.in_shadow() => Plan {
            inject: Some((Event::external_interrupt(v), Source::Interrupt)),
            window: more,
        },
        Some(_) => Plan {
            inject: None,
            window: true,
        },
        None => Plan {
            inject: None,
            window: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::InterruptionType;

    const IF: u64 = RFLAGS_IF | 2;
    const NO_IF: u64 = 2;
    const OPEN: Interruptibility = Interruptibility(0);

    #[test]
    fn an_interrupt_goes_in_when_the_guest_can_take_it() {
        let p = plan(None, None, Some(0x30), false, IF, OPEN);
        let (e, src) = p.inject.unwrap();
        assert_eq!(src, Source::Interrupt);
        assert_eq!(e.info.0, 0x8000_0030);
        assert_eq!(e.interrupt_vector(), Some(0x30));
        assert!(!p.window);
    }

    #[test]
    fn if_clear_waits_for_the_window() {
        let p = plan(None, None, Some(0x30), false, NO_IF, OPEN);
        assert_eq!(p.inject, None);
        assert!(p.window);
    }

    #[test]
    fn sti_and_mov_ss_shadows_wait_for_the_window() {
        for bit in [
            Interruptibility::BLOCKING_BY_STI,
            Interruptibility::BLOCKING_BY_MOV_SS,
        ] {
            let p = plan(None, None, Some(0x40), false, IF, Interruptibility(bit));
            assert_eq!(p.inject, None, "blocking bit {bit:#x}");
            assert!(p.window);
        }
    }

    #[test]
    fn nmi_and_smi_blocking_do_not_hold_an_external_interrupt() {
        let state =
            Interruptibility(Interruptibility::BLOCKING_BY_NMI | Interruptibility::BLOCKING_BY_SMI);
        let p = plan(None, None, Some(0x40), false, IF, state);
        assert_eq!(p.inject.map(|(_, s)| s), Some(Source::Interrupt));
    }

    #[test]
    fn more_pending_keeps_the_window_open_after_an_injection() {
        let p = plan(None, None, Some(0x31), true, IF, OPEN);
        assert_eq!(
            p.inject.map(|(e, _)| e.interrupt_vector()),
            Some(Some(0x31))
        );
        assert!(p.window);
        let p = plan(None, None, Some(0x31), false, IF, OPEN);
        assert!(!p.window);
    }

    #[test]
    fn nothing_pending_turns_the_window_off() {
        assert_eq!(
            plan(None, None, None, false, NO_IF, OPEN),
            Plan {
                inject: None,
                window: false
            }
        );
    }

    #[test]
    fn reinjection_comes_first_and_keeps_the_interrupt_waiting() {
        let pf = Event::from_vectoring(0x8000_0b0e, 0x2, 0).unwrap();
        let gp = Event::exception(13, 0);
        let p = plan(Some(pf), Some(gp), Some(0x30), false, IF, OPEN);
        assert_eq!(p.inject, Some((pf, Source::Reinjection)));
        assert!(p.window);
    }

    #[test]
    fn an_exception_comes_before_an_interrupt() {
        let gp = Event::exception(13, 0);
        let p = plan(None, Some(gp), Some(0x30), false, IF, OPEN);
        assert_eq!(p.inject, Some((gp, Source::Exception)));
        assert!(p.window);
        assert_eq!(gp.info.0, 0x8000_0b0d);
        assert_eq!(gp.interrupt_vector(), None);
    }

    #[test]
    fn vectoring_keeps_error_code_and_length_only_where_they_belong() {
        // #PF being delivered: error code valid, no instruction length.
        let pf = Event::from_vectoring(0x8000_0b0e, 0x6, 3).unwrap();
        assert_eq!((pf.error_code, pf.instruction_length), (6, 0));
        // INT 0x80 being delivered: software interrupt, instruction length kept.
        let int = Event::from_vectoring(0x8000_0480, 0xdead, 2).unwrap();
        assert_eq!(int.info.kind(), InterruptionType::SoftwareInterrupt);
        assert_eq!((int.error_code, int.instruction_length), (0, 2));
        // An external interrupt being delivered: re-injected as it was.
        let ext = Event::from_vectoring(0x8000_0031, 0, 0).unwrap();
        assert_eq!(ext.interrupt_vector(), Some(0x31));
        // Not valid: nothing.
        assert_eq!(Event::from_vectoring(0x0000_0b0e, 0, 0), None);
    }

    #[test]
    fn vectoring_clears_the_undefined_bit_12_so_entry_accepts_it() {
        let nmi = Event::from_vectoring(0x8000_1202, 0, 0).unwrap();
        assert_eq!(nmi.info.0, 0x8000_0202);
        assert_eq!(
            nmi.info.validate_injection(0, 0, true, false, false),
            Ok(())
        );
    }

    #[test]
    fn every_planned_event_passes_the_entry_checks() {
        let cases = [
            Event::external_interrupt(0x20),
            Event::external_interrupt(0xff),
            Event::exception(13, 0),
            Event::exception(6, 0),
            Event::from_vectoring(0x8000_0b0e, 2, 0).unwrap(),
            Event::from_vectoring(0x8000_0603, 0, 1).unwrap(),
        ];
        for e in cases {
            assert_eq!(
                e.info
                    .validate_injection(e.error_code, e.instruction_length, true, false, false),
                Ok(()),
                "{e:?}"
            );
        }
    }

    #[test]
    fn completing_an_instruction_ends_the_shadows_only() {
        let s = Interruptibility(0xf).after_instruction();
        assert_eq!(s.0, 0xc);
        assert!(!s.in_shadow());
        assert!(Interruptibility(1).in_shadow());
        assert!(Interruptibility(2).in_shadow());
        assert!(!Interruptibility(8).in_shadow());
    }
}
