//! `hello64`: the long64 test guest that exercises every exit the hypervisor handles for a
//! well-behaved guest: CPUID (the hypervisor leaves, VMX hidden), HLT as yield, an allowed RDMSR
//! (IA32_EFER), a refused RDMSR (#GP injected into the guest, handled by its own IDT), the
//! hypercall console, preemption during a long busy loop, and the exit hypercall (code 0x64).
#![no_std]
#![no_main]

use conduit_guest::abi::{self, CPUID_HV_MAX_LEAF, CPUID1_ECX_HYPERVISOR, CPUID1_ECX_VMX};
use conduit_guest::{Gate, HypervisorId, Idt, exit, println};
use core::sync::atomic::{AtomicU64, Ordering};

conduit_guest::entry!(main);

/// IA32_EFER: on the hypervisor's allow list.
const IA32_EFER: u32 = 0xc000_0080;
/// Not an MSR the hypervisor allows: reading it must raise #GP in the guest.
const REFUSED_MSR: u32 = 0x1234;
/// Exit code on success (the contract's).
const EXIT_OK: u64 = 0x64;
/// Exit codes of failed checks (0xe0 + check).
const EXIT_CPUID: u64 = 0xe1;
const EXIT_GP: u64 = 0xe2;
const EXIT_UNEXPECTED: u64 = 0xe3;
/// Busy-loop iterations per quarter (20 million in all).
const QUARTER: u64 = 5_000_000;

/// #GPs the handler skipped, and the last error code.
static GP_COUNT: AtomicU64 = AtomicU64::new(0);
static GP_ERROR: AtomicU64 = AtomicU64::new(u64::MAX);

/// Vectors 0..=13: only #GP (13) is present; anything else ends in a triple fault.
static IDT: Idt<14> = Idt::new();

unsafe extern "C" {
    /// RDMSR of `msr` at the label `rdmsr_site` (2 bytes, skipped by the #GP handler).
    fn rdmsr_probe(msr: u32) -> u64;
    /// The #GP entry point.
    fn gp_handler();
}

core::arch::global_asm!(
    ".global rdmsr_probe",
    "rdmsr_probe:",
    "mov ecx, edi",
    "rdmsr_site:",
    "rdmsr",
    "shl rdx, 32",
    "or rax, rdx",
    "ret",
    "",
    // Stack at entry: error code, RIP, CS, RFLAGS, RSP, SS.
    ".global gp_handler",
    "gp_handler:",
    "push rax",
    "mov rax, [rsp + 8]",
    "mov [rip + {error}], rax",
    "lea rax, [rip + rdmsr_site]",
    "cmp [rsp + 16], rax",
    "jne 2f",
    "add qword ptr [rsp + 16], 2",
    "lock inc qword ptr [rip + {count}]",
    "pop rax",
    "add rsp, 8",
    "iretq",
    "2:",
    "mov rdi, [rsp + 16]",
    "and rsp, -16",
    "call {unexpected}",
    "ud2",
    error = sym GP_ERROR,
    count = sym GP_COUNT,
    unexpected = sym unexpected_gp,
);

/// A #GP anywhere but at the probe.
extern "C" fn unexpected_gp(rip: u64) -> ! {
    println!("self-check failed: unexpected #GP at RIP {rip:#x}");
    exit(EXIT_UNEXPECTED)
}

fn check_cpuid() {
    let id = HypervisorId::read();
    let signature_ok = id.signature == abi::CPUID_HV_SIGNATURE && id.max_leaf >= CPUID_HV_MAX_LEAF;
    let vmx_hidden = id.leaf1_ecx & CPUID1_ECX_VMX == 0;
    let hv_present = id.leaf1_ecx & CPUID1_ECX_HYPERVISOR != 0;
    if signature_ok && vmx_hidden && hv_present {
        println!("cpuid: signature ConduitHyprV ok, VMX hidden");
    } else {
        let sig = id.signature_text();
        println!(
            "self-check failed: cpuid: signature {:?} max leaf {:#x}, CPUID.1:ECX {:#x} (VMX bit 5 must be 0, bit 31 must be 1)",
            core::str::from_utf8(&sig).unwrap_or("?"),
            id.max_leaf,
            id.leaf1_ecx
        );
        exit(EXIT_CPUID);
    }
    if id.abi_version == abi::ABI_VERSION {
        println!("cpuid: abi version {}", id.abi_version);
    } else {
        println!(
            "self-check failed: cpuid: abi version {}, expected {}",
            id.abi_version,
            abi::ABI_VERSION
        );
        exit(EXIT_CPUID);
    }
}

fn check_msrs() {
    // SAFETY: IA32_EFER exists on every 64-bit CPU and is on the hypervisor's allow list.
    let efer = unsafe { conduit_guest::rdmsr(IA32_EFER) };
    println!("rdmsr IA32_EFER -> {efer:#x}");
    // SAFETY: the gate points to `gp_handler`, which takes a #GP (error code pushed) and returns
    // with IRETQ; no exception is delivered while the table is written (interrupts are off).
    unsafe {
        IDT.set(
            13,
            Gate::interrupt(gp_handler as *const () as u64, conduit_guest::cs()),
        );
        IDT.load();
    }
    let before = GP_COUNT.load(Ordering::SeqCst);
    // SAFETY: the #GP this raises is handled by `gp_handler`, which skips the RDMSR.
    let value = unsafe { rdmsr_probe(REFUSED_MSR) };
    if GP_COUNT.load(Ordering::SeqCst) == before + 1 {
        println!("rdmsr {REFUSED_MSR:#x} -> #GP");
        let code = GP_ERROR.load(Ordering::SeqCst);
        if code != 0 {
            println!("self-check failed: #GP error code {code:#x}, expected 0");
            exit(EXIT_GP);
        }
    } else {
        println!("self-check failed: rdmsr {REFUSED_MSR:#x} -> {value:#x} without #GP");
        exit(EXIT_GP);
    }
}

/// `n` iterations of a two-instruction loop the compiler cannot remove.
fn spin(n: u64) {
    // SAFETY: register arithmetic only.
    unsafe {
        core::arch::asm!("2:", "dec {n}", "jnz 2b", n = inout(reg) n => _, options(nomem, nostack));
    }
}

fn main() -> ! {
    println!("hello from hello64");
    check_cpuid();
    conduit_guest::hlt();
    println!("hlt returned");
    check_msrs();
    let result = conduit_guest::hc_console_write(b"hello64: hypercall console ok\n");
    if result != abi::HC_OK {
        println!("self-check failed: console write hypercall -> {result:#x}");
    }
    for quarter in 1..=4 {
        spin(QUARTER);
        println!("hello64: progress {quarter}/4");
    }
    println!("hello64: done");
    exit(EXIT_OK)
}
