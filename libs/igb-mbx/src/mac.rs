//! Ethernet MAC addresses (IEEE 802 48-bit addresses).

use core::fmt;

/// A 48-bit MAC address in transmission order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// The group (multicast/broadcast) bit: bit 0 of the first octet.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 != 0
    }

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }

    /// What Linux's `is_valid_ether_addr` accepts: neither multicast nor all zeros.
    pub fn is_valid_unicast(&self) -> bool {
        !self.is_multicast() && !self.is_zero()
    }

    /// The address as the two mailbox words that carry it: octets 0-3 in the first word, 4-5 in
    /// the low half of the second (little-endian, as the VF and the PF copy it byte for byte).
    pub fn to_words(&self) -> [u32; 2] {
        let b = self.0;
        [
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            u32::from_le_bytes([b[4], b[5], 0, 0]),
        ]
    }

    /// The address carried by two mailbox words (see [`Mac::to_words`]).
    pub fn from_words(lo: u32, hi: u32) -> Self {
        let l = lo.to_le_bytes();
        let h = hi.to_le_bytes();
        Self([l[0], l[1], l[2], l[3], h[0], h[1]])
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// The MAC address a VF gets when the configuration names none: locally administered unicast
/// (first octet 0x02: IEEE 802 U/L bit set, group bit clear), then `00:00`, the PF's bus and
/// device/function number and the VF index, so that it is the same on every boot and differs
/// between the VFs of one machine.
pub fn default_mac(pf_bus: u8, pf_devfn: u8, vf: u8) -> Mac {
    Mac([0x02, 0x00, 0x00, pf_bus, pf_devfn, vf])
}
