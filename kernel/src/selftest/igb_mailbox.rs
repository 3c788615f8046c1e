//! `[test] scenario = "igb-mailbox"`: the igb PF's mailbox service (`crate::igb::mailbox`)
//! answers the VFs as Linux's igb PF driver does, within each VF's policy. QEMU has no VMX, so
//! the hypervisor plays each guest's `igbvf`: the driver places its VF's BAR0 through its
//! configuration ports (`guest_driver`), and its register accesses go to the host-physical
//! address guest A's (or B's) EPT maps that BAR to, where a vCPU's accesses would land.
//!
//! The driver speaks the VF side of the mailbox as `igbvf` does (its `mbx.c` and `vf.c`): take
//! the buffer (V2PMAILBOX.VFU, read back), write the words to VMBMEM, post them (REQ, which also
//! drops VFU), then wait for the PF's ACK and reply (PFACK, PFSTS: read-to-clear bits it
//! remembers), read the reply and acknowledge it (ACK). Between posting and reading, the PF's
//! side runs as the scheduler's loop runs it ([`mailbox::poll`]). The script:
//! 1. Guest A's VF resets (CTRL.RST, then the PF's reset-done indication clears) and sends
//!    VF_RESET: the reply is VF_RESET|ACK with its configured MAC in words 1-2, the PF's receive
//!    address 23 holds that MAC for pool 0 and the VF's receive and transmit are enabled.
//! 2. Guest A asks for guest B's VF's MAC (SET_MAC_ADDR): NACK|CTS, refused as taken by VF 1;
//!    receive address 23 is unchanged.
//! 3. An unknown message (id 0x08, API negotiation, which igb's PF does not know) and a malformed
//!    one (SET_PROMISC with an undefined flag): NACK|CTS each, refused with their reasons.
//! 4. Guest A's maximum frame size (1518, what `igbvf` sends for MTU 1500) and its configured
//!    VLAN are accepted; a VLAN it was not given is refused.
//! 5. Guest B's VF asks before its reset (NACK without CTS), then resets: VF_RESET|ACK with its
//!    own MAC in receive address 22 for pool 1; guest A's address and enables are unchanged.

use super::guest_driver::{GuestView, virtual_bdf};
use crate::guest::Guest;
use crate::guest::boot::Placed;
use crate::igb::mailbox;
use crate::iommu;
use crate::pci::{self, Function};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use conduit_hw::memory::Memory;
use conduit_hw::memory::mmio::{self, Mmio};
use conduit_igb_mbx::proto::{self, ACK, CTS, MAILBOX_WORDS, NACK};
use conduit_igb_mbx::{Holder, Mac, Malformed, Outcome, Refusal, Verdict, receive_address_index};
use conduit_pci::Bdf;
use log::info;

/// VF registers (BAR0 offsets; 82576 datasheet chapter 8, the VF registers): CTRL, V2PMAILBOX,
/// VMBMEM.
const VF_CTRL: u64 = 0x0;
const VF_MAILBOX: u64 = 0xc40;
const VF_VMBMEM: u64 = 0x800;
/// CTRL.RST: the VF's software reset.
const CTRL_RST: u32 = 1 << 26;
/// V2PMAILBOX: REQ (post a message), ACK (the PF's message was read), VFU (the VF holds the
/// buffer), PFSTS, PFACK (the PF wrote a message / read ours), RSTI (the PF is resetting), RSTD
/// (the PF's reset is done); PFSTS, PFACK and RSTD clear when read.
const V2P_REQ: u32 = 1 << 0;
const V2P_ACK: u32 = 1 << 1;
const V2P_VFU: u32 = 1 << 2;
const V2P_PFSTS: u32 = 1 << 4;
const V2P_PFACK: u32 = 1 << 5;
const V2P_RSTI: u32 = 1 << 6;
const V2P_RSTD: u32 = 1 << 7;
const V2P_READ_TO_CLEAR: u32 = V2P_PFSTS | V2P_PFACK | V2P_RSTD;
/// Reads of V2PMAILBOX `igbvf` allows for the reset indication to clear.
const RESET_POLLS: usize = 200;
/// The frame size `igbvf` asks for with an MTU of 1500.
const FRAME_1500: u32 = 1518;
/// A VLAN id no configuration of this scenario gives.
const VLAN_NOT_GIVEN: u32 = 4000;

/// One guest's VF as its driver reaches it.
struct VfDriver {
    guest: String,
    bdf: Bdf,
    index: u8,
    regs: Mmio,
    /// The read-to-clear bits seen and not consumed yet (as `igbvf` keeps them).
    seen: u32,
}

impl VfDriver {
    fn read(&self, offset: u64) -> Result<u32, String> {
        Ok(self.regs.block::<u32>(offset).map_err(err)?.read())
    }

    fn write(&self, offset: u64, value: u32) -> Result<(), String> {
        self.regs.block::<u32>(offset).map_err(err)?.write(value);
        Ok(())
    }

    fn mailbox(&mut self) -> Result<u32, String> {
        let v = self.read(VF_MAILBOX)? | self.seen;
        self.seen |= v & V2P_READ_TO_CLEAR;
        Ok(v)
    }

    /// Consumes a remembered read-to-clear bit.
    fn take(&mut self, bit: u32) -> Result<bool, String> {
        let set = self.mailbox()? & bit != 0;
        self.seen &= !bit;
        Ok(set)
    }

    /// CTRL.RST, then waits for the reset indication (RSTI, RSTD) to clear; returns the first
    /// mailbox value read.
    fn reset(&mut self) -> Result<u32, String> {
        let ctrl = self.read(VF_CTRL)?;
        self.write(VF_CTRL, ctrl | CTRL_RST)?;
        let first = self.read(VF_MAILBOX)?;
        let mut v = first;
        for _ in 0..RESET_POLLS {
            if v & (V2P_RSTI | V2P_RSTD) == 0 {
                self.seen = 0;
                return Ok(first);
            }
            v = self.read(VF_MAILBOX)?;
        }
        Err(format!(
            "{}: the reset indication did not clear (V2PMAILBOX {v:#x})",
            self.bdf
        ))
    }

    /// Posts `msg`, lets the PF serve its mailbox, reads the reply.
    fn send(&mut self, msg: &[u32]) -> Result<Vec<u32>, String> {
        self.write(VF_MAILBOX, V2P_VFU)?;
        if self.mailbox()? & V2P_VFU == 0 {
            return Err(format!("{}: the PF holds the mailbox", self.bdf));
        }
        self.seen &= !(V2P_PFSTS | V2P_PFACK);
        for (i, w) in msg.iter().enumerate() {
            self.write(VF_VMBMEM + 4 * i as u64, *w)?;
        }
        self.write(VF_MAILBOX, V2P_REQ)?;
        mailbox::poll();
        if !self.take(V2P_PFACK)? {
            return Err(format!(
                "{}: the PF did not acknowledge message {:#010x}",
                self.bdf, msg[0]
            ));
        }
        if !self.take(V2P_PFSTS)? {
            return Err(format!(
                "{}: no reply to message {:#010x}",
                self.bdf, msg[0]
            ));
        }
        self.write(VF_MAILBOX, V2P_VFU)?;
        let mut reply = Vec::with_capacity(MAILBOX_WORDS);
        for i in 0..3 {
            reply.push(self.read(VF_VMBMEM + 4 * i)?);
        }
        self.write(VF_MAILBOX, V2P_ACK)?;
        Ok(reply)
    }
}

fn err(e: impl core::fmt::Display) -> String {
    format!("{e}")
}

/// The guest's driver places the VF's BARs and turns memory decode on through its
/// configuration ports; its registers are then reached where the guest's EPT maps BAR0.
fn open(g: &Placed, vf: &Function, guests: &mut [Guest], mem: &Memory) -> Result<VfDriver, String> {
    let guest = guests
        .iter_mut()
        .find(|x| x.pci.index == g.index)
        .ok_or_else(|| format!("guest \"{}\" was not placed", g.name))?;
    let mut view = GuestView::new(guest, mem)?;
    let vbdf = virtual_bdf(g.index, vf.bdf)
        .ok_or_else(|| format!("{} is not in guest \"{}\"'s topology", vf.bdf, g.name))?;
    let placed = view.place_bars(vbdf, vf.bars.iter().copied())?;
    let gpa = placed
        .iter()
        .find(|(index, _)| *index == 0)
        .map(|(_, gpa)| *gpa)
        .ok_or("the VF has no memory BAR0")?;
    view.write(vbdf, 0x04, 2, 0x0002)?;
    let hpa = view
        .guest()
        .ept_walk(gpa)
        .ok()
        .and_then(|w| w.translation())
        .map(|t| t.phys);
    let bar0 = vf.bars.get(0).map(|b| b.address);
    if hpa.is_none() || hpa != bar0 {
        return Err(format!(
            "guest \"{}\"'s BAR0 at GPA {gpa:#x} maps to {hpa:x?}, not the VF's BAR0 {bar0:x?}",
            g.name
        ));
    }
    let hpa = hpa.unwrap_or_default();
    let index = vf
        .vf
        .and_then(|v| u8::try_from(v.index).ok())
        .ok_or("not a VF")?;
    info!(
        "selftest: igb-mailbox: guest \"{}\"'s driver placed BAR0 of its {vbdf} (VF {index}, \
         {}) at GPA {gpa:#x}, memory decode on; its EPT maps it to HPA {hpa:#x}",
        g.name, vf.bdf
    );
    Ok(VfDriver {
        guest: g.name.clone(),
        bdf: vf.bdf,
        index,
        regs: mmio::map(mem, hpa, 0x1000).map_err(err)?,
        seen: 0,
    })
}

/// The single outcome the last message got.
fn decided() -> Result<Outcome, String> {
    let mut all = mailbox::take_decided();
    match all.len() {
        1 => Ok(all.remove(0).1),
        n => Err(format!("{n} mailbox decisions for one message: {all:?}")),
    }
}

fn refusal(o: &Outcome) -> Option<&Refusal> {
    match &o.verdict {
        Verdict::Refused(r) => Some(r),
        _ => None,
    }
}

fn bytes(mac: Mac) -> String {
    let b = mac.0;
    format!(
        "{:02x} {:02x} {:02x} {:02x} {:02x} {:02x}",
        b[0], b[1], b[2], b[3], b[4], b[5]
    )
}

/// Runs the script; returns the number of steps passed.
pub fn run(mem: &'static Memory, guests: &mut [Guest]) -> Result<usize, String> {
    iommu::status().map_err(|why| format!("DMA remapping is not enabled: {why}"))?;
    let (a, vf_a, b, vf_b, pf) = super::igb_vf::pair()?;
    let mut va = open(&a, vf_a, guests, mem)?;
    let mut vb = open(&b, vf_b, guests, mem)?;
    mailbox::take_decided();
    let (mac_a, pinned_a) = mailbox::configured_mac(pf, va.index)
        .ok_or_else(|| format!("{pf}'s mailbox does not serve VF {}", va.index))?;
    let (mac_b, _) = mailbox::configured_mac(pf, vb.index)
        .ok_or_else(|| format!("{pf}'s mailbox does not serve VF {}", vb.index))?;
    handshake(&mut va, pf, mac_a, 1, pinned_a)?;
    let before = filters(pf, va.index)?;
    take_b_mac(&mut va, pf, mac_b, before)?;
    unknown_and_malformed(&mut va)?;
    configure(&mut va)?;
    early_then_reset(&mut vb, &va, pf, mac_b, before)?;
    Ok(5)
}

fn filters(pf: Bdf, vf: u8) -> Result<(u32, u32, u32, u32), String> {
    mailbox::filter_state(pf, receive_address_index(vf))
        .ok_or_else(|| format!("{pf}'s filter registers cannot be read"))
}

/// Step 1 (and 5 for guest B): reset and VF_RESET.
fn handshake(
    v: &mut VfDriver,
    pf: Bdf,
    mac: Mac,
    step: u8,
    configured: bool,
) -> Result<(), String> {
    let first = v.reset()?;
    let reply = v.send(&[u32::from(proto::VF_RESET)])?;
    let o = decided()?;
    let got = Mac::from_words(reply[1], reply[2]);
    if reply[0] != u32::from(proto::VF_RESET) | ACK || got != mac || o.verdict != Verdict::Accepted
    {
        return Err(format!(
            "{}: VF_RESET answered {reply:#x?} ({:?}), want ACK with {mac}",
            v.bdf, o.verdict
        ));
    }
    let index = receive_address_index(v.index);
    let (ral, rah, vfre, vfte) = filters(pf, v.index)?;
    let [lo, hi] = mac.to_words();
    let pool = 1 << (18 + u32::from(v.index));
    let bit = 1 << v.index;
    if ral != lo
        || rah & 0xffff != hi
        || rah & (1 << 31) == 0
        || rah & 0x03fc_0000 != pool
        || vfre & bit == 0
        || vfte & bit == 0
    {
        return Err(format!(
            "{pf} after {}'s reset: RAL{index} {ral:#010x} RAH{index} {rah:#010x} VFRE {vfre:#x} \
             VFTE {vfte:#x}",
            v.bdf
        ));
    }
    info!(
        "selftest: igb-mailbox [{step}] guest \"{}\"'s VF {}: CTRL.RST (mailbox {first:#x} after \
         it), VF_RESET -> {:#010x} with MAC {got} (bytes {}, the {} address); PF {pf}: receive \
         address {index} RAL {ral:#010x} RAH {rah:#010x} (valid, pool {}), VFRE {vfre:#x} VFTE \
         {vfte:#x}",
        v.guest,
        v.bdf,
        reply[0],
        bytes(got),
        if configured { "configured" } else { "default" },
        v.index
    );
    Ok(())
}

/// Step 2: guest B's VF's MAC is refused to guest A.
fn take_b_mac(
    v: &mut VfDriver,
    pf: Bdf,
    mac_b: Mac,
    before: (u32, u32, u32, u32),
) -> Result<(), String> {
    let [lo, hi] = mac_b.to_words();
    let reply = v.send(&[u32::from(proto::VF_SET_MAC_ADDR), lo, hi])?;
    let o = decided()?;
    let after = filters(pf, v.index)?;
    let taken = matches!(
        refusal(&o),
        Some(Refusal::MacTaken { mac, by: Holder::Vf(_) }) if *mac == mac_b
    );
    if reply[0] != u32::from(proto::VF_SET_MAC_ADDR) | CTS | NACK || !taken || after != before {
        return Err(format!(
            "{}: SET_MAC_ADDR {mac_b} answered {:#010x} ({:?}); receive address {before:x?} -> \
             {after:x?}",
            v.bdf, reply[0], o.verdict
        ));
    }
    info!(
        "selftest: igb-mailbox [2] guest \"{}\" asked for guest B's VF's MAC {mac_b}: {:#010x} \
         (NACK, CTS), receive address {} unchanged",
        v.guest,
        reply[0],
        receive_address_index(v.index)
    );
    Ok(())
}

/// Step 3: an unknown and a malformed message.
fn unknown_and_malformed(v: &mut VfDriver) -> Result<(), String> {
    let unknown = u32::from(proto::API_NEGOTIATE);
    let malformed = u32::from(proto::VF_SET_PROMISC) | 0x01 << proto::INFO_SHIFT;
    let cases = [
        (
            unknown,
            Refusal::Unknown {
                id: proto::API_NEGOTIATE,
            },
        ),
        (
            malformed,
            Refusal::Malformed(Malformed::PromiscFlags { flags: 0x01 }),
        ),
    ];
    let mut replies = Vec::new();
    for (word, want) in cases {
        let reply = v.send(&[word, 2])?;
        let o = decided()?;
        if reply[0] != word | CTS | NACK || refusal(&o) != Some(&want) {
            return Err(format!(
                "{}: message {word:#010x} answered {:#010x} ({:?}), want NACK: {want}",
                v.bdf, reply[0], o.verdict
            ));
        }
        replies.push(reply[0]);
    }
    info!(
        "selftest: igb-mailbox [3] guest \"{}\": unknown message {unknown:#010x} -> {:#010x}, \
         malformed {malformed:#010x} -> {:#010x} (NACK, CTS)",
        v.guest, replies[0], replies[1]
    );
    Ok(())
}

/// Step 4: what `igbvf` configures after its reset, within the policy.
fn configure(v: &mut VfDriver) -> Result<(), String> {
    let lpe = v.send(&[u32::from(proto::VF_SET_LPE), FRAME_1500])?;
    decided()?;
    let add = u32::from(proto::VF_SET_VLAN) | 1 << proto::INFO_SHIFT;
    // The first VLAN the configuration gives guest A, if any.
    let given = mailbox_vlans(v)?;
    let mut vlan_reply = None;
    if let Some(vid) = given {
        let r = v.send(&[add, u32::from(vid)])?;
        decided()?;
        if r[0] != add | CTS | ACK {
            return Err(format!("{}: VLAN {vid} answered {:#010x}", v.bdf, r[0]));
        }
        vlan_reply = Some((vid, r[0]));
    }
    let refused = v.send(&[add, VLAN_NOT_GIVEN])?;
    let o = decided()?;
    let want = Refusal::VlanNotAllowed {
        vid: VLAN_NOT_GIVEN as u16,
    };
    if lpe[0] != u32::from(proto::VF_SET_LPE) | CTS | ACK
        || refused[0] != add | CTS | NACK
        || refusal(&o) != Some(&want)
    {
        return Err(format!(
            "{}: SET_LPE {FRAME_1500} answered {:#010x}, VLAN {VLAN_NOT_GIVEN} {:#010x} ({:?})",
            v.bdf, lpe[0], refused[0], o.verdict
        ));
    }
    info!(
        "selftest: igb-mailbox [4] guest \"{}\": SET_LPE {FRAME_1500} -> {:#010x}; {}VLAN \
         {VLAN_NOT_GIVEN} (not given) -> {:#010x}",
        v.guest,
        lpe[0],
        vlan_reply.map_or_else(String::new, |(vid, r)| format!(
            "VLAN {vid} (configured) -> {r:#010x}; "
        )),
        refused[0]
    );
    Ok(())
}

fn mailbox_vlans(v: &VfDriver) -> Result<Option<u16>, String> {
    let pf = pci::get()
        .and_then(|p| p.function(v.bdf))
        .and_then(|f| f.vf)
        .ok_or("not a VF")?
        .pf;
    Ok(mailbox::configured_vlans(pf, v.index).first().copied())
}

/// Step 5: guest B's VF before and after its reset; guest A's filters unaffected.
fn early_then_reset(
    vb: &mut VfDriver,
    va: &VfDriver,
    pf: Bdf,
    mac_b: Mac,
    a_before: (u32, u32, u32, u32),
) -> Result<(), String> {
    let early = vb.send(&[u32::from(proto::VF_SET_LPE), FRAME_1500])?;
    let o = decided()?;
    if early[0] != u32::from(proto::VF_SET_LPE) | NACK
        || refusal(&o) != Some(&Refusal::NotClearToSend)
    {
        return Err(format!(
            "{}: SET_LPE before its reset answered {:#010x} ({:?})",
            vb.bdf, early[0], o.verdict
        ));
    }
    let (_, pinned) = mailbox::configured_mac(pf, vb.index).unwrap_or((mac_b, false));
    handshake(vb, pf, mac_b, 5, pinned)?;
    let (ral, rah, vfre, vfte) = filters(pf, va.index)?;
    let a_bit = 1 << va.index;
    if (ral, rah) != (a_before.0, a_before.1) || vfre & a_bit == 0 || vfte & a_bit == 0 {
        return Err(format!(
            "guest A's receive address {:x?} -> ({ral:#x}, {rah:#x}), VFRE {vfre:#x} VFTE \
             {vfte:#x} after guest B's reset",
            (a_before.0, a_before.1)
        ));
    }
    info!(
        "selftest: igb-mailbox [5] guest \"{}\"'s SET_LPE before its reset -> {:#010x} (NACK, no \
         CTS); after guest B's handshake guest \"{}\"'s receive address {} and enables are \
         unchanged (RAH {rah:#010x}, VFRE {vfre:#x})",
        vb.guest,
        early[0],
        va.guest,
        receive_address_index(va.index)
    );
    Ok(())
}
