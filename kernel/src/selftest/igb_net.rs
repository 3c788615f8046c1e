//! `[test] scenario = "igb-net"`: an igb VF moves real packets for the guest that owns it, with
//! the hypervisor out of the data path. QEMU has no VMX, so the hypervisor plays guest A's
//! driver (as in `igb_vf`): configuration and MSI-X table accesses through the exit-path entry
//! points, the VF's registers at the host-physical address guest A's EPT maps its BAR0 to (where
//! a vCPU's stores land without an exit), rings and buffers in guest A's memory at
//! guest-physical addresses, which are the IOVAs of guest A's IOMMU domain (`igb_ring`).
//!
//! The PF's VMDq switch was set up at boot (`crate::igb::switch`). The script, on QEMU's user
//! network (gateway 10.0.2.2, guest address 10.0.2.15):
//! 1. Guest A's and guest B's drivers program MSI-X entry 0 of their VFs ([`VECTOR_A`],
//!    [`VECTOR_B`]): IRTEs owned by each guest.
//! 2. Guest A's driver finds its BAR0 through its configuration space; its EPT maps it to the
//!    VF's BAR0. The driver resets the VF and sends VF_RESET through the mailbox: the PF's
//!    mailbox service (`crate::igb::mailbox`) answers with the VF's MAC, programs it in a
//!    receive address for the VF's pool and enables the pool's receive and transmit; the
//!    driver sets up its rings.
//! 3. ARP request for 10.0.2.2: the reply lands in guest A's receive buffer (sender 10.0.2.2 at
//!    the gateway's MAC, target guest A's MAC and address) and raises guest A's vector; guest B's
//!    count does not move. Frames before the reply (QEMU's switch loops the VF's own broadcast
//!    back to its pool) are named in the log and skipped, as a driver skips them.
//! 4. ICMP echo to 10.0.2.2 (identifier [`ECHO_ID`], sequence 1): the reply (from 10.0.2.2 to
//!    10.0.2.15, same identifier, sequence and data) lands in guest A's memory and raises guest
//!    A's vector.
//! 5. A transmit descriptor whose buffer is guest B's host-physical address (outside guest A's
//!    memory, unmapped in its domain): the read is blocked, the fault recorded with the VF's BDF,
//!    the address and the reason; nothing arrives and neither guest's interrupt count moves.
//!    (QEMU's model, after reporting the fault, carries the read out on unassigned memory and
//!    still sends a frame of those bytes: the VF's transmitted count moves there, and is logged.)
//! 6. The next echo (sequence 2) goes and is answered.
//! 7. The per-guest counters: guest A at least one interrupt per reply and at most one per frame
//!    received (messages of one vector taken while interrupts are off coalesce), one DMA fault;
//!    guest B nothing.

use super::guest_driver::GuestView;
use super::igb_ring::{END, Ram, Received, VfQueues};
use super::igb_vf::{Side, find, program};
use super::intremap::{ONE_INTERRUPT, wait_ticks};
use crate::guest::Guest;
use crate::iommu;
use crate::irq::dispatch;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use conduit_hw::memory::Memory;
use conduit_hw::vtd::fault::Fault;
use conduit_igb_mbx::{Mac as MbxMac, proto};
use conduit_netpkt::{
    ARP_REPLY, Arp, Echo, EchoRequest, ICMP_ECHO_REPLY, Ipv4, Mac, Payload, arp_request,
    echo_request, parse,
};
use conduit_pci::Bdf;
use log::info;

/// The vectors the guests' drivers program.
pub const VECTOR_A: u8 = 0x61;
pub const VECTOR_B: u8 = 0x62;
/// QEMU's user network: the gateway and the address its DHCP server would give the first guest.
pub const GATEWAY: Ipv4 = Ipv4([10, 0, 2, 2]);
pub const GUEST_IP: Ipv4 = Ipv4([10, 0, 2, 15]);
/// The identifier of guest A's echoes.
pub const ECHO_ID: u16 = 0xc0d1;
/// The data of guest A's echoes.
const ECHO_DATA: &[u8] = b"conduit igb VF data path";
/// How long the link may take to come up after the PF's autonegotiation restart.
const LINK_WAIT: u64 = 32 * ONE_INTERRUPT;
/// How long a reply may take (TSC ticks, interrupts on).
const REPLY_WAIT: u64 = 8 * ONE_INTERRUPT;
/// Fault reason of a DMA read through a non-present or unreadable second-level entry (VT-d spec,
/// Appendix A; QEMU reports 06h for a read).
const NO_READ: u8 = 0x06;

/// The guests' interrupt counts, to compare before and after a step.
fn counts(a: &Side, b: &Side) -> (u64, u64) {
    (a.delivered(), b.delivered())
}

/// Runs the script; returns the number of steps passed.
pub fn run(mem: &'static Memory, guests: &mut [Guest]) -> Result<usize, String> {
    iommu::status().map_err(|why| format!("DMA remapping is not enabled: {why}"))?;
    iommu::interrupt_remapping()
        .map_err(|why| format!("interrupt remapping is not enabled: {why}"))?;
    let (mut a, mut b, pf) = find(guests, mem)?;
    info!(
        "selftest: igb-net: guest A = \"{}\" (VF {} of {pf}, at its {}), guest B = \"{}\" (VF {}); \
         no vCPU runs: the hypervisor plays guest A's driver",
        a.guest.name, a.vf.bdf, a.vbdf, b.guest.name, b.vf.bdf
    );
    let mut queues = None;
    let result = script(&mut a, &mut b, mem, &mut queues);
    if let Some(q) = &queues {
        q.stop();
    }
    for s in [&mut a, &mut b] {
        if let Err(e) = s.view.disable_msix(s.vbdf, s.cap) {
            log::warn!(
                "selftest: igb-net: guest \"{}\"'s driver could not turn MSI-X off: {e}",
                s.guest.name
            );
        }
        crate::guest::interrupts::release_function(
            s.guest.index,
            conduit_pci::PciAddress::on_segment0(s.vf.bdf),
        );
    }
    let frames = result?;
    counters(&a, &b, frames)?;
    Ok(7)
}

fn script(
    a: &mut Side,
    b: &mut Side,
    mem: &'static Memory,
    queues: &mut Option<VfQueues>,
) -> Result<u64, String> {
    program(a, VECTOR_A, mem, "igb-net", 1)?;
    program(b, VECTOR_B, mem, "igb-net", 1)?;
    let bar0 = bar0_through_ept(&mut a.view, a.vbdf, a.vf.bars.get(0).map(|b| b.address))?;
    if END > a.guest.size {
        return Err(format!(
            "guest A's {:#x} bytes do not hold the rings",
            a.guest.size
        ));
    }
    let ram = Ram::new(mem, a.guest.hpa, a.guest.size);
    let q = queues.insert(VfQueues::open(mem, bar0, ram)?);
    let (after_reset, reply) = q.reset_handshake()?;
    let expected = u32::from(proto::VF_RESET) | proto::ACK;
    let mac = MbxMac::from_words(reply[1], reply[2]);
    if reply[0] != expected || !mac.is_valid_unicast() {
        return Err(format!(
            "VF_RESET answered {reply:#x?}: want {expected:#x} with a unicast MAC"
        ));
    }
    let mac = conduit_netpkt::Mac(mac.0);
    q.start()?;
    let status = q.await_link(LINK_WAIT)?;
    info!(
        "selftest: igb-net [2] guest \"{}\"'s BAR0 maps (EPT) to HPA {bar0:#x}, the VF's BAR0; \
         CTRL.RST (mailbox {after_reset:#x} after it), VF_RESET through the mailbox -> {:#010x} \
         with MAC {mac}; rings in guest A's memory: TX ring GPA {:#x}, RX ring GPA {:#x}, \
         buffers GPA {:#x}-{:#x} (IOVAs of its domain), RX queue 0 on MSI-X vector 0; link up \
         (the VF's STATUS {status:#010x})",
        a.guest.name,
        reply[0],
        super::igb_ring::TX_RING,
        super::igb_ring::RX_RING,
        super::igb_ring::TX_BUFS,
        END
    );
    let mut frames = 0;
    let gateway = arp(a, b, q, mac, &mut frames)?;
    echo(a, b, q, (mac, gateway), 1, 4, &mut frames)?;
    blocked(a, b, q)?;
    echo(a, b, q, (mac, gateway), 2, 6, &mut frames)?;
    Ok(frames)
}

/// Guest A's driver reads its BAR0 from its configuration space (as placed in step 1); its EPT
/// must map it to the VF's BAR0. Returns that host-physical address.
fn bar0_through_ept(view: &mut GuestView, vbdf: Bdf, vf_bar0: Option<u64>) -> Result<u64, String> {
    let lo = view.read(vbdf, 0x10, 4)?;
    let hi = view.read(vbdf, 0x14, 4)?;
    let gpa = (u64::from(hi) << 32) | u64::from(lo & !0xf);
    let hpa = view
        .guest()
        .ept_walk(gpa)
        .ok()
        .and_then(|w| w.translation())
        .map(|t| t.phys);
    match (hpa, vf_bar0) {
        (Some(h), Some(v)) if h == v => Ok(h),
        _ => Err(format!(
            "guest A's BAR0 at GPA {gpa:#x} maps to {hpa:x?}, not the VF's BAR0 {vf_bar0:x?}"
        )),
    }
}

/// A received frame in a few words, for the log.
fn describe(r: &Received) -> String {
    match parse(&r.bytes) {
        Ok(f) => match f.payload {
            Payload::Arp(a) => format!(
                "ARP op {} {} ({}) -> {} from {}",
                a.op, a.sender_ip, a.sender_mac, a.target_ip, f.src
            ),
            Payload::Echo(e) => format!(
                "ICMP type {} {} -> {} id {:#06x} seq {}",
                e.kind, e.src_ip, e.dst_ip, e.id, e.seq
            ),
            Payload::Other { ethertype, .. } => {
                format!("EtherType {ethertype:#06x} from {}", f.src)
            }
        },
        Err(e) => format!("{} bytes not understood: {e}", r.bytes.len()),
    }
}

/// What arrived until the awaited frame: the frame, how many frames in all, the others.
struct Arrived<T> {
    value: T,
    frame: Received,
    frames: u64,
    others: Vec<String>,
}

/// Waits for frames until `want` accepts one. Guest A's interrupt count, from `since` (its
/// count before the send: the reply may arrive, and its interrupt be taken, while the driver
/// still waits for its transmit write-back), must then have risen by at least one and at most
/// one per frame (messages of the same vector that arrive while the processor has interrupts
/// off are taken once, as the local APIC keeps one request per vector, SDM Vol. 3A §11.8.4).
fn await_frame<T>(
    a: &Side,
    q: &mut VfQueues,
    since: u64,
    what: &str,
    mut want: impl FnMut(&Received) -> Option<T>,
) -> Result<Arrived<T>, String> {
    let mut others: Vec<String> = Vec::new();
    let mut frames = 0;
    loop {
        let Some(r) = q.receive(REPLY_WAIT)? else {
            return Err(format!("no {what} arrived (other frames: {others:?})"));
        };
        frames += 1;
        if let Some(value) = want(&r) {
            super::intremap::wait_with_interrupts(ONE_INTERRUPT, || a.delivered() > since);
            let got = a.delivered() - since;
            if got == 0 || got > frames {
                return Err(format!(
                    "{what} in receive slot {}: guest A counted {got} interrupts for {frames} \
                     frames",
                    r.slot
                ));
            }
            return Ok(Arrived {
                value,
                frame: r,
                frames,
                others,
            });
        }
        others.push(describe(&r));
    }
}

/// Step 3: ARP for the gateway. Returns its MAC.
fn arp(a: &Side, b: &Side, q: &mut VfQueues, mac: Mac, frames: &mut u64) -> Result<Mac, String> {
    let mut buf = [0u8; 64];
    let len = arp_request(&mut buf, mac, GUEST_IP, GATEWAY).map_err(|e| format!("{e}"))?;
    let (a0, b0) = counts(a, b);
    let sent = q.send(&buf[..len])?;
    let wanted = |r: &Received| match parse(&r.bytes).ok()?.payload {
        Payload::Arp(arp @ Arp { op: ARP_REPLY, .. }) if arp.sender_ip == GATEWAY => Some(arp),
        _ => None,
    };
    let got = await_frame(a, q, a0, "ARP reply", wanted)?;
    let (reply, r) = (got.value, &got.frame);
    *frames += got.frames;
    let (a1, b1) = counts(a, b);
    let pending = dispatch::take_pending(a.id());
    if reply.target_mac != mac || reply.target_ip != GUEST_IP || b1 != b0 {
        return Err(format!(
            "ARP reply {reply:?}: guest A {a0} -> {a1}, guest B {b0} -> {b1}"
        ));
    }
    info!(
        "selftest: igb-net [3] ARP request for {GATEWAY} sent (TX descriptor {} written back, \
         status {:#x}); the reply landed in guest A's memory at GPA {:#x} ({} bytes, status \
         {:#x}): {GATEWAY} is at {}, to {} ({}); {} frame(s) received (before it: {:?}); \
         guest \"{}\" interrupts {a0} -> {a1} (vector {:#x} pending: {}), guest \"{}\" {b0} -> \
         {b1}",
        sent.slot,
        sent.status,
        r.gpa,
        r.bytes.len(),
        r.status,
        reply.sender_mac,
        reply.target_mac,
        reply.target_ip,
        got.frames,
        got.others,
        a.guest.name,
        VECTOR_A,
        pending == Some(VECTOR_A),
        b.guest.name
    );
    if pending != Some(VECTOR_A) {
        return Err(format!("guest A's pending vector is {pending:?}"));
    }
    Ok(reply.sender_mac)
}

/// Steps 4 and 6: one echo to the gateway with sequence `seq`, its reply checked.
fn echo(
    a: &Side,
    b: &Side,
    q: &mut VfQueues,
    (mac, gateway): (Mac, Mac),
    seq: u16,
    step: u8,
    frames: &mut u64,
) -> Result<(), String> {
    let mut buf = [0u8; 128];
    let request = EchoRequest {
        src_mac: mac,
        dst_mac: gateway,
        src_ip: GUEST_IP,
        dst_ip: GATEWAY,
        ip_id: seq,
        ttl: 64,
        id: ECHO_ID,
        seq,
        data: ECHO_DATA,
    };
    let len = echo_request(&mut buf, &request).map_err(|e| format!("{e}"))?;
    let (a0, b0) = counts(a, b);
    let (_, tx0) = q.stats();
    let sent = q.send(&buf[..len])?;
    let (_, tx1) = q.stats();
    let wanted = |r: &Received| {
        let f = parse(&r.bytes).ok()?;
        match f.payload {
            Payload::Echo(
                e @ Echo {
                    kind: ICMP_ECHO_REPLY,
                    ..
                },
            ) if e.id == ECHO_ID && e.seq == seq => {
                Some((f.src, f.dst, e.src_ip, e.dst_ip, e.ttl, e.data == ECHO_DATA))
            }
            _ => None,
        }
    };
    let got = await_frame(a, q, a0, "echo reply", wanted)?;
    let ((src, dst, from, to, ttl, same_data), r) = (got.value, &got.frame);
    *frames += got.frames;
    let (a1, b1) = counts(a, b);
    let pending = dispatch::take_pending(a.id());
    if src != gateway
        || dst != mac
        || from != GATEWAY
        || to != GUEST_IP
        || !same_data
        || tx1 != tx0.wrapping_add(1)
        || b1 != b0
        || pending != Some(VECTOR_A)
    {
        return Err(format!(
            "echo {seq}: reply {src} -> {dst}, {from} -> {to}, data equal {same_data}; VFGPTC \
             {tx0} -> {tx1}; guest A {a0} -> {a1} (pending {pending:?}), guest B {b0} -> {b1}"
        ));
    }
    info!(
        "selftest: igb-net [{step}] ICMP echo to {GATEWAY} (id {ECHO_ID:#06x}, seq {seq}, {} data \
         bytes) sent from TX descriptor {} (VFGPTC {tx0} -> {tx1}); the reply landed in guest \
         A's memory at GPA {:#x} ({} bytes): {from} -> {to} (from {src}), id {ECHO_ID:#06x} seq \
         {seq}, ttl {ttl}, data equal; {} frame(s) received (before it: {:?}); guest \"{}\" \
         interrupts {a0} -> {a1}, guest \"{}\" {b0} -> {b1}",
        ECHO_DATA.len(),
        sent.slot,
        r.gpa,
        r.bytes.len(),
        got.frames,
        got.others,
        a.guest.name,
        b.guest.name
    );
    Ok(())
}

/// Step 5: a transmit buffer at guest B's host-physical address.
fn blocked(a: &Side, b: &Side, q: &mut VfQueues) -> Result<(), String> {
    let target = b.guest.hpa;
    if target < a.guest.size {
        return Err(format!(
            "guest B's memory at HPA {target:#x} is inside guest A's GPA range: pick another \
             address"
        ));
    }
    // Anything already pending is not this step's.
    let earlier = iommu::service_faults();
    if !earlier.is_empty() {
        return Err(format!("faults before the bad descriptor: {earlier:?}"));
    }
    let (a0, b0) = counts(a, b);
    let (rx0, tx0) = q.stats();
    let sent = q.transmit(target, 64)?;
    wait_ticks(2);
    let faults = iommu::service_faults();
    let (rx1, tx1) = q.stats();
    let (a1, b1) = counts(a, b);
    let arrived = q.receive(ONE_INTERRUPT)?;
    let vf = a.vf.bdf;
    let matches = |f: &Fault| {
        f.source == vf && f.address == target & !0xfff && !f.write && f.reason == NO_READ
    };
    let fault = match faults.as_slice() {
        [f] if matches(f) => *f,
        other => {
            return Err(format!(
                "a transmit buffer at {target:#x}: expected one read fault {NO_READ:#04x} from \
                 {vf} at that page, found {other:?}"
            ));
        }
    };
    if rx1 != rx0 || (a1, b1) != (a0, b0) || arrived.is_some() {
        return Err(format!(
            "after the blocked descriptor: VFGPRC {rx0} -> {rx1}, VFGPTC {tx0} -> {tx1}, guest A \
             {a0} -> {a1}, guest B {b0} -> {b1}, a frame arrived: {}",
            arrived.is_some()
        ));
    }
    info!(
        "selftest: igb-net [5] TX descriptor {} with its buffer at {target:#x} (guest \"{}\"'s \
         memory, outside guest \"{}\"'s): the VF's read was blocked, fault {:#04x} recorded \
         (source {vf}, address {:#x}, read): {}; descriptor written back (status {:#x}), \
         nothing received (VFGPRC {rx0} -> {rx1}), interrupts unchanged (guest A {a1}, guest B \
         {b1}); VFGPTC {tx0} -> {tx1} (QEMU's model still sends the frame, with the blocked \
         read's bytes taken from unassigned memory, not from guest B's)",
        sent.slot,
        b.guest.name,
        a.guest.name,
        fault.reason,
        fault.address,
        conduit_vtd::reason_text(fault.reason),
        sent.status
    );
    Ok(())
}

/// Step 7: the per-guest counters say what the steps did.
fn counters(a: &Side, b: &Side, frames: u64) -> Result<(), String> {
    let all = crate::guest::report::counters();
    let of = |s: &Side| {
        all.iter()
            .find(|c| c.name == s.guest.name)
            .map(|c| (c.interrupts, c.dma_faults, c.interrupt_faults))
    };
    let taken = a.delivered();
    let want_a = (taken, 1, 0);
    let want_b = (0, 0, 0);
    // At least one interrupt per reply (three), at most one per frame.
    if of(a) != Some(want_a) || of(b) != Some(want_b) || taken < 3 || taken > frames {
        return Err(format!(
            "per-guest counters (interrupts, DMA faults, interrupt faults): guest A {:?}, want \
             {want_a:?} with 3 to {frames} interrupts; guest B {:?}, want {want_b:?}",
            of(a),
            of(b)
        ));
    }
    info!(
        "selftest: igb-net [7] per-guest counters: guest \"{}\" {taken} interrupts ({frames} \
         frames received) and 1 DMA fault (the blocked descriptor), guest \"{}\" none",
        a.guest.name, b.guest.name
    );
    Ok(())
}
