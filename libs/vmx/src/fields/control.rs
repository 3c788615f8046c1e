//! Control fields (read/write): SDM Vol. 3D, Appendix B, sections "16-Bit Control Fields",
//! "64-Bit Control Fields", "32-Bit Control Fields" and "Natural-Width Control Fields".

use super::{FieldType, W16, W32, W64, WNatural, vmcs_fields};

vmcs_fields! {
    /// 16-bit control fields (Appendix B.1.1).
    pub enum Control16: W16, FieldType::Control, rw {
        /// Virtual-processor identifier (VPID); needs "enable VPID".
        VirtualProcessorId = 0x0000, "virtual-processor identifier (VPID)";
        PostedInterruptNotificationVector = 0x0002, "posted-interrupt notification vector";
        EptpIndex = 0x0004, "EPTP index";
    }
}

vmcs_fields! {
    /// 64-bit control fields (Appendix B.2.1), full access; `.high()` names bits 63:32.
    pub enum Control64: W64, FieldType::Control, rw {
        /// Physical address of I/O bitmap A (ports 0000H-7FFFH); needs "use I/O bitmaps".
        IoBitmapA = 0x2000, "address of I/O bitmap A";
        /// Physical address of I/O bitmap B (ports 8000H-FFFFH).
        IoBitmapB = 0x2002, "address of I/O bitmap B";
        /// Physical address of the 4-KByte MSR bitmaps; needs "use MSR bitmaps".
        MsrBitmap = 0x2004, "address of MSR bitmaps";
        ExitMsrStoreAddress = 0x2006, "VM-exit MSR-store address";
        ExitMsrLoadAddress = 0x2008, "VM-exit MSR-load address";
        EntryMsrLoadAddress = 0x200a, "VM-entry MSR-load address";
        ExecutiveVmcsPointer = 0x200c, "executive-VMCS pointer";
        PmlAddress = 0x200e, "PML address";
        TscOffset = 0x2010, "TSC offset";
        VirtualApicAddress = 0x2012, "virtual-APIC address";
        ApicAccessAddress = 0x2014, "APIC-access address";
        PostedInterruptDescriptorAddress = 0x2016, "posted-interrupt descriptor address";
        VmFunctionControls = 0x2018, "VM-function controls";
        /// EPT pointer (EPTP); needs "enable EPT".
        EptPointer = 0x201a, "EPT pointer (EPTP)";
        EoiExitBitmap0 = 0x201c, "EOI-exit bitmap 0";
        EoiExitBitmap1 = 0x201e, "EOI-exit bitmap 1";
        EoiExitBitmap2 = 0x2020, "EOI-exit bitmap 2";
        EoiExitBitmap3 = 0x2022, "EOI-exit bitmap 3";
        EptpListAddress = 0x2024, "EPTP-list address";
        VmreadBitmapAddress = 0x2026, "VMREAD-bitmap address";
        VmwriteBitmapAddress = 0x2028, "VMWRITE-bitmap address";
        VirtualizationExceptionInfoAddress = 0x202a, "virtualization-exception information address";
        XssExitingBitmap = 0x202c, "XSS-exiting bitmap";
        EnclsExitingBitmap = 0x202e, "ENCLS-exiting bitmap";
        SubPagePermissionTablePointer = 0x2030, "sub-page-permission-table pointer";
        TscMultiplier = 0x2032, "TSC multiplier";
        TertiaryProcessorControls = 0x2034, "tertiary processor-based VM-execution controls";
        EnclvExitingBitmap = 0x2036, "ENCLV-exiting bitmap";
    }
}

vmcs_fields! {
    /// 32-bit control fields (Appendix B.3.1).
    pub enum Control32: W32, FieldType::Control, rw {
        PinBasedControls = 0x4000, "pin-based VM-execution controls";
        PrimaryProcessorControls = 0x4002, "primary processor-based VM-execution controls";
        /// One bit per exception vector 0-31: 1 = the exception causes a VM exit.
        ExceptionBitmap = 0x4004, "exception bitmap";
        PageFaultErrorCodeMask = 0x4006, "page-fault error-code mask";
        PageFaultErrorCodeMatch = 0x4008, "page-fault error-code match";
        Cr3TargetCount = 0x400a, "CR3-target count";
        /// Primary VM-exit controls.
        ExitControls = 0x400c, "primary VM-exit controls";
        ExitMsrStoreCount = 0x400e, "VM-exit MSR-store count";
        ExitMsrLoadCount = 0x4010, "VM-exit MSR-load count";
        EntryControls = 0x4012, "VM-entry controls";
        EntryMsrLoadCount = 0x4014, "VM-entry MSR-load count";
        /// Event injection: same layout as [`crate::exit::InterruptionInfo`].
        EntryInterruptionInfo = 0x4016, "VM-entry interruption-information field";
        EntryExceptionErrorCode = 0x4018, "VM-entry exception error code";
        /// Instruction length for injected software interrupts/exceptions.
        EntryInstructionLength = 0x401a, "VM-entry instruction length";
        TprThreshold = 0x401c, "TPR threshold";
        SecondaryProcessorControls = 0x401e, "secondary processor-based VM-execution controls";
        PleGap = 0x4020, "PLE_Gap";
        PleWindow = 0x4022, "PLE_Window";
        InstructionTimeoutControl = 0x4024, "instruction-timeout control";
    }
}

vmcs_fields! {
    /// Natural-width control fields (Appendix B.4.1).
    pub enum ControlNatural: WNatural, FieldType::Control, rw {
        /// CR0 bits owned by the host: guest writes that change them exit.
        Cr0GuestHostMask = 0x6000, "CR0 guest/host mask";
        Cr4GuestHostMask = 0x6002, "CR4 guest/host mask";
        /// What the guest reads for the host-owned CR0 bits.
        Cr0ReadShadow = 0x6004, "CR0 read shadow";
        Cr4ReadShadow = 0x6006, "CR4 read shadow";
        Cr3Target0 = 0x6008, "CR3-target value 0";
        Cr3Target1 = 0x600a, "CR3-target value 1";
        Cr3Target2 = 0x600c, "CR3-target value 2";
        Cr3Target3 = 0x600e, "CR3-target value 3";
    }
}
