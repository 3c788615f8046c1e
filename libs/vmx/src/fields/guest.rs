//! Guest-state fields (read/write): SDM Vol. 3D, Appendix B, sections "16-Bit Guest-State
//! Fields", "64-Bit Guest-State Fields", "32-Bit Guest-State Fields" and "Natural-Width
//! Guest-State Fields". The meaning of each field is in Vol. 3C, "Guest-State Area".

use super::{FieldType, W16, W32, W64, WNatural, vmcs_fields};

vmcs_fields! {
    /// 16-bit guest-state fields (Appendix B.1.2).
    pub enum Guest16: W16, FieldType::GuestState, rw {
        EsSelector = 0x0800, "guest ES selector";
        CsSelector = 0x0802, "guest CS selector";
        SsSelector = 0x0804, "guest SS selector";
        DsSelector = 0x0806, "guest DS selector";
        FsSelector = 0x0808, "guest FS selector";
        GsSelector = 0x080a, "guest GS selector";
        LdtrSelector = 0x080c, "guest LDTR selector";
        TrSelector = 0x080e, "guest TR selector";
        InterruptStatus = 0x0810, "guest interrupt status";
        PmlIndex = 0x0812, "PML index";
    }
}

vmcs_fields! {
    /// 64-bit guest-state fields (Appendix B.2.3), full access; `.high()` names bits 63:32.
    pub enum Guest64: W64, FieldType::GuestState, rw {
        /// All ones unless VMCS shadowing is used.
        VmcsLinkPointer = 0x2800, "VMCS link pointer";
        /// Loaded on entry with "load debug controls".
        Debugctl = 0x2802, "guest IA32_DEBUGCTL";
        /// Loaded on entry with "load IA32_PAT", saved on exit with "save IA32_PAT".
        Pat = 0x2804, "guest IA32_PAT";
        /// Loaded on entry with "load IA32_EFER", saved on exit with "save IA32_EFER".
        Efer = 0x2806, "guest IA32_EFER";
        PerfGlobalCtrl = 0x2808, "guest IA32_PERF_GLOBAL_CTRL";
        /// PAE paging with EPT: the four PDPTEs.
        Pdpte0 = 0x280a, "guest PDPTE0";
        Pdpte1 = 0x280c, "guest PDPTE1";
        Pdpte2 = 0x280e, "guest PDPTE2";
        Pdpte3 = 0x2810, "guest PDPTE3";
        Bndcfgs = 0x2812, "guest IA32_BNDCFGS";
        RtitCtl = 0x2814, "guest IA32_RTIT_CTL";
        LbrCtl = 0x2816, "guest IA32_LBR_CTL";
        Pkrs = 0x2818, "guest IA32_PKRS";
    }
}

vmcs_fields! {
    /// 32-bit guest-state fields (Appendix B.3.3).
    pub enum Guest32: W32, FieldType::GuestState, rw {
        EsLimit = 0x4800, "guest ES limit";
        CsLimit = 0x4802, "guest CS limit";
        SsLimit = 0x4804, "guest SS limit";
        DsLimit = 0x4806, "guest DS limit";
        FsLimit = 0x4808, "guest FS limit";
        GsLimit = 0x480a, "guest GS limit";
        LdtrLimit = 0x480c, "guest LDTR limit";
        TrLimit = 0x480e, "guest TR limit";
        GdtrLimit = 0x4810, "guest GDTR limit";
        IdtrLimit = 0x4812, "guest IDTR limit";
        /// Access rights: see [`crate::guest_state::AccessRights`].
        EsAccessRights = 0x4814, "guest ES access rights";
        CsAccessRights = 0x4816, "guest CS access rights";
        SsAccessRights = 0x4818, "guest SS access rights";
        DsAccessRights = 0x481a, "guest DS access rights";
        FsAccessRights = 0x481c, "guest FS access rights";
        GsAccessRights = 0x481e, "guest GS access rights";
        LdtrAccessRights = 0x4820, "guest LDTR access rights";
        TrAccessRights = 0x4822, "guest TR access rights";
        InterruptibilityState = 0x4824, "guest interruptibility state";
        ActivityState = 0x4826, "guest activity state";
        Smbase = 0x4828, "guest SMBASE";
        SysenterCs = 0x482a, "guest IA32_SYSENTER_CS";
        /// Needs "activate VMX-preemption timer".
        PreemptionTimerValue = 0x482e, "VMX-preemption timer value";
    }
}

vmcs_fields! {
    /// Natural-width guest-state fields (Appendix B.4.3).
    pub enum GuestNatural: WNatural, FieldType::GuestState, rw {
        Cr0 = 0x6800, "guest CR0";
        Cr3 = 0x6802, "guest CR3";
        Cr4 = 0x6804, "guest CR4";
        EsBase = 0x6806, "guest ES base";
        CsBase = 0x6808, "guest CS base";
        SsBase = 0x680a, "guest SS base";
        DsBase = 0x680c, "guest DS base";
        FsBase = 0x680e, "guest FS base";
        GsBase = 0x6810, "guest GS base";
        LdtrBase = 0x6812, "guest LDTR base";
        TrBase = 0x6814, "guest TR base";
        GdtrBase = 0x6816, "guest GDTR base";
        IdtrBase = 0x6818, "guest IDTR base";
        Dr7 = 0x681a, "guest DR7";
        Rsp = 0x681c, "guest RSP";
        Rip = 0x681e, "guest RIP";
        Rflags = 0x6820, "guest RFLAGS";
        PendingDebugExceptions = 0x6822, "guest pending debug exceptions";
        SysenterEsp = 0x6824, "guest IA32_SYSENTER_ESP";
        SysenterEip = 0x6826, "guest IA32_SYSENTER_EIP";
        SCet = 0x6828, "guest IA32_S_CET";
        Ssp = 0x682a, "guest SSP";
        InterruptSspTableAddress = 0x682c, "guest IA32_INTERRUPT_SSP_TABLE_ADDR";
    }
}
