//! Capability (§10.4.2) and Extended Capability (§10.4.3) registers, decoded.
//!
//! Features are gated on these bits, never on the Version register.

use conduit_paging::{LargePages, PagingLevels};
use core::fmt;

const fn bits(value: u64, low: u32, width: u32) -> u64 {
    (value >> low) & ((1 << width) - 1)
}

/// The Capability register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap(pub u64);

impl Cap {
    /// ND: domain-ID width code; 2^(4 + 2·ND) domains.
    pub const fn nd(self) -> u8 {
        bits(self.0, 0, 3) as u8
    }
    /// Number of domain IDs the unit supports.
    pub const fn domains(self) -> u32 {
        1 << (4 + 2 * self.nd() as u32)
    }
    pub const fn afl(self) -> bool {
        bits(self.0, 3, 1) != 0
    }
    /// Required Write-Buffer Flushing: table updates need GCMD.WBF to become visible.
    pub const fn rwbf(self) -> bool {
        bits(self.0, 4, 1) != 0
    }
    pub const fn plmr(self) -> bool {
        bits(self.0, 5, 1) != 0
    }
    pub const fn phmr(self) -> bool {
        bits(self.0, 6, 1) != 0
    }
    /// Caching Mode: not-present and erroneous entries may be cached, so making an entry present
    /// needs an invalidation too (§6.1).
    pub const fn cm(self) -> bool {
        bits(self.0, 7, 1) != 0
    }
    /// SAGAW: bit 1 = 39-bit (3-level), bit 2 = 48-bit (4-level), bit 3 = 57-bit (5-level).
    pub const fn sagaw(self) -> u8 {
        bits(self.0, 8, 5) as u8
    }
    /// MGAW: maximum guest address width in bits.
    pub const fn mgaw(self) -> u32 {
        bits(self.0, 16, 6) as u32 + 1
    }
    pub const fn zlr(self) -> bool {
        bits(self.0, 22, 1) != 0
    }
    /// Offset of the first fault-recording register (FRO × 16).
    pub const fn fault_record_offset(self) -> u64 {
        bits(self.0, 24, 10) * 16
    }
    /// SLLPS: bit 0 = 2 MiB, bit 1 = 1 GiB second-level large pages.
    pub const fn sllps(self) -> u8 {
        bits(self.0, 34, 4) as u8
    }
    /// Page-selective invalidation.
    pub const fn psi(self) -> bool {
        bits(self.0, 39, 1) != 0
    }
    /// NFR: number of fault-recording registers minus one.
    pub const fn nfr(self) -> u8 {
        bits(self.0, 40, 8) as u8
    }
    /// MAMV: largest address mask of a page-selective invalidation.
    pub const fn mamv(self) -> u8 {
        bits(self.0, 48, 6) as u8
    }
    pub const fn dwd(self) -> bool {
        bits(self.0, 54, 1) != 0
    }
    pub const fn drd(self) -> bool {
        bits(self.0, 55, 1) != 0
    }
    pub const fn fl1gp(self) -> bool {
        bits(self.0, 56, 1) != 0
    }
    pub const fn pi(self) -> bool {
        bits(self.0, 59, 1) != 0
    }

    /// Large pages the second-level tables may use.
    pub fn large_pages(self) -> LargePages {
        let mut lp = LargePages::empty();
        lp.set(LargePages::SIZE_2M, self.sllps() & 1 != 0);
        lp.set(LargePages::SIZE_1G, self.sllps() & 2 != 0);
        lp
    }

    /// The second-level table depth for domains: the widest adjusted guest address width the
    /// unit supports (SAGAW) that does not exceed MGAW, else the narrowest supported one. The
    /// paging library builds 3- and 4-level tables; 5-level (SAGAW bit 3) is not used.
    pub fn levels(self) -> Option<PagingLevels> {
        let four = self.sagaw() & 0b100 != 0;
        let three = self.sagaw() & 0b010 != 0;
        match (four, three) {
            (true, _) if self.mgaw() >= 48 => Some(PagingLevels::Four),
            (_, true) => Some(PagingLevels::Three),
            (true, false) => Some(PagingLevels::Four),
            (false, false) => None,
        }
    }
}

/// The AW field of a context entry for tables of `levels` levels (§9.3): 1 = 39-bit 3-level,
/// 2 = 48-bit 4-level.
pub const fn context_aw(levels: PagingLevels) -> u64 {
    match levels {
        PagingLevels::Three => 1,
        PagingLevels::Four => 2,
    }
}

impl fmt::Display for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = u8::from;
        write!(
            f,
            "ND={} ({} domains) AFL={} RWBF={} PLMR={} PHMR={} CM={} SAGAW={:#x} (",
            self.nd(),
            self.domains(),
            b(self.afl()),
            b(self.rwbf()),
            b(self.plmr()),
            b(self.phmr()),
            b(self.cm()),
            self.sagaw()
        )?;
        let mut first = true;
        for (bit, name) in [
            (1, "39-bit 3-level"),
            (2, "48-bit 4-level"),
            (3, "57-bit 5-level"),
        ] {
            if self.sagaw() & (1 << bit) != 0 {
                write!(f, "{}{name}", if first { "" } else { ", " })?;
                first = false;
            }
        }
        write!(
            f,
            ") MGAW={} ZLR={} FRO={:#x} SLLPS={:#x} (2M {}, 1G {}) PSI={} NFR={} ({} fault \
             record(s)) MAMV={} DWD={} DRD={} FL1GP={} PI={}",
            self.mgaw(),
            b(self.zlr()),
            self.fault_record_offset(),
            self.sllps(),
            if self.sllps() & 1 != 0 { "yes" } else { "no" },
            if self.sllps() & 2 != 0 { "yes" } else { "no" },
            b(self.psi()),
            self.nfr(),
            u32::from(self.nfr()) + 1,
            self.mamv(),
            b(self.dwd()),
            b(self.drd()),
            b(self.fl1gp()),
            b(self.pi())
        )
    }
}

/// The Extended Capability register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ecap(pub u64);

impl Ecap {
    /// Page-walk Coherency: 0 means table updates must be flushed from the CPU caches.
    pub const fn c(self) -> bool {
        bits(self.0, 0, 1) != 0
    }
    /// Queued Invalidation support.
    pub const fn qi(self) -> bool {
        bits(self.0, 1, 1) != 0
    }
    /// Device-TLB support.
    pub const fn dt(self) -> bool {
        bits(self.0, 2, 1) != 0
    }
    /// Interrupt Remapping support.
    pub const fn ir(self) -> bool {
        bits(self.0, 3, 1) != 0
    }
    /// Extended Interrupt Mode (x2APIC destinations).
    pub const fn eim(self) -> bool {
        bits(self.0, 4, 1) != 0
    }
    /// Pass-Through support.
    pub const fn pt(self) -> bool {
        bits(self.0, 6, 1) != 0
    }
    /// Snoop Control support.
    pub const fn sc(self) -> bool {
        bits(self.0, 7, 1) != 0
    }
    /// Offset of the IOTLB registers (IRO × 16).
    pub const fn iotlb_offset(self) -> u64 {
        bits(self.0, 8, 10) * 16
    }
    /// Maximum Handle Mask Value (interrupt-entry-cache invalidation).
    pub const fn mhmv(self) -> u8 {
        bits(self.0, 20, 4) as u8
    }
    pub const fn nest(self) -> bool {
        bits(self.0, 26, 1) != 0
    }
    pub const fn pasid(self) -> bool {
        bits(self.0, 40, 1) != 0
    }
    /// Scalable Mode Translation support.
    pub const fn smts(self) -> bool {
        bits(self.0, 43, 1) != 0
    }
}

impl fmt::Display for Ecap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = u8::from;
        write!(
            f,
            "C={} QI={} DT={} IR={} EIM={} PT={} SC={} IRO={:#x} MHMV={} NEST={} PASID={} SMTS={}",
            b(self.c()),
            b(self.qi()),
            b(self.dt()),
            b(self.ir()),
            b(self.eim()),
            b(self.pt()),
            b(self.sc()),
            self.iotlb_offset(),
            self.mhmv(),
            b(self.nest()),
            b(self.pasid()),
            b(self.smts())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QEMU 10 `intel-iommu,intremap=on,caching-mode=on` (measured; `docs/platforms.md`).
    const QEMU_CAP: u64 = 0x00d2_008c_222f_0686;
    const QEMU_ECAP: u64 = 0x00f0_0f4a;

    #[test]
    fn qemu_capabilities_decode() {
        let cap = Cap(QEMU_CAP);
        assert_eq!((cap.nd(), cap.domains()), (6, 65536));
        assert!(cap.cm() && !cap.rwbf() && !cap.afl());
        assert_eq!((cap.sagaw(), cap.mgaw()), (0x6, 48));
        assert_eq!((cap.fault_record_offset(), cap.nfr()), (0x220, 0));
        assert_eq!(cap.sllps(), 0x3);
        assert_eq!(cap.large_pages(), LargePages::SIZE_2M | LargePages::SIZE_1G);
        assert!(cap.psi() && cap.dwd() && cap.drd() && !cap.pi());
        assert_eq!(cap.mamv(), 18);
        assert_eq!(cap.levels(), Some(PagingLevels::Four));
        assert!(!Cap(0x00d2_008c_222f_0606).cm());
        let ecap = Ecap(QEMU_ECAP);
        assert!(!ecap.c() && ecap.qi() && ecap.ir() && ecap.pt());
        assert!(!ecap.dt() && !ecap.eim() && !ecap.sc());
        assert_eq!((ecap.iotlb_offset(), ecap.mhmv()), (0xf0, 15));
        assert!(Ecap(0x00f0_0f5a).eim());
    }

    #[test]
    fn table_depth_follows_sagaw_and_mgaw() {
        // aw-bits=39: SAGAW 0x2, MGAW 39 (CAP 0xd2008c22260286).
        let narrow = Cap(0x00d2_008c_2226_0286);
        assert_eq!((narrow.sagaw(), narrow.mgaw()), (0x2, 39));
        assert_eq!(narrow.levels(), Some(PagingLevels::Three));
        // Both offered but MGAW 39: 3 levels.
        let both_narrow = Cap((0x6 << 8) | (38 << 16));
        assert_eq!(both_narrow.levels(), Some(PagingLevels::Three));
        // Only 4-level: used even with a smaller MGAW.
        assert_eq!(
            Cap((0x4 << 8) | (38 << 16)).levels(),
            Some(PagingLevels::Four)
        );
        // Only 5-level (or nothing): unsupported here.
        assert_eq!(Cap(0x8 << 8).levels(), None);
        assert_eq!(context_aw(PagingLevels::Three), 1);
        assert_eq!(context_aw(PagingLevels::Four), 2);
    }

    #[test]
    fn display_names_every_field_the_log_needs() {
        let text = format!("{}", Cap(QEMU_CAP));
        for want in ["CM=1", "SAGAW=0x6", "MGAW=48", "NFR=0", "FRO=0x220"] {
            assert!(text.contains(want), "{want} missing from {text}");
        }
    }
}
