//! VM-exit information fields (read-only): SDM Vol. 3D, Appendix B, sections "64-Bit Read-Only
//! Data Field", "32-Bit Read-Only Data Fields" and "Natural-Width Read-Only Data Fields".
//!
//! These enums implement [`super::VmcsReadable`] only: a typed VMWRITE cannot name them.

use super::{FieldType, W32, W64, WNatural, vmcs_fields};

vmcs_fields! {
    /// 64-bit read-only data field (Appendix B.2.2).
    pub enum ReadOnly64: W64, FieldType::ExitInformation, ro {
        /// Guest-physical address of an EPT violation or misconfiguration.
        GuestPhysicalAddress = 0x2400, "guest-physical address";
    }
}

vmcs_fields! {
    /// 32-bit read-only data fields (Appendix B.3.2).
    pub enum ReadOnly32: W32, FieldType::ExitInformation, ro {
        /// Why the last VMX instruction failed (VMfailValid): see [`crate::exit::VmInstructionError`].
        VmInstructionError = 0x4400, "VM-instruction error";
        /// See [`crate::exit::ExitReason`].
        ExitReason = 0x4402, "exit reason";
        /// See [`crate::exit::InterruptionInfo`].
        ExitInterruptionInfo = 0x4404, "VM-exit interruption information";
        ExitInterruptionErrorCode = 0x4406, "VM-exit interruption error code";
        IdtVectoringInfo = 0x4408, "IDT-vectoring information field";
        IdtVectoringErrorCode = 0x440a, "IDT-vectoring error code";
        /// Length of the instruction that caused the exit (to advance RIP).
        ExitInstructionLength = 0x440c, "VM-exit instruction length";
        ExitInstructionInfo = 0x440e, "VM-exit instruction information";
    }
}

vmcs_fields! {
    /// Natural-width read-only data fields (Appendix B.4.2).
    pub enum ReadOnlyNatural: WNatural, FieldType::ExitInformation, ro {
        /// See the decoders in [`crate::exit`].
        ExitQualification = 0x6400, "exit qualification";
        IoRcx = 0x6402, "I/O RCX";
        IoRsi = 0x6404, "I/O RSI";
        IoRdi = 0x6406, "I/O RDI";
        IoRip = 0x6408, "I/O RIP";
        GuestLinearAddress = 0x640a, "guest-linear address";
    }
}
