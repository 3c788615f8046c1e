//! Interrupt remapping hardware (VT-d ch. 5): the Interrupt Remapping Table in memory, its
//! enable sequence on a unit, and interrupt-entry-cache invalidation.
//!
//! Enable sequence (§5.1, §10.4.4, §10.4.29, §6.5.2.5): interrupt remapping off (if firmware left
//! it on); IRTA_REG = table address | EIME | S; GCMD.SIRTP, wait for GSTS.IRTPS; invalidate the
//! interrupt entry cache globally through the invalidation queue (the only interface for it,
//! hence queued invalidation is a precondition); GCMD.IRE with CFI clear, wait for GSTS.IRES, and
//! check GSTS.CFIS = 0: compatibility-format interrupts are then blocked (fault 0x25) instead of
//! bypassing the table. Every GCMD write keeps the other persistent enables as GSTS reports them.
//!
//! IRTE updates (§9.10, §6.5.2.5): entries are 128 bits. A not-present entry is made present high
//! qword first, then the low qword that holds P; an entry is made not present low qword first. A
//! live entry changed into another live entry is written with one 128-bit atomic store (LOCK
//! CMPXCHG16B), so the unit sees the old entry or the new one and no interrupt is lost; only a
//! CPU without CMPXCHG16B passes through not-present instead (a request in that window faults).
//! Each update is flushed from the CPU caches where the unit's walks are not coherent (ECAP.C =
//! 0); the caller then invalidates the entry in every unit's interrupt entry cache.

use super::regs::global;
use super::unit::RemappingUnit;
use super::{Method, VtdError, qi::Descriptor};
use crate::memory::{Memory, PhysAddr, PhysWindow};
use conduit_irq::{ApicMode, IRTE_BYTES, IrtSize, Irta, Irte, raw_present};
use conduit_paging::PhysMemory;
use conduit_vtd::IecInvalidation;
use conduit_vtd::takeover::Command;
use volatile::map_field;

/// The interrupt remapping table: `size.entries()` IRTEs in contiguous, size-aligned memory.
pub struct Table {
    base: u64,
    size: IrtSize,
    mode: ApicMode,
    window: PhysWindow,
    /// Live-to-live updates in one 128-bit store (CMPXCHG16B available).
    atomic: bool,
}

impl Table {
    /// Allocates a zeroed table of `size` (every entry not present) whose entries carry
    /// destinations of `mode`. `coherent` is false when some unit's walks do not snoop.
    pub fn new(
        mem: &Memory,
        size: IrtSize,
        mode: ApicMode,
        coherent: bool,
    ) -> Result<Self, VtdError> {
        let frames = (size.bytes() as u64).div_ceil(4096) as usize;
        let align = size.alignment() / 4096;
        let base = mem
            .frames
            .lock()
            .allocate_contiguous(frames, align)
            .ok_or(VtdError::OutOfFrames)?;
        let mut window = PhysWindow::new(mem, coherent);
        for i in 0..frames as u64 {
            window.zero_frame(PhysAddr(base.0 + i * 4096));
        }
        window.flush(base.0, size.bytes() as u64);
        Ok(Self {
            base: base.0,
            size,
            mode,
            window,
            atomic: PhysWindow::has_store_128(),
        })
    }

    /// Physical address.
    pub fn base(&self) -> u64 {
        self.base
    }

    pub fn size(&self) -> IrtSize {
        self.size
    }

    /// Whether a live entry changed into another live one is written in one 128-bit store.
    pub fn atomic_updates(&self) -> bool {
        self.atomic
    }

    /// The destination width of every entry (IRTA_REG.EIME).
    pub fn mode(&self) -> ApicMode {
        self.mode
    }

    /// The IRTA_REG fields for this table.
    pub fn irta(&self) -> Irta {
        Irta {
            table: self.base,
            mode: self.mode,
            size: self.size,
        }
    }

    fn entry_addr(&self, index: u16) -> Option<u64> {
        (usize::from(index) < self.size.entries())
            .then(|| self.base + u64::from(index) * IRTE_BYTES as u64)
    }

    /// The raw entry at `index` (low qword first), `None` beyond the table.
    pub fn read(&self, index: u16) -> Option<[u64; 2]> {
        let at = self.entry_addr(index)?;
        Some([self.window.read_entry(at), self.window.read_entry(at + 8)])
    }

    /// Writes `irte` at `index` following the update rules of the module documentation. The
    /// caller invalidates the interrupt entry cache afterwards.
    pub fn write(&mut self, index: u16, irte: &Irte) -> Result<(), VtdError> {
        let at = self.entry_addr(index).ok_or(VtdError::Unsupported {
            what: "an interrupt index beyond the table",
        })?;
        let [lo, hi] = irte.encode();
        let old_present = raw_present([self.window.read_entry(at), 0]);
        if old_present && irte.is_present() && self.atomic {
            self.window.store_128(at, [lo, hi]);
            self.window.flush(at, 16);
            return Ok(());
        }
        if old_present {
            self.window.write_entry(at, lo & !1);
            self.window.flush(at, 16);
        }
        if irte.is_present() {
            self.window.write_entry(at + 8, hi);
            self.window.flush(at, 16);
            self.window.write_entry(at, lo);
        } else {
            self.window.write_entry(at, lo);
            self.window.write_entry(at + 8, hi);
        }
        self.window.flush(at, 16);
        Ok(())
    }
}

/// What [`RemappingUnit::enable_interrupt_remapping`] left in the unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enabled {
    /// The IRTA_REG value programmed.
    pub irta: u64,
    /// GSTS after IRE.
    pub gsts: u32,
}

impl RemappingUnit {
    /// Points the unit at `table` and turns interrupt remapping on with compatibility-format
    /// interrupts blocked (see the module documentation for the order).
    pub fn enable_interrupt_remapping(&mut self, table: &Table) -> Result<Enabled, VtdError> {
        if !self.ecap().ir() {
            return Err(VtdError::Unsupported {
                what: "interrupt remapping (ECAP.IR = 0)",
            });
        }
        if table.mode() == ApicMode::X2Apic && !self.ecap().eim() {
            return Err(VtdError::Unsupported {
                what: "x2APIC destinations (ECAP.EIM = 0)",
            });
        }
        if self.queue_mut().is_none() {
            return Err(VtdError::Unsupported {
                what: "interrupt-entry-cache invalidation without queued invalidation",
            });
        }
        if self.global_status() & global::IRE != 0 {
            log::warn!(
                "vtd:   firmware left interrupt remapping enabled: disabling it to take over"
            );
            self.command(Command::InterruptRemapping(false))?;
        }
        let irta = table.irta().encode().map_err(|_| VtdError::Unsupported {
            what: "an interrupt remapping table that is not 4-KiB aligned",
        })?;
        let regs = self.regs();
        map_field!(regs.irta).write(irta);
        self.command(Command::SetInterruptTable)?;
        self.invalidate_interrupt_entries(IecInvalidation::Global)?;
        if self.global_status() & global::CFI != 0 {
            self.command(Command::CompatibilityFormat(false))?;
        }
        self.command(Command::InterruptRemapping(true))?;
        let gsts = map_field!(regs.gsts).read();
        if gsts & global::CFI != 0 {
            return Err(VtdError::Status {
                what: "compatibility-format interrupts still pass (GSTS.CFIS = 1)",
                gsts,
            });
        }
        Ok(Enabled { irta, gsts })
    }

    /// Turns interrupt remapping off again (when another unit could not enable it, no unit keeps
    /// using the shared table).
    pub fn disable_interrupt_remapping(&mut self) -> Result<(), VtdError> {
        self.command(Command::InterruptRemapping(false)).map(|_| ())
    }

    /// Drops cached interrupt entries through the invalidation queue (§6.5.2.5); an
    /// index-selective request beyond ECAP.MHMV becomes global.
    pub fn invalidate_interrupt_entries(
        &mut self,
        inv: IecInvalidation,
    ) -> Result<Method, VtdError> {
        let mhmv = self.ecap().mhmv();
        let inv = match inv {
            IecInvalidation::Index { mask, .. } if mask > mhmv => IecInvalidation::Global,
            other => other,
        };
        let regs = self.regs();
        let queue = self.queue_mut().ok_or(VtdError::Unsupported {
            what: "interrupt-entry-cache invalidation without queued invalidation",
        })?;
        let d: Descriptor = inv.descriptor();
        queue.submit(regs, &[d])?;
        Ok(Method::Queued)
    }
}
