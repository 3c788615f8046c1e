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
/// The MSR must exist on this CPU and `value` must be valid for it (else #GP), and the write
/// must not break an invariant the kernel relies on.
pub unsafe fn write(msr: u32, value: u64) {
    // SAFETY: the caller guarantees the MSR exists and the value is acceptable.
    unsafe { x86_64::registers::model_specific::Msr::new(msr).write(value) }
}
