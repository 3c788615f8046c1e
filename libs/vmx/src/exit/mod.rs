//! Decoding VM exits: the exit-reason field and its basic exit reasons (SDM Vol. 3D, Appendix C
//! "VMX Basic Exit Reasons"; Vol. 3C, "Basic VM-Exit Information"), VM-instruction error numbers
//! (Vol. 3C, "VM Instruction Error Numbers"), exit qualifications (Vol. 3C, "Exit Qualification
//! for ...") and interruption information (Vol. 3C, "Information for VM Exits Due to Vectored
//! Events" and "VM-Entry Controls for Event Injection").

mod instruction_error;
mod interruption;
mod qualification;
#[cfg(test)]
mod tests;

pub use instruction_error::VmInstructionError;
pub use interruption::{
    InjectionError, InterruptionInfo, InterruptionType, exception_has_error_code, vector,
};
pub use qualification::{
    CrAccess, DebugExceptionQualification, EptMisconfiguration, EptViolation, EptViolationCause,
    Gpr, IoDirection, IoQualification, IoSize, MovDrDirection, MovDrQualification,
    TaskSwitchQualification, TaskSwitchSource,
};

/// A value from an exit field that this crate cannot decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ExitDecodeError {
    #[error("unknown basic exit reason {0} (SDM Appendix C)")]
    UnknownExitReason(u16),
    #[error("unknown VM-instruction error number {0} (SDM \"VM Instruction Error Numbers\")")]
    UnknownInstructionError(u32),
    #[error("I/O exit qualification: size of access encoding {0} is not 0, 1 or 3")]
    InvalidIoSize(u8),
}

macro_rules! basic_exit_reasons {
    ($( $(#[$m:meta])* $variant:ident = $n:literal, $name:literal; )*) => {
        /// Basic exit reasons: bits 15:0 of the exit-reason field (SDM Vol. 3D, Appendix C,
        /// table "Basic Exit Reasons").
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u16)]
        pub enum BasicExitReason {
            $( $(#[$m])* $variant = $n, )*
        }

        impl BasicExitReason {
            /// Every basic exit reason Appendix C defines, in numeric order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];

            pub fn from_raw(n: u16) -> Result<Self, ExitDecodeError> {
                match n {
                    $( $n => Ok(Self::$variant), )*
                    other => Err(ExitDecodeError::UnknownExitReason(other)),
                }
            }
            /// The number Appendix C gives this reason.
            pub const fn number(self) -> u16 {
                self as u16
            }
            /// The reason's name as Appendix C spells it.
            pub const fn name(self) -> &'static str {
                match self {
                    $( Self::$variant => $name, )*
                }
            }
        }
    };
}

basic_exit_reasons! {
    /// An exception (with its bit set in the exception bitmap) or an NMI ("NMI exiting").
    ExceptionOrNmi = 0, "exception or non-maskable interrupt (NMI)";
    /// With "external-interrupt exiting".
    ExternalInterrupt = 1, "external interrupt";
    TripleFault = 2, "triple fault";
    InitSignal = 3, "INIT signal";
    StartupIpi = 4, "start-up IPI (SIPI)";
    IoSmi = 5, "I/O system-management interrupt (SMI)";
    OtherSmi = 6, "other SMI";
    InterruptWindow = 7, "interrupt window";
    NmiWindow = 8, "NMI window";
    TaskSwitch = 9, "task switch";
    Cpuid = 10, "CPUID";
    Getsec = 11, "GETSEC";
    Hlt = 12, "HLT";
    Invd = 13, "INVD";
    Invlpg = 14, "INVLPG";
    Rdpmc = 15, "RDPMC";
    Rdtsc = 16, "RDTSC";
    Rsm = 17, "RSM";
    Vmcall = 18, "VMCALL";
    Vmclear = 19, "VMCLEAR";
    Vmlaunch = 20, "VMLAUNCH";
    Vmptrld = 21, "VMPTRLD";
    Vmptrst = 22, "VMPTRST";
    Vmread = 23, "VMREAD";
    Vmresume = 24, "VMRESUME";
    Vmwrite = 25, "VMWRITE";
    Vmxoff = 26, "VMXOFF";
    Vmxon = 27, "VMXON";
    /// See [`CrAccess`].
    ControlRegisterAccess = 28, "control-register accesses";
    /// See [`MovDrQualification`].
    MovDr = 29, "MOV DR";
    /// See [`IoQualification`].
    IoInstruction = 30, "I/O instruction";
    Rdmsr = 31, "RDMSR";
    Wrmsr = 32, "WRMSR";
    /// Always with bit 31 (VM-entry failure) of the exit-reason field.
    InvalidGuestState = 33, "VM-entry failure due to invalid guest state";
    /// Always with bit 31; the exit qualification is the index (from 1) of the failing entry.
    MsrLoading = 34, "VM-entry failure due to MSR loading";
    Mwait = 36, "MWAIT";
    MonitorTrapFlag = 37, "monitor trap flag";
    Monitor = 39, "MONITOR";
    Pause = 40, "PAUSE";
    /// Always with bit 31.
    MachineCheckDuringEntry = 41, "VM-entry failure due to machine-check event";
    TprBelowThreshold = 43, "TPR below threshold";
    ApicAccess = 44, "APIC access";
    VirtualizedEoi = 45, "virtualized EOI";
    GdtrIdtrAccess = 46, "access to GDTR or IDTR";
    LdtrTrAccess = 47, "access to LDTR or TR";
    /// See [`EptViolation`].
    EptViolation = 48, "EPT violation";
    /// See [`EptMisconfiguration`].
    EptMisconfiguration = 49, "EPT misconfiguration";
    Invept = 50, "INVEPT";
    Rdtscp = 51, "RDTSCP";
    PreemptionTimer = 52, "VMX-preemption timer expired";
    Invvpid = 53, "INVVPID";
    Wbinvd = 54, "WBINVD or WBNOINVD";
    Xsetbv = 55, "XSETBV";
    ApicWrite = 56, "APIC write";
    Rdrand = 57, "RDRAND";
    Invpcid = 58, "INVPCID";
    Vmfunc = 59, "VMFUNC";
    Encls = 60, "ENCLS";
    Rdseed = 61, "RDSEED";
    PmlFull = 62, "page-modification log full";
    Xsaves = 63, "XSAVES";
    Xrstors = 64, "XRSTORS";
    Pconfig = 65, "PCONFIG";
    SppEvent = 66, "SPP-related event";
    Umwait = 67, "UMWAIT";
    Tpause = 68, "TPAUSE";
    Loadiwkey = 69, "LOADIWKEY";
    Enclv = 70, "ENCLV";
    EnqcmdPasidFailure = 72, "ENQCMD PASID translation failure";
    EnqcmdsPasidFailure = 73, "ENQCMDS PASID translation failure";
    BusLock = 74, "bus lock";
    InstructionTimeout = 75, "instruction timeout";
    Seamcall = 76, "SEAMCALL";
    Tdcall = 77, "TDCALL";
    Rdmsrlist = 78, "RDMSRLIST";
    Wrmsrlist = 79, "WRMSRLIST";
    Urdmsr = 80, "URDMSR";
    Uwrmsr = 81, "UWRMSR";
}

impl BasicExitReason {
    /// Reasons whose VM exit can interrupt the delivery of an event (so the IDT-vectoring
    /// information may be valid): an exception in the exception bitmap, a task switch, an APIC
    /// access, an EPT violation or misconfiguration, a full page-modification log, an SPP-related
    /// event (SDM Vol. 3C, "Information for VM Exits That Occur During Event Delivery"). An
    /// instruction's own exit, an external interrupt, an interrupt window or the preemption
    /// timer happen at instruction boundaries, never during delivery; a triple fault is not
    /// considered to occur during delivery.
    pub const fn may_interrupt_event_delivery(self) -> bool {
        matches!(
            self,
            Self::ExceptionOrNmi
                | Self::TaskSwitch
                | Self::ApicAccess
                | Self::EptViolation
                | Self::EptMisconfiguration
                | Self::PmlFull
                | Self::SppEvent
        )
    }

    /// Reasons that are reported only with the VM-entry-failure bit (SDM "VM-Entry Failures
    /// During or After Loading Guest State").
    pub const fn is_entry_failure_reason(self) -> bool {
        matches!(
            self,
            Self::InvalidGuestState | Self::MsrLoading | Self::MachineCheckDuringEntry
        )
    }
}

/// The 32-bit exit-reason field (SDM Vol. 3C, "Basic VM-Exit Information", table "Format of
/// Exit Reason").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExitReason(pub u32);

impl ExitReason {
    /// Bit 31: VM-entry failure (0 = true VM exit).
    pub const ENTRY_FAILURE: u32 = 1 << 31;
    /// Bit 29: VM exit from VMX root operation (SMM monitor only).
    pub const FROM_VMX_ROOT: u32 = 1 << 29;
    /// Bit 28: pending MTF VM exit.
    pub const PENDING_MTF: u32 = 1 << 28;
    /// Bit 27: the exit was incident to enclave mode.
    pub const ENCLAVE_MODE: u32 = 1 << 27;

    /// Bits 15:0.
    pub const fn basic_raw(self) -> u16 {
        self.0 as u16
    }
    pub fn basic(self) -> Result<BasicExitReason, ExitDecodeError> {
        BasicExitReason::from_raw(self.basic_raw())
    }
    pub const fn entry_failure(self) -> bool {
        self.0 & Self::ENTRY_FAILURE != 0
    }
    pub const fn from_vmx_root(self) -> bool {
        self.0 & Self::FROM_VMX_ROOT != 0
    }
    pub const fn pending_mtf(self) -> bool {
        self.0 & Self::PENDING_MTF != 0
    }
    pub const fn enclave_mode(self) -> bool {
        self.0 & Self::ENCLAVE_MODE != 0
    }
    /// The basic reason's name, or "unknown exit reason".
    pub fn name(self) -> &'static str {
        match self.basic() {
            Ok(r) => r.name(),
            Err(_) => "unknown exit reason",
        }
    }
}
