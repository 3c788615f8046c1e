//! The guest commands: `vms`, `vcpu`, `ept`, `stop`, `restart`. Each reads the guest's live
//! structures: its state and statistics, its VMCS (made current for the read, between time
//! slices), its EPT. The CPU that runs the guest does it (`sched::remote::with_guest`: at once on
//! this CPU, else posted to that CPU between two of its slices); the lines are written from there.

use super::say;
use crate::guest::{Guest, Guests};
use crate::sched::remote::{self, RoundTrip};
use alloc::string::String;
use conduit_clock::Rate;
use conduit_hw::time;
use conduit_hw::vmx::vmcs::FieldError;
use conduit_pci::ConfigAccess as _;
use conduit_vmx::describe::{
    AccessRightsText, ActivityText, EventText, FlagNames, InterruptibilityText,
};
use conduit_vmx::exit::{ExitReason, InterruptionInfo};
use conduit_vmx::fields::{Control32, ReadOnly32, ReadOnlyNatural};
use conduit_vmx::guest_state::{GuestState, SegReg};
use core::fmt::Write as _;

const MIB: u64 = 1 << 20;

/// Runs `work` on guest `id` where it runs; a request the guest's CPU did not carry out is
/// reported. Returns the round trip when another CPU carried it out.
fn on_guest(
    guests: &Guests,
    id: usize,
    work: impl FnOnce(&mut Guest, &Guests) + Send + 'static,
) -> Option<RoundTrip> {
    match remote::with_guest(guests, id, work) {
        Ok(ticks) => ticks,
        Err(e) => {
            let name = guests.list.get(id).map_or("?", |s| s.name.as_str());
            say!("error: guest `{name}`: {e}");
            None
        }
    }
}

/// `vms`: every guest with its state, memory, time in the guest, exits by reason and the CPU
/// its vCPUs run on.
pub fn vms(guests: &Guests) {
    let tsc = guests
        .host
        .as_ref()
        .map(|h| conduit_hw::smp::lock_serving(h).tsc);
    let runnable = guests.list.iter().filter(|s| s.runnable()).count();
    match &guests.no_vmx {
        Some(why) => say!("no guest runs on this machine: {why}"),
        None => say!(
            "{} guest(s), {runnable} runnable, {} not created; TSC {} ({})",
            guests.list.len(),
            guests.refused.len(),
            Rated(tsc),
            time::Origin
        ),
    }
    let lost = crate::sched::cpus::lost_kicks();
    if lost > 0 {
        say!("  {lost} IPI(s) to a guest's CPU for its interrupt could not be sent");
    }
    for (i, slot) in guests.list.iter().enumerate() {
        let placement = crate::sched::placement_text(slot);
        on_guest(guests, i, move |g, _| vm(g, tsc, &placement));
    }
    for r in &guests.refused {
        say!("  {}: not created ({})", r.name, r.reason);
    }
}

/// The lines of `vms` for one guest; `placement`: where it runs.
fn vm(g: &mut Guest, tsc: Option<Rate>, placement: &str) {
    let mut restarts = String::new();
    if g.restarts > 0 {
        let _ = write!(restarts, ", restarted {} time(s)", g.restarts);
    }
    let stats = g.stats();
    let nobody = g.messages_to_nobody();
    if nobody > 0 {
        let _ = write!(restarts, ", {nobody} interrupt message(s) to nobody");
    }
    say!(
        "  {}: {}; {} MiB at host {:#x}, VPID {}, {} in guest{restarts}",
        g.name,
        g.state_text(),
        g.memory_size() / MIB,
        g.memory_host(),
        g.vcpus[0].vpid,
        Duration(stats.tsc_in_guest, tsc)
    );
    let mut by_reason = String::new();
    for (name, n) in stats.nonzero() {
        let sep = if by_reason.is_empty() { "" } else { ", " };
        let _ = write!(by_reason, "{sep}{name}: {n}");
    }
    say!("    exits: {} ({by_reason})", stats.total_exits());
    if g.vcpus.len() > 1 {
        for c in &g.vcpus {
            say!(
                "    vCPU {}: {}, VPID {}, {} in guest, {} exits, {} NMI(s) injected, {} start-up IPI(s) taken",
                c.index,
                if c.started() {
                    "started"
                } else {
                    "waiting for a start-up IPI"
                },
                c.vpid,
                Duration(c.stats.tsc_in_guest, tsc),
                c.stats.total_exits(),
                c.events.nmis,
                c.starts
            );
        }
        let r = &g.round_trips;
        if let Some(mean) = r.mean() {
            say!(
                "    IPI round trips: {}, min {}, mean {}, max {}",
                r.count,
                Duration(r.min, tsc),
                Duration(mean, tsc),
                Duration(r.max, tsc)
            );
        }
    }
    say!("    {placement}");
    if !g.devices.is_empty() {
        let mut functions = String::new();
        for bdf in &g.devices {
            let command = crate::pci::get()
                .map(|pci| pci.with_segment(bdf.segment, |cfg| cfg.read16(bdf.bdf, 4)))
                .unwrap_or(0xffff);
            let sep = if functions.is_empty() { "" } else { ", " };
            let _ = write!(functions, "{sep}{bdf} (Command {command:#06x})");
        }
        say!("    functions: {functions}");
        say!(
            "    device interrupts routed to it: {}",
            crate::irq::guest_interrupts(g.id())
        );
    }
}

/// A TSC rate, or that there is none.
struct Rated(Option<Rate>);

impl core::fmt::Display for Rated {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(rate) => write!(f, "{rate}"),
            None => f.write_str("rate unknown"),
        }
    }
}

/// TSC ticks as milliseconds at the TSC's rate (as ticks without one).
struct Duration(u64, Option<Rate>);

impl core::fmt::Display for Duration {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let Duration(ticks, rate) = *self;
        let Some(rate) = rate else {
            return write!(f, "{ticks} TSC ticks");
        };
        let us = rate.us_in_ticks(ticks);
        write!(f, "{}.{:03} ms", us / 1000, us % 1000)
    }
}

/// `vcpu <guest>`: the guest-state area of its VMCS, decoded, with the pending events.
pub fn vcpu(guests: &Guests, id: usize) {
    on_guest(guests, id, |g, _| {
        // Only a vCPU of this CPU (the one that runs vCPU 0) has its VMCS loadable here.
        if !g.here(g.current) {
            g.current = 0;
        }
        if let Err(e) = dump_vcpu(g) {
            say!("error: cannot read the VMCS of `{}`: {e}", g.name);
        }
    });
}

fn dump_vcpu(g: &Guest) -> Result<(), FieldError> {
    let mut v = g.load_vmcs().map_err(|fail| FieldError {
        field: "VMPTRLD",
        write: false,
        fail,
    })?;
    let s = GuestState::read_from(&mut v)?;
    let entry = InterruptionInfo(v.get(Control32::EntryInterruptionInfo)?);
    let entry_error = v.get(Control32::EntryExceptionErrorCode)?;
    let exit = ExitReason(v.get(ReadOnly32::ExitReason)?);
    let qualification = v.get(ReadOnlyNatural::ExitQualification)?;
    say!(
        "vcpu of {} (VPID {}, {}, VMCS {}):",
        g.name,
        g.vcpu().vpid,
        g.state_text(),
        if g.launched() {
            "launched"
        } else {
            "not launched"
        }
    );
    say!("  RIP    {:#018x}  {}", s.rip, where_in_image(g, &s));
    say!(
        "  RSP    {:#018x}  RFLAGS {:#018x} {}",
        s.rsp,
        s.rflags,
        FlagNames::rflags(s.rflags)
    );
    say!("  CR0    {:#018x} {}", s.cr0, FlagNames::cr0(s.cr0));
    say!("  CR3    {:#018x}", s.cr3);
    say!("  CR4    {:#018x} {}", s.cr4, FlagNames::cr4(s.cr4));
    say!("  EFER   {:#018x} {}", s.efer, FlagNames::efer(s.efer));
    for r in [
        SegReg::Cs,
        SegReg::Ss,
        SegReg::Ds,
        SegReg::Es,
        SegReg::Fs,
        SegReg::Gs,
        SegReg::Tr,
        SegReg::Ldtr,
    ] {
        let seg = s.segment(r);
        say!(
            "  {:<4}   {:#06x} base {:#018x} limit {:#010x} ar {:#07x} ({})",
            r.name(),
            seg.selector,
            seg.base,
            seg.limit,
            seg.access_rights,
            AccessRightsText(seg.ar())
        );
    }
    say!(
        "  GDTR   base {:#018x} limit {:#06x}   IDTR base {:#018x} limit {:#06x}",
        s.gdtr.base,
        s.gdtr.limit,
        s.idtr.base,
        s.idtr.limit
    );
    say!(
        "  activity {}; interruptibility {}; pending debug exceptions {:#x}",
        ActivityText(s.activity_state),
        InterruptibilityText(s.interruptibility),
        s.pending_debug_exceptions
    );
    let queued = if g.gp_queued() {
        "; a #GP is queued for the entry after"
    } else {
        ""
    };
    say!(
        "  event to inject at the next entry: {}{queued}",
        EventText {
            info: entry,
            error_code: entry_error
        }
    );
    let timer = match g.vcpu().events.timer() {
        Some((vector, left)) => alloc::format!("vector {vector:#x} in {left} us"),
        None => String::from("not armed"),
    };
    let held = if g.vcpu().events.waiting() {
        ", one waits for an interrupt window"
    } else {
        ""
    };
    say!(
        "  virtual interrupts: {} injected{held}; virtual timer {timer}",
        g.vcpu().events.injected
    );
    if g.launched() {
        say!(
            "  last exit: {} (reason {}), qualification {qualification:#x}",
            exit.name(),
            exit.basic_raw()
        );
    } else {
        say!("  last exit: none (never entered since its VMCS was programmed)");
    }
    let r = &g.vcpu().regs.gpr;
    say!(
        "  RAX {:#x} RBX {:#x} RCX {:#x} RDX {:#x} RSI {:#x} RDI {:#x} RBP {:#x}",
        r[0],
        r[3],
        r[1],
        r[2],
        r[6],
        r[7],
        r[5]
    );
    say!(
        "  R8 {:#x} R9 {:#x} R10 {:#x} R11 {:#x} R12 {:#x} R13 {:#x} R14 {:#x} R15 {:#x}",
        r[8],
        r[9],
        r[10],
        r[11],
        r[12],
        r[13],
        r[14],
        r[15]
    );
    Ok(())
}

/// Where the instruction pointer is: the image segment holding CS.base + RIP (guests start
/// identity-mapped, so that linear address is a GPA), or that it is outside the image.
fn where_in_image(g: &Guest, s: &GuestState) -> String {
    let linear = s.cs.base.wrapping_add(s.rip);
    let segment = g
        .spec()
        .segments
        .iter()
        .find(|seg| (seg.gpa..seg.gpa.saturating_add(seg.mem_len)).contains(&linear));
    match segment {
        Some(seg) => alloc::format!(
            "(CS.base+RIP {linear:#x}: in image segment [{:#x}, {:#x}))",
            seg.gpa,
            seg.gpa + seg.mem_len
        ),
        None => alloc::format!("(CS.base+RIP {linear:#x}: outside the image's segments)"),
    }
}

/// `ept <guest> <gpa>`: the walk of `gpa` through the guest's EPT, level by level.
pub fn ept(guests: &Guests, id: usize, gpa: u64) {
    on_guest(guests, id, move |g, _| ept_walk(g, gpa));
}

fn ept_walk(g: &Guest, gpa: u64) {
    let walk = match g.ept_walk(gpa) {
        Ok(w) => w,
        Err(e) => {
            say!("error: cannot walk GPA {gpa:#x} of `{}`: {e}", g.name);
            return;
        }
    };
    say!(
        "EPT of {} (EPTP {:#x}), GPA {gpa:#x}, {} level(s) read:",
        g.name,
        g.eptp(),
        walk.steps().len()
    );
    for step in walk.steps() {
        say!("  {step}");
    }
    let base = g.memory_host();
    match walk.translation() {
        Some(t) => {
            let inside = (base..base + g.memory_size()).contains(&t.phys);
            say!(
                "  GPA {gpa:#x} -> HPA {:#x} ({:?} leaf, {:?}, {}), {} the guest's memory [{base:#x}, {:#x})",
                t.phys,
                t.page_size,
                t.attributes.memory_type,
                AccessText(t.attributes.access),
                if inside { "inside" } else { "OUTSIDE" },
                base + g.memory_size()
            );
        }
        None => say!("  GPA {gpa:#x} is not mapped"),
    }
}

/// EPT rights as `RWX` letters.
struct AccessText(conduit_paging::Access);

impl core::fmt::Display for AccessText {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        use conduit_paging::Access;
        for (flag, c) in [
            (Access::READ, 'R'),
            (Access::WRITE, 'W'),
            (Access::EXECUTE, 'X'),
        ] {
            f.write_char(if self.0.contains(flag) { c } else { '-' })?;
        }
        Ok(())
    }
}

/// `stop <guest>`: it is not entered again; memory, EPT and VMCS stay for `restart`.
pub fn stop(guests: &Guests, id: usize) {
    let ticks = on_guest(guests, id, |g, _| stop_one(g));
    round_trip(guests, id, ticks);
}

fn stop_one(g: &mut Guest) {
    if g.state != crate::guest::State::Runnable {
        say!(
            "error: guest `{}` is not running ({}); `restart {}` starts it again",
            g.name,
            g.state_text(),
            g.name
        );
        return;
    }
    let quiesced = g.stop_by_operator();
    say!(
        "stopped {}: it is not entered again; its memory, EPT and IOMMU domain stay until it is destroyed",
        g.name
    );
    if quiesced.is_empty() {
        say!("  no function is assigned to it: nothing to quiesce");
    }
    for (bdf, command) in quiesced {
        match command {
            Some(c) => say!(
                "  {bdf} quiesced: bus mastering off (Command {c:#06x}); still assigned to {}",
                g.name
            ),
            None => say!("  {bdf} did not answer: it could not be quiesced"),
        }
    }
}

/// `restart <guest>`: the guest starts again from its image in its own memory and VMCS, built
/// by the CPU that runs it.
pub fn restart(guests: &Guests, id: usize) {
    let ticks = on_guest(guests, id, |g, guests| {
        let Some(host) = guests.host.as_ref() else {
            return;
        };
        let result = g.restart(&mut conduit_hw::smp::lock_serving(host));
        match result {
            Ok(()) => {
                say!(
                    "restarted {} from its image (entry {:?}); restarts so far: {}",
                    g.name,
                    g.spec().entry,
                    g.restarts
                );
                if !g.devices.is_empty() {
                    say!(
                        "  its functions stay assigned, with bus mastering off until its driver turns it on"
                    );
                }
            }
            Err(e) => say!(
                "error: restart of `{}` failed: {e}; it stays stopped",
                g.name
            ),
        }
    });
    round_trip(guests, id, ticks);
}

/// For a command another CPU carried out: which CPU, and the request's round trip (posted, IPI,
/// carried out between two slices, seen done here).
fn round_trip(guests: &Guests, id: usize, trip: Option<RoundTrip>) {
    if let (Some(t), Some(slot)) = (trip, guests.list.get(id)) {
        say!(
            "  carried out by cpu {}: request round trip {} TSC ticks, of which the command itself {} and the cross-CPU request {}",
            slot.placed.cpu,
            t.total,
            t.work,
            t.total.saturating_sub(t.work)
        );
    }
}
