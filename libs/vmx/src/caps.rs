//! VMX capability MSRs (Intel SDM Vol. 3D, Appendix A "VMX Capability Reporting Facility").

/// MSR addresses of the VMX capability MSRs (SDM Vol. 4, Table 2-2).
pub mod msr {
    pub const IA32_FEATURE_CONTROL: u32 = 0x3a;
    pub const IA32_VMX_BASIC: u32 = 0x480;
    pub const IA32_VMX_PINBASED_CTLS: u32 = 0x481;
    pub const IA32_VMX_PROCBASED_CTLS: u32 = 0x482;
    pub const IA32_VMX_EXIT_CTLS: u32 = 0x483;
    pub const IA32_VMX_ENTRY_CTLS: u32 = 0x484;
    pub const IA32_VMX_MISC: u32 = 0x485;
    pub const IA32_VMX_CR0_FIXED0: u32 = 0x486;
    pub const IA32_VMX_CR0_FIXED1: u32 = 0x487;
    pub const IA32_VMX_CR4_FIXED0: u32 = 0x488;
    pub const IA32_VMX_CR4_FIXED1: u32 = 0x489;
    pub const IA32_VMX_PROCBASED_CTLS2: u32 = 0x48b;
    pub const IA32_VMX_EPT_VPID_CAP: u32 = 0x48c;
    pub const IA32_VMX_TRUE_PINBASED_CTLS: u32 = 0x48d;
    pub const IA32_VMX_TRUE_PROCBASED_CTLS: u32 = 0x48e;
    pub const IA32_VMX_TRUE_EXIT_CTLS: u32 = 0x48f;
    pub const IA32_VMX_TRUE_ENTRY_CTLS: u32 = 0x490;
}

/// The raw values of the capability MSRs, read once at boot (or captured from a CPU for tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VmxMsrs {
    pub basic: u64,
    pub pinbased: u64,
    pub procbased: u64,
    pub exit: u64,
    pub entry: u64,
    pub misc: u64,
    pub cr0_fixed0: u64,
    pub cr0_fixed1: u64,
    pub cr4_fixed0: u64,
    pub cr4_fixed1: u64,
    /// 0 when the CPU does not support secondary controls (then the MSR must not be read).
    pub procbased2: u64,
    /// 0 when neither EPT nor VPID can be enabled (then the MSR must not be read).
    pub ept_vpid_cap: u64,
    /// The TRUE_* MSRs; equal to the plain ones when `basic` bit 55 is clear.
    pub true_pinbased: u64,
    pub true_procbased: u64,
    pub true_exit: u64,
    pub true_entry: u64,
}

/// Memory types used by VMX structures and EPT (SDM Vol. 3A, Table 12-2 / Vol. 3C 29.3.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryType {
    Uncacheable,
    WriteBack,
    Other(u8),
}

impl MemoryType {
    pub fn from_bits(v: u8) -> Self {
        match v {
            0 => Self::Uncacheable,
            6 => Self::WriteBack,
            o => Self::Other(o),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::Uncacheable => "UC",
            Self::WriteBack => "WB",
            Self::Other(_) => "other",
        }
    }
}

/// IA32_VMX_BASIC (SDM Vol. 3D, A.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmxBasic {
    /// VMCS revision identifier (bits 30:0).
    pub revision: u32,
    /// Bytes to allocate for VMXON and VMCS regions (bits 44:32).
    pub region_size: u32,
    /// Physical addresses of VMX regions limited to 32 bits (bit 48).
    pub addr_32bit: bool,
    /// Memory type for VMCS accesses (bits 53:50).
    pub memory_type: MemoryType,
    /// INS/OUTS instruction information reported on exits (bit 54).
    pub ins_outs_info: bool,
    /// The TRUE_* control MSRs exist (bit 55).
    pub true_controls: bool,
    /// Exceptions can be injected without error code checks (bit 56).
    pub any_error_code: bool,
}

impl VmxBasic {
    pub fn decode(v: u64) -> Self {
        Self {
            revision: (v & 0x7fff_ffff) as u32,
            region_size: ((v >> 32) & 0x1fff) as u32,
            addr_32bit: v & (1 << 48) != 0,
            memory_type: MemoryType::from_bits(((v >> 50) & 0xf) as u8),
            ins_outs_info: v & (1 << 54) != 0,
            true_controls: v & (1 << 55) != 0,
            any_error_code: v & (1 << 56) != 0,
        }
    }
}

/// IA32_VMX_MISC (SDM Vol. 3D, A.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmxMisc {
    /// The preemption timer counts down by 1 every 2^rate TSC ticks (bits 4:0).
    pub preemption_timer_rate: u8,
    /// VM exits store EFER.LMA into the "IA-32e mode guest" entry control (bit 5).
    pub stores_lma: bool,
    /// HLT, shutdown and wait-for-SIPI activity states (bits 6, 7, 8).
    pub activity_hlt: bool,
    pub activity_shutdown: bool,
    pub activity_wait_sipi: bool,
    /// Number of CR3-target values (bits 24:16).
    pub cr3_targets: u16,
    /// Recommended maximum number of MSRs in each MSR list: 512 * (N + 1) (bits 27:25).
    pub max_msr_list: u32,
    /// VMWRITE may write any field, including VM-exit information fields (bit 29).
    pub vmwrite_any_field: bool,
}

impl VmxMisc {
    pub fn decode(v: u64) -> Self {
        Self {
            preemption_timer_rate: (v & 0x1f) as u8,
            stores_lma: v & (1 << 5) != 0,
            activity_hlt: v & (1 << 6) != 0,
            activity_shutdown: v & (1 << 7) != 0,
            activity_wait_sipi: v & (1 << 8) != 0,
            cr3_targets: ((v >> 16) & 0x1ff) as u16,
            max_msr_list: 512 * ((((v >> 25) & 0x7) as u32) + 1),
            vmwrite_any_field: v & (1 << 29) != 0,
        }
    }
}

/// IA32_VMX_EPT_VPID_CAP (SDM Vol. 3D, A.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EptVpidCap {
    pub execute_only: bool,
    pub walk_4_level: bool,
    pub walk_5_level: bool,
    pub memtype_uc: bool,
    pub memtype_wb: bool,
    pub pages_2m: bool,
    pub pages_1g: bool,
    pub invept: bool,
    pub accessed_dirty: bool,
    pub invept_single_context: bool,
    pub invept_all_context: bool,
    pub invvpid: bool,
    pub invvpid_individual_address: bool,
    pub invvpid_single_context: bool,
    pub invvpid_all_context: bool,
    pub invvpid_single_context_retaining_globals: bool,
}

impl EptVpidCap {
    pub fn decode(v: u64) -> Self {
        let b = |n: u32| v & (1u64 << n) != 0;
        Self {
            execute_only: b(0),
            walk_4_level: b(6),
            walk_5_level: b(7),
            memtype_uc: b(8),
            memtype_wb: b(14),
            pages_2m: b(16),
            pages_1g: b(17),
            invept: b(20),
            accessed_dirty: b(21),
            invept_single_context: b(25),
            invept_all_context: b(26),
            invvpid: b(32),
            invvpid_individual_address: b(40),
            invvpid_single_context: b(41),
            invvpid_all_context: b(42),
            invvpid_single_context_retaining_globals: b(43),
        }
    }
}

/// Allowed settings of a control MSR (SDM Vol. 3D, A.3-A.5): bits 31:0 are the allowed 0-settings
/// (a 1 there means the control must be 1), bits 63:32 the allowed 1-settings (a 0 means it must be 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllowedBits {
    pub must_be_one: u32,
    pub may_be_one: u32,
}

impl AllowedBits {
    pub fn decode(v: u64) -> Self {
        Self {
            must_be_one: v as u32,
            may_be_one: (v >> 32) as u32,
        }
    }
    pub fn can_set(self, bit: u32) -> bool {
        self.may_be_one & (1 << bit) != 0
    }
}

/// Secondary processor-based controls of interest (SDM Vol. 3C, Table 26-7).
pub mod procbased2 {
    pub const ENABLE_EPT: u32 = 1;
    pub const ENABLE_VPID: u32 = 5;
    pub const UNRESTRICTED_GUEST: u32 = 7;
}
/// Pin-based controls of interest (SDM Vol. 3C, Table 26-5).
pub mod pinbased {
    pub const PREEMPTION_TIMER: u32 = 6;
}
/// Primary processor-based controls of interest (SDM Vol. 3C, Table 26-6).
pub mod procbased {
    pub const ACTIVATE_SECONDARY: u32 = 31;
}

/// What this CPU's VMX can do, decoded from its capability MSRs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmxCapabilities {
    pub basic: VmxBasic,
    pub misc: VmxMisc,
    pub secondary_controls: bool,
    pub ept: bool,
    pub vpid: bool,
    pub unrestricted_guest: bool,
    pub preemption_timer: bool,
    pub ept_vpid: EptVpidCap,
}

impl VmxCapabilities {
    pub fn decode(m: &VmxMsrs) -> Self {
        let basic = VmxBasic::decode(m.basic);
        let (pin, proc) = if basic.true_controls {
            (m.true_pinbased, m.true_procbased)
        } else {
            (m.pinbased, m.procbased)
        };
        let secondary_controls = AllowedBits::decode(proc).can_set(procbased::ACTIVATE_SECONDARY);
        let p2 = AllowedBits::decode(if secondary_controls { m.procbased2 } else { 0 });
        Self {
            basic,
            misc: VmxMisc::decode(m.misc),
            secondary_controls,
            ept: p2.can_set(procbased2::ENABLE_EPT),
            vpid: p2.can_set(procbased2::ENABLE_VPID),
            unrestricted_guest: p2.can_set(procbased2::UNRESTRICTED_GUEST),
            preemption_timer: AllowedBits::decode(pin).can_set(pinbased::PREEMPTION_TIMER),
            ept_vpid: EptVpidCap::decode(m.ept_vpid_cap),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bochs 2.7, `cpu: model=tigerlake` (values in `docs/platforms.md`).
    pub(crate) fn tigerlake() -> VmxMsrs {
        crate::fixtures::BOCHS_TIGERLAKE
    }

    #[test]
    fn basic_of_tigerlake() {
        let b = VmxBasic::decode(tigerlake().basic);
        assert_eq!(b.revision, 4);
        assert_eq!(b.region_size, 4096);
        assert_eq!(b.memory_type, MemoryType::WriteBack);
        assert!(b.true_controls && b.ins_outs_info && b.any_error_code && !b.addr_32bit);
    }

    #[test]
    fn misc_of_tigerlake() {
        let m = VmxMisc::decode(tigerlake().misc);
        assert_eq!(m.preemption_timer_rate, 0);
        assert!(m.stores_lma && m.activity_hlt && m.activity_shutdown && m.activity_wait_sipi);
        assert_eq!(m.cr3_targets, 4);
        assert_eq!(m.max_msr_list, 512);
        assert!(m.vmwrite_any_field);
    }

    #[test]
    fn ept_vpid_of_tigerlake() {
        let e = EptVpidCap::decode(tigerlake().ept_vpid_cap);
        assert!(e.execute_only && e.walk_4_level && !e.walk_5_level);
        assert!(e.memtype_uc && e.memtype_wb && e.pages_2m && e.pages_1g);
        assert!(e.invept && e.accessed_dirty && e.invept_single_context && e.invept_all_context);
        assert!(e.invvpid && e.invvpid_individual_address && e.invvpid_single_context);
        assert!(e.invvpid_all_context && e.invvpid_single_context_retaining_globals);
    }

    #[test]
    fn capabilities_of_tigerlake() {
        let c = VmxCapabilities::decode(&tigerlake());
        assert!(
            c.secondary_controls && c.ept && c.vpid && c.unrestricted_guest && c.preemption_timer
        );
    }

    #[test]
    fn no_secondary_controls_means_no_ept_even_if_the_msr_has_bits() {
        let mut m = tigerlake();
        m.true_procbased &= !(1u64 << (32 + procbased::ACTIVATE_SECONDARY));
        let c = VmxCapabilities::decode(&m);
        assert!(!c.secondary_controls && !c.ept && !c.vpid && !c.unrestricted_guest);
    }

    #[test]
    fn allowed_bits() {
        let a = AllowedBits::decode(tigerlake().pinbased);
        assert_eq!(a.must_be_one, 0x16);
        assert!(a.can_set(6) && !a.can_set(7));
    }
}
