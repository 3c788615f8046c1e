//! Guest-state check failures, each naming the SDM rule it breaks (SDM Vol. 3C, "Checks on the
//! Guest-State Area").

use super::{ActivityState, DescriptorTableReg, SegReg};
use crate::exit::InterruptionType;

/// The first guest-state check that fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GuestStateError {
    // "Checks on Guest Control Registers, Debug Registers, and MSRs"
    /// CR0.PE or CR0.PG is 0, which IA32_VMX_CR0_FIXED0 forbids unless "unrestricted guest" is 1.
    #[error(
        "CR0.PE/PG clear (CR0 = {cr0:#x}) needs \"unrestricted guest\": only with it may CR0.PE/PG be 0 (IA32_VMX_CR0_FIXED0)"
    )]
    Cr0ProtectionOrPagingOff { cr0: u64 },
    #[error("CR0 bits {missing:#x} must be 1 (IA32_VMX_CR0_FIXED0)")]
    Cr0Fixed0 { missing: u64 },
    #[error("CR0 bits {forbidden:#x} must be 0 (IA32_VMX_CR0_FIXED1)")]
    Cr0Fixed1 { forbidden: u64 },
    #[error("CR0.PG set but CR0.PE clear")]
    Cr0PagingWithoutProtection,
    #[error("CR4 bits {missing:#x} must be 1 (IA32_VMX_CR4_FIXED0)")]
    Cr4Fixed0 { missing: u64 },
    #[error("CR4 bits {forbidden:#x} must be 0 (IA32_VMX_CR4_FIXED1)")]
    Cr4Fixed1 { forbidden: u64 },
    #[error("CR4.CET set but CR0.WP clear")]
    Cr4CetWithoutWp,
    #[error(
        "IA32_DEBUGCTL {value:#x}: reserved bits 5:3 and 63:16 must be 0 with \"load debug controls\""
    )]
    DebugctlReserved { value: u64 },
    #[error("\"IA-32e mode guest\" requires CR0.PG = 1")]
    LongModeWithoutPaging,
    #[error("\"IA-32e mode guest\" requires CR4.PAE = 1")]
    LongModeWithoutPae,
    #[error("CR4.PCIDE must be 0 unless \"IA-32e mode guest\" is 1")]
    PcideOutsideLongMode,
    #[error("CR3 {cr3:#x}: bits beyond the physical-address width must be 0")]
    Cr3BeyondPhysicalWidth { cr3: u64 },
    #[error("DR7 {dr7:#x}: bits 63:32 must be 0 with \"load debug controls\"")]
    Dr7High { dr7: u64 },
    #[error("IA32_SYSENTER_ESP {value:#x} must be canonical")]
    SysenterEspNotCanonical { value: u64 },
    #[error("IA32_SYSENTER_EIP {value:#x} must be canonical")]
    SysenterEipNotCanonical { value: u64 },
    #[error(
        "IA32_PAT entry {index} has memory type {value}: each entry must be 0, 1, 4, 5, 6 or 7 with \"load IA32_PAT\""
    )]
    PatInvalidType { index: u8, value: u8 },
    #[error(
        "IA32_EFER {efer:#x}: reserved bits must be 0 with \"load IA32_EFER\" (only SCE, LME, LMA, NXE)"
    )]
    EferReserved { efer: u64 },
    #[error("IA32_EFER.LMA must equal \"IA-32e mode guest\" with \"load IA32_EFER\"")]
    EferLmaMismatch,
    #[error("IA32_EFER.LME must equal IA32_EFER.LMA when CR0.PG = 1 with \"load IA32_EFER\"")]
    EferLmeMismatch,

    // "Checks on Guest Segment Registers"
    #[error("{register}: {rule}")]
    Segment { register: SegReg, rule: SegmentRule },

    // "Checks on Guest Descriptor-Table Registers"
    #[error("{0} base must be canonical")]
    DescriptorTableBaseNotCanonical(DescriptorTableReg),
    #[error("{0} limit bits 31:16 must be 0")]
    DescriptorTableLimitHigh(DescriptorTableReg),

    // "Checks on Guest RIP, RFLAGS, and SSP"
    #[error(
        "RIP {rip:#x}: bits 63:32 must be 0 unless in 64-bit mode (\"IA-32e mode guest\" and CS.L = 1)"
    )]
    RipHighBits { rip: u64 },
    #[error("RIP {rip:#x}: bits 63:N must be identical in 64-bit mode (N = linear-address width)")]
    RipNotCanonical { rip: u64 },
    #[error("RFLAGS {rflags:#x}: reserved bits 63:22, 15, 5 and 3 must be 0")]
    RflagsReserved { rflags: u64 },
    #[error("RFLAGS reserved bit 1 must be 1")]
    RflagsBit1Clear,
    #[error("RFLAGS.VM must be 0 with \"IA-32e mode guest\" or when CR0.PE = 0")]
    RflagsVmInvalid,
    #[error("RFLAGS.IF must be 1 when injecting an external interrupt")]
    RflagsIfClearForExternalInterrupt,

    // "Checks on Guest Non-Register State"
    #[error("activity state {0} is not 0 (active), 1 (HLT), 2 (shutdown) or 3 (wait-for-SIPI)")]
    ActivityStateInvalid(u32),
    #[error("activity state {0} is not supported by this CPU (IA32_VMX_MISC bits 8:6)")]
    ActivityStateUnsupported(ActivityState),
    #[error("HLT activity state requires SS.DPL = 0")]
    HltWithSsDplNonZero,
    #[error("activity state must be active while blocking by STI or by MOV SS is set")]
    NotActiveWithStiOrMovSsBlocking,
    #[error("cannot inject a {} (vector {vector}) in the {activity} activity state", kind.name())]
    InjectionInActivityState {
        activity: ActivityState,
        kind: InterruptionType,
        vector: u8,
    },
    #[error("interruptibility state {value:#x}: reserved bits 31:5 must be 0")]
    InterruptibilityReserved { value: u32 },
    #[error("blocking by STI and blocking by MOV SS cannot both be set")]
    StiAndMovSsBlocking,
    #[error("blocking by STI requires RFLAGS.IF = 1")]
    StiBlockingWithIfClear,
    #[error("blocking by STI and by MOV SS must be 0 when injecting an external interrupt")]
    BlockingWithExternalInterruptInjection,
    #[error("blocking by MOV SS must be 0 when injecting an NMI")]
    MovSsBlockingWithNmiInjection,
    #[error("blocking by SMI must be 0 outside SMM")]
    SmiBlockingOutsideSmm,
    #[error("blocking by NMI must be 0 when injecting an NMI with \"virtual NMIs\"")]
    NmiBlockingWithVirtualNmiInjection,
    #[error("enclave interruption must be 0 while blocking by MOV SS is set")]
    EnclaveInterruptionWithMovSs,
    #[error("pending debug exceptions {value:#x}: reserved bits 10:4, 13, 15 and 63:17 must be 0")]
    PendingDebugReserved { value: u64 },
    #[error(
        "pending debug exceptions BS must be {} (1 exactly when RFLAGS.TF = 1 and IA32_DEBUGCTL.BTF = 0) while blocking by STI/MOV SS or in HLT",
        u8::from(*expected)
    )]
    PendingDebugBsMismatch { expected: bool },
    #[error(
        "pending debug exceptions RTM (bit 16) requires bit 12 set, bits 11:0 and 15:13 clear, and no blocking by MOV SS"
    )]
    PendingDebugRtmInvalid,
    #[error(
        "VMCS link pointer must be all ones (FFFFFFFF_FFFFFFFFH) without VMCS shadowing, not {value:#x}"
    )]
    VmcsLinkPointerNotAllOnes { value: u64 },
}

impl GuestStateError {
    /// The SDM subsection (by title) of "Checks on the Guest-State Area" the rule is in.
    pub const fn sdm_section(&self) -> &'static str {
        use GuestStateError::*;
        match self {
            Cr0ProtectionOrPagingOff { .. }
            | Cr0Fixed0 { .. }
            | Cr0Fixed1 { .. }
            | Cr0PagingWithoutProtection
            | Cr4Fixed0 { .. }
            | Cr4Fixed1 { .. }
            | Cr4CetWithoutWp
            | DebugctlReserved { .. }
            | LongModeWithoutPaging
            | LongModeWithoutPae
            | PcideOutsideLongMode
            | Cr3BeyondPhysicalWidth { .. }
            | Dr7High { .. }
            | SysenterEspNotCanonical { .. }
            | SysenterEipNotCanonical { .. }
            | PatInvalidType { .. }
            | EferReserved { .. }
            | EferLmaMismatch
            | EferLmeMismatch => "Checks on Guest Control Registers, Debug Registers, and MSRs",
            Segment { .. } => "Checks on Guest Segment Registers",
            DescriptorTableBaseNotCanonical(_) | DescriptorTableLimitHigh(_) => {
                "Checks on Guest Descriptor-Table Registers"
            }
            RipHighBits { .. }
            | RipNotCanonical { .. }
            | RflagsReserved { .. }
            | RflagsBit1Clear
            | RflagsVmInvalid
            | RflagsIfClearForExternalInterrupt => "Checks on Guest RIP, RFLAGS, and SSP",
            _ => "Checks on Guest Non-Register State",
        }
    }
}

/// A rule of "Checks on Guest Segment Registers" (which register breaks it is in
/// [`GuestStateError::Segment`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SegmentRule {
    #[error("selector TI flag must be 0")]
    TiFlagSet,
    #[error("SS.RPL must equal CS.RPL unless \"unrestricted guest\" is 1")]
    RplMismatch,
    #[error("base must be the selector shifted left 4 bits in virtual-8086 mode")]
    V86Base,
    #[error("base must be canonical")]
    BaseNotCanonical,
    #[error("base bits 63:32 must be 0")]
    BaseHighBits,
    #[error("limit must be 0000FFFFH in virtual-8086 mode")]
    V86Limit,
    #[error("access rights must be 000000F3H in virtual-8086 mode")]
    V86AccessRights,
    #[error(
        "access rights: type must be 9, 11, 13 or 15 (accessed code segment), or 3 (accessed read/write data) only with \"unrestricted guest\""
    )]
    CsType,
    #[error("access rights: type must be 3 or 7 (accessed read/write data segment)")]
    SsType,
    #[error("access rights: type must have the accessed bit (bit 0) set")]
    NotAccessed,
    #[error("access rights: a code segment must be readable (type bit 1)")]
    CodeNotReadable,
    #[error("access rights: S must be 1 (code or data segment)")]
    NotCodeOrData,
    #[error("access rights: S must be 0 (system segment)")]
    NotSystem,
    #[error("access rights: DPL must be 0 when the type is 3 (unrestricted guest data segment)")]
    CsDplNotZero,
    #[error(
        "access rights: DPL must equal SS.DPL for a non-conforming code segment (type 9 or 11)"
    )]
    CsDplNotSsDpl,
    #[error(
        "access rights: DPL must not exceed SS.DPL for a conforming code segment (type 13 or 15)"
    )]
    CsDplAboveSsDpl,
    #[error("access rights: DPL must equal the selector's RPL unless \"unrestricted guest\" is 1")]
    SsDplNotRpl,
    #[error("access rights: DPL must be 0 when CR0.PE = 0 or the CS type is 3")]
    SsDplNotZero,
    #[error(
        "access rights: DPL must not be less than RPL for a data or non-conforming code segment unless \"unrestricted guest\" is 1"
    )]
    DplBelowRpl,
    #[error("access rights: P must be 1 (segment present)")]
    NotPresent,
    #[error("access rights: bits 11:8 must be 0")]
    ReservedBits11To8,
    #[error("access rights: D/B must be 0 in 64-bit mode (\"IA-32e mode guest\" and CS.L = 1)")]
    LongModeCsWithDb,
    #[error(
        "access rights: G must be 0 if limit bits 11:0 are not all 1, and 1 if limit bits 31:20 are not all 0"
    )]
    Granularity,
    #[error("access rights: bits 31:17 must be 0")]
    ReservedBits31To17,
    #[error("TR must be usable and type 3 or 11 (busy TSS)")]
    TrType,
    #[error("TR must be usable and type 11 (busy 64-bit TSS) with \"IA-32e mode guest\"")]
    TrTypeLongMode,
    #[error("TR must be usable")]
    TrUnusable,
    #[error("access rights: LDTR type must be 2 (LDT) when usable")]
    LdtrType,
}
