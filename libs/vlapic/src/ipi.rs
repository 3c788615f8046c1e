//! Interprocessor interrupts sent through the ICR (SDM Vol. 3A §11.6.1, Figure 11-12;
//! x2APIC: §11.12.9).

use crate::regs::ICR_LOW_WRITABLE;
use crate::{ApicPage, Effects, Trigger, Vlapic, esr};

/// ICR delivery mode, bits 10:8 (SDM Vol. 3A §11.6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryMode {
    /// 000.
    Fixed,
    /// 001.
    LowestPriority,
    /// 010.
    Smi,
    /// 100.
    Nmi,
    /// 101 (INIT, or INIT level de-assert with level 0 and trigger level).
    Init,
    /// 110 (the vector is the start page).
    StartUp,
}

/// ICR destination mode, bit 11.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestMode {
    /// Destination is an APIC ID.
    Physical,
    /// Destination is matched against LDR (and DFR in xAPIC mode).
    Logical,
}

/// ICR destination shorthand, bits 19:18.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shorthand {
    /// 00: the destination field selects.
    None,
    /// 01: the sender only.
    ToSelf,
    /// 10: every APIC, the sender included.
    AllIncludingSelf,
    /// 11: every APIC but the sender.
    AllExcludingSelf,
}

/// An IPI written to the ICR, for the kernel to route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipi {
    /// Vector (fixed, lowest priority) or start page (start-up).
    pub vector: u8,
    /// Delivery mode.
    pub delivery_mode: DeliveryMode,
    /// Destination: 8 bits in xAPIC mode, 32 bits in x2APIC mode; see [`Vlapic::matches`].
    pub dest: u32,
    /// Destination mode.
    pub dest_mode: DestMode,
    /// Destination shorthand.
    pub shorthand: Shorthand,
    /// Level bit 14 (assert).
    pub level: bool,
    /// Trigger mode bit 15.
    pub trigger: Trigger,
}

impl<P: ApicPage> Vlapic<P> {
    /// Sends the IPI in ICR bits 31:0 (`low`, reserved bits clear) to `dest`.
    pub(crate) fn send_ipi(&mut self, low: u32, dest: u32) -> Effects {
        let low = low & ICR_LOW_WRITABLE;
        let vector = low as u8;
        let delivery_mode = match (low >> 8) & 7 {
            0 => DeliveryMode::Fixed,
            1 => DeliveryMode::LowestPriority,
            2 => DeliveryMode::Smi,
            4 => DeliveryMode::Nmi,
            5 => DeliveryMode::Init,
            6 => DeliveryMode::StartUp,
            // 011 (remote read) and 111 are reserved: nothing is sent.
            _ => return Effects::default(),
        };
        let fixed = matches!(
            delivery_mode,
            DeliveryMode::Fixed | DeliveryMode::LowestPriority
        );
        if fixed && vector < 16 {
            return self.error(esr::SEND_ILLEGAL_VECTOR);
        }
        let trigger = if low & (1 << 15) != 0 {
            Trigger::Level
        } else {
            Trigger::Edge
        };
        let shorthand = match (low >> 18) & 3 {
            0 => Shorthand::None,
            1 => Shorthand::ToSelf,
            2 => Shorthand::AllIncludingSelf,
            _ => Shorthand::AllExcludingSelf,
        };
        let mut fx = Effects::default();
        let to_self = matches!(shorthand, Shorthand::ToSelf | Shorthand::AllIncludingSelf);
        if to_self && delivery_mode == DeliveryMode::Fixed {
            fx = self.accept(vector, trigger);
        }
        // A fixed IPI to self is accepted here and goes nowhere else; the other modes to self
        // are the kernel's to carry out ([`crate::targets`]).
        if shorthand != Shorthand::ToSelf || delivery_mode != DeliveryMode::Fixed {
            fx.ipi = Some(Ipi {
                vector,
                delivery_mode,
                dest,
                dest_mode: if low & (1 << 11) != 0 {
                    DestMode::Logical
                } else {
                    DestMode::Physical
                },
                shorthand,
                level: low & (1 << 14) != 0,
                trigger,
            });
        }
        fx
    }
}
