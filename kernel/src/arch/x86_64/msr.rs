//! RDMSR/WRMSR: the only module that executes them.

/// Reads a model-specific register.
///
/// # Safety
/// The MSR must exist on this CPU (reading one that does not raises #GP).
pub unsafe fn read(msr: u32) -> u64 {
    // SAFETY: the caller guarantees the MSR exists.
    unsafe { x86_64::registers::model_specific::Msr::new(msr).read() }
}
