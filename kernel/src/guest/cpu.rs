//! The architectural state of a vCPU that the exit handlers read and change besides its
//! general-purpose registers (those live in `Guest::regs`): RIP and the exiting instruction's
//! length, CS base and access rights, CR0, CR3, CR4 and IA32_EFER. On a running vCPU they are
//! fields of its VMCS (Intel SDM Vol. 3C §25.4.1 "Guest Register State", "Information
//! for VM Exits Due to Instruction Execution"); the entry points of `exits.rs` and `mmio.rs`
//! take any implementation, so the same handlers serve a VM exit and a scripted access.

use conduit_hw::vmx::vmcs::{Current, FieldError};
use conduit_vmx::fields::{Guest32, Guest64, GuestNatural, ReadOnly32};

/// What an exit handler needs of the vCPU's state.
pub trait CpuState {
    /// A failed access to the state (a VMREAD or VMWRITE failure for the VMCS).
    type Error: core::fmt::Display;
    fn rip(&mut self) -> Result<u64, Self::Error>;
    fn set_rip(&mut self, rip: u64) -> Result<(), Self::Error>;
    /// Length of the instruction whose execution caused the exit (I/O, CPUID, HLT, VMCALL,
    /// RDMSR, WRMSR); undefined for EPT violations.
    fn instruction_len(&mut self) -> Result<u32, Self::Error>;
    fn cs_base(&mut self) -> Result<u64, Self::Error>;
    /// The CS access rights in the VMCS format (SDM Vol. 3C §25.4.1, Table 25-2): bit 13 L,
    /// bit 14 D/B.
    fn cs_access_rights(&mut self) -> Result<u32, Self::Error>;
    fn cr0(&mut self) -> Result<u64, Self::Error>;
    fn cr3(&mut self) -> Result<u64, Self::Error>;
    fn cr4(&mut self) -> Result<u64, Self::Error>;
    fn efer(&mut self) -> Result<u64, Self::Error>;

    /// Advances RIP past the exiting instruction.
    fn skip(&mut self) -> Result<(), Self::Error> {
        let len = self.instruction_len()?;
        let rip = self.rip()?;
        self.set_rip(rip.wrapping_add(u64::from(len)))
    }
}

/// The current VMCS: every item is a VMREAD or VMWRITE of its guest-state or exit-information
/// field.
impl CpuState for Current {
    type Error = FieldError;

    fn rip(&mut self) -> Result<u64, FieldError> {
        self.get(GuestNatural::Rip)
    }

    fn set_rip(&mut self, rip: u64) -> Result<(), FieldError> {
        self.set(GuestNatural::Rip, rip)
    }

    fn instruction_len(&mut self) -> Result<u32, FieldError> {
        self.get(ReadOnly32::ExitInstructionLength)
    }

    fn cs_base(&mut self) -> Result<u64, FieldError> {
        self.get(GuestNatural::CsBase)
    }

    fn cs_access_rights(&mut self) -> Result<u32, FieldError> {
        self.get(Guest32::CsAccessRights)
    }

    fn cr0(&mut self) -> Result<u64, FieldError> {
        self.get(GuestNatural::Cr0)
    }

    fn cr3(&mut self) -> Result<u64, FieldError> {
        self.get(GuestNatural::Cr3)
    }

    fn cr4(&mut self) -> Result<u64, FieldError> {
        self.get(GuestNatural::Cr4)
    }

    fn efer(&mut self) -> Result<u64, FieldError> {
        self.get(Guest64::Efer)
    }
}
