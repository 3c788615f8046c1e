//! PCI Express capability and ARI helpers.
//!
//! PCI Express Capability structure: PCIe Base Spec r6.0 §7.5.3 (Capabilities register at +0x02
//! with the Device/Port Type in bits 7:4 and the capability version in bits 3:0; Device
//! Capabilities 2 at +0x24, Device Control 2 at +0x28, present from version 2). ARI Extended
//! Capability: §7.8.7 (ARI Capability register at +0x04 with the Next Function Number in bits
//! 15:8). ARI itself: §6.13.

use crate::bdf::Bdf;
use crate::caps::{cap_id, ext_cap_id, find_capability, find_ext_capability};
use crate::config::ConfigAccess;
use crate::error::CapError;

/// Offset of the PCI Express Capabilities register within the capability.
pub const PCIE_CAPS: u16 = 0x02;
/// Offset of Device Capabilities 2.
pub const PCIE_DEVCAP2: u16 = 0x24;
/// Offset of Device Control 2.
pub const PCIE_DEVCTL2: u16 = 0x28;
/// Device Capabilities 2: ARI Forwarding Supported.
pub const DEVCAP2_ARI_FORWARDING: u32 = 1 << 5;
/// Device Control 2: ARI Forwarding Enable.
pub const DEVCTL2_ARI_FORWARDING: u16 = 1 << 5;
/// Offset of the ARI Capability register within the ARI extended capability.
pub const ARI_CAP: u16 = 0x04;

/// Device/Port Type of a PCIe function (PCI Express Capabilities register bits 7:4).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PortType {
    /// PCI Express Endpoint.
    Endpoint,
    /// Legacy PCI Express Endpoint.
    LegacyEndpoint,
    /// Root Port of a Root Complex.
    RootPort,
    /// Upstream Port of a switch.
    SwitchUpstream,
    /// Downstream Port of a switch.
    SwitchDownstream,
    /// PCI Express to PCI/PCI-X bridge.
    PcieToPciBridge,
    /// PCI/PCI-X to PCI Express bridge.
    PciToPcieBridge,
    /// Root Complex Integrated Endpoint.
    RcIntegratedEndpoint,
    /// Root Complex Event Collector.
    RcEventCollector,
    /// A reserved encoding.
    Reserved(u8),
}

impl PortType {
    /// Decodes the 4-bit Device/Port Type field.
    #[must_use]
    pub const fn from_bits(bits: u8) -> Self {
        match bits & 0xf {
            0x0 => Self::Endpoint,
            0x1 => Self::LegacyEndpoint,
            0x4 => Self::RootPort,
            0x5 => Self::SwitchUpstream,
            0x6 => Self::SwitchDownstream,
            0x7 => Self::PcieToPciBridge,
            0x8 => Self::PciToPcieBridge,
            0x9 => Self::RcIntegratedEndpoint,
            0xa => Self::RcEventCollector,
            other => Self::Reserved(other),
        }
    }

    /// Root Ports and Switch Downstream Ports: the ports whose ARI forwarding matters.
    #[must_use]
    pub const fn is_downstream_port(self) -> bool {
        matches!(self, Self::RootPort | Self::SwitchDownstream)
    }
}

/// The PCI Express capability of a function: where it is, its version and port type.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PcieCap {
    /// Offset of the capability.
    pub offset: u16,
    /// Capability version (1 or 2).
    pub version: u8,
    /// Device/Port Type.
    pub port_type: PortType,
}

/// Finds and decodes the PCI Express capability; `None` for a conventional PCI function.
pub fn pcie_cap<C: ConfigAccess + ?Sized>(cfg: &C, bdf: Bdf) -> Result<Option<PcieCap>, CapError> {
    let Some(offset) = find_capability(cfg, bdf, cap_id::PCIE)? else {
        return Ok(None);
    };
    let caps = cfg.read16(bdf, offset + PCIE_CAPS);
    Ok(Some(PcieCap {
        offset,
        version: (caps & 0xf) as u8,
        port_type: PortType::from_bits((caps >> 4) as u8),
    }))
}

/// Whether the function (a Downstream Port) supports ARI forwarding. `false` without a
/// version-2 PCI Express capability.
pub fn ari_forwarding_supported<C: ConfigAccess + ?Sized>(
    cfg: &C,
    bdf: Bdf,
) -> Result<bool, CapError> {
    Ok(match pcie_cap(cfg, bdf)? {
        Some(cap) if cap.version >= 2 => {
            cfg.read32(bdf, cap.offset + PCIE_DEVCAP2) & DEVCAP2_ARI_FORWARDING != 0
        }
        _ => false,
    })
}

/// Whether ARI forwarding is enabled in the function's Device Control 2.
pub fn ari_forwarding_enabled<C: ConfigAccess + ?Sized>(
    cfg: &C,
    bdf: Bdf,
) -> Result<bool, CapError> {
    Ok(match pcie_cap(cfg, bdf)? {
        Some(cap) if cap.version >= 2 => {
            cfg.read16(bdf, cap.offset + PCIE_DEVCTL2) & DEVCTL2_ARI_FORWARDING != 0
        }
        _ => false,
    })
}

/// Sets or clears ARI Forwarding Enable on a Downstream Port. Returns whether forwarding is now
/// enabled: enabling a port that does not support it changes nothing and returns `false`.
/// (Device Status 2, the other half of the dword, is reserved, so the word write is safe.)
pub fn set_ari_forwarding<C: ConfigAccess + ?Sized>(
    cfg: &mut C,
    bdf: Bdf,
    enable: bool,
) -> Result<bool, CapError> {
    let Some(cap) = pcie_cap(cfg, bdf)? else {
        return Ok(false);
    };
    if cap.version < 2 {
        return Ok(false);
    }
    let supported = cfg.read32(bdf, cap.offset + PCIE_DEVCAP2) & DEVCAP2_ARI_FORWARDING != 0;
    if enable && !supported {
        return Ok(false);
    }
    let ctl = cfg.read16(bdf, cap.offset + PCIE_DEVCTL2);
    let new = if enable {
        ctl | DEVCTL2_ARI_FORWARDING
    } else {
        ctl & !DEVCTL2_ARI_FORWARDING
    };
    if new != ctl {
        cfg.write16(bdf, cap.offset + PCIE_DEVCTL2, new);
    }
    Ok(cfg.read16(bdf, cap.offset + PCIE_DEVCTL2) & DEVCTL2_ARI_FORWARDING != 0)
}

/// The ARI capability of a function: where it is and its Next Function Number.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AriCap {
    /// Offset of the capability.
    pub offset: u16,
    /// Next Function Number (ARI Capability bits 15:8): the next PF of the device, 0 at the end.
    pub next_function: u8,
}

/// Finds the ARI extended capability; `None` if the function has none.
pub fn ari_cap<C: ConfigAccess + ?Sized>(cfg: &C, bdf: Bdf) -> Result<Option<AriCap>, CapError> {
    let Some(offset) = find_ext_capability(cfg, bdf, ext_cap_id::ARI)? else {
        return Ok(None);
    };
    Ok(Some(AriCap {
        offset,
        next_function: (cfg.read16(bdf, offset + ARI_CAP) >> 8) as u8,
    }))
}
