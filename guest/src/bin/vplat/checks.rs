//! The local APIC checks of `vplat` in xAPIC mode (SDM Vol. 3A ch. 11), then the devices and the
//! hostile accesses (`devices.rs`), x2APIC mode, and power-off.

use super::apic::{self, *};
use super::{AUTO_EOI, check, count, devices, fail, rdtsc, spin, timer_tsc, wait_for, window};
use conduit_clock::Rate;
use conduit_guest::println;
use core::sync::atomic::Ordering;

const TIMER_VECTOR: u8 = 0x40;

/// Runs every check in order, then powers off.
pub fn run(rate: Rate, crystal_hz: u64) -> ! {
    basics();
    one_shot(rate, crystal_hz);
    periodic(rate, crystal_hz);
    tsc_deadline(rate);
    priorities();
    errors(rate);
    destinations();
    software_disable();
    devices::ioapic();
    devices::ioapic_nonsense();
    devices::ioapic_undeliverable();
    devices::uart_nonsense();
    devices::policy();
    devices::x2apic();
    devices::power_off()
}

/// IA32_APIC_BASE, ID, version, SVR enable, and writes to reserved and read-only bits.
fn basics() {
    let base = super::boot::try_rdmsr(MSR_APIC_BASE)
        .unwrap_or_else(|()| fail(format_args!("RDMSR IA32_APIC_BASE: #GP")));
    println!("apic base: {base:#x}");
    let id = read(ID);
    let version = read(VERSION);
    println!("xapic: ID {id:#010x}, version {version:#010x}");
    write(SVR, 0x1ff);
    println!(
        "svr: {:#x} after enabling with spurious vector 0xff",
        read(SVR)
    );
    write(TPR, 0xffff_ff20);
    let tpr = read(TPR);
    write(TPR, 0);
    write(LVT_LINT0, u32::MAX);
    let lint0 = read(LVT_LINT0);
    write(LVT_LINT0, LVT_MASKED);
    write(DIVIDE_CONFIG, u32::MAX);
    let dcr = read(DIVIDE_CONFIG);
    write(DIVIDE_CONFIG, 0);
    write(VERSION, 0);
    write(ID, 0x0500_0000);
    println!(
        "reserved bits: TPR 0xffffff20 -> {tpr:#x}, LINT0 0xffffffff -> {lint0:#x}, DCR 0xffffffff -> {dcr:#x}; ID and version read-only: {:#x}, {:#x}",
        read(ID),
        read(VERSION)
    );
    // Whatever the writes to reserved places recorded.
    apic::esr();
    let (b0, b2, w0) = (
        apic::read_u8(VERSION),
        apic::read_u8(VERSION + 2),
        apic::read_u16(VERSION),
    );
    println!("sub-dword reads of the version: byte 0 {b0:#x}, byte 2 {b2:#x}, word 0 {w0:#x}");
}

/// Microseconds of `count` timer ticks at `divide` of the crystal clock.
fn timer_us(count: u64, divide: u64, crystal_hz: u64) -> u64 {
    count * divide * 1_000_000 / crystal_hz
}

/// One-shot: fires once, not before its time; the current count counts down, then reads 0.
fn one_shot(rate: Rate, crystal_hz: u64) {
    let us = timer_us(1000, 2, crystal_hz);
    let ticks = rate.ticks_in_us(us);
    let n = count(TIMER_VECTOR);
    write(LVT_TIMER, u32::from(TIMER_VECTOR));
    write(DIVIDE_CONFIG, 0); // divide by 2
    let t0 = rdtsc();
    write(INITIAL_COUNT, 1000);
    let running = read(CURRENT_COUNT);
    check(
        running > 0 && running <= 1000,
        format_args!("one-shot: current count {running} right after the start"),
    );
    check(
        wait_for(TIMER_VECTOR, n + 1, 100_000),
        format_args!("one-shot: no interrupt"),
    );
    let at = timer_tsc(n);
    check(
        at - t0 >= ticks,
        format_args!("one-shot: fired after {} ticks, before {ticks}", at - t0),
    );
    let after = read(CURRENT_COUNT);
    spin(2 * ticks);
    window();
    check(
        count(TIMER_VECTOR) == n + 1,
        format_args!("one-shot: fired {} times", count(TIMER_VECTOR) - n),
    );
    println!(
        "one-shot: initial count 1000, divide by 2: 1 interrupt on 0x40, not before {us} us; current count {after} after it"
    );
}

/// Periodic: 5 interrupts, the k-th not before k periods; initial count 0 stops it.
fn periodic(rate: Rate, crystal_hz: u64) {
    const N: u32 = 5;
    let period = rate.ticks_in_us(timer_us(500, 1, crystal_hz));
    let n = count(TIMER_VECTOR);
    write(LVT_TIMER, u32::from(TIMER_VECTOR) | TIMER_PERIODIC);
    write(DIVIDE_CONFIG, 0xb); // divide by 1
    let t0 = rdtsc();
    write(INITIAL_COUNT, 500);
    let ok = wait_for(TIMER_VECTOR, n + N, 100_000);
    write(INITIAL_COUNT, 0);
    check(
        ok,
        format_args!("periodic: {} interrupts", count(TIMER_VECTOR) - n),
    );
    for k in 0..N {
        let at = timer_tsc(n + k);
        check(
            at - t0 >= u64::from(k + 1) * period,
            format_args!("periodic: interrupt {} after {} ticks", k + 1, at - t0),
        );
    }
    // An expiry that raced the stop (the guest can be descheduled between its last awaited
    // interrupt and the write) was accepted before it: take it now; none may follow.
    window();
    let stopped = count(TIMER_VECTOR);
    spin(4 * period);
    window();
    check(
        count(TIMER_VECTOR) == stopped,
        format_args!("periodic: fired after initial count 0"),
    );
    println!(
        "periodic: initial count 500, divide by 1: {N} interrupts on 0x40, the k-th not before k x {} us; initial count 0 stops it",
        timer_us(500, 1, crystal_hz)
    );
}

/// TSC-deadline mode (SDM Vol. 3A §11.5.4.1): arm, fire, read 0 after; arm and disarm with 0.
fn tsc_deadline(rate: Rate) {
    if conduit_guest::cpuid(1, 0)[2] & (1 << 24) == 0 {
        println!("tsc-deadline: not offered (CPUID.1:ECX[24] clear)");
        return;
    }
    let n = count(TIMER_VECTOR);
    write(LVT_TIMER, u32::from(TIMER_VECTOR) | TIMER_TSC_DEADLINE);
    let deadline = rdtsc() + rate.ticks_in_us(1000);
    wrmsr(MSR_TSC_DEADLINE, deadline);
    check(
        wait_for(TIMER_VECTOR, n + 1, 100_000),
        format_args!("tsc-deadline: no interrupt"),
    );
    let at = timer_tsc(n);
    check(
        at >= deadline,
        format_args!("tsc-deadline: fired {} ticks early", deadline - at),
    );
    let after = rdmsr(MSR_TSC_DEADLINE);
    wrmsr(MSR_TSC_DEADLINE, rdtsc() + rate.ticks_in_us(1000));
    wrmsr(MSR_TSC_DEADLINE, 0);
    let disarmed = rdmsr(MSR_TSC_DEADLINE);
    spin(rate.ticks_in_us(3000));
    window();
    check(
        count(TIMER_VECTOR) == n + 1,
        format_args!("tsc-deadline: disarmed timer fired"),
    );
    write(LVT_TIMER, LVT_MASKED);
    println!(
        "tsc-deadline: 1 interrupt on 0x40, not before its deadline; IA32_TSC_DEADLINE reads {after:#x} after it; armed for 1 ms then written 0: reads {disarmed:#x}, no interrupt in 3 ms"
    );
}

fn cr8(value: u64) {
    super::boot::try_write_cr8(value)
        .unwrap_or_else(|()| fail(format_args!("MOV CR8 = {value:#x}: #GP")));
}

fn rdmsr(msr: u32) -> u64 {
    super::boot::try_rdmsr(msr).unwrap_or_else(|()| fail(format_args!("RDMSR {msr:#x}: #GP")))
}

fn wrmsr(msr: u32, value: u64) {
    super::boot::try_wrmsr(msr, value)
        .unwrap_or_else(|()| fail(format_args!("WRMSR {msr:#x} = {value:#x}: #GP")));
}

/// TPR blocking, EOI and the in-service register, a self IPI through the ICR's shorthand.
fn priorities() {
    let n = count(0x41);
    write(TPR, 0x50);
    ipi_to_self(0x41);
    window();
    window();
    let held = count(0x41) == n;
    let irr = bit(IRR, 0x41);
    let ppr = read(PPR);
    write(TPR, 0);
    window();
    check(
        held && irr && ppr == 0x50 && count(0x41) == n + 1,
        format_args!(
            "tpr: held {held}, IRR {irr}, PPR {ppr:#x}, taken {}",
            count(0x41) - n
        ),
    );
    println!("tpr: 0x41 held with TPR 0x50 (IRR bit set, PPR 0x50), delivered once TPR is 0");

    // CR8 is TPR bits 7:4 (SDM Vol. 3A §11.8.6.1); bits 63:4 set are #GP.
    let n = count(0x41);
    cr8(5);
    let tpr = read(TPR);
    ipi_to_self(0x41);
    window();
    let held = count(0x41) == n;
    let back = super::boot::read_cr8();
    let reserved = super::boot::try_write_cr8(0x10).is_err();
    cr8(0);
    window();
    check(
        held && count(0x41) == n + 1,
        format_args!("cr8: held {held}, taken {}", count(0x41) - n),
    );
    println!(
        "cr8: 5 -> TPR {tpr:#x}, reads {back:#x}, holds 0x41 until CR8 is 0; 0x10 -> {}",
        if reserved { "#GP" } else { "no #GP" }
    );

    AUTO_EOI.store(false, Ordering::SeqCst);
    ipi_to_self(0x41);
    window();
    let in_service = bit(ISR, 0x41);
    let ppr = read(PPR);
    ipi_to_self(0x41);
    window();
    let second_held = count(0x41) == n + 2 && bit(IRR, 0x41);
    eoi();
    window();
    let second = count(0x41) == n + 3 && bit(ISR, 0x41);
    eoi();
    let clear = !bit(ISR, 0x41) && !bit(IRR, 0x41);
    AUTO_EOI.store(true, Ordering::SeqCst);
    check(
        in_service && ppr == 0x40 && second_held && second && clear,
        format_args!(
            "eoi: ISR {in_service}, PPR {ppr:#x}, second held {second_held}, second taken {second}, clear {clear}"
        ),
    );
    println!(
        "eoi: 0x41 in service (ISR bit set, PPR 0x40) holds a second 0x41 in IRR; EOI delivers it; EOI again leaves ISR and IRR clear"
    );

    let n = count(0x42);
    write(ICR_LOW, 0x42 | (1 << 18));
    window();
    let icr = read(ICR_LOW);
    check(
        count(0x42) == n + 1,
        format_args!("self IPI: 0x42 taken {} times", count(0x42) - n),
    );
    println!("self IPI: ICR shorthand self with vector 0x42 taken once; ICR reads {icr:#x}");
}

/// The error status register (SDM Vol. 3A §11.5.3): an illegal vector in the LVT timer when it
/// fires, in an ICR write, and a write to a reserved offset.
fn errors(rate: Rate) {
    apic::esr();
    let total = || -> u32 { super::boot::VECTORS.iter().map(|v| count(*v)).sum() };
    let before = total();
    write(LVT_TIMER, 0x05);
    write(DIVIDE_CONFIG, 0xb);
    write(INITIAL_COUNT, 10);
    spin(rate.ticks_in_us(200));
    window();
    let lvt = apic::esr();
    write(LVT_TIMER, LVT_MASKED);
    ipi_to_self(0x03);
    window();
    let icr = apic::esr();
    write(APR, 0);
    let reserved = apic::esr();
    let quiet = total() == before;
    check(
        quiet,
        format_args!("esr: {} interrupts taken", total() - before),
    );
    println!(
        "esr: {lvt:#x} after the LVT timer fired with vector 0x05, {icr:#x} after an ICR with vector 0x03, {reserved:#x} after a write to offset 0x90; no interrupt taken"
    );
    // With the LVT error entry unmasked, a new error raises its interrupt.
    let n = count(0x42);
    write(LVT_ERROR, 0x42);
    ipi_to_self(0x03);
    window();
    let taken = count(0x42) - n;
    let esr = apic::esr();
    write(LVT_ERROR, LVT_MASKED);
    check(
        taken == 1,
        format_args!("esr: LVT error interrupt taken {taken} times"),
    );
    println!("esr: LVT error on 0x42: an ICR with vector 0x03 raised it once, ESR {esr:#x}");
}

/// IPI destinations (SDM Vol. 3A §11.6.2): physical, shorthands, logical flat model.
fn destinations() {
    let n = count(0x41);
    write(ICR_HIGH, 5 << 24);
    write(ICR_LOW, 0x41);
    window();
    write(ICR_HIGH, 0);
    write(ICR_LOW, 0x41 | (3 << 18));
    window();
    let none = count(0x41) - n;
    write(ICR_LOW, 0x41 | (2 << 18));
    window();
    let all = count(0x41) - n - none;
    write(DFR, u32::MAX);
    write(LDR, 0x0100_0000);
    let ldr = read(LDR);
    write(ICR_HIGH, 0x01 << 24);
    write(ICR_LOW, 0x41 | (1 << 11));
    window();
    let logical = count(0x41) - n - none - all;
    write(ICR_HIGH, 0x02 << 24);
    write(ICR_LOW, 0x41 | (1 << 11));
    window();
    let other = count(0x41) - n - none - all - logical;
    write(ICR_HIGH, 0);
    check(
        none == 0 && all == 1 && logical == 1 && other == 0,
        format_args!(
            "ipi destinations: {none} to others, {all} all-including-self, {logical} logical 1, {other} logical 2"
        ),
    );
    println!(
        "ipi destinations: to APIC ID 5 and all-excluding-self: nothing; all-including-self: taken once; logical flat (LDR {ldr:#x}) to 0x01: taken once, to 0x02: nothing"
    );
}

/// SVR bit 8 clear (SDM Vol. 3A §11.4.7.2): every LVT masked and kept masked, no IPI accepted;
/// re-enabling leaves the LVTs masked.
fn software_disable() {
    write(LVT_TIMER, u32::from(TIMER_VECTOR));
    write(SVR, 0xff);
    let masked = read(LVT_TIMER);
    write(LVT_TIMER, u32::from(TIMER_VECTOR));
    let kept = read(LVT_TIMER);
    let n = count(0x41);
    ipi_to_self(0x41);
    window();
    let refused = !bit(IRR, 0x41) && count(0x41) == n;
    write(SVR, 0x1ff);
    let after = read(LVT_TIMER);
    window();
    check(
        refused && count(0x41) == n,
        format_args!("software disable: a self IPI was accepted"),
    );
    println!(
        "software disable: SVR 0xff masks the LVT timer ({masked:#x}) and keeps it masked on a write ({kept:#x}); a self IPI is not accepted; after SVR 0x1ff it stays masked ({after:#x})"
    );
}
