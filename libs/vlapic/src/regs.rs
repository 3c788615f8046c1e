//! The register page layout (SDM Vol. 3A §11.4.1, Table 11-1 "Local APIC Register Address
//! Map"; Vol. 3C §30.1 "Virtual APIC State" for the virtual-APIC page, which uses the same
//! offsets) and the writable bits of each register.

/// Register offsets in the 4 KiB page (each 32-bit register at the start of a 16-byte slot).
pub mod offset {
    /// Local APIC ID (xAPIC: bits 31:24; x2APIC: all 32 bits).
    pub const ID: u32 = 0x020;
    /// Version (read-only).
    pub const VERSION: u32 = 0x030;
    /// Task priority.
    pub const TPR: u32 = 0x080;
    /// Processor priority (read-only).
    pub const PPR: u32 = 0x0A0;
    /// EOI (write-only).
    pub const EOI: u32 = 0x0B0;
    /// Logical destination.
    pub const LDR: u32 = 0x0D0;
    /// Destination format (xAPIC only).
    pub const DFR: u32 = 0x0E0;
    /// Spurious-interrupt vector.
    pub const SVR: u32 = 0x0F0;
    /// In-service register, 8 × 32 bits at 0x100-0x170.
    pub const ISR: u32 = 0x100;
    /// Trigger-mode register, 8 × 32 bits at 0x180-0x1F0.
    pub const TMR: u32 = 0x180;
    /// Interrupt-request register, 8 × 32 bits at 0x200-0x270.
    pub const IRR: u32 = 0x200;
    /// Error status.
    pub const ESR: u32 = 0x280;
    /// LVT corrected machine-check interrupt.
    pub const LVT_CMCI: u32 = 0x2F0;
    /// Interrupt command, bits 31:0.
    pub const ICR_LOW: u32 = 0x300;
    /// Interrupt command, bits 63:32 in xAPIC mode (destination in bits 31:24).
    pub const ICR_HIGH: u32 = 0x310;
    /// Interrupt command, bits 63:32 in x2APIC mode: the CPU's x2APIC virtualization treats
    /// the ICR as one 64-bit field at offset 0x300 (SDM Vol. 3C §30.5).
    pub const X2APIC_ICR_HIGH: u32 = 0x304;
    /// LVT timer.
    pub const LVT_TIMER: u32 = 0x320;
    /// LVT thermal sensor.
    pub const LVT_THERMAL: u32 = 0x330;
    /// LVT performance-monitoring counters.
    pub const LVT_PERF: u32 = 0x340;
    /// LVT LINT0.
    pub const LVT_LINT0: u32 = 0x350;
    /// LVT LINT1.
    pub const LVT_LINT1: u32 = 0x360;
    /// LVT error.
    pub const LVT_ERROR: u32 = 0x370;
    /// Timer initial count.
    pub const INITIAL_COUNT: u32 = 0x380;
    /// Timer current count (read-only).
    pub const CURRENT_COUNT: u32 = 0x390;
    /// Timer divide configuration.
    pub const DIVIDE_CONFIG: u32 = 0x3E0;
    /// Self IPI (x2APIC only; write-only).
    pub const SELF_IPI: u32 = 0x3F0;
}

/// Local vector table entries (SDM Vol. 3A §11.5.1, Figure 11-8).
pub mod lvt {
    use super::offset;

    /// Bit 16: the entry is masked.
    pub const MASKED: u32 = 1 << 16;

    /// Every LVT register this model implements (7, so the version register's "max LVT
    /// entry" is 6).
    pub const ALL: [u32; 7] = [
        offset::LVT_CMCI,
        offset::LVT_TIMER,
        offset::LVT_THERMAL,
        offset::LVT_PERF,
        offset::LVT_LINT0,
        offset::LVT_LINT1,
        offset::LVT_ERROR,
    ];

    /// The bits software may set in the LVT at `offset`: vector (7:0) and mask (16) in all;
    /// delivery mode (10:8) in CMCI, thermal, performance and LINT; pin polarity (13) and
    /// trigger mode (15) in LINT; timer mode (18:17) in the timer. Delivery status (12) and
    /// remote IRR (14) are read-only and never set by this model.
    pub fn writable(offset: u32) -> u32 {
        const VECTOR_MASK: u32 = 0xFF | MASKED;
        const DELIVERY_MODE: u32 = 0x700;
        match offset {
            offset::LVT_TIMER => VECTOR_MASK | (3 << 17),
            offset::LVT_LINT0 | offset::LVT_LINT1 => {
                VECTOR_MASK | DELIVERY_MODE | (1 << 13) | (1 << 15)
            }
            offset::LVT_ERROR => VECTOR_MASK,
            _ => VECTOR_MASK | DELIVERY_MODE,
        }
    }
}

/// Error status register bits (SDM Vol. 3A §11.5.3, Figure 11-9).
pub mod esr {
    /// Bit 5: an IPI with an illegal vector (0-15) was sent.
    pub const SEND_ILLEGAL_VECTOR: u32 = 1 << 5;
    /// Bit 6: an interrupt with an illegal vector was received or generated locally.
    pub const RECEIVE_ILLEGAL_VECTOR: u32 = 1 << 6;
    /// Bit 7: xAPIC access to a reserved register offset.
    pub const ILLEGAL_REGISTER_ADDRESS: u32 = 1 << 7;
}

/// Version register: version 0x14 (integrated APIC), max LVT entry 6 in bits 23:16. Bit 24
/// (EOI-broadcast suppression) is clear: the model does not offer directed EOI.
pub const VERSION: u32 = 0x14 | ((lvt::ALL.len() as u32 - 1) << 16);

/// SVR bits software may set: vector (7:0), APIC software enable (8) and focus-processor
/// checking (9, kept but without effect: there is no lowest-priority arbitration here).
pub const SVR_WRITABLE: u32 = 0x3FF;
/// SVR bit 8: APIC software enabled.
pub const SVR_ENABLED: u32 = 1 << 8;

/// ICR bits 31:0 software may set: vector, delivery mode, destination mode, level, trigger
/// mode, destination shorthand (delivery status, bit 12, is read-only and always 0 here: the
/// model delivers at once).
pub const ICR_LOW_WRITABLE: u32 = 0x000C_CFFF;

/// Divide configuration bits 3 and 1:0.
pub const DCR_WRITABLE: u32 = 0xB;

/// A register, as both interfaces (MMIO offsets and x2APIC MSRs) name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reg {
    Id,
    Version,
    Tpr,
    Ppr,
    Eoi,
    Ldr,
    Dfr,
    Svr,
    /// ISR, TMR or IRR (read-only, read straight from the page).
    Bitmap(u32),
    Esr,
    Lvt(u32),
    IcrLow,
    IcrHigh,
    InitialCount,
    CurrentCount,
    DivideConfig,
    SelfIpi,
}

/// The register at a 16-byte aligned `offset`; `None` for a reserved offset.
pub(crate) fn decode(offset: u32) -> Option<Reg> {
    use offset::*;
    Some(match offset {
        ID => Reg::Id,
        VERSION => Reg::Version,
        TPR => Reg::Tpr,
        PPR => Reg::Ppr,
        EOI => Reg::Eoi,
        LDR => Reg::Ldr,
        DFR => Reg::Dfr,
        SVR => Reg::Svr,
        0x100..=0x270 => Reg::Bitmap(offset),
        ESR => Reg::Esr,
        ICR_LOW => Reg::IcrLow,
        ICR_HIGH => Reg::IcrHigh,
        INITIAL_COUNT => Reg::InitialCount,
        CURRENT_COUNT => Reg::CurrentCount,
        DIVIDE_CONFIG => Reg::DivideConfig,
        SELF_IPI => Reg::SelfIpi,
        _ if lvt::ALL.contains(&offset) => Reg::Lvt(offset),
        _ => return None,
    })
}
