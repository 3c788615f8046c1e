//! PCI-to-PCI bridge bus numbers (PCI-to-PCI Bridge Architecture Spec 1.2 §3.2.5.2–§3.2.5.4;
//! PCIe Base Spec r6.0 §7.5.1.3: Primary, Secondary and Subordinate Bus Number at 0x18..=0x1a of
//! a Type 1 header).

use core::ops::RangeInclusive;

use crate::bdf::Bdf;
use crate::config::{self, ConfigAccess, HeaderLayout, reg};
use crate::error::PciError;

/// The bus numbers of a bridge.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BridgeBuses {
    /// The bus the bridge sits on.
    pub primary: u8,
    /// The bus directly behind it.
    pub secondary: u8,
    /// The highest bus number behind it.
    pub subordinate: u8,
}

impl BridgeBuses {
    /// The buses the bridge forwards to, `secondary..=subordinate`; `None` while unconfigured
    /// (secondary 0) or inconsistent (subordinate below secondary).
    #[must_use]
    pub fn range(&self) -> Option<RangeInclusive<u8>> {
        (self.secondary != 0 && self.subordinate >= self.secondary)
            .then_some(self.secondary..=self.subordinate)
    }

    /// Whether `bus` is behind this bridge.
    #[must_use]
    pub fn forwards(&self, bus: u8) -> bool {
        self.range().is_some_and(|r| r.contains(&bus))
    }
}

/// Reads the bus numbers of the bridge at `bdf`. Errors: the function is absent, or its header
/// is not Type 1.
pub fn bridge_buses<C: ConfigAccess + ?Sized>(cfg: &C, bdf: Bdf) -> Result<BridgeBuses, PciError> {
    let header = config::read_header(cfg, bdf)?;
    if header.layout() != HeaderLayout::Bridge {
        return Err(PciError::NotABridge {
            bdf,
            header_type: header.header_type,
        });
    }
    let dword = cfg.read32(bdf, reg::PRIMARY_BUS);
    Ok(BridgeBuses {
        primary: dword as u8,
        secondary: (dword >> 8) as u8,
        subordinate: (dword >> 16) as u8,
    })
}

/// Programs the bus numbers of the bridge at `bdf`, keeping the Secondary Latency Timer byte.
pub fn set_bridge_buses<C: ConfigAccess + ?Sized>(
    cfg: &mut C,
    bdf: Bdf,
    buses: BridgeBuses,
) -> Result<(), PciError> {
    bridge_buses(cfg, bdf)?;
    let old = cfg.read32(bdf, reg::PRIMARY_BUS);
    let new = (old & 0xff00_0000)
        | u32::from(buses.primary)
        | (u32::from(buses.secondary) << 8)
        | (u32::from(buses.subordinate) << 16);
    cfg.write32(bdf, reg::PRIMARY_BUS, new);
    Ok(())
}
