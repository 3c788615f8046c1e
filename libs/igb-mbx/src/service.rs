//! The PF's decisions: per-VF state and policy, the reply to each message and the register
//! writes it needs, as Linux's igb PF driver makes them (`igb_rcv_msg_from_vf` and the handlers
//! it calls, `igb_vf_reset_msg`, `igb_vf_reset_event`), narrowed by a [`Policy`] per VF.

use crate::mac::Mac;
use crate::proto::{self, ACK, CTS, INFO_SHIFT, NACK, Request};
use crate::tables::{MTA_WORDS, TableWrite, VlanTable, VlvfFull, mta_bit};
pub use crate::verdict::{Holder, Ignored, Outcome, Refusal, SetupError, Verdict};
use alloc::vec;
use alloc::vec::Vec;

/// Receive address registers of the 82576 (RAL/RAH 0-23).
pub const RECEIVE_ADDRESSES: u8 = 24;
/// Pools (VFs) of the 82576.
pub const MAX_VFS: u8 = 8;

/// VMOLR (VM offload register, one per pool; datasheet register description of VMOLR 0x5AD0):
/// RLPML (bits 13:0) with LPE, accept untagged (AUPE), accept multicast matching the MTA
/// (ROMPE), accept broadcast (BAM), multicast promiscuous (MPME), strip VLAN tags (STRVLAN).
pub const VMOLR_RLPML_MASK: u32 = 0x3fff;
pub const VMOLR_LPE: u32 = 1 << 16;
pub const VMOLR_AUPE: u32 = 1 << 24;
pub const VMOLR_ROMPE: u32 = 1 << 25;
pub const VMOLR_BAM: u32 = 1 << 27;
pub const VMOLR_MPME: u32 = 1 << 28;
pub const VMOLR_STRVLAN: u32 = 1 << 30;

/// The receive address register that holds VF `vf`'s MAC: counted down from the last, as Linux's
/// igb PF places them (entry 23 for VF 0), leaving the low entries to the PF.
pub fn receive_address_index(vf: u8) -> u8 {
    RECEIVE_ADDRESSES - 1 - vf
}

/// What one VF may do through the mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The MAC address the VF gets at reset.
    pub mac: Mac,
    /// The configuration names the MAC: the VF may not change it.
    pub mac_pinned: bool,
    /// VLAN ids (1-4094) the VF may join; VLAN 0 (priority tags only) is always allowed.
    pub vlans: Vec<u16>,
    /// Bounds of the maximum frame size (`VF_SET_LPE`).
    pub min_frame: u32,
    pub max_frame: u32,
    /// Most multicast hashes the VF may install.
    pub multicast_limit: usize,
}

impl Policy {
    /// A policy with the frame bounds and multicast limit of Linux's PF.
    pub fn new(mac: Mac, mac_pinned: bool, vlans: Vec<u16>) -> Self {
        Self {
            mac,
            mac_pinned,
            vlans,
            min_frame: proto::MIN_FRAME,
            max_frame: proto::MAX_FRAME,
            multicast_limit: proto::MAX_MULTICAST,
        }
    }
}

/// A PF register write the decision needs, made before the reply is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// RAL/RAH `index` = `mac`, address valid, pool `pool` selected.
    ReceiveAddress { index: u8, mac: Mac, pool: u8 },
    /// The VF's bit in VFRE and VFTE (receive and transmit enable).
    RxTx { vf: u8, enable: bool },
    /// VMOLR of pool `vf`.
    Vmolr { vf: u8, value: u32 },
    /// VLVF entry `index`.
    Vlvf { index: u8, value: u32 },
    /// VFTA dword `index`.
    Vfta { index: u8, value: u32 },
    /// MTA dword `index`.
    Mta { index: u8, value: u32 },
}

impl From<TableWrite> for Action {
    fn from(w: TableWrite) -> Self {
        match w {
            TableWrite::Vlvf { index, value } => Self::Vlvf { index, value },
            TableWrite::Vfta { index, value } => Self::Vfta { index, value },
        }
    }
}

#[derive(Debug, Clone)]
struct Vf {
    index: u8,
    policy: Policy,
    mac: Mac,
    /// Reset handshake done: configuration requests are served.
    cts: bool,
    hashes: Vec<u16>,
    multicast_promiscuous: bool,
    strip_vlan: bool,
    max_frame: Option<u32>,
}

impl Vf {
    fn vmolr(&self) -> u32 {
        let mut v = VMOLR_AUPE | VMOLR_BAM;
        if self.strip_vlan {
            v |= VMOLR_STRVLAN;
        }
        if self.multicast_promiscuous {
            v |= VMOLR_MPME;
        } else if !self.hashes.is_empty() {
            v |= VMOLR_ROMPE;
        }
        if let Some(size) = self.max_frame {
            v |= VMOLR_LPE | (size & VMOLR_RLPML_MASK);
        }
        v
    }
}

/// The PF's mailbox service for the VFs of one PF.
#[derive(Debug, Clone)]
pub struct Service {
    pf_mac: Option<Mac>,
    vfs: Vec<Vf>,
    vlans: VlanTable,
    mta: [u32; MTA_WORDS],
}

impl Service {
    /// A service for the VFs `policies` names (VF index, policy); `pf_mac` is the PF's own
    /// address, which no VF may take.
    pub fn new(policies: Vec<(u8, Policy)>, pf_mac: Option<Mac>) -> Result<Self, SetupError> {
        let mut vfs: Vec<Vf> = Vec::with_capacity(policies.len());
        for (index, policy) in policies {
            if index >= MAX_VFS {
                return Err(SetupError::VfIndex(index));
            }
            if vfs.iter().any(|v| v.index == index) {
                return Err(SetupError::TwiceServed(index));
            }
            let mac = policy.mac;
            if !mac.is_valid_unicast() {
                return Err(SetupError::InvalidMac { vf: index, mac });
            }
            if pf_mac == Some(mac) {
                return Err(SetupError::SharedMac {
                    vf: index,
                    mac,
                    with: Holder::Pf,
                });
            }
            if let Some(other) = vfs.iter().find(|v| v.mac == mac) {
                return Err(SetupError::SharedMac {
                    vf: index,
                    mac,
                    with: Holder::Vf(other.index),
                });
            }
            if let Some(&vid) = policy.vlans.iter().find(|v| !(1..=4094).contains(*v)) {
                return Err(SetupError::Vlan { vf: index, vid });
            }
            vfs.push(Vf {
                index,
                mac,
                policy,
                cts: false,
                hashes: Vec::new(),
                multicast_promiscuous: false,
                strip_vlan: false,
                max_frame: None,
            });
        }
        Ok(Self {
            pf_mac,
            vfs,
            vlans: VlanTable::default(),
            mta: [0; MTA_WORDS],
        })
    }

    /// The VF indices served.
    pub fn served(&self) -> impl Iterator<Item = u8> + '_ {
        self.vfs.iter().map(|v| v.index)
    }

    /// VF `vf`'s current MAC address.
    pub fn mac(&self, vf: u8) -> Option<Mac> {
        self.vfs.iter().find(|v| v.index == vf).map(|v| v.mac)
    }

    /// VF `vf`'s policy.
    pub fn policy(&self, vf: u8) -> Option<&Policy> {
        self.vfs.iter().find(|v| v.index == vf).map(|v| &v.policy)
    }

    /// Has VF `vf` completed its reset handshake?
    pub fn clear_to_send(&self, vf: u8) -> bool {
        self.vfs.iter().any(|v| v.index == vf && v.cts)
    }

    fn at(&self, vf: u8) -> Option<usize> {
        self.vfs.iter().position(|v| v.index == vf)
    }

    /// The VF was reset (function-level reset, or its CTRL.RST: the PF's VFLRE bit): it is not
    /// clear to send until its next `VF_RESET` message; its filters go back to the reset state
    /// and its address to the configured one (Linux's PF draws a random one unless the
    /// administrator set it; Conduit's is the configured or default address).
    pub fn reset_event(&mut self, vf: u8) -> Vec<Action> {
        let Some(i) = self.at(vf) else {
            return Vec::new();
        };
        self.vfs[i].cts = false;
        self.vfs[i].mac = self.vfs[i].policy.mac;
        let mut actions = self.clear(i);
        actions.push(self.receive_address(i));
        actions
    }

    /// Decides VF `vf`'s message `words` (its mailbox memory, up to 16 words).
    pub fn message(&mut self, vf: u8, words: &[u32]) -> Outcome {
        let word = words.first().copied().unwrap_or(0);
        let mut out = Outcome {
            vf,
            word,
            verdict: Verdict::Accepted,
            reply: Vec::new(),
            actions: Vec::new(),
        };
        if word & (ACK | NACK) != 0 {
            out.verdict = Verdict::Ignored(Ignored::AlreadyAnswered);
            return out;
        }
        let Some(i) = self.at(vf) else {
            out.verdict = Verdict::Refused(Refusal::Unassigned);
            out.reply = vec![word | NACK];
            return out;
        };
        let decoded = proto::decode(words);
        if decoded == Ok(Request::Reset) {
            self.reset_message(i, &mut out);
            return out;
        }
        if !self.vfs[i].cts {
            out.verdict = Verdict::Refused(Refusal::NotClearToSend);
            out.reply = vec![word | NACK];
            return out;
        }
        let mut reply_word = word;
        let result = match decoded {
            Err(m) => Err(Refusal::Malformed(m)),
            Ok(request) => {
                if matches!(request, Request::SetPromisc { .. }) {
                    reply_word &= !(u32::from(proto::PROMISC_MULTICAST) << INFO_SHIFT);
                }
                self.configure(i, request, &mut out.actions)
            }
        };
        let (verdict, bit) = match result {
            Ok(()) => (Verdict::Accepted, ACK),
            Err(r) => {
                out.actions.clear();
                (Verdict::Refused(r), NACK)
            }
        };
        out.verdict = verdict;
        out.reply = vec![reply_word | CTS | bit];
        out
    }

    /// `VF_RESET`: filters back to the reset state, the VF's address programmed, its receive and
    /// transmit enabled, CTS; the reply carries the address.
    fn reset_message(&mut self, i: usize, out: &mut Outcome) {
        let mut actions = self.clear(i);
        actions.push(self.receive_address(i));
        actions.push(Action::RxTx {
            vf: self.vfs[i].index,
            enable: true,
        });
        self.vfs[i].cts = true;
        let [lo, hi] = self.vfs[i].mac.to_words();
        out.reply = vec![u32::from(proto::VF_RESET) | ACK, lo, hi];
        out.actions = actions;
    }

    fn receive_address(&self, i: usize) -> Action {
        let v = &self.vfs[i];
        Action::ReceiveAddress {
            index: receive_address_index(v.index),
            mac: v.mac,
            pool: v.index,
        }
    }

    /// The VF's VLANs left, multicast hashes dropped, VMOLR in its reset state.
    fn clear(&mut self, i: usize) -> Vec<Action> {
        let pool = self.vfs[i].index;
        let mut actions = Vec::new();
        for vid in self.vlans.of_pool(pool) {
            // Leaving a VLAN frees or shrinks an entry: it cannot run out of entries.
            if let Ok(writes) = self.vlans.set(vid, pool, false) {
                actions.extend(writes.into_iter().map(Action::from));
            }
        }
        let v = &mut self.vfs[i];
        v.hashes.clear();
        v.multicast_promiscuous = false;
        v.strip_vlan = false;
        v.max_frame = None;
        actions.extend(self.update_mta());
        actions.push(Action::Vmolr {
            vf: pool,
            value: self.vfs[i].vmolr(),
        });
        actions
    }

    /// The MTA as the union of every VF's hashes; the dwords that changed.
    fn update_mta(&mut self) -> Vec<Action> {
        let mut table = [0u32; MTA_WORDS];
        for v in &self.vfs {
            for &h in &v.hashes {
                let (word, bit) = mta_bit(h);
                table[word] |= bit;
            }
        }
        let mut actions = Vec::new();
        for (index, (new, old)) in table.iter().zip(self.mta.iter()).enumerate() {
            if new != old {
                actions.push(Action::Mta {
                    index: index as u8,
                    value: *new,
                });
            }
        }
        self.mta = table;
        actions
    }

    fn holder_of(&self, mac: Mac, except: u8) -> Option<Holder> {
        if self.pf_mac == Some(mac) {
            return Some(Holder::Pf);
        }
        self.vfs
            .iter()
            .find(|v| v.index != except && (v.mac == mac || v.policy.mac == mac))
            .map(|v| Holder::Vf(v.index))
    }

    fn configure(
        &mut self,
        i: usize,
        request: Request,
        actions: &mut Vec<Action>,
    ) -> Result<(), Refusal> {
        let pool = self.vfs[i].index;
        match request {
            // Handled before configuration requests.
            Request::Reset => Ok(()),
            Request::SetMac(mac) => {
                if !mac.is_valid_unicast() {
                    return Err(Refusal::MacInvalid(mac));
                }
                // Another's address first: the more specific reason for the log.
                if let Some(by) = self.holder_of(mac, pool) {
                    return Err(Refusal::MacTaken { mac, by });
                }
                let policy = &self.vfs[i].policy;
                if policy.mac_pinned && mac != policy.mac {
                    return Err(Refusal::MacPinned {
                        requested: mac,
                        configured: policy.mac,
                    });
                }
                self.vfs[i].mac = mac;
                actions.push(self.receive_address(i));
                Ok(())
            }
            // No additional filters exist: clearing them changes nothing.
            Request::ClearMacFilters => Ok(()),
            Request::AddMacFilter(mac) => Err(Refusal::MacFilter(mac)),
            Request::SetMulticast { count, hashes } => {
                let limit = self.vfs[i].policy.multicast_limit;
                if usize::from(count) > limit {
                    return Err(Refusal::TooManyMulticast { count, limit });
                }
                self.vfs[i].hashes = hashes;
                actions.extend(self.update_mta());
                actions.push(Action::Vmolr {
                    vf: pool,
                    value: self.vfs[i].vmolr(),
                });
                Ok(())
            }
            Request::SetVlan { add, vid } => {
                if vid != 0 && !self.vfs[i].policy.vlans.contains(&vid) {
                    return Err(Refusal::VlanNotAllowed { vid });
                }
                let writes = self
                    .vlans
                    .set(vid, pool, add)
                    .map_err(|VlvfFull| Refusal::VlanTableFull { vid })?;
                actions.extend(writes.into_iter().map(Action::from));
                // Linux's PF strips tags from the pool's frames once it has used a VLAN other
                // than 0.
                self.vfs[i].strip_vlan = vid != 0;
                actions.push(Action::Vmolr {
                    vf: pool,
                    value: self.vfs[i].vmolr(),
                });
                Ok(())
            }
            Request::SetLpe { size } => {
                let p = &self.vfs[i].policy;
                if size < p.min_frame || size > p.max_frame {
                    return Err(Refusal::FrameSize {
                        size,
                        min: p.min_frame,
                        max: p.max_frame,
                    });
                }
                self.vfs[i].max_frame = Some(size);
                actions.push(Action::Vmolr {
                    vf: pool,
                    value: self.vfs[i].vmolr(),
                });
                Ok(())
            }
            Request::SetPromisc { multicast } => {
                self.vfs[i].multicast_promiscuous = multicast;
                actions.push(Action::Vmolr {
                    vf: pool,
                    value: self.vfs[i].vmolr(),
                });
                Ok(())
            }
            Request::Unknown { id } => Err(Refusal::Unknown { id }),
        }
    }
}
