//! The local APIC, as far as the hypervisor needs it so far: its ID, the spurious-interrupt
//! vector and software enable, masking of the legacy interrupt sources, and EOI (Intel SDM Vol.
//! 3A, chapter 11 "Advanced Programmable Interrupt Controller"). Works in xAPIC mode (registers
//! at IA32_APIC_BASE, mapped uncached) and in x2APIC mode (MSRs 0x800 + offset / 16), whichever
//! the firmware left.
//!
//! Vectors are allocated here ([`vectors`]).

use super::msr;
use crate::memory::Memory;
use crate::memory::mmio::{self, Mmio, MmioError};
use core::mem::offset_of;
use log::info;
use spin::Once;
use volatile::{VolatilePtr, map_field};
use x86_64::instructions::port::Port;

/// Interrupt vectors used by the hypervisor.
pub mod vectors {
    /// VT-d fault event (all remapping units).
    pub const VTD_FAULT: u8 = 0x30;
    /// The local APIC's spurious-interrupt vector (no EOI).
    pub const SPURIOUS: u8 = 0xff;
}

const IA32_APIC_BASE: u32 = 0x1b;
const BASE_ENABLE: u64 = 1 << 11;
const BASE_X2APIC: u64 = 1 << 10;
const LVT_MASKED: u32 = 1 << 16;
const SVR_ENABLE: u32 = 1 << 8;

/// One xAPIC register: 32 bits at a 16-byte stride.
#[repr(C, align(16))]
struct Slot {
    value: u32,
    _pad: [u32; 3],
}

/// The xAPIC registers used here (SDM Vol. 3A, Table 11-1).
#[repr(C)]
struct XApic {
    _r000: [Slot; 2],
    id: Slot,
    version: Slot,
    _r040: [Slot; 4],
    tpr: Slot,
    _r090: [Slot; 2],
    eoi: Slot,
    _r0c0: [Slot; 3],
    svr: Slot,
    _r100: [Slot; 34],
    lvt_timer: Slot,
    _r330: [Slot; 2],
    lvt_lint0: Slot,
    _r360: Slot,
    lvt_error: Slot,
}

const _: () = {
    assert!(offset_of!(XApic, id) == 0x20);
    assert!(offset_of!(XApic, version) == 0x30);
    assert!(offset_of!(XApic, tpr) == 0x80);
    assert!(offset_of!(XApic, eoi) == 0xb0);
    assert!(offset_of!(XApic, svr) == 0xf0);
    assert!(offset_of!(XApic, lvt_timer) == 0x320);
    assert!(offset_of!(XApic, lvt_lint0) == 0x350);
    assert!(offset_of!(XApic, lvt_error) == 0x370);
};

/// x2APIC MSR numbers (SDM Vol. 3A, Table 11-6).
mod x2 {
    pub const ID: u32 = 0x802;
    pub const TPR: u32 = 0x808;
    pub const EOI: u32 = 0x80b;
    pub const SVR: u32 = 0x80f;
    pub const LVT_TIMER: u32 = 0x832;
    pub const LVT_LINT0: u32 = 0x835;
    pub const LVT_ERROR: u32 = 0x837;
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    XApic(Mmio),
    X2Apic,
}

static MODE: Once<Mode> = Once::new();

/// Why the local APIC is not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApicError {
    /// IA32_APIC_BASE.EN is clear: firmware disabled the local APIC.
    Disabled,
    /// The xAPIC registers could not be mapped.
    Mmio(MmioError),
}

impl core::fmt::Display for ApicError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Disabled => write!(f, "the local APIC is disabled (IA32_APIC_BASE.EN = 0)"),
            Self::Mmio(e) => write!(f, "cannot map the local APIC: {e}"),
        }
    }
}

fn xapic(m: &Mmio) -> Option<VolatilePtr<'static, XApic>> {
    m.block::<XApic>(0).ok()
}

/// Masks the 8259 PIC and the local APIC's timer, LINT0 (virtual-wire ExtINT) and error
/// entries, sets the spurious vector and software-enables the APIC. Returns the APIC ID of this
/// CPU. Idempotent.
pub fn init(mem: &Memory) -> Result<u32, ApicError> {
    if MODE.get().is_none() {
        // SAFETY: IA32_APIC_BASE exists on every x86-64 CPU.
        let base = unsafe { msr::read(IA32_APIC_BASE) };
        if base & BASE_ENABLE == 0 {
            return Err(ApicError::Disabled);
        }
        let mode = if base & BASE_X2APIC != 0 {
            Mode::X2Apic
        } else {
            let phys = base & 0x000f_ffff_ffff_f000;
            Mode::XApic(mmio::map(mem, phys, 4096).map_err(ApicError::Mmio)?)
        };
        MODE.call_once(|| mode);
        // SAFETY: 0x21 and 0xa1 are the data ports of the two 8259s; OCW1 = 0xff masks every
        // input. Nothing in Conduit uses the PIC.
        unsafe {
            Port::<u8>::new(0x21).write(0xff);
            Port::<u8>::new(0xa1).write(0xff);
        }
        write(Reg::LvtTimer, LVT_MASKED);
        write(Reg::LvtLint0, LVT_MASKED);
        write(Reg::LvtError, LVT_MASKED);
        write(Reg::Tpr, 0);
        write(Reg::Svr, SVR_ENABLE | u32::from(vectors::SPURIOUS));
        let id = id();
        info!(
            "apic: local APIC {id} in {} mode; 8259 PIC, LVT timer, LINT0 and error masked; \
             spurious vector {:#x}",
            match mode {
                Mode::XApic(m) => alloc::format!("xAPIC at {:#x}", m.phys()),
                Mode::X2Apic => alloc::string::String::from("x2APIC"),
            },
            vectors::SPURIOUS
        );
    }
    Ok(id())
}

#[derive(Clone, Copy)]
enum Reg {
    Id,
    Tpr,
    Eoi,
    Svr,
    LvtTimer,
    LvtLint0,
    LvtError,
}

fn read(reg: Reg) -> u32 {
    match MODE.get() {
        Some(Mode::XApic(m)) => xapic(m).map_or(0, |a| match reg {
            Reg::Id => map_field!(a.id.value).read(),
            Reg::Tpr => map_field!(a.tpr.value).read(),
            Reg::Svr => map_field!(a.svr.value).read(),
            Reg::LvtTimer => map_field!(a.lvt_timer.value).read(),
            Reg::LvtLint0 => map_field!(a.lvt_lint0.value).read(),
            Reg::LvtError => map_field!(a.lvt_error.value).read(),
            Reg::Eoi => 0,
        }),
        Some(Mode::X2Apic) => {
            let msr = match reg {
                Reg::Id => x2::ID,
                Reg::Tpr => x2::TPR,
                Reg::Svr => x2::SVR,
                Reg::LvtTimer => x2::LVT_TIMER,
                Reg::LvtLint0 => x2::LVT_LINT0,
                Reg::LvtError => x2::LVT_ERROR,
                Reg::Eoi => return 0,
            };
            // SAFETY: the x2APIC is enabled (IA32_APIC_BASE.EXTD), so its MSRs exist; these are
            // readable ones (EOI, write-only, is excluded above).
            unsafe { msr::read(msr) as u32 }
        }
        None => 0,
    }
}

fn write(reg: Reg, value: u32) {
    match MODE.get() {
        Some(Mode::XApic(m)) => {
            if let Some(a) = xapic(m) {
                match reg {
                    Reg::Id => map_field!(a.id.value).write(value),
                    Reg::Tpr => map_field!(a.tpr.value).write(value),
                    Reg::Eoi => map_field!(a.eoi.value).write(value),
                    Reg::Svr => map_field!(a.svr.value).write(value),
                    Reg::LvtTimer => map_field!(a.lvt_timer.value).write(value),
                    Reg::LvtLint0 => map_field!(a.lvt_lint0.value).write(value),
                    Reg::LvtError => map_field!(a.lvt_error.value).write(value),
                }
            }
        }
        Some(Mode::X2Apic) => {
            let msr = match reg {
                Reg::Id => return,
                Reg::Tpr => x2::TPR,
                Reg::Eoi => x2::EOI,
                Reg::Svr => x2::SVR,
                Reg::LvtTimer => x2::LVT_TIMER,
                Reg::LvtLint0 => x2::LVT_LINT0,
                Reg::LvtError => x2::LVT_ERROR,
            };
            // SAFETY: the x2APIC MSRs exist in x2APIC mode; the values written are a mask bit, a
            // priority of 0, an enable with a vector, or 0 for EOI, all architecturally valid.
            unsafe { msr::write(msr, u64::from(value)) }
        }
        None => {}
    }
}

/// This CPU's local APIC ID (0 before [`init`]).
pub fn id() -> u32 {
    match MODE.get() {
        Some(Mode::XApic(_)) => read(Reg::Id) >> 24,
        _ => read(Reg::Id),
    }
}

/// Interrupts delivered per vector since boot (counted by the handlers, for the debug shell).
static DELIVERED: [core::sync::atomic::AtomicU64; 256] =
    [const { core::sync::atomic::AtomicU64::new(0) }; 256];

/// Counts one delivery of `vector` (called by its handler).
pub fn count_delivery(vector: u8) {
    DELIVERED[usize::from(vector)].fetch_add(1, core::sync::atomic::Ordering::Relaxed);
}

/// How often `vector` was delivered since boot.
pub fn deliveries(vector: u8) -> u64 {
    DELIVERED[usize::from(vector)].load(core::sync::atomic::Ordering::Relaxed)
}

/// The local APIC in words: mode, address and ID, or that it was not set up.
pub fn describe() -> alloc::string::String {
    match MODE.get() {
        Some(Mode::XApic(m)) => {
            alloc::format!("local APIC {} in xAPIC mode at {:#x}", id(), m.phys())
        }
        Some(Mode::X2Apic) => alloc::format!("local APIC {} in x2APIC mode", id()),
        None => alloc::string::String::from(
            "the local APIC is not set up (no interrupt source needs it)",
        ),
    }
}

/// Whether [`init`] succeeded, so that interrupts can be delivered and acknowledged.
pub fn ready() -> bool {
    MODE.get().is_some()
}

/// Signals the end of the interrupt being handled.
pub fn eoi() {
    write(Reg::Eoi, 0);
}
