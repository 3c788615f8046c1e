//! Which of a guest's local APICs an IPI reaches (SDM Vol. 3A §11.6.1 "Interrupt Command
//! Register (ICR)", destination shorthands; §11.6.2 "Determining IPI Destination": physical,
//! logical flat and cluster models, broadcast; x2APIC: §11.12.9, §11.12.10).
//!
//! The guest's vCPUs are given as a slice of their local APICs, indexed by vCPU; the result is
//! the set of indices the IPI reaches. An IPI whose set is empty reached nobody: its destination
//! names no APIC the guest owns.

use crate::{ApicPage, DeliveryMode, DestMode, Ipi, Shorthand, Trigger, Vlapic};

/// Most local APICs one guest has: a [`Targets`] set holds one bit per APIC.
pub const MAX_APICS: usize = 64;

/// A set of vCPU indices (bit `i`: the APIC at index `i`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Targets(pub u64);

impl Targets {
    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether index `i` is in the set.
    pub fn contains(self, i: usize) -> bool {
        i < MAX_APICS && self.0 & (1 << i) != 0
    }

    /// The indices in the set, lowest first.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        (0..MAX_APICS).filter(move |&i| self.contains(i))
    }

    fn with(self, i: usize) -> Self {
        Self(self.0 | (1 << i))
    }
}

impl Ipi {
    /// An INIT level de-assert (delivery mode INIT, level 0, trigger level): it has no effect on
    /// processors since the Pentium 4 (SDM Vol. 3A §11.6.1, "INIT Level De-assert"), so it
    /// reaches nobody and is no message to nobody either.
    pub fn is_init_deassert(&self) -> bool {
        self.delivery_mode == DeliveryMode::Init && !self.level && self.trigger == Trigger::Level
    }
}

/// The APICs among `apics` that `ipi`, sent by `apics[sender]`, reaches and that still have to
/// accept it:
/// - shorthand "self": the sender; "all including self": every APIC; "all excluding self":
///   every APIC but the sender;
/// - no shorthand: every APIC whose [`Vlapic::matches`] says the destination names it (an
///   APIC ID in physical mode, the broadcast ID, a logical destination in flat, cluster or
///   x2APIC logical form), the sender included; for lowest-priority delivery only the first of
///   them (the SDM leaves the arbitration to the implementation, §11.6.2.4).
///
/// The sender's own share of a fixed IPI with shorthand "self" or "all including self" is left
/// out: the sender's model accepted it when the ICR was written
/// ([`crate::Effects::ipi`]). An INIT level de-assert reaches nobody. At most [`MAX_APICS`]
/// APICs are looked at.
pub fn targets<P: ApicPage>(ipi: &Ipi, sender: usize, apics: &[Vlapic<P>]) -> Targets {
    if ipi.is_init_deassert() {
        return Targets::default();
    }
    let n = apics.len().min(MAX_APICS);
    // The sender's model accepted its own share already (`Vlapic::send_ipi`).
    let fixed = ipi.delivery_mode == DeliveryMode::Fixed;
    let all = (0..n).fold(Targets::default(), Targets::with);
    let but_sender = Targets(all.0 & !(1u64.checked_shl(sender as u32).unwrap_or(0)));
    match ipi.shorthand {
        Shorthand::ToSelf if fixed => Targets::default(),
        Shorthand::ToSelf => Targets(all.0 & !but_sender.0),
        Shorthand::AllIncludingSelf if fixed => but_sender,
        Shorthand::AllIncludingSelf => all,
        Shorthand::AllExcludingSelf => but_sender,
        Shorthand::None => {
            let logical = ipi.dest_mode == DestMode::Logical;
            let mut hit = (0..n).filter(|&i| apics[i].matches(ipi.dest, logical));
            match ipi.delivery_mode {
                DeliveryMode::LowestPriority => hit
                    .next()
                    .map_or(Targets::default(), |i| Targets::default().with(i)),
                _ => hit.fold(Targets::default(), Targets::with),
            }
        }
    }
}
