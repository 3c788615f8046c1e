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
/// The plain capability MSRs, MISC, CR0/CR4 fixed, PROCBASED2 and EPT_VPID_CAP were read from a
/// Bochs boot (shared/platform-notes.md). The TRUE_* MSRs were not captured: their allowed-1
/// halves equal the plain ones and their allowed-0 halves are Bochs' constants (cpu/vmx.h:
/// TRUE_PINBASED 0x16, TRUE_PROCBASED 0x04006172 (CR3-load/store exiting may be 0),
/// TRUE_EXIT 0x36dfb and TRUE_ENTRY 0x11fb ("save/load debug controls" may be 0)).
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

/// Every CPU the table-driven tests run over.
pub const KNOWN_CPUS: &[NamedCpu] = &[NamedCpu {
    name: "bochs-tigerlake",
    msrs: BOCHS_TIGERLAKE,
    provenance: "Bochs 2.7 boot (platform-notes); TRUE_* allowed-0 from Bochs cpu/vmx.h",
}];
