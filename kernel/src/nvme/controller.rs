//! A minimal NVMe admin-queue driver: BAR0 registers, controller disable/enable (NVMe Base Spec
//! 2.0 §3.5.1 "Memory-based Controller Initialization", §3.5.2 "Controller Shutdown/Reset"), one
//! admin queue pair polled for completions, Identify.
//!
//! The same driver runs a PF for the hypervisor (its queues in a hypervisor-owned IOMMU domain)
//! and a VF on behalf of a guest (its queues in the guest's memory, addressed by guest-physical
//! address): the caller decides where [`AdminMemory`] lies and which addresses the controller is
//! given. Interrupts are not used: completions are polled, bounded by CAP.TO for enable and
//! disable and by [`ADMIN_TIMEOUT_MS`] per command.

use super::regs::{ADMIN_CQ_ENTRIES, ADMIN_SQ_ENTRIES, AdminMemory, PAGE, Registers};
use alloc::boxed::Box;
use conduit_hw::memory::Memory;
use conduit_hw::memory::mmio::{self, Mmio, MmioError};
use conduit_hw::time;
use conduit_nvme::{
    Aqa, Cap, Cc, Cns, Command, Completion, Csts, NamespaceError, ParseError, QueueError,
    QueueMemory, QueuePair, Status, Version,
};
#[cfg(feature = "selftest")]
use conduit_nvme::{IoError, PrpError};
use conduit_pci::Bdf;
use core::fmt;
use volatile::{VolatilePtr, map_field};

/// Most time one admin command may take.
pub const ADMIN_TIMEOUT_MS: u64 = 2000;
/// Smallest BAR0 with the registers and the admin doorbells of a 4-byte stride.
const MIN_BAR: u64 = 0x1008;

/// Why the driver gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NvmeError {
    /// BAR0 is missing, too small or not memory.
    NoBar(Bdf),
    Mmio(MmioError),
    /// The controller reads CAP as 0 or all ones: an offline secondary controller, or a function
    /// that is gone.
    NotAnswering {
        bdf: Bdf,
        cap: u64,
        csts: u32,
    },
    /// CAP does not allow 4 KiB memory pages.
    PageSize {
        bdf: Bdf,
        min: u64,
        max: u64,
    },
    /// Controller Fatal Status.
    Fatal {
        bdf: Bdf,
        csts: u32,
    },
    Timeout {
        bdf: Bdf,
        what: &'static str,
        ms: u64,
    },
    /// The clock stopped during a wait: it was abandoned.
    Clock {
        bdf: Bdf,
        what: &'static str,
        error: time::ClockStopped,
    },
    Queue {
        bdf: Bdf,
        error: QueueError,
    },
    /// The completion carried another command's identifier.
    WrongCid {
        bdf: Bdf,
        expected: u16,
        got: u16,
    },
    /// An earlier command timed out: the queue state is unknown until the controller is enabled
    /// again.
    Stuck(Bdf),
    /// The command completed with an error status.
    Status {
        what: &'static str,
        status: Status,
    },
    Parse {
        what: &'static str,
        error: ParseError,
    },
    /// A command could not be encoded (queue identifier, size or block count out of range).
    #[cfg(feature = "selftest")]
    Encode {
        what: &'static str,
        error: IoError,
    },
    /// A data buffer could not be described with PRP entries.
    #[cfg(feature = "selftest")]
    Prp {
        what: &'static str,
        error: PrpError,
    },
    Namespace {
        what: &'static str,
        error: NamespaceError,
    },
}

impl fmt::Display for NvmeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoBar(b) => write!(f, "{b}: no usable memory BAR0"),
            Self::Mmio(e) => write!(f, "BAR0: {e}"),
            Self::NotAnswering { bdf, cap, csts } => write!(
                f,
                "{bdf}: the controller does not answer (CAP {cap:#x}, CSTS {csts:#x}{})",
                if Csts(*csts).fatal() {
                    ": CFS set, an offline secondary controller reads like this"
                } else {
                    ""
                }
            ),
            Self::PageSize { bdf, min, max } => write!(
                f,
                "{bdf}: memory page sizes {min:#x}-{max:#x} do not include 4 KiB"
            ),
            Self::Fatal { bdf, csts } => {
                write!(f, "{bdf}: controller fatal status (CSTS {csts:#x})")
            }
            Self::Timeout { bdf, what, ms } => write!(f, "{bdf}: {what}: no answer in {ms} ms"),
            Self::Clock { bdf, what, error } => write!(f, "{bdf}: {what}: {error}"),
            Self::Queue { bdf, error } => write!(f, "{bdf}: admin queue: {error}"),
            Self::WrongCid { bdf, expected, got } => write!(
                f,
                "{bdf}: completion for command {got:#06x} while waiting for {expected:#06x}"
            ),
            Self::Stuck(b) => write!(
                f,
                "{b}: an earlier admin command timed out; the controller must be reset first"
            ),
            Self::Status { what, status } => write!(f, "{what}: {status}"),
            Self::Parse { what, error } => write!(f, "{what}: {error}"),
            #[cfg(feature = "selftest")]
            Self::Encode { what, error } => write!(f, "{what}: {error}"),
            #[cfg(feature = "selftest")]
            Self::Prp { what, error } => write!(f, "{what}: {error}"),
            Self::Namespace { what, error } => write!(f, "{what}: {error}"),
        }
    }
}

/// One controller driven through its admin queue.
pub struct Controller {
    pub bdf: Bdf,
    bar: Mmio,
    regs: VolatilePtr<'static, Registers>,
    cap: Cap,
    sq_doorbell: VolatilePtr<'static, u32>,
    cq_doorbell: VolatilePtr<'static, u32>,
    queue: QueuePair,
    mem: AdminMemory,
    stuck: bool,
}

impl Controller {
    /// Maps BAR0 at `bar`/`bar_len`, reads CAP and checks that the controller answers.
    pub fn open(
        mem: &Memory,
        bdf: Bdf,
        bar: u64,
        bar_len: u64,
        dma: AdminMemory,
    ) -> Result<Self, NvmeError> {
        if bar == 0 || bar_len < MIN_BAR {
            return Err(NvmeError::NoBar(bdf));
        }
        let mapping = mmio::map(mem, bar, bar_len).map_err(NvmeError::Mmio)?;
        let regs = mapping.block::<Registers>(0).map_err(NvmeError::Mmio)?;
        let lo = map_field!(regs.cap_lo).read();
        let hi = map_field!(regs.cap_hi).read();
        let cap = Cap((u64::from(hi) << 32) | u64::from(lo));
        let csts = map_field!(regs.csts).read();
        if cap.0 == 0 || cap.0 == u64::MAX {
            return Err(NvmeError::NotAnswering {
                bdf,
                cap: cap.0,
                csts,
            });
        }
        if !cap.supports_4k_pages() {
            return Err(NvmeError::PageSize {
                bdf,
                min: cap.min_page_size(),
                max: cap.max_page_size(),
            });
        }
        let doorbell = |off: u64| mapping.block::<u32>(off).map_err(NvmeError::Mmio);
        let sq_doorbell = doorbell(cap.sq_tail_doorbell(0))?;
        let cq_doorbell = doorbell(cap.cq_head_doorbell(0))?;
        let queue = QueuePair::new(0, ADMIN_SQ_ENTRIES, ADMIN_CQ_ENTRIES)
            .map_err(|error| NvmeError::Queue { bdf, error })?;
        Ok(Self {
            bdf,
            bar: mapping,
            regs,
            cap,
            sq_doorbell,
            cq_doorbell,
            queue,
            mem: dma,
            stuck: false,
        })
    }

    /// Physical address of BAR0.
    pub fn bar(&self) -> u64 {
        self.bar.phys()
    }

    pub fn cap(&self) -> Cap {
        self.cap
    }

    pub fn version(&self) -> Version {
        let r = self.regs;
        Version(map_field!(r.vs).read())
    }

    /// The submission queue tail and completion queue head doorbells of queue `qid`.
    #[cfg(feature = "selftest")]
    pub(super) fn doorbells(
        &self,
        qid: u16,
    ) -> Result<(VolatilePtr<'static, u32>, VolatilePtr<'static, u32>), NvmeError> {
        let at = |off: u64| self.bar.block::<u32>(off).map_err(NvmeError::Mmio);
        Ok((
            at(self.cap.sq_tail_doorbell(qid))?,
            at(self.cap.cq_head_doorbell(qid))?,
        ))
    }

    pub fn csts(&self) -> Csts {
        let r = self.regs;
        Csts(map_field!(r.csts).read())
    }

    /// The admin queue memory (its device addresses and where the CPU reaches it).
    #[cfg(feature = "selftest")]
    pub fn memory(&self) -> &AdminMemory {
        &self.mem
    }

    fn timeout_ms(&self) -> u64 {
        // CAP.TO = 0 would mean "no time at all": allow 500 ms anyway.
        u64::from(self.cap.timeout_ms().max(500))
    }

    /// CC.EN = 0 and wait for CSTS.RDY = 0 (§3.5.2): the controller drops its queues.
    pub fn disable(&mut self) -> Result<(), NvmeError> {
        let regs = self.regs;
        let cc = Cc(map_field!(regs.cc).read());
        if cc.enabled() {
            map_field!(regs.cc).write(cc.with_enable(false).0);
        }
        let ms = self.timeout_ms();
        let bdf = self.bdf;
        let what = "CSTS.RDY to clear after CC.EN = 0";
        let cleared = time::wait_ms(ms, || !Csts(map_field!(regs.csts).read()).ready())
            .map_err(|error| NvmeError::Clock { bdf, what, error })?;
        if !cleared {
            return Err(NvmeError::Timeout { bdf, what, ms });
        }
        Ok(())
    }

    /// Programs the admin queues and sets CC.EN = 1, then waits for CSTS.RDY (§3.5.1). Pin-based
    /// interrupts are masked (INTMS): completions are polled.
    pub fn enable(&mut self) -> Result<(), NvmeError> {
        self.disable()?;
        self.mem.clear_queue();
        self.queue.reset();
        self.stuck = false;
        let aqa = Aqa::new(ADMIN_SQ_ENTRIES, ADMIN_CQ_ENTRIES).ok_or(NvmeError::Queue {
            bdf: self.bdf,
            error: QueueError::BadSize {
                entries: ADMIN_SQ_ENTRIES,
            },
        })?;
        let r = self.regs;
        map_field!(r.intms).write(u32::MAX);
        map_field!(r.aqa).write(aqa.0);
        let (sq, cq) = (self.mem.sq(), self.mem.cq());
        map_field!(r.asq_lo).write(sq as u32);
        map_field!(r.asq_hi).write((sq >> 32) as u32);
        map_field!(r.acq_lo).write(cq as u32);
        map_field!(r.acq_hi).write((cq >> 32) as u32);
        map_field!(r.cc).write(Cc::standard(false).0);
        map_field!(r.cc).write(Cc::standard(true).0);
        let ms = self.timeout_ms();
        let bdf = self.bdf;
        let ready = time::wait_ms(ms, || {
            let s = Csts(map_field!(r.csts).read());
            s.ready() || s.fatal()
        })
        .map_err(|error| NvmeError::Clock {
            bdf,
            what: "CSTS.RDY to set after CC.EN = 1",
            error,
        })?;
        let csts = self.csts();
        if csts.fatal() || csts.absent() {
            return Err(NvmeError::Fatal {
                bdf: self.bdf,
                csts: csts.0,
            });
        }
        if !ready {
            return Err(NvmeError::Timeout {
                bdf: self.bdf,
                what: "CSTS.RDY after CC.EN = 1",
                ms,
            });
        }
        Ok(())
    }

    /// Submits `command`, rings the doorbell and polls for its completion. Returns the
    /// completion whatever its status.
    pub fn admin(&mut self, command: Command, what: &'static str) -> Result<Completion, NvmeError> {
        let regs = self.regs;
        let mut ring = Ring {
            bdf: self.bdf,
            queue: &mut self.queue,
            mem: &mut self.mem,
            sq_doorbell: &self.sq_doorbell,
            cq_doorbell: &self.cq_doorbell,
            stuck: &mut self.stuck,
        };
        ring.run(command, what, ADMIN_TIMEOUT_MS, || {
            let csts = Csts(map_field!(regs.csts).read());
            csts.fatal().then_some(csts.0)
        })
    }

    /// [`Controller::admin`], and an error status is an error.
    pub fn admin_ok(
        &mut self,
        command: Command,
        what: &'static str,
    ) -> Result<Completion, NvmeError> {
        let c = self.admin(command, what)?;
        let status = c.status();
        if status.is_success() {
            Ok(c)
        } else {
            Err(NvmeError::Status { what, status })
        }
    }

    /// A command that carries `data` (4 KiB) to the controller through the data page, whose
    /// address `build` puts in the command.
    pub fn admin_with_data(
        &mut self,
        data: &[u8; PAGE as usize],
        build: impl FnOnce(u64) -> Command,
        what: &'static str,
    ) -> Result<Completion, NvmeError> {
        self.mem.write_data(data);
        let command = build(self.mem.data());
        self.admin(command, what)
    }

    /// Identify into the data page; returns a copy of the 4 KiB structure.
    pub fn identify(
        &mut self,
        cns: Cns,
        cntid: u16,
        what: &'static str,
    ) -> Result<Box<[u8; PAGE as usize]>, NvmeError> {
        self.identify_ns(cns, 0, cntid, what)
    }

    /// Identify of a namespace-specific structure (NSID `nsid`) into the data page.
    pub fn identify_ns(
        &mut self,
        cns: Cns,
        nsid: u32,
        cntid: u16,
        what: &'static str,
    ) -> Result<Box<[u8; PAGE as usize]>, NvmeError> {
        self.mem.clear_data();
        let command = Command::identify_namespace(cns, nsid, cntid, self.mem.data());
        self.admin_ok(command, what)?;
        let mut out = Box::new([0u8; PAGE as usize]);
        self.mem.read_data(&mut out);
        Ok(out)
    }
}

/// One queue pair of a controller, borrowed for one command (NVMe Base Spec 2.0 §3.3.1: the
/// entry written, the submission queue's tail doorbell rung, the completion reaped by its phase
/// tag and the completion queue's head doorbell rung).
pub(super) struct Ring<'a, M: QueueMemory> {
    pub bdf: Bdf,
    pub queue: &'a mut QueuePair,
    pub mem: &'a mut M,
    pub sq_doorbell: &'a VolatilePtr<'static, u32>,
    pub cq_doorbell: &'a VolatilePtr<'static, u32>,
    /// Set when a command timed out or the controller failed: the pair is not used again.
    pub stuck: &'a mut bool,
}

impl<M: QueueMemory> Ring<'_, M> {
    /// Submits `command` and polls for its completion for at most `timeout_ms`, returned
    /// whatever its status; `fatal` is asked between polls and ends the wait with the
    /// controller's status when it reports a fatal error.
    pub fn run(
        &mut self,
        command: Command,
        what: &'static str,
        timeout_ms: u64,
        mut fatal: impl FnMut() -> Option<u32>,
    ) -> Result<Completion, NvmeError> {
        let bdf = self.bdf;
        if *self.stuck {
            return Err(NvmeError::Stuck(bdf));
        }
        let submitted = self
            .queue
            .submit(self.mem, command)
            .map_err(|error| NvmeError::Queue { bdf, error })?;
        // The entry must be in memory before the controller hears of it.
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
        self.sq_doorbell.write(u32::from(submitted.sq_tail));
        let mut deadline = time::Deadline::after_ms(timeout_ms);
        loop {
            match self.queue.poll(self.mem) {
                Ok(Some(reaped)) => {
                    self.cq_doorbell.write(u32::from(reaped.cq_head));
                    let got = reaped.completion.cid();
                    if got != submitted.cid {
                        return Err(NvmeError::WrongCid {
                            bdf,
                            expected: submitted.cid,
                            got,
                        });
                    }
                    return Ok(reaped.completion);
                }
                Ok(None) => {}
                Err(error) => return Err(NvmeError::Queue { bdf, error }),
            }
            let expired = deadline.poll().map_err(|error| {
                *self.stuck = true;
                NvmeError::Clock { bdf, what, error }
            })?;
            if expired {
                *self.stuck = true;
                return Err(NvmeError::Timeout {
                    bdf,
                    what,
                    ms: timeout_ms,
                });
            }
            if let Some(csts) = fatal() {
                *self.stuck = true;
                return Err(NvmeError::Fatal { bdf, csts });
            }
            core::hint::spin_loop();
        }
    }
}
