//! `vplat reset-test`: the reset paths of the virtual platform. A restarted guest is rebuilt from
//! its image with its memory zeroed, so the guest tells its runs apart by the TSC, which keeps
//! counting across the restart: below [`SECOND_RUN_TSC`] it is the first run, which waits for
//! that value (halting on a TSC-deadline timer) and resets through the reset control register
//! (port 0xCF9 = 0x06: full reset, reset CPU); at or above it, it is a later run, which
//! triple-faults (an IDT of limit 0, then UD2: #UD, #GP and #DF cannot be delivered; SDM Vol. 3A
//! §6.15, interrupt 8).

use super::apic::{self, LVT_TIMER, MSR_TSC_DEADLINE, SVR, TIMER_TSC_DEADLINE};
use super::{fail, halt, rdtsc, spin};
use conduit_guest::{outb, println};

/// The TSC value that separates the first run from the next (2^31: about 43 s at Bochs' 50 MHz,
/// far beyond the point where a boot test starts its guests).
const SECOND_RUN_TSC: u64 = 1 << 31;

pub fn run() -> ! {
    if rdtsc() >= SECOND_RUN_TSC {
        println!("reset test: a later run (TSC at or above 2^31): triple fault");
        triple_fault()
    }
    println!("reset test: first run (TSC below 2^31): waiting for 2^31, then port 0xcf9 = 0x06");
    if conduit_guest::cpuid(1, 0)[2] & (1 << 24) != 0 {
        apic::write(SVR, 0x1ff);
        apic::write(LVT_TIMER, 0x40 | TIMER_TSC_DEADLINE);
        super::boot::try_wrmsr(MSR_TSC_DEADLINE, SECOND_RUN_TSC)
            .unwrap_or_else(|()| fail(format_args!("WRMSR IA32_TSC_DEADLINE: #GP")));
        while rdtsc() < SECOND_RUN_TSC {
            halt();
        }
    } else {
        spin(SECOND_RUN_TSC.saturating_sub(rdtsc()));
    }
    outb(0xcf9, 0x06);
    fail(format_args!("still running after the reset"))
}

/// `vplat bystander`: a guest that sleeps on its TSC-deadline timer until after the reset guest's
/// reset, restart and triple fault ([`BYSTANDER_TSC`]), then checks that its timer fired once and
/// not early, and powers off: another guest's reset leaves it alone.
pub fn bystander() -> ! {
    println!("bystander: sleeping on a TSC-deadline timer until 2^31 + 2^28");
    if conduit_guest::cpuid(1, 0)[2] & (1 << 24) == 0 {
        fail(format_args!("bystander: no TSC-deadline mode"));
    }
    apic::write(SVR, 0x1ff);
    apic::write(LVT_TIMER, 0x40 | TIMER_TSC_DEADLINE);
    super::boot::try_wrmsr(MSR_TSC_DEADLINE, BYSTANDER_TSC)
        .unwrap_or_else(|()| fail(format_args!("WRMSR IA32_TSC_DEADLINE: #GP")));
    let mut halts = 0u64;
    while super::count(0x40) == 0 && halts < 1_000_000 {
        halt();
        halts += 1;
    }
    let at = super::timer_tsc(0);
    super::check(
        super::count(0x40) == 1 && at >= BYSTANDER_TSC,
        format_args!(
            "bystander: {} interrupts, the first at TSC {at:#x}",
            super::count(0x40)
        ),
    );
    println!("bystander: the timer fired once, not before its deadline");
    super::devices::power_off()
}

/// When the bystander wakes: 2^28 TSC ticks (over 5 s at Bochs' 50 MHz) after the reset guest's
/// first run ends.
const BYSTANDER_TSC: u64 = (1 << 31) + (1 << 28);

fn triple_fault() -> ! {
    let descriptor = [0u16; 5];
    // SAFETY: deliberately fatal: an empty IDT makes the UD2's #UD a triple fault, which ends
    // this run of the guest; nothing after it executes.
    unsafe {
        core::arch::asm!("lidt [{d}]", "ud2", d = in(reg) &descriptor, options(noreturn));
    }
}
