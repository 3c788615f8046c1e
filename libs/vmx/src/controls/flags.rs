//! The VMX control fields as bitflags, each control named as in the SDM (Vol. 3C, "VM-Execution
//! Control Fields", "VM-Exit Control Fields", "VM-Entry Control Fields").
//!
//! Bits the SDM leaves reserved have no flag; their value comes from the capability MSRs
//! ("default1" bits are forced on by [`super::adjust`]).

use bitflags::bitflags;

/// A group of VMX controls: one 32-bit control field and its capability MSR.
pub trait ControlGroup: bitflags::Flags<Bits = u32> + Copy {
    /// The group's name as the SDM spells it, e.g. "secondary processor-based".
    const GROUP: &'static str;
    /// The SDM name of the control at `bit` ("reserved" for reserved bits).
    fn control_name(bit: u32) -> &'static str;
}

bitflags! {
    /// Pin-based VM-execution controls (SDM table "Definitions of Pin-Based VM-Execution Controls").
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct PinBasedControls: u32 {
        const EXTERNAL_INTERRUPT_EXITING = 1 << 0;
        const NMI_EXITING = 1 << 3;
        const VIRTUAL_NMIS = 1 << 5;
        const PREEMPTION_TIMER = 1 << 6;
        const POSTED_INTERRUPTS = 1 << 7;
    }
}

impl ControlGroup for PinBasedControls {
    const GROUP: &'static str = "pin-based";
    fn control_name(bit: u32) -> &'static str {
        match bit {
            0 => "external-interrupt exiting",
            3 => "NMI exiting",
            5 => "virtual NMIs",
            6 => "activate VMX-preemption timer",
            7 => "process posted interrupts",
            _ => "reserved",
        }
    }
}

bitflags! {
    /// Primary processor-based VM-execution controls (SDM table "Definitions of Primary
    /// Processor-Based VM-Execution Controls").
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct PrimaryControls: u32 {
        const INTERRUPT_WINDOW_EXITING = 1 << 2;
        const USE_TSC_OFFSETTING = 1 << 3;
        const HLT_EXITING = 1 << 7;
        const INVLPG_EXITING = 1 << 9;
        const MWAIT_EXITING = 1 << 10;
        const RDPMC_EXITING = 1 << 11;
        const RDTSC_EXITING = 1 << 12;
        const CR3_LOAD_EXITING = 1 << 15;
        const CR3_STORE_EXITING = 1 << 16;
        const ACTIVATE_TERTIARY_CONTROLS = 1 << 17;
        const CR8_LOAD_EXITING = 1 << 19;
        const CR8_STORE_EXITING = 1 << 20;
        const USE_TPR_SHADOW = 1 << 21;
        const NMI_WINDOW_EXITING = 1 << 22;
        const MOV_DR_EXITING = 1 << 23;
        const UNCONDITIONAL_IO_EXITING = 1 << 24;
        const USE_IO_BITMAPS = 1 << 25;
        const MONITOR_TRAP_FLAG = 1 << 27;
        const USE_MSR_BITMAPS = 1 << 28;
        const MONITOR_EXITING = 1 << 29;
        const PAUSE_EXITING = 1 << 30;
        const ACTIVATE_SECONDARY_CONTROLS = 1 << 31;
    }
}

impl ControlGroup for PrimaryControls {
    const GROUP: &'static str = "primary processor-based";
    fn control_name(bit: u32) -> &'static str {
        match bit {
            2 => "interrupt-window exiting",
            3 => "use TSC offsetting",
            7 => "HLT exiting",
            9 => "INVLPG exiting",
            10 => "MWAIT exiting",
            11 => "RDPMC exiting",
            12 => "RDTSC exiting",
            15 => "CR3-load exiting",
            16 => "CR3-store exiting",
            17 => "activate tertiary controls",
            19 => "CR8-load exiting",
            20 => "CR8-store exiting",
            21 => "use TPR shadow",
            22 => "NMI-window exiting",
            23 => "MOV-DR exiting",
            24 => "unconditional I/O exiting",
            25 => "use I/O bitmaps",
            27 => "monitor trap flag",
            28 => "use MSR bitmaps",
            29 => "MONITOR exiting",
            30 => "PAUSE exiting",
            31 => "activate secondary controls",
            _ => "reserved",
        }
    }
}

bitflags! {
    /// Secondary processor-based VM-execution controls (SDM table "Definitions of Secondary
    /// Processor-Based VM-Execution Controls"). In effect only with "activate secondary controls".
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct SecondaryControls: u32 {
        const VIRTUALIZE_APIC_ACCESSES = 1 << 0;
        const ENABLE_EPT = 1 << 1;
        const DESCRIPTOR_TABLE_EXITING = 1 << 2;
        const ENABLE_RDTSCP = 1 << 3;
        const VIRTUALIZE_X2APIC_MODE = 1 << 4;
        const ENABLE_VPID = 1 << 5;
        const WBINVD_EXITING = 1 << 6;
        const UNRESTRICTED_GUEST = 1 << 7;
        const APIC_REGISTER_VIRTUALIZATION = 1 << 8;
        const VIRTUAL_INTERRUPT_DELIVERY = 1 << 9;
        const PAUSE_LOOP_EXITING = 1 << 10;
        const RDRAND_EXITING = 1 << 11;
        const ENABLE_INVPCID = 1 << 12;
        const ENABLE_VM_FUNCTIONS = 1 << 13;
        const VMCS_SHADOWING = 1 << 14;
        const ENABLE_ENCLS_EXITING = 1 << 15;
        const RDSEED_EXITING = 1 << 16;
        const ENABLE_PML = 1 << 17;
        const EPT_VIOLATION_VE = 1 << 18;
        const CONCEAL_VMX_FROM_PT = 1 << 19;
        const ENABLE_XSAVES_XRSTORS = 1 << 20;
        const PASID_TRANSLATION = 1 << 21;
        const MODE_BASED_EPT_EXECUTE = 1 << 22;
        const SUB_PAGE_WRITE_PERMISSIONS = 1 << 23;
        const PT_USES_GUEST_PHYSICAL = 1 << 24;
        const USE_TSC_SCALING = 1 << 25;
        const ENABLE_USER_WAIT_PAUSE = 1 << 26;
        const ENABLE_PCONFIG = 1 << 27;
        const ENABLE_ENCLV_EXITING = 1 << 28;
        const VMM_BUS_LOCK_DETECTION = 1 << 30;
        const INSTRUCTION_TIMEOUT = 1 << 31;
    }
}

impl ControlGroup for SecondaryControls {
    const GROUP: &'static str = "secondary processor-based";
    fn control_name(bit: u32) -> &'static str {
        match bit {
            0 => "virtualize APIC accesses",
            1 => "enable EPT",
            2 => "descriptor-table exiting",
            3 => "enable RDTSCP",
            4 => "virtualize x2APIC mode",
            5 => "enable VPID",
            6 => "WBINVD exiting",
            7 => "unrestricted guest",
            8 => "APIC-register virtualization",
            9 => "virtual-interrupt delivery",
            10 => "PAUSE-loop exiting",
            11 => "RDRAND exiting",
            12 => "enable INVPCID",
            13 => "enable VM functions",
            14 => "VMCS shadowing",
            15 => "enable ENCLS exiting",
            16 => "RDSEED exiting",
            17 => "enable PML",
            18 => "EPT-violation #VE",
            19 => "conceal VMX from PT",
            20 => "enable XSAVES/XRSTORS",
            21 => "PASID translation",
            22 => "mode-based execute control for EPT",
            23 => "sub-page write permissions for EPT",
            24 => "Intel PT uses guest physical addresses",
            25 => "use TSC scaling",
            26 => "enable user wait and pause",
            27 => "enable PCONFIG",
            28 => "enable ENCLV exiting",
            30 => "VMM bus-lock detection",
            31 => "instruction timeout",
            _ => "reserved",
        }
    }
}

bitflags! {
    /// Primary VM-exit controls (SDM table "Definitions of Primary VM-Exit Controls").
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct ExitControls: u32 {
        const SAVE_DEBUG_CONTROLS = 1 << 2;
        /// 1 = the host runs in 64-bit mode after the exit (always, for Conduit).
        const HOST_ADDRESS_SPACE_SIZE = 1 << 9;
        const LOAD_PERF_GLOBAL_CTRL = 1 << 12;
        const ACKNOWLEDGE_INTERRUPT_ON_EXIT = 1 << 15;
        const SAVE_PAT = 1 << 18;
        const LOAD_PAT = 1 << 19;
        const SAVE_EFER = 1 << 20;
        const LOAD_EFER = 1 << 21;
        const SAVE_PREEMPTION_TIMER = 1 << 22;
        const CLEAR_BNDCFGS = 1 << 23;
        const CONCEAL_VMX_FROM_PT = 1 << 24;
        const CLEAR_RTIT_CTL = 1 << 25;
        const CLEAR_LBR_CTL = 1 << 26;
        const CLEAR_UINV = 1 << 27;
        const LOAD_CET_STATE = 1 << 28;
        const LOAD_PKRS = 1 << 29;
        const SAVE_PERF_GLOBAL_CTRL = 1 << 30;
        const ACTIVATE_SECONDARY_CONTROLS = 1 << 31;
    }
}

impl ControlGroup for ExitControls {
    const GROUP: &'static str = "VM-exit";
    fn control_name(bit: u32) -> &'static str {
        match bit {
            2 => "save debug controls",
            9 => "host address-space size",
            12 => "load IA32_PERF_GLOBAL_CTRL",
            15 => "acknowledge interrupt on exit",
            18 => "save IA32_PAT",
            19 => "load IA32_PAT",
            20 => "save IA32_EFER",
            21 => "load IA32_EFER",
            22 => "save VMX-preemption timer value",
            23 => "clear IA32_BNDCFGS",
            24 => "conceal VMX from PT",
            25 => "clear IA32_RTIT_CTL",
            26 => "clear IA32_LBR_CTL",
            27 => "clear UINV",
            28 => "load CET state",
            29 => "load PKRS",
            30 => "save IA32_PERF_GLOBAL_CTRL",
            31 => "activate secondary controls",
            _ => "reserved",
        }
    }
}

bitflags! {
    /// VM-entry controls (SDM table "Definitions of VM-Entry Controls").
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct EntryControls: u32 {
        const LOAD_DEBUG_CONTROLS = 1 << 2;
        const IA32E_MODE_GUEST = 1 << 9;
        const ENTRY_TO_SMM = 1 << 10;
        const DEACTIVATE_DUAL_MONITOR = 1 << 11;
        const LOAD_PERF_GLOBAL_CTRL = 1 << 13;
        const LOAD_PAT = 1 << 14;
        const LOAD_EFER = 1 << 15;
        const LOAD_BNDCFGS = 1 << 16;
        const CONCEAL_VMX_FROM_PT = 1 << 17;
        const LOAD_RTIT_CTL = 1 << 18;
        const LOAD_UINV = 1 << 19;
        const LOAD_CET_STATE = 1 << 20;
        const LOAD_LBR_CTL = 1 << 21;
        const LOAD_PKRS = 1 << 22;
    }
}

impl ControlGroup for EntryControls {
    const GROUP: &'static str = "VM-entry";
    fn control_name(bit: u32) -> &'static str {
        match bit {
            2 => "load debug controls",
            9 => "IA-32e mode guest",
            10 => "entry to SMM",
            11 => "deactivate dual-monitor treatment",
            13 => "load IA32_PERF_GLOBAL_CTRL",
            14 => "load IA32_PAT",
            15 => "load IA32_EFER",
            16 => "load IA32_BNDCFGS",
            17 => "conceal VMX from PT",
            18 => "load IA32_RTIT_CTL",
            19 => "load UINV",
            20 => "load CET state",
            21 => "load guest IA32_LBR_CTL",
            22 => "load PKRS",
            _ => "reserved",
        }
    }
}
