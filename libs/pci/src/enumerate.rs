//! Walking one PCI segment's hierarchy: which functions exist, and how deep behind bridges.
//!
//! The walk starts at the segment's first bus and follows every PCI-to-PCI bridge to its
//! secondary bus (the bus numbers firmware assigned; PCI-to-PCI Bridge Architecture Spec 1.2
//! §3.2.5.3), visiting functions 1-7 of multi-function devices (PCI Local Bus Spec 3.0 §6.2.1,
//! Header Type bit 7). Then every other bus of the segment's range is probed: root buses of
//! further host bridges have no parent bridge and are found only by looking (PCI Firmware Spec
//! 3.3 §4.1.2: the MCFG's range covers every bus the segment decodes). A bus with a function at
//! any device number, function 0, is walked as a root bus (depth 0).
//!
//! The walk only reads; what the caller does with each function (sizing BARs, walking
//! capabilities) happens afterwards, and does not change bus numbers.

use core::ops::RangeInclusive;

use crate::bdf::Bdf;
use crate::bridge::bridge_buses;
use crate::config::{ConfigAccess, Header, HeaderLayout, read_header};

/// What the walk met, in walk order.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Event {
    /// A function answered.
    Function {
        /// Its address on the segment.
        bdf: Bdf,
        /// Its identification header.
        header: Header,
        /// Bridges between its root bus and it.
        depth: u8,
    },
    /// A bus no bridge leads to has functions: it is walked as a further root bus.
    RootBus(u8),
    /// A bridge has no secondary bus assigned (0, or subordinate below secondary): nothing
    /// behind it is walked.
    Unassigned(Bdf),
    /// A bridge names a secondary bus at or below its own, or one already walked: not walked
    /// again (a loop, or two bridges claiming one bus).
    Revisit {
        /// The bridge.
        bridge: Bdf,
        /// The bus it names.
        bus: u8,
    },
}

/// Walks the segment `cfg` reaches: from `buses.start()`, then every bus of `buses` not yet
/// walked. Calls `visit` for every [`Event`]; returns how many buses were walked.
pub fn walk<C: ConfigAccess + ?Sized>(
    cfg: &C,
    buses: RangeInclusive<u8>,
    visit: &mut impl FnMut(Event),
) -> usize {
    let mut walked = [false; 256];
    walk_bus(cfg, *buses.start(), 0, &mut walked, visit);
    for bus in buses {
        if walked[usize::from(bus)] {
            continue;
        }
        let present = (0..=Bdf::MAX_DEVICE)
            .filter_map(|d| Bdf::new(bus, d, 0))
            .any(|b| read_header(cfg, b).is_ok());
        if present {
            visit(Event::RootBus(bus));
            walk_bus(cfg, bus, 0, &mut walked, visit);
        }
    }
    walked.iter().filter(|w| **w).count()
}

fn walk_bus<C: ConfigAccess + ?Sized>(
    cfg: &C,
    bus: u8,
    depth: u8,
    walked: &mut [bool; 256],
    visit: &mut impl FnMut(Event),
) {
    walked[usize::from(bus)] = true;
    for device in 0..=Bdf::MAX_DEVICE {
        let Some(f0) = Bdf::new(bus, device, 0) else {
            continue;
        };
        let Ok(header) = read_header(cfg, f0) else {
            continue;
        };
        let last = if header.multi_function() {
            Bdf::MAX_FUNCTION
        } else {
            0
        };
        for function in 0..=last {
            let Some(bdf) = Bdf::new(bus, device, function) else {
                continue;
            };
            let Ok(header) = read_header(cfg, bdf) else {
                continue;
            };
            visit(Event::Function { bdf, header, depth });
            if header.layout() != HeaderLayout::Bridge {
                continue;
            }
            let secondary = bridge_buses(cfg, bdf)
                .ok()
                .and_then(|b| b.range())
                .map(|r| *r.start());
            match secondary {
                None => visit(Event::Unassigned(bdf)),
                Some(s) if s > bus && !walked[usize::from(s)] => {
                    walk_bus(cfg, s, depth.saturating_add(1), walked, visit);
                }
                Some(s) => visit(Event::Revisit {
                    bridge: bdf,
                    bus: s,
                }),
            }
        }
    }
}
