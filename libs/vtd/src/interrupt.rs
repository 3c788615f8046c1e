//! Interrupt remapping (§5.1) as far as the unit's registers and queue are concerned: the
//! Interrupt Entry Cache invalidation descriptor (§6.5.2.5), the interrupt-remapping bits of the
//! Global Command / Status registers (§10.4.4, §10.4.5) and the interrupt-remapping fault reasons
//! (Appendix A, 0x20-0x27). The table entries, IRTA_REG and the message formats are encoded by
//! `conduit_irq`.
//!
//! Interrupt Entry Cache invalidate descriptor (legacy 128-bit form):
//!
//! | bits | field |
//! |---|---|
//! | 3:0 | type = 4 |
//! | 4 | G, granularity: 0 global, 1 index-selective |
//! | 26:5 | reserved (0; bits 11:9 are the upper type bits of 256-bit descriptors, 0 here) |
//! | 31:27 | IM, index mask: 2^IM entries starting at IIDX (aligned) |
//! | 47:32 | IIDX, interrupt index |
//! | 127:48 | reserved (0) |

use crate::invalidation::Descriptor;
use core::fmt;

const TYPE_IEC: u64 = 4;
const IEC_INDEX_SELECTIVE: u64 = 1 << 4;
const IEC_IM_SHIFT: u32 = 27;
const IEC_IIDX_SHIFT: u32 = 32;

/// Largest IM value the descriptor can carry (5 bits).
pub const MAX_INDEX_MASK: u8 = 31;

/// Which cached interrupt entries to drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IecInvalidation {
    /// Every cached IRTE (required after SIRTP, §6.5.2.5 / §10.4.4).
    Global,
    /// The naturally aligned block of `2^mask` entries containing `index`.
    Index {
        /// First entry (the unit ignores its low `mask` bits).
        index: u16,
        /// IM: log2 of the block size.
        mask: u8,
    },
}

impl IecInvalidation {
    /// The smallest index-selective invalidation covering `index..index + count` (`count` ≥ 1),
    /// or `Global` when the block would exceed `max_mask` (ECAP.MHMV) or the descriptor's range.
    pub const fn covering(index: u16, count: u32, max_mask: u8) -> Self {
        if count == 0 {
            return Self::Global;
        }
        let last = index as u32 + count - 1;
        let mut mask: u8 = 0;
        while mask <= MAX_INDEX_MASK && mask <= max_mask {
            let base = (index as u32 >> mask) << mask;
            if base + (1 << mask) > last {
                return Self::Index {
                    index: base as u16,
                    mask,
                };
            }
            mask += 1;
        }
        Self::Global
    }

    /// The queued-invalidation descriptor.
    pub const fn descriptor(self) -> Descriptor {
        match self {
            Self::Global => Descriptor {
                lo: TYPE_IEC,
                hi: 0,
            },
            Self::Index { index, mask } => Descriptor {
                lo: TYPE_IEC
                    | IEC_INDEX_SELECTIVE
                    | (((mask & MAX_INDEX_MASK) as u64) << IEC_IM_SHIFT)
                    | ((index as u64) << IEC_IIDX_SHIFT),
                hi: 0,
            },
        }
    }
}

impl fmt::Display for IecInvalidation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Global => write!(f, "interrupt entry cache (global)"),
            Self::Index { index, mask: 0 } => {
                write!(f, "interrupt entry cache (index {index})")
            }
            Self::Index { index, mask } => write!(
                f,
                "interrupt entry cache (indices {index}-{})",
                u32::from(index) + (1u32 << mask) - 1
            ),
        }
    }
}

/// Global Command / Status bits of interrupt remapping (§10.4.4, §10.4.5); command and status
/// bits share positions.
pub mod global {
    /// Interrupt Remapping Enable / Interrupt Remapping Enable Status (IRE / IRES).
    pub const IRE: u32 = 1 << 25;
    /// Set Interrupt Remap Table Pointer (one-shot) / Interrupt Remapping Table Pointer Status
    /// (SIRTP / IRTPS).
    pub const SIRTP: u32 = 1 << 24;
    /// Compatibility Format Interrupt: set lets compatibility-format interrupts bypass remapping
    /// (CFI / CFIS). Conduit keeps it clear.
    pub const CFI: u32 = 1 << 23;
}

/// Whether a fault reason belongs to interrupt remapping (0x20-0x27) rather than DMA remapping.
pub const fn is_interrupt_reason(reason: u8) -> bool {
    reason >= 0x20 && reason <= 0x27
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QEMU 10's reserved-bit mask for this descriptor (`VTD_INV_DESC_IEC_RSVD`).
    const IEC_RSVD: u64 = 0xffff_0000_07ff_f1e0;

    #[test]
    fn global_descriptor() {
        let d = IecInvalidation::Global.descriptor();
        assert_eq!((d.lo, d.hi), (0x4, 0));
    }

    #[test]
    fn index_selective_descriptor() {
        let d = IecInvalidation::Index { index: 5, mask: 0 }.descriptor();
        assert_eq!(d.lo, 0x0000_0005_0000_0014);
        assert_eq!((d.lo & IEC_RSVD, d.hi), (0, 0));
        let d = IecInvalidation::Index {
            index: 0xffe0,
            mask: 5,
        }
        .descriptor();
        assert_eq!(d.lo, 0x0000_ffe0_2800_0014);
        assert_eq!(d.lo & IEC_RSVD, 0);
    }

    #[test]
    fn covering_blocks() {
        assert_eq!(
            IecInvalidation::covering(7, 1, 15),
            IecInvalidation::Index { index: 7, mask: 0 }
        );
        // 6..=9 straddles an 8-aligned boundary: the 16-entry block at 0.
        assert_eq!(
            IecInvalidation::covering(6, 4, 15),
            IecInvalidation::Index { index: 0, mask: 4 }
        );
        assert_eq!(
            IecInvalidation::covering(32, 32, 15),
            IecInvalidation::Index { index: 32, mask: 5 }
        );
        // Beyond MHMV: global.
        assert_eq!(IecInvalidation::covering(6, 4, 1), IecInvalidation::Global);
        assert_eq!(IecInvalidation::covering(0, 0, 15), IecInvalidation::Global);
        assert_eq!(
            IecInvalidation::covering(0xffff, 1, 15),
            IecInvalidation::Index {
                index: 0xffff,
                mask: 0
            }
        );
    }

    #[test]
    fn interrupt_reasons() {
        assert!(!is_interrupt_reason(0x05));
        assert!(!is_interrupt_reason(0x1f));
        for r in 0x20..=0x27 {
            assert!(is_interrupt_reason(r), "{r:#x}");
        }
        assert!(!is_interrupt_reason(0x28));
    }

    #[test]
    fn display() {
        assert_eq!(
            IecInvalidation::Global.to_string(),
            "interrupt entry cache (global)"
        );
        assert_eq!(
            IecInvalidation::Index { index: 3, mask: 0 }.to_string(),
            "interrupt entry cache (index 3)"
        );
        assert_eq!(
            IecInvalidation::Index { index: 8, mask: 3 }.to_string(),
            "interrupt entry cache (indices 8-15)"
        );
    }
}
