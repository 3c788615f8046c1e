//! The PF side of the Intel 82576 (igb) PF/VF mailbox, as pure logic.
//!
//! A VF driver (Linux's `igbvf`) cannot configure the shared parts of the device itself: its MAC
//! address filter, the VLAN filters, multicast hashes and the maximum frame size of its pool are
//! PF registers. It asks the PF through a per-VF mailbox of 16 dwords (Intel 82576 GbE
//! Controller Datasheet §7.8 "Virtualization", its PF/VF mailbox), and the PF answers with the
//! request word marked ACK or NACK. This crate answers the way Linux's igb PF driver does (the
//! message set of its `e1000_mbx.h`, the handlers of `igb_main.c`), within what a per-VF
//! [`Policy`] allows: the VF's MAC address, the other MAC addresses that must not be taken, the
//! VLAN ids it was given, the frame size bounds and the multicast list size.
//!
//! [`Service`] holds the state of every served VF of one PF and of the tables they share (VLAN
//! filters, multicast hash table); [`Service::message`] decides one message and returns an
//! [`Outcome`]: the reply words to write back to the VF's mailbox memory (or none), the typed PF
//! register writes ([`Action`]) to carry out before the reply, and the [`Verdict`] with a typed
//! reason for a refusal. [`Service::reset_event`] handles a VF's function-level or software
//! reset (the PF's VFLRE bit). The kernel moves the words and writes the registers
//! (`kernel/src/igb/mailbox.rs`, `vf_ctl.rs`); the protocol's bits are in [`proto`].
//!
//! Facts used and where they come from are described in `docs/igb-mailbox.md`.

#![cfg_attr(not(test), no_std)]

extern crate alloc;

mod mac;
pub mod proto;
mod service;
mod tables;
mod verdict;

pub use mac::{Mac, default_mac};
pub use proto::{Malformed, Request};
pub use service::{
    Action, Holder, Ignored, Outcome, Policy, Refusal, Service, SetupError, Verdict,
    receive_address_index,
};
pub use tables::{MTA_WORDS, VFTA_WORDS, VLVF_ENTRIES};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_filters;
