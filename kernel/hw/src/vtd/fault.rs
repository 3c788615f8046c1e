//! Primary fault logging (§7.2.1) and the fault event interrupt (§7.3).
//!
//! A blocked DMA request, or an interrupt request that interrupt remapping blocked, is recorded in one of the NFR + 1 fault-recording registers at
//! CAP.FRO × 16 (§10.4.14; decoded by `conduit_vtd::fault`); writing 1 to F (bit 127) frees the
//! record. FSTS.FRI names the first record written, FSTS.PPF is
//! set while any F is set, and FSTS.PFO (write 1 to clear) reports faults that found no free
//! record and were lost. While a record is valid, further faults from the same source are dropped.
//!
//! The fault event interrupt (FEDATA/FEADDR, unmasked in FECTL) runs [`on_interrupt`], which
//! reads and clears every valid record into a small pending list; [`take`] polls the units once
//! more (so faults are never missed where interrupts are off) and hands the list out for logging.
//! The pending list is only locked with interrupts disabled, so the handler never deadlocks.

use super::regs::{FaultRecording, Registers, fectl, fsts};
use alloc::vec::Vec;
use conduit_pci::Bdf;
use conduit_vtd::fault::{FaultRecord, VALID};
use conduit_vtd::limit::InterruptThrottle;
pub use conduit_vtd::reason_text;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use spin::{Mutex, RwLock};
use volatile::{VolatilePtr, map_field};

/// Faults kept between two [`take`] calls.
const MAX_PENDING: usize = 32;

/// How a fault came to the hypervisor's attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The fault event interrupt.
    Interrupt,
    /// Reading the fault status register.
    Poll,
}

/// One decoded primary fault record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// Register base of the unit that recorded it.
    pub unit: u64,
    /// The unit's PCI segment (its DRHD's Segment Number, VT-d spec §8.3): requester IDs are
    /// numbers within it.
    pub segment: u16,
    /// Requester ID of the DMA.
    pub source: Bdf,
    /// Page address of the request (the IOVA, 4 KiB aligned); for an interrupt-remapping fault
    /// the interrupt index sits in bits 63:48.
    pub address: u64,
    /// The interrupt index, for interrupt-remapping faults (reasons 0x20-0x27).
    pub interrupt_index: Option<u16>,
    /// A write (else a read).
    pub write: bool,
    /// Fault reason code.
    pub reason: u8,
    /// The PASID, for requests that carried one.
    pub pasid: Option<u32>,
    pub via: Via,
}

/// A registered unit: the virtual addresses of its register block and first fault-recording
/// register, its physical register base and segment, and whether the throttle masked its fault
/// event interrupt.
struct Slot {
    regs: u64,
    phys: u64,
    segment: u16,
    records: u64,
    throttled: AtomicBool,
}

/// Every registered unit, however many the DMAR lists. Written only while units are brought up;
/// the interrupt handler only tries to read it.
static UNITS: RwLock<Vec<Slot>> = RwLock::new(Vec::new());

struct Pending {
    faults: [Option<Fault>; MAX_PENDING],
    len: usize,
    /// Faults dropped because the pending list was full.
    dropped: usize,
    /// A unit reported FSTS.PFO.
    overflow: bool,
}

static PENDING: Mutex<Pending> = Mutex::new(Pending {
    faults: [None; MAX_PENDING],
    len: 0,
    dropped: 0,
    overflow: false,
});

/// Registers a unit's register block (mapped for 'static) so that faults are drained from it.
/// `records` is the virtual address of its first fault-recording register.
pub fn register(regs: VolatilePtr<'static, Registers>, phys: u64, segment: u16, records: u64) {
    let slot = Slot {
        regs: regs.as_raw_ptr().as_ptr() as u64,
        phys,
        segment,
        records,
        throttled: AtomicBool::new(false),
    };
    x86_64::instructions::interrupts::without_interrupts(|| UNITS.write().push(slot));
}

fn unit(slot: &Slot) -> Option<(VolatilePtr<'static, Registers>, u64)> {
    let ptr = core::ptr::NonNull::new(slot.regs as *mut Registers)?;
    // SAFETY: only `register` creates slots, from the register block of a unit, mapped uncached
    // for the life of the hypervisor.
    let regs = unsafe { VolatilePtr::new(ptr) };
    Some((regs, slot.records))
}

fn record(records: u64, index: u64) -> Option<VolatilePtr<'static, FaultRecording>> {
    let ptr = core::ptr::NonNull::new((records + index * 16) as *mut FaultRecording)?;
    // SAFETY: `records` is the first of NFR + 1 fault-recording registers inside the unit's
    // register mapping (checked by the unit when it registered), and `index` <= NFR.
    Some(unsafe { VolatilePtr::new(ptr) })
}

fn decode(slot: &Slot, lo: u64, hi: u64, via: Via) -> Option<Fault> {
    let r = FaultRecord::decode(lo, hi)?;
    Some(Fault {
        unit: slot.phys,
        segment: slot.segment,
        source: r.source,
        address: r.address,
        interrupt_index: r.interrupt_index(),
        write: r.write,
        reason: r.reason,
        pasid: r.pasid,
        via,
    })
}

/// Reads and clears every valid record of one unit, starting at FSTS.FRI, and clears PFO.
fn drain_unit(slot: &Slot, via: Via, pending: &mut Pending) {
    let Some((regs, records)) = unit(slot) else {
        return;
    };
    let count = u64::from(super::caps::Cap(map_field!(regs.cap).read()).nfr()) + 1;
    let status_reg = map_field!(regs.fsts);
    let status = status_reg.read();
    if status & fsts::PPF != 0 {
        let first = u64::from(fsts::fri(status)) % count;
        for step in 0..count {
            let Some(rec) = record(records, (first + step) % count) else {
                break;
            };
            let hi = map_field!(rec.hi).read();
            let lo = map_field!(rec.lo).read();
            let Some(fault) = decode(slot, lo, hi, via) else {
                continue;
            };
            map_field!(rec.hi).write(VALID);
            if pending.len < MAX_PENDING {
                pending.faults[pending.len] = Some(fault);
                pending.len += 1;
            } else {
                pending.dropped += 1;
            }
        }
    }
    if status & fsts::PFO != 0 {
        pending.overflow = true;
        status_reg.write(fsts::PFO);
    }
}

/// Fault event interrupts per tick beyond which the interrupt is masked until the next tick.
pub const INTERRUPT_LIMIT: u32 = 16;

/// The fault event interrupt's rate limit (`conduit_vtd::limit::InterruptThrottle`).
static THROTTLE: Mutex<InterruptThrottle> = Mutex::new(InterruptThrottle::new(INTERRUPT_LIMIT));
/// Ticks seen by [`on_tick`].
static TICK: AtomicU64 = AtomicU64::new(0);

/// Masks (FECTL.IM, §10.4.10) the fault event interrupt of a unit where it is unmasked, or
/// unmasks it where the throttle masked it; units whose interrupt was never enabled stay masked.
fn set_masked(slot: &Slot, mask: bool) {
    let Some((regs, _)) = unit(slot) else {
        return;
    };
    let fectl_reg = map_field!(regs.fectl);
    if mask {
        if fectl_reg.read() & fectl::IM == 0 {
            fectl_reg.write(fectl::IM);
            slot.throttled.store(true, Ordering::Relaxed);
        }
    } else if slot.throttled.swap(false, Ordering::Relaxed) {
        fectl_reg.write(0);
    }
}

/// A timer tick (called from the tick interrupt): a fault event interrupt masked for a storm
/// in the last tick is unmasked (a fault recorded meanwhile is then delivered, FECTL.IP).
pub fn on_tick() {
    let tick = TICK.fetch_add(1, Ordering::Relaxed) + 1;
    let (Some(mut throttle), Some(units)) = (THROTTLE.try_lock(), UNITS.try_read()) else {
        return;
    };
    if throttle.on_tick(tick) {
        for slot in units.iter() {
            set_masked(slot, false);
        }
    }
}

/// The fault event interrupt: drains every unit; past [`INTERRUPT_LIMIT`] interrupts in one
/// tick the interrupt is masked until the next. The caller sends the EOI.
pub fn on_interrupt() {
    // Interrupts are off in the handler, and the main path only locks with them off: on one CPU
    // the lock is free here. `try_lock` keeps a second CPU from spinning in an interrupt.
    if let (Some(mut pending), Some(units)) = (PENDING.try_lock(), UNITS.try_read()) {
        for slot in units.iter() {
            drain_unit(slot, Via::Interrupt, &mut pending);
        }
        if let Some(mut throttle) = THROTTLE.try_lock()
            && throttle.on_interrupt(TICK.load(Ordering::Relaxed))
        {
            for slot in units.iter() {
                set_masked(slot, true);
            }
        }
    }
}

/// What [`take`] found.
#[derive(Debug, Default)]
pub struct Faults {
    pub faults: alloc::vec::Vec<Fault>,
    /// Faults lost because hardware had no free record (FSTS.PFO).
    pub overflow: bool,
    /// Faults lost because the pending list was full.
    pub dropped: usize,
    /// Times the fault event interrupt was masked for the rest of a tick (more than
    /// [`INTERRUPT_LIMIT`] in it).
    pub masked: u32,
}

/// Polls every unit once more, then returns and forgets every pending fault.
pub fn take() -> Faults {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let mut pending = PENDING.lock();
        for slot in UNITS.read().iter() {
            drain_unit(slot, Via::Poll, &mut pending);
        }
        let masked = THROTTLE.lock().take_masked();
        let len = pending.len;
        let faults = pending.faults[..len]
            .iter_mut()
            .filter_map(Option::take)
            .collect();
        let out = Faults {
            faults,
            overflow: pending.overflow,
            dropped: pending.dropped,
            masked,
        };
        pending.len = 0;
        pending.dropped = 0;
        pending.overflow = false;
        out
    })
}
