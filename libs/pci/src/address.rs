//! Segment-qualified PCI function addresses.
//!
//! A machine may have several PCI Segment Groups (PCI Firmware Spec 3.3 §4.1.2: each MCFG
//! allocation names one segment and the bus range it decodes); bus numbers repeat from segment to
//! segment, so a physical function is named by `segment:bus:device.function`. VT-d remapping
//! units are per segment too (VT-d spec §8.3: a DRHD's scopes and INCLUDE_PCI_ALL apply within
//! its Segment Number). [`PciAddress`] is that pair; [`Bdf`] alone stays the address within one
//! segment (and of virtual topologies, which have a single segment).

use core::fmt;
use core::str::FromStr;

use crate::bdf::{Bdf, BdfParseError};

/// A physical PCI function: PCI segment group and its [`Bdf`] there.
///
/// Ordered by segment, then routing ID. `Display` prints `bb:dd.f` on segment 0 and
/// `ssss:bb:dd.f` (four lower-case hex digits) elsewhere, as Linux `lspci -D` writes the domain.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct PciAddress {
    /// PCI Segment Group number (the MCFG's and the DRHD's Segment Number).
    pub segment: u16,
    /// Bus, device and function within the segment.
    pub bdf: Bdf,
}

impl PciAddress {
    /// `bdf` on `segment`.
    #[must_use]
    pub const fn new(segment: u16, bdf: Bdf) -> Self {
        Self { segment, bdf }
    }

    /// `bdf` on segment 0, the only segment of machines with a single host bridge hierarchy.
    #[must_use]
    pub const fn on_segment0(bdf: Bdf) -> Self {
        Self { segment: 0, bdf }
    }
}

impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segment != 0 {
            write!(f, "{:04x}:", self.segment)?;
        }
        write!(f, "{}", self.bdf)
    }
}

impl FromStr for PciAddress {
    type Err = BdfParseError;

    /// Parses `ssss:bb:dd.f` (one to four hex digits of segment) or `bb:dd.f` (segment 0).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let segment_and_rest = s.split_once(':').filter(|(_, rest)| rest.contains(':'));
        let Some((segment, rest)) = segment_and_rest else {
            return s.parse().map(Self::on_segment0);
        };
        if segment.is_empty()
            || segment.len() > 4
            || !segment.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(BdfParseError::Syntax);
        }
        let segment = u16::from_str_radix(segment, 16).map_err(|_| BdfParseError::Syntax)?;
        Ok(Self::new(segment, rest.parse()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bdf(bus: u8, dev: u8, func: u8) -> Bdf {
        Bdf::new(bus, dev, func).expect("valid")
    }

    #[test]
    fn display_names_the_segment_only_when_not_zero() {
        assert_eq!(PciAddress::on_segment0(bdf(2, 0, 0)).to_string(), "02:00.0");
        assert_eq!(PciAddress::new(1, bdf(2, 0, 0)).to_string(), "0001:02:00.0");
        assert_eq!(
            PciAddress::new(0xabcd, bdf(0xff, 0x1f, 7)).to_string(),
            "abcd:ff:1f.7"
        );
    }

    #[test]
    fn parses_both_forms() {
        assert_eq!("0001:02:00.0".parse(), Ok(PciAddress::new(1, bdf(2, 0, 0))));
        assert_eq!("02:00.0".parse(), Ok(PciAddress::new(0, bdf(2, 0, 0))));
        assert_eq!("0:00:1f.3".parse(), Ok(PciAddress::new(0, bdf(0, 0x1f, 3))));
        assert_eq!(
            "10000:00:00.0".parse::<PciAddress>(),
            Err(BdfParseError::Syntax)
        );
        assert_eq!(":00:00.0".parse::<PciAddress>(), Err(BdfParseError::Syntax));
        assert_eq!(
            "00g1:00:00.0".parse::<PciAddress>(),
            Err(BdfParseError::Syntax)
        );
        assert_eq!(
            "0001:00:20.0".parse::<PciAddress>(),
            Err(BdfParseError::Range)
        );
    }

    #[test]
    fn ordered_by_segment_first() {
        let a = PciAddress::new(0, bdf(0xff, 0, 0));
        let b = PciAddress::new(1, bdf(0, 0, 0));
        assert!(a < b);
    }
}
