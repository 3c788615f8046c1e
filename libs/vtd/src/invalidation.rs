//! Invalidation of the context cache and the IOTLB (§6.5): as legacy 128-bit queued-invalidation
//! descriptors (§6.5.2) and as Context Command / IOTLB register commands (§6.5.1).
//!
//! Descriptors:
//! - context-cache invalidate (§6.5.2.1): type 1, granularity 5:4 (1 global, 2 domain, 3 device),
//!   DID 31:16, SID 47:32, FM 49:48;
//! - IOTLB invalidate (§6.5.2.3): type 2, granularity 5:4 (1 global, 2 domain, 3 page), DW 6,
//!   DR 7, DID 31:16; high qword: AM 5:0, IH 6, ADDR 63:12;
//! - invalidation wait (§6.5.2.8): type 5, IF 4, SW 5, FN 6, status data 63:32; high qword: the
//!   status address (bits 63:2).
//!
//! Registers: CCMD (§10.4.7): ICC 63, CIRG 62:61, FM 33:32, SID 31:16, DID 15:0. IOTLB_REG
//! (§10.4.8.1): IVT 63, IIRG 61:60, DR 49, DW 48, DID 47:32; IVA (§10.4.8.2): ADDR 63:12, IH 6,
//! AM 5:0.

use conduit_pci::Bdf;
use core::fmt;

/// One invalidation request. Hardware may invalidate more than asked (a coarser granularity);
/// never less.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalidation {
    /// Every cached context entry.
    ContextGlobal,
    /// The context entry of `source` (tagged `did`; under caching mode a not-present entry that
    /// became present is tagged 0, §6.1).
    ContextDevice { did: u16, source: Bdf },
    /// Every IOTLB entry and paging-structure cache entry.
    IotlbGlobal,
    /// IOTLB and paging-structure caches of domain `did`.
    IotlbDomain { did: u16 },
    /// The naturally aligned block of `2^order` pages at `addr` in domain `did`, paging-structure
    /// caches included (IH = 0).
    IotlbPages { did: u16, addr: u64, order: u32 },
}

impl Invalidation {
    /// The request a unit can carry out: a page-selective one becomes domain-selective where the
    /// unit has no page-selective invalidation (CAP.PSI = 0) or the block exceeds CAP.MAMV.
    pub const fn supported(self, psi: bool, mamv: u32) -> Self {
        match self {
            Self::IotlbPages { did, order, .. } if !psi || order > mamv => {
                Self::IotlbDomain { did }
            }
            other => other,
        }
    }
}

impl fmt::Display for Invalidation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::ContextGlobal => write!(f, "context cache (global)"),
            Self::ContextDevice { did, source } => {
                write!(f, "context cache (device {source}, DID {did})")
            }
            Self::IotlbGlobal => write!(f, "IOTLB (global)"),
            Self::IotlbDomain { did } => write!(f, "IOTLB (domain {did})"),
            Self::IotlbPages { did, addr, order } => write!(
                f,
                "IOTLB (page-selective, DID {did}, {addr:#x} + {} KiB)",
                4u64 << order
            ),
        }
    }
}

/// Whether IOTLB invalidations drain reads and writes in flight (CAP.DRD / CAP.DWD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Drain {
    pub reads: bool,
    pub writes: bool,
}

/// One legacy (128-bit) queued-invalidation descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    pub lo: u64,
    pub hi: u64,
}

const TYPE_CONTEXT: u64 = 1;
const TYPE_IOTLB: u64 = 2;
const TYPE_WAIT: u64 = 5;
const WAIT_SW: u64 = 1 << 5;

const fn granularity(g: u64) -> u64 {
    g << 4
}

const fn did_field(did: u16) -> u64 {
    (did as u64) << 16
}

impl Descriptor {
    /// The descriptor that carries out `inv`.
    pub const fn invalidation(inv: Invalidation, drain: Drain) -> Self {
        let iotlb = TYPE_IOTLB | ((drain.writes as u64) << 6) | ((drain.reads as u64) << 7);
        match inv {
            Invalidation::ContextGlobal => Self {
                lo: TYPE_CONTEXT | granularity(1),
                hi: 0,
            },
            Invalidation::ContextDevice { did, source } => Self {
                lo: TYPE_CONTEXT
                    | granularity(3)
                    | did_field(did)
                    | ((source.routing_id() as u64) << 32),
                hi: 0,
            },
            Invalidation::IotlbGlobal => Self {
                lo: iotlb | granularity(1),
                hi: 0,
            },
            Invalidation::IotlbDomain { did } => Self {
                lo: iotlb | granularity(2) | did_field(did),
                hi: 0,
            },
            Invalidation::IotlbPages { did, addr, order } => Self {
                lo: iotlb | granularity(3) | did_field(did),
                hi: (addr & !0xfff) | (order as u64 & 0x3f),
            },
        }
    }

    /// An invalidation wait descriptor asking for a status write of `data` to `status` (4-byte
    /// aligned) once every earlier descriptor completed.
    pub const fn wait(status: u64, data: u32) -> Self {
        Self {
            lo: TYPE_WAIT | WAIT_SW | ((data as u64) << 32),
            hi: status & !3,
        }
    }
}

/// Context Command (CCMD) bits.
const CCMD_ICC: u64 = 1 << 63;
/// IOTLB Invalidate register bits.
const IOTLB_IVT: u64 = 1 << 63;

/// What to write to the command registers for one invalidation (§6.5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterCommand {
    /// Write to CCMD, then wait until ICC (bit 63) reads 0.
    Context { ccmd: u64 },
    /// Write `iva` to IVA (when given), then `iotlb` to IOTLB_REG, then wait until IVT (bit 63)
    /// reads 0.
    Iotlb { iva: Option<u64>, iotlb: u64 },
}

impl RegisterCommand {
    /// The busy bit of the register written last.
    pub const BUSY: u64 = 1 << 63;

    /// The register writes that carry out `inv`.
    pub const fn for_invalidation(inv: Invalidation, drain: Drain) -> Self {
        let drains = ((drain.reads as u64) << 49) | ((drain.writes as u64) << 48);
        match inv {
            Invalidation::ContextGlobal => Self::Context {
                ccmd: CCMD_ICC | (1 << 61),
            },
            Invalidation::ContextDevice { did, source } => Self::Context {
                ccmd: CCMD_ICC | (3 << 61) | ((source.routing_id() as u64) << 16) | did as u64,
            },
            Invalidation::IotlbGlobal => Self::Iotlb {
                iva: None,
                iotlb: IOTLB_IVT | (1 << 60) | drains,
            },
            Invalidation::IotlbDomain { did: d } => Self::Iotlb {
                iva: None,
                iotlb: IOTLB_IVT | (2 << 60) | drains | ((d as u64) << 32),
            },
            Invalidation::IotlbPages {
                did: d,
                addr,
                order,
            } => Self::Iotlb {
                iva: Some((addr & !0xfff) | (order as u64 & 0x3f)),
                iotlb: IOTLB_IVT | (3 << 60) | drains | ((d as u64) << 32),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reserved-bit masks QEMU 10 checks on descriptors (`hw/i386/intel_iommu_internal.h`).
    const CC_RSVD: u64 = 0xfffc_0000_0000_ffc0;
    const IOTLB_RSVD_LO: u64 = 0xffff_ffff_0000_ff00;
    const IOTLB_RSVD_HI: u64 = 0xf80;
    const WAIT_RSVD_LO: u64 = 0xffff_ff80;
    const WAIT_RSVD_HI: u64 = 3;

    fn edu() -> Bdf {
        Bdf::new(0, 4, 0).expect("valid")
    }

    const DRAIN: Drain = Drain {
        reads: true,
        writes: true,
    };

    #[test]
    fn context_descriptors() {
        let g = Descriptor::invalidation(Invalidation::ContextGlobal, DRAIN);
        assert_eq!((g.lo, g.hi), (0x11, 0));
        let d = Descriptor::invalidation(
            Invalidation::ContextDevice {
                did: 0,
                source: edu(),
            },
            DRAIN,
        );
        // Device granularity, SID 0x0020 (00:04.0) in bits 47:32.
        assert_eq!(d.lo, 0x0000_0020_0000_0031);
        assert_eq!(d.lo & CC_RSVD, 0);
    }

    #[test]
    fn iotlb_descriptors() {
        let d = Descriptor::invalidation(
            Invalidation::IotlbPages {
                did: 1,
                addr: 0x420_0000,
                order: 9,
            },
            DRAIN,
        );
        assert_eq!(d.lo, 0x0001_00f2);
        assert_eq!(d.hi, 0x420_0009);
        assert_eq!((d.lo & IOTLB_RSVD_LO, d.hi & IOTLB_RSVD_HI), (0, 0));
        let g = Descriptor::invalidation(Invalidation::IotlbGlobal, Drain::default());
        assert_eq!((g.lo, g.hi), (0x12, 0));
        let dom = Descriptor::invalidation(Invalidation::IotlbDomain { did: 0xffff }, DRAIN);
        assert_eq!(dom.lo, 0xffff_00e2);
    }

    #[test]
    fn wait_descriptor() {
        let w = Descriptor::wait(0x9000, 7);
        assert_eq!((w.lo, w.hi), (0x0000_0007_0000_0025, 0x9000));
        assert_eq!((w.lo & WAIT_RSVD_LO, w.hi & WAIT_RSVD_HI), (0, 0));
    }

    #[test]
    fn register_commands() {
        assert_eq!(
            RegisterCommand::for_invalidation(Invalidation::ContextGlobal, DRAIN),
            RegisterCommand::Context {
                ccmd: 0xa000_0000_0000_0000
            }
        );
        assert_eq!(
            RegisterCommand::for_invalidation(
                Invalidation::ContextDevice {
                    did: 3,
                    source: edu()
                },
                DRAIN
            ),
            RegisterCommand::Context {
                ccmd: 0xe000_0000_0020_0003
            }
        );
        assert_eq!(
            RegisterCommand::for_invalidation(
                Invalidation::IotlbPages {
                    did: 1,
                    addr: 0x420_0000,
                    order: 0
                },
                DRAIN
            ),
            RegisterCommand::Iotlb {
                iva: Some(0x420_0000),
                iotlb: 0xb003_0001_0000_0000
            }
        );
        assert_eq!(
            RegisterCommand::for_invalidation(Invalidation::IotlbGlobal, Drain::default()),
            RegisterCommand::Iotlb {
                iva: None,
                iotlb: 0x9000_0000_0000_0000
            }
        );
    }

    #[test]
    fn page_selective_falls_back_to_domain() {
        let pages = Invalidation::IotlbPages {
            did: 2,
            addr: 0,
            order: 19,
        };
        assert_eq!(
            pages.supported(true, 18),
            Invalidation::IotlbDomain { did: 2 }
        );
        assert_eq!(
            pages.supported(false, 63),
            Invalidation::IotlbDomain { did: 2 }
        );
        assert_eq!(pages.supported(true, 19), pages);
    }
}
