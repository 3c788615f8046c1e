//! VMX capability MSR values of CPUs Conduit runs on, for host tests (here and in other crates).
//!
//! To add a CPU: capture its MSRs (the kernel's VMX probe prints them), add a `pub const` and one
//! entry to [`KNOWN_CPUS`]; every table-driven test in this crate then covers it. Capture the
//! TRUE_* MSRs (0x48d-0x490) too: their allowed-0 halves differ from the plain ones.

use crate::caps::VmxMsrs;

/// One CPU model with its capability MSRs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamedCpu {
    pub name: &'static str,
    pub msrs: VmxMsrs,
    /// Where the values come from.
    pub provenance: &'static str,
}

/// Bochs 2.7, `cpu: model=tigerlake`.
///
/// Every value, the TRUE_* MSRs included, as the kernel's VMX probe printed it in a Bochs 2.7 boot
/// (`cpu: VMX MSRs:` lines); they agree with `docs/platforms.md` and with Bochs' cpu/vmx.h
/// (TRUE_PROCBASED allowed-0 0x04006172: CR3-load/store exiting may be 0; TRUE_EXIT 0x36dfb and
/// TRUE_ENTRY 0x11fb: "save/load debug controls" may be 0).
pub const BOCHS_TIGERLAKE: VmxMsrs = VmxMsrs {
    basic: 0x01d8_1000_0000_0004,
    pinbased: 0x0000_007f_0000_0016,
    procbased: 0xfff9_fffe_0401_e172,
    exit: 0x107f_ffff_0003_6dff,
    entry: 0x0010_ffff_0000_11ff,
    misc: 0x6004_01e0,
    cr0_fixed0: 0x8000_0021,
    cr0_fixed1: 0xffff_ffff,
    cr4_fixed0: 0x2000,
    cr4_fixed1: 0xf7_2fff,
    procbased2: 0x0297_7fff_0000_0000,
    ept_vpid_cap: 0xf01_06b3_4141,
    true_pinbased: 0x0000_007f_0000_0016,
    true_procbased: 0xfff9_fffe_0400_6172,
    true_exit: 0x107f_ffff_0003_6dfb,
    true_entry: 0x0010_ffff_0000_11fb,
};

/// Bochs 2.7, `cpu: model=corei7_skylake_x`, captured from a boot like [`BOCHS_TIGERLAKE`].
/// VMCS revision 0x2b.
pub const BOCHS_SKYLAKE_X: VmxMsrs = VmxMsrs {
    basic: 0x00d8_1000_0000_002b,
    pinbased: 0x0000_007f_0000_0016,
    procbased: 0xf7f9_fffe_0401_e172,
    exit: 0x007f_ffff_0003_6dff,
    entry: 0x0000_ffff_0000_11ff,
    misc: 0x6004_01e0,
    cr0_fixed0: 0x8000_0021,
    cr0_fixed1: 0xffff_ffff,
    cr4_fixed0: 0x2000,
    cr4_fixed1: 0x37_27ff,
    procbased2: 0x0217_7fff_0000_0000,
    ept_vpid_cap: 0xf01_0633_4141,
    true_pinbased: 0x0000_007f_0000_0016,
    true_procbased: 0xf7f9_fffe_0400_6172,
    true_exit: 0x007f_ffff_0003_6dfb,
    true_entry: 0x0000_ffff_0000_11fb,
};

/// Bochs 2.7, `cpu: model=corei7_icelake_u`, captured from a boot like [`BOCHS_TIGERLAKE`].
pub const BOCHS_ICELAKE_U: VmxMsrs = VmxMsrs {
    basic: 0x00d8_1000_0000_0004,
    pinbased: 0x0000_007f_0000_0016,
    procbased: 0xfff9_fffe_0401_e172,
    exit: 0x007f_ffff_0003_6dff,
    entry: 0x0000_ffff_0000_11ff,
    misc: 0x6004_01e0,
    cr0_fixed0: 0x8000_0021,
    cr0_fixed1: 0xffff_ffff,
    cr4_fixed0: 0x2000,
    cr4_fixed1: 0x77_2fff,
    procbased2: 0x0297_7fff_0000_0000,
    ept_vpid_cap: 0xf01_0633_4141,
    true_pinbased: 0x0000_007f_0000_0016,
    true_procbased: 0xfff9_fffe_0400_6172,
    true_exit: 0x007f_ffff_0003_6dfb,
    true_entry: 0x0000_ffff_0000_11fb,
};

/// Every CPU the table-driven tests run over.
pub const KNOWN_CPUS: &[NamedCpu] = &[
    NamedCpu {
        name: "bochs-tigerlake",
        msrs: BOCHS_TIGERLAKE,
        provenance: "Bochs 2.7 boot, kernel VMX probe",
    },
    NamedCpu {
        name: "bochs-corei7_skylake_x",
        msrs: BOCHS_SKYLAKE_X,
        provenance: "Bochs 2.7 boot, kernel VMX probe",
    },
    NamedCpu {
        name: "bochs-corei7_icelake_u",
        msrs: BOCHS_ICELAKE_U,
        provenance: "Bochs 2.7 boot, kernel VMX probe",
    },
];
