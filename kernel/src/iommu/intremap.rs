//! Interrupt remapping on every unit: bring-up (with the choice of the local APIC's mode), one
//! interrupt remapping table per PCI segment, shared by that segment's units, and IRTE updates
//! with interrupt-entry-cache invalidation on those units. Which entry belongs to whom is
//! `crate::irq`'s business; this module only writes what it is given, into the table of the
//! segment it is given.
//!
//! Why per segment: an IRTE's source validation (VT-d spec §9.10, SVT/SQ/SID) compares a 16-bit
//! source-id without segment, so in one table shared by every unit the entry verifying
//! 0001:02:00.0 would accept 0000:02:00.0's requests as well. Each entry is written only into the
//! table of the units serving its function's segment (`conduit_irq::SegmentTables`); the other
//! tables hold nothing at that index (IRT indices are allocated over all tables together), so
//! the namesake on another segment hits a not-present entry and is blocked.
//!
//! The DMAR's flags (VT-d spec §8.1) are honoured: without INTR_REMAP interrupt remapping is not
//! used at all. The APIC mode follows the hardware: x2APIC when the CPU has it and every unit has
//! ECAP.EIM = 1 (the table then carries 32-bit destinations, IRTA_REG.EIME = 1); xAPIC otherwise
//! (8-bit destinations in IRTE bits 47:40). With X2APIC_OPT_OUT Conduit does not switch the
//! local APIC to x2APIC mode; if firmware already left it in x2APIC mode it stays there (leaving
//! x2APIC mode needs the APIC disabled) and the table uses 32-bit destinations as the mode
//! requires.

use super::{IommuError, STATE, State};
use alloc::string::String;
use alloc::vec::Vec;
use conduit_dmar::{Dmar, DmarFlags, PciBridges};
use conduit_hw::apic::{self, ApicError};
use conduit_hw::memory::Memory;
use conduit_hw::vtd::RemappingUnit;
use conduit_hw::vtd::ir::Table;
use conduit_irq::{ApicMode, IrtSize, Irte, SegmentTables};
use conduit_pci::PciAddress;
use conduit_vtd::IecInvalidation;
use log::{error, info, warn};

/// Entries of each interrupt remapping table (IRTA_REG.S = 7).
pub const IRT_ENTRIES: usize = 256;

/// The interrupt remapping tables, one per segment with units (as many as the DRHDs name).
pub(super) type Tables = SegmentTables<Table>;

/// What bring-up left.
pub(super) struct BringUp {
    /// Empty when interrupt remapping is off.
    pub tables: Tables,
    /// Why interrupt remapping is off.
    pub off: Option<String>,
}

fn unavailable(units: &[RemappingUnit], register_only: bool, flags: DmarFlags) -> Option<String> {
    if !flags.intr_remap() {
        return Some(String::from(
            "the DMAR does not set INTR_REMAP (the platform does not support interrupt remapping)",
        ));
    }
    if register_only {
        return Some(String::from(
            "queued invalidation is off by request, and the interrupt entry cache can only be \
             invalidated through the queue",
        ));
    }
    if let Some(u) = units.iter().find(|u| !u.ecap().ir()) {
        return Some(alloc::format!("unit {:#x} has ECAP.IR = 0", u.phys()));
    }
    if let Some(u) = units.iter().find(|u| !u.ecap().qi()) {
        return Some(alloc::format!(
            "unit {:#x} has no queued invalidation (ECAP.QI = 0)",
            u.phys()
        ));
    }
    None
}

/// Chooses the APIC mode, initialises the local APIC in it, then builds the table and turns
/// interrupt remapping on in every unit. Returns the local APIC's ID (for the fault event) and
/// what was set up.
pub(super) fn bring_up(
    mem: &Memory,
    units: &mut [RemappingUnit],
    register_only: bool,
    flags: DmarFlags,
) -> (Result<u32, ApicError>, BringUp) {
    let off = unavailable(units, register_only, flags);
    let eim = units.iter().all(|u| u.ecap().eim());
    let x2 = apic::cpu_has_x2apic();
    let opt_out = flags.x2apic_opt_out();
    if opt_out {
        warn!(
            "DMAR: X2APIC_OPT_OUT set: firmware asks not to enable x2APIC mode; the local APIC is \
             not switched to it (a mode firmware already chose is kept)"
        );
    }
    let want_x2apic = off.is_none() && eim && x2 && !opt_out;
    let why = match (off.is_none(), eim, x2) {
        (true, true, true) if opt_out => "the DMAR sets X2APIC_OPT_OUT",
        (true, true, true) => {
            "the CPU has x2APIC and every remapping unit reports ECAP.EIM = 1 (32-bit destinations)"
        }
        (true, false, _) => {
            "the remapping units report ECAP.EIM = 0: interrupt remapping delivers 8-bit xAPIC \
             destinations only"
        }
        (true, true, false) => "the CPU has no x2APIC",
        (false, _, _) => "interrupt remapping is off",
    };
    let apic_id = apic::init(mem, want_x2apic, why);
    if let Some(reason) = off {
        warn!("vtd: interrupt remapping not enabled: {reason}");
        return (
            apic_id,
            BringUp {
                tables: Tables::new(),
                off: Some(reason),
            },
        );
    }
    let mode = match apic::current_mode() {
        Some(apic::ApicMode::X2Apic) if eim => ApicMode::X2Apic,
        _ => ApicMode::XApic,
    };
    let coherent = units.iter().all(|u| u.ecap().c());
    let Some(size) = IrtSize::for_entries(IRT_ENTRIES) else {
        return (
            apic_id,
            BringUp {
                tables: Tables::new(),
                off: Some(String::from("bad table size")),
            },
        );
    };
    let mut tables = Tables::new();
    for i in 0..units.len() {
        let (segment, phys) = (units[i].segment(), units[i].phys());
        let table = match tables.get_or_make(segment, || Table::new(mem, size, mode, coherent)) {
            Ok(t) => t,
            Err(e) => {
                let why = alloc::format!("segment {segment:04x}: {e}");
                error!("vtd: interrupt remapping not enabled: {why}");
                turn_off(&mut units[..i], phys);
                return (
                    apic_id,
                    BringUp {
                        tables: Tables::new(),
                        off: Some(why),
                    },
                );
            }
        };
        let u = &mut units[i];
        match u.enable_interrupt_remapping(table) {
            Ok(done) => {
                info!(
                    "vtd: unit {:#x}: interrupt remapping enabled (GSTS {:#010x}): IRTA {:#x} = \
                     table at {:#x}, {} entries (S={}), EIME={} ({} mode, {}-bit destinations)",
                    u.phys(),
                    done.gsts,
                    done.irta,
                    table.base(),
                    size.entries(),
                    size.field(),
                    u8::from(mode == ApicMode::X2Apic),
                    match mode {
                        ApicMode::X2Apic => "x2APIC",
                        ApicMode::XApic => "xAPIC",
                    },
                    if mode == ApicMode::X2Apic { 32 } else { 8 }
                );
                info!(
                    "vtd:   interrupt entry cache invalidated globally by queued invalidation; \
                     compatibility-format interrupts blocked (GCMD.CFI clear, GSTS.CFIS = 0); \
                     live IRTEs updated {}",
                    if table.atomic_updates() {
                        "in one 128-bit store (CMPXCHG16B)"
                    } else {
                        "through not-present (no CMPXCHG16B)"
                    }
                );
            }
            Err(e) => {
                error!("vtd: unit {phys:#x}: interrupt remapping not enabled: {e}");
                turn_off(&mut units[..i], phys);
                return (
                    apic_id,
                    BringUp {
                        tables: Tables::new(),
                        off: Some(alloc::format!("unit {phys:#x}: {e}")),
                    },
                );
            }
        }
    }
    (apic_id, BringUp { tables, off: None })
}

/// Turns interrupt remapping off again in `units`, which enabled it before unit `failed` failed.
fn turn_off(units: &mut [RemappingUnit], failed: u64) {
    for other in units {
        match other.disable_interrupt_remapping() {
            Ok(()) => warn!(
                "vtd: unit {:#x}: interrupt remapping turned off again (unit {failed:#x} failed)",
                other.phys()
            ),
            Err(e) => error!(
                "vtd: unit {:#x}: interrupt remapping could not be turned off again: {e}",
                other.phys()
            ),
        }
    }
}

/// The interrupt remapping tables as the policy needs to know them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IrInfo {
    /// Per table: its segment, physical address and the number of units using it.
    pub tables: Vec<(u16, u64, usize)>,
    /// Entries of each table (the IRT indices, allocated over all tables together).
    pub size: IrtSize,
    /// Destination width of the entries.
    pub mode: ApicMode,
}

/// Whether interrupt remapping is on, and its tables; else why not.
pub fn interrupt_remapping() -> Result<IrInfo, String> {
    let guard = STATE.lock();
    let s = guard
        .as_ref()
        .ok_or_else(|| String::from("the IOMMU was not initialised"))?;
    // Every table has the same size and mode (`bring_up` makes them alike).
    let Some((_, first)) = s.ir.iter().next() else {
        return Err(s
            .ir_off
            .clone()
            .unwrap_or_else(|| String::from("interrupt remapping is off")));
    };
    let tables =
        s.ir.iter()
            .map(|(segment, t)| {
                let units = s.units.iter().filter(|u| u.segment() == segment).count();
                (segment, t.base(), units)
            })
            .collect();
    Ok(IrInfo {
        tables,
        size: first.size(),
        mode: first.mode(),
    })
}

fn off(s: &State) -> IommuError {
    IommuError::InterruptRemappingOff {
        reason: s
            .ir_off
            .clone()
            .unwrap_or_else(|| String::from("interrupt remapping is off")),
    }
}

/// Writes `irte` at `index` of `segment`'s table and invalidates that entry in the interrupt
/// entry cache of every unit of the segment.
fn write_locked(
    s: &mut State,
    segment: u16,
    index: u16,
    irte: &Irte,
) -> Result<IecInvalidation, IommuError> {
    if s.ir.is_empty() {
        return Err(off(s));
    }
    let table =
        s.ir.get_mut(segment)
            .ok_or_else(|| IommuError::InterruptRemappingOff {
                reason: alloc::format!("no remapping unit serves PCI segment {segment:04x}"),
            })?;
    write_table(table, &mut s.units, segment, index, irte)
}

/// Writes `irte` at `index` of `table` (segment `segment`'s) and invalidates that entry in the
/// interrupt entry cache of every unit of the segment.
fn write_table(
    table: &mut Table,
    units: &mut [RemappingUnit],
    segment: u16,
    index: u16,
    irte: &Irte,
) -> Result<IecInvalidation, IommuError> {
    table.write(index, irte).map_err(IommuError::Hardware)?;
    let inv = IecInvalidation::Index { index, mask: 0 };
    for u in units.iter_mut().filter(|u| u.segment() == segment) {
        u.invalidate_interrupt_entries(inv)
            .map_err(IommuError::Hardware)?;
    }
    Ok(inv)
}

/// Whether `table` holds something at `index`: an entry present, or masked but kept for its
/// owner (anything but the all-zero not-present entry that clearing writes).
fn holds(table: &Table, index: u16) -> bool {
    table
        .read(index)
        .is_some_and(|raw| raw != Irte::NOT_PRESENT.encode())
}

/// Writes `irte` at `index` of the table of PCI segment `segment` (the segment of the function,
/// or of the DRHD listing the I/O APIC, whose source-id the entry verifies) and invalidates that
/// entry in the interrupt entry cache of that segment's units. The caller has authorised the
/// entry; the index is the caller's in every table, and the other tables hold nothing there.
pub fn write_irte(segment: u16, index: u16, irte: &Irte) -> Result<IecInvalidation, IommuError> {
    let mut guard = STATE.lock();
    let s = guard.as_mut().ok_or(IommuError::InterruptRemappingOff {
        reason: String::from("the IOMMU was not initialised"),
    })?;
    write_locked(s, segment, index, irte)
}

/// Clears entry `index` (not present) in every table, with its invalidation on that table's
/// units: first in the table holding it (the live entry goes first), then in every other table,
/// each tried even after a failure; the first error is returned. Afterwards the index is free
/// for any segment.
pub fn clear_irte(index: u16) -> Result<(), IommuError> {
    let mut guard = STATE.lock();
    let s = guard.as_mut().ok_or(IommuError::InterruptRemappingOff {
        reason: String::from("the IOMMU was not initialised"),
    })?;
    if s.ir.is_empty() {
        return Err(off(s));
    }
    let units = &mut s.units;
    s.ir.clear_everywhere(
        |t| holds(t, index),
        |segment, t| write_table(t, units, segment, index, &Irte::NOT_PRESENT).map(|_| ()),
    )
}

/// The segment whose table holds entry `index` (at most one does: indices are allocated over
/// all tables); `None` when no table does.
fn holder(s: &State, index: u16) -> Option<u16> {
    s.ir.holder(|t| holds(t, index))
}

/// The entry at `index`, decoded in the table's mode, from the table holding it; where no table
/// holds it, the not-present entry every table has there (read from the first). `None` beyond
/// the table or when remapping is off, `Some(Err)` for an entry that does not decode.
#[cfg(feature = "selftest")]
pub fn read_irte(index: u16) -> Option<Result<Irte, conduit_irq::FormatError>> {
    let guard = STATE.lock();
    let s = guard.as_ref()?;
    let t = match holder(s, index) {
        Some(segment) => s.ir.get(segment)?,
        None => s.ir.iter().next()?.1,
    };
    t.read(index).map(|raw| Irte::decode(raw, t.mode()))
}

fn masked(raw: [u64; 2], mode: ApicMode) -> Option<Irte> {
    Irte::decode(raw, mode)
        .ok()?
        .to_builder()
        .present(false)
        .fault_processing_disable(true)
        .build()
        .ok()
}

/// Masks entry `index` (not present, fault processing disabled: its requests are dropped without
/// a fault record) in the one table that holds it, and invalidates it. For interrupt handlers:
/// never waits for the lock, and returns `None` when someone holds it (the caller retries from a
/// normal context). An index no table holds is left alone (`Some(Ok)`): nothing is delivered
/// through it, and no table is given an entry it did not have.
pub fn try_mask_irte(index: u16) -> Option<Result<(), IommuError>> {
    let mut guard = STATE.try_lock()?;
    let s = guard.as_mut()?;
    if s.ir.is_empty() {
        return Some(Err(off(s)));
    }
    let Some(segment) = holder(s, index) else {
        return Some(Ok(()));
    };
    let t = s.ir.get(segment)?;
    let irte = masked(t.read(index)?, t.mode())?;
    Some(write_locked(s, segment, index, &irte).map(|_| ()))
}

/// [`try_mask_irte`] for normal contexts: waits for the lock. An index no table holds is left
/// alone (`Ok`).
pub fn mask_irte(index: u16) -> Result<(), IommuError> {
    let mut guard = STATE.lock();
    let s = guard.as_mut().ok_or(IommuError::InterruptRemappingOff {
        reason: String::from("the IOMMU was not initialised"),
    })?;
    if s.ir.is_empty() {
        return Err(off(s));
    }
    let Some(segment) = holder(s, index) else {
        return Ok(());
    };
    let t = s.ir.get(segment).ok_or_else(|| off(s))?;
    let irte = t.read(index).and_then(|raw| masked(raw, t.mode())).ok_or(
        IommuError::InterruptRemappingOff {
            reason: alloc::format!("no valid entry {index}"),
        },
    )?;
    write_locked(s, segment, index, &irte).map(|_| ())
}

/// The source-id the I/O APIC with `ioapic_id` uses for its interrupt requests, from the DMAR's
/// I/OxAPIC device scope (for IRTE source validation), its path read through the bridges of the
/// listing DRHD's segment; with that segment (whose table its entries go to).
pub fn ioapic_source_id(ioapic_id: u8) -> Option<PciAddress> {
    let guard = STATE.lock();
    let s = guard.as_ref()?;
    let dmar = Dmar::parse(&s.dmar).ok()?;
    let (unit, scope) = dmar.ioapic_scope(ioapic_id).ok().flatten()?;
    let pci = crate::pci::get()?;
    let segment = unit.segment();
    pci.with_segment(segment, |cfg| scope.resolve(&PciBridges(&*cfg)).ok())
        .map(|bdf| PciAddress::new(segment, bdf))
}
