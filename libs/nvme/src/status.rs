//! The completion queue entry's Status field (NVMe Base Spec 2.0 §4.2.3, Figure 93): Status Code
//! (SC, 8 bits), Status Code Type (SCT, 3 bits), Command Retry Delay (CRD), More (M) and Do Not
//! Retry (DNR), with the names of the status codes of §4.2.3.1 (Figure 95, generic), §4.2.3.2
//! (Figure 96, command specific), §4.2.3.3 (Figure 97, media and data integrity) and §4.2.3.4
//! (Figure 98, path related).

use core::fmt;

/// Status Code Type (Figure 94).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusCodeType {
    /// 0h: Generic Command Status.
    Generic,
    /// 1h: Command Specific Status.
    CommandSpecific,
    /// 2h: Media and Data Integrity Errors.
    MediaDataIntegrity,
    /// 3h: Path Related Status.
    PathRelated,
    /// 7h: Vendor Specific.
    VendorSpecific,
    /// 4h-6h: reserved.
    Reserved(u8),
}

impl StatusCodeType {
    /// Decodes the 3-bit field.
    pub fn from_bits(bits: u8) -> Self {
        match bits & 7 {
            0 => Self::Generic,
            1 => Self::CommandSpecific,
            2 => Self::MediaDataIntegrity,
            3 => Self::PathRelated,
            7 => Self::VendorSpecific,
            other => Self::Reserved(other),
        }
    }

    /// The 3-bit value.
    pub fn bits(self) -> u8 {
        match self {
            Self::Generic => 0,
            Self::CommandSpecific => 1,
            Self::MediaDataIntegrity => 2,
            Self::PathRelated => 3,
            Self::VendorSpecific => 7,
            Self::Reserved(b) => b & 7,
        }
    }
}

/// A decoded Status field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Status Code Type.
    pub sct: StatusCodeType,
    /// Status Code.
    pub sc: u8,
    /// Command Retry Delay (index into the controller's CRDT fields; 0 = retry at once).
    pub crd: u8,
    /// More: further information in the Error Information log page.
    pub more: bool,
    /// Do Not Retry: the same command would fail again.
    pub dnr: bool,
}

/// Generic command status values used by name elsewhere.
pub mod generic {
    /// Successful Completion.
    pub const SUCCESS: u8 = 0x00;
    /// Invalid Command Opcode.
    pub const INVALID_OPCODE: u8 = 0x01;
    /// Invalid Field in Command.
    pub const INVALID_FIELD: u8 = 0x02;
    /// Data Transfer Error.
    pub const DATA_TRANSFER_ERROR: u8 = 0x04;
    /// Internal Error.
    pub const INTERNAL_ERROR: u8 = 0x06;
}

/// Command specific status values of Virtualization Management (§5.22.1, Figure 370).
pub mod virt {
    /// Invalid Controller Identifier.
    pub const INVALID_CONTROLLER_ID: u8 = 0x1f;
    /// Invalid Secondary Controller State.
    pub const INVALID_SECONDARY_STATE: u8 = 0x20;
    /// Invalid Number of Controller Resources.
    pub const INVALID_RESOURCE_COUNT: u8 = 0x21;
    /// Invalid Resource Identifier.
    pub const INVALID_RESOURCE_ID: u8 = 0x22;
}

fn generic_name(sc: u8) -> Option<&'static str> {
    Some(match sc {
        0x00 => "Successful Completion",
        0x01 => "Invalid Command Opcode",
        0x02 => "Invalid Field in Command",
        0x03 => "Command ID Conflict",
        0x04 => "Data Transfer Error",
        0x05 => "Commands Aborted due to Power Loss Notification",
        0x06 => "Internal Error",
        0x07 => "Command Abort Requested",
        0x08 => "Command Aborted due to SQ Deletion",
        0x09 => "Command Aborted due to Failed Fused Command",
        0x0a => "Command Aborted due to Missing Fused Command",
        0x0b => "Invalid Namespace or Format",
        0x0c => "Command Sequence Error",
        0x0d => "Invalid SGL Segment Descriptor",
        0x0e => "Invalid Number of SGL Descriptors",
        0x0f => "Data SGL Length Invalid",
        0x10 => "Metadata SGL Length Invalid",
        0x11 => "SGL Descriptor Type Invalid",
        0x12 => "Invalid Use of Controller Memory Buffer",
        0x13 => "PRP Offset Invalid",
        0x14 => "Atomic Write Unit Exceeded",
        0x15 => "Operation Denied",
        0x16 => "SGL Offset Invalid",
        0x18 => "Host Identifier Inconsistent Format",
        0x19 => "Keep Alive Timer Expired",
        0x1a => "Keep Alive Timeout Invalid",
        0x1b => "Command Aborted due to Preempt and Abort",
        0x1c => "Sanitize Failed",
        0x1d => "Sanitize In Progress",
        0x1e => "SGL Data Block Granularity Invalid",
        0x1f => "Command Not Supported for Queue in CMB",
        0x20 => "Namespace is Write Protected",
        0x21 => "Command Interrupted",
        0x22 => "Transient Transport Error",
        0x23 => "Command Prohibited by Command and Feature Lockdown",
        0x24 => "Admin Command Media Not Ready",
        0x80 => "LBA Out of Range",
        0x81 => "Capacity Exceeded",
        0x82 => "Namespace Not Ready",
        0x83 => "Reservation Conflict",
        0x84 => "Format In Progress",
        _ => return None,
    })
}

fn command_specific_name(sc: u8) -> Option<&'static str> {
    Some(match sc {
        0x00 => "Completion Queue Invalid",
        0x01 => "Invalid Queue Identifier",
        0x02 => "Invalid Queue Size",
        0x03 => "Abort Command Limit Exceeded",
        0x05 => "Asynchronous Event Request Limit Exceeded",
        0x06 => "Invalid Firmware Slot",
        0x07 => "Invalid Firmware Image",
        0x08 => "Invalid Interrupt Vector",
        0x09 => "Invalid Log Page",
        0x0a => "Invalid Format",
        0x0b => "Firmware Activation Requires Conventional Reset",
        0x0c => "Invalid Queue Deletion",
        0x0d => "Feature Identifier Not Saveable",
        0x0e => "Feature Not Changeable",
        0x0f => "Feature Not Namespace Specific",
        0x10 => "Firmware Activation Requires NVM Subsystem Reset",
        0x11 => "Firmware Activation Requires Controller Level Reset",
        0x12 => "Firmware Activation Requires Maximum Time Violation",
        0x13 => "Firmware Activation Prohibited",
        0x14 => "Overlapping Range",
        0x15 => "Namespace Insufficient Capacity",
        0x16 => "Namespace Identifier Unavailable",
        0x18 => "Namespace Already Attached",
        0x19 => "Namespace Is Private",
        0x1a => "Namespace Not Attached",
        0x1b => "Thin Provisioning Not Supported",
        0x1c => "Controller List Invalid",
        0x1d => "Device Self-test In Progress",
        0x1e => "Boot Partition Write Prohibited",
        virt::INVALID_CONTROLLER_ID => "Invalid Controller Identifier",
        virt::INVALID_SECONDARY_STATE => "Invalid Secondary Controller State",
        virt::INVALID_RESOURCE_COUNT => "Invalid Number of Controller Resources",
        virt::INVALID_RESOURCE_ID => "Invalid Resource Identifier",
        0x23 => "Sanitize Prohibited While Persistent Memory Region is Enabled",
        0x24 => "ANA Group Identifier Invalid",
        0x25 => "ANA Attach Failed",
        _ => return None,
    })
}

fn media_name(sc: u8) -> Option<&'static str> {
    Some(match sc {
        0x80 => "Write Fault",
        0x81 => "Unrecovered Read Error",
        0x82 => "End-to-end Guard Check Error",
        0x83 => "End-to-end Application Tag Check Error",
        0x84 => "End-to-end Reference Tag Check Error",
        0x85 => "Compare Failure",
        0x86 => "Access Denied",
        0x87 => "Deallocated or Unwritten Logical Block",
        _ => return None,
    })
}

fn path_name(sc: u8) -> Option<&'static str> {
    Some(match sc {
        0x00 => "Internal Path Error",
        0x01 => "Asymmetric Access Persistent Loss",
        0x02 => "Asymmetric Access Inaccessible",
        0x03 => "Asymmetric Access Transition",
        0x60 => "Controller Pathing Error",
        0x70 => "Host Pathing Error",
        0x71 => "Command Aborted By Host",
        _ => return None,
    })
}

impl Status {
    /// Successful Completion.
    pub const SUCCESS: Self = Self {
        sct: StatusCodeType::Generic,
        sc: 0,
        crd: 0,
        more: false,
        dnr: false,
    };

    /// Decodes the 15-bit Status field (Dword 3 bits 31:17 of a completion, shifted down).
    pub fn from_field(field: u16) -> Self {
        Self {
            sc: field as u8,
            sct: StatusCodeType::from_bits((field >> 8) as u8),
            crd: ((field >> 11) & 3) as u8,
            more: field & (1 << 13) != 0,
            dnr: field & (1 << 14) != 0,
        }
    }

    /// The 15-bit field.
    pub fn to_field(self) -> u16 {
        u16::from(self.sc)
            | (u16::from(self.sct.bits()) << 8)
            | (u16::from(self.crd & 3) << 11)
            | (u16::from(self.more) << 13)
            | (u16::from(self.dnr) << 14)
    }

    /// A status of `sct`/`sc` (no retry hints).
    pub fn new(sct: StatusCodeType, sc: u8) -> Self {
        Self {
            sct,
            sc,
            crd: 0,
            more: false,
            dnr: false,
        }
    }

    /// Successful Completion?
    pub fn is_success(self) -> bool {
        self.sct == StatusCodeType::Generic && self.sc == generic::SUCCESS
    }

    /// `(SCT << 8) | SC`, the usual compact form (e.g. 0x121).
    pub fn code(self) -> u16 {
        (u16::from(self.sct.bits()) << 8) | u16::from(self.sc)
    }

    /// Is this `sct`/`sc`?
    pub fn is(self, sct: StatusCodeType, sc: u8) -> bool {
        self.sct == sct && self.sc == sc
    }

    /// The specification's name of the status code, if it has one.
    pub fn name(self) -> Option<&'static str> {
        match self.sct {
            StatusCodeType::Generic => generic_name(self.sc),
            StatusCodeType::CommandSpecific => command_specific_name(self.sc),
            StatusCodeType::MediaDataIntegrity => media_name(self.sc),
            StatusCodeType::PathRelated => path_name(self.sc),
            StatusCodeType::VendorSpecific | StatusCodeType::Reserved(_) => None,
        }
    }
}

impl fmt::Display for Status {
    /// `SCT 1h/SC 21h "Invalid Number of Controller Resources" (do not retry)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SCT {:x}h/SC {:02x}h", self.sct.bits(), self.sc)?;
        match (self.sct, self.name()) {
            (_, Some(name)) => write!(f, " \"{name}\"")?,
            (StatusCodeType::VendorSpecific, None) => write!(f, " (vendor specific)")?,
            (_, None) => write!(f, " (reserved)")?,
        }
        if self.dnr {
            write!(f, " (do not retry)")?;
        }
        if self.more {
            write!(f, " (more in the error log)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_field() {
        // QEMU's NVME_INVALID_NUM_RESOURCES | NVME_DNR = 0x4121.
        let s = Status::from_field(0x4121);
        assert_eq!(s.sct, StatusCodeType::CommandSpecific);
        assert_eq!(s.sc, 0x21);
        assert!(s.dnr);
        assert!(!s.more);
        assert_eq!(s.crd, 0);
        assert_eq!(s.code(), 0x121);
        assert_eq!(s.to_field(), 0x4121);
        assert!(!s.is_success());
        assert!(s.is(
            StatusCodeType::CommandSpecific,
            virt::INVALID_RESOURCE_COUNT
        ));
        let s = Status::from_field(0x3fff);
        assert_eq!(s.sct, StatusCodeType::VendorSpecific);
        assert_eq!(s.crd, 3);
        assert!(s.more);
        assert!(!s.dnr);
        assert_eq!(s.to_field(), 0x3fff);
        assert!(Status::from_field(0).is_success());
        assert_eq!(Status::from_field(0), Status::SUCCESS);
    }

    #[test]
    fn names() {
        let name = |sct, sc| Status::new(sct, sc).name();
        assert_eq!(
            name(StatusCodeType::Generic, 0x01),
            Some("Invalid Command Opcode")
        );
        assert_eq!(
            name(StatusCodeType::Generic, 0x02),
            Some("Invalid Field in Command")
        );
        assert_eq!(
            name(StatusCodeType::Generic, 0x04),
            Some("Data Transfer Error")
        );
        assert_eq!(
            name(StatusCodeType::CommandSpecific, 0x1f),
            Some("Invalid Controller Identifier")
        );
        assert_eq!(
            name(StatusCodeType::CommandSpecific, 0x20),
            Some("Invalid Secondary Controller State")
        );
        assert_eq!(
            name(StatusCodeType::CommandSpecific, 0x21),
            Some("Invalid Number of Controller Resources")
        );
        assert_eq!(
            name(StatusCodeType::CommandSpecific, 0x22),
            Some("Invalid Resource Identifier")
        );
        assert_eq!(
            name(StatusCodeType::MediaDataIntegrity, 0x81),
            Some("Unrecovered Read Error")
        );
        assert_eq!(
            name(StatusCodeType::PathRelated, 0x71),
            Some("Command Aborted By Host")
        );
        assert_eq!(name(StatusCodeType::Generic, 0x17), None);
        assert_eq!(name(StatusCodeType::Reserved(5), 0x00), None);
        assert_eq!(name(StatusCodeType::VendorSpecific, 0x00), None);
    }

    #[test]
    fn display() {
        assert_eq!(
            Status::from_field(0x411f).to_string(),
            "SCT 1h/SC 1fh \"Invalid Controller Identifier\" (do not retry)"
        );
        assert_eq!(
            Status::from_field(0x0004).to_string(),
            "SCT 0h/SC 04h \"Data Transfer Error\""
        );
        assert_eq!(
            Status::from_field(0x0742).to_string(),
            "SCT 7h/SC 42h (vendor specific)"
        );
        assert_eq!(
            Status::from_field(0x2517).to_string(),
            "SCT 5h/SC 17h (reserved) (more in the error log)"
        );
    }
}
