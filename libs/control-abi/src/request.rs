//! Requests and replies, encoded in registers.
//!
//! Request (core → task, at the task's receive point):
//!
//! | register | bits | field |
//! |---|---|---|
//! | RDI | 7:0 | [`Op`] |
//! | RDI | 15:8 | access size in bytes |
//! | RDI | 31:16 | guest index (its position in the configuration) |
//! | RDI | 47:32 | virtual BDF (routing ID: bus 15:8, device 7:3, function 2:0); the physical one for [`Op::PhysicalRead`] |
//! | RDI | 63:48 | PCI segment of the physical function of [`Op::PhysicalRead`]; 0 for every other op |
//! | RSI | 63:0 | offset (configuration offset, or offset into the MSI-X table) |
//! | RDX | 63:0 | value (a write's data, or the `FaultKind` of a test fault) |
//!
//! Reply (task → core, with `SYSCALL`): RDI = [`SYS_REPLY`], RSI = [`Status`], RDX = value.
//! A task that cannot go on says so with RDI = [`SYS_PANIC`] and a message in the shared page.
//! Anything else is a protocol violation, which the core treats like a fault.

use conduit_pci::Bdf;

/// `SYSCALL` number: the reply to the request being served.
pub const SYS_REPLY: u64 = 1;
/// `SYSCALL` number: the task panicked; the message is in the shared page.
pub const SYS_PANIC: u64 = 2;

/// What the core asks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Op {
    /// Forget every guest and function and take the configuration access described by
    /// [`crate::shared::InitInfo`]. Sent once after every (re)start.
    Init = 1,
    /// Build the virtual function described by [`crate::shared::FunctionInfo`] and place it at
    /// (guest, virtual BDF).
    AddFunction = 2,
    /// A guest's configuration read: `size` bytes at `offset`; the reply's value is the data.
    ConfigRead = 3,
    /// A guest's configuration write; the events go to the shared page.
    ConfigWrite = 4,
    /// A guest's read of its function's MSI-X table page: `size` (4 or 8) bytes at `offset` from
    /// the table's start.
    MsixRead = 5,
    /// A guest's write to its function's MSI-X table page; an entry change is an event.
    MsixWrite = 6,
    /// The hypervisor's own read of physical configuration space (diagnostics: the debug
    /// shell): `size` bytes at `offset` of the function whose routing ID is in the virtual-BDF
    /// field, on the PCI segment in [`Request::segment`]. Never sent on a guest's behalf.
    PhysicalRead = 7,
    /// Back to the reset state (decode and bus mastering off, BARs unmapped, MSI/MSI-X off) for
    /// (guest, virtual BDF): the operator stopped the guest. The events go to the shared page;
    /// the value is the physical Command register afterwards.
    ResetFunction = 8,
    /// The core's message for the physical MSI capability of (guest, virtual BDF), after it
    /// routed the guest's MSI through an IRTE of the guest's (or stopped routing it): `offset` =
    /// message address (remappable format, VT-d spec §5.1.2.2), `value` bits 15:0 = message
    /// data, bit 32 = MSI Enable. The task writes address, data, one vector (Multiple Message
    /// Enable 0), no per-vector mask, INTx disabled, then Enable. Sent only by the core, never
    /// on a guest's write; a function without MSI is [`Status::NoSuchFunction`].
    PhysicalMsi = 9,
    /// TEST ONLY (feature `selftest`): fault deliberately ([`FaultKind`] in the value). The core
    /// sends it only in the `control` test scenario; without the feature 0x7f is an unknown op.
    #[cfg(feature = "selftest")]
    TestFault = 0x7f,
}

impl Op {
    /// Decodes an op byte.
    #[must_use]
    pub const fn from_raw(raw: u8) -> Option<Self> {
        Some(match raw {
            1 => Self::Init,
            2 => Self::AddFunction,
            3 => Self::ConfigRead,
            4 => Self::ConfigWrite,
            5 => Self::MsixRead,
            6 => Self::MsixWrite,
            7 => Self::PhysicalRead,
            8 => Self::ResetFunction,
            9 => Self::PhysicalMsi,
            #[cfg(feature = "selftest")]
            0x7f => Self::TestFault,
            _ => return None,
        })
    }

    /// Whether the request is made on behalf of the guest it names, so that a task that fails
    /// serving it is the guest's doing: the guest's own configuration and MSI-X table accesses,
    /// and what the core does to the guest's functions because of them (their physical MSI
    /// message, their reset). Init, AddFunction and PhysicalRead are the hypervisor's own.
    /// (Test image: a [`FaultKind`] is sent on behalf of the guest it names, unless that is
    /// [`HYPERVISOR`].)
    #[must_use]
    pub const fn on_behalf_of_guest(self) -> bool {
        match self {
            Self::ConfigRead
            | Self::ConfigWrite
            | Self::MsixRead
            | Self::MsixWrite
            | Self::ResetFunction
            | Self::PhysicalMsi => true,
            Self::Init | Self::AddFunction | Self::PhysicalRead => false,
            #[cfg(feature = "selftest")]
            Self::TestFault => true,
        }
    }

    /// Whether a reply to this op may carry events.
    #[must_use]
    pub const fn has_events(self) -> bool {
        matches!(
            self,
            Self::ConfigWrite | Self::MsixWrite | Self::ResetFunction
        )
    }
}

/// The guest index of a request the hypervisor makes for itself (no guest is behind it).
pub const HYPERVISOR: u16 = u16::MAX;

/// [`Op::PhysicalMsi`]'s `value` bit: MSI Enable.
pub const PHYSICAL_MSI_ENABLE: u64 = 1 << 32;

/// One request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Request {
    /// What to do.
    pub op: Op,
    /// The guest (index in the configuration).
    pub guest: u16,
    /// The function as the guest addresses it (for [`Op::PhysicalRead`]: the physical function).
    pub vbdf: Bdf,
    /// The PCI segment of the physical function of [`Op::PhysicalRead`]; 0 for every op that
    /// names a guest's virtual function (a guest's topology has no segments).
    pub segment: u16,
    /// Configuration offset, or offset into the MSI-X table.
    pub offset: u64,
    /// Access size in bytes.
    pub size: u8,
    /// Data of a write, or a `FaultKind` (test image).
    pub value: u64,
}

/// Why three registers are not a request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DecodeError {
    /// Unknown op byte.
    UnknownOp(u8),
    /// A segment (RDI bits 63:48) given with an op that names a virtual function.
    SegmentWithoutPhysical {
        /// The op.
        op: Op,
        /// The segment given.
        segment: u16,
    },
}

impl Request {
    /// A request without offset, size or value.
    #[must_use]
    pub const fn new(op: Op, guest: u16, vbdf: Bdf) -> Self {
        Self {
            op,
            guest,
            vbdf,
            segment: 0,
            offset: 0,
            size: 0,
            value: 0,
        }
    }

    /// The hypervisor's read of `size` bytes at `offset` of the physical function `bdf` on PCI
    /// segment `segment` ([`Op::PhysicalRead`]).
    #[must_use]
    pub const fn physical_read(segment: u16, bdf: Bdf, offset: u16, size: u8) -> Self {
        Self {
            segment,
            offset: offset as u64,
            size,
            ..Self::new(Op::PhysicalRead, HYPERVISOR, bdf)
        }
    }

    /// A guest configuration read.
    #[must_use]
    pub const fn read(guest: u16, vbdf: Bdf, offset: u16, size: u8) -> Self {
        Self {
            offset: offset as u64,
            size,
            ..Self::new(Op::ConfigRead, guest, vbdf)
        }
    }

    /// A guest configuration write.
    #[must_use]
    pub const fn write(guest: u16, vbdf: Bdf, offset: u16, size: u8, value: u32) -> Self {
        Self {
            offset: offset as u64,
            size,
            value: value as u64,
            ..Self::new(Op::ConfigWrite, guest, vbdf)
        }
    }

    /// RDI, RSI, RDX.
    #[must_use]
    pub const fn encode(&self) -> [u64; 3] {
        [
            (self.op as u64)
                | ((self.size as u64) << 8)
                | ((self.guest as u64) << 16)
                | ((self.vbdf.routing_id() as u64) << 32)
                | ((self.segment as u64) << 48),
            self.offset,
            self.value,
        ]
    }

    /// Decodes RDI, RSI, RDX. A segment is accepted only with [`Op::PhysicalRead`]: every other
    /// op names a function of a guest's virtual topology, which has no segments.
    pub const fn decode(regs: [u64; 3]) -> Result<Self, DecodeError> {
        let [rdi, offset, value] = regs;
        let Some(op) = Op::from_raw(rdi as u8) else {
            return Err(DecodeError::UnknownOp(rdi as u8));
        };
        let segment = (rdi >> 48) as u16;
        if segment != 0 && !matches!(op, Op::PhysicalRead) {
            return Err(DecodeError::SegmentWithoutPhysical { op, segment });
        }
        Ok(Self {
            op,
            segment,
            size: (rdi >> 8) as u8,
            guest: (rdi >> 16) as u16,
            vbdf: Bdf::from_routing_id((rdi >> 32) as u16),
            offset,
            value,
        })
    }
}

/// The outcome of a request, as the task reports it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Status {
    /// Served; the value (and, for writes, the events) are valid.
    Ok = 0,
    /// The request did not decode.
    BadRequest = 1,
    /// No guest with that index was set up.
    NoSuchGuest = 2,
    /// No function at that virtual BDF (for the MSI-X ops: or it has no MSI-X).
    NoSuchFunction = 3,
    /// Size, alignment or range of the access is invalid.
    BadAccess = 4,
    /// The function could not be built (details in the shared page's message).
    BuildFailed = 5,
    /// The virtual BDF is taken, or function 0 of its device is missing.
    Topology = 6,
    /// [`Op::Init`] has not been served since the task started.
    NotInitialised = 7,
    /// Too many guests, or no memory left for another function.
    Full = 8,
    /// The init or function description in the shared page is malformed.
    BadDescription = 9,
}

impl Status {
    /// Decodes a status value; `None` for anything the protocol does not define.
    #[must_use]
    pub const fn from_raw(raw: u64) -> Option<Self> {
        Some(match raw {
            0 => Self::Ok,
            1 => Self::BadRequest,
            2 => Self::NoSuchGuest,
            3 => Self::NoSuchFunction,
            4 => Self::BadAccess,
            5 => Self::BuildFailed,
            6 => Self::Topology,
            7 => Self::NotInitialised,
            8 => Self::Full,
            9 => Self::BadDescription,
            _ => return None,
        })
    }

    /// A short description for logs.
    #[must_use]
    pub const fn describe(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::BadRequest => "malformed request",
            Self::NoSuchGuest => "no such guest",
            Self::NoSuchFunction => "no such function",
            Self::BadAccess => "invalid access (size, alignment or range)",
            Self::BuildFailed => "the virtual function could not be built",
            Self::Topology => "virtual topology conflict",
            Self::NotInitialised => "the task is not initialised",
            Self::Full => "no room for another guest or function",
            Self::BadDescription => "malformed description in the shared page",
        }
    }
}

/// A reply: RSI and RDX of the task's `SYSCALL`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Reply {
    /// The outcome.
    pub status: Status,
    /// The data read (0 when there is none).
    pub value: u64,
}

impl Reply {
    /// A successful reply.
    #[must_use]
    pub const fn ok(value: u64) -> Self {
        Self {
            status: Status::Ok,
            value,
        }
    }

    /// A failed reply.
    #[must_use]
    pub const fn error(status: Status) -> Self {
        Self { status, value: 0 }
    }

    /// RSI and RDX.
    #[must_use]
    pub const fn encode(&self) -> [u64; 2] {
        [self.status as u64, self.value]
    }

    /// Decodes RSI and RDX; `None` for an undefined status.
    #[must_use]
    pub const fn decode(rsi: u64, rdx: u64) -> Option<Self> {
        match Status::from_raw(rsi) {
            Some(status) => Some(Self { status, value: rdx }),
            None => None,
        }
    }
}

/// TEST ONLY (feature `selftest`): how [`Op::TestFault`] makes the task fail. Each must end in a
/// reported fault (or the watchdog, or a panic message), a restart, and correct answers afterwards.
#[cfg(feature = "selftest")]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum FaultKind {
    /// Write to the kernel address given in the request's offset: #PF, protection violation
    /// (the page is present but supervisor-only).
    WriteKernel = 1,
    /// Read an unmapped address in the task's own slot: #PF, not present.
    ReadUnmapped = 2,
    /// `hlt` at CPL 3: #GP.
    Privileged = 3,
    /// `in al, 0x80` (a port outside the task's I/O permission bitmap): #GP.
    PortIo = 4,
    /// `ud2`: #UD.
    InvalidOpcode = 5,
    /// Spin for ever: the core's watchdog must end it.
    Loop = 6,
    /// Panic: the task reports its message with [`SYS_PANIC`].
    Panic = 7,
}

#[cfg(feature = "selftest")]
impl FaultKind {
    /// Every kind, in the order the test runs them.
    pub const ALL: [Self; 7] = [
        Self::WriteKernel,
        Self::ReadUnmapped,
        Self::Privileged,
        Self::PortIo,
        Self::InvalidOpcode,
        Self::Loop,
        Self::Panic,
    ];

    /// Decodes a request's value.
    #[must_use]
    pub const fn from_raw(raw: u64) -> Option<Self> {
        Some(match raw {
            1 => Self::WriteKernel,
            2 => Self::ReadUnmapped,
            3 => Self::Privileged,
            4 => Self::PortIo,
            5 => Self::InvalidOpcode,
            6 => Self::Loop,
            7 => Self::Panic,
            _ => return None,
        })
    }

    /// A name for logs.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::WriteKernel => "write to kernel memory",
            Self::ReadUnmapped => "read of an unmapped address",
            Self::Privileged => "HLT at CPL 3",
            Self::PortIo => "port I/O outside the permission bitmap",
            Self::InvalidOpcode => "UD2",
            Self::Loop => "endless loop",
            Self::Panic => "panic",
        }
    }
}
