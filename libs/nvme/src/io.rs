//! The commands of an I/O queue pair's life and of namespace sharing: Create and Delete I/O
//! Completion Queue and I/O Submission Queue, Namespace Attachment (NVMe Base Spec 2.0, the admin
//! commands of the same names), and the NVM command set's Read and Write (NVM Command Set Spec
//! 1.0, the Read and Write commands: SLBA in CDW11:10, NLB in CDW12 bits 15:0).
//!
//! Queue sizes and block counts are given as counts here and encoded 0's based, as the
//! specification stores them; a count of 0 (or one past the field) cannot be encoded and is
//! refused with [`IoError`].

use crate::command::{Command, admin_opcode};
use core::fmt;

/// NVM command set I/O opcodes (NVM Command Set Spec 1.0, Figure "Opcodes for NVM Commands").
pub mod io_opcode {
    /// Flush.
    pub const FLUSH: u8 = 0x00;
    /// Write.
    pub const WRITE: u8 = 0x01;
    /// Read.
    pub const READ: u8 = 0x02;
}

/// Why a command could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoError {
    /// Queue identifier 0 is the admin queue; I/O queues are 1..=65534.
    BadQueueId(u16),
    /// A queue has 2..=65536 entries (CAP.MQES may allow fewer).
    BadQueueSize(u32),
    /// A Read or Write moves 1..=65536 logical blocks.
    BadBlockCount(u32),
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadQueueId(q) => write!(f, "queue identifier {q} is not an I/O queue's"),
            Self::BadQueueSize(n) => write!(f, "a queue of {n} entries cannot be created"),
            Self::BadBlockCount(n) => {
                write!(f, "{n} logical blocks: one command moves 1 to 65536")
            }
        }
    }
}

/// Which way a Read or Write moves data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Host memory to the namespace (Write).
    Write,
    /// The namespace to host memory (Read).
    Read,
}

impl Direction {
    /// The command's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Write => "Write",
            Self::Read => "Read",
        }
    }

    fn opcode(self) -> u8 {
        match self {
            Self::Write => io_opcode::WRITE,
            Self::Read => io_opcode::READ,
        }
    }
}

/// Namespace Attachment's Select field (CDW10 bits 3:0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Attach {
    /// Controller Attach.
    Attach = 0x0,
    /// Controller Detach.
    Detach = 0x1,
}

fn io_qid(qid: u16) -> Result<u16, IoError> {
    if qid == 0 || qid == u16::MAX {
        return Err(IoError::BadQueueId(qid));
    }
    Ok(qid)
}

fn qsize(entries: u32) -> Result<u32, IoError> {
    if !(2..=65536).contains(&entries) {
        return Err(IoError::BadQueueSize(entries));
    }
    Ok(entries - 1)
}

impl Command {
    /// Create I/O Completion Queue: CDW10 QSIZE (31:16, 0's based) and QID (15:0); CDW11
    /// Interrupt Vector (31:16), Interrupts Enabled (1), Physically Contiguous (0, always set
    /// here: the queue is one contiguous buffer at `prp1`). `vector` `None` leaves interrupts off.
    pub fn create_io_cq(
        qid: u16,
        entries: u32,
        prp1: u64,
        vector: Option<u16>,
    ) -> Result<Self, IoError> {
        let (iv, ien) = vector.map_or((0, 0), |v| (u32::from(v), 1));
        Ok(Self {
            prp1,
            cdw10: (qsize(entries)? << 16) | u32::from(io_qid(qid)?),
            cdw11: (iv << 16) | (ien << 1) | 1,
            ..Self::new(admin_opcode::CREATE_IO_CQ)
        })
    }

    /// Create I/O Submission Queue: CDW10 as for the completion queue; CDW11 the Completion Queue
    /// Identifier (31:16), priority 0 (urgent/ignored under round robin) and Physically
    /// Contiguous (0).
    pub fn create_io_sq(qid: u16, entries: u32, prp1: u64, cqid: u16) -> Result<Self, IoError> {
        Ok(Self {
            prp1,
            cdw10: (qsize(entries)? << 16) | u32::from(io_qid(qid)?),
            cdw11: (u32::from(io_qid(cqid)?) << 16) | 1,
            ..Self::new(admin_opcode::CREATE_IO_SQ)
        })
    }

    /// Delete I/O Submission Queue `qid` (CDW10 bits 15:0).
    pub fn delete_io_sq(qid: u16) -> Result<Self, IoError> {
        Ok(Self {
            cdw10: u32::from(io_qid(qid)?),
            ..Self::new(admin_opcode::DELETE_IO_SQ)
        })
    }

    /// Delete I/O Completion Queue `qid` (its submission queues must be deleted first).
    pub fn delete_io_cq(qid: u16) -> Result<Self, IoError> {
        Ok(Self {
            cdw10: u32::from(io_qid(qid)?),
            ..Self::new(admin_opcode::DELETE_IO_CQ)
        })
    }

    /// Read or Write of `blocks` logical blocks from `slba` of namespace `nsid`, the data
    /// described by PRP1 and PRP2 (PSDT 00b; see [`crate::prp`]).
    pub fn read_write(
        direction: Direction,
        nsid: u32,
        slba: u64,
        blocks: u32,
        prp1: u64,
        prp2: u64,
    ) -> Result<Self, IoError> {
        if !(1..=65536).contains(&blocks) {
            return Err(IoError::BadBlockCount(blocks));
        }
        Ok(Self {
            nsid,
            prp1,
            prp2,
            cdw10: slba as u32,
            cdw11: (slba >> 32) as u32,
            cdw12: blocks - 1,
            ..Self::new(direction.opcode())
        })
    }

    /// Namespace Attachment of namespace `nsid`: CDW10 Select; the controller list (see
    /// [`crate::namespace::ControllerList::encode`]) is the 4 KiB data at `prp1`.
    pub fn namespace_attachment(select: Attach, nsid: u32, prp1: u64) -> Self {
        Self {
            nsid,
            prp1,
            cdw10: u32::from(select as u8),
            ..Self::new(admin_opcode::NAMESPACE_ATTACHMENT)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_queues_encode_size_vector_and_contiguity() {
        let cq = Command::create_io_cq(1, 64, 0x80_4000, Some(0)).unwrap();
        assert_eq!(cq.opcode(), 0x05);
        assert_eq!(cq.cdw10, 0x003f_0001, "QSIZE 63, QID 1");
        assert_eq!(cq.cdw11, 0x0000_0003, "IV 0, IEN, PC");
        assert_eq!(cq.prp1, 0x80_4000);
        let cq = Command::create_io_cq(3, 2, 0x1000, Some(5)).unwrap();
        assert_eq!(cq.cdw10, 0x0001_0003);
        assert_eq!(cq.cdw11, 0x0005_0003);
        let polled = Command::create_io_cq(2, 65536, 0x1000, None).unwrap();
        assert_eq!(polled.cdw10, 0xffff_0002);
        assert_eq!(polled.cdw11, 1, "interrupts off, contiguous");
        let sq = Command::create_io_sq(1, 64, 0x80_3000, 1).unwrap();
        assert_eq!(sq.opcode(), 0x01);
        assert_eq!(sq.cdw10, 0x003f_0001);
        assert_eq!(sq.cdw11, 0x0001_0001, "CQID 1, PC");
    }

    #[test]
    fn bad_queues_are_refused() {
        assert_eq!(
            Command::create_io_cq(0, 64, 0, None),
            Err(IoError::BadQueueId(0))
        );
        assert_eq!(
            Command::create_io_sq(1, 1, 0, 1),
            Err(IoError::BadQueueSize(1))
        );
        assert_eq!(
            Command::create_io_sq(1, 65537, 0, 1),
            Err(IoError::BadQueueSize(65537))
        );
        assert_eq!(
            Command::create_io_sq(1, 8, 0, 0),
            Err(IoError::BadQueueId(0))
        );
        assert_eq!(Command::delete_io_sq(0), Err(IoError::BadQueueId(0)));
        let d = Command::delete_io_cq(7).unwrap();
        assert_eq!((d.opcode(), d.cdw10), (0x04, 7));
        let d = Command::delete_io_sq(7).unwrap();
        assert_eq!((d.opcode(), d.cdw10), (0x00, 7));
        assert_eq!(
            IoError::BadBlockCount(0).to_string(),
            "0 logical blocks: one command moves 1 to 65536"
        );
    }

    #[test]
    fn read_write_encode_lba_count_and_prps() {
        let w = Command::read_write(
            Direction::Write,
            1,
            0x1_2345_6789,
            256,
            0x40_0000,
            0x80_6000,
        )
        .unwrap()
        .with_cid(9);
        let b = w.to_bytes();
        assert_eq!(b[0], 0x01, "Write");
        assert_eq!(w.cid(), 9);
        assert_eq!(w.nsid, 1);
        assert_eq!(w.cdw10, 0x2345_6789);
        assert_eq!(w.cdw11, 0x1);
        assert_eq!(w.cdw12, 255, "NLB is 0's based");
        assert_eq!((w.prp1, w.prp2), (0x40_0000, 0x80_6000));
        let r = Command::read_write(Direction::Read, 2, 0, 1, 0x1000, 0).unwrap();
        assert_eq!((r.opcode(), r.cdw12, r.nsid), (0x02, 0, 2));
        assert_eq!(
            Command::read_write(Direction::Read, 1, 0, 0, 0, 0),
            Err(IoError::BadBlockCount(0))
        );
        assert_eq!(
            Command::read_write(Direction::Read, 1, 0, 65537, 0, 0),
            Err(IoError::BadBlockCount(65537))
        );
        assert!(Command::read_write(Direction::Read, 1, 0, 65536, 0, 0).is_ok());
        assert_eq!(Direction::Read.name(), "Read");
    }

    #[test]
    fn namespace_attachment_and_identify_namespace() {
        let a = Command::namespace_attachment(Attach::Attach, 1, 0x1000_2000);
        assert_eq!(
            (a.opcode(), a.nsid, a.cdw10, a.prp1),
            (0x15, 1, 0, 0x1000_2000)
        );
        let d = Command::namespace_attachment(Attach::Detach, 3, 0);
        assert_eq!(d.cdw10, 1);
        let i = Command::identify_namespace(crate::Cns::AttachedControllers, 1, 0, 0x2000);
        assert_eq!((i.opcode(), i.nsid, i.cdw10), (0x06, 1, 0x12));
        let i = Command::identify_namespace(crate::Cns::Namespace, 0xffff_ffff, 0, 0x2000);
        assert_eq!((i.nsid, i.cdw10), (0xffff_ffff, 0));
    }
}
