//! VMCS regions and typed access to the current VMCS (SDM Vol. 3C, "Virtual Machine Control
//! Structures"). Reads and writes go through the field enums of `conduit_vmx::fields`: a
//! read-only (VM-exit information) field cannot be named in a write.

use super::instr::{self, VmFail};
use crate::memory::{Memory, PhysAddr, PhysWindow};
use conduit_vmx::fields::{ValueOf, VmcsRead, VmcsReadable, VmcsWritable, VmcsWrite, Width};

/// A failed VMREAD or VMWRITE, naming the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub write: bool,
    pub fail: VmFail,
}

impl core::fmt::Display for FieldError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let op = if self.write { "VMWRITE" } else { "VMREAD" };
        write!(f, "{op} of {} failed: {}", self.field, self.fail)
    }
}

/// One VMCS region (a 4 KiB frame with the revision identifier in its first word).
#[derive(Debug)]
pub struct VmcsRegion {
    frame: PhysAddr,
    /// Whether VMLAUNCH succeeded on it since its last VMCLEAR (then VMRESUME is required).
    pub launched: bool,
}

impl VmcsRegion {
    /// Allocates and clears a VMCS region for `revision` (SDM "VMCS Region").
    pub fn new(mem: &Memory, revision: u32) -> Result<Self, VmFail> {
        let frame = mem.frames.lock().allocate().ok_or(VmFail::Invalid)?;
        let window = PhysWindow::new(mem, true);
        window.zero_frame(frame);
        // SAFETY: the frame was just allocated and is mapped through the window.
        unsafe { core::ptr::write_volatile(window.virt(frame.0).cast::<u32>(), revision) };
        // SAFETY: VMX is on (regions are only created after VMXON) and the frame is ours.
        unsafe { instr::vmclear(frame.0)? };
        Ok(Self {
            frame,
            launched: false,
        })
    }

    /// VMCLEARs the region: its state is written back, it is no longer current or launched, and
    /// the next entry must be VMLAUNCH (SDM "VMCLEAR").
    pub fn clear(&mut self) -> Result<(), VmFail> {
        // SAFETY: VMX is on (the region exists) and the frame is this region's VMCS.
        unsafe { instr::vmclear(self.frame.0)? };
        self.launched = false;
        Ok(())
    }

    /// VMCLEARs the region on CPU `cpu`, the one it was last current on (a VMCS may be active on
    /// one CPU at a time; before another CPU loads it, the CPU that had it writes its state back
    /// with VMCLEAR, SDM Vol. 3C §25.1 and §25.11.1). On this CPU it is [`Self::clear`].
    pub fn clear_on(&mut self, cpu: usize) -> Result<(), super::EverywhereError> {
        if !crate::percpu::get(cpu).is_some_and(|c| c.vmx_on()) {
            return Err(super::EverywhereError::NoVmx(cpu));
        }
        match crate::smp::call_on(cpu, vmclear_here, self.frame.0) {
            Ok(0) => {
                self.launched = false;
                Ok(())
            }
            Ok(code) => Err(super::EverywhereError::Failed(cpu, code)),
            Err(e) => Err(super::EverywhereError::Call(cpu, e)),
        }
    }

    /// Makes this VMCS current on this CPU.
    pub fn load(&self) -> Result<Current, VmFail> {
        // SAFETY: the region is a VMCS with the right revision id, owned by `self`.
        unsafe { instr::vmptrld(self.frame.0)? };
        Ok(Current { _private: () })
    }
}

/// VMCLEAR of the region at `phys` on this CPU, for [`VmcsRegion::clear_on`]: 0, or the failure
/// as one word (see `vm_fail_code`).
fn vmclear_here(phys: u64) -> u64 {
    // SAFETY: `clear_on` passes the frame of a live VMCS region and runs this only on a CPU in
    // VMX operation.
    match unsafe { instr::vmclear(phys) } {
        Ok(()) => 0,
        Err(e) => super::vm_fail_code(e),
    }
}

/// Proof that some VMCS is current: the typed VMREAD/VMWRITE interface.
#[derive(Debug)]
pub struct Current {
    _private: (),
}

impl Current {
    /// Reads a field; a failure is decoded, never turned into a value.
    pub fn get<F: VmcsReadable>(&mut self, field: F) -> Result<ValueOf<F>, FieldError> {
        VmcsRead::read(self, field)
    }

    /// Writes a field.
    pub fn set<F: VmcsWritable>(&mut self, field: F, value: ValueOf<F>) -> Result<(), FieldError> {
        VmcsWrite::write(self, field, value)
    }
}

impl VmcsRead for Current {
    type Error = FieldError;

    fn read<F: VmcsReadable>(&mut self, field: F) -> Result<ValueOf<F>, FieldError> {
        // SAFETY: a `Current` exists only after a successful VMPTRLD.
        let raw = unsafe { instr::vmread(field) }.map_err(|fail| FieldError {
            field: field.name(),
            write: false,
            fail,
        })?;
        Ok(<F::Width as Width>::from_raw(raw))
    }
}

impl VmcsWrite for Current {
    type Error = FieldError;

    fn write<F: VmcsWritable>(&mut self, field: F, value: ValueOf<F>) -> Result<(), FieldError> {
        let raw = <F::Width as Width>::to_raw(value);
        // SAFETY: a `Current` exists only after a successful VMPTRLD; `F: VmcsWritable`.
        unsafe { instr::vmwrite(field.encoding(), raw) }.map_err(|fail| FieldError {
            field: field.name(),
            write: true,
            fail,
        })
    }
}
