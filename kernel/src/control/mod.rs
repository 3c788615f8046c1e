//! The control task, Dom0-style: the deprivileged owner of physical PCI configuration space.
//!
//! After boot the kernel holds no mapping of configuration space ([`crate::pci::hand_over`]);
//! the task (`control/`, a ring-3 binary packed into the boot bundle, see its crate docs for why
//! it is a separate image) holds the only one and keeps every guest's virtual PCI topology with
//! `conduit-vpci`. The core and the VMX exit path reach it only through [`call`]: a
//! [`Request`] (guest, virtual BDF, offset, size, read or write, value) in, an [`Answer`] (value
//! and, for writes, the events the core must act on) or a [`ControlError`] out
//! (`conduit-control-abi` is the wire format).
//!
//! Robustness:
//! - Everything the task hands back is validated: an undefined status, a malformed event or an
//!   unknown system call is a protocol violation, treated like a fault.
//! - A fault at CPL 3 (#PF, #GP, #UD, …) is reported (`control task faulted: #PF at RIP …
//!   CR2 …`) with the request, and ends the call with an error.
//! - A call that runs too long is ended by a watchdog: the task runs with interrupts enabled, and
//!   the hypervisor's periodic tick (the local APIC timer, `crate::irq`) ends a call past its
//!   deadline. Without a tick the watchdog is off (the log says so).
//! - Blame: a request made on a guest's behalf ([`Op::on_behalf_of_guest`]) that makes the task
//!   fail is the guest's doing: its functions are quarantined (`restart`): reset, no longer
//!   served ([`ControlError::Quarantined`]), their interrupts masked; the guest's exit path stops
//!   the guest instead when its configuration says `on_control_crash = "stop"`.
//! - Either way the task is restarted from its image (memory reloaded, [`Op::Init`]) and every
//!   other function is rebuilt as its guest left it: built again without touching the device
//!   ([`FN_REBUILD`](conduit_control_abi::shared::FN_REBUILD)), then the guest's state-changing
//!   requests replayed from the function's [`Journal`]. Those guests notice nothing: their BAR
//!   mappings and interrupt routes stay. A replayed request that makes the task fail again is
//!   blamed on its guest the same way. A guest whose functions were reset by a restart (they
//!   could not be restored) learns it through [`functions_reset_since`] and drops its mappings.
//! - A task that cannot start three times in a row (Init fails, nobody to blame) is given up:
//!   every later call fails with [`ControlError::Unavailable`], which guests see as absent
//!   functions.

mod entry;
mod restart;
mod setup;
mod space;

pub use entry::{init_syscall, user_exception, watchdog_tick};
pub use setup::{init, reaches, seal};

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use conduit_clock::Rate;
use conduit_control_abi::journal::Journal;
use conduit_control_abi::shared::{FN_BUS_MASTER_ALLOWED, FN_ID_OVERRIDE};
use conduit_control_abi::{
    FunctionInfo, InitInfo, Op, Reply, Request, SYS_PANIC, SYS_REPLY, SharedPage, Status, WireBar,
    layout,
};
use conduit_hw::gdt;
use conduit_pci::{Bdf, PciAddress};
use conduit_vpci::Event;
use conduit_vpci::access::MAX_EVENTS;
use core::sync::atomic::{AtomicU64, Ordering};
use entry::{Abort, Frame};
use restart::report;
use space::Space;
use spin::Mutex;

/// The watchdog's allowance for a guest's request.
const BUDGET_US: u64 = 50_000;
/// The allowance for Init and AddFunction, which read much of a function's configuration space
/// (thousands of ECAM reads: tens of milliseconds under emulation).
const BUILD_BUDGET_US: u64 = 2_000_000;
/// RFLAGS for the task: bit 1 (reserved, 1), IF when the watchdog needs interrupts.
const RFLAGS_BASE: u64 = 0x2;
const RFLAGS_IF: u64 = 1 << 9;

/// Why a call did not produce an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlError {
    /// The task is not running (no image, not started, or given up).
    Unavailable,
    /// The task served the request and refused it.
    Refused(Status),
    /// The task failed while serving it (fault, watchdog, panic, protocol violation); it has
    /// been restarted (or given up).
    Crashed,
    /// The task failed while serving this request of the guest's: the guest is blamed, its
    /// functions quarantined, and the task restarted for the others.
    Blamed,
    /// The guest's functions are quarantined (an earlier request of its crashed the task): its
    /// requests are not served.
    Quarantined,
}

impl core::fmt::Display for ControlError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Unavailable => write!(f, "the control task is not available"),
            Self::Refused(s) => write!(f, "refused by the control task: {}", s.describe()),
            Self::Crashed => write!(f, "the control task failed while serving it"),
            Self::Blamed => write!(
                f,
                "the control task failed while serving it: the guest's functions are quarantined"
            ),
            Self::Quarantined => write!(f, "the guest's functions are quarantined"),
        }
    }
}

/// A served request.
#[derive(Debug, Clone, Copy)]
pub struct Answer {
    /// The data read (or the op's result).
    pub value: u64,
    events: [Option<Event>; MAX_EVENTS],
}

impl Answer {
    /// What the core must act on after a write, in order.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.events.iter().flatten()
    }
}

/// How a call failed inside the task.
#[derive(Debug, Clone)]
enum Crash {
    Abort(Abort),
    Panic(String),
    Protocol(String),
}

/// What the task reported about a function it built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionLayout {
    /// Decode enables the task set on the device.
    pub decode: u16,
    /// The MSI-X table: (BAR index, offset in the BAR, entries).
    pub msix: Option<(u8, u32, u32)>,
}

/// One function as assigned at boot, and what its guest has done to it since: rebuilt and
/// replayed after every restart.
#[derive(Debug, Clone)]
struct Assignment {
    guest: u16,
    vbdf: Bdf,
    /// The physical function (`info` carries it in wire form).
    at: PciAddress,
    info: FunctionInfo,
    journal: Journal,
    /// The [`epoch`] of the last restart that brought the function back in its reset state
    /// (quarantined, or not restorable; 0: none did).
    reset_epoch: u64,
    /// Rebuilding it made the task fail even after its guest was quarantined: it is not built
    /// again (its guest's requests are not served anyway).
    abandoned: bool,
}

/// What the core knows of each guest (by index).
#[derive(Debug, Clone, Default)]
struct GuestRecord {
    name: String,
    /// A request of the guest's crashed the task: its functions are not served any more.
    quarantined: bool,
}

#[derive(Debug)]
struct Task {
    space: Space,
    init: InitInfo,
    /// The task uses ports 0xCF8-0xCFF: TR must be reloaded after VM exits.
    ports: bool,
    /// The TSC's rate, when the watchdog is on.
    budget: Option<Rate>,
    alive: bool,
    assignments: Vec<Assignment>,
    guests: Vec<GuestRecord>,
    restarts: u64,
}

static TASK: Mutex<Option<Task>> = Mutex::new(None);

/// The task, locked: requests from several CPUs are served one at a time. A CPU that waits for
/// another's request serves its own cross-CPU requests meanwhile (`smp::lock_serving`), so the
/// holder's INVEPT or TLB shootdown on every CPU cannot deadlock with it.
fn task() -> spin::MutexGuard<'static, Option<Task>> {
    conduit_hw::smp::lock_serving(&TASK)
}
static EPOCH: AtomicU64 = AtomicU64::new(0);
static CALLS: AtomicU64 = AtomicU64::new(0);

/// Counts restarts: guests compare it with the epoch they last saw, and then ask
/// [`functions_reset_since`].
pub fn epoch() -> u64 {
    EPOCH.load(Ordering::Acquire)
}

/// The functions of guest `guest` (virtual BDFs) that a restart after `epoch` brought back in
/// their reset state (quarantined, or not restorable): the guest drops the BAR mappings it made
/// for them before.
pub fn functions_reset_since(guest: u16, epoch: u64) -> Vec<Bdf> {
    task().as_ref().map_or_else(Vec::new, |t| {
        t.assignments
            .iter()
            .filter(|a| a.guest == guest && a.reset_epoch > epoch)
            .map(|a| a.vbdf)
            .collect()
    })
}

/// Whether guest `guest`'s functions are quarantined.
pub fn quarantined(guest: u16) -> bool {
    task()
        .as_ref()
        .and_then(|t| t.guests.get(usize::from(guest)))
        .is_some_and(|g| g.quarantined)
}

/// Calls served so far and restarts.
#[cfg(feature = "selftest")]
pub fn stats() -> (u64, u64) {
    let restarts = task().as_ref().map_or(0, |t| t.restarts);
    (CALLS.load(Ordering::Relaxed), restarts)
}

/// Serves one request. A crash is reported, blamed on the guest the request was made for (if
/// any) and the task restarted before this returns.
pub fn call(req: &Request) -> Result<Answer, ControlError> {
    let mut guard = task();
    let task = guard.as_mut().ok_or(ControlError::Unavailable)?;
    if !task.alive {
        return Err(ControlError::Unavailable);
    }
    let blame = task.guest_behind(req);
    if blame.is_some_and(|g| task.guests[usize::from(g)].quarantined) {
        return Err(ControlError::Quarantined);
    }
    CALLS.fetch_add(1, Ordering::Relaxed);
    match task.raw(req) {
        Ok(answer) => {
            if let Some(a) = task
                .assignments
                .iter_mut()
                .find(|a| a.guest == req.guest && a.vbdf == req.vbdf)
            {
                a.journal.record(req, answer.events());
            }
            Ok(answer)
        }
        Err(Ok(status)) => Err(ControlError::Refused(status)),
        Err(Err(crash)) => {
            let name = blame.map(|g| task.guests[usize::from(g)].name.clone());
            report(&crash, req, name.as_deref());
            if let Some(g) = blame {
                task.quarantine(g);
            }
            task.restart();
            Err(if blame.is_some() {
                ControlError::Blamed
            } else {
                ControlError::Crashed
            })
        }
    }
}

/// Builds the function `at` (with its sized `bars`, each with the address the guest finds
/// programmed at first, [`WireBar::guest_base`]) at (`guest`, `vbdf`) and records the
/// assignment for restarts. `bus_master_allowed`: the function's DMA is confined to the guest's
/// IOMMU domain, or the configuration allows assignment without one.
/// `id`: Vendor and Device ID to show instead of the function's own (an SR-IOV VF reads 0xFFFF
/// there; PCIe Base Spec r6.0 §9.3.4.1).
pub fn add_function(
    guest: u16,
    vbdf: Bdf,
    at: PciAddress,
    bars: &[WireBar],
    bus_master_allowed: bool,
    id: Option<(u16, u16)>,
    interrupt_line: u8,
) -> Result<FunctionLayout, (ControlError, String)> {
    let mut info = FunctionInfo {
        bdf: u32::from(at.bdf.routing_id()),
        segment: u32::from(at.segment),
        flags: if bus_master_allowed {
            FN_BUS_MASTER_ALLOWED
        } else {
            0
        } | if id.is_some() { FN_ID_OVERRIDE } else { 0 },
        id: id.map_or(0, |(v, d)| u32::from(v) | (u32::from(d) << 16)),
        interrupt_line: u32::from(interrupt_line),
        ..FunctionInfo::default()
    };
    for (slot, b) in info.bars.iter_mut().zip(bars) {
        *slot = *b;
        info.bar_count += 1;
    }
    let mut guard = task();
    let Some(task) = guard.as_mut().filter(|t| t.alive) else {
        return Err((ControlError::Unavailable, String::new()));
    };
    let req = Request::new(Op::AddFunction, guest, vbdf);
    task.write_shared(|p| p.function = info);
    CALLS.fetch_add(1, Ordering::Relaxed);
    match task.raw(&req) {
        Ok(answer) => {
            let out = task.read_shared(|p| p.function);
            task.assignments.push(Assignment {
                guest,
                vbdf,
                at,
                info,
                journal: Journal::new(),
                reset_epoch: 0,
                abandoned: false,
            });
            Ok(FunctionLayout {
                decode: answer.value as u16,
                msix: out.msix(),
            })
        }
        Err(Ok(status)) => {
            let why = task.read_shared(|p| p.message().to_string());
            Err((ControlError::Refused(status), why))
        }
        Err(Err(crash)) => {
            report(&crash, &req, None);
            task.restart();
            Err((ControlError::Crashed, String::new()))
        }
    }
}

/// The hypervisor's own read of physical configuration space once it has been handed over
/// (diagnostics such as the debug shell): `size` bytes at `offset` of the function `at` (any
/// segment the MCFG lists), read by the task. `None` if the task cannot serve it.
pub fn physical_read(at: PciAddress, offset: u16, size: u8) -> Option<u32> {
    let req = Request::physical_read(at.segment, at.bdf, offset, size);
    call(&req).ok().map(|a| a.value as u32)
}

/// Turns the physical MSI of guest `guest`'s function `at` off through the task: the request
/// the guest's own MSI changes use (`Op::PhysicalMsi` without Enable), made for the guest and
/// recorded in the function's journal, so a restarted task keeps it off. Why not, otherwise.
pub fn physical_msi_off(guest: u16, at: PciAddress) -> Result<(), String> {
    let vbdf = task()
        .as_ref()
        .and_then(|t| {
            t.assignments
                .iter()
                .find(|a| a.guest == guest && a.at == at)
                .map(|a| a.vbdf)
        })
        .ok_or_else(|| format!("{at} is not assigned to guest {guest} through the control task"))?;
    call(&Request::new(Op::PhysicalMsi, guest, vbdf))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The physical function at (`guest`, `vbdf`), as assigned.
#[cfg(feature = "selftest")]
pub fn assignment(guest: u16, vbdf: Bdf) -> Option<Bdf> {
    task().as_ref().and_then(|t| {
        t.assignments
            .iter()
            .find(|a| a.guest == guest && a.vbdf == vbdf)
            .map(|a| a.info.bdf())
    })
}

/// Whether the watchdog is armed for calls.
#[cfg(feature = "selftest")]
pub fn has_watchdog() -> bool {
    task().as_ref().is_some_and(|t| t.budget.is_some())
}

/// The kernel address a [`conduit_control_abi::FaultKind::WriteKernel`] test writes to.
#[cfg(feature = "selftest")]
pub fn kernel_probe_address() -> u64 {
    conduit_hw::idt::exception_name as *const () as u64
}

impl Task {
    fn write_shared(&mut self, f: impl FnOnce(&mut SharedPage)) {
        // SAFETY: the shared page is a frame owned by the task's address space, mapped through
        // the physical-memory window; the task is not running (one CPU, synchronous calls);
        // every bit pattern is a valid SharedPage.
        f(unsafe { &mut *self.space.shared() });
    }

    fn read_shared<R>(&self, f: impl FnOnce(&SharedPage) -> R) -> R {
        // SAFETY: as in `write_shared`; the page is only read.
        f(unsafe { &*self.space.shared() })
    }

    /// One call without crash handling: the answer, or the task's refusal (`Err(Ok)`), or how
    /// it failed (`Err(Err)`).
    fn raw(&mut self, req: &Request) -> Result<Answer, Result<Status, Crash>> {
        let (kernel_cr3, _) = x86_64::registers::control::Cr3::read_raw();
        let mut frame = Frame {
            rip: self.space.entry,
            rsp: layout::STACK_TOP,
            rflags: RFLAGS_BASE | if self.budget.is_some() { RFLAGS_IF } else { 0 },
            task_cr3: self.space.cr3(),
            kernel_cr3: kernel_cr3.start_address().as_u64(),
            args: req.encode(),
            ret: [0; 3],
        };
        if self.ports {
            gdt::reload_tr();
        }
        let us = match req.op {
            Op::Init | Op::AddFunction => BUILD_BUDGET_US,
            _ => BUDGET_US,
        };
        let budget = self.budget.map(|rate| rate.ticks_in_us(us));
        // No lock beyond TASK is needed around the task's configuration accesses (with mechanism
        // #1 a pair of port accesses, PCI Local Bus Spec 3.0 §3.2.2.3.2): once it is handed the
        // ports, the kernel's own accesses are requests to the task too (`pci::Access::HandedOver`),
        // serialised by TASK; before, only the boot CPU runs.
        entry::run(&mut frame, budget).map_err(|a| Err(Crash::Abort(a)))?;
        let [number, rsi, rdx] = frame.ret;
        match number {
            SYS_REPLY => {}
            SYS_PANIC => {
                let msg = self.read_shared(|p| p.message().to_string());
                return Err(Err(Crash::Panic(msg)));
            }
            n => return Err(Err(Crash::Protocol(format!("unknown system call {n}")))),
        }
        let Some(Reply { status, value }) = Reply::decode(rsi, rdx) else {
            return Err(Err(Crash::Protocol(format!("undefined status {rsi}"))));
        };
        if status != Status::Ok {
            return Err(Ok(status));
        }
        let mut answer = Answer {
            value,
            events: [None; MAX_EVENTS],
        };
        if req.op.has_events() {
            let decoded = self.read_shared(|p| {
                let mut out = [None; MAX_EVENTS];
                for (slot, e) in out.iter_mut().zip(p.events()) {
                    *slot = Some(e.map_err(|w| format!("malformed event {w:?}"))?);
                }
                Ok::<_, String>(out)
            });
            answer.events = decoded.map_err(|why| Err(Crash::Protocol(why)))?;
        }
        Ok(answer)
    }

    /// Sends Init (the task's first request in every life).
    fn start(&mut self) -> Result<(), String> {
        let init = self.init;
        self.write_shared(|p| p.init = init);
        let req = Request::new(Op::Init, 0, Bdf::from_routing_id(0));
        match self.raw(&req) {
            Ok(_) => Ok(()),
            Err(Ok(status)) => Err(format!("Init refused: {}", status.describe())),
            Err(Err(crash)) => {
                report(&crash, &req, None);
                Err("Init failed".to_string())
            }
        }
    }
}
