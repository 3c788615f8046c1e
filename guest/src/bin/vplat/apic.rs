//! The local APIC as `vplat` drives it: registers through the xAPIC page at 0xFEE00000 (SDM Vol.
//! 3A §11.4.1, Table 11-1) or, in x2APIC mode, through MSRs 0x800 + offset / 16 (§11.12.1.2).

use core::sync::atomic::{AtomicBool, Ordering};

/// The xAPIC page (identity-mapped, uncached).
const XAPIC_BASE: usize = 0xfee0_0000;
/// IA32_APIC_BASE.
pub const MSR_APIC_BASE: u32 = 0x1b;
/// IA32_TSC_DEADLINE.
pub const MSR_TSC_DEADLINE: u32 = 0x6e0;

/// Register offsets (Table 11-1).
pub const ID: u32 = 0x20;
pub const VERSION: u32 = 0x30;
pub const TPR: u32 = 0x80;
pub const APR: u32 = 0x90;
pub const PPR: u32 = 0xa0;
pub const EOI: u32 = 0xb0;
pub const LDR: u32 = 0xd0;
pub const DFR: u32 = 0xe0;
pub const SVR: u32 = 0xf0;
pub const ISR: u32 = 0x100;
pub const IRR: u32 = 0x200;
pub const ESR: u32 = 0x280;
pub const ICR_LOW: u32 = 0x300;
pub const ICR_HIGH: u32 = 0x310;
pub const LVT_TIMER: u32 = 0x320;
pub const LVT_LINT0: u32 = 0x350;
pub const LVT_ERROR: u32 = 0x370;
pub const INITIAL_COUNT: u32 = 0x380;
pub const CURRENT_COUNT: u32 = 0x390;
pub const DIVIDE_CONFIG: u32 = 0x3e0;

/// LVT timer modes (bits 18:17) and the mask bit (Figure 11-8).
pub const TIMER_PERIODIC: u32 = 1 << 17;
pub const TIMER_TSC_DEADLINE: u32 = 2 << 17;
pub const LVT_MASKED: u32 = 1 << 16;

/// The APIC is in x2APIC mode (set once the guest switched).
static X2APIC: AtomicBool = AtomicBool::new(false);

/// Switches register accesses to MSRs (after IA32_APIC_BASE.EXTD was set).
pub fn use_x2apic() {
    X2APIC.store(true, Ordering::SeqCst);
}

/// Reads the register at `offset`.
pub fn read(offset: u32) -> u32 {
    if X2APIC.load(Ordering::SeqCst) {
        return super::boot::try_rdmsr(0x800 + (offset >> 4))
            .unwrap_or_else(|()| super::fail(format_args!("x2APIC read of {offset:#x}: #GP")))
            as u32;
    }
    let reg = (XAPIC_BASE + offset as usize) as *const u32;
    // SAFETY: the page at 0xFEE00000 is the local APIC's (identity-mapped by the trampoline);
    // reading a register has no effect on the guest's memory.
    unsafe { reg.read_volatile() }
}

/// Writes the register at `offset`.
pub fn write(offset: u32, value: u32) {
    if X2APIC.load(Ordering::SeqCst) {
        super::boot::try_wrmsr(0x800 + (offset >> 4), u64::from(value)).unwrap_or_else(|()| {
            super::fail(format_args!(
                "x2APIC write of {value:#x} to {offset:#x}: #GP"
            ))
        });
        return;
    }
    let reg = (XAPIC_BASE + offset as usize) as *mut u32;
    // SAFETY: as in `read`; the write reaches the local APIC, not memory.
    unsafe { reg.write_volatile(value) }
}

/// A byte read at `offset` of the xAPIC page (SDM Vol. 3A §11.4.1 leaves sub-dword accesses
/// model-specific).
pub fn read_u8(offset: u32) -> u8 {
    let reg = (XAPIC_BASE + offset as usize) as *const u8;
    // SAFETY: as in `read`.
    unsafe { reg.read_volatile() }
}

/// A 16-bit read at `offset` of the xAPIC page.
pub fn read_u16(offset: u32) -> u16 {
    let reg = (XAPIC_BASE + offset as usize) as *const u16;
    // SAFETY: as in `read`.
    unsafe { reg.read_volatile() }
}

/// Whether `vector`'s bit is set in the 256-bit register (ISR, TMR, IRR) at `base`.
pub fn bit(base: u32, vector: u8) -> bool {
    read(base + u32::from(vector / 32) * 0x10) & (1 << (vector % 32)) != 0
}

/// End of interrupt.
pub fn eoi() {
    write(EOI, 0);
}

/// The ESR after the write that makes the accumulated errors readable (§11.5.3).
pub fn esr() -> u32 {
    write(ESR, 0);
    read(ESR)
}

/// A fixed, physical, edge IPI of `vector` to APIC ID 0 (this vCPU) through the ICR (§11.6.1).
pub fn ipi_to_self(vector: u8) {
    write(ICR_HIGH, 0);
    write(ICR_LOW, u32::from(vector));
}
