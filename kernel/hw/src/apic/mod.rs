//! The local APIC (Intel SDM Vol. 3A, chapter 11 "Advanced Programmable Interrupt Controller"):
//! its ID, the spurious-interrupt vector and software enable, masking of the legacy interrupt
//! sources, EOI, and the timer ([`timer`]).
//!
//! Two register interfaces: xAPIC (registers at IA32_APIC_BASE, mapped uncached, 8-bit APIC IDs)
//! and x2APIC (MSRs 0x800 + offset / 16, 32-bit APIC IDs; SDM §11.12). [`init`] switches from
//! xAPIC to x2APIC (IA32_APIC_BASE.EXTD, §11.12.5) when asked to: Conduit asks when the CPU has
//! x2APIC and interrupt remapping delivers 32-bit destinations (every VT-d unit with ECAP.EIM = 1,
//! IRTA_REG.EIME set). Otherwise the mode the firmware left stays (leaving x2APIC would need a
//! disable in between, §11.12.5, and no Conduit path needs that).
//!
//! Fixed vectors are in [`vectors`]; the others are allocated by the kernel's `irq`.

pub mod timer;

use super::msr;
use crate::memory::Memory;
use crate::memory::mmio::{self, Mmio, MmioError};
use core::mem::offset_of;
use log::info;
use spin::Once;
use volatile::{VolatilePtr, map_field};
use x86_64::instructions::port::Port;

/// Interrupt vectors the hypervisor keeps for itself.
pub mod vectors {
    /// VT-d fault event (all remapping units).
    pub const VTD_FAULT: u8 = 0x30;
    /// The local APIC timer: the hypervisor's tick (highest priority class but the spurious).
    pub const TICK: u8 = 0xf0;
    /// Cross-CPU requests (`smp::call_on`): an IPI that makes the target CPU run what its
    /// mailbox holds, leave its guest (external-interrupt exiting) or wake from HLT.
    pub const CALL: u8 = 0xf1;
    /// The local APIC's spurious-interrupt vector (no EOI).
    pub const SPURIOUS: u8 = 0xff;
    /// What the vector allocator must never hand out (0xff is outside its range anyway).
    pub const RESERVED: [u8; 3] = [VTD_FAULT, TICK, CALL];
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
    _r100: [Slot; 32],
    icr_low: Slot,
    icr_high: Slot,
    lvt_timer: Slot,
    _r330: [Slot; 2],
    lvt_lint0: Slot,
    _r360: Slot,
    lvt_error: Slot,
    timer_initial: Slot,
    timer_current: Slot,
    _r3a0: [Slot; 4],
    timer_divide: Slot,
}

const _: () = {
    assert!(offset_of!(XApic, id) == 0x20);
    assert!(offset_of!(XApic, version) == 0x30);
    assert!(offset_of!(XApic, tpr) == 0x80);
    assert!(offset_of!(XApic, eoi) == 0xb0);
    assert!(offset_of!(XApic, svr) == 0xf0);
    assert!(offset_of!(XApic, icr_low) == 0x300);
    assert!(offset_of!(XApic, icr_high) == 0x310);
    assert!(offset_of!(XApic, lvt_timer) == 0x320);
    assert!(offset_of!(XApic, lvt_lint0) == 0x350);
    assert!(offset_of!(XApic, lvt_error) == 0x370);
    assert!(offset_of!(XApic, timer_initial) == 0x380);
    assert!(offset_of!(XApic, timer_current) == 0x390);
    assert!(offset_of!(XApic, timer_divide) == 0x3e0);
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
    pub const TIMER_INITIAL: u32 = 0x838;
    pub const TIMER_CURRENT: u32 = 0x839;
    pub const TIMER_DIVIDE: u32 = 0x83e;
    pub const ICR: u32 = 0x830;
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    XApic(Mmio),
    X2Apic,
}

static MODE: Once<Mode> = Once::new();

/// The register interface in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApicMode {
    /// Memory-mapped registers, 8-bit APIC IDs.
    XApic,
    /// MSRs, 32-bit APIC IDs.
    X2Apic,
}

impl core::fmt::Display for ApicMode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::XApic => "xAPIC",
            Self::X2Apic => "x2APIC",
        })
    }
}

/// Why the local APIC is not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApicError {
    /// IA32_APIC_BASE.EN is clear: firmware disabled the local APIC.
    Disabled,
    /// The xAPIC registers could not be mapped.
    Mmio(MmioError),
    /// An AP asked before the BSP set the local APIC up.
    NotInitialised,
    /// An AP's local APIC is in x2APIC mode while the BSP's is in xAPIC mode (leaving x2APIC
    /// mode needs a disable in between, SDM §11.12.5).
    ModeMismatch,
}

impl core::fmt::Display for ApicError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Disabled => write!(f, "the local APIC is disabled (IA32_APIC_BASE.EN = 0)"),
            Self::Mmio(e) => write!(f, "cannot map the local APIC: {e}"),
            Self::NotInitialised => write!(f, "the BSP's local APIC is not set up"),
            Self::ModeMismatch => write!(
                f,
                "this CPU's local APIC is in x2APIC mode, the BSP's in xAPIC mode"
            ),
        }
    }
}

fn xapic(m: &Mmio) -> Option<VolatilePtr<'static, XApic>> {
    m.block::<XApic>(0).ok()
}

/// Whether the CPU implements x2APIC mode (CPUID.01H:ECX[21], SDM §11.12.1).
pub fn cpu_has_x2apic() -> bool {
    raw_cpuid::CpuId::new()
        .get_feature_info()
        .is_some_and(|f| f.has_x2apic())
}

/// Brings the local APIC under Conduit's control: x2APIC mode if `want_x2apic` (and the CPU has
/// it), the 8259 PIC and the local APIC's timer, LINT0 (virtual-wire ExtINT) and error entries
/// masked, the spurious vector set and the APIC software-enabled. `why` explains the mode choice
/// for the log. Returns the APIC ID of this CPU. Only the first call acts; later ones return the
/// ID.
pub fn init(mem: &Memory, want_x2apic: bool, why: &str) -> Result<u32, ApicError> {
    if MODE.get().is_none() {
        // SAFETY: IA32_APIC_BASE exists on every x86-64 CPU.
        let mut base = unsafe { msr::read(IA32_APIC_BASE) };
        if base & BASE_ENABLE == 0 {
            return Err(ApicError::Disabled);
        }
        let switched = want_x2apic && base & BASE_X2APIC == 0 && cpu_has_x2apic();
        if switched {
            base |= BASE_X2APIC;
            // SAFETY: EN is set and the CPU has x2APIC, so setting EXTD is the architectural
            // xAPIC -> x2APIC transition (SDM §11.12.5); nothing uses the xAPIC page yet.
            unsafe { msr::write(IA32_APIC_BASE, base) };
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
        info!(
            "apic: {} mode{}: {why}",
            current_mode().unwrap_or(ApicMode::XApic),
            if switched {
                " (switched from xAPIC)"
            } else {
                ""
            }
        );
    }
    Ok(id())
}

/// Brings an AP's local APIC into the BSP's mode (x2APIC if the BSP's is, SDM §11.12.5) with
/// the same settings as [`init`]: LVT timer, LINT0 and error masked, TPR 0, the spurious vector
/// and software enable. Returns this CPU's APIC ID. Runs on the AP, after the BSP's [`init`].
pub fn init_ap() -> Result<u32, ApicError> {
    let mode = MODE.get().ok_or(ApicError::NotInitialised)?;
    // SAFETY: IA32_APIC_BASE exists on every x86-64 CPU.
    let base = unsafe { msr::read(IA32_APIC_BASE) };
    if base & BASE_ENABLE == 0 {
        return Err(ApicError::Disabled);
    }
    match mode {
        Mode::X2Apic if base & BASE_X2APIC == 0 => {
            // SAFETY: EN is set and this CPU is of the BSP's kind, which has x2APIC: setting
            // EXTD is the architectural xAPIC -> x2APIC transition (SDM §11.12.5).
            unsafe { msr::write(IA32_APIC_BASE, base | BASE_X2APIC) };
        }
        Mode::XApic(_) if base & BASE_X2APIC != 0 => return Err(ApicError::ModeMismatch),
        _ => {}
    }
    write(Reg::LvtTimer, LVT_MASKED);
    write(Reg::LvtLint0, LVT_MASKED);
    write(Reg::LvtError, LVT_MASKED);
    write(Reg::Tpr, 0);
    write(Reg::Svr, SVR_ENABLE | u32::from(vectors::SPURIOUS));
    Ok(id())
}

/// An inter-processor interrupt (SDM Vol. 3A §11.6.1, Interrupt Command Register).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipi {
    /// Fixed delivery of `vector`.
    Fixed(u8),
    /// INIT (level assert): the target resets into wait-for-SIPI.
    Init,
    /// STARTUP with a vector: the target starts in real mode at 0xVV000.
    Startup(u8),
}

/// Whom an IPI goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpiTarget {
    /// One CPU by APIC ID (physical destination mode).
    Apic(u32),
    /// Every CPU but this one (shorthand 11b).
    AllButSelf,
}

/// Why an IPI was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpiError {
    /// The local APIC is not set up.
    NotReady,
    /// An xAPIC destination is 8 bits.
    DestinationTooWide(u32),
    /// The xAPIC kept reporting "send pending" (ICR delivery status) past the deadline.
    Stuck,
}

impl core::fmt::Display for IpiError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NotReady => f.write_str("the local APIC is not set up"),
            Self::DestinationTooWide(id) => {
                write!(f, "APIC ID {id} does not fit an xAPIC destination (8 bits)")
            }
            Self::Stuck => f.write_str("the ICR's delivery status stayed \"send pending\""),
        }
    }
}

/// ICR bits (SDM Vol. 3A Figure 11-12): delivery mode 10:8, delivery status 12, level 14,
/// destination shorthand 19:18.
const ICR_INIT: u32 = 0b101 << 8;
const ICR_STARTUP: u32 = 0b110 << 8;
const ICR_PENDING: u32 = 1 << 12;
const ICR_ASSERT: u32 = 1 << 14;
const ICR_ALL_BUT_SELF: u32 = 0b11 << 18;
/// How long an xAPIC may report "send pending" (delivery is normally done in microseconds).
const ICR_DEADLINE_US: u64 = 10_000;

/// Sends `ipi` to `target`: through the x2APIC ICR MSR (one 64-bit write, destination in bits
/// 63:32, §11.12.9), or the xAPIC's two ICR registers (destination in bits 63:56, written first:
/// the low half's write sends), waiting until the xAPIC reports the IPI sent.
pub fn send_ipi(target: IpiTarget, ipi: Ipi) -> Result<(), IpiError> {
    let mut low = match ipi {
        Ipi::Fixed(v) => ICR_ASSERT | u32::from(v),
        Ipi::Init => ICR_ASSERT | ICR_INIT,
        Ipi::Startup(v) => ICR_ASSERT | ICR_STARTUP | u32::from(v),
    };
    let dest = match target {
        IpiTarget::Apic(id) => id,
        IpiTarget::AllButSelf => {
            low |= ICR_ALL_BUT_SELF;
            0
        }
    };
    match MODE.get() {
        None => Err(IpiError::NotReady),
        Some(Mode::X2Apic) => {
            // SAFETY: x2APIC mode, so the ICR MSR exists; the value is a valid command (fixed,
            // INIT or STARTUP, physical destination, edge, assert).
            unsafe { msr::write(x2::ICR, (u64::from(dest) << 32) | u64::from(low)) };
            Ok(())
        }
        Some(Mode::XApic(m)) => {
            let dest = u8::try_from(dest).map_err(|_| IpiError::DestinationTooWide(dest))?;
            let a = xapic(m).ok_or(IpiError::NotReady)?;
            // The two writes are one command: an interrupt handler that sends an IPI of its own
            // between them would leave this one with its destination.
            x86_64::instructions::interrupts::without_interrupts(|| {
                map_field!(a.icr_high.value).write(u32::from(dest) << 24);
                map_field!(a.icr_low.value).write(low);
            });
            let mut deadline = crate::time::Deadline::after_us(ICR_DEADLINE_US);
            while map_field!(a.icr_low.value).read() & ICR_PENDING != 0 {
                if deadline.poll().unwrap_or(true) {
                    return Err(IpiError::Stuck);
                }
                core::hint::spin_loop();
            }
            Ok(())
        }
    }
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
    TimerInitial,
    TimerCurrent,
    TimerDivide,
}

impl Reg {
    const fn msr(self) -> u32 {
        match self {
            Self::Id => x2::ID,
            Self::Tpr => x2::TPR,
            Self::Eoi => x2::EOI,
            Self::Svr => x2::SVR,
            Self::LvtTimer => x2::LVT_TIMER,
            Self::LvtLint0 => x2::LVT_LINT0,
            Self::LvtError => x2::LVT_ERROR,
            Self::TimerInitial => x2::TIMER_INITIAL,
            Self::TimerCurrent => x2::TIMER_CURRENT,
            Self::TimerDivide => x2::TIMER_DIVIDE,
        }
    }

    fn field(self, a: VolatilePtr<'static, XApic>) -> VolatilePtr<'static, u32> {
        match self {
            Self::Id => map_field!(a.id.value),
            Self::Tpr => map_field!(a.tpr.value),
            Self::Eoi => map_field!(a.eoi.value),
            Self::Svr => map_field!(a.svr.value),
            Self::LvtTimer => map_field!(a.lvt_timer.value),
            Self::LvtLint0 => map_field!(a.lvt_lint0.value),
            Self::LvtError => map_field!(a.lvt_error.value),
            Self::TimerInitial => map_field!(a.timer_initial.value),
            Self::TimerCurrent => map_field!(a.timer_current.value),
            Self::TimerDivide => map_field!(a.timer_divide.value),
        }
    }
}

fn read(reg: Reg) -> u32 {
    match MODE.get() {
        Some(Mode::XApic(m)) => match reg {
            Reg::Eoi => 0,
            _ => xapic(m).map_or(0, |a| reg.field(a).read()),
        },
        Some(Mode::X2Apic) => match reg {
            Reg::Eoi => 0,
            // SAFETY: the x2APIC is enabled (IA32_APIC_BASE.EXTD), so its MSRs exist; EOI, the
            // one write-only register used here, is excluded above.
            _ => unsafe { msr::read(reg.msr()) as u32 },
        },
        None => 0,
    }
}

fn write(reg: Reg, value: u32) {
    match MODE.get() {
        Some(Mode::XApic(m)) => {
            if let Some(a) = xapic(m) {
                reg.field(a).write(value);
            }
        }
        Some(Mode::X2Apic) => {
            if matches!(reg, Reg::Id | Reg::TimerCurrent) {
                return;
            }
            // SAFETY: the x2APIC MSRs exist in x2APIC mode; the read-only ones (ID, current count)
            // are excluded above; callers write masks, priority 0, enables with a vector, timer
            // counts and divide values, or 0 for EOI, all architecturally valid.
            unsafe { msr::write(reg.msr(), u64::from(value)) }
        }
        None => {}
    }
}

/// This CPU's local APIC ID (0 before [`init`]): 8 bits in xAPIC mode (ID register bits 31:24),
/// 32 bits in x2APIC mode.
pub fn id() -> u32 {
    match MODE.get() {
        Some(Mode::XApic(_)) => read(Reg::Id) >> 24,
        _ => read(Reg::Id),
    }
}

/// The register interface in use, once [`init`] ran.
pub fn current_mode() -> Option<ApicMode> {
    MODE.get().map(|m| match m {
        Mode::XApic(_) => ApicMode::XApic,
        Mode::X2Apic => ApicMode::X2Apic,
    })
}

/// Whether [`init`] succeeded, so that interrupts can be delivered and acknowledged.
pub fn ready() -> bool {
    MODE.get().is_some()
}

/// Signals the end of the interrupt being handled.
pub fn eoi() {
    write(Reg::Eoi, 0);
}

/// Interrupts delivered per vector since boot, counted by the hypervisor's own handlers (VT-d
/// fault, spurious), for the debug shell; the kernel's `irq::dispatch` counts device vectors.
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
