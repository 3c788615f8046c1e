//! The guest's MSRs (SDM Vol. 4, "Model-Specific Registers (MSRs)", Table 2-2 "IA-32
//! Architectural MSRs"): which the guest owns, which the VMCS holds, which the vLAPIC answers,
//! which this module emulates, and #GP for everything else.

use crate::bits::{L7_EDX_ARCH_CAPABILITIES, L7_EDX_IBRS_IBPB, L7_EDX_SSBD, L7_EDX_STIBP};

pub const IA32_TSC: u32 = 0x10;
pub const IA32_TSC_ADJUST: u32 = 0x3b;
pub const IA32_APIC_BASE: u32 = 0x1b;
pub const IA32_FEATURE_CONTROL: u32 = 0x3a;
pub const IA32_SPEC_CTRL: u32 = 0x48;
pub const IA32_PRED_CMD: u32 = 0x49;
pub const IA32_BIOS_SIGN_ID: u32 = 0x8b;
pub const IA32_MTRRCAP: u32 = 0xfe;
pub const IA32_ARCH_CAPABILITIES: u32 = 0x10a;
pub const IA32_SYSENTER_CS: u32 = 0x174;
pub const IA32_SYSENTER_ESP: u32 = 0x175;
pub const IA32_SYSENTER_EIP: u32 = 0x176;
pub const IA32_MISC_ENABLE: u32 = 0x1a0;
pub const IA32_DEBUGCTL: u32 = 0x1d9;
/// IA32_MTRR_PHYSBASE0; PHYSBASEn is 0x200 + 2n, PHYSMASKn 0x201 + 2n.
pub const IA32_MTRR_PHYSBASE0: u32 = 0x200;
pub const IA32_PAT: u32 = 0x277;
pub const IA32_MTRR_DEF_TYPE: u32 = 0x2ff;
pub const IA32_TSC_DEADLINE: u32 = 0x6e0;
/// The x2APIC registers, 0x800-0x8FF (SDM Vol. 3A §11.12.1.2).
pub const X2APIC_FIRST: u32 = 0x800;
pub const X2APIC_LAST: u32 = 0x8ff;
pub const IA32_EFER: u32 = 0xc000_0080;
pub const IA32_STAR: u32 = 0xc000_0081;
pub const IA32_LSTAR: u32 = 0xc000_0082;
pub const IA32_CSTAR: u32 = 0xc000_0083;
pub const IA32_FMASK: u32 = 0xc000_0084;
pub const IA32_FS_BASE: u32 = 0xc000_0100;
pub const IA32_GS_BASE: u32 = 0xc000_0101;
pub const IA32_KERNEL_GS_BASE: u32 = 0xc000_0102;
pub const IA32_TSC_AUX: u32 = 0xc000_0103;

/// Variable-range MTRR pairs the guest sees (MTRRcap VCNT).
pub const MTRR_VARIABLE_RANGES: u32 = 8;
/// IA32_MTRRCAP: VCNT = [`MTRR_VARIABLE_RANGES`]; no fixed ranges (bit 8), no write-combining
/// type (bit 10), no SMRR (bit 11). With MTRRdefType enabled and write-back and no range
/// enabled, every guest-physical address is WB, as the EPT maps RAM.
pub const MTRRCAP: u64 = MTRR_VARIABLE_RANGES as u64;
/// IA32_MTRR_DEF_TYPE at reset: MTRRs enabled (bit 11), fixed ranges off (bit 10), default
/// type WB (6).
pub const MTRR_DEF_TYPE_RESET: u64 = (1 << 11) | MEMTYPE_WB;
const MEMTYPE_WB: u64 = 6;
/// IA32_MISC_ENABLE as the guest reads it: fast strings (bit 0), branch trace storage
/// unavailable (bit 11) and PEBS unavailable (bit 12), as the hidden DS feature implies.
/// Clear: performance monitoring (7), EIST (16), MONITOR/MWAIT (18), limit CPUID maxval (22),
/// xTPR disable (23), XD disable (34); automatic thermal control (3) as TM is hidden.
pub const MISC_ENABLE: u64 = (1 << 0) | (1 << 11) | (1 << 12);
/// IA32_MISC_ENABLE bits a write may change: fast strings only (the guest's choice is kept and
/// read back; the CPU's own setting is the host's).
const MISC_ENABLE_WRITABLE: u64 = 1 << 0;
/// IA32_FEATURE_CONTROL: locked (bit 0), VMX disabled inside and outside SMX.
pub const FEATURE_CONTROL: u64 = 1;
/// IA32_ARCH_CAPABILITIES bits passed from the host: statements that the CPU is not affected
/// by a vulnerability or how its predictors behave (RDCL_NO 0, IBRS_ALL 1, RSBA 2, SSB_NO 4,
/// MDS_NO 5, PSCHANGE_MC_NO 6, TAA_NO 8, SBDR_SSDP_NO 13, FBSDP_NO 14, PSDP_NO 15, FB_CLEAR
/// 17, RRSBA 19, BHI_NO 20, PBRSB_NO 24, GDS_NO 26, RFDS_NO 27). Not passed: bits that
/// announce further MSRs or nested-VMX behaviour (SKIP_L1DFL_VMENTRY 3, TSX_CTRL 7,
/// MISC_PACKAGE_CTRLS 10-11, DOITM 12, FB_CLEAR_CTRL 18, OVERCLOCKING_STATUS 23).
pub const ARCH_CAPABILITIES_KEEP: u64 = (1 << 0)
    | (1 << 1)
    | (1 << 2)
    | (1 << 4)
    | (1 << 5)
    | (1 << 6)
    | (1 << 8)
    | (1 << 13)
    | (1 << 14)
    | (1 << 15)
    | (1 << 17)
    | (1 << 19)
    | (1 << 20)
    | (1 << 24)
    | (1 << 26)
    | (1 << 27);

/// An MSR access that raises #GP(0) in the guest (SDM Vol. 2B RDMSR/WRMSR: an unimplemented
/// MSR, a reserved bit, a read-only MSR written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gp;

/// An MSR that a VMCS guest-state field holds (SDM Vol. 3C §25.4.1): loaded on VM entry, saved
/// on VM exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmcsMsr {
    Pat,
    Efer,
    Debugctl,
    SysenterCs,
    SysenterEsp,
    SysenterEip,
    FsBase,
    GsBase,
}

/// An MSR whose value this module holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmulatedMsr {
    MtrrCap,
    MtrrDefType,
    /// IA32_MTRR_PHYSBASEn (`mask` false) or PHYSMASKn (`mask` true).
    MtrrVariable {
        index: u8,
        mask: bool,
    },
    MiscEnable,
    FeatureControl,
    BiosSignId,
    ArchCapabilities,
    /// Write-only: a write of IBPB (bit 0) is a barrier.
    PredCmd,
    /// IA32_TSC_ADJUST (SDM Vol. 3B §18.17.3): what WRMSRs to the TSC and to itself added to
    /// the guest's TSC.
    TscAdjust,
}

/// Where an MSR lives for a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsrClass {
    /// The guest owns it: the kernel loads the guest's value before VM entry and the host's
    /// after VM exit (VM-entry MSR-load and VM-exit MSR-store/load areas, SDM Vol. 3C §25.7.2,
    /// §25.8.2), and may leave it out of the MSR bitmap.
    PassThrough,
    /// A VMCS guest-state field holds it.
    Vmcs(VmcsMsr),
    /// The virtual local APIC answers (IA32_APIC_BASE, IA32_TSC_DEADLINE, the x2APIC range).
    Apic,
    /// The TSC: reads are RDTSC's value (host TSC + VMCS TSC offset); writes set the offset.
    Tsc,
    /// [`MsrState`] holds it.
    Emulated(EmulatedMsr),
    /// #GP(0) on any access.
    Gp,
}

/// What the host's CPU offers that the MSR policy depends on, beyond the guest's CPUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HostMsrs {
    /// The host's IA32_ARCH_CAPABILITIES (0 if it has none).
    pub arch_capabilities: u64,
    /// The microcode revision the guest reads in IA32_BIOS_SIGN_ID bits 63:32.
    pub microcode_revision: u32,
    /// Linear-address width (CPUID.80000008H:EAX 15:8) for canonical checks.
    pub linear_bits: u8,
    /// Physical-address width (CPUID.80000008H:EAX 7:0) for the MTRR reserved bits.
    pub physical_bits: u8,
}

/// Which MSRs a guest has: follows the guest's CPUID, so that CPUID and MSRs agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsrPolicy {
    host: HostMsrs,
    /// IA32_SPEC_CTRL bits the guest may set (0: no such MSR).
    spec_ctrl: u64,
    pred_cmd: bool,
    arch_capabilities: bool,
    tsc_aux: bool,
}

impl MsrPolicy {
    /// The policy for a guest whose CPUID leaf 7 EDX is `leaf7_edx` and who sees RDTSCP or RDPID
    /// when `tsc_aux` (both from [`crate::GuestCpuid`]).
    pub fn new(leaf7_edx: u32, tsc_aux: bool, host: HostMsrs) -> Self {
        let bit = |f: u32, v: u64| if leaf7_edx & f != 0 { v } else { 0 };
        Self {
            host,
            spec_ctrl: bit(L7_EDX_IBRS_IBPB, 1) | bit(L7_EDX_STIBP, 2) | bit(L7_EDX_SSBD, 4),
            pred_cmd: leaf7_edx & L7_EDX_IBRS_IBPB != 0,
            arch_capabilities: leaf7_edx & L7_EDX_ARCH_CAPABILITIES != 0,
            tsc_aux,
        }
    }

    /// Where `msr` lives.
    pub fn classify(&self, msr: u32) -> MsrClass {
        use EmulatedMsr as E;
        match msr {
            IA32_STAR | IA32_LSTAR | IA32_CSTAR | IA32_FMASK | IA32_KERNEL_GS_BASE => {
                MsrClass::PassThrough
            }
            IA32_TSC_AUX if self.tsc_aux => MsrClass::PassThrough,
            IA32_SPEC_CTRL if self.spec_ctrl != 0 => MsrClass::PassThrough,
            IA32_PAT => MsrClass::Vmcs(VmcsMsr::Pat),
            IA32_EFER => MsrClass::Vmcs(VmcsMsr::Efer),
            IA32_DEBUGCTL => MsrClass::Vmcs(VmcsMsr::Debugctl),
            IA32_SYSENTER_CS => MsrClass::Vmcs(VmcsMsr::SysenterCs),
            IA32_SYSENTER_ESP => MsrClass::Vmcs(VmcsMsr::SysenterEsp),
            IA32_SYSENTER_EIP => MsrClass::Vmcs(VmcsMsr::SysenterEip),
            IA32_FS_BASE => MsrClass::Vmcs(VmcsMsr::FsBase),
            IA32_GS_BASE => MsrClass::Vmcs(VmcsMsr::GsBase),
            IA32_APIC_BASE | IA32_TSC_DEADLINE | X2APIC_FIRST..=X2APIC_LAST => MsrClass::Apic,
            IA32_TSC => MsrClass::Tsc,
            IA32_TSC_ADJUST => MsrClass::Emulated(E::TscAdjust),
            IA32_MTRRCAP => MsrClass::Emulated(E::MtrrCap),
            IA32_MTRR_DEF_TYPE => MsrClass::Emulated(E::MtrrDefType),
            m if (IA32_MTRR_PHYSBASE0..IA32_MTRR_PHYSBASE0 + 2 * MTRR_VARIABLE_RANGES)
                .contains(&m) =>
            {
                let n = m - IA32_MTRR_PHYSBASE0;
                MsrClass::Emulated(E::MtrrVariable {
                    index: (n / 2) as u8,
                    mask: n % 2 == 1,
                })
            }
            IA32_MISC_ENABLE => MsrClass::Emulated(E::MiscEnable),
            IA32_FEATURE_CONTROL => MsrClass::Emulated(E::FeatureControl),
            IA32_BIOS_SIGN_ID => MsrClass::Emulated(E::BiosSignId),
            IA32_ARCH_CAPABILITIES if self.arch_capabilities => {
                MsrClass::Emulated(E::ArchCapabilities)
            }
            IA32_PRED_CMD if self.pred_cmd => MsrClass::Emulated(E::PredCmd),
            _ => MsrClass::Gp,
        }
    }

    /// Whether `v` is canonical for the host's linear-address width (SDM Vol. 3A §3.3.7.1).
    fn canonical(&self, v: u64) -> bool {
        let bits = u32::from(self.host.linear_bits.clamp(32, 64));
        let shift = 64 - bits;
        (((v << shift) as i64) >> shift) as u64 == v
    }

    /// Bits above the physical-address width, reserved in MTRR base and mask registers.
    fn above_physical(&self) -> u64 {
        let bits = u32::from(self.host.physical_bits.clamp(36, 52));
        !((1u64 << bits) - 1)
    }
}

/// Where the value of an MSR read comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// This value.
    Value(u64),
    /// The guest's copy of a switched MSR ([`MsrClass::PassThrough`]).
    Switched(u32),
    /// A VMCS guest-state field.
    Vmcs(VmcsMsr),
    /// The vLAPIC's register.
    Apic(u32),
    /// The guest's TSC: host TSC + TSC offset.
    Tsc,
}

/// What the kernel does for an accepted MSR write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteEffect {
    /// Nothing more: [`MsrState`] stored it, or it is ignored as the MSR specifies.
    Done,
    /// Store the value as the guest's copy of a switched MSR.
    Switched(u32, u64),
    /// Write the value to a VMCS guest-state field.
    Vmcs(VmcsMsr, u64),
    /// Hand the write to the vLAPIC, which checks it.
    Apic(u32, u64),
    /// Set the TSC offset so that the guest's TSC reads this value now, and tell
    /// [`MsrState::tsc_written`] how much that moved it.
    Tsc(u64),
    /// Add this (two's complement) to the TSC offset: a write to IA32_TSC_ADJUST.
    TscDelta(u64),
    /// Execute an indirect branch prediction barrier (WRMSR IA32_PRED_CMD = 1) before the guest
    /// runs again.
    Ibpb,
}

/// One vCPU's MSRs that this module emulates, with the validity checks of every MSR the policy
/// lets the guest write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsrState {
    policy: MsrPolicy,
    mtrr_def_type: u64,
    /// PHYSBASEn, PHYSMASKn.
    mtrr_variable: [[u64; 2]; MTRR_VARIABLE_RANGES as usize],
    misc_enable: u64,
    tsc_adjust: u64,
}

/// A memory type valid in an MTRR (SDM Vol. 3A §12.11.2: UC, WC, WT, WP, WB); WC only if
/// MTRRcap says so, which it does not.
fn mtrr_type_valid(t: u64) -> bool {
    matches!(t, 0 | 4 | 5 | 6)
}

/// A memory type valid in a PAT entry (SDM Vol. 3A §12.12.2: UC, WC, WT, WP, WB, UC-).
fn pat_valid(v: u64) -> bool {
    v.to_le_bytes().iter().all(|&b| matches!(b, 0 | 1 | 4..=7))
}

/// EFER bits a guest may set: SCE (0), LME (8), LMA (10), NXE (11) (SDM Vol. 3A §2.2.1).
const EFER_VALID: u64 = (1 << 0) | (1 << 8) | (1 << 10) | (1 << 11);
/// DEBUGCTL bits a guest may set: BTF (1), single-step on branches; LBR, BTS and the
/// performance-monitoring freezes need features the guest does not have.
const DEBUGCTL_VALID: u64 = 1 << 1;
/// MTRRdefType: type (7:0), FE (10), E (11); FE must stay 0 without fixed ranges.
const MTRR_DEF_TYPE_VALID: u64 = 0xff | (1 << 11);
/// PHYSMASKn: valid (11), mask (MAXPHYADDR-1:12).
const MTRR_MASK_VALID_BIT: u64 = 1 << 11;

impl MsrState {
    /// The MSRs of a vCPU at reset.
    pub fn new(policy: MsrPolicy) -> Self {
        Self {
            policy,
            mtrr_def_type: MTRR_DEF_TYPE_RESET,
            mtrr_variable: [[0; 2]; MTRR_VARIABLE_RANGES as usize],
            misc_enable: MISC_ENABLE,
            tsc_adjust: 0,
        }
    }

    /// A WRMSR to IA32_TSC moved the guest's TSC by `delta` (two's complement): IA32_TSC_ADJUST
    /// moves with it (SDM Vol. 3B §18.17.3).
    pub fn tsc_written(&mut self, delta: u64) {
        self.tsc_adjust = self.tsc_adjust.wrapping_add(delta);
    }

    /// The policy this state follows.
    pub fn policy(&self) -> &MsrPolicy {
        &self.policy
    }

    /// RDMSR `msr`.
    pub fn read(&self, msr: u32) -> Result<Read, Gp> {
        use EmulatedMsr as E;
        Ok(match self.policy.classify(msr) {
            MsrClass::PassThrough => Read::Switched(msr),
            MsrClass::Vmcs(f) => Read::Vmcs(f),
            MsrClass::Apic => Read::Apic(msr),
            MsrClass::Tsc => Read::Tsc,
            MsrClass::Gp | MsrClass::Emulated(E::PredCmd) => return Err(Gp),
            MsrClass::Emulated(e) => Read::Value(match e {
                E::MtrrCap => MTRRCAP,
                E::MtrrDefType => self.mtrr_def_type,
                E::MtrrVariable { index, mask } => {
                    self.mtrr_variable[usize::from(index)][usize::from(mask)]
                }
                E::MiscEnable => self.misc_enable,
                E::FeatureControl => FEATURE_CONTROL,
                E::BiosSignId => u64::from(self.policy.host.microcode_revision) << 32,
                E::ArchCapabilities => self.policy.host.arch_capabilities & ARCH_CAPABILITIES_KEEP,
                E::PredCmd => return Err(Gp),
                E::TscAdjust => self.tsc_adjust,
            }),
        })
    }

    /// WRMSR `msr` with `v`: #GP for reserved bits, invalid values and read-only MSRs.
    pub fn write(&mut self, msr: u32, v: u64) -> Result<WriteEffect, Gp> {
        let p = self.policy;
        let ok = |valid: bool| if valid { Ok(()) } else { Err(Gp) };
        match p.classify(msr) {
            MsrClass::Gp => Err(Gp),
            MsrClass::Apic => Ok(WriteEffect::Apic(msr, v)),
            MsrClass::Tsc => Ok(WriteEffect::Tsc(v)),
            MsrClass::PassThrough => {
                match msr {
                    IA32_LSTAR | IA32_CSTAR | IA32_KERNEL_GS_BASE => ok(p.canonical(v))?,
                    IA32_TSC_AUX => ok(v >> 32 == 0)?,
                    IA32_SPEC_CTRL => ok(v & !p.spec_ctrl == 0)?,
                    // STAR holds selectors only; FMASK's upper half is ignored.
                    _ => {}
                }
                Ok(WriteEffect::Switched(msr, v))
            }
            MsrClass::Vmcs(f) => {
                let valid = match f {
                    VmcsMsr::Pat => pat_valid(v),
                    VmcsMsr::Efer => v & !EFER_VALID == 0,
                    VmcsMsr::Debugctl => v & !DEBUGCTL_VALID == 0,
                    VmcsMsr::SysenterCs => true,
                    VmcsMsr::SysenterEsp
                    | VmcsMsr::SysenterEip
                    | VmcsMsr::FsBase
                    | VmcsMsr::GsBase => p.canonical(v),
                };
                ok(valid)?;
                Ok(WriteEffect::Vmcs(f, v))
            }
            MsrClass::Emulated(e) => self.write_emulated(e, v),
        }
    }

    fn write_emulated(&mut self, e: EmulatedMsr, v: u64) -> Result<WriteEffect, Gp> {
        use EmulatedMsr as E;
        let ok = |valid: bool| if valid { Ok(()) } else { Err(Gp) };
        match e {
            E::MtrrCap | E::FeatureControl | E::ArchCapabilities => return Err(Gp),
            E::MtrrDefType => {
                ok(v & !MTRR_DEF_TYPE_VALID == 0 && mtrr_type_valid(v & 0xff))?;
                self.mtrr_def_type = v;
            }
            E::MtrrVariable { index, mask } => {
                let reserved = self.policy.above_physical()
                    | if mask { MTRR_MASK_VALID_BIT - 1 } else { 0xf00 };
                ok(v & reserved == 0 && (mask || mtrr_type_valid(v & 0xff)))?;
                self.mtrr_variable[usize::from(index)][usize::from(mask)] = v;
            }
            E::MiscEnable => {
                ok((v ^ self.misc_enable) & !MISC_ENABLE_WRITABLE == 0)?;
                self.misc_enable = v;
            }
            // The write that precedes CPUID(1) to latch the revision: accepted, nothing to do.
            E::BiosSignId => {}
            E::PredCmd => {
                ok(v & !1 == 0)?;
                if v == 1 {
                    return Ok(WriteEffect::Ibpb);
                }
            }
            // Writing X more than the MSR held adds X to the TSC too.
            E::TscAdjust => {
                let delta = v.wrapping_sub(self.tsc_adjust);
                self.tsc_adjust = v;
                return Ok(WriteEffect::TscDelta(delta));
            }
        }
        Ok(WriteEffect::Done)
    }
}
