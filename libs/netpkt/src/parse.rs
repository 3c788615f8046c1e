//! Parsing a received frame, every length and checksum checked.

use crate::{
    ARP_LEN, ECHO_HEADER, ETH_HEADER, ETHERTYPE_ARP, ETHERTYPE_IPV4, ICMP_ECHO_REPLY,
    ICMP_ECHO_REQUEST, IPV4_HEADER, Ipv4, Mac, PROTO_ICMP, checksum,
};
use core::fmt;

/// Why a frame was not understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Fewer bytes than the named header or length needs.
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// An ARP packet not for Ethernet and IPv4 (hardware type, protocol type, lengths).
    ArpFormat {
        /// Hardware type (1 for Ethernet).
        htype: u16,
        /// Protocol type (0x0800 for IPv4).
        ptype: u16,
        /// Hardware address length.
        hlen: u8,
        /// Protocol address length.
        plen: u8,
    },
    /// An IPv4 header whose version is not 4 or whose IHL is below 5.
    Ipv4Header {
        /// The first byte (version and IHL).
        version_ihl: u8,
    },
    /// The IPv4 header checksum does not verify (the sum over the header is not 0).
    Ipv4Checksum(u16),
    /// A fragment (More Fragments set or a fragment offset): not reassembled here.
    Fragment(u16),
    /// The ICMP checksum does not verify.
    IcmpChecksum(u16),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { what, need, have } => {
                write!(f, "{what}: {need} bytes needed, {have} present")
            }
            Self::ArpFormat {
                htype,
                ptype,
                hlen,
                plen,
            } => write!(
                f,
                "ARP for hardware type {htype} protocol {ptype:#06x} (lengths {hlen}/{plen}), \
                 not Ethernet/IPv4"
            ),
            Self::Ipv4Header { version_ihl } => {
                write!(f, "IPv4 header starts with {version_ihl:#04x}")
            }
            Self::Ipv4Checksum(s) => write!(f, "IPv4 header checksum off by {s:#06x}"),
            Self::Fragment(flags) => write!(f, "IPv4 fragment (flags/offset {flags:#06x})"),
            Self::IcmpChecksum(s) => write!(f, "ICMP checksum off by {s:#06x}"),
        }
    }
}

/// An ARP packet for Ethernet and IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    /// Operation (1 request, 2 reply).
    pub op: u16,
    /// Sender hardware address.
    pub sender_mac: Mac,
    /// Sender protocol address.
    pub sender_ip: Ipv4,
    /// Target hardware address.
    pub target_mac: Mac,
    /// Target protocol address.
    pub target_ip: Ipv4,
}

/// An ICMP echo request or reply with the IPv4 header fields that matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Echo<'a> {
    /// ICMP type: 8 request, 0 reply.
    pub kind: u8,
    /// IPv4 source.
    pub src_ip: Ipv4,
    /// IPv4 destination.
    pub dst_ip: Ipv4,
    /// IPv4 time to live.
    pub ttl: u8,
    /// ICMP identifier.
    pub id: u16,
    /// ICMP sequence number.
    pub seq: u16,
    /// The echo data.
    pub data: &'a [u8],
}

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload<'a> {
    /// ARP for Ethernet and IPv4.
    Arp(Arp),
    /// ICMP echo request or reply over IPv4.
    Echo(Echo<'a>),
    /// Anything else: its EtherType and, for IPv4, the protocol (or ICMP type as `icmp`).
    Other {
        /// EtherType.
        ethertype: u16,
        /// IPv4 protocol number, for IPv4.
        protocol: Option<u8>,
        /// ICMP type, for ICMP other than echo.
        icmp: Option<u8>,
    },
}

/// A parsed Ethernet II frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Destination MAC.
    pub dst: Mac,
    /// Source MAC.
    pub src: Mac,
    /// The contents.
    pub payload: Payload<'a>,
}

fn need(what: &'static str, bytes: &[u8], n: usize) -> Result<(), ParseError> {
    if bytes.len() < n {
        return Err(ParseError::Truncated {
            what,
            need: n,
            have: bytes.len(),
        });
    }
    Ok(())
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn mac(b: &[u8], at: usize) -> Mac {
    let mut m = [0; 6];
    m.copy_from_slice(&b[at..at + 6]);
    Mac(m)
}

fn ip(b: &[u8], at: usize) -> Ipv4 {
    let mut a = [0; 4];
    a.copy_from_slice(&b[at..at + 4]);
    Ipv4(a)
}

/// Parses `frame` (without FCS; padding after an IPv4 packet's total length is ignored).
pub fn parse(frame: &[u8]) -> Result<Frame<'_>, ParseError> {
    need("Ethernet header", frame, ETH_HEADER)?;
    let ethertype = be16(frame, 12);
    let body = &frame[ETH_HEADER..];
    let payload = match ethertype {
        ETHERTYPE_ARP => Payload::Arp(arp(body)?),
        ETHERTYPE_IPV4 => ipv4(body)?,
        _ => Payload::Other {
            ethertype,
            protocol: None,
            icmp: None,
        },
    };
    Ok(Frame {
        dst: mac(frame, 0),
        src: mac(frame, 6),
        payload,
    })
}

fn arp(b: &[u8]) -> Result<Arp, ParseError> {
    need("ARP packet", b, ARP_LEN)?;
    let (htype, ptype, hlen, plen) = (be16(b, 0), be16(b, 2), b[4], b[5]);
    if (htype, ptype, hlen, plen) != (1, ETHERTYPE_IPV4, 6, 4) {
        return Err(ParseError::ArpFormat {
            htype,
            ptype,
            hlen,
            plen,
        });
    }
    Ok(Arp {
        op: be16(b, 6),
        sender_mac: mac(b, 8),
        sender_ip: ip(b, 14),
        target_mac: mac(b, 18),
        target_ip: ip(b, 24),
    })
}

fn ipv4(b: &[u8]) -> Result<Payload<'_>, ParseError> {
    need("IPv4 header", b, IPV4_HEADER)?;
    let version_ihl = b[0];
    let header = usize::from(version_ihl & 0xf) * 4;
    if version_ihl >> 4 != 4 || header < IPV4_HEADER {
        return Err(ParseError::Ipv4Header { version_ihl });
    }
    need("IPv4 options", b, header)?;
    let total = usize::from(be16(b, 2));
    need("IPv4 total length", b, total)?;
    if total < header {
        return Err(ParseError::Truncated {
            what: "IPv4 total length below the header",
            need: header,
            have: total,
        });
    }
    let sum = checksum(&b[..header]);
    if sum != 0 {
        return Err(ParseError::Ipv4Checksum(sum));
    }
    // Bits 13 (More Fragments) and 12:0 (offset) of flags/fragment offset.
    let frag = be16(b, 6);
    if frag & 0x3fff != 0 {
        return Err(ParseError::Fragment(frag));
    }
    let protocol = b[9];
    let icmp = &b[header..total];
    if protocol != PROTO_ICMP {
        return Ok(Payload::Other {
            ethertype: ETHERTYPE_IPV4,
            protocol: Some(protocol),
            icmp: None,
        });
    }
    need("ICMP header", icmp, ECHO_HEADER)?;
    let sum = checksum(icmp);
    if sum != 0 {
        return Err(ParseError::IcmpChecksum(sum));
    }
    let kind = icmp[0];
    if kind != ICMP_ECHO_REQUEST && kind != ICMP_ECHO_REPLY {
        return Ok(Payload::Other {
            ethertype: ETHERTYPE_IPV4,
            protocol: Some(protocol),
            icmp: Some(kind),
        });
    }
    Ok(Payload::Echo(Echo {
        kind,
        src_ip: ip(b, 12),
        dst_ip: ip(b, 16),
        ttl: b[8],
        id: be16(icmp, 4),
        seq: be16(icmp, 6),
        data: &icmp[ECHO_HEADER..],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ARP_REPLY, BuildError, EchoRequest, MIN_FRAME, arp_request, echo_request};

    const GUEST_MAC: Mac = Mac([0x52, 0x54, 0x00, 0xc0, 0x00, 0x01]);
    const GATEWAY_MAC: Mac = Mac([0x52, 0x55, 0x0a, 0x00, 0x02, 0x02]);
    const GUEST: Ipv4 = Ipv4([10, 0, 2, 15]);
    const GATEWAY: Ipv4 = Ipv4([10, 0, 2, 2]);

    fn echo(data: &[u8]) -> EchoRequest<'_> {
        EchoRequest {
            src_mac: GUEST_MAC,
            dst_mac: GATEWAY_MAC,
            src_ip: GUEST,
            dst_ip: GATEWAY,
            ip_id: 0x1234,
            ttl: 64,
            id: 0xc0de,
            seq: 1,
            data,
        }
    }

    #[test]
    fn arp_request_has_rfc826_layout_and_parses_back() {
        let mut buf = [0xaa; 64];
        let n = arp_request(&mut buf, GUEST_MAC, GUEST, GATEWAY).unwrap();
        assert_eq!(n, MIN_FRAME);
        assert_eq!(&buf[0..6], &[0xff; 6]);
        assert_eq!(&buf[12..22], &[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
        // Padding is zero, past it the buffer is untouched.
        assert!(buf[42..60].iter().all(|b| *b == 0));
        assert_eq!(buf[60], 0xaa);
        let f = parse(&buf[..n]).unwrap();
        assert_eq!(f.dst, Mac::BROADCAST);
        assert_eq!(f.src, GUEST_MAC);
        assert_eq!(
            f.payload,
            Payload::Arp(Arp {
                op: 1,
                sender_mac: GUEST_MAC,
                sender_ip: GUEST,
                target_mac: Mac::ZERO,
                target_ip: GATEWAY,
            })
        );
    }

    #[test]
    fn a_reply_from_the_gateway_parses() {
        let mut buf = [0; 60];
        arp_request(&mut buf, GATEWAY_MAC, GATEWAY, GUEST).unwrap();
        buf[0..6].copy_from_slice(&GUEST_MAC.0);
        buf[20..22].copy_from_slice(&ARP_REPLY.to_be_bytes());
        buf[32..38].copy_from_slice(&GUEST_MAC.0);
        let Payload::Arp(a) = parse(&buf).unwrap().payload else {
            panic!("not ARP")
        };
        assert_eq!(
            (a.op, a.sender_mac, a.sender_ip, a.target_ip),
            (ARP_REPLY, GATEWAY_MAC, GATEWAY, GUEST)
        );
    }

    #[test]
    fn echo_request_checksums_verify_and_fields_parse_back() {
        let data = *b"conduit igb VF echo 0123456789abcdef";
        let mut buf = [0; 128];
        let n = echo_request(&mut buf, &echo(&data)).unwrap();
        assert_eq!(n, 14 + 20 + 8 + data.len());
        assert_eq!(checksum(&buf[14..34]), 0);
        assert_eq!(checksum(&buf[34..n]), 0);
        assert_eq!(&buf[14..24], &[0x45, 0, 0, 64, 0x12, 0x34, 0, 0, 64, 1]);
        let f = parse(&buf[..n]).unwrap();
        assert_eq!((f.dst, f.src), (GATEWAY_MAC, GUEST_MAC));
        assert_eq!(
            f.payload,
            Payload::Echo(Echo {
                kind: ICMP_ECHO_REQUEST,
                src_ip: GUEST,
                dst_ip: GATEWAY,
                ttl: 64,
                id: 0xc0de,
                seq: 1,
                data: &data,
            })
        );
    }

    #[test]
    fn a_short_echo_is_padded_and_padding_is_ignored() {
        let mut buf = [0xee; 64];
        let n = echo_request(&mut buf, &echo(b"x")).unwrap();
        assert_eq!(n, MIN_FRAME);
        let Payload::Echo(e) = parse(&buf[..n]).unwrap().payload else {
            panic!("not an echo")
        };
        assert_eq!(e.data, b"x");
    }

    #[test]
    fn corrupted_checksums_and_lengths_are_refused() {
        let mut buf = [0; 96];
        let n = echo_request(&mut buf, &echo(b"payload")).unwrap();
        let mut bad_ip = buf;
        bad_ip[22] ^= 1; // TTL
        assert!(matches!(
            parse(&bad_ip[..n]),
            Err(ParseError::Ipv4Checksum(_))
        ));
        let mut bad_icmp = buf;
        bad_icmp[14 + 20 + 8] ^= 0x40; // the first data byte
        assert!(matches!(
            parse(&bad_icmp[..n]),
            Err(ParseError::IcmpChecksum(_))
        ));
        assert!(matches!(
            parse(&buf[..30]),
            Err(ParseError::Truncated {
                what: "IPv4 header",
                ..
            })
        ));
        assert!(matches!(
            parse(&buf[..40]),
            Err(ParseError::Truncated {
                what: "IPv4 total length",
                ..
            })
        ));
        let mut frag = buf;
        frag[20] = 0x20; // More Fragments
        let sum_fix = {
            frag[24..26].copy_from_slice(&[0, 0]);
            checksum(&frag[14..34])
        };
        frag[24..26].copy_from_slice(&sum_fix.to_be_bytes());
        assert_eq!(parse(&frag[..n]), Err(ParseError::Fragment(0x2000)));
        let mut v6 = buf;
        v6[14] = 0x65;
        assert!(matches!(
            parse(&v6[..n]),
            Err(ParseError::Ipv4Header { version_ihl: 0x65 })
        ));
    }

    #[test]
    fn other_traffic_is_named_not_refused() {
        let mut buf = [0; 60];
        buf[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
        assert_eq!(
            parse(&buf).unwrap().payload,
            Payload::Other {
                ethertype: 0x86dd,
                protocol: None,
                icmp: None
            }
        );
        let mut arp = [0; 60];
        arp_request(&mut arp, GUEST_MAC, GUEST, GATEWAY).unwrap();
        arp[14..16].copy_from_slice(&6u16.to_be_bytes());
        assert!(matches!(
            parse(&arp),
            Err(ParseError::ArpFormat { htype: 6, .. })
        ));
    }

    #[test]
    fn small_buffers_are_refused() {
        let mut buf = [0; 59];
        assert_eq!(
            arp_request(&mut buf, GUEST_MAC, GUEST, GATEWAY),
            Err(BuildError::BufferTooSmall { need: 60, have: 59 })
        );
        let big = [0u8; 70000];
        let mut out = [0; 16];
        assert_eq!(
            echo_request(&mut out, &echo(&big)),
            Err(BuildError::TooLong(70028))
        );
    }
}
