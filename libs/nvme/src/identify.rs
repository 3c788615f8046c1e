//! Identify data structures (NVMe Base Spec 2.0 §5.17.2): the Identify Controller data structure
//! (CNS 01h, Figure 275), the Primary Controller Capabilities data structure (CNS 14h, §5.17.2.12,
//! Figure 287) and the Secondary Controller List (CNS 15h, §5.17.2.13, Figures 288-289).
//!
//! Every structure is 4096 bytes, little-endian. Parsing never panics: a short buffer or an entry
//! count beyond the structure is a [`ParseError`].

use crate::IDENTIFY_BYTES;
use core::fmt;

/// Why an Identify data structure was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Fewer than 4096 bytes.
    Short {
        /// Bytes given.
        len: usize,
    },
    /// The Secondary Controller List claims more entries than fit (127).
    TooManyEntries {
        /// Number of Identifiers as read.
        count: u8,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Short { len } => write!(f, "{len} bytes: an Identify structure has 4096"),
            Self::TooManyEntries { count } => {
                write!(f, "{count} secondary controller entries: at most 127 fit")
            }
        }
    }
}

pub(crate) fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

pub(crate) fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

pub(crate) fn whole(b: &[u8]) -> Result<&[u8], ParseError> {
    b.get(..IDENTIFY_BYTES)
        .ok_or(ParseError::Short { len: b.len() })
}

/// A fixed-size ASCII field, space padded (§1.5 "ASCII string": printable characters 20h-7Eh).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Ascii<const N: usize>(pub [u8; N]);

impl<const N: usize> Ascii<N> {
    fn read(b: &[u8], at: usize) -> Self {
        let mut out = [0u8; N];
        out.copy_from_slice(&b[at..at + N]);
        Self(out)
    }

    /// The text without trailing spaces (and NULs, which some devices pad with), if every byte
    /// is printable ASCII.
    pub fn as_str(&self) -> Option<&str> {
        let end = self
            .0
            .iter()
            .rposition(|c| *c != b' ' && *c != 0)
            .map_or(0, |i| i + 1);
        let text = &self.0[..end];
        if text.iter().all(|c| (0x20..0x7f).contains(c)) {
            core::str::from_utf8(text).ok()
        } else {
            None
        }
    }
}

impl<const N: usize> fmt::Display for Ascii<N> {
    /// The trimmed text, with bytes outside printable ASCII shown as `\xNN`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = self.as_str() {
            return f.write_str(s);
        }
        let end = self
            .0
            .iter()
            .rposition(|c| *c != b' ' && *c != 0)
            .map_or(0, |i| i + 1);
        for c in &self.0[..end] {
            if (0x20..0x7f).contains(c) {
                write!(f, "{}", char::from(*c))?;
            } else {
                write!(f, "\\x{c:02x}")?;
            }
        }
        Ok(())
    }
}

impl<const N: usize> fmt::Debug for Ascii<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// Optional Admin Command Support bits (OACS, Figure 275 bytes 257:256).
pub mod oacs {
    /// Security Send and Security Receive.
    pub const SECURITY: u16 = 1 << 0;
    /// Format NVM.
    pub const FORMAT_NVM: u16 = 1 << 1;
    /// Firmware Commit and Firmware Image Download.
    pub const FIRMWARE: u16 = 1 << 2;
    /// Namespace Management.
    pub const NAMESPACE_MANAGEMENT: u16 = 1 << 3;
    /// Device Self-test.
    pub const SELF_TEST: u16 = 1 << 4;
    /// Directives.
    pub const DIRECTIVES: u16 = 1 << 5;
    /// NVMe-MI Send and Receive.
    pub const NVME_MI: u16 = 1 << 6;
    /// Virtualization Management.
    pub const VIRTUALIZATION_MANAGEMENT: u16 = 1 << 7;
    /// Doorbell Buffer Config.
    pub const DOORBELL_BUFFER_CONFIG: u16 = 1 << 8;
}

/// The fields of the Identify Controller data structure Conduit uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentifyController {
    /// PCI Vendor ID (bytes 1:0).
    pub vid: u16,
    /// PCI Subsystem Vendor ID (3:2).
    pub ssvid: u16,
    /// Serial Number (23:4).
    pub serial: Ascii<20>,
    /// Model Number (63:24).
    pub model: Ascii<40>,
    /// Firmware Revision (71:64).
    pub firmware: Ascii<8>,
    /// Maximum Data Transfer Size, a power of two in units of CAP.MPSMIN (77; 0 = no limit).
    pub mdts: u8,
    /// Controller ID (79:78).
    pub cntlid: u16,
    /// Version (83:80), as the VS register encodes it.
    pub version: u32,
    /// Controller Type (111): 1 I/O, 2 discovery, 3 administrative (0 = not reported).
    pub controller_type: u8,
    /// Optional Admin Command Support (257:256), see [`oacs`].
    pub oacs: u16,
    /// Submission Queue Entry Size (512): required (3:0) and maximum (7:4), log2 bytes.
    pub sqes: u8,
    /// Completion Queue Entry Size (513).
    pub cqes: u8,
    /// Number of Namespaces (519:516).
    pub nn: u32,
}

impl IdentifyController {
    /// Parses the 4096-byte structure.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let b = whole(bytes)?;
        Ok(Self {
            vid: le16(b, 0),
            ssvid: le16(b, 2),
            serial: Ascii::read(b, 4),
            model: Ascii::read(b, 24),
            firmware: Ascii::read(b, 64),
            mdts: b[77],
            cntlid: le16(b, 78),
            version: le32(b, 80),
            controller_type: b[111],
            oacs: le16(b, 256),
            sqes: b[512],
            cqes: b[513],
            nn: le32(b, 516),
        })
    }

    /// Does the controller support Virtualization Management (OACS bit 7)?
    pub fn virtualization_management(&self) -> bool {
        self.oacs & oacs::VIRTUALIZATION_MANAGEMENT != 0
    }
}

/// One resource type's part of the Primary Controller Capabilities (VQ: bytes 32-47, VI: 64-79).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlexibleResources {
    /// Total flexible resources of the primary and its secondaries (VQFRT / VIFRT).
    pub total: u32,
    /// Flexible resources assigned to secondary controllers (VQRFA / VIRFA).
    pub assigned_to_secondaries: u32,
    /// Flexible resources allocated to the primary (VQRFAP / VIRFAP): in effect now.
    pub allocated_to_primary: u16,
    /// Private resources of the primary (VQPRT / VIPRT).
    pub private: u16,
    /// Most flexible resources one secondary may be assigned (VQFRSM / VIFRSM).
    pub max_per_secondary: u16,
    /// Preferred granularity of assignment (VQGRAN / VIGRAN).
    pub granularity: u16,
}

impl FlexibleResources {
    fn read(b: &[u8], at: usize) -> Self {
        Self {
            total: le32(b, at),
            assigned_to_secondaries: le32(b, at + 4),
            allocated_to_primary: le16(b, at + 8),
            private: le16(b, at + 10),
            max_per_secondary: le16(b, at + 12),
            granularity: le16(b, at + 14),
        }
    }

    /// Flexible resources neither the primary nor a secondary holds.
    pub fn unassigned(&self) -> u32 {
        self.total
            .saturating_sub(self.assigned_to_secondaries)
            .saturating_sub(u32::from(self.allocated_to_primary))
    }
}

/// The Primary Controller Capabilities data structure (CNS 14h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrimaryControllerCaps {
    /// Controller Identifier of the primary (1:0).
    pub cntlid: u16,
    /// Port Identifier (3:2).
    pub portid: u16,
    /// Controller Resource Types (4): bit 0 VQ, bit 1 VI.
    pub crt: u8,
    /// VQ resources.
    pub vq: FlexibleResources,
    /// VI resources.
    pub vi: FlexibleResources,
}

impl PrimaryControllerCaps {
    /// Parses the 4096-byte structure.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let b = whole(bytes)?;
        Ok(Self {
            cntlid: le16(b, 0),
            portid: le16(b, 2),
            crt: b[4],
            vq: FlexibleResources::read(b, 32),
            vi: FlexibleResources::read(b, 64),
        })
    }

    /// VQ resources are supported (CRT bit 0).
    pub fn supports_vq(&self) -> bool {
        self.crt & 1 != 0
    }

    /// VI resources are supported (CRT bit 1).
    pub fn supports_vi(&self) -> bool {
        self.crt & 2 != 0
    }
}

/// One Secondary Controller Entry (Figure 289, 32 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecondaryController {
    /// Secondary Controller Identifier (1:0).
    pub scid: u16,
    /// Primary Controller Identifier (3:2).
    pub pcid: u16,
    /// Secondary Controller State (4) bit 0: online.
    pub online: bool,
    /// Virtual Function Number (9:8): 1-based; 0 if not a VF's controller.
    pub vfn: u16,
    /// Number of VQ Flexible Resources Assigned (11:10).
    pub nvq: u16,
    /// Number of VI Flexible Resources Assigned (13:12).
    pub nvi: u16,
}

impl SecondaryController {
    /// Bytes of one entry.
    pub const BYTES: usize = 32;

    fn read(b: &[u8]) -> Self {
        Self {
            scid: le16(b, 0),
            pcid: le16(b, 2),
            online: b[4] & 1 != 0,
            vfn: le16(b, 8),
            nvq: le16(b, 10),
            nvi: le16(b, 12),
        }
    }

    /// The 0-based SR-IOV VF index of this controller's function, if it belongs to a VF.
    pub fn vf_index(&self) -> Option<u16> {
        self.vfn.checked_sub(1)
    }
}

/// The Secondary Controller List (CNS 15h): up to 127 entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecondaryControllerList {
    count: u8,
    entries: [Option<SecondaryController>; Self::MAX],
}

impl SecondaryControllerList {
    /// Most entries one list holds.
    pub const MAX: usize = 127;

    /// Parses the 4096-byte structure.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let b = whole(bytes)?;
        let count = b[0];
        if usize::from(count) > Self::MAX {
            return Err(ParseError::TooManyEntries { count });
        }
        let mut entries = [None; Self::MAX];
        for (i, e) in entries.iter_mut().enumerate().take(count.into()) {
            let at = 32 + i * SecondaryController::BYTES;
            *e = Some(SecondaryController::read(
                &b[at..at + SecondaryController::BYTES],
            ));
        }
        Ok(Self { count, entries })
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    /// No entries?
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The entries, in list order.
    pub fn iter(&self) -> impl Iterator<Item = &SecondaryController> {
        self.entries.iter().flatten()
    }

    /// The entry of VF `index` (0-based), if listed.
    pub fn for_vf(&self, index: u16) -> Option<&SecondaryController> {
        self.iter().find(|e| e.vf_index() == Some(index))
    }

    /// The entry with secondary controller identifier `scid`, if listed.
    pub fn by_id(&self, scid: u16) -> Option<&SecondaryController> {
        self.iter().find(|e| e.scid == scid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(b: &mut [u8], at: usize, bytes: &[u8]) {
        b[at..at + bytes.len()].copy_from_slice(bytes);
    }

    /// An Identify Controller structure as QEMU's nvme fills it for the harness' PF.
    fn qemu_controller() -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        put(&mut b, 0, &0x1b36u16.to_le_bytes());
        put(&mut b, 2, &0x1af4u16.to_le_bytes());
        put(&mut b, 4, b"deadbeef            ");
        put(&mut b, 24, b"QEMU NVMe Ctrl                          ");
        put(&mut b, 64, b"10.0.2  ");
        b[77] = 7;
        put(&mut b, 78, &0u16.to_le_bytes());
        put(&mut b, 80, &0x0001_0400u32.to_le_bytes());
        b[111] = 1;
        put(&mut b, 256, &0x01aau16.to_le_bytes());
        b[512] = 0x66;
        b[513] = 0x44;
        put(&mut b, 516, &256u32.to_le_bytes());
        b
    }

    #[test]
    fn identify_controller_fields() {
        let id = IdentifyController::parse(&qemu_controller()).unwrap();
        assert_eq!(id.vid, 0x1b36);
        assert_eq!(id.ssvid, 0x1af4);
        assert_eq!(id.serial.as_str(), Some("deadbeef"));
        assert_eq!(id.model.as_str(), Some("QEMU NVMe Ctrl"));
        assert_eq!(id.firmware.as_str(), Some("10.0.2"));
        assert_eq!(id.mdts, 7);
        assert_eq!(id.cntlid, 0);
        assert_eq!(id.version, 0x0001_0400);
        assert_eq!(id.controller_type, 1);
        assert_eq!(id.oacs, 0x1aa);
        assert!(id.virtualization_management());
        assert_eq!(id.sqes, 0x66);
        assert_eq!(id.cqes, 0x44);
        assert_eq!(id.nn, 256);
    }

    #[test]
    fn ascii_fields_trim_and_escape() {
        assert_eq!(Ascii(*b"ab  ").as_str(), Some("ab"));
        assert_eq!(Ascii(*b"ab\0\0").as_str(), Some("ab"));
        assert_eq!(Ascii(*b"    ").as_str(), Some(""));
        assert_eq!(Ascii(*b"a\x01b ").as_str(), None);
        assert_eq!(Ascii(*b"a\x01b ").to_string(), "a\\x01b");
        assert_eq!(format!("{:?}", Ascii(*b"xy  ")), "\"xy\"");
        let mut b = qemu_controller();
        b[4] = 0xff;
        let id = IdentifyController::parse(&b).unwrap();
        assert_eq!(id.serial.as_str(), None);
        assert_eq!(id.serial.to_string(), "\\xffeadbeef");
    }

    #[test]
    fn short_buffers_are_refused() {
        assert_eq!(
            IdentifyController::parse(&[0; 100]),
            Err(ParseError::Short { len: 100 })
        );
        assert_eq!(
            PrimaryControllerCaps::parse(&[0; 4095]),
            Err(ParseError::Short { len: 4095 })
        );
        assert_eq!(
            SecondaryControllerList::parse(&[]),
            Err(ParseError::Short { len: 0 })
        );
    }

    #[test]
    fn primary_controller_capabilities() {
        // QEMU with sriov_vq_flexible=8, sriov_vi_flexible=4, sriov_max_vfs=4 before any
        // Virtualization Management command: the primary holds every flexible resource.
        let mut b = vec![0u8; 4096];
        put(&mut b, 0, &0u16.to_le_bytes());
        b[4] = 0x3;
        put(&mut b, 32, &8u32.to_le_bytes()); // VQFRT
        put(&mut b, 36, &0u32.to_le_bytes()); // VQRFA
        put(&mut b, 40, &8u16.to_le_bytes()); // VQRFAP
        put(&mut b, 42, &5u16.to_le_bytes()); // VQPRT
        put(&mut b, 44, &2u16.to_le_bytes()); // VQFRSM
        put(&mut b, 46, &1u16.to_le_bytes()); // VQGRAN
        put(&mut b, 64, &4u32.to_le_bytes()); // VIFRT
        put(&mut b, 68, &1u32.to_le_bytes()); // VIRFA
        put(&mut b, 72, &2u16.to_le_bytes()); // VIRFAP
        put(&mut b, 74, &4u16.to_le_bytes()); // VIPRT
        put(&mut b, 76, &1u16.to_le_bytes()); // VIFRSM
        put(&mut b, 78, &1u16.to_le_bytes()); // VIGRAN
        let p = PrimaryControllerCaps::parse(&b).unwrap();
        assert!(p.supports_vq() && p.supports_vi());
        assert_eq!(
            p.vq,
            FlexibleResources {
                total: 8,
                assigned_to_secondaries: 0,
                allocated_to_primary: 8,
                private: 5,
                max_per_secondary: 2,
                granularity: 1
            }
        );
        assert_eq!(p.vq.unassigned(), 0);
        assert_eq!(p.vi.total, 4);
        assert_eq!(p.vi.assigned_to_secondaries, 1);
        assert_eq!(p.vi.allocated_to_primary, 2);
        assert_eq!(p.vi.private, 4);
        assert_eq!(p.vi.max_per_secondary, 1);
        assert_eq!(p.vi.unassigned(), 1);
        b[4] = 0x2;
        assert!(!PrimaryControllerCaps::parse(&b).unwrap().supports_vq());
    }

    fn entry(scid: u16, pcid: u16, scs: u8, vfn: u16, nvq: u16, nvi: u16) -> [u8; 32] {
        let mut e = [0u8; 32];
        put(&mut e, 0, &scid.to_le_bytes());
        put(&mut e, 2, &pcid.to_le_bytes());
        e[4] = scs;
        put(&mut e, 8, &vfn.to_le_bytes());
        put(&mut e, 10, &nvq.to_le_bytes());
        put(&mut e, 12, &nvi.to_le_bytes());
        e
    }

    #[test]
    fn secondary_controller_list() {
        let mut b = vec![0u8; 4096];
        b[0] = 4;
        for i in 0..4u16 {
            let online = u8::from(i == 1);
            let e = entry(
                i + 1,
                0,
                online,
                i + 1,
                2 * u16::from(online),
                u16::from(online),
            );
            put(&mut b, 32 + 32 * usize::from(i), &e);
        }
        let l = SecondaryControllerList::parse(&b).unwrap();
        assert_eq!(l.len(), 4);
        assert!(!l.is_empty());
        let ids: Vec<u16> = l.iter().map(|e| e.scid).collect();
        assert_eq!(ids, [1, 2, 3, 4]);
        let vf1 = l.for_vf(1).unwrap();
        assert_eq!(
            *vf1,
            SecondaryController {
                scid: 2,
                pcid: 0,
                online: true,
                vfn: 2,
                nvq: 2,
                nvi: 1
            }
        );
        assert_eq!(vf1.vf_index(), Some(1));
        assert!(!l.for_vf(0).unwrap().online);
        assert_eq!(l.for_vf(4), None);
        assert_eq!(l.by_id(4).map(|e| e.vfn), Some(4));
        assert_eq!(l.by_id(9), None);
        // An entry past NUMID is ignored.
        put(&mut b, 32 + 32 * 4, &entry(9, 0, 1, 5, 2, 1));
        assert_eq!(SecondaryControllerList::parse(&b).unwrap().len(), 4);
        b[0] = 128;
        assert_eq!(
            SecondaryControllerList::parse(&b),
            Err(ParseError::TooManyEntries { count: 128 })
        );
        b[0] = 0;
        assert!(SecondaryControllerList::parse(&b).unwrap().is_empty());
        let not_vf = SecondaryController::read(&entry(5, 0, 0, 0, 0, 0));
        assert_eq!(not_vf.vf_index(), None);
    }
}
