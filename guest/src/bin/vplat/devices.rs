//! `vplat`'s checks of the I/O APIC (82093AA datasheet §3.2; version 0x20 as in Intel's PCH), the
//! 16550's interrupt through it, nonsense writes to both, MSRs and XCR0 values the hypervisor must
//! refuse with #GP, x2APIC mode (SDM Vol. 3A §11.12), and power-off through the sleep control
//! register (ACPI 6.5 §4.8.3.7).

use super::apic::{self, MSR_APIC_BASE};
use super::boot::{try_rdmsr, try_wrmsr, try_xsetbv};
use super::{AUTO_EOI, check, count, fail, window};
use conduit_guest::{inb, outb, println};
use core::sync::atomic::Ordering;

const IOAPIC: usize = 0xfec0_0000;
const IOREGSEL: usize = 0x00;
const IOWIN: usize = 0x10;
const IOAPIC_EOI: usize = 0x40;
const REMOTE_IRR: u32 = 1 << 14;
const LEVEL: u32 = 1 << 15;
const MASKED: u32 = 1 << 16;
const UART_PIN: u8 = 4;

const COM1: u16 = 0x3f8;
const IER: u16 = COM1 + 1;
const IIR_FCR: u16 = COM1 + 2;
const LCR: u16 = COM1 + 3;
const MCR: u16 = COM1 + 4;
const LSR: u16 = COM1 + 5;
const SCR: u16 = COM1 + 7;
const IER_THRE: u8 = 0x02;
const MCR_OUT2: u8 = 0x08;

fn mmio_write(offset: usize, value: u32) {
    let reg = (IOAPIC + offset) as *mut u32;
    // SAFETY: the page at 0xFEC00000 is the I/O APIC's (identity-mapped, uncached): the write
    // reaches the device model, not memory.
    unsafe { reg.write_volatile(value) }
}

fn mmio_read(offset: usize) -> u32 {
    let reg = (IOAPIC + offset) as *const u32;
    // SAFETY: as in `mmio_write`.
    unsafe { reg.read_volatile() }
}

fn ioread(index: u32) -> u32 {
    mmio_write(IOREGSEL, index);
    mmio_read(IOWIN)
}

fn iowrite(index: u32, value: u32) {
    mmio_write(IOREGSEL, index);
    mmio_write(IOWIN, value);
}

/// Redirection entry of `pin`: low half (vector, mode, flags), high half 0 (APIC ID 0).
fn redirect(pin: u8, low: u32) {
    iowrite(0x11 + 2 * u32::from(pin), 0);
    iowrite(0x10 + 2 * u32::from(pin), low);
}

fn entry(pin: u8) -> u32 {
    ioread(0x10 + 2 * u32::from(pin))
}

/// Version, then the UART's THRE interrupt through pin 4 edge- and level-triggered.
pub fn ioapic() {
    let id = ioread(0);
    let version = ioread(1);
    redirect(UART_PIN, 0x50);
    let n = count(0x50);
    outb(MCR, MCR_OUT2);
    outb(IER, IER_THRE);
    window();
    let taken = count(0x50) - n;
    let iir = inb(IIR_FCR);
    outb(IER, 0);
    window();
    let again = count(0x50) - n;
    check(
        taken == 1 && again == 1,
        format_args!("ioapic edge: taken {taken}, then {again}"),
    );
    println!(
        "ioapic: ID {id:#x}, version {version:#010x}; pin 4 edge on 0x50: the UART's THRE interrupt (IER 0x02, MCR OUT2) taken once, IIR {iir:#04x}"
    );

    redirect(UART_PIN, 0x51 | LEVEL);
    let n = count(0x51);
    AUTO_EOI.store(false, Ordering::SeqCst);
    outb(IER, IER_THRE);
    window();
    let taken = count(0x51) - n;
    let in_service = entry(UART_PIN);
    // Reading IIR clears the THRE interrupt: the line goes low before the EOI.
    let iir = inb(IIR_FCR);
    outb(IER, 0);
    apic::eoi();
    AUTO_EOI.store(true, Ordering::SeqCst);
    let after = entry(UART_PIN);
    window();
    let again = count(0x51) - n;
    redirect(UART_PIN, MASKED);
    check(
        taken == 1 && again == 1 && in_service & REMOTE_IRR != 0 && after & REMOTE_IRR == 0,
        format_args!(
            "ioapic level: taken {taken}, then {again}; entry {in_service:#x} in service, {after:#x} after EOI"
        ),
    );
    println!(
        "ioapic: pin 4 level on 0x51: taken once, IIR {iir:#04x}, remote IRR set in service ({in_service:#x}), clear after EOI ({after:#x})"
    );
}

/// Writes the I/O APIC ignores or confines: an unknown index, the read-only version, every bit
/// of a redirection entry, sizes and offsets that are no register, an EOI of an idle vector.
pub fn ioapic_nonsense() {
    mmio_write(IOREGSEL, 0xff);
    mmio_write(IOWIN, u32::MAX);
    let unknown = mmio_read(IOWIN);
    iowrite(1, 0);
    let version = ioread(1);
    iowrite(0x1a, u32::MAX);
    iowrite(0x1b, u32::MAX);
    let (low, high) = (ioread(0x1a), ioread(0x1b));
    redirect(5, MASKED);
    // SAFETY: a byte write and a misaligned 32-bit write (an instruction, since Rust pointers
    // must be aligned) to the I/O APIC's page: they reach the device model only.
    unsafe {
        ((IOAPIC + IOREGSEL) as *mut u8).write_volatile(0x01);
        core::arch::asm!(
            "mov dword ptr [{at}], {v:e}",
            at = in(reg) IOAPIC + 0x12,
            v = in(reg) u32::MAX,
            options(nostack, preserves_flags)
        );
    }
    mmio_write(0x20, u32::MAX);
    mmio_write(IOAPIC_EOI, 0x51);
    mmio_write(0x800, u32::MAX);
    let still = ioread(1);
    let pin4 = entry(UART_PIN);
    check(
        version == still && pin4 == MASKED,
        format_args!("ioapic nonsense: version {still:#x}, pin 4 {pin4:#x}"),
    );
    println!(
        "ioapic nonsense: index 0xff reads {unknown:#x}; version after a write {version:#010x}; pin 5 written all ones reads {low:#010x}:{high:#010x}; byte, unaligned and stray writes changed nothing"
    );
}

/// The UART's interrupt through pin 4 programmed with the delivery modes the platform has no
/// target for (SMI, NMI, INIT, ExtINT: 82093AA §3.2.4) and to an APIC ID nobody has: nothing
/// arrives (an NMI would end the guest through its exception handler).
pub fn ioapic_undeliverable() {
    let n = count(0x50);
    for mode in [0x200, 0x400, 0x500, 0x700] {
        redirect(UART_PIN, 0x50 | mode);
        outb(IER, IER_THRE);
        window();
        inb(IIR_FCR);
        outb(IER, 0);
    }
    iowrite(0x11 + 2 * u32::from(UART_PIN), 5 << 24);
    iowrite(0x10 + 2 * u32::from(UART_PIN), 0x50);
    outb(IER, IER_THRE);
    window();
    inb(IIR_FCR);
    outb(IER, 0);
    redirect(UART_PIN, MASKED);
    window();
    let taken = count(0x50) - n;
    check(
        taken == 0,
        format_args!("ioapic: {taken} interrupts through undeliverable entries"),
    );
    println!(
        "ioapic: pin 4 as SMI, NMI, INIT and ExtINT, then fixed to APIC ID 5: nothing delivered"
    );
}

/// 0xff to every UART register (and the divisor latch), then a driver's reinitialisation.
pub fn uart_nonsense() {
    // IER, FCR, MCR (loopback: the THR write below goes to the receiver), LSR and MSR (read-only),
    // SCR, THR, then LCR with DLAB and both divisor latch bytes.
    for port in [
        IER,
        IIR_FCR,
        MCR,
        LSR,
        COM1 + 6,
        SCR,
        COM1,
        LCR,
        COM1,
        COM1 + 1,
    ] {
        outb(port, 0xff);
    }
    outb(LCR, 0x03);
    outb(IER, 0);
    outb(IIR_FCR, 0x06);
    outb(MCR, MCR_OUT2);
    let mut drained = 0;
    while inb(LSR) & 1 != 0 && drained < 64 {
        inb(COM1);
        drained += 1;
    }
    let (lcr, lsr, iir, scr) = (inb(LCR), inb(LSR), inb(IIR_FCR), inb(SCR));
    println!(
        "uart nonsense: 0xff written to every register and the divisor latch; after reinitialisation LCR {lcr:#04x} LSR {lsr:#04x} IIR {iir:#04x} SCR {scr:#04x}, {drained} byte(s) drained"
    );
}

/// An MSR outside the policy, x2APIC MSRs in xAPIC mode, another APIC base, and invalid XCR0
/// values: each must raise #GP in the guest.
pub fn policy() {
    let gp = |r: Result<(), ()>| if r.is_err() { "#GP" } else { "no #GP" };
    let a = gp(try_rdmsr(0x1234).map(|_| ()));
    let b = gp(try_wrmsr(0x1234, 0));
    let c = gp(try_rdmsr(0x802).map(|_| ()));
    let d = gp(try_wrmsr(MSR_APIC_BASE, 0xfed0_0900));
    println!(
        "msr: RDMSR 0x1234 -> {a}, WRMSR 0x1234 -> {b}, RDMSR 0x802 in xAPIC mode -> {c}, IA32_APIC_BASE moved to 0xfed00000 -> {d}"
    );
    if conduit_guest::cpuid(1, 0)[2] & (1 << 26) == 0 {
        println!("xcr0: XSAVE not offered");
        return;
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
    let e = gp(try_xsetbv(0));
    let f = gp(try_xsetbv(0x4));
    let g = gp(try_xsetbv(0x3));
    println!("xcr0: 0x0 -> {e}, 0x4 (AVX without SSE) -> {f}, 0x3 -> {g}");
}

/// x2APIC mode through IA32_APIC_BASE.EXTD: the MSR interface, IPIs through it, and the
/// transitions and registers that raise #GP.
pub fn x2apic() {
    if conduit_guest::cpuid(1, 0)[2] & (1 << 21) == 0 {
        println!("x2apic: not offered (CPUID.1:ECX[21] clear)");
        return;
    }
    try_wrmsr(MSR_APIC_BASE, 0xfee0_0d00)
        .unwrap_or_else(|()| fail(format_args!("x2apic: enabling raised #GP")));
    apic::use_x2apic();
    let msr = |m: u32| try_rdmsr(m).unwrap_or_else(|()| fail(format_args!("RDMSR {m:#x}: #GP")));
    let base = msr(MSR_APIC_BASE);
    let (id, version, ldr) = (msr(0x802), msr(0x803), msr(0x80d));
    let (n41, n42) = (count(0x41), count(0x42));
    let self_ipi = try_wrmsr(0x83f, 0x41);
    window();
    let icr_write = try_wrmsr(0x830, 0x42);
    window();
    let icr = msr(0x830);
    check(
        self_ipi.is_ok() && icr_write.is_ok() && count(0x41) == n41 + 1 && count(0x42) == n42 + 1,
        format_args!(
            "x2apic: SELF IPI {self_ipi:?} taken {}, ICR {icr_write:?} taken {}",
            count(0x41) - n41,
            count(0x42) - n42
        ),
    );
    println!(
        "x2apic: IA32_APIC_BASE {base:#x}; ID {id:#x}, version {version:#x}, LDR {ldr:#x}; SELF IPI (0x83f) 0x41 and ICR (0x830) 0x42 taken once each; ICR reads {icr:#x}"
    );
    // The xAPIC page is off in x2APIC mode (SDM Vol. 3A §11.12.1.2): reads find no register,
    // writes change none.
    let mmio_version = xapic_mmio_read(0x30);
    xapic_mmio_write(0x80, 0x70);
    let tpr = msr(0x808);
    println!(
        "x2apic: the xAPIC page reads {mmio_version:#x} at the version's offset; TPR {tpr:#x} after a write of 0x70 to its offset"
    );
    // The timer through MSRs 0x832 (LVT), 0x83e (divide) and 0x838 (initial count).
    let n = count(0x40);
    apic::write(apic::DIVIDE_CONFIG, 0xb);
    apic::write(apic::LVT_TIMER, 0x40);
    apic::write(apic::INITIAL_COUNT, 100);
    let fired = super::wait_for(0x40, n + 1, 100_000);
    apic::write(apic::LVT_TIMER, apic::LVT_MASKED);
    check(fired, format_args!("x2apic: the timer did not fire"));
    println!("x2apic: one-shot timer through MSRs 0x832, 0x83e and 0x838: 1 interrupt on 0x40");
    let gp = |r: Result<(), ()>| if r.is_err() { "#GP" } else { "no #GP" };
    let a = gp(try_rdmsr(0x809).map(|_| ()));
    let b = gp(try_wrmsr(0x802, 5));
    let c = gp(try_wrmsr(0x80b, 1));
    let e = gp(try_wrmsr(0x808, 1 << 32));
    let d = gp(try_wrmsr(MSR_APIC_BASE, 0xfee0_0900));
    println!(
        "x2apic: RDMSR 0x809 -> {a}, WRMSR 0x802 -> {b}, EOI of 1 -> {c}, TPR bit 32 -> {e}, back to xAPIC without disabling -> {d}"
    );
}

/// A 32-bit read of the xAPIC page, whatever the APIC's mode.
fn xapic_mmio_read(offset: usize) -> u32 {
    let reg = (0xfee0_0000 + offset) as *const u32;
    // SAFETY: the page at 0xFEE00000 is identity-mapped; the read reaches the hypervisor's local
    // APIC (or nothing), not memory of the program.
    unsafe { reg.read_volatile() }
}

/// A 32-bit write to the xAPIC page, whatever the APIC's mode.
fn xapic_mmio_write(offset: usize, value: u32) {
    let reg = (0xfee0_0000 + offset) as *mut u32;
    // SAFETY: as in `xapic_mmio_read`.
    unsafe { reg.write_volatile(value) }
}

/// ACPI S5: SLP_TYP 5, SLP_EN through the sleep control register at 0x600 (ACPI 6.5 §4.8.3.7).
pub fn power_off() -> ! {
    println!("powering off: port 0x600 = 0x34");
    outb(0x600, 0x34);
    fail(format_args!("still running after S5"))
}
