//! What the PF decided on a message, and why: the [`Outcome`] with its [`Verdict`], the typed
//! reasons of a refusal ([`Refusal`]) or of a message left unanswered ([`Ignored`]), and why a
//! [`crate::Service`] could not be built ([`SetupError`]).

use crate::mac::Mac;
use crate::proto::{self, ID_MASK, Malformed};
use crate::service::{Action, MAX_VFS};
use alloc::vec::Vec;
use core::fmt;

/// Who holds a MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    Pf,
    Vf(u8),
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pf => write!(f, "the PF"),
            Self::Vf(n) => write!(f, "VF {n}"),
        }
    }
}

/// Why a message was answered with NACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A configuration request before the VF's reset handshake (no CTS yet).
    NotClearToSend,
    /// The VF is not given to any guest: Conduit serves no policy for it.
    Unassigned,
    Malformed(Malformed),
    /// A message id igb's PF does not handle.
    Unknown {
        id: u16,
    },
    MacPinned {
        requested: Mac,
        configured: Mac,
    },
    /// A multicast or all-zero address as the VF's own.
    MacInvalid(Mac),
    MacTaken {
        mac: Mac,
        by: Holder,
    },
    /// Additional unicast filters are not offered.
    MacFilter(Mac),
    TooManyMulticast {
        count: u8,
        limit: usize,
    },
    VlanNotAllowed {
        vid: u16,
    },
    VlanTableFull {
        vid: u16,
    },
    FrameSize {
        size: u32,
        min: u32,
        max: u32,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotClearToSend => write!(f, "the VF has not completed its reset handshake"),
            Self::Unassigned => write!(f, "the VF is given to no guest"),
            Self::Malformed(m) => write!(f, "malformed: {m}"),
            Self::Unknown { id } if *id == proto::API_NEGOTIATE => write!(
                f,
                "unknown message id {id:#06x} (API negotiation: igb's PF has no such message)"
            ),
            Self::Unknown { id } => write!(f, "unknown message id {id:#06x}"),
            Self::MacPinned {
                requested,
                configured,
            } => write!(
                f,
                "the configuration pins the VF's MAC to {configured}: {requested} refused"
            ),
            Self::MacInvalid(mac) => write!(f, "{mac} is a multicast or zero address"),
            Self::MacTaken { mac, by } => write!(f, "{mac} belongs to {by}"),
            Self::MacFilter(mac) => write!(
                f,
                "additional unicast filter {mac} refused: only the VF's own address is filtered"
            ),
            Self::TooManyMulticast { count, limit } => {
                write!(f, "{count} multicast hashes, at most {limit} allowed")
            }
            Self::VlanNotAllowed { vid } => {
                write!(f, "VLAN {vid} is not one the configuration gives the VF")
            }
            Self::VlanTableFull { vid } => {
                write!(f, "VLAN {vid}: every VLAN filter entry is in use")
            }
            Self::FrameSize { size, min, max } => {
                write!(f, "maximum frame size {size} outside {min}..={max}")
            }
        }
    }
}

/// Why a message got no reply at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// Word 0 already carries ACK or NACK: a reply read back, not a request (Linux's PF drops
    /// it too).
    AlreadyAnswered,
}

impl fmt::Display for Ignored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AlreadyAnswered => write!(f, "word 0 already carries ACK/NACK"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    Refused(Refusal),
    Ignored(Ignored),
}

/// The decision on one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub vf: u8,
    /// Word 0 of the message.
    pub word: u32,
    pub verdict: Verdict,
    /// The words to write to the VF's mailbox memory (then STS); empty: no reply.
    pub reply: Vec<u32>,
    /// Register writes to make before the reply.
    pub actions: Vec<Action>,
}

impl Outcome {
    /// The message id (bits 15:0 of word 0).
    pub fn id(&self) -> u16 {
        (self.word & ID_MASK) as u16
    }
}

/// Why a [`Service`] could not be built from its policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupError {
    /// A VF index beyond the PF's 8 pools.
    VfIndex(u8),
    /// A VF listed twice.
    TwiceServed(u8),
    /// A VF's MAC is multicast or zero.
    InvalidMac { vf: u8, mac: Mac },
    /// Two VFs, or a VF and the PF, would share a MAC.
    SharedMac { vf: u8, mac: Mac, with: Holder },
    /// A configured VLAN id outside 1-4094.
    Vlan { vf: u8, vid: u16 },
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::VfIndex(vf) => write!(f, "VF {vf}: the PF has {MAX_VFS} pools"),
            Self::TwiceServed(vf) => write!(f, "VF {vf} has two policies"),
            Self::InvalidMac { vf, mac } => write!(f, "VF {vf}: {mac} is multicast or zero"),
            Self::SharedMac { vf, mac, with } => {
                write!(f, "VF {vf}: {mac} is also the address of {with}")
            }
            Self::Vlan { vf, vid } => write!(f, "VF {vf}: VLAN {vid} is outside 1-4094"),
        }
    }
}
