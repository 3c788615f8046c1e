//! Submission queue entries (NVMe Base Spec 2.0 §4.1, Figure 88 "Common Command Format") and the
//! admin commands Conduit sends: Identify (§5.17) and Virtualization Management (§5.22).

use core::mem::{offset_of, size_of};

/// Admin command opcodes (§5, Figure 138).
pub mod admin_opcode {
    /// Delete I/O Submission Queue.
    pub const DELETE_IO_SQ: u8 = 0x00;
    /// Create I/O Submission Queue.
    pub const CREATE_IO_SQ: u8 = 0x01;
    /// Get Log Page.
    pub const GET_LOG_PAGE: u8 = 0x02;
    /// Delete I/O Completion Queue.
    pub const DELETE_IO_CQ: u8 = 0x04;
    /// Create I/O Completion Queue.
    pub const CREATE_IO_CQ: u8 = 0x05;
    /// Identify.
    pub const IDENTIFY: u8 = 0x06;
    /// Abort.
    pub const ABORT: u8 = 0x08;
    /// Set Features.
    pub const SET_FEATURES: u8 = 0x09;
    /// Get Features.
    pub const GET_FEATURES: u8 = 0x0a;
    /// Namespace Attachment.
    pub const NAMESPACE_ATTACHMENT: u8 = 0x15;
    /// Virtualization Management.
    pub const VIRTUALIZATION_MANAGEMENT: u8 = 0x1c;
}

/// A 64-byte submission queue entry, laid out as the controller reads it (little-endian fields).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Command {
    /// Command Dword 0: opcode (7:0), FUSE (9:8), PSDT (15:14), command identifier (31:16).
    pub cdw0: u32,
    /// Namespace Identifier.
    pub nsid: u32,
    /// Command Dword 2.
    pub cdw2: u32,
    /// Command Dword 3.
    pub cdw3: u32,
    /// Metadata Pointer.
    pub mptr: u64,
    /// Data Pointer, PRP Entry 1 (PSDT = 00b).
    pub prp1: u64,
    /// Data Pointer, PRP Entry 2.
    pub prp2: u64,
    /// Command Dword 10.
    pub cdw10: u32,
    /// Command Dword 11.
    pub cdw11: u32,
    /// Command Dword 12.
    pub cdw12: u32,
    /// Command Dword 13.
    pub cdw13: u32,
    /// Command Dword 14.
    pub cdw14: u32,
    /// Command Dword 15.
    pub cdw15: u32,
}

const _: () = {
    assert!(size_of::<Command>() == 64);
    assert!(offset_of!(Command, nsid) == 4);
    assert!(offset_of!(Command, mptr) == 16);
    assert!(offset_of!(Command, prp1) == 24);
    assert!(offset_of!(Command, prp2) == 32);
    assert!(offset_of!(Command, cdw10) == 40);
    assert!(offset_of!(Command, cdw15) == 60);
};

/// Identify's Controller or Namespace Structure (CNS) values used here (§5.17.1, Figure 273).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Cns {
    /// Identify Namespace data structure for the NSID.
    Namespace = 0x00,
    /// Identify Controller data structure.
    Controller = 0x01,
    /// Active Namespace ID list.
    ActiveNamespaces = 0x02,
    /// Controller list: the controllers attached to the NSID (with an ID >= CNTID).
    AttachedControllers = 0x12,
    /// Primary Controller Capabilities data structure.
    PrimaryControllerCapabilities = 0x14,
    /// Secondary Controller List (controllers with an ID >= CNTID).
    SecondaryControllerList = 0x15,
}

/// Virtualization Management actions (§5.22, Figure 369: CDW10 bits 3:0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum VirtAction {
    /// Primary Controller Flexible Allocation: how many flexible resources the primary keeps
    /// (takes effect at its next Controller Level Reset).
    PrimaryFlexibleAllocation = 0x1,
    /// Secondary Controller Offline.
    SecondaryOffline = 0x7,
    /// Secondary Controller Assign: give flexible resources to an offline secondary controller.
    SecondaryAssign = 0x8,
    /// Secondary Controller Online.
    SecondaryOnline = 0x9,
}

impl VirtAction {
    /// The action's name in the specification.
    pub fn name(self) -> &'static str {
        match self {
            Self::PrimaryFlexibleAllocation => "Primary Controller Flexible Allocation",
            Self::SecondaryOffline => "Secondary Controller Offline",
            Self::SecondaryAssign => "Secondary Controller Assign",
            Self::SecondaryOnline => "Secondary Controller Online",
        }
    }
}

/// Virtualization Management resource types (§5.22, CDW10 bits 10:8; §8.26.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ResourceType {
    /// VQ Resources: queue pairs (an admin queue pair counts as one).
    Queue = 0,
    /// VI Resources: interrupt vectors.
    Interrupt = 1,
}

impl ResourceType {
    /// "VQ" or "VI".
    pub fn short(self) -> &'static str {
        match self {
            Self::Queue => "VQ",
            Self::Interrupt => "VI",
        }
    }
}

impl Command {
    /// Opcode.
    pub fn opcode(&self) -> u8 {
        self.cdw0 as u8
    }

    /// Command Identifier.
    pub fn cid(&self) -> u16 {
        (self.cdw0 >> 16) as u16
    }

    /// The same command with Command Identifier `cid`.
    pub fn with_cid(mut self, cid: u16) -> Self {
        self.cdw0 = (self.cdw0 & 0xffff) | (u32::from(cid) << 16);
        self
    }

    /// An admin command with `opcode`, PRP data pointer (PSDT 00b), no fused operation.
    pub fn new(opcode: u8) -> Self {
        Self {
            cdw0: u32::from(opcode),
            ..Self::default()
        }
    }

    /// Identify (§5.17): CDW10 CNS (7:0) and CNTID (31:16); the 4 KiB result is written to
    /// `prp1`, which must be 4 KiB aligned so that it does not cross a page (no PRP2 needed).
    pub fn identify(cns: Cns, cntid: u16, prp1: u64) -> Self {
        Self {
            cdw10: u32::from(cns as u8) | (u32::from(cntid) << 16),
            prp1,
            ..Self::new(admin_opcode::IDENTIFY)
        }
    }

    /// Identify of a namespace-specific structure (§5.17): CNS and CNTID in CDW10 as for
    /// [`Command::identify`], the namespace in NSID (Identify Namespace, CNS 00h; the controllers
    /// attached to it, CNS 12h; active namespaces above it, CNS 02h).
    pub fn identify_namespace(cns: Cns, nsid: u32, cntid: u16, prp1: u64) -> Self {
        Self {
            nsid,
            ..Self::identify(cns, cntid, prp1)
        }
    }

    /// Virtualization Management (§5.22): CDW10 action (3:0), resource type (10:8) and
    /// controller identifier (31:16); CDW11 number of controller resources (15:0).
    pub fn virtualization_management(
        action: VirtAction,
        resource: ResourceType,
        cntlid: u16,
        count: u16,
    ) -> Self {
        Self {
            cdw10: u32::from(action as u8)
                | (u32::from(resource as u8) << 8)
                | (u32::from(cntlid) << 16),
            cdw11: u32::from(count),
            ..Self::new(admin_opcode::VIRTUALIZATION_MANAGEMENT)
        }
    }

    /// The entry's 64 bytes as the controller reads them.
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        let dwords = [
            self.cdw0,
            self.nsid,
            self.cdw2,
            self.cdw3,
            self.mptr as u32,
            (self.mptr >> 32) as u32,
            self.prp1 as u32,
            (self.prp1 >> 32) as u32,
            self.prp2 as u32,
            (self.prp2 >> 32) as u32,
            self.cdw10,
            self.cdw11,
            self.cdw12,
            self.cdw13,
            self.cdw14,
            self.cdw15,
        ];
        for (chunk, d) in out.as_chunks_mut::<4>().0.iter_mut().zip(dwords) {
            *chunk = d.to_le_bytes();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dword(bytes: &[u8; 64], i: usize) -> u32 {
        u32::from_le_bytes([
            bytes[4 * i],
            bytes[4 * i + 1],
            bytes[4 * i + 2],
            bytes[4 * i + 3],
        ])
    }

    #[test]
    fn identify_controller_encoding() {
        let c = Command::identify(Cns::Controller, 0, 0x1000_2000).with_cid(7);
        let b = c.to_bytes();
        assert_eq!(dword(&b, 0), 0x0007_0006);
        assert_eq!(c.opcode(), 0x06);
        assert_eq!(c.cid(), 7);
        assert_eq!(dword(&b, 1), 0, "NSID");
        assert_eq!(dword(&b, 6), 0x1000_2000, "PRP1 low");
        assert_eq!(dword(&b, 7), 0, "PRP1 high");
        assert_eq!(dword(&b, 8), 0, "PRP2 low");
        assert_eq!(dword(&b, 10), 0x01, "CNS");
        assert_eq!(dword(&b, 11), 0);
    }

    #[test]
    fn identify_secondary_list_names_the_first_controller() {
        let c = Command::identify(Cns::SecondaryControllerList, 0x42, 0xdead_b000_0000);
        let b = c.to_bytes();
        assert_eq!(dword(&b, 10), 0x0042_0015);
        assert_eq!(dword(&b, 6), 0xb000_0000);
        assert_eq!(dword(&b, 7), 0xdead);
    }

    #[test]
    fn virtualization_management_encoding() {
        let c = Command::virtualization_management(
            VirtAction::SecondaryAssign,
            ResourceType::Interrupt,
            3,
            1,
        );
        assert_eq!(c.opcode(), 0x1c);
        assert_eq!(c.cdw10, 0x0003_0108);
        assert_eq!(c.cdw11, 1);
        let c = Command::virtualization_management(
            VirtAction::PrimaryFlexibleAllocation,
            ResourceType::Queue,
            0,
            0,
        );
        assert_eq!(c.cdw10, 0x0000_0001);
        assert_eq!(c.cdw11, 0);
        let c = Command::virtualization_management(
            VirtAction::SecondaryOnline,
            ResourceType::Queue,
            0xffff,
            0,
        );
        assert_eq!(c.cdw10, 0xffff_0009);
        assert_eq!(
            VirtAction::SecondaryOnline.name(),
            "Secondary Controller Online"
        );
        assert_eq!(ResourceType::Interrupt.short(), "VI");
    }

    #[test]
    fn cid_replaces_only_the_identifier() {
        let c = Command::new(0x1c).with_cid(0xffff).with_cid(0x1234);
        assert_eq!(c.cdw0, 0x1234_001c);
    }
}
