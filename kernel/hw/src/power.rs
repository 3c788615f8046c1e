//! Leaving the machine: the end marker on the console, then the platform's way out.
//!
//! The way out is configuration, not guesswork: the image builder sets it per machine. QEMU's
//! `isa-debug-exit` (port 0xf4) makes QEMU exit with `(value << 1) | 1`; Bochs exits on the string
//! `Shutdown` written to port 0x8900; real hardware halts with the log as the report.

use crate::console;
use conduit_config::ExitMethod;
use core::sync::atomic::{AtomicU32, Ordering};
use x86_64::instructions::port::Port;

/// Written to `isa-debug-exit` on success: QEMU exits with status 33.
const QEMU_SUCCESS: u32 = 0x10;
/// Written to `isa-debug-exit` on failure: QEMU exits with status 35.
const QEMU_FAILURE: u32 = 0x11;
/// The Bochs shutdown port (Bochs' `iodev/unmapped.cc`).
const BOCHS_SHUTDOWN_PORT: u16 = 0x8900;

/// Encodes the configured [`ExitMethod`]: 0 halt, 1 Bochs, 0x1_0000 | port for QEMU.
static METHOD: AtomicU32 = AtomicU32::new(0);

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
    console::println(format_args!("CONDUIT EXIT: success"));
    leave(QEMU_SUCCESS)
}

/// Ends the run with a failure.
pub fn fail(code: FailCode) -> ! {
    console::emergency(format_args!(
        "CONDUIT EXIT: failure (code {:#x})",
        code.code()
    ));
    leave(QEMU_FAILURE)
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
