//! Completion queue entries (NVMe Base Spec 2.0 §4.2.1, Figure 90 "Common Completion Queue Entry
//! Layout"): 16 bytes, the Phase Tag in Dword 3 bit 16 telling a new entry from an old one.

use crate::status::Status;
use core::mem::{offset_of, size_of};

/// A 16-byte completion queue entry as the controller writes it.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Completion {
    /// Dword 0: command specific (Virtualization Management: resources allocated).
    pub dw0: u32,
    /// Dword 1: command specific.
    pub dw1: u32,
    /// Dword 2: SQ Head Pointer (15:0), SQ Identifier (31:16).
    pub dw2: u32,
    /// Dword 3: Command Identifier (15:0), Phase Tag (16), Status (31:17).
    pub dw3: u32,
}

const _: () = {
    assert!(size_of::<Completion>() == 16);
    assert!(offset_of!(Completion, dw2) == 8);
    assert!(offset_of!(Completion, dw3) == 12);
};

impl Completion {
    /// Decodes 16 little-endian bytes.
    pub fn from_bytes(b: &[u8; 16]) -> Self {
        let d = |i: usize| u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
        Self {
            dw0: d(0),
            dw1: d(1),
            dw2: d(2),
            dw3: d(3),
        }
    }

    /// The 16 bytes as the controller writes them.
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        let dwords = [self.dw0, self.dw1, self.dw2, self.dw3];
        for (chunk, d) in out.as_chunks_mut::<4>().0.iter_mut().zip(dwords) {
            *chunk = d.to_le_bytes();
        }
        out
    }

    /// SQ Head Pointer: the submission queue entry the controller will fetch next.
    pub fn sq_head(&self) -> u16 {
        self.dw2 as u16
    }

    /// SQ Identifier.
    pub fn sq_id(&self) -> u16 {
        (self.dw2 >> 16) as u16
    }

    /// Command Identifier.
    pub fn cid(&self) -> u16 {
        self.dw3 as u16
    }

    /// Phase Tag.
    pub fn phase(&self) -> bool {
        self.dw3 & (1 << 16) != 0
    }

    /// The decoded Status field.
    pub fn status(&self) -> Status {
        Status::from_field((self.dw3 >> 17) as u16)
    }

    /// Builds an entry (for tests and fakes).
    pub fn new(cid: u16, sq_id: u16, sq_head: u16, phase: bool, status: Status, dw0: u32) -> Self {
        Self {
            dw0,
            dw1: 0,
            dw2: u32::from(sq_head) | (u32::from(sq_id) << 16),
            dw3: u32::from(cid) | (u32::from(phase) << 16) | (u32::from(status.to_field()) << 17),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::StatusCodeType;

    #[test]
    fn decodes_a_hand_built_entry() {
        // DW0 = 2 (resources allocated), SQHD 5, SQID 0, CID 0x0102, P = 1, status 0x4121.
        let bytes: [u8; 16] = [
            0x02, 0, 0, 0, // DW0
            0, 0, 0, 0, // DW1
            0x05, 0x00, 0x00, 0x00, // DW2
            0x02, 0x01, 0x43, 0x82, // DW3: 0x8243_0102
        ];
        let c = Completion::from_bytes(&bytes);
        assert_eq!(c.dw0, 2);
        assert_eq!(c.sq_head(), 5);
        assert_eq!(c.sq_id(), 0);
        assert_eq!(c.cid(), 0x0102);
        assert!(c.phase());
        let s = c.status();
        assert_eq!(s.sct, StatusCodeType::CommandSpecific);
        assert_eq!(s.sc, 0x21);
        assert!(s.dnr);
        assert_eq!(c.to_bytes(), bytes);
        assert_eq!(
            Completion::new(0x0102, 0, 5, true, Status::from_field(0x4121), 2),
            c
        );
    }

    #[test]
    fn a_zeroed_entry_has_phase_zero_and_success() {
        let c = Completion::from_bytes(&[0; 16]);
        assert!(!c.phase());
        assert!(c.status().is_success());
    }
}
