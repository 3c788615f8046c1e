//! The igb PF's mailbox service: Conduit answers its VFs' mailbox messages the way Linux's igb PF
//! driver does, within each VF's policy (`conduit_igb_mbx`; `docs/igb-mailbox.md`).
//!
//! Per PF whose VFs the configuration gives to guests, [`init`] (part of the PF's bring-up, before
//! configuration space goes to the control task) maps the mailbox and filter registers, builds
//! the service from the configuration (a VF's `mac`, or the default address, and its `vlans`)
//! with the PF's own receive address 0 as a MAC no VF may take, and sets CTRL_EXT.PFRSTD so that
//! the VFs see the PF's reset done (82576 datasheet §7.8 "Virtualization": until then a VF's
//! mailbox shows RSTI and `igbvf` does not start its handshake).
//!
//! [`poll`] is the service: the scheduler's loop runs it between time slices (and, where no vCPU
//! runs, the self-test's scripted VF driver after each message it posts). Polling rather than
//! the PF's "other causes" MSI-X vector: the mailbox carries a handful of messages when a VF
//! driver starts or changes its filters, and `igbvf` waits up to a second for each answer (2000
//! polls 500 µs apart), far longer than a time slice or the idle tick, while an interrupt would
//! need a hypervisor-owned vector and IRTE for the PF and a handler that shares the registers
//! with the loop. Polling costs two register reads (VFLRE, MBVFICR) per PF and slice.
//!
//! One poll, per PF, in Linux's order: VF resets first (VFLRE, write 1 to clear: the VF is not
//! clear to send until its next `VF_RESET`), then each VF's message (MBVFICR bit n): the PF takes
//! the buffer (P2VMAILBOX.PFU, read back: a VF holding it keeps its request for the next poll),
//! clears the cause, reads the 16 words, acknowledges them (ACK, keeping PFU), decides, makes the
//! register writes (`vf_ctl`), then writes the reply and STS, which also releases the buffer (or
//! only releases it when there is no reply). The VFs' acknowledgements of replies (MBVFICR bit
//! 16 + n) are cleared. Each refused or ignored message is logged with the VF's address, its
//! guest, the message id and the reason.

use super::regs::{CTRL_EXT_PFRSTD, P2V_ACK, P2V_PFU, P2V_STS, PfReg, PfRegs};
use super::vf_ctl;
use crate::pci::{self, Function};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use conduit_hw::memory::Memory;
use conduit_hw::memory::mmio::MmioError;
use conduit_igb_mbx::proto::{self, MAILBOX_WORDS, Request};
use conduit_igb_mbx::{
    Action, Holder, Mac, Outcome, Policy, Refusal, Service, SetupError, Verdict, default_mac,
    receive_address_index,
};
use conduit_pci::Bdf;
use core::fmt;
use log::{error, info, warn};
use spin::Mutex;

/// VFs (pools) of an 82576.
const POOLS: u8 = 8;
/// MBVFICR: the VFs' acknowledgements (bits 23:16).
const MBVFICR_ACKS: u32 = 0x00ff_0000;

/// One VF the configuration gives to a guest, as the PF's bring-up plans it.
#[derive(Debug, Clone)]
pub struct VfPlan {
    pub index: u16,
    pub guest: String,
    pub mac: Option<[u8; 6]>,
    pub vlans: Vec<u16>,
}

/// Why a PF's mailbox is not served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailboxError {
    NoBar0,
    Mmio(MmioError),
    /// A VF index beyond the 82576's 8 pools.
    VfIndex(u16),
    Setup(SetupError),
}

impl fmt::Display for MailboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoBar0 => write!(f, "no memory BAR0 holding the mailbox registers"),
            Self::Mmio(e) => write!(f, "BAR0: {e}"),
            Self::VfIndex(i) => write!(f, "VF {i}: the 82576 has {POOLS} pools"),
            Self::Setup(e) => write!(f, "{e}"),
        }
    }
}

/// A served VF: its address and guest, for the log.
struct Served {
    index: u8,
    bdf: Option<Bdf>,
    guest: String,
}

struct PfMailbox {
    pf: Bdf,
    regs: PfRegs,
    service: Service,
    vfs: Vec<Served>,
}

static MAILBOXES: Mutex<Vec<PfMailbox>> = Mutex::new(Vec::new());

/// The outcomes [`poll`] decided, kept for the self-tests.
#[cfg(feature = "selftest")]
static DECIDED: Mutex<Vec<(Bdf, Outcome)>> = Mutex::new(Vec::new());

/// VF `index` of `pf`, if enumerated.
fn vf_bdf(pf: Bdf, index: u8) -> Option<Bdf> {
    pci::get()?
        .functions()
        .iter()
        .find(|f| {
            f.vf.is_some_and(|v| v.pf == pf && v.index == u16::from(index))
        })
        .map(|f| f.bdf)
}

/// Sets up the mailbox service of PF `f` for the VFs `vfs` (see the module docs).
pub fn init(f: &Function, mem: &Memory, vfs: &[VfPlan]) -> Result<(), MailboxError> {
    let bar = f
        .bars
        .get(0)
        .filter(|b| b.is_memory())
        .ok_or(MailboxError::NoBar0)?;
    let regs = PfRegs::map(mem, bar.address, bar.size).map_err(MailboxError::Mmio)?;
    let rah0 = regs.read(PfReg::Rah(0)).map_err(MailboxError::Mmio)?;
    let ral0 = regs.read(PfReg::Ral(0)).map_err(MailboxError::Mmio)?;
    let pf_mac = (rah0 & super::regs::RAH_AV != 0).then(|| Mac::from_words(ral0, rah0));
    let mut policies = Vec::with_capacity(vfs.len());
    let mut served = Vec::with_capacity(vfs.len());
    for v in vfs {
        let index = u8::try_from(v.index)
            .ok()
            .filter(|i| *i < POOLS)
            .ok_or(MailboxError::VfIndex(v.index))?;
        let mac = v
            .mac
            .map(Mac)
            .unwrap_or_else(|| default_mac(f.bdf.bus(), f.bdf.devfn(), index));
        policies.push((index, Policy::new(mac, v.mac.is_some(), v.vlans.clone())));
        served.push(Served {
            index,
            bdf: vf_bdf(f.bdf, index),
            guest: v.guest.clone(),
        });
    }
    let service = Service::new(policies, pf_mac).map_err(MailboxError::Setup)?;
    let ctrl_ext = regs.read(PfReg::CtrlExt).map_err(MailboxError::Mmio)?;
    regs.write(PfReg::CtrlExt, ctrl_ext | CTRL_EXT_PFRSTD)
        .map_err(MailboxError::Mmio)?;
    let list: Vec<String> = served
        .iter()
        .map(|s| {
            let (mac, how) = service.policy(s.index).map_or((Mac([0; 6]), "none"), |p| {
                (
                    p.mac,
                    if p.mac_pinned {
                        "configured"
                    } else {
                        "default"
                    },
                )
            });
            format!("VF {} (guest \"{}\", MAC {mac} {how})", s.index, s.guest)
        })
        .collect();
    info!(
        "igb {}: mailbox served by polling for {}; PF MAC {}; CTRL_EXT.PFRSTD set (PF reset done \
         for the VFs)",
        f.bdf,
        list.join(", "),
        pf_mac.map_or_else(|| String::from("none"), |m| format!("{m}"))
    );
    MAILBOXES.lock().push(PfMailbox {
        pf: f.bdf,
        regs,
        service,
        vfs: served,
    });
    Ok(())
}

/// Serves every PF's mailbox once (see the module docs); returns the number of messages and
/// resets handled. Returns 0 at once if another CPU is serving.
pub fn poll() -> usize {
    let Some(mut boxes) = MAILBOXES.try_lock() else {
        return 0;
    };
    let mut handled = 0;
    for m in boxes.iter_mut() {
        match serve(m) {
            Ok(n) => handled += n,
            Err(e) => error!("igb {}: mailbox registers: {e}", m.pf),
        }
    }
    handled
}

fn serve(m: &mut PfMailbox) -> Result<usize, MmioError> {
    let mut handled = 0;
    let resets = m.regs.read(PfReg::Vflre)?;
    for vf in (0..POOLS).filter(|vf| resets & (1 << vf) != 0) {
        m.regs.write(PfReg::Vflre, 1 << vf)?;
        let actions = m.service.reset_event(vf);
        apply(m, &actions)?;
        info!(
            "igb mailbox {}: VF reset: not clear to send until its VF_RESET; filters reset, MAC {}",
            who(m, vf),
            m.service
                .mac(vf)
                .map(|m| format!("{m}"))
                .unwrap_or_default()
        );
        handled += 1;
    }
    let causes = m.regs.read(PfReg::Mbvficr)?;
    for vf in (0..POOLS).filter(|vf| causes & (1 << vf) != 0) {
        if message(m, vf)? {
            handled += 1;
        }
    }
    if causes & MBVFICR_ACKS != 0 {
        m.regs.write(PfReg::Mbvficr, causes & MBVFICR_ACKS)?;
    }
    Ok(handled)
}

/// VF `vf`'s message: false if the VF still holds the buffer (the request stays for the next
/// poll).
fn message(m: &mut PfMailbox, vf: u8) -> Result<bool, MmioError> {
    let mailbox = PfReg::P2vMailbox(vf);
    m.regs.write(mailbox, P2V_PFU)?;
    if m.regs.read(mailbox)? & P2V_PFU == 0 {
        return Ok(false);
    }
    m.regs.write(PfReg::Mbvficr, 1 << vf)?;
    let mut words = [0u32; MAILBOX_WORDS];
    for (i, w) in words.iter_mut().enumerate() {
        *w = m.regs.read(PfReg::Vmbmem { vf, word: i as u8 })?;
    }
    m.regs.write(mailbox, P2V_ACK | P2V_PFU)?;
    let outcome = m.service.message(vf, &words);
    apply(m, &outcome.actions)?;
    for (i, w) in outcome.reply.iter().enumerate() {
        m.regs.write(PfReg::Vmbmem { vf, word: i as u8 }, *w)?;
    }
    m.regs
        .write(mailbox, if outcome.reply.is_empty() { 0 } else { P2V_STS })?;
    log(m, &outcome);
    #[cfg(feature = "selftest")]
    DECIDED.lock().push((m.pf, outcome));
    Ok(true)
}

fn apply(m: &PfMailbox, actions: &[Action]) -> Result<(), MmioError> {
    for a in actions {
        vf_ctl::apply(&m.regs, a)?;
    }
    Ok(())
}

/// "01:10.0 (guest "a", VF 0 of 01:00.0)".
fn who(m: &PfMailbox, vf: u8) -> String {
    let served = m.vfs.iter().find(|s| s.index == vf);
    let bdf = served
        .and_then(|s| s.bdf)
        .or_else(|| vf_bdf(m.pf, vf))
        .map_or_else(|| String::from("?"), |b| format!("{b}"));
    match served {
        Some(s) => format!("{bdf} (guest \"{}\", VF {vf} of {})", s.guest, m.pf),
        None => format!("{bdf} (no guest, VF {vf} of {})", m.pf),
    }
}

fn log(m: &PfMailbox, o: &Outcome) {
    let name = Request::name(o.id());
    let reply = o.reply.first().copied().unwrap_or(0);
    match &o.verdict {
        Verdict::Accepted if o.id() == proto::VF_RESET => info!(
            "igb mailbox {}: {name} {:#010x} -> ACK {reply:#010x}, MAC {} (receive address {}, \
             pool {}), the VF's receive and transmit enabled, clear to send",
            who(m, o.vf),
            o.word,
            m.service
                .mac(o.vf)
                .map(|m| format!("{m}"))
                .unwrap_or_default(),
            receive_address_index(o.vf),
            o.vf
        ),
        Verdict::Accepted => info!(
            "igb mailbox {}: {name} {:#010x} -> ACK {reply:#010x} ({} register write(s))",
            who(m, o.vf),
            o.word,
            o.actions.len()
        ),
        Verdict::Refused(why) => {
            let holder = match why {
                Refusal::MacTaken {
                    by: Holder::Vf(n), ..
                } => {
                    let guest = m
                        .vfs
                        .iter()
                        .find(|s| s.index == *n)
                        .map(|s| s.guest.as_str());
                    let bdf = vf_bdf(m.pf, *n).map(|b| format!("{b}")).unwrap_or_default();
                    format!(" ({bdf}, guest \"{}\")", guest.unwrap_or("none"))
                }
                _ => String::new(),
            };
            warn!(
                "igb mailbox {}: refused {name} (id {:#06x}, word {:#010x}): {why}{holder}; NACK \
                 {reply:#010x}",
                who(m, o.vf),
                o.id(),
                o.word
            )
        }
        Verdict::Ignored(why) => warn!(
            "igb mailbox {}: ignored message id {:#06x} (word {:#010x}): {why}; no reply",
            who(m, o.vf),
            o.id(),
            o.word
        ),
    }
}

/// The outcomes decided since the last call.
#[cfg(feature = "selftest")]
pub fn take_decided() -> Vec<(Bdf, Outcome)> {
    core::mem::take(&mut *DECIDED.lock())
}

/// VF `vf`'s MAC address as the configuration gives it (or the default) and whether the
/// configuration names it.
#[cfg(feature = "selftest")]
pub fn configured_mac(pf: Bdf, vf: u8) -> Option<(Mac, bool)> {
    let boxes = MAILBOXES.lock();
    let m = boxes.iter().find(|m| m.pf == pf)?;
    m.service.policy(vf).map(|p| (p.mac, p.mac_pinned))
}

/// The VLAN ids the configuration gives VF `vf` of `pf`.
#[cfg(feature = "selftest")]
pub fn configured_vlans(pf: Bdf, vf: u8) -> Vec<u16> {
    let boxes = MAILBOXES.lock();
    boxes
        .iter()
        .find(|m| m.pf == pf)
        .and_then(|m| m.service.policy(vf))
        .map(|p| p.vlans.clone())
        .unwrap_or_default()
}

/// Receive address `index` (RAL, RAH), VFRE and VFTE of `pf` as read now.
#[cfg(feature = "selftest")]
pub fn filter_state(pf: Bdf, index: u8) -> Option<(u32, u32, u32, u32)> {
    let boxes = MAILBOXES.lock();
    let m = boxes.iter().find(|m| m.pf == pf)?;
    let r = |reg| m.regs.read(reg).ok();
    Some((
        r(PfReg::Ral(index))?,
        r(PfReg::Rah(index))?,
        r(PfReg::Vfre)?,
        r(PfReg::Vfte)?,
    ))
}
