//! Taking a remapping unit over from firmware, as a sequence of register accesses over a small
//! [`Registers`] trait (the kernel implements it on the unit's typed MMIO blocks; host tests
//! drive a fake unit).
//!
//! Order (the one Linux's intel-iommu driver follows; register semantics from VT-d spec
//! §10.4.4 Global Command, §10.4.5 Global Status, §10.4.9 Fault Status, §10.4.14 Fault Recording,
//! §10.4.16-§10.4.20 Protected Memory registers):
//! 1. [`clear_faults`]: every valid fault record is freed (F written 1) and the RW1C error bits of
//!    FSTS (PFO, AFO, APF, IQE, ICE, ITE) are cleared, so that a stale IQE left by firmware does
//!    not fail the first queued invalidation and old faults are not reported as ours.
//! 2. [`disable_firmware_state`]: what firmware left enabled is turned off one GCMD bit at a
//!    time, each confirmed in GSTS with a bounded wait: translation (TE) first, then interrupt
//!    remapping (IRE), then queued invalidation (QIE) last, since the other two invalidate
//!    through the queue; before QIE is cleared the queue is given a bounded time to drain
//!    (IQH = IQT).
//! 3. The normal bring-up, each step one [`Command`]: root table ([`Command::SetRootTable`]),
//!    queued invalidation, interrupt remapping, translation.
//! 4. [`disable_pmr`], once translation is on: PMEN.EPM cleared and PMEN.PRS awaited (§10.4.16):
//!    from then on the remapping tables alone decide what DMA reaches.
//!
//! Every GCMD write changes exactly one command bit and writes the other persistent enables back
//! as GSTS reports them (§10.4.4); one-shot bits (SRTP, SIRTP, WBF) are written only in their own
//! command.

use crate::Cap;
use crate::fault::VALID;
use core::fmt;

/// A 32-bit register of the fixed block (§10.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reg32 {
    /// 0x18 Global Command.
    Gcmd,
    /// 0x1c Global Status.
    Gsts,
    /// 0x34 Fault Status.
    Fsts,
    /// 0x38 Fault Event Control.
    Fectl,
    /// 0x3c Fault Event Data.
    Fedata,
    /// 0x40 Fault Event Address.
    Feaddr,
    /// 0x44 Fault Event Upper Address.
    Feuaddr,
    /// 0x64 Protected Memory Enable.
    Pmen,
    /// 0x68 Protected Low-Memory Base.
    Plmbase,
    /// 0x6c Protected Low-Memory Limit.
    Plmlimit,
}

impl Reg32 {
    /// Offset in the register block.
    pub const fn offset(self) -> u64 {
        match self {
            Self::Gcmd => 0x18,
            Self::Gsts => 0x1c,
            Self::Fsts => 0x34,
            Self::Fectl => 0x38,
            Self::Fedata => 0x3c,
            Self::Feaddr => 0x40,
            Self::Feuaddr => 0x44,
            Self::Pmen => 0x64,
            Self::Plmbase => 0x68,
            Self::Plmlimit => 0x6c,
        }
    }
}

/// A 64-bit register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reg64 {
    /// 0x08 Capability.
    Cap,
    /// 0x20 Root Table Address.
    Rtaddr,
    /// 0x70 Protected High-Memory Base.
    Phmbase,
    /// 0x78 Protected High-Memory Limit.
    Phmlimit,
    /// 0x80 Invalidation Queue Head.
    Iqh,
    /// 0x88 Invalidation Queue Tail.
    Iqt,
    /// 0x90 Invalidation Queue Address.
    Iqa,
    /// 0xb8 Interrupt Remapping Table Address.
    Irta,
    /// The upper qword (bits 127:64, F in bit 127) of fault-recording register `n`, at
    /// CAP.FRO × 16 + n × 16 + 8 (§10.4.14).
    FaultHigh(u16),
}

impl Reg64 {
    /// Offset in the register block; fault records are placed by `cap`.
    pub const fn offset(self, cap: Cap) -> u64 {
        match self {
            Self::Cap => 0x08,
            Self::Rtaddr => 0x20,
            Self::Phmbase => 0x70,
            Self::Phmlimit => 0x78,
            Self::Iqh => 0x80,
            Self::Iqt => 0x88,
            Self::Iqa => 0x90,
            Self::Irta => 0xb8,
            Self::FaultHigh(n) => cap.fault_record_offset() + n as u64 * 16 + 8,
        }
    }
}

/// Access to one unit's registers.
pub trait Registers {
    fn read32(&mut self, reg: Reg32) -> u32;
    fn write32(&mut self, reg: Reg32, value: u32);
    fn read64(&mut self, reg: Reg64) -> u64;
    fn write64(&mut self, reg: Reg64, value: u64);
}

/// A bounded wait: calls `done` until it returns true or the implementation's deadline passes;
/// returns the last answer.
pub trait Poll {
    fn until(&mut self, done: &mut dyn FnMut() -> bool) -> bool;
}

/// Global Command / Status bits (§10.4.4, §10.4.5).
pub mod global {
    /// Translation Enable.
    pub const TE: u32 = 1 << 31;
    /// Set Root Table Pointer (one-shot) / Root Table Pointer Status.
    pub const SRTP: u32 = 1 << 30;
    /// Enable Advanced Fault Logging.
    pub const EAFL: u32 = 1 << 28;
    /// Write Buffer Flush (one-shot; status set while the flush runs).
    pub const WBF: u32 = 1 << 27;
    /// Queued Invalidation Enable.
    pub const QIE: u32 = 1 << 26;
    /// Interrupt Remapping Enable.
    pub const IRE: u32 = crate::interrupt::global::IRE;
    /// Set Interrupt Remap Table Pointer (one-shot) / its status.
    pub const SIRTP: u32 = crate::interrupt::global::SIRTP;
    /// Compatibility Format Interrupt.
    pub const CFI: u32 = crate::interrupt::global::CFI;
    /// The enables software writes back unchanged with every command.
    pub const PERSISTENT: u32 = TE | EAFL | QIE | IRE | CFI;
}

/// Fault Status bits (§10.4.9).
pub mod fsts {
    /// Primary Fault Overflow (RW1C).
    pub const PFO: u32 = 1 << 0;
    /// Primary Pending Fault (RO: some record has F set).
    pub const PPF: u32 = 1 << 1;
    /// Advanced Fault Overflow (RW1C).
    pub const AFO: u32 = 1 << 2;
    /// Advanced Pending Fault (RW1C).
    pub const APF: u32 = 1 << 3;
    /// Invalidation Queue Error (RW1C).
    pub const IQE: u32 = 1 << 4;
    /// Invalidation Completion Error (RW1C).
    pub const ICE: u32 = 1 << 5;
    /// Invalidation Time-out Error (RW1C).
    pub const ITE: u32 = 1 << 6;
    /// Every RW1C bit.
    pub const ERRORS: u32 = PFO | AFO | APF | IQE | ICE | ITE;
}

/// Protected Memory Enable bits (§10.4.16).
pub mod pmen {
    /// Enable Protected Memory.
    pub const EPM: u32 = 1 << 31;
    /// Protected Region Status (RO).
    pub const PRS: u32 = 1 << 0;
}

/// One global command: exactly one GCMD bit changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Translation(bool),
    QueuedInvalidation(bool),
    InterruptRemapping(bool),
    /// Compatibility-format interrupts pass (true) or are blocked (false).
    CompatibilityFormat(bool),
    /// Latch RTADDR (one-shot; GSTS.RTPS sets).
    SetRootTable,
    /// Latch IRTA (one-shot; GSTS.IRTPS sets).
    SetInterruptTable,
    /// Flush the write buffer (one-shot; GSTS.WBFS clears when done).
    FlushWriteBuffer,
}

impl Command {
    /// The GCMD/GSTS bit, and the GSTS value that means "done".
    pub const fn bit(self) -> (u32, bool) {
        match self {
            Self::Translation(on) => (global::TE, on),
            Self::QueuedInvalidation(on) => (global::QIE, on),
            Self::InterruptRemapping(on) => (global::IRE, on),
            Self::CompatibilityFormat(on) => (global::CFI, on),
            Self::SetRootTable => (global::SRTP, true),
            Self::SetInterruptTable => (global::SIRTP, true),
            Self::FlushWriteBuffer => (global::WBF, false),
        }
    }

    /// The GCMD value for this command given the current GSTS.
    pub const fn value(self, gsts: u32) -> u32 {
        let keep = gsts & global::PERSISTENT;
        let (bit, on) = self.bit();
        match self {
            Self::SetRootTable | Self::SetInterruptTable | Self::FlushWriteBuffer => keep | bit,
            _ if on => keep | bit,
            _ => keep & !bit,
        }
    }

    /// What the command does, for errors and logs.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Translation(true) => "translation enable (GSTS.TES)",
            Self::Translation(false) => "translation disable (GSTS.TES)",
            Self::QueuedInvalidation(true) => "queued invalidation enable (GSTS.QIES)",
            Self::QueuedInvalidation(false) => "queued invalidation disable (GSTS.QIES)",
            Self::InterruptRemapping(true) => "interrupt remapping enable (GSTS.IRES)",
            Self::InterruptRemapping(false) => "interrupt remapping disable (GSTS.IRES)",
            Self::CompatibilityFormat(_) => "compatibility format interrupt (GSTS.CFIS)",
            Self::SetRootTable => "root table pointer (GSTS.RTPS)",
            Self::SetInterruptTable => "interrupt remapping table pointer (GSTS.IRTPS)",
            Self::FlushWriteBuffer => "write buffer flush (GSTS.WBFS)",
        }
    }
}

/// Why a takeover step failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakeoverError {
    /// GSTS did not follow a global command within the wait's deadline.
    CommandTimeout { command: Command, gsts: u32 },
    /// PMEN.PRS stayed set after EPM was cleared.
    PmrTimeout { pmen: u32 },
}

impl fmt::Display for TakeoverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CommandTimeout { command, gsts } => write!(
                f,
                "timed out waiting for {} (GSTS {gsts:#010x})",
                command.name()
            ),
            Self::PmrTimeout { pmen } => write!(
                f,
                "timed out waiting for the protected memory regions to turn off (PMEN \
                 {pmen:#010x}, PRS still set)"
            ),
        }
    }
}

/// Carries out one global command and waits (bounded) for GSTS to confirm it. Returns GSTS.
pub fn command<R: Registers, P: Poll>(
    regs: &mut R,
    poll: &mut P,
    command: Command,
) -> Result<u32, TakeoverError> {
    let gsts = regs.read32(Reg32::Gsts);
    regs.write32(Reg32::Gcmd, command.value(gsts));
    let (bit, expect) = command.bit();
    let done = poll.until(&mut || (regs.read32(Reg32::Gsts) & bit != 0) == expect);
    let gsts = regs.read32(Reg32::Gsts);
    if done {
        Ok(gsts)
    } else {
        Err(TakeoverError::CommandTimeout { command, gsts })
    }
}

/// What [`clear_faults`] found and cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClearedFaults {
    /// Valid fault records freed.
    pub records: u32,
    /// FSTS as firmware left it.
    pub fsts: u32,
}

/// Frees every valid fault record (NFR + 1 of them) and clears FSTS's RW1C error bits.
pub fn clear_faults<R: Registers>(regs: &mut R, cap: Cap) -> ClearedFaults {
    let fsts = regs.read32(Reg32::Fsts);
    let mut records = 0;
    for n in 0..=u16::from(cap.nfr()) {
        let reg = Reg64::FaultHigh(n);
        if regs.read64(reg) & VALID != 0 {
            regs.write64(reg, VALID);
            records += 1;
        }
    }
    regs.write32(Reg32::Fsts, fsts::ERRORS);
    ClearedFaults { records, fsts }
}

/// What firmware had left enabled and [`disable_firmware_state`] turned off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Disabled {
    pub translation: bool,
    pub interrupt_remapping: bool,
    pub queued_invalidation: bool,
    /// The queue had not drained (IQH != IQT) when it was disabled anyway.
    pub queue_undrained: bool,
}

/// Turns off translation, interrupt remapping and queued invalidation where firmware left them
/// on, in that order, one command at a time.
pub fn disable_firmware_state<R: Registers, P: Poll>(
    regs: &mut R,
    poll: &mut P,
) -> Result<Disabled, TakeoverError> {
    let mut out = Disabled::default();
    if regs.read32(Reg32::Gsts) & global::TE != 0 {
        command(regs, poll, Command::Translation(false))?;
        out.translation = true;
    }
    if regs.read32(Reg32::Gsts) & global::IRE != 0 {
        command(regs, poll, Command::InterruptRemapping(false))?;
        out.interrupt_remapping = true;
    }
    if regs.read32(Reg32::Gsts) & global::QIE != 0 {
        out.queue_undrained =
            !poll.until(&mut || regs.read64(Reg64::Iqh) == regs.read64(Reg64::Iqt));
        command(regs, poll, Command::QueuedInvalidation(false))?;
        out.queued_invalidation = true;
    }
    Ok(out)
}

/// What [`take_over`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TakenOver {
    pub cleared: ClearedFaults,
    pub disabled: Disabled,
}

/// Steps 1 and 2 in order: [`clear_faults`] before any global command, then
/// [`disable_firmware_state`].
pub fn take_over<R: Registers, P: Poll>(
    regs: &mut R,
    poll: &mut P,
    cap: Cap,
) -> Result<TakenOver, TakeoverError> {
    let cleared = clear_faults(regs, cap);
    let disabled = disable_firmware_state(regs, poll)?;
    Ok(TakenOver { cleared, disabled })
}

/// Latches `root` (legacy mode) as the root table.
pub fn set_root_table<R: Registers, P: Poll>(
    regs: &mut R,
    poll: &mut P,
    root: u64,
) -> Result<u32, TakeoverError> {
    regs.write64(Reg64::Rtaddr, root);
    command(regs, poll, Command::SetRootTable)
}

/// Enables queued invalidation on the queue `iqa` (IQA_REG value) with the tail at 0.
pub fn enable_queue<R: Registers, P: Poll>(
    regs: &mut R,
    poll: &mut P,
    iqa: u64,
) -> Result<u32, TakeoverError> {
    regs.write64(Reg64::Iqt, 0);
    regs.write64(Reg64::Iqa, iqa);
    command(regs, poll, Command::QueuedInvalidation(true))
}

/// The protected memory regions as firmware left them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pmr {
    /// CAP.PLMR = CAP.PHMR = 0: the unit has none.
    Absent,
    /// Supported but not enabled.
    Off,
    /// Were enabled, now disabled: the low region (PLMBASE, PLMLIMIT) and high region
    /// (PHMBASE, PHMLIMIT) as they were programmed (zero where the unit lacks one).
    Disabled { low: (u32, u32), high: (u64, u64) },
}

/// Disables the protected memory regions (PMEN.EPM = 0, wait for PRS = 0). Call once
/// translation is on, so that no DMA window opens between the two.
pub fn disable_pmr<R: Registers, P: Poll>(
    regs: &mut R,
    poll: &mut P,
    cap: Cap,
) -> Result<Pmr, TakeoverError> {
    if !cap.plmr() && !cap.phmr() {
        return Ok(Pmr::Absent);
    }
    let value = regs.read32(Reg32::Pmen);
    if value & (pmen::EPM | pmen::PRS) == 0 {
        return Ok(Pmr::Off);
    }
    let low = if cap.plmr() {
        (regs.read32(Reg32::Plmbase), regs.read32(Reg32::Plmlimit))
    } else {
        (0, 0)
    };
    let high = if cap.phmr() {
        (regs.read64(Reg64::Phmbase), regs.read64(Reg64::Phmlimit))
    } else {
        (0, 0)
    };
    regs.write32(Reg32::Pmen, value & !pmen::EPM);
    if poll.until(&mut || regs.read32(Reg32::Pmen) & pmen::PRS == 0) {
        Ok(Pmr::Disabled { low, high })
    } else {
        Err(TakeoverError::PmrTimeout {
            pmen: regs.read32(Reg32::Pmen),
        })
    }
}

/// The fault event interrupt's message (§5.1.6 compatibility format, §10.4.11-§10.4.13): FEDATA
/// holds the vector; FEADDR 0xfee0_0000 with destination ID bits 7:0 in address bits 19:12;
/// FEUADDR carries destination ID bits 31:8 in its bits 31:8. FEUADDR is implemented only by
/// units with ECAP.EIM = 1 (extended interrupt mode, x2APIC destinations; §10.4.13): without it
/// the message reaches APIC IDs 0-255 only, and a higher ID cannot be addressed at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultEventMsi {
    pub data: u32,
    pub address: u32,
    pub upper_address: u32,
}

/// Why a fault event message cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultEventError {
    /// The destination APIC ID is above 255 and the unit has no FEUADDR (ECAP.EIM = 0).
    DestinationNeedsEim {
        /// The destination.
        apic_id: u32,
    },
}

impl fmt::Display for FaultEventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DestinationNeedsEim { apic_id } => write!(
                f,
                "APIC ID {apic_id} is above 255 and the unit has ECAP.EIM = 0 (no FEUADDR for \
                 destination bits 31:8)"
            ),
        }
    }
}

impl FaultEventMsi {
    /// The message for `vector` on the CPU with APIC ID `apic_id` (physical destination mode,
    /// fixed delivery, edge), for a unit with (`eim`) or without ECAP.EIM.
    pub const fn new(apic_id: u32, vector: u8, eim: bool) -> Result<Self, FaultEventError> {
        if apic_id > 0xff && !eim {
            return Err(FaultEventError::DestinationNeedsEim { apic_id });
        }
        Ok(Self {
            data: vector as u32,
            address: 0xfee0_0000 | ((apic_id & 0xff) << 12),
            upper_address: apic_id & 0xffff_ff00,
        })
    }

    /// The destination APIC ID the message addresses (inverse of [`FaultEventMsi::new`]).
    pub const fn destination(self) -> u32 {
        (self.upper_address & 0xffff_ff00) | ((self.address >> 12) & 0xff)
    }

    /// Writes the message; FECTL is left to the caller (unmasking comes last).
    pub fn program<R: Registers>(self, regs: &mut R) {
        regs.write32(Reg32::Fedata, self.data);
        regs.write32(Reg32::Feaddr, self.address);
        regs.write32(Reg32::Feuaddr, self.upper_address);
    }
}

#[cfg(test)]
#[path = "takeover_tests.rs"]
mod tests;
