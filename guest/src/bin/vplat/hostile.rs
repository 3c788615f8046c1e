//! `vplat hostile=<kind>`: one kind of hostile guest of the catalogue (`bochs-hostile`,
//! `docs/testing.md`). Each kind does one thing a guest must not get away with; the hypervisor
//! stops it (reported with the reason, RIP and GPA) or contains it (the guest sees what a bare
//! CPU without that feature would show it, here #UD or #GP, and goes on), while the other guests
//! keep running. A kind that is contained prints what it saw and exits with 0; a kind that must be
//! stopped prints `... went through` and exits with [`super::EXIT_FAIL`] if it ever gets past the
//! act.
//!
//! Kinds: `write-outside`, `exec-outside`, `exec-mmio` (the emulated ECAM window), `exec-apic`
//! (the local APIC page), `triple-fault`, `vmx`, `xcr0`, `syscall-msrs`, `foreign-ipi`,
//! `ipi-storm`, `init-storm` (with 2 vCPUs), `reset-cf9`, `reset-kbd`, `hlt-cli`, `rep-io`,
//! `config-fuzz`.

use super::boot::{GP_COUNT, UD_COUNT, UD_RESUME, try_rdmsr, try_wrmsr, try_xsetbv};
use super::{EXIT_FAIL, apic, count, window};
use conduit_guest::{exit, inl, outb, outl, println};
use core::sync::atomic::Ordering;

/// Far outside a 4 MiB guest, inside its identity map (4 GiB).
const OUTSIDE: u64 = 0x4000_0000;
/// The guest's emulated ECAM window (its MCFG).
const ECAM: u64 = 0xe000_0000;
/// The local APIC's page (xAPIC mode).
const APIC_PAGE: u64 = 0xfee0_0000;

/// Runs the kind named by `kind`.
pub fn run(kind: &[u8]) -> ! {
    let name = core::str::from_utf8(kind).unwrap_or("?");
    println!("hostile {name}: starting");
    match kind {
        b"write-outside" => {
            // SAFETY: deliberately outside the guest's memory: the hypervisor must stop it here.
            unsafe { (OUTSIDE as *mut u64).write_volatile(0xdead_beef) };
            went_through(name)
        }
        b"exec-outside" => jump(name, OUTSIDE),
        b"exec-mmio" => jump(name, ECAM),
        b"exec-apic" => jump(name, APIC_PAGE),
        b"triple-fault" => triple_fault(name),
        b"vmx" => vmx(name),
        b"xcr0" => xcr0(name),
        b"syscall-msrs" => syscall_msrs(name),
        b"foreign-ipi" | b"ipi-storm" | b"init-storm" => {
            // The local APIC software-enabled (SVR bit 8, spurious vector 0xff), as an OS does.
            apic::write(apic::SVR, 0x1ff);
            match kind {
                b"ipi-storm" => ipi_storm(name),
                b"init-storm" => init_storm(name),
                _ => foreign_ipi(name),
            }
        }
        b"reset-cf9" => {
            // Reset control register: full reset (bit 2) with system reset (bit 1).
            outb(0xcf9, 0x06);
            went_through(name)
        }
        b"reset-kbd" => {
            // The keyboard controller's pulse-reset command.
            outb(0x64, 0xfe);
            went_through(name)
        }
        b"hlt-cli" => loop {
            // SAFETY: halts with interrupts off for ever: only the operator ends this guest.
            unsafe { core::arch::asm!("cli", "hlt", options(nomem, nostack)) };
        },
        b"rep-io" => rep_io(name),
        b"config-fuzz" => config_fuzz(name),
        _ => {
            println!("hostile: unknown kind {name:?}");
            exit(EXIT_FAIL)
        }
    }
}

fn went_through(name: &str) -> ! {
    println!("hostile {name}: went through");
    exit(EXIT_FAIL)
}

/// Calls `target` as code.
fn jump(name: &str, target: u64) -> ! {
    // SAFETY: deliberately executes from memory that is not the guest's code: the hypervisor
    // must stop the guest at the fetch.
    unsafe { core::arch::asm!("call {t}", t = in(reg) target) };
    went_through(name)
}

/// An empty IDT, then an exception: #BP cannot be delivered (#GP), nor can that (#DF), nor that:
/// shutdown.
fn triple_fault(name: &str) -> ! {
    let idtr = [0u16; 5];
    // SAFETY: deliberately makes every exception undeliverable; the guest is not expected to
    // survive the INT3.
    unsafe {
        core::arch::asm!("lidt [{p}]", "int3", p = in(reg) idtr.as_ptr(), options(nostack));
    }
    went_through(name)
}

/// Runs one VMX instruction inside a #UD probe; whether it raised #UD.
macro_rules! ud_probe {
    ($insn:literal $(, $($operand:tt)*)?) => {{
        let before = UD_COUNT.load(Ordering::SeqCst);
        // SAFETY: the instruction is a VMX instruction, which a guest without VMX must see raise
        // #UD; the #UD handler resumes at label 2 (it only changes the saved RIP). Should it
        // not fault, its operands point at a zeroed buffer of this program.
        unsafe {
            core::arch::asm!(
                "lea {t}, [rip + 2f]",
                "mov [rip + {resume}], {t}",
                $insn,
                "2:",
                "mov qword ptr [rip + {resume}], 0",
                t = out(reg) _,
                resume = sym UD_RESUME,
                $($($operand)*)?
            );
        }
        UD_COUNT.load(Ordering::SeqCst) != before
    }};
}

/// Every VMX instruction: the guest's CPUID has no VMX, so each must raise #UD (VMXON and VMFUNC
/// by the CPU itself, the others after a VM exit, through the hypervisor).
fn vmx(name: &str) -> ! {
    let buf = [0u64; 4];
    let p = buf.as_ptr();
    let results = [
        ("VMXON", ud_probe!("vmxon [{p}]", p = in(reg) p)),
        ("VMPTRLD", ud_probe!("vmptrld [{p}]", p = in(reg) p)),
        ("VMCLEAR", ud_probe!("vmclear [{p}]", p = in(reg) p)),
        ("VMPTRST", ud_probe!("vmptrst [{p}]", p = in(reg) p)),
        (
            "VMREAD",
            ud_probe!("vmread {v}, {f}", v = out(reg) _, f = in(reg) 0x6c00u64),
        ),
        (
            "VMWRITE",
            ud_probe!("vmwrite {f}, {v}", f = in(reg) 0x6c00u64, v = in(reg) 0u64),
        ),
        ("VMLAUNCH", ud_probe!("vmlaunch")),
        ("VMRESUME", ud_probe!("vmresume")),
        ("VMXOFF", ud_probe!("vmxoff")),
        (
            "INVEPT",
            ud_probe!("invept {r}, [{p}]", r = in(reg) 1u64, p = in(reg) p),
        ),
        (
            "INVVPID",
            ud_probe!("invvpid {r}, [{p}]", r = in(reg) 1u64, p = in(reg) p),
        ),
        ("VMFUNC", ud_probe!("vmfunc", in("eax") 0u32)),
    ];
    let ud = results.iter().filter(|(_, ud)| *ud).count();
    for (insn, raised) in results {
        if !raised {
            println!("hostile {name}: {insn} did not raise #UD");
        }
    }
    println!(
        "hostile {name}: {} VMX instructions, {ud} raised #UD",
        results.len()
    );
    exit(if ud == results.len() { 0 } else { EXIT_FAIL })
}

/// XCR0 values the guest is not offered or that are architecturally invalid: each #GP.
fn xcr0(name: &str) -> ! {
    if conduit_guest::cpuid(1, 0)[2] & (1 << 26) == 0 {
        println!("hostile {name}: XSAVE not offered");
        exit(EXIT_FAIL)
    }
    // SAFETY: CR4.OSXSAVE only enables XGETBV/XSETBV/XSAVE; the guest uses no extended state.
    unsafe {
        core::arch::asm!(
            "mov {t}, cr4",
            "bts {t}, 18",
            "mov cr4, {t}",
            t = out(reg) _,
            options(nomem, nostack)
        )
    };
    let before = GP_COUNT.load(Ordering::SeqCst);
    let bad: [u64; 6] = [0, 0x2, 0x5, 0xe7, 1 << 9, 1 << 63];
    let refused = bad.iter().filter(|v| try_xsetbv(**v).is_err()).count();
    let gp = GP_COUNT.load(Ordering::SeqCst) - before;
    let valid = try_xsetbv(0x3).is_ok();
    println!(
        "hostile {name}: {} invalid XCR0 values, {refused} refused with #GP ({gp} #GP taken); 0x3 accepted: {valid}",
        bad.len()
    );
    exit(if refused == bad.len() && valid {
        0
    } else {
        EXIT_FAIL
    })
}

/// The SYSCALL/SYSENTER MSRs and KERNEL_GS_BASE aimed at hypervisor addresses: they are the
/// guest's own (the hypervisor switches them at every exit), so the guest reads its values back
/// after many exits and the hypervisor's own SYSCALL path (its control task) is not affected.
fn syscall_msrs(name: &str) -> ! {
    const MSRS: [(u32, &str, u64); 6] = [
        (0xc000_0082, "LSTAR", 0xffff_8000_0010_0000),
        (0xc000_0083, "CSTAR", 0xffff_8000_0020_0000),
        (0xc000_0084, "FMASK", 0x4_0700),
        (0xc000_0102, "KERNEL_GS_BASE", 0xffff_ffff_8000_0000),
        (0x175, "SYSENTER_ESP", 0xffff_8000_0030_0000),
        (0x176, "SYSENTER_EIP", 0xffff_8000_0040_0000),
    ];
    for (msr, reg, value) in MSRS {
        if try_wrmsr(msr, value).is_err() {
            println!("hostile {name}: WRMSR {reg} raised #GP");
            exit(EXIT_FAIL)
        }
    }
    // Many exits: each one runs the hypervisor with its own values loaded.
    for _ in 0..200 {
        conduit_guest::hc_yield();
    }
    let mut kept = 0;
    for (msr, reg, value) in MSRS {
        match try_rdmsr(msr) {
            Ok(v) if v == value => kept += 1,
            other => println!("hostile {name}: {reg} reads {other:x?}, not {value:#x}"),
        }
    }
    println!(
        "hostile {name}: LSTAR {:#x}, SYSENTER_EIP {:#x}, KERNEL_GS_BASE {:#x} written; after 200 yields {kept} of {} read back as written",
        MSRS[0].2,
        MSRS[5].2,
        MSRS[3].2,
        MSRS.len()
    );
    exit(if kept == MSRS.len() { 0 } else { EXIT_FAIL })
}

/// ICR delivery modes (SDM Vol. 3A §11.6.1).
const FIXED: u32 = 0 << 8;
const NMI: u32 = 4 << 8;
const INIT: u32 = 5 << 8;
const STARTUP: u32 = 6 << 8;
const LEVEL_ASSERT: u32 = 1 << 14;
const LOGICAL: u32 = 1 << 11;
const ALL_EXCLUDING_SELF: u32 = 3 << 18;

/// IPIs to APIC IDs this one-vCPU guest does not own: INIT, SIPI and NMI to ID 1, fixed to every
/// other physical ID and to every logical destination, and to all-excluding-self. None may reach
/// anyone; the vector must not come back to the sender.
fn foreign_ipi(name: &str) -> ! {
    let send = |dest: u32, low: u32| {
        apic::write(apic::ICR_HIGH, dest << 24);
        apic::write(apic::ICR_LOW, low);
    };
    send(1, INIT | LEVEL_ASSERT);
    send(1, STARTUP | 0x10);
    send(1, NMI | LEVEL_ASSERT);
    let mut sent = 3;
    for id in 1..=254 {
        send(id, FIXED | 0x41);
        sent += 1;
    }
    // Logical destinations that do not include this vCPU's LDR (0 after reset).
    for mask in [0x02, 0x80, 0xfe] {
        send(mask, LOGICAL | FIXED | 0x41);
        sent += 1;
    }
    send(0, ALL_EXCLUDING_SELF | FIXED | 0x41);
    send(0, ALL_EXCLUDING_SELF | INIT | LEVEL_ASSERT);
    sent += 2;
    for _ in 0..100 {
        window();
    }
    let back = count(0x41);
    println!(
        "hostile {name}: {sent} IPIs to APIC IDs it does not own (INIT, SIPI, NMI, fixed, logical, all-excluding-self); {back} came back"
    );
    exit(if back == 0 { 0 } else { EXIT_FAIL })
}

/// Self-IPIs as fast as the guest can send them, each taken: the storm slows only this guest.
fn ipi_storm(name: &str) -> ! {
    const N: u32 = 20_000;
    let before = count(0x41);
    for _ in 0..N {
        apic::ipi_to_self(0x41);
        window();
    }
    let taken = count(0x41) - before;
    println!("hostile {name}: {N} self-IPIs sent, {taken} taken");
    exit(if taken == N { 0 } else { EXIT_FAIL })
}

/// Where `init-storm` starts its second vCPU: a start-up IPI's vector is the page number
/// (SDM Vol. 3A §11.6.1), below 1 MiB and clear of the Multiboot information at 0x10000.
const AP_PAGE: u8 = 0x70;
/// The second vCPU's real-mode code at `AP_PAGE` × 4096: `hlt; jmp $-1` (with IF = 0 after INIT
/// only an NMI, INIT or start-up ends the HLT), then `iret`, its NMI handler.
const AP_CODE: [u8; 4] = [0xf4, 0xeb, 0xfd, 0xcf];

/// INIT, start-up and NMI IPIs to its own second vCPU (APIC ID 1) in a loop: each reaches it
/// (INIT: back to wait-for-SIPI; start-up: real mode at the `hlt` loop; NMI: through vector 2
/// of the real-mode IVT to the `iret`). The storm slows only this guest.
fn init_storm(name: &str) -> ! {
    const N: u32 = 300;
    let code = (u64::from(AP_PAGE) << 12) as *mut u8;
    // The NMI's IVT entry (vector 2 at linear 8): offset 3, segment AP_PAGE << 8.
    let nmi_vector = 8 as *mut u32;
    // SAFETY: the page at 0x70000 and the real-mode IVT at 0 are guest RAM this program does not
    // use (it is loaded at 1 MiB, its Multiboot information is at 0x10000), identity-mapped.
    unsafe {
        for (i, b) in AP_CODE.iter().enumerate() {
            code.add(i).write_volatile(*b);
        }
        nmi_vector.write_volatile((u32::from(AP_PAGE) << 24) | 3);
    }
    let send = |low: u32| {
        apic::write(apic::ICR_HIGH, 1 << 24);
        apic::write(apic::ICR_LOW, low);
    };
    for _ in 0..N {
        send(INIT | LEVEL_ASSERT);
        send(STARTUP | u32::from(AP_PAGE));
        send(NMI | LEVEL_ASSERT);
    }
    println!("hostile {name}: {N} INIT, {N} start-up and {N} NMI IPIs to its own vCPU 1");
    exit(0)
}

/// String I/O to emulated ports: not emulated, the guest is stopped with the port named.
fn rep_io(name: &str) -> ! {
    let buf = [b'x'; 16];
    // SAFETY: reads 16 bytes of `buf` and writes them to the UART's data port; the hypervisor
    // must stop the guest at the instruction.
    unsafe {
        core::arch::asm!(
            "rep outsb",
            in("dx") 0x3f8u16,
            inout("rsi") buf.as_ptr() => _,
            inout("rcx") buf.len() => _,
            options(nostack)
        )
    };
    went_through(name)
}

/// Configuration mechanism #1 with random addresses, sizes and values, mostly at the guest's own
/// function 00:01.0: its identity must survive, and absent functions keep reading all ones.
fn config_fuzz(name: &str) -> ! {
    let own = 0x8000_0800u32; // bus 0, device 1, function 0
    outl(0xcf8, own);
    let id = inl(0xcfc);
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    const N: u32 = 20_000;
    for _ in 0..N {
        let r = next();
        let function = if r & 1 == 0 {
            own
        } else {
            0x8000_0000 | ((r >> 8) as u32 & 0x00ff_ff00)
        };
        let offset = (r >> 32) as u32 & 0xfc;
        // Sometimes garbage in the reserved bits or without Enable.
        let cf8 = match (r >> 40) & 7 {
            0 => function | offset | 0x7f00_0003,
            1 => (function | offset) & !0x8000_0000,
            _ => function | offset,
        };
        outl(0xcf8, cf8);
        let port = 0xcfc + ((r >> 44) & 3) as u16;
        let value = (r >> 16) as u32;
        match (r >> 48) & 7 {
            0 => outb(port, value as u8),
            1 => conduit_guest::outw(port & !1, value as u16),
            2 => outl(0xcfc, value),
            3 => {
                conduit_guest::inb(port);
            }
            4 => {
                conduit_guest::inw(port & !1);
            }
            _ => {
                inl(0xcfc);
            }
        }
    }
    outl(0xcf8, own);
    let after = inl(0xcfc);
    outl(0xcf8, 0x8000_f800); // 00:1f.0: not the guest's
    let absent = inl(0xcfc);
    println!(
        "hostile {name}: {N} random configuration accesses; 00:01.0 reads {after:#010x} (before {id:#010x}), 00:1f.0 reads {absent:#x}"
    );
    exit(if after == id && absent == u32::MAX && id != u32::MAX {
        0
    } else {
        EXIT_FAIL
    })
}
