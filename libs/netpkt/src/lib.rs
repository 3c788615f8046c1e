//! Ethernet II frames carrying ARP (RFC 826) or ICMP echo (RFC 792) over IPv4 (RFC 791): built
//! into a caller's buffer and parsed back with every length and checksum checked (the Internet
//! checksum of RFC 1071). Used by the test image's scripted VF driver, which sends an ARP request
//! and an ICMP echo through an igb VF and checks the replies that land in the guest's memory.
//!
//! Nothing here allocates or touches hardware; a frame a device wrote is parsed from a byte
//! slice and every malformed input is a typed [`ParseError`].
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

mod build;
mod parse;

pub use build::{BuildError, EchoRequest, arp_request, echo_request};
pub use parse::{Arp, Echo, Frame, ParseError, Payload, parse};

use core::fmt;

/// EtherType of IPv4 (IEEE 802 numbers).
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// Length of the Ethernet II header: destination, source, EtherType.
pub const ETH_HEADER: usize = 14;
/// The shortest frame on the wire without its FCS (IEEE 802.3 minimum of 64 bytes less 4).
pub const MIN_FRAME: usize = 60;
/// Length of an ARP packet for Ethernet and IPv4 (RFC 826: hardware length 6, protocol length 4).
pub const ARP_LEN: usize = 28;
/// Length of an IPv4 header without options (IHL 5).
pub const IPV4_HEADER: usize = 20;
/// Length of the ICMP echo header: type, code, checksum, identifier, sequence number.
pub const ECHO_HEADER: usize = 8;
/// IPv4 protocol number of ICMP.
pub const PROTO_ICMP: u8 = 1;
/// ARP operation: request.
pub const ARP_REQUEST: u16 = 1;
/// ARP operation: reply.
pub const ARP_REPLY: u16 = 2;
/// ICMP type: echo request.
pub const ICMP_ECHO_REQUEST: u8 = 8;
/// ICMP type: echo reply.
pub const ICMP_ECHO_REPLY: u8 = 0;

/// An Ethernet MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: Self = Self([0xff; 6]);
    /// 00:00:00:00:00:00 (an ARP request's unknown target).
    pub const ZERO: Self = Self([0; 6]);
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// An IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4(pub [u8; 4]);

impl fmt::Display for Ipv4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = self.0;
        write!(f, "{}.{}.{}.{}", a[0], a[1], a[2], a[3])
    }
}

/// The Internet checksum (RFC 1071): the ones' complement of the ones' complement sum of the
/// data as big-endian 16-bit words, an odd last byte padded with zero. Over data that already
/// holds its correct checksum the result is 0.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let (words, rest) = data.as_chunks::<2>();
    for w in words {
        sum += u32::from(u16::from_be_bytes(*w));
    }
    if let [last] = rest {
        sum += u32::from(*last) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_rfc1071_example() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2; the checksum is its complement.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn checksum_pads_an_odd_byte_and_verifies_to_zero() {
        let mut data = [0x45, 0x00, 0x00, 0x1c, 0, 0, 0xab];
        // An odd trailing byte counts as its high half.
        assert_eq!(checksum(&data), !(0x4500u16 + 0x001c + 0xab00));
        let c = checksum(&data[..6]);
        data[4..6].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&data[..6]), 0);
    }

    #[test]
    fn addresses_print_as_usual() {
        let mac = Mac([0x52, 0x55, 0x0a, 0x00, 0x02, 0x02]);
        assert_eq!(format!("{mac}"), "52:55:0a:00:02:02");
        assert_eq!(format!("{}", Ipv4([10, 0, 2, 15])), "10.0.2.15");
    }
}
