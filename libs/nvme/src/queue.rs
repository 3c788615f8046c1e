//! A submission/completion queue pair's state machine (NVMe Base Spec 2.0 §3.3.1 "Memory-based
//! Transport Queue Model", §4.2.4 "Phase Tag").
//!
//! The host owns the submission queue tail and the completion queue head; the controller reports
//! its submission queue head in every completion (SQHD). A submission queue is full when advancing
//! the tail would make it equal the head (one slot always stays empty). Completion entries are
//! new when their Phase Tag equals the phase the host expects: 1 on the first pass through the
//! (zeroed) queue memory, inverted every time the head wraps.
//!
//! Queue memory is reached through [`QueueMemory`], so the same logic drives real DMA buffers in
//! the kernel and fakes in the tests. After [`QueuePair::submit`] the caller writes
//! [`Submitted::sq_tail`] to the submission queue's tail doorbell; after [`QueuePair::poll`]
//! returns an entry it writes [`Reaped::cq_head`] to the completion queue's head doorbell.

use crate::command::Command;
use crate::completion::Completion;
use core::fmt;

/// Where a queue pair's entries live.
pub trait QueueMemory {
    /// Writes submission queue entry `slot`.
    fn write_command(&mut self, slot: u16, command: &Command);
    /// Reads completion queue entry `slot` (the controller may write it at any time).
    fn read_completion(&self, slot: u16) -> Completion;
}

/// Why a queue operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// A queue must have 2..=65536 entries (admin queues 2..=4096); here at most 65535.
    BadSize {
        /// The rejected size.
        entries: u16,
    },
    /// Every submission slot but the one that must stay empty is in use.
    Full,
    /// A completion reported an SQ head outside the submission queue.
    BadSqHead {
        /// The reported SQHD.
        sq_head: u16,
        /// Submission queue entries.
        entries: u16,
    },
    /// A completion named another submission queue.
    WrongQueue {
        /// The SQ Identifier the entry carried.
        sq_id: u16,
        /// This pair's queue identifier.
        expected: u16,
    },
    /// A new completion entry appeared while no command was outstanding.
    Unexpected {
        /// Its Command Identifier.
        cid: u16,
    },
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadSize { entries } => write!(f, "a queue of {entries} entries is not allowed"),
            Self::Full => write!(f, "the submission queue is full"),
            Self::BadSqHead { sq_head, entries } => write!(
                f,
                "the controller reported SQ head {sq_head} for a queue of {entries} entries"
            ),
            Self::WrongQueue { sq_id, expected } => write!(
                f,
                "a completion for submission queue {sq_id} arrived on the queue of {expected}"
            ),
            Self::Unexpected { cid } => write!(
                f,
                "a completion (command {cid:#06x}) arrived while no command was outstanding"
            ),
        }
    }
}

/// A command placed in the submission queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Submitted {
    /// The Command Identifier given to it.
    pub cid: u16,
    /// The new tail: write it to the submission queue tail doorbell.
    pub sq_tail: u16,
}

/// A completion taken from the completion queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reaped {
    /// The entry.
    pub completion: Completion,
    /// The new head: write it to the completion queue head doorbell.
    pub cq_head: u16,
}

/// The host's view of one submission queue and its completion queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePair {
    qid: u16,
    sq_entries: u16,
    cq_entries: u16,
    sq_tail: u16,
    sq_head: u16,
    cq_head: u16,
    phase: bool,
    next_cid: u16,
    outstanding: u16,
}

impl QueuePair {
    /// A pair for queue `qid` with the given sizes; the caller zeroes the completion queue
    /// memory before the controller is told about it.
    pub fn new(qid: u16, sq_entries: u16, cq_entries: u16) -> Result<Self, QueueError> {
        for entries in [sq_entries, cq_entries] {
            if entries < 2 {
                return Err(QueueError::BadSize { entries });
            }
        }
        Ok(Self {
            qid,
            sq_entries,
            cq_entries,
            sq_tail: 0,
            sq_head: 0,
            cq_head: 0,
            phase: true,
            next_cid: 0,
            outstanding: 0,
        })
    }

    /// Back to the state after [`QueuePair::new`] (after a controller reset, which empties the
    /// queues; the caller zeroes the completion queue memory again).
    pub fn reset(&mut self) {
        self.sq_tail = 0;
        self.sq_head = 0;
        self.cq_head = 0;
        self.phase = true;
        self.outstanding = 0;
    }

    /// Queue identifier (0 for the admin queue).
    pub fn qid(&self) -> u16 {
        self.qid
    }

    /// Commands submitted and not completed yet.
    pub fn outstanding(&self) -> u16 {
        self.outstanding
    }

    /// The phase a new completion entry carries.
    pub fn expected_phase(&self) -> bool {
        self.phase
    }

    fn next(index: u16, entries: u16) -> u16 {
        if index + 1 >= entries { 0 } else { index + 1 }
    }

    /// Places `command` (with a fresh Command Identifier) in the next submission slot.
    pub fn submit(
        &mut self,
        mem: &mut impl QueueMemory,
        command: Command,
    ) -> Result<Submitted, QueueError> {
        let tail = Self::next(self.sq_tail, self.sq_entries);
        if tail == self.sq_head || self.outstanding >= self.cq_entries - 1 {
            return Err(QueueError::Full);
        }
        let cid = self.next_cid;
        self.next_cid = self.next_cid.wrapping_add(1);
        mem.write_command(self.sq_tail, &command.with_cid(cid));
        self.sq_tail = tail;
        self.outstanding += 1;
        Ok(Submitted { cid, sq_tail: tail })
    }

    /// Takes the next completion entry if the controller has posted one.
    pub fn poll(&mut self, mem: &impl QueueMemory) -> Result<Option<Reaped>, QueueError> {
        let entry = mem.read_completion(self.cq_head);
        if entry.phase() != self.phase {
            return Ok(None);
        }
        if entry.sq_id() != self.qid {
            return Err(QueueError::WrongQueue {
                sq_id: entry.sq_id(),
                expected: self.qid,
            });
        }
        if entry.sq_head() >= self.sq_entries {
            return Err(QueueError::BadSqHead {
                sq_head: entry.sq_head(),
                entries: self.sq_entries,
            });
        }
        if self.outstanding == 0 {
            return Err(QueueError::Unexpected { cid: entry.cid() });
        }
        self.outstanding -= 1;
        self.sq_head = entry.sq_head();
        self.cq_head = Self::next(self.cq_head, self.cq_entries);
        if self.cq_head == 0 {
            self.phase = !self.phase;
        }
        Ok(Some(Reaped {
            completion: entry,
            cq_head: self.cq_head,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Cns, Command};
    use crate::status::Status;

    /// A fake controller's queue memory: what the host wrote and what the "controller" posted.
    struct Fake {
        sq: Vec<Command>,
        cq: Vec<Completion>,
    }

    impl Fake {
        fn new(sq: u16, cq: u16) -> Self {
            Self {
                sq: vec![Command::default(); sq.into()],
                cq: vec![Completion::default(); cq.into()],
            }
        }
    }

    impl QueueMemory for Fake {
        fn write_command(&mut self, slot: u16, command: &Command) {
            self.sq[usize::from(slot)] = *command;
        }

        fn read_completion(&self, slot: u16) -> Completion {
            self.cq[usize::from(slot)]
        }
    }

    /// The controller's side: consumes submissions in order and posts completions with its
    /// own phase.
    struct Device {
        sq_head: u16,
        cq_tail: u16,
        phase: bool,
    }

    impl Device {
        fn complete(&mut self, mem: &mut Fake, status: Status) {
            let cmd = mem.sq[usize::from(self.sq_head)];
            self.sq_head = (self.sq_head + 1) % mem.sq.len() as u16;
            mem.cq[usize::from(self.cq_tail)] =
                Completion::new(cmd.cid(), 0, self.sq_head, self.phase, status, 0);
            self.cq_tail = (self.cq_tail + 1) % mem.cq.len() as u16;
            if self.cq_tail == 0 {
                self.phase = !self.phase;
            }
        }
    }

    fn device() -> Device {
        Device {
            sq_head: 0,
            cq_tail: 0,
            phase: true,
        }
    }

    #[test]
    fn round_trips_through_several_wraps() {
        let (sqn, cqn) = (4u16, 3u16);
        let mut mem = Fake::new(sqn, cqn);
        let mut q = QueuePair::new(0, sqn, cqn).unwrap();
        let mut dev = device();
        for i in 0..20u16 {
            let s = q
                .submit(&mut mem, Command::identify(Cns::Controller, 0, 0x1000))
                .unwrap();
            assert_eq!(s.cid, i);
            assert_eq!(s.sq_tail, (i + 1) % sqn);
            assert_eq!(q.poll(&mem).unwrap(), None, "nothing posted yet");
            dev.complete(&mut mem, Status::SUCCESS);
            let r = q.poll(&mem).unwrap().expect("a completion");
            assert_eq!(r.completion.cid(), i);
            assert_eq!(r.cq_head, (i + 1) % cqn);
            assert_eq!(q.expected_phase(), (i + 1) / cqn % 2 == 0);
            assert_eq!(q.poll(&mem).unwrap(), None, "the old entry is not new");
            assert_eq!(q.outstanding(), 0);
        }
    }

    #[test]
    fn full_queue_is_refused() {
        let mut mem = Fake::new(3, 8);
        let mut q = QueuePair::new(0, 3, 8).unwrap();
        let cmd = Command::new(0x06);
        q.submit(&mut mem, cmd).unwrap();
        q.submit(&mut mem, cmd).unwrap();
        assert_eq!(q.submit(&mut mem, cmd), Err(QueueError::Full));
        // Once the controller reports progress, there is room again.
        let mut dev = device();
        dev.complete(&mut mem, Status::SUCCESS);
        q.poll(&mem).unwrap().unwrap();
        assert!(q.submit(&mut mem, cmd).is_ok());
    }

    #[test]
    fn completion_queue_room_limits_outstanding_commands() {
        let mut mem = Fake::new(8, 2);
        let mut q = QueuePair::new(0, 8, 2).unwrap();
        q.submit(&mut mem, Command::new(0x06)).unwrap();
        assert_eq!(
            q.submit(&mut mem, Command::new(0x06)),
            Err(QueueError::Full)
        );
    }

    #[test]
    fn bad_entries_are_errors() {
        let mut mem = Fake::new(4, 4);
        let mut q = QueuePair::new(0, 4, 4).unwrap();
        // A new-phase entry with nothing outstanding.
        mem.cq[0] = Completion::new(9, 0, 0, true, Status::SUCCESS, 0);
        assert_eq!(q.poll(&mem), Err(QueueError::Unexpected { cid: 9 }));
        q.submit(&mut mem, Command::new(0x06)).unwrap();
        mem.cq[0] = Completion::new(0, 0, 7, true, Status::SUCCESS, 0);
        assert_eq!(
            q.poll(&mem),
            Err(QueueError::BadSqHead {
                sq_head: 7,
                entries: 4
            })
        );
        mem.cq[0] = Completion::new(0, 3, 1, true, Status::SUCCESS, 0);
        assert_eq!(
            q.poll(&mem),
            Err(QueueError::WrongQueue {
                sq_id: 3,
                expected: 0
            })
        );
        // Nothing was consumed by the failed polls.
        mem.cq[0] = Completion::new(0, 0, 1, true, Status::from_field(0x0002), 0);
        let r = q.poll(&mem).unwrap().unwrap();
        assert_eq!(r.completion.status().sc, 2);
    }

    #[test]
    fn sizes_and_reset() {
        assert_eq!(
            QueuePair::new(0, 1, 4),
            Err(QueueError::BadSize { entries: 1 })
        );
        assert_eq!(
            QueuePair::new(0, 4, 0),
            Err(QueueError::BadSize { entries: 0 })
        );
        let mut mem = Fake::new(2, 2);
        let mut q = QueuePair::new(0, 2, 2).unwrap();
        q.submit(&mut mem, Command::new(0x06)).unwrap();
        q.reset();
        assert_eq!(q.outstanding(), 0);
        assert!(q.expected_phase());
        let s = q.submit(&mut mem, Command::new(0x06)).unwrap();
        assert_eq!(s.sq_tail, 1);
        assert_eq!(s.cid, 1, "command identifiers keep counting across a reset");
        assert_eq!(QueueError::Full.to_string(), "the submission queue is full");
    }
}
