//! Leaving the machine: the end marker on the console, then the platform's way out.
//!
//! The way out is configuration, not guesswork: the image builder sets it per machine. QEMU's
//! `isa-debug-exit` (port 0xf4) makes QEMU exit with `(value << 1) | 1`; Bochs exits on the string
//! `Shutdown` written to port 0x8900; real hardware halts with the log as the report.

use crate::apic::{self, Ipi, IpiTarget, vectors};
use crate::console;
use crate::percpu::{self, CpuState};
use conduit_config::ExitMethod;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use x86_64::instructions::port::Port;

/// Written to `isa-debug-exit` on success: QEMU exits with status 33.
const QEMU_SUCCESS: u32 = 0x10;
/// Written to `isa-debug-exit` on failure: QEMU exits with status 35.
const QEMU_FAILURE: u32 = 0x11;
/// The Bochs shutdown port (Bochs' `iodev/unmapped.cc`).
const BOCHS_SHUTDOWN_PORT: u16 = 0x8900;

/// Encodes the configured [`ExitMethod`]: 0 halt, 1 Bochs, 0x1_0000 | port for QEMU.
static METHOD: AtomicU32 = AtomicU32::new(0);

/// Set once some CPU leaves the machine: every other CPU stops at its next NMI or
/// [`vectors::CALL`] interrupt ([`stop_if_leaving`]).
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Why the hypervisor gives up; printed in the end marker.
#[derive(Debug, Clone, Copy)]
pub enum FailCode {
    /// An exception in the hypervisor itself: the vector.
    Exception(u8),
    /// A Rust panic (a broken invariant).
    Panic,
    /// Boot cannot continue (no physical-memory mapping, no memory).
    Boot,
    /// A built-in self-test found the machine misbehaving.
    #[cfg(feature = "selftest")]
    SelfTest,
}

impl FailCode {
    fn code(self) -> u32 {
        match self {
            Self::Exception(v) => u32::from(v),
            Self::Panic => 0x100,
            Self::Boot => 0x101,
            #[cfg(feature = "selftest")]
            Self::SelfTest => 0x102,
        }
    }
}

/// Records how this machine is left; called once the configuration is known.
pub fn set_method(method: ExitMethod) {
    let v = match method {
        ExitMethod::Halt => 0,
        ExitMethod::BochsShutdown => 1,
        ExitMethod::QemuDebugExit { port } => 0x1_0000 | u32::from(port),
    };
    METHOD.store(v, Ordering::Release);
}

/// Ends the run successfully.
pub fn succeed() -> ! {
    // The marker first, under the console lock (a CPU stopped while holding it would keep it).
    console::println(format_args!("CONDUIT EXIT: success"));
    stop_others_or_halt();
    leave(QEMU_SUCCESS)
}

/// Ends the run with a failure.
pub fn fail(code: FailCode) -> ! {
    stop_others_or_halt();
    console::emergency(format_args!(
        "CONDUIT EXIT: failure (code {:#x})",
        code.code()
    ));
    leave(QEMU_FAILURE)
}

/// Halts this CPU for good if some CPU is leaving the machine: called by the NMI handler and by
/// the [`vectors::CALL`] handler (the way out of a guest that takes NMIs itself).
pub fn stop_if_leaving() {
    if STOPPING.load(Ordering::Acquire) {
        halt_here();
    }
}

fn halt_here() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}

/// Stops every other online CPU, so that none keeps running guests or touching devices after
/// the end marker: an NMI (taken even with interrupts disabled, in the hypervisor) and a
/// [`vectors::CALL`] IPI (an external-interrupt VM exit for a CPU in a guest, whose NMIs may go
/// to the guest). If another CPU is leaving already, this one only halts.
fn stop_others_or_halt() {
    x86_64::instructions::interrupts::disable();
    if STOPPING.swap(true, Ordering::AcqRel) {
        halt_here();
    }
    let me = percpu::current().index();
    for cpu in percpu::all().filter(|c| c.index() != me && c.state() == CpuState::Online) {
        let target = IpiTarget::Apic(cpu.apic_id());
        for ipi in [Ipi::Nmi, Ipi::Fixed(vectors::CALL)] {
            if let Err(e) = apic::send_ipi(target, ipi) {
                console::emergency(format_args!(
                    "cpu {}: not stopped ({ipi:?} IPI: {e})",
                    cpu.index()
                ));
            }
        }
    }
}

fn leave(qemu_value: u32) -> ! {
    crate::console::drain_unlocked();
    x86_64::instructions::interrupts::disable();
    match METHOD.load(Ordering::Acquire) {
        1 => {
            let mut port = Port::<u8>::new(BOCHS_SHUTDOWN_PORT);
            for b in b"Shutdown" {
                // SAFETY: port 0x8900 is Bochs' shutdown port; this path only runs when the
                // configuration says the machine is Bochs.
                unsafe { port.write(*b) };
            }
        }
        v if v & 0x1_0000 != 0 => {
            let mut port = Port::<u32>::new(v as u16);
            // SAFETY: the configuration names this port as QEMU's isa-debug-exit device.
            unsafe { port.write(qemu_value) };
        }
        _ => {}
    }
    loop {
        x86_64::instructions::hlt();
    }
}
