//! Interrupt remapping on every unit: bring-up (with the choice of the local APIC's mode), the
//! one interrupt remapping table all units share, and IRTE updates with interrupt-entry-cache
//! invalidation on every unit. Which entry belongs to whom is `crate::irq`'s business; this module
//! only writes what it is given.
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
use conduit_dmar::{Dmar, DmarFlags, PciBridges};
use conduit_hw::apic::{self, ApicError};
use conduit_hw::memory::Memory;
use conduit_hw::vtd::RemappingUnit;
use conduit_hw::vtd::ir::Table;
use conduit_irq::{ApicMode, IrtSize, Irte};
use conduit_pci::Bdf;
use conduit_vtd::IecInvalidation;
use log::{error, info, warn};

/// Entries of the interrupt remapping table (IRTA_REG.S = 7).
pub const IRT_ENTRIES: usize = 256;

/// What bring-up left.
pub(super) struct BringUp {
    pub table: Option<Table>,
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
                table: None,
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
                table: None,
                off: Some(String::from("bad table size")),
            },
        );
    };
    let table = match Table::new(mem, size, mode, coherent) {
        Ok(t) => t,
        Err(e) => {
            error!("vtd: interrupt remapping not enabled: {e}");
            return (
                apic_id,
                BringUp {
                    table: None,
                    off: Some(alloc::format!("{e}")),
                },
            );
        }
    };
    for i in 0..units.len() {
        let u = &mut units[i];
        match u.enable_interrupt_remapping(&table) {
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
                let base = u.phys();
                error!("vtd: unit {base:#x}: interrupt remapping not enabled: {e}");
                for other in &mut units[..i] {
                    match other.disable_interrupt_remapping() {
                        Ok(()) => warn!(
                            "vtd: unit {:#x}: interrupt remapping turned off again (unit \
                             {base:#x} failed)",
                            other.phys()
                        ),
                        Err(e) => error!(
                            "vtd: unit {:#x}: interrupt remapping could not be turned off again: \
                             {e}",
                            other.phys()
                        ),
                    }
                }
                return (
                    apic_id,
                    BringUp {
                        table: None,
                        off: Some(alloc::format!("unit {base:#x}: {e}")),
                    },
                );
            }
        }
    }
    (
        apic_id,
        BringUp {
            table: Some(table),
            off: None,
        },
    )
}

/// The interrupt remapping table as the policy needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IrInfo {
    /// Physical address of the table.
    pub table: u64,
    pub size: IrtSize,
    /// Destination width of the entries.
    pub mode: ApicMode,
    /// Units sharing the table.
    pub units: usize,
}

/// Whether interrupt remapping is on, and its table; else why not.
pub fn interrupt_remapping() -> Result<IrInfo, String> {
    match STATE.lock().as_ref() {
        Some(State {
            ir: Some(t), units, ..
        }) => Ok(IrInfo {
            table: t.base(),
            size: t.size(),
            mode: t.mode(),
            units: units.len(),
        }),
        Some(State {
            ir_off: Some(r), ..
        }) => Err(r.clone()),
        Some(_) => Err(String::from("interrupt remapping is off")),
        None => Err(String::from("the IOMMU was not initialised")),
    }
}

fn write_locked(s: &mut State, index: u16, irte: &Irte) -> Result<IecInvalidation, IommuError> {
    let table =
        s.ir.as_mut()
            .ok_or_else(|| IommuError::InterruptRemappingOff {
                reason: s
                    .ir_off
                    .clone()
                    .unwrap_or_else(|| String::from("interrupt remapping is off")),
            })?;
    table.write(index, irte).map_err(IommuError::Hardware)?;
    let inv = IecInvalidation::Index { index, mask: 0 };
    for u in &mut s.units {
        u.invalidate_interrupt_entries(inv)
            .map_err(IommuError::Hardware)?;
    }
    Ok(inv)
}

/// Writes `irte` at `index` of the table and invalidates that entry in every unit's interrupt
/// entry cache. The caller has authorised the entry.
pub fn write_irte(index: u16, irte: &Irte) -> Result<IecInvalidation, IommuError> {
    let mut guard = STATE.lock();
    let s = guard.as_mut().ok_or(IommuError::InterruptRemappingOff {
        reason: String::from("the IOMMU was not initialised"),
    })?;
    write_locked(s, index, irte)
}

/// The entry at `index`, decoded in the table's mode (`None` beyond the table or when remapping
/// is off; `Some(Err)` for an entry that does not decode).
#[cfg(feature = "selftest")]
pub fn read_irte(index: u16) -> Option<Result<Irte, conduit_irq::FormatError>> {
    let guard = STATE.lock();
    let t = guard.as_ref()?.ir.as_ref()?;
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
/// a fault record) and invalidates it. For interrupt handlers: never waits for the lock, and
/// returns `None` when someone holds it (the caller retries from a normal context).
pub fn try_mask_irte(index: u16) -> Option<Result<(), IommuError>> {
    let mut guard = STATE.try_lock()?;
    let s = guard.as_mut()?;
    let t = s.ir.as_ref()?;
    let irte = masked(t.read(index)?, t.mode())?;
    Some(write_locked(s, index, &irte).map(|_| ()))
}

/// [`try_mask_irte`] for normal contexts: waits for the lock.
pub fn mask_irte(index: u16) -> Result<(), IommuError> {
    let mut guard = STATE.lock();
    let s = guard.as_mut().ok_or(IommuError::InterruptRemappingOff {
        reason: String::from("the IOMMU was not initialised"),
    })?;
    let t = s.ir.as_ref().ok_or(IommuError::InterruptRemappingOff {
        reason: String::from("interrupt remapping is off"),
    })?;
    let irte = t.read(index).and_then(|raw| masked(raw, t.mode())).ok_or(
        IommuError::InterruptRemappingOff {
            reason: alloc::format!("no valid entry {index}"),
        },
    )?;
    write_locked(s, index, &irte).map(|_| ())
}

/// The source-id the I/O APIC with `ioapic_id` uses for its interrupt requests, from the DMAR's
/// I/OxAPIC device scope (for IRTE source validation), its path read through the bridges of the
/// listing DRHD's segment.
pub fn ioapic_source_id(ioapic_id: u8) -> Option<Bdf> {
    let guard = STATE.lock();
    let s = guard.as_ref()?;
    let dmar = Dmar::parse(&s.dmar).ok()?;
    let (unit, scope) = dmar.ioapic_scope(ioapic_id).ok().flatten()?;
    let pci = crate::pci::get()?;
    pci.with_segment(unit.segment(), |cfg| scope.resolve(&PciBridges(&*cfg)).ok())
}
