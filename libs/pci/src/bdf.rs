//! Bus/Device/Function addresses and PCIe Routing IDs.
//!
//! A PCIe *Routing ID* (PCIe Base Spec r6.0 §2.2.6.2, "Transaction Descriptor - Requester ID")
//! is the 16-bit value `bus << 8 | device << 3 | function`. With Alternative Routing-ID
//! Interpretation (ARI, PCIe Base Spec §6.13) the low eight bits are one 8-bit Function Number
//! and the Device Number is implicitly 0. The *number* is the same either way: ECAM config
//! addresses (PCIe Base Spec §7.2.2), VT-d context-table indices (VT-d spec §3.4.2 / §9.3) and
//! MSI requester-id checks all use the 16-bit value directly. Only its human reading changes,
//! so [`Bdf`] stores the raw `(bus, devfn)` pair and offers both readings.

use core::fmt;
use core::str::FromStr;

/// A PCI function address on one segment: bus, device (0..=31), function (0..=7).
///
/// Ordered by routing ID. `Display` prints the conventional `bb:dd.f` (lower-case hex bus and
/// device, decimal function), the form Linux `lspci` uses, also for ARI functions.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Bdf {
    bus: u8,
    devfn: u8,
}

impl Bdf {
    /// Largest conventional device number.
    pub const MAX_DEVICE: u8 = 31;
    /// Largest conventional function number.
    pub const MAX_FUNCTION: u8 = 7;

    /// `bus:device.function`; `None` if `device > 31` or `function > 7`.
    #[must_use]
    pub const fn new(bus: u8, device: u8, function: u8) -> Option<Self> {
        if device > Self::MAX_DEVICE || function > Self::MAX_FUNCTION {
            return None;
        }
        Some(Self {
            bus,
            devfn: (device << 3) | function,
        })
    }

    /// From a bus and an 8-bit `devfn` (`device << 3 | function`). Total: every `devfn` is valid.
    #[must_use]
    pub const fn from_devfn(bus: u8, devfn: u8) -> Self {
        Self { bus, devfn }
    }

    /// From an ARI function number (PCIe Base Spec §6.13): device 0, 8-bit function.
    /// Same bits as [`Bdf::from_devfn`]; the name documents the intent.
    #[must_use]
    pub const fn from_ari(bus: u8, ari_function: u8) -> Self {
        Self {
            bus,
            devfn: ari_function,
        }
    }

    /// From a 16-bit routing ID (requester ID).
    #[must_use]
    pub const fn from_routing_id(rid: u16) -> Self {
        Self {
            bus: (rid >> 8) as u8,
            devfn: rid as u8,
        }
    }

    /// The 16-bit routing ID: `bus << 8 | devfn`.
    #[must_use]
    pub const fn routing_id(self) -> u16 {
        ((self.bus as u16) << 8) | self.devfn as u16
    }

    /// Bus number.
    #[must_use]
    pub const fn bus(self) -> u8 {
        self.bus
    }

    /// Device number under the conventional (non-ARI) reading, 0..=31.
    #[must_use]
    pub const fn device(self) -> u8 {
        self.devfn >> 3
    }

    /// Function number under the conventional (non-ARI) reading, 0..=7.
    #[must_use]
    pub const fn function(self) -> u8 {
        self.devfn & 7
    }

    /// The 8-bit `devfn`.
    #[must_use]
    pub const fn devfn(self) -> u8 {
        self.devfn
    }

    /// Function number under the ARI reading (PCIe Base Spec §6.13): the whole low byte.
    #[must_use]
    pub const fn ari_function(self) -> u8 {
        self.devfn
    }

    /// Whether a Type 0 configuration request to this function must pass a Downstream Port
    /// with *ARI Forwarding Enable* set.
    ///
    /// A Downstream Port (Root Port or Switch Downstream Port) without ARI forwarding handles
    /// every Type 0 request whose Device Number is not 0 as an Unsupported Request (PCIe Base
    /// Spec §6.13, "ARI Forwarding"). Functions with a conventional device number other than 0 on the bus
    /// directly below such a port, e.g. igb VFs at `01:10.0`, are therefore reachable only with
    /// ARI forwarding on (Device Control 2 bit 5, see [`crate::pcie`]).
    #[must_use]
    pub const fn requires_ari_forwarding(self) -> bool {
        self.device() != 0
    }

    /// `self + delta` as routing IDs (bus may increase); `None` past `ff:1f.7`.
    #[must_use]
    pub const fn checked_add(self, delta: u16) -> Option<Self> {
        match self.routing_id().checked_add(delta) {
            Some(rid) => Some(Self::from_routing_id(rid)),
            None => None,
        }
    }
}

impl fmt::Display for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02x}:{:02x}.{}",
            self.bus,
            self.device(),
            self.function()
        )
    }
}

/// Why a `bb:dd.f` string did not parse.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum BdfParseError {
    /// Not of the form `bb:dd.f` (hex bus, hex device, decimal function).
    #[error("expected bb:dd.f")]
    Syntax,
    /// A field is out of range (bus > 0xff, device > 0x1f or function > 7).
    #[error("bus, device or function out of range")]
    Range,
}

impl FromStr for Bdf {
    type Err = BdfParseError;

    /// Parses `bb:dd.f` (what `Display` prints). An optional `ssss:` segment prefix is not
    /// accepted: segments are carried separately.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (bus, rest) = s.split_once(':').ok_or(BdfParseError::Syntax)?;
        let (dev, func) = rest.split_once('.').ok_or(BdfParseError::Syntax)?;
        let field = |t: &str, radix: u32| -> Result<u32, BdfParseError> {
            if t.is_empty() || t.len() > 2 {
                return Err(BdfParseError::Syntax);
            }
            u32::from_str_radix(t, radix).map_err(|_| BdfParseError::Syntax)
        };
        let (bus, dev, func) = (field(bus, 16)?, field(dev, 16)?, field(func, 10)?);
        if bus > 0xff || dev > u32::from(Self::MAX_DEVICE) || func > u32::from(Self::MAX_FUNCTION) {
            return Err(BdfParseError::Range);
        }
        Self::new(bus as u8, dev as u8, func as u8).ok_or(BdfParseError::Range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_id_round_trip_and_fields() {
        let b = Bdf::new(0x01, 0x10, 2).expect("valid");
        assert_eq!(b.routing_id(), 0x0182);
        assert_eq!(Bdf::from_routing_id(0x0182), b);
        assert_eq!(
            (b.bus(), b.device(), b.function(), b.devfn()),
            (1, 0x10, 2, 0x82)
        );
        assert_eq!(b.ari_function(), 0x82);
        assert_eq!(Bdf::from_ari(1, 0x82), b);
        assert!(b.requires_ari_forwarding());
        assert!(!Bdf::new(2, 0, 4).expect("valid").requires_ari_forwarding());
    }

    #[test]
    fn new_rejects_out_of_range() {
        assert_eq!(Bdf::new(0, 32, 0), None);
        assert_eq!(Bdf::new(0, 0, 8), None);
        assert!(Bdf::new(0xff, 31, 7).is_some());
    }

    #[test]
    fn display_and_parse() {
        let b = Bdf::new(0, 0x1f, 3).expect("valid");
        assert_eq!(format!("{b}"), "00:1f.3");
        assert_eq!("00:1f.3".parse::<Bdf>(), Ok(b));
        assert_eq!("01:10.2".parse::<Bdf>().map(Bdf::routing_id), Ok(0x0182));
        assert_eq!("0:20.0".parse::<Bdf>(), Err(BdfParseError::Range));
        assert_eq!("00:00.8".parse::<Bdf>(), Err(BdfParseError::Range));
        assert_eq!("00-00.0".parse::<Bdf>(), Err(BdfParseError::Syntax));
        assert_eq!("000:00.0".parse::<Bdf>(), Err(BdfParseError::Syntax));
        assert_eq!("00:00.".parse::<Bdf>(), Err(BdfParseError::Syntax));
    }

    #[test]
    fn checked_add_crosses_bus_and_stops_at_end() {
        let pf = Bdf::new(1, 0, 0).expect("valid");
        assert_eq!(pf.checked_add(0x80), Bdf::new(1, 0x10, 0));
        assert_eq!(pf.checked_add(0x100), Bdf::new(2, 0, 0));
        assert_eq!(Bdf::from_routing_id(0xffff).checked_add(1), None);
    }
}
