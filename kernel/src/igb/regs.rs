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
