//! `vplat`'s way into long mode and its exception and interrupt entry points.
//!
//! Multiboot 0.6.96 §3.2 enters the kernel in 32-bit protected mode with paging off. The
//! trampoline builds identity page tables for the first 4 GiB in 2 MiB pages (the top 64 MiB,
//! where the local APIC and the I/O APIC live, uncached: PCD | PWT), loads a GDT with a 64-bit
//! code segment and enables IA-32e mode the way the SDM describes it (Vol. 3A §10.8.5
//! "Initializing IA-32e Mode": CR4.PAE, CR3, IA32_EFER.LME, then CR0.PG), then calls `main`.
//!
//! Interrupt vectors [`VECTORS`] enter [`on_interrupt`] with the vector; #GP either resumes at
//! the address a probe registered in [`GP_RESUME`] (counting it in [`GP_COUNT`]), #UD likewise
//! with [`UD_RESUME`] and [`UD_COUNT`], or, like every other exception, ends the guest through
//! [`on_exception`].

use core::sync::atomic::{AtomicU64, Ordering};

/// Where a #GP resumes (0: none expected); cleared by the handler when it is used.
pub static GP_RESUME: AtomicU64 = AtomicU64::new(0);
/// #GP exceptions taken at a registered probe.
pub static GP_COUNT: AtomicU64 = AtomicU64::new(0);
/// Where a #UD resumes (0: none expected); cleared by the handler when it is used.
pub static UD_RESUME: AtomicU64 = AtomicU64::new(0);
/// #UD exceptions taken at a registered probe.
pub static UD_COUNT: AtomicU64 = AtomicU64::new(0);

core::arch::global_asm!(
    // The Multiboot header (§3.1.1): magic, flags (page-aligned modules, memory information),
    // checksum.
    ".pushsection .multiboot, \"a\"",
    ".balign 4",
    ".long 0x1badb002",
    ".long 0x3",
    ".long -(0x1badb002 + 0x3)",
    ".popsection",
    ".pushsection .bss.vplat_tables, \"aw\", @nobits",
    ".balign 4096",
    "vplat_pml4: .skip 4096",
    "vplat_pdpt: .skip 4096",
    "vplat_pd: .skip 4 * 4096",
    "vplat_stack: .skip 32768",
    "vplat_stack_top:",
    ".popsection",
    ".pushsection .rodata.vplat_gdt, \"a\"",
    ".balign 8",
    // Null, 64-bit code (0x08), flat data (0x10).
    "vplat_gdt: .quad 0, 0x00209a0000000000, 0x00cf92000000ffff",
    "vplat_gdtr: .word 23",
    ".long vplat_gdt",
    ".popsection",
    ".pushsection .text.start, \"ax\"",
    ".code32",
    ".global _start",
    "_start:",
    "cli",
    "cld",
    "mov esp, offset vplat_stack_top",
    "mov edi, eax",
    "mov esi, ebx",
    // PML4[0] -> PDPT; PDPT[0..4] -> the four page directories.
    "mov eax, offset vplat_pdpt",
    "or eax, 3",
    "mov [vplat_pml4], eax",
    "xor ecx, ecx",
    "2:",
    "mov eax, ecx",
    "shl eax, 12",
    "add eax, offset vplat_pd",
    "or eax, 3",
    "mov [vplat_pdpt + ecx * 8], eax",
    "inc ecx",
    "cmp ecx, 4",
    "jb 2b",
    // 2048 2 MiB pages: present, writable, PS; from 0xfc000000 also PCD | PWT.
    "xor ecx, ecx",
    "3:",
    "mov eax, ecx",
    "shl eax, 21",
    "or eax, 0x83",
    "cmp ecx, 2016",
    "jb 4f",
    "or eax, 0x18",
    "4:",
    "mov [vplat_pd + ecx * 8], eax",
    "inc ecx",
    "cmp ecx, 2048",
    "jb 3b",
    "lgdt [vplat_gdtr]",
    "mov eax, cr4",
    "or eax, 0x20",
    "mov cr4, eax",
    "mov eax, offset vplat_pml4",
    "mov cr3, eax",
    "push ecx",
    "mov ecx, 0xc0000080",
    "rdmsr",
    "or eax, 0x100",
    "wrmsr",
    "pop ecx",
    "mov eax, cr0",
    "or eax, 0x80000000",
    "mov cr0, eax",
    // A far return to the 64-bit code segment (EIP, then CS, as 32-bit stack slots).
    "mov eax, 0x08",
    "push eax",
    "mov eax, offset vplat_long",
    "push eax",
    "retf",
    ".code64",
    "vplat_long:",
    "mov ax, 0x10",
    "mov ds, ax",
    "mov es, ax",
    "mov ss, ax",
    "mov fs, ax",
    "mov gs, ax",
    "mov esp, offset vplat_stack_top",
    // main(magic, info): EDI and ESI still hold what the loader passed in EAX and EBX.
    "call {main}",
    "ud2",
    ".popsection",
    // Interrupt entry: the caller-saved registers around `on_interrupt(vector)`. The CPU pushed
    // 5 quadwords onto a 16-byte aligned stack; 9 more leave it aligned for the call.
    ".macro VPLAT_IRQ vec",
    ".global vplat_irq_\\vec",
    "vplat_irq_\\vec:",
    "push rax",
    "push rcx",
    "push rdx",
    "push rsi",
    "push rdi",
    "push r8",
    "push r9",
    "push r10",
    "push r11",
    "mov edi, \\vec",
    "call {on_interrupt}",
    "pop r11",
    "pop r10",
    "pop r9",
    "pop r8",
    "pop rdi",
    "pop rsi",
    "pop rdx",
    "pop rcx",
    "pop rax",
    "iretq",
    ".endm",
    "VPLAT_IRQ 64",
    "VPLAT_IRQ 65",
    "VPLAT_IRQ 66",
    "VPLAT_IRQ 80",
    "VPLAT_IRQ 81",
    "VPLAT_IRQ 255",
    // #GP (error code pushed): resume at GP_RESUME if a probe registered it.
    ".global vplat_gp",
    "vplat_gp:",
    "push rax",
    "mov rax, [rip + {resume}]",
    "test rax, rax",
    "jz 6f",
    "mov [rsp + 16], rax",
    "mov qword ptr [rip + {resume}], 0",
    "lock inc qword ptr [rip + {count}]",
    "pop rax",
    "add rsp, 8",
    "iretq",
    "6:",
    "mov edi, 13",
    "jmp vplat_fatal",
    // #UD (no error code): resume at UD_RESUME if a probe registered it.
    ".global vplat_ud",
    "vplat_ud:",
    "push rax",
    "mov rax, [rip + {ud_resume}]",
    "test rax, rax",
    "jz 7f",
    "mov [rsp + 8], rax",
    "mov qword ptr [rip + {ud_resume}], 0",
    "lock inc qword ptr [rip + {ud_count}]",
    "pop rax",
    "iretq",
    "7:",
    "mov edi, 6",
    "jmp vplat_fatal",
    ".macro VPLAT_EXC vec",
    ".global vplat_exc_\\vec",
    "vplat_exc_\\vec:",
    "mov edi, \\vec",
    "jmp vplat_fatal",
    ".endm",
    ".irp v, 0,1,2,3,4,5,7,8,9,10,11,12,14,16,17,18,19,20,21",
    "VPLAT_EXC \\v",
    ".endr",
    "vplat_fatal:",
    "and rsp, -16",
    "call {on_exception}",
    "ud2",
    main = sym super::main,
    on_interrupt = sym super::on_interrupt,
    on_exception = sym on_exception,
    resume = sym GP_RESUME,
    count = sym GP_COUNT,
    ud_resume = sym UD_RESUME,
    ud_count = sym UD_COUNT,
);

unsafe extern "C" {
    fn vplat_irq_64();
    fn vplat_irq_65();
    fn vplat_irq_66();
    fn vplat_irq_80();
    fn vplat_irq_81();
    fn vplat_irq_255();
    fn vplat_gp();
    fn vplat_ud();
    fn vplat_exc_0();
    fn vplat_exc_1();
    fn vplat_exc_2();
    fn vplat_exc_3();
    fn vplat_exc_4();
    fn vplat_exc_5();
    fn vplat_exc_7();
    fn vplat_exc_8();
    fn vplat_exc_9();
    fn vplat_exc_10();
    fn vplat_exc_11();
    fn vplat_exc_12();
    fn vplat_exc_14();
    fn vplat_exc_16();
    fn vplat_exc_17();
    fn vplat_exc_18();
    fn vplat_exc_19();
    fn vplat_exc_20();
    fn vplat_exc_21();
}

/// The vectors with an interrupt entry point.
pub const VECTORS: [u8; 6] = [0x40, 0x41, 0x42, 0x50, 0x51, 0xff];

static IDT: conduit_guest::Idt<256> = conduit_guest::Idt::new();

/// Fills and loads the IDT: exceptions 0-21 (#GP and #UD resumable by probes), and the interrupt
/// vectors of [`VECTORS`].
pub fn load_idt() {
    let irqs: [unsafe extern "C" fn(); 6] = [
        vplat_irq_64,
        vplat_irq_65,
        vplat_irq_66,
        vplat_irq_80,
        vplat_irq_81,
        vplat_irq_255,
    ];
    let exceptions: [(usize, unsafe extern "C" fn()); 20] = [
        (0, vplat_exc_0),
        (1, vplat_exc_1),
        (2, vplat_exc_2),
        (3, vplat_exc_3),
        (4, vplat_exc_4),
        (5, vplat_exc_5),
        (6, vplat_ud),
        (7, vplat_exc_7),
        (8, vplat_exc_8),
        (9, vplat_exc_9),
        (10, vplat_exc_10),
        (11, vplat_exc_11),
        (12, vplat_exc_12),
        (14, vplat_exc_14),
        (16, vplat_exc_16),
        (17, vplat_exc_17),
        (18, vplat_exc_18),
        (19, vplat_exc_19),
        (20, vplat_exc_20),
        (21, vplat_exc_21),
    ];
    let gate = |f: unsafe extern "C" fn()| conduit_guest::Gate::interrupt(f as usize as u64, 0x08);
    // SAFETY: interrupts are off and no exception is expected while the gates are written; every
    // gate points to an entry point above that handles its vector (with or without an error
    // code as the vector has one), and the table is a static.
    unsafe {
        for (vector, f) in VECTORS.iter().zip(irqs) {
            IDT.set(usize::from(*vector), gate(f));
        }
        for (vector, f) in exceptions {
            IDT.set(vector, gate(f));
        }
        IDT.set(13, gate(vplat_gp));
        IDT.load();
    }
}

/// An exception no probe expected: the guest reports it and ends.
extern "C" fn on_exception(vector: u64) -> ! {
    super::fail(format_args!("unexpected exception {vector}"))
}

/// `rdmsr`; `Err(())` if it raised #GP.
pub fn try_rdmsr(msr: u32) -> Result<u64, ()> {
    let before = GP_COUNT.load(Ordering::SeqCst);
    let (lo, hi): (u32, u32);
    // SAFETY: RDMSR reads a register (the hypervisor decides what); a #GP resumes at label 2
    // through the handler, which only changes the saved RIP. No memory of the program changes
    // besides the two statics.
    unsafe {
        core::arch::asm!(
            "lea {t}, [rip + 2f]",
            "mov [rip + {resume}], {t}",
            "rdmsr",
            "2:",
            "mov qword ptr [rip + {resume}], 0",
            t = out(reg) _,
            resume = sym GP_RESUME,
            in("ecx") msr,
            out("eax") lo,
            out("edx") hi,
        );
    }
    if GP_COUNT.load(Ordering::SeqCst) != before {
        return Err(());
    }
    Ok(u64::from(lo) | (u64::from(hi) << 32))
}

/// `wrmsr`; `Err(())` if it raised #GP.
pub fn try_wrmsr(msr: u32, value: u64) -> Result<(), ()> {
    let before = GP_COUNT.load(Ordering::SeqCst);
    // SAFETY: as in `try_rdmsr`; the MSRs written are the virtual platform's, whose effects the
    // callers expect.
    unsafe {
        core::arch::asm!(
            "lea {t}, [rip + 2f]",
            "mov [rip + {resume}], {t}",
            "wrmsr",
            "2:",
            "mov qword ptr [rip + {resume}], 0",
            t = out(reg) _,
            resume = sym GP_RESUME,
            in("ecx") msr,
            in("eax") value as u32,
            in("edx") (value >> 32) as u32,
        );
    }
    if GP_COUNT.load(Ordering::SeqCst) != before {
        return Err(());
    }
    Ok(())
}

/// `mov cr8, value`; `Err(())` if it raised #GP.
pub fn try_write_cr8(value: u64) -> Result<(), ()> {
    let before = GP_COUNT.load(Ordering::SeqCst);
    // SAFETY: CR8 is the local APIC's task priority; changing it only delays interrupts. A #GP
    // resumes at label 2 as in `try_rdmsr`.
    unsafe {
        core::arch::asm!(
            "lea {t}, [rip + 2f]",
            "mov [rip + {resume}], {t}",
            "mov cr8, {v}",
            "2:",
            "mov qword ptr [rip + {resume}], 0",
            t = out(reg) _,
            resume = sym GP_RESUME,
            v = in(reg) value,
        );
    }
    if GP_COUNT.load(Ordering::SeqCst) != before {
        return Err(());
    }
    Ok(())
}

/// `mov reg, cr8`.
pub fn read_cr8() -> u64 {
    let value: u64;
    // SAFETY: reading CR8 has no side effects.
    unsafe { core::arch::asm!("mov {}, cr8", out(reg) value, options(nomem, nostack)) };
    value
}

/// `xsetbv` of XCR0 (CR4.OSXSAVE must be set); `Err(())` if it raised #GP.
pub fn try_xsetbv(value: u64) -> Result<(), ()> {
    let before = GP_COUNT.load(Ordering::SeqCst);
    // SAFETY: as in `try_wrmsr`; the guest uses no extended state, so any accepted XCR0 is
    // harmless to it.
    unsafe {
        core::arch::asm!(
            "lea {t}, [rip + 2f]",
            "mov [rip + {resume}], {t}",
            "xsetbv",
            "2:",
            "mov qword ptr [rip + {resume}], 0",
            t = out(reg) _,
            resume = sym GP_RESUME,
            in("ecx") 0u32,
            in("eax") value as u32,
            in("edx") (value >> 32) as u32,
        );
    }
    if GP_COUNT.load(Ordering::SeqCst) != before {
        return Err(());
    }
    Ok(())
}
