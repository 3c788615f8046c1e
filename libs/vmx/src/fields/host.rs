//! Host-state fields (read/write): SDM Vol. 3D, Appendix B, sections "16-Bit Host-State Fields",
//! "64-Bit Host-State Fields", "32-Bit Host-State Field" and "Natural-Width Host-State Fields".
//! Vol. 3C, "Host-State Area" says what each is loaded into on VM exit.

use super::{FieldType, W16, W32, W64, WNatural, vmcs_fields};

vmcs_fields! {
    /// 16-bit host-state fields (Appendix B.1.3). Selectors must have RPL = TI = 0; CS and TR
    /// must be non-zero (Vol. 3C, "Checks on Host Segment and Descriptor-Table Registers").
    pub enum Host16: W16, FieldType::HostState, rw {
        EsSelector = 0x0c00, "host ES selector";
        CsSelector = 0x0c02, "host CS selector";
        SsSelector = 0x0c04, "host SS selector";
        DsSelector = 0x0c06, "host DS selector";
        FsSelector = 0x0c08, "host FS selector";
        GsSelector = 0x0c0a, "host GS selector";
        TrSelector = 0x0c0c, "host TR selector";
    }
}

vmcs_fields! {
    /// 64-bit host-state fields (Appendix B.2.4), full access; `.high()` names bits 63:32.
    pub enum Host64: W64, FieldType::HostState, rw {
        /// Loaded on exit with "load IA32_PAT".
        Pat = 0x2c00, "host IA32_PAT";
        /// Loaded on exit with "load IA32_EFER".
        Efer = 0x2c02, "host IA32_EFER";
        PerfGlobalCtrl = 0x2c04, "host IA32_PERF_GLOBAL_CTRL";
        Pkrs = 0x2c06, "host IA32_PKRS";
    }
}

vmcs_fields! {
    /// 32-bit host-state field (Appendix B.3.4).
    pub enum Host32: W32, FieldType::HostState, rw {
        SysenterCs = 0x4c00, "host IA32_SYSENTER_CS";
    }
}

vmcs_fields! {
    /// Natural-width host-state fields (Appendix B.4.4).
    pub enum HostNatural: WNatural, FieldType::HostState, rw {
        Cr0 = 0x6c00, "host CR0";
        Cr3 = 0x6c02, "host CR3";
        Cr4 = 0x6c04, "host CR4";
        FsBase = 0x6c06, "host FS base";
        GsBase = 0x6c08, "host GS base";
        TrBase = 0x6c0a, "host TR base";
        GdtrBase = 0x6c0c, "host GDTR base";
        IdtrBase = 0x6c0e, "host IDTR base";
        SysenterEsp = 0x6c10, "host IA32_SYSENTER_ESP";
        SysenterEip = 0x6c12, "host IA32_SYSENTER_EIP";
        Rsp = 0x6c14, "host RSP";
        Rip = 0x6c16, "host RIP";
        SCet = 0x6c18, "host IA32_S_CET";
        Ssp = 0x6c1a, "host SSP";
        InterruptSspTableAddress = 0x6c1c, "host IA32_INTERRUPT_SSP_TABLE_ADDR";
    }
}
