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
