//! One CPU's request slot. A request is two words (what to run and its argument), the reply one
//! word. States:
//!
//! ```text
//! EMPTY --claim (sender)--> CLAIMED --post--> POSTED --take (target)--> RUNNING --finish--> DONE
//!   ^                                           |                          |                 |
//!   +---------------- cancel (sender) ----------+        cancel: ABANDONED-+-- finish --+    |
//!   +---------------------------------------------------------------------------------+-----+
//!                                                                          collect (sender)
//! ```
//!
//! Only the sender that claimed the slot posts, cancels or collects; only the target takes and
//! finishes. A sender that gives up before the target took the request withdraws it (it never
//! runs); one that gives up while it runs abandons it, and the target empties the slot when it
//! finishes. So a slot is never left claimed by a sender that went away.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

const EMPTY: u32 = 0;
const CLAIMED: u32 = 1;
const POSTED: u32 = 2;
const RUNNING: u32 = 3;
const DONE: u32 = 4;
const ABANDONED: u32 = 5;

/// A request: what to run (an opaque word, e.g. a function's address) and its argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub what: u64,
    pub arg: u64,
}

/// How a sender's [`Mailbox::cancel`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    /// Withdrawn before the target took it: it never runs.
    Withdrawn,
    /// The target is running it; it empties the slot when done and the reply is lost.
    Abandoned,
    /// It had finished after all: the reply.
    Completed(u64),
}

/// One CPU's slot.
#[derive(Debug)]
pub struct Mailbox {
    state: AtomicU32,
    what: AtomicU64,
    arg: AtomicU64,
    reply: AtomicU64,
}

impl Default for Mailbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Mailbox {
    pub const fn new() -> Self {
        Self {
            state: AtomicU32::new(EMPTY),
            what: AtomicU64::new(0),
            arg: AtomicU64::new(0),
            reply: AtomicU64::new(0),
        }
    }

    fn swap(&self, from: u32, to: u32) -> Result<(), u32> {
        self.state
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
    }

    /// Sender: takes the empty slot; `false` while another request occupies it.
    pub fn claim(&self) -> bool {
        self.swap(EMPTY, CLAIMED).is_ok()
    }

    /// Sender, after [`Self::claim`]: posts `req`; the target sees it at its next [`Self::take`].
    pub fn post(&self, req: Request) {
        self.what.store(req.what, Ordering::Relaxed);
        self.arg.store(req.arg, Ordering::Relaxed);
        self.state.store(POSTED, Ordering::Release);
    }

    /// Target: the posted request, now running; `None` if nothing is posted.
    pub fn take(&self) -> Option<Request> {
        self.swap(POSTED, RUNNING).ok()?;
        Some(Request {
            what: self.what.load(Ordering::Relaxed),
            arg: self.arg.load(Ordering::Relaxed),
        })
    }

    /// Target, after [`Self::take`]: the reply. An abandoned request's slot is emptied.
    pub fn finish(&self, reply: u64) {
        self.reply.store(reply, Ordering::Relaxed);
        if self.swap(RUNNING, DONE).is_err() {
            // ABANDONED: nobody collects the reply.
            self.state.store(EMPTY, Ordering::Release);
        }
    }

    /// Sender: the reply once the target finished (the slot is empty again), else `None`.
    pub fn collect(&self) -> Option<u64> {
        if self.state.load(Ordering::Acquire) != DONE {
            return None;
        }
        let reply = self.reply.load(Ordering::Relaxed);
        self.state.store(EMPTY, Ordering::Release);
        Some(reply)
    }

    /// Sender: gives up waiting.
    pub fn cancel(&self) -> Cancel {
        if self.swap(POSTED, EMPTY).is_ok() {
            return Cancel::Withdrawn;
        }
        if self.swap(RUNNING, ABANDONED).is_ok() {
            return Cancel::Abandoned;
        }
        match self.collect() {
            Some(r) => Cancel::Completed(r),
            // Not posted at all (claimed only): give the slot back.
            None => {
                self.state.store(EMPTY, Ordering::Release);
                Cancel::Withdrawn
            }
        }
    }

    /// Whether a request is posted and not yet taken (the target polls this when woken).
    pub fn pending(&self) -> bool {
        self.state.load(Ordering::Acquire) == POSTED
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const REQ: Request = Request { what: 7, arg: 35 };

    #[test]
    fn round_trip() {
        let m = Mailbox::new();
        assert_eq!(m.take(), None);
        assert!(m.claim());
        assert!(!m.claim(), "a claimed slot is not claimed twice");
        m.post(REQ);
        assert!(m.pending());
        assert_eq!(m.collect(), None);
        assert_eq!(m.take(), Some(REQ));
        assert_eq!(m.take(), None, "taken once");
        assert_eq!(m.collect(), None, "still running");
        m.finish(42);
        assert_eq!(m.collect(), Some(42));
        assert_eq!(m.collect(), None);
        assert!(m.claim(), "empty again");
    }

    #[test]
    fn withdrawn_before_taken_never_runs() {
        let m = Mailbox::new();
        assert!(m.claim());
        m.post(REQ);
        assert_eq!(m.cancel(), Cancel::Withdrawn);
        assert_eq!(m.take(), None);
        assert!(m.claim());
    }

    #[test]
    fn abandoned_while_running_is_emptied_by_the_target() {
        let m = Mailbox::new();
        assert!(m.claim());
        m.post(REQ);
        assert_eq!(m.take(), Some(REQ));
        assert_eq!(m.cancel(), Cancel::Abandoned);
        assert!(!m.claim(), "still running");
        m.finish(1);
        assert_eq!(m.collect(), None, "nobody collects an abandoned reply");
        assert!(m.claim());
    }

    #[test]
    fn cancel_after_finish_returns_the_reply() {
        let m = Mailbox::new();
        assert!(m.claim());
        m.post(REQ);
        m.take();
        m.finish(9);
        assert_eq!(m.cancel(), Cancel::Completed(9));
        assert!(m.claim());
    }

    #[test]
    fn cancel_of_a_claim_without_post_frees_the_slot() {
        let m = Mailbox::new();
        assert!(m.claim());
        assert_eq!(m.cancel(), Cancel::Withdrawn);
        assert!(m.claim());
    }

    #[test]
    fn many_senders_one_target() {
        let m = Arc::new(Mailbox::new());
        let target = {
            let m = Arc::clone(&m);
            std::thread::spawn(move || {
                let mut served = 0;
                while served < 400 {
                    if let Some(r) = m.take() {
                        m.finish(r.what * 1000 + r.arg);
                        served += 1;
                    } else {
                        std::hint::spin_loop();
                    }
                }
            })
        };
        let senders: Vec<_> = (0..4u64)
            .map(|s| {
                let m = Arc::clone(&m);
                std::thread::spawn(move || {
                    for i in 0..100u64 {
                        while !m.claim() {
                            std::hint::spin_loop();
                        }
                        m.post(Request { what: s, arg: i });
                        let reply = loop {
                            if let Some(r) = m.collect() {
                                break r;
                            }
                            std::hint::spin_loop();
                        };
                        assert_eq!(reply, s * 1000 + i, "each sender gets its own reply");
                    }
                })
            })
            .collect();
        for s in senders {
            s.join().unwrap();
        }
        target.join().unwrap();
    }
}
