//! RDMSR/WRMSR: the only module that executes them.

/// Reads a model-specific register.
///
/// # Safety
/// The MSR must exist on this CPU (reading one that does not raises #GP).
pub unsafe fn read(msr: u32) -> u64 {
    // SAFETY: the caller guarantees the MSR exists.
    unsafe { x86_64::registers::model_specific::Msr::new(msr).read() }
}

/// Writes a model-specific register.
///
/// # Safety
/// The MSR must exist and the value must be valid for it; writing changes machine state that
/// the caller must own.
pub unsafe fn write(msr: u32, value: u64) {
    // SAFETY: guaranteed by the caller.
    unsafe { x86_64::registers::model_specific::Msr::new(msr).write(value) };
}

/// IA32_ARCH_CAPABILITIES (0x10A) if the CPU has it (CPUID.(EAX=7,ECX=0):EDX bit 29), else 0
/// (SDM Vol. 4 Table 2-2).
pub fn arch_capabilities() -> u64 {
    let leaf0 = core::arch::x86_64::__cpuid(0).eax;
    if leaf0 < 7 || core::arch::x86_64::__cpuid_count(7, 0).edx & (1 << 29) == 0 {
        return 0;
    }
    // SAFETY: CPUID enumerates the MSR.
    unsafe { read(0x10a) }
}

/// An indirect branch prediction barrier: IA32_PRED_CMD (0x49) := 1 where the CPU has it
/// (CPUID.(EAX=7,ECX=0):EDX bit 26); nothing otherwise.
pub fn ibpb() {
    let leaf0 = core::arch::x86_64::__cpuid(0).eax;
    if leaf0 < 7 || core::arch::x86_64::__cpuid_count(7, 0).edx & (1 << 26) == 0 {
        return;
    }
    // SAFETY: CPUID enumerates the MSR; the barrier changes no state the hypervisor relies on.
    unsafe { write(0x49, 1) };
}
