//! Namespaces: the Identify Namespace data structure of the NVM command set (CNS 00h; NVM
//! Command Set Spec 1.0, "Identify Namespace data structure"), the Active Namespace ID list (CNS
//! 02h) and the Controller List (CNS 12h, and the data of Namespace Attachment; NVMe Base Spec
//! 2.0 §5.17.2, "Controller List format").
//!
//! Parsing never panics: a short buffer, a list count beyond its structure or a formatted LBA
//! size index beyond the formats listed is a [`NamespaceError`].

use crate::identify::{ParseError, le16, le32, whole};
use crate::status::{Status, StatusCodeType};
use core::fmt;

/// Why a namespace structure was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceError {
    /// The buffer is not a whole Identify structure.
    Parse(ParseError),
    /// FLBAS selects an LBA format beyond NLBAF.
    BadFormat {
        /// The selected format index.
        index: u8,
        /// Formats the namespace lists.
        formats: u8,
    },
    /// The selected format's LBA data size is below 512 bytes (LBADS < 9) or absurdly large.
    BadBlockSize {
        /// LBADS as read.
        lbads: u8,
    },
    /// A controller list claims more identifiers than fit (2047).
    TooManyControllers {
        /// Number of Identifiers as read.
        count: u16,
    },
}

impl fmt::Display for NamespaceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Parse(e) => write!(f, "{e}"),
            Self::BadFormat { index, formats } => write!(
                f,
                "FLBAS selects LBA format {index}, the namespace lists {formats}"
            ),
            Self::BadBlockSize { lbads } => {
                write!(f, "LBA data size 2^{lbads} bytes is not usable")
            }
            Self::TooManyControllers { count } => {
                write!(
                    f,
                    "a controller list of {count} identifiers: at most 2047 fit"
                )
            }
        }
    }
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from(le32(b, at)) | (u64::from(le32(b, at + 4)) << 32)
}

/// The fields of the Identify Namespace data structure Conduit uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentifyNamespace {
    /// Namespace Size in logical blocks (bytes 7:0).
    pub nsze: u64,
    /// Namespace Capacity (15:8).
    pub ncap: u64,
    /// Namespace Utilization (23:16).
    pub nuse: u64,
    /// Namespace Multi-path I/O and Namespace Sharing Capabilities (30): bit 0 set means the
    /// namespace may be attached to two or more controllers at once.
    pub nmic: u8,
    /// The formatted LBA format's index (FLBAS bits 3:0, with bits 6:5 above them).
    pub format: u8,
    /// Logical block size in bytes (2^LBADS of the formatted LBA format).
    pub block_size: u32,
    /// Metadata bytes per block (MS of the formatted LBA format).
    pub metadata: u16,
}

impl IdentifyNamespace {
    /// Parses the 4096-byte structure. An all-zero structure (an inactive NSID) parses with
    /// `nsze` 0; its format is not checked.
    pub fn parse(bytes: &[u8]) -> Result<Self, NamespaceError> {
        let b = whole(bytes).map_err(NamespaceError::Parse)?;
        let nsze = le64(b, 0);
        let flbas = b[26];
        let format = (flbas & 0xf) | ((flbas >> 1) & 0x30);
        let formats = b[25].saturating_add(1);
        let (block_size, metadata) = if nsze == 0 {
            (0, 0)
        } else {
            if format >= formats || format >= 64 {
                return Err(NamespaceError::BadFormat {
                    index: format,
                    formats,
                });
            }
            let at = 128 + 4 * usize::from(format);
            let lbads = b[at + 2];
            if !(9..=31).contains(&lbads) {
                return Err(NamespaceError::BadBlockSize { lbads });
            }
            (1u32 << lbads, le16(b, at))
        };
        Ok(Self {
            nsze,
            ncap: le64(b, 8),
            nuse: le64(b, 16),
            nmic: b[30],
            format,
            block_size,
            metadata,
        })
    }

    /// May the namespace be attached to several controllers at once (NMIC bit 0)?
    pub fn shareable(&self) -> bool {
        self.nmic & 1 != 0
    }

    /// Size in bytes.
    pub fn bytes(&self) -> u64 {
        self.nsze.saturating_mul(u64::from(self.block_size))
    }
}

/// The Active Namespace ID list (CNS 02h): up to 1024 NSIDs in increasing order, the first 0
/// ending the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceList {
    ids: [u32; Self::MAX],
    len: usize,
}

impl NamespaceList {
    /// Most NSIDs one list holds.
    pub const MAX: usize = 1024;

    /// Parses the 4096-byte structure.
    pub fn parse(bytes: &[u8]) -> Result<Self, NamespaceError> {
        let b = whole(bytes).map_err(NamespaceError::Parse)?;
        let mut ids = [0u32; Self::MAX];
        let mut len = 0;
        for (i, slot) in ids.iter_mut().enumerate() {
            let id = le32(b, 4 * i);
            if id == 0 {
                break;
            }
            *slot = id;
            len += 1;
        }
        Ok(Self { ids, len })
    }

    /// The NSIDs.
    pub fn ids(&self) -> &[u32] {
        &self.ids[..self.len]
    }
}

/// A Controller List: a count and up to 2047 controller identifiers (the Identify CNS 12h
/// result, and the data a Namespace Attachment carries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerList {
    ids: [u16; Self::MAX],
    len: usize,
}

impl ControllerList {
    /// Most identifiers one list holds.
    pub const MAX: usize = 2047;

    /// A list of `ids` (at most [`ControllerList::MAX`]).
    pub fn new(ids: &[u16]) -> Result<Self, NamespaceError> {
        if ids.len() > Self::MAX {
            return Err(NamespaceError::TooManyControllers {
                count: u16::try_from(ids.len()).unwrap_or(u16::MAX),
            });
        }
        let mut out = [0u16; Self::MAX];
        out[..ids.len()].copy_from_slice(ids);
        Ok(Self {
            ids: out,
            len: ids.len(),
        })
    }

    /// Parses the 4096-byte structure.
    pub fn parse(bytes: &[u8]) -> Result<Self, NamespaceError> {
        let b = whole(bytes).map_err(NamespaceError::Parse)?;
        let count = le16(b, 0);
        if usize::from(count) > Self::MAX {
            return Err(NamespaceError::TooManyControllers { count });
        }
        let mut ids = [0u16; Self::MAX];
        for (i, slot) in ids.iter_mut().enumerate().take(count.into()) {
            *slot = le16(b, 2 + 2 * i);
        }
        Ok(Self {
            ids,
            len: count.into(),
        })
    }

    /// The 4096 bytes of the list, as a Namespace Attachment's data.
    pub fn encode(&self) -> [u8; crate::IDENTIFY_BYTES] {
        let mut out = [0u8; crate::IDENTIFY_BYTES];
        out[..2].copy_from_slice(&(self.len as u16).to_le_bytes());
        for (i, id) in self.ids().iter().enumerate() {
            out[2 + 2 * i..4 + 2 * i].copy_from_slice(&id.to_le_bytes());
        }
        out
    }

    /// The identifiers.
    pub fn ids(&self) -> &[u16] {
        &self.ids[..self.len]
    }

    /// Is `id` listed?
    pub fn contains(&self, id: u16) -> bool {
        self.ids().contains(&id)
    }
}

/// Command specific status of Namespace Attachment: a named controller has the namespace already
/// (NVMe Base Spec 2.0, Namespace Attachment command, "Namespace Already Attached").
pub const ALREADY_ATTACHED: u8 = 0x18;

/// What a Namespace Attachment (Controller Attach) achieved, judged from its status and the
/// namespace's controller list read afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attachment {
    /// Every named controller is now listed.
    Listed,
    /// The controller answered "Namespace Already Attached" yet does not list this controller
    /// (a controller that attaches shared namespaces on its own, e.g. when it is enabled).
    ClaimedAttached {
        /// The first named controller not listed.
        unlisted: u16,
    },
    /// The command succeeded yet this named controller is not listed.
    StillDetached {
        /// The first named controller not listed.
        unlisted: u16,
    },
    /// The command failed.
    Refused(Status),
}

/// Judges a Namespace Attachment of the controllers `named` that completed with `status`, the
/// namespace's controller list being `after`.
pub fn judge_attachment(status: Status, named: &[u16], after: &ControllerList) -> Attachment {
    let already = status.is(StatusCodeType::CommandSpecific, ALREADY_ATTACHED);
    if !status.is_success() && !already {
        return Attachment::Refused(status);
    }
    match named.iter().copied().find(|id| !after.contains(*id)) {
        None => Attachment::Listed,
        Some(unlisted) if already => Attachment::ClaimedAttached { unlisted },
        Some(unlisted) => Attachment::StillDetached { unlisted },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> Vec<u8> {
        vec![0u8; 4096]
    }

    #[test]
    fn identify_namespace_of_a_64_mib_512_byte_namespace() {
        let mut b = page();
        b[0..8].copy_from_slice(&131072u64.to_le_bytes());
        b[8..16].copy_from_slice(&131072u64.to_le_bytes());
        b[16..24].copy_from_slice(&2048u64.to_le_bytes());
        b[25] = 7; // eight formats
        b[26] = 0; // format 0
        b[30] = 1; // shareable
        b[128..132].copy_from_slice(&[0, 0, 9, 0]); // MS 0, LBADS 9
        b[132..136].copy_from_slice(&[8, 0, 12, 0]); // format 1: MS 8, 4 KiB
        let ns = IdentifyNamespace::parse(&b).unwrap();
        assert_eq!(ns.nsze, 131072);
        assert_eq!(ns.nuse, 2048);
        assert_eq!(ns.block_size, 512);
        assert_eq!(ns.bytes(), 64 << 20);
        assert!(ns.shareable());
        b[26] = 1;
        b[30] = 0;
        let ns = IdentifyNamespace::parse(&b).unwrap();
        assert_eq!((ns.format, ns.block_size, ns.metadata), (1, 4096, 8));
        assert!(!ns.shareable());
        // FLBAS bits 6:5 extend the index above 15.
        b[25] = 63;
        b[26] = 0x21; // index 0x11
        let at = 128 + 4 * 0x11;
        b[at + 2] = 12;
        assert_eq!(IdentifyNamespace::parse(&b).unwrap().format, 0x11);
    }

    #[test]
    fn bad_namespaces_are_errors() {
        let mut b = page();
        assert_eq!(
            IdentifyNamespace::parse(&b).unwrap().nsze,
            0,
            "inactive NSID"
        );
        b[0] = 1;
        b[25] = 0;
        b[26] = 2;
        assert_eq!(
            IdentifyNamespace::parse(&b),
            Err(NamespaceError::BadFormat {
                index: 2,
                formats: 1
            })
        );
        b[26] = 0;
        b[130] = 3;
        assert_eq!(
            IdentifyNamespace::parse(&b),
            Err(NamespaceError::BadBlockSize { lbads: 3 })
        );
        assert_eq!(
            IdentifyNamespace::parse(&b[..100]),
            Err(NamespaceError::Parse(ParseError::Short { len: 100 }))
        );
    }

    #[test]
    fn active_namespace_list_ends_at_zero() {
        let mut b = page();
        for (i, id) in [1u32, 2, 7].iter().enumerate() {
            b[4 * i..4 * i + 4].copy_from_slice(&id.to_le_bytes());
        }
        b[16..20].copy_from_slice(&9u32.to_le_bytes()); // after the terminating 0
        assert_eq!(NamespaceList::parse(&b).unwrap().ids(), &[1, 2, 7]);
        assert!(NamespaceList::parse(&page()).unwrap().ids().is_empty());
        let full: Vec<u8> = (1..=1024u32).flat_map(|i| i.to_le_bytes()).collect();
        assert_eq!(NamespaceList::parse(&full).unwrap().ids().len(), 1024);
    }

    #[test]
    fn controller_list_round_trips() {
        let l = ControllerList::new(&[0, 1, 2]).unwrap();
        let bytes = l.encode();
        assert_eq!(&bytes[..8], &[3, 0, 0, 0, 1, 0, 2, 0]);
        let back = ControllerList::parse(&bytes).unwrap();
        assert_eq!(back.ids(), &[0, 1, 2]);
        assert!(back.contains(2) && !back.contains(3));
        let mut b = page();
        b[0..2].copy_from_slice(&2048u16.to_le_bytes());
        assert_eq!(
            ControllerList::parse(&b),
            Err(NamespaceError::TooManyControllers { count: 2048 })
        );
        assert!(ControllerList::new(&[0u16; 2048]).is_err());
        assert_eq!(
            ControllerList::new(&[0u16; 2047]).unwrap().ids().len(),
            2047
        );
    }

    #[test]
    fn attachment_outcomes() {
        let after = ControllerList::new(&[0, 1]).unwrap();
        let ok = Status::SUCCESS;
        let already = Status::new(StatusCodeType::CommandSpecific, ALREADY_ATTACHED);
        assert_eq!(judge_attachment(ok, &[1], &after), Attachment::Listed);
        assert_eq!(judge_attachment(already, &[1], &after), Attachment::Listed);
        assert_eq!(
            judge_attachment(already, &[1, 2], &after),
            Attachment::ClaimedAttached { unlisted: 2 }
        );
        assert_eq!(
            judge_attachment(ok, &[2], &after),
            Attachment::StillDetached { unlisted: 2 }
        );
        let private = Status::new(StatusCodeType::CommandSpecific, 0x19);
        assert_eq!(
            judge_attachment(private, &[1], &after),
            Attachment::Refused(private)
        );
        let invalid = Status::new(StatusCodeType::Generic, 0x02);
        assert_eq!(
            judge_attachment(invalid, &[], &after),
            Attachment::Refused(invalid)
        );
    }
}
