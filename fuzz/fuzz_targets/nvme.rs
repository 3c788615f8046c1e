//! Fuzz target: what an NVMe controller hands the host (`conduit_nvme`): completion queue
//! entries (posted by a controller that may be faulty or hostile) and Identify data.
//!
//! Invariants (NVMe Base Spec 2.0 §4.2, §5.17.2):
//! - completion entries and Status fields survive decode and encode unchanged;
//! - the host's queue pair never has more commands outstanding than were submitted and not
//!   reaped, nor more than the completion queue can hold; it reaps only entries with the
//!   expected phase tag, for its own queue, with an SQ head inside the submission queue, and
//!   every head and tail it reports is inside its queue; command identifiers are handed out
//!   in sequence;
//! - Identify fields are the bytes at the offsets of Figures 275, 287 and 289; the secondary
//!   controller list holds exactly the count it claims (at most 127) and `for_vf`/`by_id`
//!   find entries that match; ASCII fields are printable.
#![no_main]

use arbitrary::Arbitrary;
use conduit_nvme::{
    Command, Completion, IdentifyController, PrimaryControllerCaps, QueueError, QueueMemory,
    QueuePair, SecondaryControllerList, Status,
};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Op {
    Submit(u8),
    /// The controller writes an entry into CQ slot `slot % cq_entries`.
    Post {
        slot: u16,
        raw: [u8; 16],
    },
    /// The controller completes the oldest command properly, in the next slot.
    Complete(u16),
    Poll,
    Reset,
}

#[derive(Arbitrary, Debug)]
struct Input {
    qid: u8,
    sq_entries: u8,
    cq_entries: u8,
    ops: Vec<Op>,
    identify: Vec<u8>,
}

struct Memory {
    cq: Vec<Completion>,
    written: usize,
}

impl QueueMemory for Memory {
    fn write_command(&mut self, _slot: u16, _command: &Command) {
        self.written += 1;
    }
    fn read_completion(&self, slot: u16) -> Completion {
        self.cq[usize::from(slot)]
    }
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn check_ascii(s: Option<&str>, n: usize) {
    if let Some(s) = s {
        assert!(s.len() <= n && s.bytes().all(|c| (0x20..0x7f).contains(&c)));
    }
}

fn identify(raw: &[u8]) {
    let ok = raw.len() >= 4096;
    assert_eq!(
        IdentifyController::parse(raw).is_ok(),
        ok,
        "short buffers are refused"
    );
    let mut b = raw.to_vec();
    b.resize(4096, 0);
    let c = IdentifyController::parse(&b).expect("4096 bytes parse");
    assert_eq!(
        (c.vid, c.ssvid, c.cntlid),
        (le16(&b, 0), le16(&b, 2), le16(&b, 78))
    );
    assert_eq!(
        (c.version, c.oacs, c.nn),
        (le32(&b, 80), le16(&b, 256), le32(&b, 516))
    );
    assert_eq!(
        (c.mdts, c.controller_type, c.sqes, c.cqes),
        (b[77], b[111], b[512], b[513])
    );
    check_ascii(c.serial.as_str(), 20);
    check_ascii(c.model.as_str(), 40);
    check_ascii(c.firmware.as_str(), 8);
    let p = PrimaryControllerCaps::parse(&b).expect("4096 bytes parse");
    assert_eq!(
        (p.cntlid, p.portid, p.crt),
        (le16(&b, 0), le16(&b, 2), b[4])
    );
    assert_eq!((p.vq.total, p.vi.total), (le32(&b, 32), le32(&b, 64)));
    assert!(p.vq.unassigned() <= p.vq.total && p.vi.unassigned() <= p.vi.total);
    match SecondaryControllerList::parse(&b) {
        Ok(list) => {
            assert!(b[0] <= 127);
            assert_eq!(list.len(), usize::from(b[0]));
            assert_eq!(list.iter().count(), list.len());
            for (i, e) in list.iter().enumerate() {
                let at = 32 + 32 * i;
                assert_eq!(
                    (e.scid, e.pcid, e.vfn),
                    (le16(&b, at), le16(&b, at + 2), le16(&b, at + 8))
                );
                assert_eq!(e.online, b[at + 4] & 1 != 0);
                if let Some(vf) = e.vf_index() {
                    let found = list.for_vf(vf).expect("a listed VF is found");
                    assert_eq!(found.vf_index(), Some(vf));
                }
                assert_eq!(list.by_id(e.scid).map(|f| f.scid), Some(e.scid));
            }
        }
        Err(_) => assert!(b[0] > 127, "only an impossible count is refused"),
    }
}

fuzz_target!(|input: Input| {
    identify(&input.identify);
    let qid = u16::from(input.qid % 4);
    let sq_entries = u16::from(input.sq_entries % 40);
    let cq_entries = u16::from(input.cq_entries % 40);
    let Ok(mut q) = QueuePair::new(qid, sq_entries, cq_entries) else {
        assert!(
            sq_entries < 2 || cq_entries < 2,
            "sizes of 2 or more are accepted"
        );
        return;
    };
    let mut mem = Memory {
        cq: vec![Completion::default(); usize::from(cq_entries)],
        written: 0,
    };
    // The well-behaved controller's own state, for `Complete`.
    let (mut ctl_tail, mut ctl_phase, mut ctl_sq_head) = (0u16, true, 0u16);
    let mut next_cid = 0u16;
    let mut outstanding = 0u16;
    let mut submitted = 0usize;
    for op in input.ops {
        match op {
            Op::Submit(opcode) => match q.submit(&mut mem, Command::new(opcode)) {
                Ok(s) => {
                    assert_eq!(s.cid, next_cid, "command identifiers in sequence");
                    next_cid = next_cid.wrapping_add(1);
                    assert!(s.sq_tail < sq_entries);
                    outstanding += 1;
                    submitted += 1;
                }
                Err(e) => assert_eq!(e, QueueError::Full),
            },
            Op::Post { slot, raw } => {
                let c = Completion::from_bytes(&raw);
                assert_eq!(c.to_bytes(), raw, "completion bytes round trip");
                let field = (c.dw3 >> 17) as u16;
                assert_eq!(c.status().to_field(), field, "status field round trip");
                assert_eq!(Status::from_field(field), c.status());
                mem.cq[usize::from(slot % cq_entries)] = c;
            }
            Op::Complete(dw0) => {
                ctl_sq_head = (ctl_sq_head + 1) % sq_entries;
                mem.cq[usize::from(ctl_tail)] = Completion::new(
                    0,
                    qid,
                    ctl_sq_head,
                    ctl_phase,
                    Status::SUCCESS,
                    u32::from(dw0),
                );
                ctl_tail = (ctl_tail + 1) % cq_entries;
                if ctl_tail == 0 {
                    ctl_phase = !ctl_phase;
                }
            }
            Op::Poll => {
                let phase = q.expected_phase();
                match q.poll(&mem) {
                    Ok(Some(r)) => {
                        let c = r.completion;
                        assert_eq!(c.phase(), phase, "reaped only with the expected phase");
                        assert_eq!(c.sq_id(), qid, "reaped only for its own queue");
                        assert!(c.sq_head() < sq_entries && r.cq_head < cq_entries);
                        assert!(outstanding > 0, "reaped with nothing outstanding");
                        outstanding -= 1;
                    }
                    Ok(None) => {}
                    Err(QueueError::Unexpected { .. }) => assert_eq!(outstanding, 0),
                    Err(QueueError::WrongQueue { expected, .. }) => assert_eq!(expected, qid),
                    Err(QueueError::BadSqHead { sq_head, entries }) => {
                        assert!(sq_head >= entries && entries == sq_entries);
                    }
                    Err(e) => panic!("poll: {e:?}"),
                }
            }
            Op::Reset => {
                q.reset();
                mem.cq.fill(Completion::default());
                (ctl_tail, ctl_phase, ctl_sq_head) = (0, true, 0);
                outstanding = 0;
            }
        }
        assert_eq!(q.outstanding(), outstanding, "outstanding commands");
        assert!(
            outstanding < cq_entries,
            "never more outstanding than the CQ holds"
        );
        assert_eq!(
            mem.written, submitted,
            "one SQ entry written per accepted command"
        );
    }
});
