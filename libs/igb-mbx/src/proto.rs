//! The mailbox messages: their words and bits (the message set of Linux's igb `e1000_mbx.h`,
//! which both the PF driver `igb` and the VF driver `igbvf` use), and the decoding of a VF's
//! request.
//!
//! Word 0 of every message: bits 15:0 the message id, bits 23:16 extra information for some
//! messages (a count, a flag), bit 29 CTS ("clear to send": the PF has accepted the VF's reset
//! and takes configuration requests), bit 30 NACK, bit 31 ACK. A reply is the request's word 0
//! with ACK or NACK (and CTS) or'd in; only the reply to a reset carries more (the MAC address
//! in words 1-2).

use crate::mac::Mac;
use alloc::vec::Vec;
use core::fmt;

/// Dwords in one VF's mailbox memory (VMBMEM, 64 bytes).
pub const MAILBOX_WORDS: usize = 16;
/// Reply bits of word 0.
pub const ACK: u32 = 1 << 31;
pub const NACK: u32 = 1 << 30;
pub const CTS: u32 = 1 << 29;
pub const INFO_SHIFT: u32 = 16;
pub const INFO_MASK: u32 = 0xff << INFO_SHIFT;
/// The part of word 0 Linux's PF dispatches on.
pub const ID_MASK: u32 = 0xffff;

/// Message ids a VF sends.
pub const VF_RESET: u16 = 0x01;
pub const VF_SET_MAC_ADDR: u16 = 0x02;
pub const VF_SET_MULTICAST: u16 = 0x03;
pub const VF_SET_VLAN: u16 = 0x04;
pub const VF_SET_LPE: u16 = 0x05;
pub const VF_SET_PROMISC: u16 = 0x06;
/// The id ixgbe's VFs use to negotiate a mailbox API version; igb's PF has no such message.
pub const API_NEGOTIATE: u16 = 0x08;

/// `VF_SET_MAC_ADDR` information values: clear the VF's additional unicast filters, add one.
pub const MAC_FILTER_CLR: u8 = 0x01;
pub const MAC_FILTER_ADD: u8 = 0x02;
/// `VF_SET_PROMISC` flag: multicast promiscuous.
pub const PROMISC_MULTICAST: u8 = 0x02;

/// Most multicast hashes one message carries (15 dwords of 16-bit hashes after word 0).
pub const MAX_MULTICAST: usize = 30;
/// The largest frame Linux's igb PF lets a VF ask for (its `MAX_JUMBO_FRAME_SIZE`).
pub const MAX_FRAME: u32 = 9728;
/// The smallest frame size a pool may be limited to: a minimum Ethernet frame with its FCS.
pub const MIN_FRAME: u32 = 64;
/// Largest VLAN id carried by `VF_SET_VLAN` (12 bits).
pub const VID_MASK: u32 = 0xfff;

/// A VF's request, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// The VF finished its reset and asks for its MAC address.
    Reset,
    /// Use this address for the VF's receive filter.
    SetMac(Mac),
    /// Drop the VF's additional unicast filters.
    ClearMacFilters,
    /// Add an additional unicast filter.
    AddMacFilter(Mac),
    /// Receive these multicast hashes (`count` as the VF wrote it; `hashes` the first
    /// `min(count, 30)`).
    SetMulticast { count: u8, hashes: Vec<u16> },
    /// Add or remove the VF from VLAN `vid`.
    SetVlan { add: bool, vid: u16 },
    /// Accept frames up to `size` bytes.
    SetLpe { size: u32 },
    /// Multicast promiscuous on or off.
    SetPromisc { multicast: bool },
    /// An id igb's PF does not handle.
    Unknown { id: u16 },
}

impl Request {
    /// The message id as the log names it.
    pub fn name(id: u16) -> &'static str {
        match id {
            VF_RESET => "VF_RESET",
            VF_SET_MAC_ADDR => "SET_MAC_ADDR",
            VF_SET_MULTICAST => "SET_MULTICAST",
            VF_SET_VLAN => "SET_VLAN",
            VF_SET_LPE => "SET_LPE",
            VF_SET_PROMISC => "SET_PROMISC",
            API_NEGOTIATE => "API_NEGOTIATE",
            _ => "unknown",
        }
    }
}

/// Why a message could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// No word at all.
    Empty,
    /// Fewer words than the message needs.
    Short {
        id: u16,
        words: usize,
        needed: usize,
    },
    /// `VF_RESET` with information bits (Linux's PF only takes a bare reset word).
    ResetInfo { info: u8 },
    /// `VF_SET_MAC_ADDR` with an information value that is neither 0, clear nor add.
    MacInfo { info: u8 },
    /// `VF_SET_PROMISC` with flags other than multicast.
    PromiscFlags { flags: u8 },
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "empty message"),
            Self::Short { id, words, needed } => write!(
                f,
                "{} in {words} word(s), needs {needed}",
                Request::name(*id)
            ),
            Self::ResetInfo { info } => {
                write!(f, "VF_RESET with information bits {info:#04x}")
            }
            Self::MacInfo { info } => write!(
                f,
                "SET_MAC_ADDR with information {info:#04x} (0, clear 0x01 or add 0x02 are defined)"
            ),
            Self::PromiscFlags { flags } => write!(
                f,
                "SET_PROMISC flags {flags:#04x} are not defined (multicast 0x02 is)"
            ),
        }
    }
}

fn info(word: u32) -> u8 {
    ((word & INFO_MASK) >> INFO_SHIFT) as u8
}

fn need(words: &[u32], id: u16, needed: usize) -> Result<(), Malformed> {
    if words.len() < needed {
        return Err(Malformed::Short {
            id,
            words: words.len(),
            needed,
        });
    }
    Ok(())
}

/// Decodes a VF's message (`words` as read from its mailbox memory, at most
/// [`MAILBOX_WORDS`] used). The caller has checked that word 0 carries no ACK/NACK.
pub fn decode(words: &[u32]) -> Result<Request, Malformed> {
    let Some(&w0) = words.first() else {
        return Err(Malformed::Empty);
    };
    let id = (w0 & ID_MASK) as u16;
    let info = info(w0);
    match id {
        VF_RESET if info != 0 => Err(Malformed::ResetInfo { info }),
        VF_RESET => Ok(Request::Reset),
        VF_SET_MAC_ADDR => match info {
            0 | MAC_FILTER_ADD => {
                need(words, id, 3)?;
                let mac = Mac::from_words(words[1], words[2]);
                Ok(if info == 0 {
                    Request::SetMac(mac)
                } else {
                    Request::AddMacFilter(mac)
                })
            }
            MAC_FILTER_CLR => Ok(Request::ClearMacFilters),
            other => Err(Malformed::MacInfo { info: other }),
        },
        VF_SET_MULTICAST => {
            let n = usize::from(info).min(MAX_MULTICAST);
            need(words, id, 1 + n.div_ceil(2))?;
            let hashes = (0..n)
                .map(|i| (words[1 + i / 2] >> (16 * (i % 2))) as u16)
                .collect();
            Ok(Request::SetMulticast {
                count: info,
                hashes,
            })
        }
        VF_SET_VLAN => {
            need(words, id, 2)?;
            Ok(Request::SetVlan {
                add: info != 0,
                vid: (words[1] & VID_MASK) as u16,
            })
        }
        VF_SET_LPE => {
            need(words, id, 2)?;
            Ok(Request::SetLpe { size: words[1] })
        }
        VF_SET_PROMISC => {
            let other = info & !PROMISC_MULTICAST;
            if other != 0 {
                return Err(Malformed::PromiscFlags { flags: other });
            }
            Ok(Request::SetPromisc {
                multicast: info & PROMISC_MULTICAST != 0,
            })
        }
        id => Ok(Request::Unknown { id }),
    }
}
