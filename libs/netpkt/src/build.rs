//! Building frames into a caller's buffer.

use crate::{
    ARP_LEN, ARP_REQUEST, ECHO_HEADER, ETH_HEADER, ETHERTYPE_ARP, ETHERTYPE_IPV4,
    ICMP_ECHO_REQUEST, IPV4_HEADER, Ipv4, MIN_FRAME, Mac, PROTO_ICMP, checksum,
};
use core::fmt;

/// Why a frame was not built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildError {
    /// The buffer holds `have` bytes; the frame needs `need`.
    BufferTooSmall {
        /// Bytes the frame needs.
        need: usize,
        /// Bytes the buffer has.
        have: usize,
    },
    /// The IPv4 total length would pass 65535 bytes.
    TooLong(usize),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall { need, have } => {
                write!(f, "the frame needs {need} bytes, the buffer has {have}")
            }
            Self::TooLong(n) => write!(f, "an IPv4 packet of {n} bytes is too long"),
        }
    }
}

/// Zeroes `buf[..len.max(MIN_FRAME)]` after checking it fits; returns the frame's length (padded
/// to the minimum frame, as an Ethernet transmitter pads short frames).
fn frame(buf: &mut [u8], len: usize) -> Result<usize, BuildError> {
    let need = len.max(MIN_FRAME);
    let have = buf.len();
    let out = buf
        .get_mut(..need)
        .ok_or(BuildError::BufferTooSmall { need, have })?;
    out.fill(0);
    Ok(need)
}

fn ethernet(buf: &mut [u8], dst: Mac, src: Mac, ethertype: u16) {
    buf[0..6].copy_from_slice(&dst.0);
    buf[6..12].copy_from_slice(&src.0);
    buf[12..14].copy_from_slice(&ethertype.to_be_bytes());
}

/// A broadcast ARP request (RFC 826) from `src_mac`/`src_ip` asking who has `target`; returns the
/// frame's length (60 bytes, padded).
pub fn arp_request(
    buf: &mut [u8],
    src_mac: Mac,
    src_ip: Ipv4,
    target: Ipv4,
) -> Result<usize, BuildError> {
    let len = frame(buf, ETH_HEADER + ARP_LEN)?;
    ethernet(buf, Mac::BROADCAST, src_mac, ETHERTYPE_ARP);
    let arp = &mut buf[ETH_HEADER..ETH_HEADER + ARP_LEN];
    // Hardware type 1 (Ethernet), protocol IPv4, lengths 6 and 4.
    arp[0..2].copy_from_slice(&1u16.to_be_bytes());
    arp[2..4].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    arp[4] = 6;
    arp[5] = 4;
    arp[6..8].copy_from_slice(&ARP_REQUEST.to_be_bytes());
    arp[8..14].copy_from_slice(&src_mac.0);
    arp[14..18].copy_from_slice(&src_ip.0);
    arp[18..24].copy_from_slice(&Mac::ZERO.0);
    arp[24..28].copy_from_slice(&target.0);
    Ok(len)
}

/// What an ICMP echo request carries.
#[derive(Debug, Clone, Copy)]
pub struct EchoRequest<'a> {
    /// Ethernet source (the sender's MAC).
    pub src_mac: Mac,
    /// Ethernet destination (the next hop's MAC, from ARP).
    pub dst_mac: Mac,
    /// IPv4 source.
    pub src_ip: Ipv4,
    /// IPv4 destination.
    pub dst_ip: Ipv4,
    /// IPv4 identification.
    pub ip_id: u16,
    /// IPv4 time to live.
    pub ttl: u8,
    /// ICMP identifier.
    pub id: u16,
    /// ICMP sequence number.
    pub seq: u16,
    /// The echo data.
    pub data: &'a [u8],
}

/// An ICMP echo request (RFC 792) in an IPv4 packet (RFC 791, no options, Don't Fragment clear)
/// in an Ethernet frame, both checksums computed; returns the frame's length (padded to 60).
pub fn echo_request(buf: &mut [u8], e: &EchoRequest<'_>) -> Result<usize, BuildError> {
    let ip_len = IPV4_HEADER + ECHO_HEADER + e.data.len();
    let total = u16::try_from(ip_len).map_err(|_| BuildError::TooLong(ip_len))?;
    let len = frame(buf, ETH_HEADER + ip_len)?;
    ethernet(buf, e.dst_mac, e.src_mac, ETHERTYPE_IPV4);
    let ip = &mut buf[ETH_HEADER..ETH_HEADER + ip_len];
    ip[0] = 0x45; // version 4, IHL 5
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[4..6].copy_from_slice(&e.ip_id.to_be_bytes());
    ip[8] = e.ttl;
    ip[9] = PROTO_ICMP;
    ip[12..16].copy_from_slice(&e.src_ip.0);
    ip[16..20].copy_from_slice(&e.dst_ip.0);
    let sum = checksum(&ip[..IPV4_HEADER]);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let icmp = &mut ip[IPV4_HEADER..];
    icmp[0] = ICMP_ECHO_REQUEST;
    icmp[4..6].copy_from_slice(&e.id.to_be_bytes());
    icmp[6..8].copy_from_slice(&e.seq.to_be_bytes());
    icmp[ECHO_HEADER..].copy_from_slice(e.data);
    let sum = checksum(icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    Ok(len)
}
