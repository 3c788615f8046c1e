//! Exit-qualification decoders (SDM Vol. 3C, "Exit Qualification for ..." tables in the section
//! "Basic VM-Exit Information").

use super::ExitDecodeError;

/// A general-purpose register as numbered in exit qualifications (0 = RAX ... 15 = R15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Gpr {
    Rax = 0,
    Rcx = 1,
    Rdx = 2,
    Rbx = 3,
    Rsp = 4,
    Rbp = 5,
    Rsi = 6,
    Rdi = 7,
    R8 = 8,
    R9 = 9,
    R10 = 10,
    R11 = 11,
    R12 = 12,
    R13 = 13,
    R14 = 14,
    R15 = 15,
}

impl Gpr {
    /// The register numbered by the low 4 bits of `n`.
    pub const fn from_index(n: u8) -> Self {
        match n & 0xf {
            0 => Self::Rax,
            1 => Self::Rcx,
            2 => Self::Rdx,
            3 => Self::Rbx,
            4 => Self::Rsp,
            5 => Self::Rbp,
            6 => Self::Rsi,
            7 => Self::Rdi,
            8 => Self::R8,
            9 => Self::R9,
            10 => Self::R10,
            11 => Self::R11,
            12 => Self::R12,
            13 => Self::R13,
            14 => Self::R14,
            _ => Self::R15,
        }
    }
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// Control-register access (exit reason 28; table "Exit Qualification for Control-Register
/// Accesses"): bits 3:0 CR number, 5:4 access type, 6 LMSW operand type, 11:8 GPR, 31:16 LMSW
/// source data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrAccess {
    /// MOV to CRn from a GPR (access type 0).
    MovToCr { cr: u8, gpr: Gpr },
    /// MOV from CRn to a GPR (access type 1).
    MovFromCr { cr: u8, gpr: Gpr },
    /// CLTS (access type 2).
    Clts,
    /// LMSW (access type 3): the 16-bit source operand, and whether it was in memory.
    Lmsw { source: u16, memory_operand: bool },
}

impl CrAccess {
    pub const fn decode(q: u64) -> Self {
        let cr = (q & 0xf) as u8;
        let gpr = Gpr::from_index((q >> 8) as u8);
        match (q >> 4) & 3 {
            0 => Self::MovToCr { cr, gpr },
            1 => Self::MovFromCr { cr, gpr },
            2 => Self::Clts,
            _ => Self::Lmsw {
                source: (q >> 16) as u16,
                memory_operand: q & (1 << 6) != 0,
            },
        }
    }
}

/// MOV DR (exit reason 29; table "Exit Qualification for MOV DR"): bits 2:0 debug register,
/// bit 4 direction, bits 11:8 GPR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MovDrQualification {
    pub dr: u8,
    pub direction: MovDrDirection,
    pub gpr: Gpr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MovDrDirection {
    ToDr,
    FromDr,
}

impl MovDrQualification {
    pub const fn decode(q: u64) -> Self {
        Self {
            dr: (q & 7) as u8,
            direction: if q & (1 << 4) != 0 {
                MovDrDirection::FromDr
            } else {
                MovDrDirection::ToDr
            },
            gpr: Gpr::from_index((q >> 8) as u8),
        }
    }
}

/// Size of an I/O access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoSize {
    Byte = 1,
    Word = 2,
    Dword = 4,
}

impl IoSize {
    pub const fn bytes(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoDirection {
    /// OUT/OUTS (bit 3 = 0).
    Out,
    /// IN/INS (bit 3 = 1).
    In,
}

/// I/O instruction (exit reason 30; table "Exit Qualification for I/O Instructions"): bits 2:0
/// size of access (0 = 1 byte, 1 = 2 bytes, 3 = 4 bytes), bit 3 direction (0 = OUT, 1 = IN),
/// bit 4 string instruction, bit 5 REP prefix, bit 6 operand encoding (0 = DX, 1 = immediate),
/// bits 31:16 port number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoQualification {
    pub size: IoSize,
    pub direction: IoDirection,
    /// INS/OUTS.
    pub string: bool,
    pub rep: bool,
    /// The port was an immediate operand (else DX).
    pub immediate: bool,
    pub port: u16,
}

impl IoQualification {
    pub const fn decode(q: u64) -> Result<Self, ExitDecodeError> {
        let size = match q & 7 {
            0 => IoSize::Byte,
            1 => IoSize::Word,
            3 => IoSize::Dword,
            other => return Err(ExitDecodeError::InvalidIoSize(other as u8)),
        };
        Ok(Self {
            size,
            direction: if q & (1 << 3) != 0 {
                IoDirection::In
            } else {
                IoDirection::Out
            },
            string: q & (1 << 4) != 0,
            rep: q & (1 << 5) != 0,
            immediate: q & (1 << 6) != 0,
            port: (q >> 16) as u16,
        })
    }
    /// The qualification the processor reports for this access (the inverse of `decode`).
    pub const fn encode(self) -> u64 {
        let size = match self.size {
            IoSize::Byte => 0,
            IoSize::Word => 1,
            IoSize::Dword => 3,
        };
        size | (matches!(self.direction, IoDirection::In) as u64) << 3
            | (self.string as u64) << 4
            | (self.rep as u64) << 5
            | (self.immediate as u64) << 6
            | (self.port as u64) << 16
    }
}

/// What a guest-linear-address EPT violation was accessing (bit 8, meaningful when bit 7 is 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EptViolationCause {
    /// The access was to the guest-physical translation of a linear address (bit 8 = 1).
    Translation,
    /// The access was to a guest paging-structure entry during the walk (bit 8 = 0).
    PagingStructure,
}

/// EPT violation (exit reason 48; table "Exit Qualification for EPT Violations"). The
/// guest-physical address is in the guest-physical-address field, the linear address (when
/// `linear` is `Some`) in the guest-linear-address field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EptViolation {
    /// Bit 0: the access was a data read.
    pub read: bool,
    /// Bit 1: the access was a data write.
    pub write: bool,
    /// Bit 2: the access was an instruction fetch.
    pub fetch: bool,
    /// Bit 3: the guest-physical address was readable (AND of the read bits of the EPT
    /// paging-structure entries used to translate it).
    pub readable: bool,
    /// Bit 4: it was writable.
    pub writable: bool,
    /// Bit 5: it was executable (for supervisor-mode linear addresses with mode-based execute
    /// control).
    pub executable: bool,
    /// Bit 6: executable for user-mode linear addresses (with mode-based execute control).
    pub user_executable: bool,
    /// Bit 7 (guest-linear-address field valid) and bit 8.
    pub linear: Option<EptViolationCause>,
    /// Bit 12: NMI unblocking due to IRET.
    pub nmi_unblocking: bool,
    /// Bit 13: shadow-stack access.
    pub shadow_stack: bool,
    /// Bit 16: asynchronous to instruction execution.
    pub asynchronous: bool,
}

impl EptViolation {
    pub const fn decode(q: u64) -> Self {
        const fn b(q: u64, n: u32) -> bool {
            q & (1 << n) != 0
        }
        Self {
            read: b(q, 0),
            write: b(q, 1),
            fetch: b(q, 2),
            readable: b(q, 3),
            writable: b(q, 4),
            executable: b(q, 5),
            user_executable: b(q, 6),
            linear: if !b(q, 7) {
                None
            } else if b(q, 8) {
                Some(EptViolationCause::Translation)
            } else {
                Some(EptViolationCause::PagingStructure)
            },
            nmi_unblocking: b(q, 12),
            shadow_stack: b(q, 13),
            asynchronous: b(q, 16),
        }
    }
    /// The translation allowed no access at all (the page is not mapped in EPT).
    pub const fn not_present(self) -> bool {
        !self.readable && !self.writable && !self.executable && !self.user_executable
    }
}

/// EPT misconfiguration (exit reason 49): no exit qualification is defined; the offending
/// guest-physical address is in the guest-physical-address field (SDM "Basic VM-Exit Information",
/// "Guest-physical address").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EptMisconfiguration {
    pub guest_physical_address: u64,
}

impl EptMisconfiguration {
    pub const fn from_guest_physical_address(gpa: u64) -> Self {
        Self {
            guest_physical_address: gpa,
        }
    }
}

/// Source of a task switch (bits 31:30).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskSwitchSource {
    Call = 0,
    Iret = 1,
    Jmp = 2,
    IdtTaskGate = 3,
}

/// Task switch (exit reason 9; table "Exit Qualification for Task Switches"): bits 15:0 the
/// selector of the new TSS, bits 31:30 the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskSwitchQualification {
    pub selector: u16,
    pub source: TaskSwitchSource,
}

impl TaskSwitchQualification {
    pub const fn decode(q: u64) -> Self {
        Self {
            selector: q as u16,
            source: match (q >> 30) & 3 {
                0 => TaskSwitchSource::Call,
                1 => TaskSwitchSource::Iret,
                2 => TaskSwitchSource::Jmp,
                _ => TaskSwitchSource::IdtTaskGate,
            },
        }
    }
}

/// Debug exceptions (#DB exits, and the pending-debug-exceptions layout; table "Exit Qualification
/// for Debug Exceptions"): bits 3:0 B3-B0, bit 11 BLD, bit 13 BD, bit 14 BS, bit 16 RTM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DebugExceptionQualification {
    /// B3:B0: which breakpoint conditions were met.
    pub breakpoints: u8,
    /// Bit 11: bus-lock detected.
    pub bus_lock: bool,
    /// Bit 13: debug-register access detected.
    pub debug_register_access: bool,
    /// Bit 14: single step.
    pub single_step: bool,
    /// Bit 16: the #DB occurred in an RTM region.
    pub rtm: bool,
}

impl DebugExceptionQualification {
    pub const fn decode(q: u64) -> Self {
        Self {
            breakpoints: (q & 0xf) as u8,
            bus_lock: q & (1 << 11) != 0,
            debug_register_access: q & (1 << 13) != 0,
            single_step: q & (1 << 14) != 0,
            rtm: q & (1 << 16) != 0,
        }
    }
}
