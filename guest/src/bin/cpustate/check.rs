//! What `cpustate_a` and `cpustate_b` run (guest/README.md): each loads its own pattern into the
//! CPU state a hypervisor must switch between guests, gives the CPU away, and checks the state is
//! still its own when it runs again.
//!
//! 1. XSETBV with invalid values (x87 clear, AVX without SSE, XCR1, an unsupported bit) must each
//!    raise #GP, caught by its own IDT, with XCR0 unchanged; then XCR0 = x87|SSE|AVX.
//! 2. Writes its own STAR, LSTAR (a bogus entry point), CSTAR, FMASK, KERNEL_GS_BASE and TSC_AUX,
//!    and checks that SWAPGS exchanges GS.base with KERNEL_GS_BASE.
//! 3. [`ROUNDS`] rounds: XRSTOR of a pattern (seed, round) into x87 ST0-7, XMM0-15 and the upper
//!    halves of YMM0-15, DR0-DR3 and CR2 set; the CPU given away (odd rounds: the yield hypercall;
//!    even rounds: busy until the VMX-preemption timer took a slice); a configuration read
//!    through the hypervisor's control task; XSAVE and compare everything, with the MSRs and XCR0.
//!
//! Prints one line per step; any difference is a `self-check failed:` line and exit code 0xe4.

use conduit_guest::{Gate, Idt, exit, println};
use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};

/// Rounds of load, give away, check.
const ROUNDS: u64 = 40;
/// Basic exit reason of the VMX-preemption timer (SDM Vol. 3D, Appendix C).
const EXIT_PREEMPTION: u64 = 52;
const EXIT_MISMATCH: u64 = 0xe4;
const EXIT_SETUP: u64 = 0xe5;

const IA32_GS_BASE: u32 = 0xc000_0101;
/// The MSRs the hypervisor switches between guests (docs/cpu-state.md).
const MSRS: [(u32, &str); 6] = [
    (0xc000_0081, "STAR"),
    (0xc000_0082, "LSTAR"),
    (0xc000_0083, "CSTAR"),
    (0xc000_0084, "FMASK"),
    (0xc000_0102, "KERNEL_GS_BASE"),
    (0xc000_0103, "TSC_AUX"),
];

/// XSETBV #GPs the handler skipped.
static GP_COUNT: AtomicU64 = AtomicU64::new(0);
/// Vectors 0..=13: only #GP (13) is present.
static IDT: Idt<14> = Idt::new();

/// A 64-byte aligned XSAVE area, large enough for x87|SSE|AVX (832 bytes).
#[repr(C, align(64))]
struct Area([u8; 1024]);

unsafe extern "C" {
    /// XSETBV of EDX:EAX = `value` into XCR`ecx`, at the label `xsetbv_site` (3 bytes, skipped
    /// by the #GP handler).
    fn xsetbv_probe(ecx: u32, value: u64);
    fn cpustate_gp_handler();
}

core::arch::global_asm!(
    ".global xsetbv_probe",
    "xsetbv_probe:",
    "mov ecx, edi",
    "mov rax, rsi",
    "mov rdx, rsi",
    "shr rdx, 32",
    "xsetbv_site:",
    "xsetbv",
    "ret",
    "",
    // Stack at entry: error code, RIP, CS, RFLAGS, RSP, SS.
    ".global cpustate_gp_handler",
    "cpustate_gp_handler:",
    "push rax",
    "lea rax, [rip + xsetbv_site]",
    "cmp [rsp + 16], rax",
    "jne 2f",
    "add qword ptr [rsp + 16], 3",
    "lock inc qword ptr [rip + {count}]",
    "pop rax",
    "add rsp, 8",
    "iretq",
    "2:",
    "mov rdi, [rsp + 16]",
    "and rsp, -16",
    "call {unexpected}",
    "ud2",
    count = sym GP_COUNT,
    unexpected = sym unexpected_gp,
);

extern "C" fn unexpected_gp(rip: u64) -> ! {
    println!("self-check failed: unexpected #GP at RIP {rip:#x}");
    exit(EXIT_SETUP)
}

fn xgetbv() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: XGETBV of XCR0 reads a register (CR4.OSXSAVE is set before any call).
    unsafe { asm!("xgetbv", in("ecx") 0, out("eax") lo, out("edx") hi, options(nomem, nostack)) };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// # Safety
/// The MSR exists and takes `value` (or the #GP is wanted).
unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: guaranteed by the caller.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32,
            options(nomem, nostack))
    };
}

fn rdmsr(msr: u32) -> u64 {
    // SAFETY: only MSRs the hypervisor lets guests read (the switched ones, GS.base).
    unsafe { conduit_guest::rdmsr(msr) }
}

fn swapgs() {
    // SAFETY: exchanges GS.base and KERNEL_GS_BASE; this guest uses neither for memory access.
    unsafe { asm!("swapgs", options(nomem, nostack, preserves_flags)) };
}

/// The pattern word `k` of kind `kind` (1 x87, 2 XMM, 3 YMM upper, 4 DR, 5 CR2) in `round`.
fn word(seed: u64, round: u64, kind: u64, k: u64) -> u64 {
    (seed << 56) | (round << 40) | (kind << 32) | (k << 16) | 0x5a5a
}

/// A canonical address from a pattern word (DR0-DR3 and CR2 hold linear addresses).
fn canonical(w: u64) -> u64 {
    w & 0x0000_7fff_ffff_fff0
}

/// The XRSTOR image of round `round`: legacy region (FCW 0x37f, all tags valid, MXCSR 0x1f80,
/// ST0-7 and XMM0-15), XSTATE_BV = x87|SSE|AVX, YMM upper halves at `avx_offset`.
fn fill(area: &mut Area, seed: u64, round: u64, avx_offset: usize) {
    let a = &mut area.0;
    a.fill(0);
    a[0..2].copy_from_slice(&0x037fu16.to_le_bytes());
    a[4] = 0xff;
    a[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
    for i in 0..8 {
        let at = 32 + 16 * i;
        a[at..at + 8].copy_from_slice(&word(seed, round, 1, i as u64).to_le_bytes());
        a[at + 8..at + 10].copy_from_slice(&((seed << 8) as u16 | i as u16).to_le_bytes());
    }
    for i in 0..16 {
        for (kind, base) in [(2, 160), (3, avx_offset)] {
            let at = base + 16 * i;
            a[at..at + 8].copy_from_slice(&word(seed, round, kind, 2 * i as u64).to_le_bytes());
            a[at + 8..at + 16]
                .copy_from_slice(&word(seed, round, kind, 2 * i as u64 + 1).to_le_bytes());
        }
    }
    a[512..520].copy_from_slice(&7u64.to_le_bytes());
}

fn xrstor(area: &Area) {
    // SAFETY: the area is 64-byte aligned with a valid header (XSTATE_BV ⊆ XCR0 = 7, XCOMP_BV 0)
    // and MXCSR; it loads only registers the compiler does not use (soft-float target).
    unsafe {
        asm!("xrstor64 [{0}]", in(reg) area.0.as_ptr(), in("eax") 7, in("edx") 0,
            options(nostack, readonly))
    };
}

fn xsave(area: &mut Area) {
    area.0.fill(0);
    // SAFETY: the area is 64-byte aligned and large enough for XCR0 = 7.
    unsafe {
        asm!("xsave64 [{0}]", in(reg) area.0.as_mut_ptr(), in("eax") 7, in("edx") 0,
            options(nostack))
    };
}

fn set_debug(seed: u64, round: u64) {
    let d: [u64; 5] =
        core::array::from_fn(|k| canonical(word(seed, round, 4 + (k == 4) as u64, k as u64)));
    // SAFETY: DR7 enables no breakpoint, so DR0-DR3 arm nothing; CR2 is only a record of the last
    // page fault.
    unsafe {
        asm!("mov dr0, {0}", "mov dr1, {1}", "mov dr2, {2}", "mov dr3, {3}", "mov cr2, {4}",
            in(reg) d[0], in(reg) d[1], in(reg) d[2], in(reg) d[3], in(reg) d[4],
            options(nomem, nostack))
    };
}

fn get_debug() -> [u64; 5] {
    let mut d = [0u64; 5];
    // SAFETY: reads registers.
    unsafe {
        asm!("mov {0}, dr0", "mov {1}, dr1", "mov {2}, dr2", "mov {3}, dr3", "mov {4}, cr2",
            out(reg) d[0], out(reg) d[1], out(reg) d[2], out(reg) d[3], out(reg) d[4],
            options(nomem, nostack))
    };
    d
}

fn fail(round: u64, what: &str, i: usize, got: u64, want: u64) -> ! {
    println!("self-check failed: round {round}: {what}{i} = {got:#018x}, expected {want:#018x}");
    exit(EXIT_MISMATCH)
}

/// Compares the saved state with the loaded pattern, region by region.
fn compare(round: u64, saved: &Area, loaded: &Area, avx_offset: usize) {
    let q = |a: &Area, at: usize| u64::from_le_bytes(a.0[at..at + 8].try_into().unwrap_or([0; 8]));
    let t = |a: &Area, at: usize| u64::from(u16::from_le_bytes([a.0[at + 8], a.0[at + 9]]));
    for i in 0..8 {
        let at = 32 + 16 * i;
        if q(saved, at) != q(loaded, at) || t(saved, at) != t(loaded, at) {
            fail(round, "ST", i, q(saved, at), q(loaded, at));
        }
    }
    for (name, base) in [("XMM", 160), ("YMM_hi", avx_offset)] {
        for i in 0..16 {
            for half in [0, 8] {
                let at = base + 16 * i + half;
                if q(saved, at) != q(loaded, at) {
                    fail(round, name, i, q(saved, at), q(loaded, at));
                }
            }
        }
    }
}

/// Gives the CPU away: odd rounds yield, even rounds spin until a preemption-timer exit.
fn give_away(round: u64) -> bool {
    if round % 2 == 1 {
        conduit_guest::hc_yield();
        return false;
    }
    let before = conduit_guest::hc_exit_count(EXIT_PREEMPTION);
    while conduit_guest::hc_exit_count(EXIT_PREEMPTION) == before {
        spin(20_000);
    }
    true
}

fn spin(n: u64) {
    // SAFETY: register arithmetic only.
    unsafe { asm!("2:", "dec {n}", "jnz 2b", n = inout(reg) n => _, options(nomem, nostack)) };
}

/// A configuration read of 00:01.0's IDs (mechanism #1): the control task answers it.
fn config_ids() -> u32 {
    conduit_guest::config_read(1, 0)
}

fn setup_xsave(seed: u64) {
    let [_, _, ecx, _] = conduit_guest::cpuid(1, 0);
    let [xcr0_lo, _, _, _] = conduit_guest::cpuid(0xd, 0);
    if ecx & (1 << 26) == 0 || ecx & (1 << 28) == 0 || xcr0_lo & 7 != 7 {
        println!(
            "self-check failed: no XSAVE/AVX: CPUID.1:ECX {ecx:#x}, CPUID.D.0:EAX {xcr0_lo:#x}"
        );
        exit(EXIT_SETUP);
    }
    // CR4: OSFXSR (9), OSXMMEXCPT (10), OSXSAVE (18). CR0: EM (2) and TS (3) clear, MP (1) set.
    // SAFETY: enables the instructions this guest uses next; nothing else depends on them.
    unsafe {
        asm!(
            "mov rax, cr4", "or rax, {cr4}", "mov cr4, rax",
            "mov rax, cr0", "and rax, {cr0_clear}", "or rax, 2", "mov cr0, rax",
            cr4 = const (1 << 9) | (1 << 10) | (1 << 18),
            cr0_clear = const !0xc_u64 as i64,
            out("rax") _, options(nomem, nostack),
        );
        IDT.set(
            13,
            Gate::interrupt(cpustate_gp_handler as *const () as u64, conduit_guest::cs()),
        );
        IDT.load();
    }
    let invalid: [(u32, u64); 4] = [(0, 0x6), (0, 0x5), (1, 0x7), (0, 0x7 | (1 << 62))];
    for (ecx, value) in invalid {
        let before = GP_COUNT.load(Ordering::SeqCst);
        // SAFETY: the #GP is wanted; the handler skips the XSETBV.
        unsafe { xsetbv_probe(ecx, value) };
        if GP_COUNT.load(Ordering::SeqCst) != before + 1 {
            println!("self-check failed: XSETBV XCR{ecx} := {value:#x} did not raise #GP");
            exit(EXIT_SETUP);
        }
    }
    let unchanged = xgetbv();
    // SAFETY: a valid XCR0 (the CPU has x87, SSE and AVX): no #GP expected.
    unsafe { xsetbv_probe(0, 7) };
    let now = xgetbv();
    if unchanged != 1 || now != 7 || GP_COUNT.load(Ordering::SeqCst) != 4 {
        println!(
            "self-check failed: XCR0 {unchanged:#x} after the refused values, {now:#x} after XSETBV 0x7"
        );
        exit(EXIT_SETUP);
    }
    println!(
        "xsetbv: 4 invalid values refused with #GP (XCR0 stays 0x1); XCR0 = 0x7 (seed {seed})"
    );
}

/// This guest's values of the switched MSRs (LSTAR: an entry point that does not exist).
fn msr_values(seed: u64) -> [u64; 6] {
    [
        0x0023_0010_0000_0000 | (seed << 3),
        0xffff_ffff_dead_0000 | (seed << 4),
        0xffff_ffff_cafe_0000 | (seed << 4),
        0x4700 | seed,
        0x0000_7000_0000_0000 | (seed << 12),
        0x1000 + seed,
    ]
}

fn setup_msrs(seed: u64) -> usize {
    let tsc_aux = conduit_guest::cpuid(0x8000_0001, 0)[3] & (1 << 27) != 0;
    let n = if tsc_aux { 6 } else { 5 };
    let values = msr_values(seed);
    for (&(msr, _), &v) in MSRS.iter().zip(&values).take(n) {
        // SAFETY: each MSR exists and takes its value (canonical addresses, reserved bits clear).
        unsafe { wrmsr(msr, v) };
    }
    // SWAPGS: GS.base (through the VMCS) and KERNEL_GS_BASE (the MSR itself) are exchanged.
    let gs = 0x0000_6000_0000_0000 | (seed << 12);
    // SAFETY: GS.base takes a canonical address.
    unsafe { wrmsr(IA32_GS_BASE, gs) };
    swapgs();
    let (gs_after, kgs_after) = (rdmsr(IA32_GS_BASE), rdmsr(MSRS[4].0));
    swapgs();
    if gs_after != values[4] || kgs_after != gs {
        println!(
            "self-check failed: after SWAPGS GS.base {gs_after:#x} (expected {:#x}), KERNEL_GS_BASE {kgs_after:#x} (expected {gs:#x})",
            values[4]
        );
        exit(EXIT_SETUP);
    }
    println!(
        "msrs: {n} written (LSTAR {:#x}); SWAPGS exchanged GS.base and KERNEL_GS_BASE",
        values[1]
    );
    n
}

/// Runs every check with pattern `seed` (1 or 2); exits with code `0x40 + seed`.
pub fn run(name: &str, seed: u64) -> ! {
    println!("hello from {name}");
    setup_xsave(seed);
    let n_msrs = setup_msrs(seed);
    let avx_offset = conduit_guest::cpuid(0xd, 2)[1] as usize;
    let first_ids = config_ids();
    let (loaded, saved) = (&mut Area([0; 1024]), &mut Area([0; 1024]));
    let (mut yields, mut preemptions) = (0, 0);
    for round in 0..ROUNDS {
        fill(loaded, seed, round, avx_offset);
        xrstor(loaded);
        set_debug(seed, round);
        if give_away(round) {
            preemptions += 1;
        } else {
            yields += 1;
        }
        let ids = config_ids();
        xsave(saved);
        let debug = get_debug();
        compare(round, saved, loaded, avx_offset);
        for (i, &d) in debug.iter().enumerate() {
            let want = canonical(word(seed, round, 4 + (i == 4) as u64, i as u64));
            if d != want {
                fail(
                    round,
                    if i == 4 { "CR" } else { "DR" },
                    if i == 4 { 2 } else { i },
                    d,
                    want,
                );
            }
        }
        for (i, (&(msr, name), &v)) in MSRS.iter().zip(&msr_values(seed)).take(n_msrs).enumerate() {
            let got = rdmsr(msr);
            if got != v {
                println!(
                    "self-check failed: round {round}: {name} = {got:#x}, expected {v:#x} ({i})"
                );
                exit(EXIT_MISMATCH);
            }
        }
        let xcr0 = xgetbv();
        if xcr0 != 7 || ids != first_ids {
            println!(
                "self-check failed: round {round}: XCR0 {xcr0:#x}, configuration read {ids:#010x} (first {first_ids:#010x})"
            );
            exit(EXIT_MISMATCH);
        }
    }
    println!(
        "intact after {ROUNDS} rounds ({yields} yields, {preemptions} preemptions): x87 ST0-7, XMM0-15, YMM0-15, DR0-3, CR2, XCR0 0x7, {n_msrs} MSRs"
    );
    println!(
        "control task answered {ROUNDS} configuration reads of 00:01.0 with LSTAR {:#x} loaded: {:04x}:{:04x}",
        msr_values(seed)[1],
        first_ids & 0xffff,
        first_ids >> 16
    );
    exit(0x40 + seed)
}
