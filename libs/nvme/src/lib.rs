//! Pure NVMe logic for Conduit, host-tested with hand-built byte buffers and fake queue memory.
//!
//! Nothing here touches hardware: the kernel maps BAR0 and DMA buffers and feeds what it reads to
//! these types. No `unsafe`, no allocation, no panics on what a device returns.
//!
//! - [`regs`]: controller registers (CAP, VS, CC, CSTS, AQA, ASQ, ACQ) and doorbell offsets
//!   (NVMe Base Specification 2.0, §3.1.3).
//! - [`command`]: the 64-byte submission queue entry and builders for the admin commands used
//!   here: Identify (§5.17) and Virtualization Management (§5.22).
//! - [`completion`]: the 16-byte completion queue entry (§4.2.2).
//! - [`status`]: the status field, with generic and command-specific status code names (§4.2.3).
//! - [`queue`]: a queue pair's state machine (tail, head, phase tag) over [`queue::QueueMemory`].
//! - [`identify`]: Identify Controller (CNS 01h), Primary Controller Capabilities (CNS 14h) and
//!   Secondary Controller List (CNS 15h) parsing.
//! - [`io`]: I/O queue creation and deletion, Read and Write, Namespace Attachment.
//! - [`namespace`]: Identify Namespace (CNS 00h), the Active Namespace ID list (CNS 02h) and the
//!   Controller List (CNS 12h, Namespace Attachment's data).
//! - [`prp`]: PRP entries and lists for a buffer, and the split of a transfer under MDTS.
//!
//! Section numbers cite the NVM Express Base Specification, Revision 2.0.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

pub mod command;
pub mod completion;
pub mod identify;
pub mod io;
pub mod namespace;
pub mod prp;
pub mod queue;
pub mod regs;
pub mod status;

pub use command::{Cns, Command, ResourceType, VirtAction, admin_opcode};
pub use completion::Completion;
pub use identify::{
    IdentifyController, ParseError, PrimaryControllerCaps, SecondaryController,
    SecondaryControllerList,
};
pub use io::{Attach, Direction, IoError};
pub use namespace::{
    Attachment, ControllerList, IdentifyNamespace, NamespaceError, NamespaceList, judge_attachment,
};
pub use prp::{Chunk, Chunks, Prp, PrpError};
pub use queue::{QueueError, QueueMemory, QueuePair, Reaped, Submitted};
pub use regs::{Aqa, Cap, Cc, Csts, Version};
pub use status::{Status, StatusCodeType};

/// Bytes of the data structure every Identify command returns.
pub const IDENTIFY_BYTES: usize = 4096;
