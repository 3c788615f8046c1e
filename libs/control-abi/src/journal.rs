//! What the core keeps of a function's state in the control task, so that a restarted task can
//! be brought back to it without the guest noticing.
//!
//! The task's state of an assigned function (its virtual configuration space: BARs, Command,
//! MSI and MSI-X capabilities, the virtual MSI-X table; and the physical MSI message the core
//! had it program) is the result of the requests that changed it and were served: guest
//! configuration and MSI-X table writes ([`Op::ConfigWrite`], [`Op::MsixWrite`]) and the core's
//! [`Op::PhysicalMsi`]. A [`Journal`] keeps, per register (op, offset, size), the last such
//! request and when it came; replaying them in that order on a freshly built function gives every
//! byte the value of the latest write that covered it, which is the state the task had (a
//! register's value depends only on the writes that covered it, never on their history, except
//! for the actions below).
//!
//! Actions are not registers: a Function Level Reset (PCIe Base Spec r6.0 §6.6.2, the
//! [`Event::FunctionReset`] a write reports) or the core's [`Op::ResetFunction`] put the function
//! back in its reset state, which a fresh build already is, so they clear the journal instead of
//! being recorded. Reads change nothing.
//!
//! The journal is bounded: a register set is finite (4 KiB of configuration space, the MSI-X
//! table), and at most [`MAX_ENTRIES`] registers are kept; a function whose guest wrote more is
//! marked [`Journal::overflowed`] and comes back in its reset state instead.
//!
//! ```
//! use conduit_control_abi::{Op, Request, journal::Journal};
//! use conduit_pci::Bdf;
//! let vbdf = Bdf::new(0, 1, 0).unwrap();
//! let mut j = Journal::new();
//! let bar = Request::write(0, vbdf, 0x10, 4, 0xffff_ffff);
//! j.record(&bar, core::iter::empty());
//! j.record(&Request::write(0, vbdf, 0x04, 2, 6), core::iter::empty());
//! j.record(&Request::write(0, vbdf, 0x10, 4, 0xc000_0000), core::iter::empty());
//! let replay: Vec<Request> = j.replay(0, vbdf).collect();
//! assert_eq!(replay[0].offset, 0x04);
//! assert_eq!(replay[1].value, 0xc000_0000);
//! ```

use crate::request::{Op, Request};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use conduit_pci::Bdf;
use conduit_vpci::Event;

/// Registers kept per function (a guest that writes more distinct registers than a device has
/// loses replay for that function: it comes back reset).
pub const MAX_ENTRIES: usize = 4096;

/// (op byte, offset, size) of a recorded register.
type Key = (u8, u64, u8);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    seq: u64,
    offset: u64,
    value: u64,
}

/// The state-changing requests of one function, last write per register.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Journal {
    entries: BTreeMap<Key, Entry>,
    seq: u64,
    overflowed: bool,
}

impl Journal {
    /// An empty journal: the function as built.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            entries: BTreeMap::new(),
            seq: 0,
            overflowed: false,
        }
    }

    /// Whether `op` changes a function's state when served.
    #[must_use]
    pub const fn changes_state(op: Op) -> bool {
        matches!(op, Op::ConfigWrite | Op::MsixWrite | Op::PhysicalMsi)
    }

    /// Records a request the task served, with the events its reply carried.
    pub fn record<'a>(&mut self, req: &Request, mut events: impl Iterator<Item = &'a Event>) {
        if req.op == Op::ResetFunction || events.any(|e| matches!(e, Event::FunctionReset)) {
            self.clear();
            return;
        }
        if !Self::changes_state(req.op) {
            return;
        }
        // The physical MSI message is one register whatever its address.
        let key: Key = match req.op {
            Op::PhysicalMsi => (req.op as u8, 0, 0),
            _ => (req.op as u8, req.offset, req.size),
        };
        if !self.entries.contains_key(&key) && self.entries.len() >= MAX_ENTRIES {
            self.overflowed = true;
            return;
        }
        self.seq += 1;
        self.entries.insert(
            key,
            Entry {
                seq: self.seq,
                offset: req.offset,
                value: req.value,
            },
        );
    }

    /// Forgets everything: the function is in its reset state.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.overflowed = false;
    }

    /// The guest wrote more registers than [`MAX_ENTRIES`]: replay cannot restore it.
    #[must_use]
    pub const fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// Registers kept.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Nothing kept (the function is as built).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The requests that bring a freshly built function at (`guest`, `vbdf`) to the recorded
    /// state, oldest first.
    pub fn replay(&self, guest: u16, vbdf: Bdf) -> impl Iterator<Item = Request> + use<> {
        let mut list: Vec<(Key, Entry)> = self.entries.iter().map(|(k, e)| (*k, *e)).collect();
        list.sort_by_key(|(_, e)| e.seq);
        list.into_iter().filter_map(move |((op, _, size), e)| {
            Some(Request {
                op: Op::from_raw(op)?,
                guest,
                vbdf,
                segment: 0,
                offset: e.offset,
                size,
                value: e.value,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vbdf() -> Bdf {
        Bdf::new(0, 1, 0).unwrap()
    }

    fn write(offset: u16, size: u8, value: u32) -> Request {
        Request::write(3, vbdf(), offset, size, value)
    }

    fn msix(offset: u64, value: u64) -> Request {
        Request {
            offset,
            size: 4,
            value,
            ..Request::new(Op::MsixWrite, 3, vbdf())
        }
    }

    /// Applies requests to a byte array as a register file would, to compare final states.
    fn apply(space: &mut [u8; 64], reqs: impl IntoIterator<Item = Request>) {
        for r in reqs {
            let at = r.offset as usize;
            for i in 0..usize::from(r.size) {
                space[at + i] = (r.value >> (8 * i)) as u8;
            }
        }
    }

    #[test]
    fn replay_restores_every_byte_as_the_original_sequence_left_it() {
        // Overlapping writes of several sizes, rewritten in different orders.
        let seq = [
            write(0x10, 4, 0xffff_ffff),
            write(0x04, 2, 0x0000),
            write(0x10, 4, 0xc000_0000),
            write(0x12, 2, 0xabcd),
            write(0x04, 2, 0x0006),
            write(0x10, 1, 0x08),
            write(0x10, 4, 0xd000_0000),
            write(0x13, 1, 0x11),
            write(0x3c, 1, 0x0b),
        ];
        let mut j = Journal::new();
        for r in &seq {
            j.record(r, core::iter::empty());
        }
        let mut original = [0u8; 64];
        apply(&mut original, seq);
        let mut replayed = [0u8; 64];
        let list: Vec<Request> = j.replay(3, vbdf()).collect();
        assert!(list.len() < seq.len());
        assert!(list.iter().all(|r| r.guest == 3 && r.vbdf == vbdf()));
        apply(&mut replayed, list);
        assert_eq!(original, replayed);
    }

    #[test]
    fn reads_and_hypervisor_requests_are_not_recorded() {
        let mut j = Journal::new();
        j.record(&Request::read(3, vbdf(), 0, 4), core::iter::empty());
        j.record(
            &Request::new(Op::PhysicalRead, 3, vbdf()),
            core::iter::empty(),
        );
        j.record(
            &Request::new(Op::AddFunction, 3, vbdf()),
            core::iter::empty(),
        );
        assert!(j.is_empty());
    }

    #[test]
    fn a_function_reset_clears_what_came_before() {
        let mut j = Journal::new();
        j.record(&write(0x04, 2, 6), core::iter::empty());
        j.record(&msix(8, 0x41), core::iter::empty());
        // Initiate FLR (Device Control): the task reports the reset; the write itself is an
        // action, not a register.
        j.record(&write(0x48, 2, 0x8000), [Event::FunctionReset].iter());
        assert!(j.is_empty());
        j.record(&write(0x10, 4, 0xc000_0000), core::iter::empty());
        j.record(
            &Request::new(Op::ResetFunction, 3, vbdf()),
            core::iter::empty(),
        );
        assert!(j.is_empty());
    }

    #[test]
    fn the_physical_msi_message_is_one_register() {
        let mut j = Journal::new();
        let msi = |address: u64, data: u64| Request {
            offset: address,
            value: data,
            ..Request::new(Op::PhysicalMsi, 3, vbdf())
        };
        j.record(&msi(0xfee0_0010, 0x1_0000_0000), core::iter::empty());
        j.record(&msi(0xfee0_0018, 0x1_0000_0001), core::iter::empty());
        let list: Vec<Request> = j.replay(3, vbdf()).collect();
        assert_eq!(list, [msi(0xfee0_0018, 0x1_0000_0001)]);
    }

    #[test]
    fn msix_and_config_registers_are_kept_apart_and_ordered() {
        let mut j = Journal::new();
        j.record(&msix(0x0c, 0), core::iter::empty());
        j.record(&write(0x0c, 4, 0x10), core::iter::empty());
        j.record(&msix(0x0c, 1), core::iter::empty());
        let list: Vec<(Op, u64)> = j.replay(3, vbdf()).map(|r| (r.op, r.value)).collect();
        assert_eq!(list, [(Op::ConfigWrite, 0x10), (Op::MsixWrite, 1)]);
    }

    #[test]
    fn a_guest_that_writes_too_many_registers_overflows_without_growing() {
        let mut j = Journal::new();
        for i in 0..(MAX_ENTRIES as u64 + 10) {
            j.record(&msix(i * 4, i), core::iter::empty());
        }
        assert_eq!(j.len(), MAX_ENTRIES);
        assert!(j.overflowed());
        // Rewriting a kept register still works; a reset starts over.
        j.record(&msix(0, 7), core::iter::empty());
        assert_eq!(j.len(), MAX_ENTRIES);
        j.clear();
        assert!(!j.overflowed() && j.is_empty());
    }
}
