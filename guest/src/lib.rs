//! What Conduit's 64-bit test guests share: the virtual 16550 console, hypercalls, CPUID and MSR
//! access, a small IDT, the entry point and the panic handler. The ABI is `conduit_abi`'s (prose in
//! `guest/README.md`).
//!
//! Guests are single-threaded and run with interrupts off; nothing here takes locks.
#![no_std]

use conduit_abi::{
    COM1_LSR, COM1_PORT, CPUID_HV_LEAF, CPUID_HV_VERSION_LEAF, HC_CONSOLE_WRITE, HC_EXIT, HC_YIELD,
    LSR_THR_EMPTY,
};
use core::arch::asm;
use core::cell::UnsafeCell;
use core::fmt;

pub use conduit_abi as abi;

/// Defines `_start` (in `.text.start`): aligns the stack the hypervisor gave (RSP = top of guest
/// memory) and calls `$main`, which must never return.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        core::arch::global_asm!(
            ".pushsection .text.start, \"ax\"",
            ".global _start",
            "_start:",
            "and rsp, -16",
            "call {main}",
            "ud2",
            ".popsection",
            main = sym __conduit_guest_main,
        );

        extern "C" fn __conduit_guest_main() -> ! {
            $main()
        }
    };
}

/// Prints to the console (UART), without a newline.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::console_fmt(format_args!($($arg)*))
    };
}

/// Prints a line to the console (UART).
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {
        $crate::console_fmt(format_args!("{}\n", format_args!($($arg)*)))
    };
}

// ------------------------------------------------------------------------------------------------
// Port I/O and the console
// ------------------------------------------------------------------------------------------------

/// `in al, dx`.
pub fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: port reads in a guest only reach the hypervisor's device model (or an I/O exit);
    // they touch no memory.
    unsafe {
        asm!("in al, dx", in("dx") port, out("al") value, options(nomem, nostack, preserves_flags))
    };
    value
}

/// `out dx, al`.
pub fn outb(port: u16, value: u8) {
    // SAFETY: as for `inb`: the write goes to the hypervisor, not to memory.
    unsafe {
        asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags))
    };
}

/// `in eax, dx`.
pub fn inl(port: u16) -> u32 {
    let value: u32;
    // SAFETY: as for `inb`.
    unsafe {
        asm!("in eax, dx", in("dx") port, out("eax") value, options(nomem, nostack, preserves_flags))
    };
    value
}

/// `out dx, eax`.
pub fn outl(port: u16, value: u32) {
    // SAFETY: as for `outb`.
    unsafe {
        asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags))
    };
}

/// `in ax, dx`.
pub fn inw(port: u16) -> u16 {
    let value: u16;
    // SAFETY: as for `inb`.
    unsafe {
        asm!("in ax, dx", in("dx") port, out("ax") value, options(nomem, nostack, preserves_flags))
    };
    value
}

/// `out dx, ax`.
pub fn outw(port: u16, value: u16) {
    // SAFETY: as for `outb`.
    unsafe {
        asm!("out dx, ax", in("dx") port, in("ax") value, options(nomem, nostack, preserves_flags))
    };
}

/// Writes one byte to the virtual 16550: waits (boundedly) for LSR.THRE, then writes THR.
pub fn putc(byte: u8) {
    for _ in 0..1000 {
        if inb(COM1_LSR) & LSR_THR_EMPTY != 0 {
            break;
        }
    }
    outb(COM1_PORT, byte);
}

/// The UART console as a `fmt::Write`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Console;

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        s.bytes().for_each(putc);
        Ok(())
    }
}

/// Used by [`print!`] and [`println!`].
pub fn console_fmt(args: fmt::Arguments<'_>) {
    // The console cannot fail.
    let _ = fmt::Write::write_fmt(&mut Console, args);
}

// ------------------------------------------------------------------------------------------------
// Hypercalls
// ------------------------------------------------------------------------------------------------

/// `vmcall` with RAX = `function`, RBX = `arg1`, RCX = `arg2`; returns RAX.
pub fn hypercall(function: u64, arg1: u64, arg2: u64) -> u64 {
    let result: u64;
    // SAFETY: VMCALL exits to the hypervisor, which only reads guest memory the arguments name
    // (the console write's buffer, which callers pass as a live slice). RBX is reserved by the
    // compiler, so the argument is swapped in and the original restored.
    unsafe {
        asm!(
            "xchg {arg1}, rbx",
            "vmcall",
            "xchg {arg1}, rbx",
            arg1 = inout(reg) arg1 => _,
            inout("rax") function => result,
            inout("rcx") arg2 => _,
            options(nostack),
        );
    }
    result
}

/// Hypercall 1: writes `bytes` through the hypervisor's console (the guest runs identity-mapped,
/// so the slice's address is its GPA). Returns the hypercall's result.
pub fn hc_console_write(bytes: &[u8]) -> u64 {
    hypercall(HC_CONSOLE_WRITE, bytes.as_ptr() as u64, bytes.len() as u64)
}

/// Hypercall 4: this guest's VM exits so far (this call's own included); `reason` is a basic
/// exit reason, or [`conduit_abi::HC_EXIT_COUNT_ALL`] for the total.
pub fn hc_exit_count(reason: u64) -> u64 {
    hypercall(conduit_abi::HC_EXIT_COUNT, reason, 0)
}

/// Hypercall 2: gives up the rest of the time slice.
pub fn hc_yield() -> u64 {
    hypercall(HC_YIELD, 0, 0)
}

/// Hypercall 3: ends the guest with `code`. Should the hypervisor return, says so and halts for
/// ever (boot tests forbid the line).
pub fn exit(code: u64) -> ! {
    let result = hypercall(HC_EXIT, code, 0);
    println!("self-check failed: exit hypercall returned {result:#x}");
    loop {
        hlt();
    }
}

// ------------------------------------------------------------------------------------------------
// CPU
// ------------------------------------------------------------------------------------------------

/// CPUID: `[eax, ebx, ecx, edx]`.
pub fn cpuid(leaf: u32, subleaf: u32) -> [u32; 4] {
    let r = core::arch::x86_64::__cpuid_count(leaf, subleaf);
    [r.eax, r.ebx, r.ecx, r.edx]
}

/// What CPUID says about the hypervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HypervisorId {
    /// EAX of leaf 0x4000_0000: the highest hypervisor leaf.
    pub max_leaf: u32,
    pub signature: [u8; 12],
    /// EAX of leaf 0x4000_0001.
    pub abi_version: u32,
    /// CPUID.1:ECX.
    pub leaf1_ecx: u32,
}

impl HypervisorId {
    /// Reads the leaves.
    pub fn read() -> Self {
        let [max_leaf, ebx, ecx, edx] = cpuid(CPUID_HV_LEAF, 0);
        Self {
            max_leaf,
            signature: conduit_abi::signature_bytes(ebx, ecx, edx),
            abi_version: cpuid(CPUID_HV_VERSION_LEAF, 0)[0],
            leaf1_ecx: cpuid(1, 0)[2],
        }
    }

    /// The signature as text (`?` for bytes that are not printable ASCII).
    pub fn signature_text(&self) -> [u8; 12] {
        self.signature
            .map(|b| if b.is_ascii_graphic() { b } else { b'?' })
    }
}

/// `hlt`. Under Conduit it yields (interrupts are off: on bare metal it would stop for ever).
pub fn hlt() {
    // SAFETY: HLT changes no memory and no register; the hypervisor resumes the guest after it.
    unsafe { asm!("hlt", options(nomem, nostack, preserves_flags)) };
}

/// `rdmsr`.
///
/// # Safety
/// Reading an MSR the CPU (or the hypervisor) does not allow raises #GP: the caller must have a
/// handler for it, or know the MSR is readable.
pub unsafe fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: the caller vouches for the MSR (or handles the #GP); RDMSR touches no memory.
    unsafe {
        asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags))
    };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// The current code segment selector.
pub fn cs() -> u16 {
    let cs: u16;
    // SAFETY: reads a segment register.
    unsafe { asm!("mov {0:x}, cs", out(reg) cs, options(nomem, nostack, preserves_flags)) };
    cs
}

// ------------------------------------------------------------------------------------------------
// PCI configuration mechanism #1 (PCI Local Bus Spec 3.0 §3.2.2.3.2), bus 0
// ------------------------------------------------------------------------------------------------

/// CONFIG_ADDRESS for register `offset` (dword-aligned) of device `dev`, function 0, bus 0,
/// with Enable (bit 31) set.
pub fn config_address(dev: u8, offset: u8) -> u32 {
    0x8000_0000 | (u32::from(dev) << 11) | u32::from(offset & 0xfc)
}

/// Reads the dword at `offset` of device `dev` on bus 0.
pub fn config_read(dev: u8, offset: u8) -> u32 {
    outl(0xcf8, config_address(dev, offset));
    inl(0xcfc)
}

/// Writes the dword at `offset` of device `dev` on bus 0.
pub fn config_write(dev: u8, offset: u8, value: u32) {
    outl(0xcf8, config_address(dev, offset));
    outl(0xcfc, value);
}

// ------------------------------------------------------------------------------------------------
// IDT
// ------------------------------------------------------------------------------------------------

/// A 64-bit IDT gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    attributes: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

impl Gate {
    /// A not-present gate.
    pub const MISSING: Self = Self {
        offset_low: 0,
        selector: 0,
        ist: 0,
        attributes: 0,
        offset_mid: 0,
        offset_high: 0,
        reserved: 0,
    };

    /// A present DPL-0 64-bit interrupt gate to `handler` in code segment `selector`.
    pub fn interrupt(handler: u64, selector: u16) -> Self {
        Self {
            offset_low: handler as u16,
            selector,
            ist: 0,
            attributes: 0x8e,
            offset_mid: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        }
    }
}

/// An IDT of `N` gates (vectors `0..N`), in a static.
#[derive(Debug)]
#[repr(C, align(16))]
pub struct Idt<const N: usize> {
    gates: UnsafeCell<[Gate; N]>,
}

// SAFETY: guests run on one CPU without interrupts; the gates are written only through `set`,
// whose contract excludes delivery through the table meanwhile.
unsafe impl<const N: usize> Sync for Idt<N> {}

impl<const N: usize> Idt<N> {
    /// Every gate missing.
    pub const fn new() -> Self {
        Self {
            gates: UnsafeCell::new([Gate::MISSING; N]),
        }
    }

    /// Sets the gate of `vector` (ignored beyond `N`).
    ///
    /// # Safety
    /// No exception may be delivered through this table while the gate is written.
    pub unsafe fn set(&self, vector: usize, gate: Gate) {
        // SAFETY: the caller guarantees nobody reads the gates meanwhile (one CPU, no delivery).
        let gates = unsafe { &mut *self.gates.get() };
        if let Some(g) = gates.get_mut(vector) {
            *g = gate;
        }
    }

    /// Loads the table into IDTR.
    ///
    /// # Safety
    /// Every present gate must point to a handler that can take its exception.
    pub unsafe fn load(&'static self) {
        let descriptor = Descriptor {
            limit: (N * core::mem::size_of::<Gate>() - 1) as u16,
            base: self.gates.get() as u64,
        };
        // SAFETY: the descriptor names this static table (which lives for ever); the caller
        // vouches for its gates.
        unsafe {
            asm!("lidt [{0}]", in(reg) &descriptor, options(readonly, nostack, preserves_flags))
        };
    }
}

impl<const N: usize> Default for Idt<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// The operand of LIDT.
#[repr(C, packed)]
struct Descriptor {
    limit: u16,
    base: u64,
}

// ------------------------------------------------------------------------------------------------
// Panics
// ------------------------------------------------------------------------------------------------

/// Exit code of a guest that panicked.
pub const PANIC_EXIT_CODE: u64 = 0xff;

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("self-check failed: panic: {info}");
    exit(PANIC_EXIT_CODE)
}
