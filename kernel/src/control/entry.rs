//! Entering and leaving ring 3 (Intel SDM Vol. 3A §5.8.8 "Fast System Calls in 64-Bit Mode",
//! §6.12.1 "Exception- or Interrupt-Handler Procedures").
//!
//! A call is a `setjmp`/`longjmp` pair around the task:
//!
//! - `conduit_ctl_enter(frame)` saves the callee-saved registers and the frame pointer on the
//!   kernel stack, records RSP, loads the task's CR3, puts the request in RDI/RSI/RDX, the
//!   task's RIP in RCX and RFLAGS in R11, clears every other register (nothing of the kernel's
//!   leaks) and executes `SYSRETQ` (CPL 3, CS/SS from IA32_STAR).
//! - The task replies with `SYSCALL`: the CPU loads CS/SS from IA32_STAR, RIP from IA32_LSTAR
//!   (`conduit_ctl_syscall`) and masks RFLAGS with IA32_FMASK (IF, TF, DF, AC, NT, IOPL clear);
//!   RSP is still the task's, so the first instruction takes the kernel's back from the saved
//!   value. The reply registers go into the frame, CR3 back to the kernel's, and `enter` returns
//!   0.
//! - A fault at CPL 3 runs its IDT handler on the TSS's RSP0 stack; the handler records it and
//!   calls `conduit_ctl_abort`, which takes the same way back and returns 1. So does the
//!   hypervisor's tick when it finds the task past its deadline (the task runs with interrupts
//!   enabled; at CPL 3 with IOPL 0 it cannot disable them, SDM Vol. 1 §3.4.3.3).
//!
//! The task's RIP is always its fixed, canonical entry point, so SYSRET never faults in ring 0.

use conduit_hw::{gdt, msr, rdtsc};
use core::arch::global_asm;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use spin::Mutex;
use x86_64::PrivilegeLevel;
use x86_64::registers::control::Cr2;
use x86_64::structures::idt::InterruptStackFrame;

const IA32_EFER: u32 = 0xc000_0080;
const IA32_STAR: u32 = 0xc000_0081;
const IA32_LSTAR: u32 = 0xc000_0082;
const IA32_FMASK: u32 = 0xc000_0084;
const EFER_SCE: u64 = 1;
/// TF, IF, DF, IOPL, NT, AC.
const FMASK: u64 = (1 << 8) | (1 << 9) | (1 << 10) | (3 << 12) | (1 << 14) | (1 << 18);

/// What `enter` needs and what it gives back. Field offsets are used by the assembly below.
#[derive(Debug, Default, Clone, Copy)]
#[repr(C)]
pub struct Frame {
    pub rip: u64,
    pub rsp: u64,
    pub rflags: u64,
    pub task_cr3: u64,
    pub kernel_cr3: u64,
    pub args: [u64; 3],
    /// RDI, RSI, RDX of the task's `SYSCALL`.
    pub ret: [u64; 3],
}

const _: () = {
    assert!(core::mem::offset_of!(Frame, rip) == 0);
    assert!(core::mem::offset_of!(Frame, rsp) == 8);
    assert!(core::mem::offset_of!(Frame, rflags) == 16);
    assert!(core::mem::offset_of!(Frame, task_cr3) == 24);
    assert!(core::mem::offset_of!(Frame, kernel_cr3) == 32);
    assert!(core::mem::offset_of!(Frame, args) == 40);
    assert!(core::mem::offset_of!(Frame, ret) == 64);
};

/// The kernel's RSP inside `conduit_ctl_enter` while the task runs (its top holds the frame
/// pointer).
static KERNEL_RSP: AtomicU64 = AtomicU64::new(0);

global_asm!(
    ".global conduit_ctl_enter",
    "conduit_ctl_enter:",
    "push rbp", "push rbx", "push r12", "push r13", "push r14", "push r15",
    "push rdi",
    "mov [rip + {krsp}], rsp",
    "mov rax, [rdi + 24]",
    "mov cr3, rax",
    "mov rcx, [rdi + 0]",
    "mov r11, [rdi + 16]",
    "mov rsi, [rdi + 48]",
    "mov rdx, [rdi + 56]",
    "mov rsp, [rdi + 8]",
    "mov rdi, [rdi + 40]",
    "xor eax, eax", "xor ebx, ebx", "xor ebp, ebp",
    "xor r8d, r8d", "xor r9d, r9d", "xor r10d, r10d",
    "xor r12d, r12d", "xor r13d, r13d", "xor r14d, r14d", "xor r15d, r15d",
    "sysretq",
    ".global conduit_ctl_syscall",
    "conduit_ctl_syscall:",
    "mov rsp, [rip + {krsp}]",
    "mov rax, [rsp]",
    "mov rcx, [rax + 32]",
    "mov cr3, rcx",
    "mov [rax + 64], rdi",
    "mov [rax + 72], rsi",
    "mov [rax + 80], rdx",
    "xor eax, eax",
    "jmp 2f",
    ".global conduit_ctl_abort",
    "conduit_ctl_abort:",
    "mov rsp, [rip + {krsp}]",
    "mov rax, [rsp]",
    "mov rcx, [rax + 32]",
    "mov cr3, rcx",
    "mov eax, 1",
    "2:",
    "add rsp, 8",
    "pop r15", "pop r14", "pop r13", "pop r12", "pop rbx", "pop rbp",
    "ret",
    krsp = sym KERNEL_RSP,
);

unsafe extern "C" {
    fn conduit_ctl_enter(frame: *mut Frame) -> u64;
    fn conduit_ctl_syscall();
    fn conduit_ctl_abort() -> !;
}

/// Sets EFER.SCE, IA32_STAR, IA32_LSTAR and IA32_FMASK (SDM Vol. 3A §5.8.8). Must run before
/// any VMCS takes the host's EFER.
pub fn init_syscall() {
    let star = gdt::selectors().star();
    // SAFETY: the SYSCALL MSRs exist on every x86-64 CPU; STAR names the GDT's kernel and user
    // segments, LSTAR the entry below, FMASK only clears RFLAGS bits. EFER.SCE only enables the
    // instructions.
    unsafe {
        msr::write(IA32_STAR, star);
        msr::write(IA32_LSTAR, conduit_ctl_syscall as *const () as u64);
        msr::write(IA32_FMASK, FMASK);
        let efer = msr::read(IA32_EFER);
        msr::write(IA32_EFER, efer | EFER_SCE);
    }
}

/// How a call ended, when it did not end with the task's `SYSCALL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abort {
    /// An exception at CPL 3.
    Fault {
        vector: u8,
        rip: u64,
        rsp: u64,
        error: Option<u64>,
        cr2: u64,
    },
    /// The watchdog: the call ran past its deadline (TSC ticks used).
    Watchdog { ticks: u64 },
}

static ABORT: Mutex<Option<Abort>> = Mutex::new(None);
/// A call is in progress (the task may be running).
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// TSC at which the watchdog ends the call (0: no watchdog).
static DEADLINE: AtomicU64 = AtomicU64::new(0);
static STARTED: AtomicU64 = AtomicU64::new(0);

/// Runs the task once. `Ok(())`: it replied (registers in `frame.ret`); `Err`: it was ended.
/// `budget` is the watchdog's allowance in TSC ticks (None: no watchdog).
pub fn run(frame: &mut Frame, budget: Option<u64>) -> Result<(), Abort> {
    *ABORT.lock() = None;
    ACTIVE.store(true, Ordering::Release);
    let now = rdtsc();
    STARTED.store(now, Ordering::Relaxed);
    DEADLINE.store(
        budget.map_or(0, |b| now.saturating_add(b).max(1)),
        Ordering::Relaxed,
    );
    // SAFETY: the frame names the task's page tables (kernel mapped supervisor-only, so this code,
    // its stack, IDT/GDT/TSS and the syscall entry stay reachable), entry point and stack; SYSCALL
    // or the abort path return here with callee-saved registers and `frame.kernel_cr3` restored.
    let rc = unsafe { conduit_ctl_enter(frame) };
    DEADLINE.store(0, Ordering::Relaxed);
    ACTIVE.store(false, Ordering::Release);
    match rc {
        0 => Ok(()),
        _ => Err(ABORT.lock().take().unwrap_or(Abort::Watchdog { ticks: 0 })),
    }
}

/// An exception taken at CPL 3 (called by the IDT's handlers): records it and ends the call.
pub fn user_exception(vector: u8, frame: &InterruptStackFrame, error: Option<u64>) -> ! {
    if !ACTIVE.load(Ordering::Acquire) {
        // Only the task runs at CPL 3; without a call this cannot be it. Report as fatal.
        conduit_hw::console::emergency(format_args!(
            "CPL 3 exception {vector} at RIP {:#x} outside a control-task call",
            frame.instruction_pointer.as_u64()
        ));
        conduit_hw::power::fail(conduit_hw::power::FailCode::Exception(vector));
    }
    let cr2 = if vector == 14 { Cr2::read_raw() } else { 0 };
    *ABORT.lock() = Some(Abort::Fault {
        vector,
        rip: frame.instruction_pointer.as_u64(),
        rsp: frame.stack_pointer.as_u64(),
        error,
        cr2,
    });
    // KERNEL_RSP and ACTIVE are shared by all CPUs, yet they are this CPU's: `run` is reached
    // only through `Task::raw` (`&mut Task`), so the TASK mutex is held across each call, and
    // only the CPU running the task is at CPL 3 (the only way here).
    // SAFETY: a call is active, so KERNEL_RSP holds the stack of `conduit_ctl_enter`, which
    // returns from there; this handler's own frame (on RSP0) is abandoned and holds nothing.
    unsafe { conduit_ctl_abort() }
}

/// The hypervisor's tick arrived while the task ran (CPL 3; the tick is already acknowledged):
/// ends the call if it is past its deadline.
pub fn watchdog_tick(frame: &InterruptStackFrame) {
    let deadline = DEADLINE.load(Ordering::Relaxed);
    let at_cpl3 = frame.code_segment.rpl() == PrivilegeLevel::Ring3;
    let now = rdtsc();
    if at_cpl3 && ACTIVE.load(Ordering::Acquire) && deadline != 0 && now >= deadline {
        *ABORT.lock() = Some(Abort::Watchdog {
            ticks: now.wrapping_sub(STARTED.load(Ordering::Relaxed)),
        });
        // SAFETY: as in `user_exception` (the frame is this CPU's and at CPL 3, so this CPU
        // runs the task's call, under the TASK mutex).
        unsafe { conduit_ctl_abort() }
    }
}
