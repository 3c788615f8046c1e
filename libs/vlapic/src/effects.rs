//! What a model operation asks of the kernel, and interrupt trigger modes.

use crate::Ipi;

/// Trigger mode of an interrupt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Edge-triggered: EOI needs no broadcast.
    Edge,
    /// Level-triggered: the TMR bit is set and the EOI goes to the I/O APIC.
    Level,
}

/// What the kernel must do after a model operation.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Effects {
    /// A level-triggered vector was EOIed: broadcast the EOI to the I/O APIC.
    pub eoi: Option<u8>,
    /// An IPI to deliver to the vCPUs [`targets`](crate::targets) names. The sender's own share
    /// of a fixed IPI with shorthand "self" or "all including self" is already accepted here
    /// (a fixed IPI to self only is not returned); the kernel delivers a no-shorthand IPI to
    /// every vCPU whose [`Vlapic::matches`](crate::Vlapic::matches) says yes, the sender
    /// included.
    pub ipi: Option<Ipi>,
    /// An interrupt entered the IRR: re-evaluate injection (software mode) or RVI (APICv).
    pub interrupt_pending: bool,
    /// The TMR changed: reload the EOI-exit bitmap from [`Vlapic::eoi_exit_bitmap`](crate::Vlapic::eoi_exit_bitmap).
    pub tmr_changed: bool,
    /// The timer was armed, re-armed or disarmed: re-read [`Vlapic::next_deadline`](crate::Vlapic::next_deadline).
    pub timer_changed: bool,
    /// The APIC mode changed (xAPIC, x2APIC, disabled): reconfigure APIC virtualization.
    pub mode_changed: bool,
}

impl Effects {
    pub(crate) fn merge(&mut self, other: Effects) {
        self.eoi = self.eoi.or(other.eoi);
        self.ipi = self.ipi.or(other.ipi);
        self.interrupt_pending |= other.interrupt_pending;
        self.tmr_changed |= other.tmr_changed;
        self.timer_changed |= other.timer_changed;
        self.mode_changed |= other.mode_changed;
    }
}
