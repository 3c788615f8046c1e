//! What reaches a local APIC while its vCPU is in VMX non-root operation on another processor.
//! Under APIC virtualization that processor updates the vCPU's virtual-APIC page itself (SDM
//! Vol. 3C §30.1-§30.2: virtual IRR, ISR, PPR, TPR), so no other processor may write the page
//! meanwhile; interrupts and an INIT for the vCPU are kept here until its own processor handles
//! it again and moves them into the model ([`Inbox::take`]).

use crate::Trigger;

/// Interrupts (by vector and trigger mode) and an INIT waiting for one local APIC.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Inbox {
    /// Bit n of word n / 64: vector n, edge-triggered.
    edge: [u64; 4],
    /// The same, level-triggered.
    level: [u64; 4],
    init: bool,
}

/// What an [`Inbox`] held, in the order the local APIC takes it: the INIT first (which resets
/// the APIC, SDM Vol. 3A §11.4.7.3), then the vectors, lowest first (the IRR is a set: the order
/// does not change which vector is delivered first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// An INIT arrived (before the vectors, which came after it).
    pub init: bool,
    inbox: Inbox,
}

impl Drained {
    /// The vectors with their trigger modes: the edge-triggered ones, then the level-triggered
    /// ones, each lowest first.
    pub fn vectors(&self) -> impl Iterator<Item = (u8, Trigger)> + '_ {
        [
            (self.inbox.edge, Trigger::Edge),
            (self.inbox.level, Trigger::Level),
        ]
        .into_iter()
        .flat_map(|(words, trigger)| {
            (0..=255u8)
                .filter(move |&v| words[usize::from(v / 64)] & (1 << (v % 64)) != 0)
                .map(move |v| (v, trigger))
        })
    }
}

impl Inbox {
    /// An interrupt with `vector` and `trigger`; the same vector twice is one request, as in the
    /// IRR.
    pub fn post(&mut self, vector: u8, trigger: Trigger) {
        let words = match trigger {
            Trigger::Edge => &mut self.edge,
            Trigger::Level => &mut self.level,
        };
        words[usize::from(vector / 64)] |= 1 << (vector % 64);
    }

    /// An INIT: the interrupts that arrived before it are gone with it (the APIC it resets loses
    /// its IRR); those after it stay.
    pub fn post_init(&mut self) {
        *self = Self {
            init: true,
            ..Self::default()
        };
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Empties the inbox.
    pub fn take(&mut self) -> Drained {
        let inbox = core::mem::take(self);
        Drained {
            init: inbox.init,
            inbox,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Inbox;
    use crate::Trigger::{Edge, Level};

    #[test]
    fn vectors_are_kept_by_trigger_mode_once_each() {
        let mut b = Inbox::default();
        assert!(b.is_empty());
        b.post(0xec, Edge);
        b.post(0x30, Level);
        b.post(0xec, Edge);
        b.post(0xff, Edge);
        b.post(0, Edge);
        assert!(!b.is_empty());
        let d = b.take();
        assert!(!d.init);
        let got: Vec<_> = d.vectors().collect();
        assert_eq!(got, [(0, Edge), (0xec, Edge), (0xff, Edge), (0x30, Level)]);
        assert!(b.is_empty());
        assert_eq!(b.take().vectors().count(), 0);
    }

    #[test]
    fn an_init_drops_what_came_before_it_and_keeps_what_came_after() {
        let mut b = Inbox::default();
        b.post(0x40, Edge);
        b.post(0x41, Level);
        b.post_init();
        b.post(0x42, Edge);
        let d = b.take();
        assert!(d.init);
        assert_eq!(d.vectors().collect::<Vec<_>>(), [(0x42, Edge)]);
        assert!(!b.take().init);
    }
}
