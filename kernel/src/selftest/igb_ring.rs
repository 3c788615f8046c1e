//! The scripted driver of one igb VF's queue pair, as Linux's `igbvf` sets it up (advanced
//! descriptors, one 2 KiB buffer per receive descriptor, receive queue 0 on MSI-X vector 0):
//! rings and buffers in the guest's memory at guest-physical addresses (the IOVAs of the
//! guest's IOMMU domain), registers reached at the host-physical address the guest's EPT maps
//! the VF's BAR0 to (where a vCPU's stores land, with no exit). Descriptor formats: Intel 82576
//! GbE Controller Datasheet §7.1 "Receive Functionality" (advanced receive descriptors) and
//! §7.2 "Transmit Functionality" (advanced transmit data descriptor); docs/sriov.md, "The VF
//! data path".

use super::intremap::{ONE_INTERRUPT, wait_with_interrupts};
use crate::igb::mailbox;
use crate::igb::regs::{
    CTRL_RST, DEVICE_CONTROL, DeviceControl, EXT_INTERRUPTS, ExtInterrupts, IVAR_VALID,
    QUEUE_ENABLE, SRRCTL_ADV_ONEBUF, SRRCTL_BSIZE_SHIFT, SRRCTL_DROP_EN, STATUS_LU, V2P_ACK,
    V2P_PFACK, V2P_PFSTS, V2P_REQ, V2P_RSTD, V2P_RSTI, V2P_VFU, VF_IVAR, VF_MAILBOX, VF_MESSAGE,
    VF_RX_QUEUE, VF_STATS, VF_TX_QUEUE, VfIvar, VfMailbox, VfMessage, VfRxQueue, VfStats,
    VfTxQueue,
};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use conduit_hw::memory::mmio;
use conduit_hw::memory::{Memory, PhysWindow};
use core::sync::atomic::{Ordering, fence};
use volatile::{VolatilePtr, map_field};

/// Descriptors per ring (a ring's length must be a multiple of 128 bytes: 8 descriptors).
pub const RING: u16 = 8;
/// Bytes of one descriptor (advanced, both directions).
const DESC: u64 = 16;
/// Bytes of each packet buffer.
pub const BUF: u64 = 2048;
/// The size of a VF's BAR0.
const VF_BAR0: u64 = 0x4000;
/// Reads of V2PMAILBOX `igbvf` allows for the reset indication to clear.
const RESET_POLLS: usize = 200;

/// Where the rings and buffers sit in the guest's memory: above the scratch page of the
/// scripted instructions (0x8000), below the image (1 MiB).
pub const TX_RING: u64 = 0x1_0000;
pub const RX_RING: u64 = 0x1_1000;
pub const TX_BUFS: u64 = 0x1_2000;
pub const RX_BUFS: u64 = TX_BUFS + RING as u64 * BUF;
/// The end of the region.
pub const END: u64 = RX_BUFS + RING as u64 * BUF;

/// Advanced transmit data descriptor, CMD_TYPE_LEN: DTYP = data (0011b in bits 23:20), DEXT,
/// EOP, IFCS (insert FCS), RS (report status).
const TXD_DTYP_DATA: u32 = 0x3 << 20;
const TXD_EOP: u32 = 1 << 24;
const TXD_IFCS: u32 = 1 << 25;
const TXD_RS: u32 = 1 << 27;
const TXD_DEXT: u32 = 1 << 29;
/// OLINFO_STATUS.PAYLEN (bits 31:14): the packet's length.
const TXD_PAYLEN_SHIFT: u32 = 14;
/// Write-back status (both directions): Descriptor Done; receive: End Of Packet.
pub const STAT_DD: u32 = 1 << 0;
pub const STAT_EOP: u32 = 1 << 1;

/// The guest's memory, by guest-physical address, as the hypervisor reaches it.
pub struct Ram {
    window: PhysWindow,
    host: u64,
    size: u64,
}

impl Ram {
    pub fn new(mem: &Memory, host: u64, size: u64) -> Self {
        Self {
            window: PhysWindow::new(mem, true),
            host,
            size,
        }
    }

    /// The hypervisor's pointer to `[gpa, gpa + len)`, checked to lie in the guest's memory.
    fn at(&self, gpa: u64, len: u64) -> Result<*mut u8, String> {
        if gpa.checked_add(len).is_none_or(|end| end > self.size) {
            return Err(format!(
                "GPA {gpa:#x} + {len:#x} is outside the guest's {:#x} bytes",
                self.size
            ));
        }
        Ok(self.window.virt(self.host + gpa))
    }

    pub fn write(&self, gpa: u64, bytes: &[u8]) -> Result<(), String> {
        let p = self.at(gpa, bytes.len() as u64)?;
        // SAFETY: `at` checked the range lies in the guest's memory, which the hypervisor owns
        // and no vCPU runs (no VMX); the device writes only the receive buffers and descriptors,
        // which the driver touches only once the device handed them back (DD).
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len()) };
        Ok(())
    }

    pub fn read(&self, gpa: u64, out: &mut [u8]) -> Result<(), String> {
        let p = self.at(gpa, out.len() as u64)?;
        fence(Ordering::Acquire);
        // SAFETY: as in `write`; the bytes were written by the device before it set DD, which
        // the caller observed (the fence orders that read before this copy).
        unsafe { core::ptr::copy_nonoverlapping(p, out.as_mut_ptr(), out.len()) };
        Ok(())
    }

    /// A dword the device may write at any time (a descriptor's status).
    pub fn read_u32(&self, gpa: u64) -> Result<u32, String> {
        let p = self.at(gpa, 4)?;
        if !gpa.is_multiple_of(4) {
            return Err(format!("GPA {gpa:#x} is not dword-aligned"));
        }
        // SAFETY: inside the guest's memory (checked) and aligned; a volatile read, since the
        // device writes this dword by DMA.
        Ok(unsafe { core::ptr::read_volatile(p.cast::<u32>()) })
    }
}

/// A transmit descriptor as the device wrote it back.
#[derive(Debug, Clone, Copy)]
pub struct Sent {
    pub slot: u16,
    pub status: u32,
}

/// A received frame, as the device left it in the guest's memory.
#[derive(Debug, Clone)]
pub struct Received {
    pub slot: u16,
    /// GPA of the buffer.
    pub gpa: u64,
    pub status: u32,
    pub bytes: Vec<u8>,
}

/// The VF's queue pair and interrupt registers, mapped at the HPA the guest's EPT gives.
pub struct VfQueues {
    rx: VolatilePtr<'static, VfRxQueue>,
    tx: VolatilePtr<'static, VfTxQueue>,
    ivar: VolatilePtr<'static, VfIvar>,
    stats: VolatilePtr<'static, VfStats>,
    ints: VolatilePtr<'static, ExtInterrupts>,
    device: VolatilePtr<'static, DeviceControl>,
    mailbox: VolatilePtr<'static, VfMailbox>,
    message: VolatilePtr<'static, VfMessage>,
    /// The mailbox's read-to-clear bits seen and not consumed yet (as `igbvf` keeps them).
    seen: u32,
    pub ram: Ram,
    tx_next: u16,
    rx_next: u16,
}

impl VfQueues {
    /// Maps the VF's BAR0 at `bar0` (host-physical).
    pub fn open(mem: &Memory, bar0: u64, ram: Ram) -> Result<Self, String> {
        let map = mmio::map(mem, bar0, VF_BAR0).map_err(|e| format!("BAR0 {bar0:#x}: {e}"))?;
        let e = |e| format!("BAR0 {bar0:#x}: {e}");
        Ok(Self {
            rx: map.block::<VfRxQueue>(VF_RX_QUEUE).map_err(e)?,
            tx: map.block::<VfTxQueue>(VF_TX_QUEUE).map_err(e)?,
            ivar: map.block::<VfIvar>(VF_IVAR).map_err(e)?,
            stats: map.block::<VfStats>(VF_STATS).map_err(e)?,
            ints: map.block::<ExtInterrupts>(EXT_INTERRUPTS).map_err(e)?,
            device: map.block::<DeviceControl>(DEVICE_CONTROL).map_err(e)?,
            mailbox: map.block::<VfMailbox>(VF_MAILBOX).map_err(e)?,
            message: map.block::<VfMessage>(VF_MESSAGE).map_err(e)?,
            seen: 0,
            ram,
            tx_next: 0,
            rx_next: 0,
        })
    }

    /// V2PMAILBOX with the read-to-clear bits seen before.
    fn mailbox(&mut self) -> u32 {
        let m = self.mailbox;
        let v = map_field!(m.v2p).read() | self.seen;
        self.seen |= v & (V2P_PFSTS | V2P_PFACK | V2P_RSTD);
        v
    }

    /// Consumes a remembered read-to-clear bit.
    fn take(&mut self, bit: u32) -> bool {
        let set = self.mailbox() & bit != 0;
        self.seen &= !bit;
        set
    }

    /// The VF's reset as `igbvf` starts (its `reset_hw` and the mailbox's `write_posted` /
    /// `read_posted`, datasheet §7.8.2.9): CTRL.RST, wait for the reset indication (RSTI, RSTD)
    /// to clear, take the mailbox memory (VFU), write VF_RESET, post it (REQ); the PF's mailbox
    /// service answers ([`mailbox::poll`], what the scheduler's loop runs); then the PF's ACK and
    /// reply (PFACK, PFSTS), the reply's first three words, and the VF's ACK. Returns the mailbox
    /// value after the reset and the reply (word 0 the message id with ACK or NACK, words 1-2
    /// the MAC).
    pub fn reset_handshake(&mut self) -> Result<(u32, [u32; 3]), String> {
        let (device, m, msg) = (self.device, self.mailbox, self.message);
        map_field!(device.ctrl).update(|c| c | CTRL_RST);
        let first = map_field!(m.v2p).read();
        let mut v = first;
        let mut polls = 0;
        while v & (V2P_RSTI | V2P_RSTD) != 0 {
            polls += 1;
            if polls > RESET_POLLS {
                return Err(format!(
                    "the reset indication did not clear (V2PMAILBOX {v:#x})"
                ));
            }
            v = map_field!(m.v2p).read();
        }
        self.seen = 0;
        map_field!(m.v2p).write(V2P_VFU);
        if self.mailbox() & V2P_VFU == 0 {
            return Err(String::from("the PF holds the mailbox"));
        }
        map_field!(msg.word0).write(u32::from(conduit_igb_mbx::proto::VF_RESET));
        map_field!(m.v2p).write(V2P_REQ);
        mailbox::poll();
        if !self.take(V2P_PFACK) || !self.take(V2P_PFSTS) {
            return Err(format!(
                "VF_RESET not acknowledged and answered (V2PMAILBOX {:#x})",
                self.mailbox()
            ));
        }
        map_field!(m.v2p).write(V2P_VFU);
        let reply = [
            map_field!(msg.word0).read(),
            map_field!(msg.word1).read(),
            map_field!(msg.word2).read(),
        ];
        map_field!(m.v2p).write(V2P_ACK);
        Ok((first, reply))
    }

    fn rx_desc(slot: u16) -> u64 {
        RX_RING + u64::from(slot) * DESC
    }

    fn tx_desc(slot: u16) -> u64 {
        TX_RING + u64::from(slot) * DESC
    }

    /// Gives receive descriptor `slot` its buffer again (read format: packet address, header
    /// address 0).
    fn arm(&self, slot: u16) -> Result<(), String> {
        let mut d = [0u8; DESC as usize];
        d[..8].copy_from_slice(&(RX_BUFS + u64::from(slot) * BUF).to_le_bytes());
        self.ram.write(Self::rx_desc(slot), &d)
    }

    /// Rings and interrupts set up as `igbvf` does on open: both queues off, the rings'
    /// addresses and lengths, 2 KiB advanced one-buffer receive descriptors all armed but one,
    /// both queues on; receive queue 0 on MSI-X vector 0 (IVAR0), vector 0 auto-cleared (EIAC)
    /// and enabled (EIMS).
    pub fn start(&mut self) -> Result<(), String> {
        let (rx, tx, ivar, ints) = (self.rx, self.tx, self.ivar, self.ints);
        map_field!(rx.rxdctl).write(0);
        map_field!(tx.txdctl).write(0);
        for slot in 0..RING {
            self.arm(slot)?;
            self.ram.write(Self::tx_desc(slot), &[0u8; DESC as usize])?;
        }
        map_field!(rx.rdbal).write(RX_RING as u32);
        map_field!(rx.rdbah).write((RX_RING >> 32) as u32);
        map_field!(rx.rdlen).write(u32::from(RING) * DESC as u32);
        map_field!(rx.srrctl)
            .write((BUF >> SRRCTL_BSIZE_SHIFT) as u32 | SRRCTL_ADV_ONEBUF | SRRCTL_DROP_EN);
        map_field!(rx.rdh).write(0);
        map_field!(rx.rdt).write(0);
        map_field!(tx.tdbal).write(TX_RING as u32);
        map_field!(tx.tdbah).write((TX_RING >> 32) as u32);
        map_field!(tx.tdlen).write(u32::from(RING) * DESC as u32);
        map_field!(tx.tdh).write(0);
        map_field!(tx.tdt).write(0);
        map_field!(ivar.ivar0).write(IVAR_VALID);
        map_field!(ints.eicr).write(u32::MAX);
        map_field!(ints.eiac).write(1);
        map_field!(ints.eims).write(1);
        map_field!(tx.txdctl).write(QUEUE_ENABLE);
        map_field!(rx.rxdctl).write(QUEUE_ENABLE);
        map_field!(rx.rdt).write(u32::from(RING - 1));
        self.tx_next = 0;
        self.rx_next = 0;
        let (rxdctl, txdctl) = (map_field!(rx.rxdctl).read(), map_field!(tx.txdctl).read());
        if rxdctl & QUEUE_ENABLE == 0 || txdctl & QUEUE_ENABLE == 0 {
            return Err(format!(
                "the queues did not come on: RXDCTL {rxdctl:#x}, TXDCTL {txdctl:#x}"
            ));
        }
        Ok(())
    }

    /// Both queues off, every cause masked, the vector unmapped.
    pub fn stop(&self) {
        let (rx, tx, ivar, ints) = (self.rx, self.tx, self.ivar, self.ints);
        map_field!(rx.rxdctl).write(0);
        map_field!(tx.txdctl).write(0);
        map_field!(ints.eimc).write(u32::MAX);
        map_field!(ints.eicr).write(u32::MAX);
        map_field!(ivar.ivar0).write(0);
    }

    /// Waits up to `limit` TSC ticks for the link (the VF's STATUS.LU, the PF's link); returns
    /// STATUS as last read.
    pub fn await_link(&self, limit: u64) -> Result<u32, String> {
        let device = self.device;
        let mut status = 0;
        wait_with_interrupts(limit, || {
            status = map_field!(device.status).read();
            status & STATUS_LU != 0
        });
        if status & STATUS_LU == 0 {
            return Err(format!("the link did not come up: STATUS {status:#010x}"));
        }
        Ok(status)
    }

    /// (VFGPRC, VFGPTC): good packets received and transmitted.
    pub fn stats(&self) -> (u32, u32) {
        let s = self.stats;
        (map_field!(s.gprc).read(), map_field!(s.gptc).read())
    }

    /// Copies `frame` into the next transmit buffer and sends it.
    pub fn send(&mut self, frame: &[u8]) -> Result<Sent, String> {
        if frame.len() as u64 > BUF {
            return Err(format!(
                "a {}-byte frame does not fit a buffer",
                frame.len()
            ));
        }
        let gpa = TX_BUFS + u64::from(self.tx_next) * BUF;
        self.ram.write(gpa, frame)?;
        self.transmit(gpa, frame.len() as u16)
    }

    /// One advanced data descriptor for the `len` bytes at `buffer` (an IOVA of the guest's
    /// domain, whatever the driver put there), then TDT: the device fetches the buffer by DMA.
    /// Waits for the descriptor's write-back (DD).
    pub fn transmit(&mut self, buffer: u64, len: u16) -> Result<Sent, String> {
        let slot = self.tx_next;
        let len = u32::from(len);
        let mut d = [0u8; DESC as usize];
        d[..8].copy_from_slice(&buffer.to_le_bytes());
        let cmd = len | TXD_DTYP_DATA | TXD_DEXT | TXD_EOP | TXD_IFCS | TXD_RS;
        d[8..12].copy_from_slice(&cmd.to_le_bytes());
        d[12..16].copy_from_slice(&(len << TXD_PAYLEN_SHIFT).to_le_bytes());
        self.ram.write(Self::tx_desc(slot), &d)?;
        fence(Ordering::Release);
        self.tx_next = (slot + 1) % RING;
        let tx = self.tx;
        map_field!(tx.tdt).write(u32::from(self.tx_next));
        let status_at = Self::tx_desc(slot) + 12;
        let mut status = 0;
        wait_with_interrupts(ONE_INTERRUPT, || {
            status = self.ram.read_u32(status_at).unwrap_or(0);
            status & STAT_DD != 0
        });
        if status & STAT_DD == 0 {
            return Err(format!(
                "transmit descriptor {slot} (buffer {buffer:#x}, {len} bytes) not written back: \
                 status {status:#x}, TDH {}",
                map_field!(tx.tdh).read()
            ));
        }
        Ok(Sent { slot, status })
    }

    /// The next received frame, waiting up to `limit` TSC ticks (interrupts on) for the device
    /// to write it back; its descriptor is armed again and handed back (RDT).
    pub fn receive(&mut self, limit: u64) -> Result<Option<Received>, String> {
        let slot = self.rx_next;
        let status_at = Self::rx_desc(slot) + 8;
        let mut status = 0;
        wait_with_interrupts(limit, || {
            status = self.ram.read_u32(status_at).unwrap_or(0);
            status & STAT_DD != 0
        });
        if status & STAT_DD == 0 {
            return Ok(None);
        }
        let len = self.ram.read_u32(Self::rx_desc(slot) + 12)? & 0xffff;
        if u64::from(len) > BUF || status & STAT_EOP == 0 {
            return Err(format!(
                "receive descriptor {slot}: length {len}, status {status:#x} (one buffer per \
                 frame expected)"
            ));
        }
        let gpa = RX_BUFS + u64::from(slot) * BUF;
        let mut bytes = vec![0u8; len as usize];
        self.ram.read(gpa, &mut bytes)?;
        self.arm(slot)?;
        fence(Ordering::Release);
        let rx = self.rx;
        map_field!(rx.rdt).write(u32::from(slot));
        self.rx_next = (slot + 1) % RING;
        Ok(Some(Received {
            slot,
            gpa,
            status,
            bytes,
        }))
    }
}
