//! Crash reports, blame, quarantine and restart: how the core brings the control task back after
//! it failed, without the guests that did nothing noticing (see the module docs of [`super`]).

use super::{Abort, Crash, EPOCH, Task};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use conduit_control_abi::shared::{FN_QUIESCE, FN_REBUILD};
use conduit_control_abi::{HYPERVISOR, Op, Request};
use conduit_hw::idt;
use core::sync::atomic::Ordering;
use log::{error, info, warn};

/// Starts tried in a row (Init failing, nobody to blame) before the task is given up.
const MAX_FAILED_RESTARTS: u32 = 3;

/// Why a restart did not complete.
enum Failure {
    /// The task failed while rebuilding assignment `.0` or replaying its journal.
    Function(usize, String),
    /// Init failed: nobody to blame.
    Init(String),
}

/// What a completed restart did.
#[derive(Default)]
struct Rebuilt {
    /// Functions rebuilt with their guest's state.
    restored: usize,
    /// Requests replayed into them.
    replayed: usize,
    /// Functions rebuilt in their reset state (their guest notices).
    reset: usize,
    /// Functions of quarantined guests, quiesced.
    quarantined: usize,
}

/// Logs a crash with the request it was serving; `blamed`: the guest it is blamed on.
pub(super) fn report(crash: &Crash, req: &Request, blamed: Option<&str>) {
    let who = if req.guest == HYPERVISOR {
        String::from("the hypervisor")
    } else {
        format!("guest {}", req.guest)
    };
    let mut during = format!(
        "while serving {:?} for {who} at {} (offset {:#x}, size {}, value {:#x})",
        req.op, req.vbdf, req.offset, req.size, req.value
    );
    if let Some(name) = blamed {
        during.push_str(&format!(
            "; blamed on guest \"{name}\" (index {}), whose request it was",
            req.guest
        ));
    }
    match crash {
        Crash::Abort(Abort::Fault {
            vector,
            rip,
            rsp,
            error,
            cr2,
        }) => {
            let (mnemonic, name) = idt::exception_name(*vector);
            let code = error.map_or(String::new(), |e| format!(", error code {e:#x}"));
            let cr2 = if *vector == 14 {
                format!(" CR2 {cr2:#x}")
            } else {
                String::new()
            };
            error!(
                "control task faulted: {mnemonic} at RIP {rip:#x}{cr2} ({name}{code}, RSP {rsp:#x}) {during}"
            );
        }
        Crash::Abort(Abort::Watchdog { ticks }) => {
            error!("control task watchdog: no reply after {ticks} TSC ticks {during}")
        }
        Crash::Panic(msg) => error!("control task panic: {msg} {during}"),
        Crash::Protocol(why) => error!("control task broke the message protocol: {why} {during}"),
    }
}

impl Task {
    /// The guest a request is made for, if the task failing on it is that guest's doing.
    pub(super) fn guest_behind(&self, req: &Request) -> Option<u16> {
        (req.op.on_behalf_of_guest()
            && req.guest != HYPERVISOR
            && usize::from(req.guest) < self.guests.len())
        .then_some(req.guest)
    }

    /// Quarantines guest `g`'s functions: from now on its requests are not served, the
    /// interrupts its functions were routed are masked (their IRTEs stay the guest's and deliver
    /// nothing, so a message the device still sends reaches nobody), and the next restart
    /// quiesces them (built fresh and reset: bus mastering and MSI off) and tells the guest to
    /// drop its BAR mappings.
    pub(super) fn quarantine(&mut self, g: u16) {
        let Some(record) = self.guests.get_mut(usize::from(g)) else {
            return;
        };
        if record.quarantined {
            return;
        }
        record.quarantined = true;
        let name = record.name.clone();
        let mut n = 0;
        for a in self.assignments.iter().filter(|a| a.guest == g) {
            crate::guest::interrupts::quarantine_function(g, a.at);
            crate::irq::quarantine_intx(conduit_irq::GuestId(g), a.at);
            n += 1;
        }
        error!(
            "control: guest \"{name}\" blamed: its {n} function(s) are quarantined (not served any more, interrupts masked, reset at the restart); the other guests keep theirs"
        );
    }

    /// Restarts the task from its image and rebuilds every function (see [`Self::replay`]).
    /// A failure while rebuilding a function is its guest's: the guest is quarantined (a
    /// quarantined guest's function that still fails is abandoned) and the restart tried again;
    /// each retry quarantines or abandons one more, so the loop ends. The task is given up only
    /// after [`MAX_FAILED_RESTARTS`] failures of Init in a row, which nobody can be blamed for.
    pub(super) fn restart(&mut self) {
        if let Err(e) = self.space.refresh_kernel_slots() {
            self.alive = false;
            error!(
                "control task not restarted: its address space cannot share the kernel's ({e}); configuration requests fail from now on"
            );
            return;
        }
        let mut failures = 0;
        loop {
            self.space.reset();
            self.restarts += 1;
            EPOCH.fetch_add(1, Ordering::AcqRel);
            match self.replay() {
                Ok(r) => {
                    warn!(
                        "control task restarted (restart #{}): reloaded from its image; {} function(s) restored with their guests' state ({} request(s) replayed), {} reset, {} quarantined",
                        self.restarts, r.restored, r.replayed, r.reset, r.quarantined
                    );
                    return;
                }
                Err(Failure::Function(i, why)) => {
                    let a = &self.assignments[i];
                    let (guest, vbdf) = (a.guest, a.vbdf);
                    error!(
                        "control task restart #{} failed: {why}; blamed on guest {guest}",
                        self.restarts
                    );
                    if self.guests[usize::from(guest)].quarantined {
                        self.assignments[i].abandoned = true;
                        error!(
                            "control: guest {guest}'s quarantined {vbdf} is abandoned: it is not rebuilt any more"
                        );
                    } else {
                        self.quarantine(guest);
                    }
                }
                Err(Failure::Init(why)) => {
                    failures += 1;
                    error!(
                        "control task restart #{} failed (attempt {failures} of {MAX_FAILED_RESTARTS}): {why}",
                        self.restarts
                    );
                    if failures == MAX_FAILED_RESTARTS {
                        self.alive = false;
                        error!(
                            "control task given up after {MAX_FAILED_RESTARTS} failed restarts: configuration requests fail from now on"
                        );
                        return;
                    }
                }
            }
        }
    }

    /// Init, then every assignment in order: a quarantined guest's function is built fresh and
    /// quiet ([`FN_QUIESCE`]: decode only, bus mastering, MSI and MSI-X off on the device);
    /// any other is built without touching the device ([`FN_REBUILD`]) and its journal
    /// replayed (the replies' events are not acted on: the core's mappings and routes are still
    /// those the guest's requests made). A function whose journal overflowed, or whose replay is
    /// refused, is left in its reset state and its guest told
    /// ([`super::functions_reset_since`]).
    fn replay(&mut self) -> Result<Rebuilt, Failure> {
        self.start().map_err(Failure::Init)?;
        let epoch = EPOCH.load(Ordering::Acquire);
        let mut out = Rebuilt::default();
        for i in 0..self.assignments.len() {
            let a = &self.assignments[i];
            if a.abandoned {
                continue;
            }
            let (guest, vbdf, mut info) = (a.guest, a.vbdf, a.info);
            let quarantined = self.guests[usize::from(guest)].quarantined;
            let restorable = !quarantined && !a.journal.overflowed();
            info.flags |= if quarantined {
                FN_QUIESCE
            } else if restorable {
                FN_REBUILD
            } else {
                0
            };
            self.write_shared(|p| p.function = info);
            let add = Request::new(Op::AddFunction, guest, vbdf);
            match self.raw(&add) {
                Ok(_) => {}
                Err(Ok(status)) => {
                    warn!(
                        "control: guest {guest} {vbdf} ({}) not rebuilt: {}",
                        info.bdf(),
                        status.describe()
                    );
                    self.reset_function(i, epoch);
                    out.reset += 1;
                    continue;
                }
                Err(Err(crash)) => {
                    report(&crash, &add, None);
                    return Err(Failure::Function(
                        i,
                        format!("rebuilding {vbdf} ({}) of guest {guest} failed", info.bdf()),
                    ));
                }
            }
            if quarantined {
                self.reset_function(i, epoch);
                out.quarantined += 1;
                continue;
            }
            if !restorable {
                warn!(
                    "control: guest {guest} {vbdf} ({}) rebuilt in its reset state: it wrote more registers than are kept for a restart",
                    info.bdf()
                );
                self.reset_function(i, epoch);
                out.reset += 1;
                continue;
            }
            let requests: Vec<Request> = self.assignments[i].journal.replay(guest, vbdf).collect();
            let mut restored = true;
            for r in &requests {
                match self.raw(r) {
                    Ok(_) => out.replayed += 1,
                    Err(Ok(status)) => {
                        warn!(
                            "control: guest {guest} {vbdf} ({}): replaying {:?} at {:#x} refused ({}): the function is reset",
                            info.bdf(),
                            r.op,
                            r.offset,
                            status.describe()
                        );
                        let reset = Request::new(Op::ResetFunction, guest, vbdf);
                        if let Err(e) = self.raw(&reset) {
                            if let Err(crash) = &e {
                                report(crash, &reset, None);
                            }
                            return Err(Failure::Function(
                                i,
                                format!("resetting {vbdf} of guest {guest} failed"),
                            ));
                        }
                        self.reset_function(i, epoch);
                        out.reset += 1;
                        restored = false;
                        break;
                    }
                    Err(Err(crash)) => {
                        let name = self.guests[usize::from(guest)].name.clone();
                        report(&crash, r, Some(&name));
                        return Err(Failure::Function(
                            i,
                            format!("replaying guest \"{name}\"'s {:?} on {vbdf}", r.op),
                        ));
                    }
                }
            }
            if restored {
                out.restored += 1;
            }
        }
        if out.replayed > 0 {
            info!(
                "control: {} request(s) replayed into {} function(s)",
                out.replayed, out.restored
            );
        }
        Ok(out)
    }

    /// Assignment `i` came back in its reset state: its journal starts over and its guest drops
    /// the mappings it made for it.
    fn reset_function(&mut self, i: usize, epoch: u64) {
        let a = &mut self.assignments[i];
        a.journal.clear();
        a.reset_epoch = epoch;
    }
}
