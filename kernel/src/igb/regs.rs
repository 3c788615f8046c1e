//! The 82576's interrupt registers as typed volatile blocks (Intel 82576 GbE Controller
//! Datasheet §7.3 "Interrupts", and the register descriptions of GPIE 0x01514, EICS 0x01520,
//! EIMS 0x01524, EIMC 0x01528, EIAC 0x0152C, EIAM 0x01530, EICR 0x01580).
//!
//! The extended interrupt block sits at the same BAR0 offsets in the PF and in every VF (a VF's
//! EICS/EIMS/EIMC/EIAC/EIAM/EICR are its VTEICS/VTEIMS/... registers: its own three MSI-X
//! causes in bits 2:0, datasheet §7.8 "Virtualization"). GPIE exists only in the PF: its
//! Multiple_MSIX bit (bit 4, `MSIX_MODE`) puts the whole device, VFs included, in MSI-X mode, one
//! vector per EICR bit; without it EICS writes of a VF raise nothing (QEMU 10's
//! `hw/net/igb_core.c` masks the causes with the legacy mask then).

use conduit_hw::memory::Memory;
use conduit_hw::memory::mmio::{self, MmioError};
use core::mem::offset_of;
use volatile::{VolatilePtr, map_field};

/// GPIE.Multiple_MSIX: MSI-X mode, one vector per EICR cause.
pub const GPIE_MSIX_MODE: u32 = 1 << 4;
/// Offset of GPIE in the PF's BAR0.
pub const GPIE: u64 = 0x1514;
/// Offset of [`ExtInterrupts`] in BAR0 (PF and VF).
pub const EXT_INTERRUPTS: u64 = 0x1520;
/// The smallest BAR0 that holds both blocks (a VF's BAR0 is 16 KiB, the PF's 128 KiB).
pub const MIN_BAR0: u64 = 0x2000;

/// EICS (cause set), EIMS (mask set), EIMC (mask clear), EIAC (auto clear), EIAM (auto mask),
/// EICR (cause read, write 1 to clear). A cause set in EICS that is enabled in EIMS and newly
/// raised in EICR sends its MSI-X vector; clearing EICR first makes every EICS write one
/// message.
#[repr(C)]
pub struct ExtInterrupts {
    pub eics: u32,
    pub eims: u32,
    pub eimc: u32,
    pub eiac: u32,
    pub eiam: u32,
    _r1534: [u32; 19],
    pub eicr: u32,
}

const _: () = {
    let base = EXT_INTERRUPTS as usize;
    assert!(offset_of!(ExtInterrupts, eics) == 0x1520 - base);
    assert!(offset_of!(ExtInterrupts, eims) == 0x1524 - base);
    assert!(offset_of!(ExtInterrupts, eimc) == 0x1528 - base);
    assert!(offset_of!(ExtInterrupts, eiac) == 0x152c - base);
    assert!(offset_of!(ExtInterrupts, eiam) == 0x1530 - base);
    assert!(offset_of!(ExtInterrupts, eicr) == 0x1580 - base);
    assert!(EXT_INTERRUPTS + core::mem::size_of::<ExtInterrupts>() as u64 <= MIN_BAR0);
};

/// General Purpose Interrupt Enable (PF only).
#[repr(C)]
pub struct Gpie {
    pub gpie: u32,
}

const _: () = assert!(GPIE + core::mem::size_of::<Gpie>() as u64 <= EXT_INTERRUPTS);

/// One function's extended interrupt registers, mapped.
#[cfg(feature = "selftest")]
#[derive(Clone, Copy)]
pub struct Interrupts {
    regs: VolatilePtr<'static, ExtInterrupts>,
}

#[cfg(feature = "selftest")]
impl Interrupts {
    /// Maps the block of the BAR0 at `bar0` (`len` bytes).
    pub fn map(mem: &Memory, bar0: u64, len: u64) -> Result<Self, MmioError> {
        let map = mmio::map(mem, bar0, len.min(MIN_BAR0))?;
        Ok(Self {
            regs: map.block::<ExtInterrupts>(EXT_INTERRUPTS)?,
        })
    }

    /// Enables cause `bit` (EIMS) with its EICR bit cleared.
    pub fn unmask(&self, bit: u32) {
        let regs = self.regs;
        map_field!(regs.eicr).write(1 << bit);
        map_field!(regs.eims).write(1 << bit);
    }

    /// One message on cause `bit`: EICR cleared (write 1), then EICS.
    pub fn raise(&self, bit: u32) {
        let regs = self.regs;
        map_field!(regs.eicr).write(1 << bit);
        map_field!(regs.eics).write(1 << bit);
    }

    /// Every cause masked (EIMC) and cleared (EICR).
    pub fn mask_all(&self) {
        let regs = self.regs;
        map_field!(regs.eimc).write(u32::MAX);
        map_field!(regs.eicr).write(u32::MAX);
    }

    /// EIMS as read now.
    pub fn enabled(&self) -> u32 {
        let regs = self.regs;
        map_field!(regs.eims).read()
    }
}

/// The PF's GPIE, mapped.
#[derive(Clone, Copy)]
pub struct PfGpie {
    reg: VolatilePtr<'static, Gpie>,
}

impl PfGpie {
    /// Maps GPIE of the PF's BAR0 at `bar0` (`len` bytes).
    pub fn map(mem: &Memory, bar0: u64, len: u64) -> Result<Self, MmioError> {
        let map = mmio::map(mem, bar0, len.min(MIN_BAR0))?;
        Ok(Self {
            reg: map.block::<Gpie>(GPIE)?,
        })
    }

    #[cfg(feature = "selftest")]
    pub fn read(&self) -> u32 {
        let reg = self.reg;
        map_field!(reg.gpie).read()
    }

    /// Sets or clears Multiple_MSIX; returns GPIE read back.
    pub fn set_msix_mode(&self, on: bool) -> u32 {
        let reg = self.reg;
        let gpie = map_field!(reg.gpie);
        let old = gpie.read();
        gpie.write(if on {
            old | GPIE_MSIX_MODE
        } else {
            old & !GPIE_MSIX_MODE
        });
        gpie.read()
    }
}

/// The size of the PF's register BAR (BAR0) that the switch setup maps: everything up to the
/// VMDq pool registers (VMOLR at 0x05AD0) and the receive-address table (0x05400).
pub const SWITCH_BAR0: u64 = 0x6000;

/// CTRL (0x00000) and STATUS (0x00008): device control and status.
#[repr(C)]
pub struct DeviceControl {
    pub ctrl: u32,
    _r0004: u32,
    pub status: u32,
}
/// Offset of [`DeviceControl`].
pub const DEVICE_CONTROL: u64 = 0x0000;
/// CTRL.SLU: set link up (the MAC follows the PHY's link).
pub const CTRL_SLU: u32 = 1 << 6;
/// STATUS.LU: link up.
pub const STATUS_LU: u32 = 1 << 1;

/// MDIC (0x00020): MDI control, the PF's window on its PHY's registers (IEEE 802.3 clause 22):
/// data in bits 15:0, PHY register in bits 20:16, PHY address in bits 25:21 (the internal PHY is
/// 1), opcode in bits 27:26 (01b write, 10b read), Ready in bit 28, Error in bit 30.
#[repr(C)]
pub struct Mdic {
    pub mdic: u32,
}
/// Offset of [`Mdic`].
pub const MDIC: u64 = 0x0020;
pub const MDIC_REG_SHIFT: u32 = 16;
pub const MDIC_PHY_SHIFT: u32 = 21;
pub const MDIC_INTERNAL_PHY: u32 = 1;
pub const MDIC_OP_WRITE: u32 = 1 << 26;
pub const MDIC_READY: u32 = 1 << 28;
pub const MDIC_ERROR: u32 = 1 << 30;
/// PHY register 0, the Basic Mode Control Register (IEEE 802.3 clause 22.2.4.1): 1000 Mb/s
/// (bit 6), full duplex (bit 8), restart autonegotiation (bit 9), autonegotiation on (bit 12).
pub const PHY_BMCR: u32 = 0;
pub const BMCR_RESTART_AUTONEG: u32 = (1 << 6) | (1 << 8) | (1 << 9) | (1 << 12);

/// RCTL (0x00100): receive control.
#[repr(C)]
pub struct RxControl {
    pub rctl: u32,
}
/// Offset of [`RxControl`].
pub const RX_CONTROL: u64 = 0x0100;
/// RCTL.RXEN: the receive unit on.
pub const RCTL_EN: u32 = 1 << 1;
/// RCTL.BAM: broadcasts accepted (per pool in VMDq mode: VMOLR.BAM decides, §7.8).
pub const RCTL_BAM: u32 = 1 << 15;
/// RCTL.SECRC: the Ethernet CRC stripped before the buffer is written.
pub const RCTL_SECRC: u32 = 1 << 26;

/// TCTL (0x00400): transmit control.
#[repr(C)]
pub struct TxControl {
    pub tctl: u32,
}
/// Offset of [`TxControl`].
pub const TX_CONTROL: u64 = 0x0400;
/// TCTL.EN: the transmit unit on.
pub const TCTL_EN: u32 = 1 << 1;
/// TCTL.PSP: short packets padded to 64 bytes.
pub const TCTL_PSP: u32 = 1 << 3;

/// VFRE (0x00C8C) and VFTE (0x00C90): receive and transmit enable of each pool (bit *n* = VF
/// *n*; the PF's pool is the default pool), datasheet §7.8 "Virtualization".
#[repr(C)]
pub struct PoolEnables {
    pub vfre: u32,
    pub vfte: u32,
}
/// Offset of [`PoolEnables`].
pub const POOL_ENABLES: u64 = 0x0C8C;

/// QDE (0x02408): queue drop enable, one bit per queue: a queue without free descriptors drops
/// its packet instead of holding up the shared packet buffer (datasheet §7.8, VMDq
/// receive).
#[repr(C)]
pub struct QueueDrop {
    pub qde: u32,
}
/// Offset of [`QueueDrop`].
pub const QUEUE_DROP: u64 = 0x2408;

/// DTXSWC (0x03500): the transmit switch. Bits 7:0 MAC anti-spoofing per pool, bits 15:8 VLAN
/// anti-spoofing per pool, bit 31 VMDq loopback (pool-to-pool switching), datasheet §7.8
/// (transmit switching).
#[repr(C)]
pub struct TxSwitch {
    pub dtxswc: u32,
}
/// Offset of [`TxSwitch`].
pub const TX_SWITCH: u64 = 0x3500;
/// DTXSWC: VMDq loopback enable.
pub const DTXSWC_LOOPBACK: u32 = 1 << 31;
/// DTXSWC: MAC anti-spoofing of pool `n` (0-7).
pub const fn dtxswc_mac_spoof(n: u32) -> u32 {
    1 << n
}
/// DTXSWC: VLAN anti-spoofing of pool `n` (0-7).
pub const fn dtxswc_vlan_spoof(n: u32) -> u32 {
    1 << (8 + n)
}

/// MRQC (0x05818) and VT_CTL (0x0581C): the multiple-receive-queues mode and the VMDq control
/// (datasheet §7.8, VMDq receive: pool selection, default pool, replication).
#[repr(C)]
pub struct PoolControl {
    pub mrqc: u32,
    pub vt_ctl: u32,
}
/// Offset of [`PoolControl`].
pub const POOL_CONTROL: u64 = 0x5818;
/// MRQC.Multiple_Receive_Queues_Enable = 011b: VMDq, one queue per pool (no RSS).
pub const MRQC_VMDQ: u32 = 0b011;
/// MRQC bits 2:0, the mode field.
pub const MRQC_MODE: u32 = 0b111;
/// VT_CTL bits 9:7: the default pool (receives unicast that matches no filter).
pub const VT_CTL_DEFAULT_POOL_SHIFT: u32 = 7;
pub const VT_CTL_DEFAULT_POOL: u32 = 0b111 << VT_CTL_DEFAULT_POOL_SHIFT;
/// VT_CTL.Dis_Def_Pool: unmatched unicast dropped instead of going to the default pool.
pub const VT_CTL_DISABLE_DEFAULT_POOL: u32 = 1 << 29;
/// VT_CTL.Rpl_En: broadcast and multicast replicated to every pool that accepts them.
pub const VT_CTL_REPLICATION: u32 = 1 << 30;

const _: () = {
    assert!(offset_of!(DeviceControl, status) == 0x0008);
    assert!(MDIC + 4 <= RX_CONTROL);
    assert!(POOL_CONTROL + core::mem::size_of::<PoolControl>() as u64 <= SWITCH_BAR0);
    assert!(TX_SWITCH < SWITCH_BAR0 && QUEUE_DROP < SWITCH_BAR0);
};

/// A VF's queue-0 receive registers in its BAR0 (the 82576 VF register map: RDBAL0 0x02800
/// through RXDCTL0 0x02828; the device maps them onto the PF's queue of the VF's pool).
#[cfg(feature = "selftest")]
#[repr(C)]
pub struct VfRxQueue {
    pub rdbal: u32,
    pub rdbah: u32,
    pub rdlen: u32,
    pub srrctl: u32,
    pub rdh: u32,
    pub rxctl: u32,
    pub rdt: u32,
    _r281c: [u32; 3],
    pub rxdctl: u32,
}
/// Offset of [`VfRxQueue`] in a VF's BAR0.
#[cfg(feature = "selftest")]
pub const VF_RX_QUEUE: u64 = 0x2800;

/// A VF's queue-0 transmit registers in its BAR0 (TDBAL0 0x03800 through TXDCTL0 0x03828).
#[cfg(feature = "selftest")]
#[repr(C)]
pub struct VfTxQueue {
    pub tdbal: u32,
    pub tdbah: u32,
    pub tdlen: u32,
    _r380c: u32,
    pub tdh: u32,
    pub txctl: u32,
    pub tdt: u32,
    _r381c: [u32; 3],
    pub txdctl: u32,
}
/// Offset of [`VfTxQueue`] in a VF's BAR0.
#[cfg(feature = "selftest")]
pub const VF_TX_QUEUE: u64 = 0x3800;

/// A VF's good-packet counters (VFGPRC 0x00F10 received, VFGPTC 0x00F14 transmitted).
#[cfg(feature = "selftest")]
#[repr(C)]
pub struct VfStats {
    pub gprc: u32,
    pub gptc: u32,
}
/// Offset of [`VfStats`] in a VF's BAR0.
#[cfg(feature = "selftest")]
pub const VF_STATS: u64 = 0x0F10;

/// A VF's IVAR0 (0x01700): bits 7:0 the MSI-X vector of receive queue 0, bits 15:8 that of
/// transmit queue 0, each with bit 7 of the byte = valid.
#[cfg(feature = "selftest")]
#[repr(C)]
pub struct VfIvar {
    pub ivar0: u32,
}
/// Offset of [`VfIvar`] in a VF's BAR0.
#[cfg(feature = "selftest")]
pub const VF_IVAR: u64 = 0x1700;
/// IVAR entry valid.
#[cfg(feature = "selftest")]
pub const IVAR_VALID: u32 = 0x80;
/// RXDCTL/TXDCTL.ENABLE: the queue on.
#[cfg(feature = "selftest")]
pub const QUEUE_ENABLE: u32 = 1 << 25;
/// SRRCTL.BSIZEPACKET (bits 6:0) counts 1 KiB units.
#[cfg(feature = "selftest")]
pub const SRRCTL_BSIZE_SHIFT: u32 = 10;
/// SRRCTL.DESCTYPE = 001b: advanced descriptors, one buffer.
#[cfg(feature = "selftest")]
pub const SRRCTL_ADV_ONEBUF: u32 = 1 << 25;
/// SRRCTL.Drop_En: drop rather than stall when the queue has no descriptors.
#[cfg(feature = "selftest")]
pub const SRRCTL_DROP_EN: u32 = 1 << 31;

#[cfg(feature = "selftest")]
const _: () = {
    assert!(core::mem::size_of::<VfMessage>() == 64);
    assert!(offset_of!(VfRxQueue, rdh) == 0x10);
    assert!(offset_of!(VfRxQueue, rdt) == 0x18);
    assert!(offset_of!(VfRxQueue, rxdctl) == 0x28);
    assert!(offset_of!(VfTxQueue, tdh) == 0x10);
    assert!(offset_of!(VfTxQueue, tdt) == 0x18);
    assert!(offset_of!(VfTxQueue, txdctl) == 0x28);
};

/// A VF's side of its mailbox: V2PMAILBOX (0x00C40) and the 16 shared words of VMBMEM
/// (0x00800), datasheet §7.8.2.9 (PF/VF mailbox).
#[cfg(feature = "selftest")]
#[repr(C)]
pub struct VfMailbox {
    pub v2p: u32,
}
/// Offset of [`VfMailbox`] in a VF's BAR0.
#[cfg(feature = "selftest")]
pub const VF_MAILBOX: u64 = 0x0C40;
#[cfg(feature = "selftest")]
#[repr(C)]
pub struct VfMessage {
    /// The message id and flags (a reply: the id with ACK or NACK).
    pub word0: u32,
    /// A reset reply's MAC: bytes 0-3, then bytes 4-5.
    pub word1: u32,
    pub word2: u32,
    _rest: [u32; 13],
}
/// Offset of [`VfMessage`] in a VF's BAR0.
#[cfg(feature = "selftest")]
pub const VF_MESSAGE: u64 = 0x0800;
/// V2PMAILBOX: REQ (post a message), ACK (the PF's message was read), VFU (the VF holds the
/// memory), PFSTS and PFACK (the PF wrote a message, read the VF's), RSTI (the PF is resetting),
/// RSTD (its reset is done); PFSTS, PFACK and RSTD clear when read.
#[cfg(feature = "selftest")]
pub const V2P_REQ: u32 = 1 << 0;
#[cfg(feature = "selftest")]
pub const V2P_ACK: u32 = 1 << 1;
#[cfg(feature = "selftest")]
pub const V2P_VFU: u32 = 1 << 2;
#[cfg(feature = "selftest")]
pub const V2P_PFSTS: u32 = 1 << 4;
#[cfg(feature = "selftest")]
pub const V2P_PFACK: u32 = 1 << 5;
#[cfg(feature = "selftest")]
pub const V2P_RSTI: u32 = 1 << 6;
#[cfg(feature = "selftest")]
pub const V2P_RSTD: u32 = 1 << 7;
/// A VF's CTRL.RST: its software reset (its queues and pool enables off, the PF told through
/// VFLRE).
#[cfg(feature = "selftest")]
pub const CTRL_RST: u32 = 1 << 26;

/// The PF registers of the mailbox service and of the VFs' receive filters, by BAR0 offset
/// (82576 datasheet chapter 8, register descriptions: CTRL_EXT 0x00018, VMBMEM 0x00800 + 0x40·n,
/// P2VMAILBOX 0x00C00 + 4·n, MBVFICR 0x00C80, VFLRE 0x00C88, VFRE 0x00C8C, VFTE 0x00C90,
/// MTA 0x05200, RAL/RAH 0x05400 + 8·n (n < 16) and 0x054E0 + 8·(n − 16), VFTA 0x05600, VMOLR
/// 0x05AD0 + 4·n, VLVF 0x05D00 + 4·n).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PfReg {
    CtrlExt,
    /// Word `word` of VF `vf`'s mailbox memory.
    Vmbmem {
        vf: u8,
        word: u8,
    },
    /// The PF's side of VF `vf`'s mailbox control.
    P2vMailbox(u8),
    /// VF mailbox interrupt causes: a message (bit n) or an acknowledgement (bit 16 + n) of VF n.
    Mbvficr,
    /// VF function-level reset events (bit n), write 1 to clear.
    Vflre,
    Vfre,
    Vfte,
    Mta(u8),
    Ral(u8),
    Rah(u8),
    Vfta(u8),
    Vmolr(u8),
    Vlvf(u8),
}

impl PfReg {
    pub const fn offset(self) -> u64 {
        match self {
            Self::CtrlExt => 0x18,
            Self::Vmbmem { vf, word } => 0x800 + 0x40 * vf as u64 + 4 * word as u64,
            Self::P2vMailbox(vf) => 0xc00 + 4 * vf as u64,
            Self::Mbvficr => 0xc80,
            Self::Vflre => 0xc88,
            Self::Vfre => 0xc8c,
            Self::Vfte => 0xc90,
            Self::Mta(i) => 0x5200 + 4 * i as u64,
            Self::Ral(n) if n < 16 => 0x5400 + 8 * n as u64,
            Self::Ral(n) => 0x54e0 + 8 * (n as u64 - 16),
            Self::Rah(n) if n < 16 => 0x5404 + 8 * n as u64,
            Self::Rah(n) => 0x54e4 + 8 * (n as u64 - 16),
            Self::Vfta(i) => 0x5600 + 4 * i as u64,
            Self::Vmolr(n) => 0x5ad0 + 4 * n as u64,
            Self::Vlvf(i) => 0x5d00 + 4 * i as u64,
        }
    }
}

/// The BAR0 span [`PfRegs`] maps (up to the last VLVF entry).
pub const PF_REGS_LEN: u64 = 0x6000;
/// CTRL_EXT.PFRSTD: the PF's reset is done; clears RSTI in every VF's mailbox (datasheet §7.8
/// "Virtualization"): the VF sees RSTD and may start its reset handshake.
pub const CTRL_EXT_PFRSTD: u32 = 1 << 14;
/// P2VMAILBOX: STS (a message for the VF is in the memory), ACK (the VF's message was read),
/// PFU (the PF holds the memory).
pub const P2V_STS: u32 = 1 << 0;
pub const P2V_ACK: u32 = 1 << 1;
pub const P2V_PFU: u32 = 1 << 3;
/// RAH: address valid (bit 31), pool select (bits 25:18, one per pool).
pub const RAH_AV: u32 = 1 << 31;
pub const RAH_POOL_SHIFT: u32 = 18;

const _: () = {
    assert!(PfReg::Ral(15).offset() == 0x5478);
    assert!(PfReg::Ral(16).offset() == 0x54e0);
    assert!(PfReg::Rah(23).offset() == 0x551c);
    assert!(PfReg::Vmbmem { vf: 7, word: 15 }.offset() == 0x9fc);
    assert!(PfReg::Vlvf(31).offset() + 4 <= PF_REGS_LEN);
    assert!(PfReg::Vfta(127).offset() == 0x57fc);
    assert!(PfReg::Mta(127).offset() == 0x53fc);
};

/// A PF's registers of the mailbox service, mapped: every access is one aligned 32-bit volatile
/// access through a block the mapping checks.
#[derive(Debug, Clone, Copy)]
pub struct PfRegs {
    map: mmio::Mmio,
}

impl PfRegs {
    /// Maps the first [`PF_REGS_LEN`] bytes of the PF's BAR0 at `bar0` (`len` bytes).
    pub fn map(mem: &Memory, bar0: u64, len: u64) -> Result<Self, MmioError> {
        if len < PF_REGS_LEN {
            return Err(MmioError::BlockOutside {
                offset: 0,
                size: PF_REGS_LEN,
                len,
            });
        }
        Ok(Self {
            map: mmio::map(mem, bar0, PF_REGS_LEN)?,
        })
    }

    fn reg(&self, r: PfReg) -> Result<VolatilePtr<'static, u32>, MmioError> {
        self.map.block::<u32>(r.offset())
    }

    pub fn read(&self, r: PfReg) -> Result<u32, MmioError> {
        Ok(self.reg(r)?.read())
    }

    pub fn write(&self, r: PfReg, value: u32) -> Result<(), MmioError> {
        self.reg(r)?.write(value);
        Ok(())
    }
}
