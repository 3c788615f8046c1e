//! VM-instruction error numbers (SDM Vol. 3C, "VM Instruction Error Numbers", table
//! "VM-Instruction Error Numbers"): the value of the VM-instruction error field after a VMX
//! instruction fails with VMfailValid (ZF = 1).

use super::ExitDecodeError;

macro_rules! instruction_errors {
    ($( $variant:ident = $n:literal, $msg:literal; )*) => {
        /// A VM-instruction error number with its SDM meaning.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
        #[repr(u32)]
        pub enum VmInstructionError {
            $( #[error($msg)] $variant = $n, )*
        }

        impl VmInstructionError {
            /// Every error number the SDM defines.
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];

            pub fn from_raw(n: u32) -> Result<Self, ExitDecodeError> {
                match n {
                    $( $n => Ok(Self::$variant), )*
                    other => Err(ExitDecodeError::UnknownInstructionError(other)),
                }
            }
            pub const fn number(self) -> u32 {
                self as u32
            }
            /// The SDM's description.
            pub const fn message(self) -> &'static str {
                match self {
                    $( Self::$variant => $msg, )*
                }
            }
        }
    };
}

instruction_errors! {
    VmcallInVmxRoot = 1, "VMCALL executed in VMX root operation";
    VmclearInvalidAddress = 2, "VMCLEAR with invalid physical address";
    VmclearVmxonPointer = 3, "VMCLEAR with VMXON pointer";
    VmlaunchNonClearVmcs = 4, "VMLAUNCH with non-clear VMCS";
    VmresumeNonLaunchedVmcs = 5, "VMRESUME with non-launched VMCS";
    VmresumeAfterVmxoff = 6, "VMRESUME after VMXOFF (VMXOFF and VMXON between VMLAUNCH and VMRESUME)";
    EntryInvalidControlFields = 7, "VM entry with invalid control field(s)";
    EntryInvalidHostStateFields = 8, "VM entry with invalid host-state field(s)";
    VmptrldInvalidAddress = 9, "VMPTRLD with invalid physical address";
    VmptrldVmxonPointer = 10, "VMPTRLD with VMXON pointer";
    VmptrldIncorrectRevision = 11, "VMPTRLD with incorrect VMCS revision identifier";
    UnsupportedComponent = 12, "VMREAD/VMWRITE from/to unsupported VMCS component";
    VmwriteReadOnlyComponent = 13, "VMWRITE to read-only VMCS component";
    VmxonInVmxRoot = 15, "VMXON executed in VMX root operation";
    EntryInvalidExecutiveVmcsPointer = 16, "VM entry with invalid executive-VMCS pointer";
    EntryNonLaunchedExecutiveVmcs = 17, "VM entry with non-launched executive VMCS";
    EntryExecutiveVmcsNotVmxon = 18, "VM entry with executive-VMCS pointer not VMXON pointer (when attempting to deactivate the dual-monitor treatment of SMIs and SMM)";
    VmcallNonClearVmcs = 19, "VMCALL with non-clear VMCS (when attempting to activate the dual-monitor treatment of SMIs and SMM)";
    VmcallInvalidExitControls = 20, "VMCALL with invalid VM-exit control fields";
    VmcallIncorrectMsegRevision = 22, "VMCALL with incorrect MSEG revision identifier (when attempting to activate the dual-monitor treatment of SMIs and SMM)";
    VmxoffUnderDualMonitor = 23, "VMXOFF under dual-monitor treatment of SMIs and SMM";
    VmcallInvalidSmmMonitorFeatures = 24, "VMCALL with invalid SMM-monitor features (when attempting to activate the dual-monitor treatment of SMIs and SMM)";
    EntryInvalidExecutiveExecutionControls = 25, "VM entry with invalid VM-execution control fields in executive VMCS (when attempting to return from SMM)";
    EntryEventsBlockedByMovSs = 26, "VM entry with events blocked by MOV SS";
    InvalidInveptInvvpidOperand = 28, "invalid operand to INVEPT/INVVPID";
}
