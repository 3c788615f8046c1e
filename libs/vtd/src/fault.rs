//! Primary fault records (§7.2.1, register layout §10.4.14) and fault reasons (Appendix A
//! "Non-Recoverable Fault Reason Encodings").
//!
//! A record is 128 bits: bits 63:12 FI (the page address of the faulting request), SID 79:64,
//! PP 95 (a PASID is present, in 123:104), FR (the reason) 103:96, AT 125:124, T 126 (1 = read,
//! 0 = write), F 127 (valid; write 1 to clear). For an interrupt-remapping fault (FR 0x20-0x27)
//! FI bits 63:48 hold the interrupt_index of the request and bits 47:12 are zero (§10.4.14); T
//! and AT have no meaning then.

use conduit_pci::Bdf;

/// The F bit in the high qword: the record is valid.
pub const VALID: u64 = 1 << 63;

/// A decoded fault record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultRecord {
    /// Requester ID of the request.
    pub source: Bdf,
    /// Page address of the request (the IOVA, 4 KiB aligned).
    pub address: u64,
    /// A write (else a read).
    pub write: bool,
    /// Fault reason code.
    pub reason: u8,
    /// The PASID, for requests that carried one.
    pub pasid: Option<u32>,
}

impl FaultRecord {
    /// Decodes a record from its low and high qwords; `None` unless F is set.
    pub const fn decode(lo: u64, hi: u64) -> Option<Self> {
        if hi & VALID == 0 {
            return None;
        }
        Some(Self {
            source: Bdf::from_routing_id(hi as u16),
            address: lo & !0xfff,
            write: hi & (1 << 62) == 0,
            reason: (hi >> 32) as u8,
            pasid: if hi & (1 << 31) != 0 {
                Some(((hi >> 40) & 0xf_ffff) as u32)
            } else {
                None
            },
        })
    }

    /// The interrupt_index of an interrupt-remapping fault (FI bits 63:48); `None` for a DMA
    /// fault.
    pub const fn interrupt_index(&self) -> Option<u16> {
        if crate::interrupt::is_interrupt_reason(self.reason) {
            Some((self.address >> 48) as u16)
        } else {
            None
        }
    }
}

/// The meaning of a non-recoverable fault reason.
pub const fn reason_text(code: u8) -> &'static str {
    match code {
        0x01 => "root entry not present",
        0x02 => "context entry not present: the function is assigned to no domain",
        0x03 => "invalid context entry programming",
        0x04 => "input address beyond the domain's address width",
        0x05 => {
            "write to a page without write permission (second-level entry not present or \
             read-only)"
        }
        0x06 => {
            "read of a page without read permission (second-level entry not present or \
             write-only)"
        }
        0x07 => "error accessing a second-level paging entry",
        0x08 => "error accessing the root entry",
        0x09 => "error accessing the context entry",
        0x0a => "reserved bit set in the root entry",
        0x0b => "reserved bit set in the context entry",
        0x0c => "reserved bit set in a second-level paging entry",
        0x0d => "translation type blocked by the context entry",
        0x20 => "interrupt request with reserved fields set",
        0x21 => "interrupt index beyond the interrupt remapping table",
        0x22 => "interrupt remapping table entry not present",
        0x23 => "error accessing the interrupt remapping table",
        0x24 => "reserved bit set in an interrupt remapping table entry",
        0x25 => "compatibility-format interrupt blocked",
        0x26 => "interrupt source-id validation failed",
        0x27 => "error accessing a posted-interrupt descriptor",
        _ => "reserved or unknown reason",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as QEMU 10 builds it (`vtd_record_frcd`): F, T for reads, FR in 103:96, SID.
    fn qemu_record(sid: u16, reason: u8, read: bool, addr: u64) -> (u64, u64) {
        let hi = VALID | (u64::from(read) << 62) | (u64::from(reason) << 32) | u64::from(sid);
        (addr & !0xfff, hi)
    }

    #[test]
    fn decodes_what_qemu_records() {
        let (lo, hi) = qemu_record(0x0020, 0x05, false, 0x420_0abc);
        let r = FaultRecord::decode(lo, hi).expect("valid");
        assert_eq!(r.source, Bdf::new(0, 4, 0).expect("valid"));
        assert_eq!(
            (r.address, r.write, r.reason, r.pasid),
            (0x420_0000, true, 0x05, None)
        );
        let (lo, hi) = qemu_record(0x0100, 0x06, true, 0x4000);
        let r = FaultRecord::decode(lo, hi).expect("valid");
        assert_eq!(
            (r.source.to_string().as_str(), r.write, r.reason),
            ("01:00.0", false, 6)
        );
    }

    #[test]
    fn invalid_records_and_pasids() {
        assert_eq!(FaultRecord::decode(0x1000, 0x0000_0002_0000_0020), None);
        let hi = VALID | (1 << 31) | (0x12345 << 40) | (0x05 << 32) | 0x20;
        assert_eq!(
            FaultRecord::decode(0, hi).and_then(|r| r.pasid),
            Some(0x12345)
        );
    }

    /// An interrupt-remapping record as QEMU 10 builds it (`vtd_report_ir_fault`): the index in
    /// FI bits 63:48, SID and FR, T clear.
    #[test]
    fn decodes_interrupt_remapping_records() {
        let hi = VALID | (0x26 << 32) | 0x0020;
        let r = FaultRecord::decode(5 << 48, hi).expect("valid");
        assert_eq!(r.source, Bdf::new(0, 4, 0).expect("valid"));
        assert_eq!((r.reason, r.interrupt_index()), (0x26, Some(5)));
        let r = FaultRecord::decode(300 << 48, VALID | (0x21 << 32) | 0x20).expect("valid");
        assert_eq!(r.interrupt_index(), Some(300));
        let r = FaultRecord::decode(0xffff << 48, VALID | (0x22 << 32)).expect("valid");
        assert_eq!(r.interrupt_index(), Some(0xffff));
        // A DMA fault has no interrupt index, whatever its address.
        let (lo, hi) = qemu_record(0x0020, 0x05, false, 0x0001_0000_0000_0000);
        assert_eq!(
            FaultRecord::decode(lo, hi).and_then(|r| r.interrupt_index()),
            None
        );
        assert_eq!(
            reason_text(0x21),
            "interrupt index beyond the interrupt remapping table"
        );
        assert_eq!(
            reason_text(0x22),
            "interrupt remapping table entry not present"
        );
        assert_eq!(reason_text(0x26), "interrupt source-id validation failed");
        assert_eq!(
            reason_text(0x27),
            "error accessing a posted-interrupt descriptor"
        );
    }

    #[test]
    fn reasons_have_meanings() {
        assert!(reason_text(0x02).starts_with("context entry not present"));
        assert!(reason_text(0x05).starts_with("write to a page without write permission"));
        assert!(reason_text(0x06).starts_with("read of a page without read permission"));
        assert_eq!(reason_text(0x7f), "reserved or unknown reason");
    }
}
