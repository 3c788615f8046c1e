//! What can be invalidated, and the register-based invalidation interface (§6.5.1), used where
//! ECAP.QI = 0 and before the invalidation queue is enabled (the two must not be mixed: with
//! queued invalidation enabled, the command registers may not be used).

use super::VtdError;
use super::regs::{IotlbRegisters, Registers, ccmd, iotlb};
use conduit_pci::Bdf;
use core::fmt;
use volatile::{VolatilePtr, map_field};

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
    /// The naturally aligned block of `2^order` pages at `addr` in domain `did` (with paging-
    /// structure caches: IH = 0).
    IotlbPages { did: u16, addr: u64, order: u32 },
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

/// Whether IOTLB invalidations should drain reads and writes in flight (CAP.DRD / CAP.DWD).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drain {
    pub reads: bool,
    pub writes: bool,
}

/// Spins until `done` or about a few seconds of TSC cycles passed.
pub fn wait_for(mut done: impl FnMut() -> bool) -> bool {
    const LIMIT: u64 = 1 << 34;
    let start = crate::arch::x86_64::rdtsc();
    loop {
        if done() {
            return true;
        }
        if crate::arch::x86_64::rdtsc().wrapping_sub(start) > LIMIT {
            return done();
        }
        core::hint::spin_loop();
    }
}

/// Carries out `inv` through the Context Command or IOTLB registers and waits for completion.
pub fn by_register(
    regs: VolatilePtr<'static, Registers>,
    tlb: VolatilePtr<'static, IotlbRegisters>,
    drain: Drain,
    inv: Invalidation,
) -> Result<(), VtdError> {
    let command = match inv {
        Invalidation::ContextGlobal => Some(ccmd::GLOBAL),
        Invalidation::ContextDevice { did, source } => {
            Some(ccmd::DEVICE | ccmd::did(did) | ccmd::sid(source.routing_id()))
        }
        _ => None,
    };
    if let Some(command) = command {
        let reg = map_field!(regs.ccmd);
        reg.write(ccmd::ICC | command);
        return if wait_for(|| reg.read() & ccmd::ICC == 0) {
            Ok(())
        } else {
            Err(VtdError::Timeout {
                what: "context-cache invalidation (CCMD.ICC)",
            })
        };
    }
    let mut command = iotlb::IVT;
    if drain.reads {
        command |= iotlb::DR;
    }
    if drain.writes {
        command |= iotlb::DW;
    }
    match inv {
        Invalidation::IotlbDomain { did } => command |= iotlb::DOMAIN | iotlb::did(did),
        Invalidation::IotlbPages { did, addr, order } => {
            map_field!(tlb.iva).write((addr & !0xfff) | u64::from(order));
            command |= iotlb::PAGE | iotlb::did(did);
        }
        _ => command |= iotlb::GLOBAL,
    }
    let reg = map_field!(tlb.iotlb);
    reg.write(command);
    if wait_for(|| reg.read() & iotlb::IVT == 0) {
        Ok(())
    } else {
        Err(VtdError::Timeout {
            what: "IOTLB invalidation (IOTLB_REG.IVT)",
        })
    }
}
