//! The APIC timer in its three modes (SDM Vol. 3A §11.5.4, §11.5.4.1) with concrete figures:
//! 50 MHz TSC and 1 MHz crystal unless a test says otherwise.

mod common;

use common::{Page, apic, bit, read};
use conduit_vlapic::{Effects, TimerClock, Vlapic, offset};

const ONE_SHOT: u32 = 0x0_0030;
const PERIODIC: u32 = 0x2_0030;
const DEADLINE: u32 = 0x4_0030;
const MASKED: u32 = 0x1_0000;

fn with_clock(tsc_hz: u64, apic_timer_hz: u64) -> Vlapic<Page> {
    let clock = TimerClock {
        tsc_hz,
        apic_timer_hz,
    };
    let mut a = Vlapic::new(Page::new(), 0, true, clock).expect("valid");
    let _ = a.write(offset::SVR, 0x1FF, 0);
    a
}

fn fired(a: &mut Vlapic<Page>, now: u64) -> bool {
    let fx = a.expire(now);
    let pending = fx.interrupt_pending;
    if pending {
        assert!(a.acknowledge(0x30));
        let _ = a.eoi();
    }
    pending
}

#[test]
fn one_shot_concrete_arithmetic() {
    let mut a = apic();
    let _ = a.write(offset::LVT_TIMER, ONE_SHOT, 0);
    let _ = a.write(offset::DIVIDE_CONFIG, 0x3, 0); // divide by 16
    let fx = a.write(offset::INITIAL_COUNT, 1000, 1234);
    assert!(fx.timer_changed);
    // 1000 ticks × 16 at 1 MHz = 16 ms = 800 000 TSC ticks at 50 MHz.
    assert_eq!(a.next_deadline(), Some(1234 + 800_000));
    assert_eq!(read(&mut a, offset::INITIAL_COUNT), 1000);
    assert_eq!(a.current_count(1234), 1000);
    assert_eq!(a.current_count(1234 + 400_000), 500);
    assert_eq!(a.read(offset::CURRENT_COUNT, 1234 + 400_000).0, 500);
    assert_eq!(a.current_count(1234 + 799_999), 1);
    assert_eq!(a.expire(1234 + 799_999), Effects::default());
    let fx = a.expire(1234 + 800_000);
    assert!(fx.interrupt_pending && fx.timer_changed);
    assert_eq!(a.highest_irr(), Some(0x30));
    assert!(!bit(&mut a, offset::TMR, 0x30), "timer interrupts are edge");
    assert_eq!(a.next_deadline(), None);
    assert_eq!(a.current_count(1234 + 900_000), 0);
    assert_eq!(a.expire(2_000_000), Effects::default(), "fires once");
}

#[test]
fn initial_count_zero_stops_the_countdown() {
    let mut a = apic();
    let _ = a.write(offset::LVT_TIMER, ONE_SHOT, 0);
    let _ = a.write(offset::INITIAL_COUNT, 500, 0);
    assert!(a.next_deadline().is_some());
    assert!(a.write(offset::INITIAL_COUNT, 0, 10).timer_changed);
    assert_eq!(a.next_deadline(), None);
    assert_eq!(a.current_count(20), 0);
    assert!(!fired(&mut a, u64::MAX));
}

#[test]
fn every_divide_encoding() {
    // DCR bits 3,1:0 → divisor (SDM Figure 11-10).
    let table = [
        (0x0, 2),
        (0x1, 4),
        (0x2, 8),
        (0x3, 16),
        (0x8, 32),
        (0x9, 64),
        (0xA, 128),
        (0xB, 1),
    ];
    for (dcr, divisor) in table {
        let mut a = apic();
        let _ = a.write(offset::LVT_TIMER, ONE_SHOT, 0);
        let _ = a.write(offset::DIVIDE_CONFIG, dcr, 0);
        let _ = a.write(offset::INITIAL_COUNT, 10, 100);
        assert_eq!(
            a.next_deadline(),
            Some(100 + 10 * divisor * 50),
            "DCR {dcr:#x}"
        );
    }
}

#[test]
fn a_new_divide_applies_from_the_next_initial_count() {
    let mut a = apic();
    let _ = a.write(offset::LVT_TIMER, ONE_SHOT, 0);
    let _ = a.write(offset::DIVIDE_CONFIG, 0xB, 0);
    let _ = a.write(offset::INITIAL_COUNT, 100, 0);
    let _ = a.write(offset::DIVIDE_CONFIG, 0x0, 10);
    assert_eq!(a.next_deadline(), Some(5000));
    let _ = a.write(offset::INITIAL_COUNT, 100, 1000);
    assert_eq!(a.next_deadline(), Some(1000 + 10_000));
}

#[test]
fn periodic_reloads_on_whole_periods_without_drift() {
    let mut a = apic();
    let _ = a.write(offset::LVT_TIMER, PERIODIC, 0);
    let _ = a.write(offset::DIVIDE_CONFIG, 0x3, 0);
    let _ = a.write(offset::INITIAL_COUNT, 1000, 7);
    // Handled late (5000 ticks): the next expiry stays on the grid.
    assert!(fired(&mut a, 7 + 800_000 + 5000));
    assert_eq!(a.next_deadline(), Some(7 + 1_600_000));
    assert_eq!(a.current_count(7 + 1_200_000), 500);
    for k in 2..=100u64 {
        assert!(fired(&mut a, 7 + k * 800_000));
        assert_eq!(a.next_deadline(), Some(7 + (k + 1) * 800_000));
    }
}

#[test]
fn periodic_with_a_fractional_period_does_not_drift() {
    // 10 TSC ticks per 3 timer ticks: a period of one tick is 3⅓ TSC ticks.
    let mut a = with_clock(10, 3);
    let _ = a.write(offset::LVT_TIMER, PERIODIC, 0);
    let _ = a.write(offset::DIVIDE_CONFIG, 0xB, 0);
    let _ = a.write(offset::INITIAL_COUNT, 1, 0);
    let mut seen = Vec::new();
    while let Some(d) = a.next_deadline() {
        if d > 20 {
            break;
        }
        seen.push(d);
        assert!(fired(&mut a, d));
    }
    assert_eq!(seen, [4, 7, 10, 14, 17, 20]);
    for _ in 0..294 {
        let d = a.next_deadline().expect("periodic");
        assert!(fired(&mut a, d));
    }
    // 300 periods after the start = exactly 1000 TSC ticks; the next one ceil(3010/3).
    assert_eq!(a.next_deadline(), Some(1004));
}

#[test]
fn missed_periods_collapse_into_one_interrupt() {
    let mut a = apic();
    let _ = a.write(offset::LVT_TIMER, PERIODIC, 0);
    let _ = a.write(offset::DIVIDE_CONFIG, 0xB, 0);
    let _ = a.write(offset::INITIAL_COUNT, 100, 0); // 5000 TSC ticks
    assert!(fired(&mut a, 17_500));
    assert_eq!(a.highest_irr(), None, "one interrupt, acknowledged");
    assert_eq!(a.next_deadline(), Some(20_000));
}

#[test]
fn a_masked_timer_counts_but_raises_nothing() {
    let mut a = apic();
    let _ = a.write(offset::LVT_TIMER, PERIODIC | MASKED, 0);
    let _ = a.write(offset::DIVIDE_CONFIG, 0xB, 0);
    let _ = a.write(offset::INITIAL_COUNT, 100, 0);
    assert_eq!(a.next_deadline(), None, "nothing to wake up for");
    assert_eq!(a.current_count(2500), 50);
    assert!(!fired(&mut a, 12_000));
    assert_eq!(a.highest_irr(), None);
    // Unmasked later: the periods that passed raise nothing, the next one does.
    let fx = a.write(offset::LVT_TIMER, PERIODIC, 12_500);
    assert!(fx.timer_changed && !fx.interrupt_pending);
    assert_eq!(a.next_deadline(), Some(15_000));
    assert!(fired(&mut a, 15_000));
}

#[test]
fn a_one_shot_that_ran_out_masked_stays_silent_when_unmasked() {
    let mut a = apic();
    let _ = a.write(offset::LVT_TIMER, ONE_SHOT | MASKED, 0);
    let _ = a.write(offset::INITIAL_COUNT, 10, 0);
    let fx = a.write(offset::LVT_TIMER, ONE_SHOT, 1_000_000);
    assert!(!fx.interrupt_pending);
    assert_eq!(a.next_deadline(), None);
    assert_eq!(a.highest_irr(), None);
}

#[test]
fn tsc_deadline_arms_fires_and_clears() {
    let mut a = apic();
    let _ = a.write(offset::LVT_TIMER, DEADLINE, 0);
    let fx = a.set_tsc_deadline(5000, 1000);
    assert!(fx.timer_changed && !fx.interrupt_pending);
    assert_eq!(a.tsc_deadline(), 5000);
    assert_eq!(a.next_deadline(), Some(5000));
    assert!(!fired(&mut a, 4999));
    assert!(fired(&mut a, 5000));
    assert_eq!(a.tsc_deadline(), 0, "cleared when it fires");
    assert_eq!(a.next_deadline(), None);
    assert!(!fired(&mut a, 9000));
}

#[test]
fn tsc_deadline_zero_disarms_and_a_past_one_fires_at_once() {
    let mut a = apic();
    let _ = a.write(offset::LVT_TIMER, DEADLINE, 0);
    let _ = a.set_tsc_deadline(5000, 1000);
    let fx = a.set_tsc_deadline(0, 1000);
    assert!(fx.timer_changed);
    assert_eq!(a.next_deadline(), None);
    assert!(!fired(&mut a, 6000));
    let fx = a.set_tsc_deadline(500, 1000);
    assert!(fx.interrupt_pending);
    assert_eq!(a.highest_irr(), Some(0x30));
    assert_eq!(a.next_deadline(), None);
}

#[test]
fn tsc_deadline_writes_outside_deadline_mode_are_ignored() {
    let mut a = apic();
    let _ = a.write(offset::LVT_TIMER, ONE_SHOT, 0);
    assert_eq!(a.set_tsc_deadline(5000, 0), Effects::default());
    assert_eq!(a.tsc_deadline(), 0);
    assert_eq!(a.next_deadline(), None);
    // And in deadline mode, the initial count is ignored and the count reads 0.
    let _ = a.write(offset::LVT_TIMER, DEADLINE, 0);
    assert_eq!(a.write(offset::INITIAL_COUNT, 1000, 0), Effects::default());
    assert_eq!(read(&mut a, offset::INITIAL_COUNT), 0);
    assert_eq!(a.current_count(10), 0);
    assert_eq!(a.next_deadline(), None);
}

#[test]
fn a_mode_change_disarms() {
    let mut a = apic();
    let _ = a.write(offset::LVT_TIMER, ONE_SHOT, 0);
    let _ = a.write(offset::INITIAL_COUNT, 1000, 0);
    let fx = a.write(offset::LVT_TIMER, PERIODIC, 10);
    assert!(fx.timer_changed);
    assert_eq!(a.next_deadline(), None);
    assert_eq!(read(&mut a, offset::INITIAL_COUNT), 0);
    assert_eq!(a.current_count(20), 0);
    let _ = a.write(offset::LVT_TIMER, DEADLINE, 20);
    let _ = a.set_tsc_deadline(90_000, 20);
    let _ = a.write(offset::LVT_TIMER, ONE_SHOT, 30);
    assert_eq!(a.next_deadline(), None);
    let _ = a.write(offset::LVT_TIMER, DEADLINE, 40);
    assert_eq!(a.tsc_deadline(), 0, "IA32_TSC_DEADLINE was cleared");
    // Same mode, new vector: the timer keeps running.
    let _ = a.set_tsc_deadline(90_000, 50);
    let _ = a.write(offset::LVT_TIMER, DEADLINE | 0x11, 60);
    assert_eq!(a.next_deadline(), Some(90_000));
}

#[test]
fn reserved_timer_mode_is_refused() {
    let mut a = apic();
    let _ = a.write(offset::LVT_TIMER, PERIODIC, 0);
    let _ = a.write(offset::INITIAL_COUNT, 10, 0);
    assert_eq!(a.write(offset::LVT_TIMER, 0x6_0030, 0), Effects::default());
    assert_eq!(read(&mut a, offset::LVT_TIMER), PERIODIC);
    assert!(a.next_deadline().is_some());
}

#[test]
fn arithmetic_saturates_instead_of_overflowing() {
    let mut a = with_clock(u64::MAX, 1);
    let _ = a.write(offset::LVT_TIMER, PERIODIC, 0);
    let _ = a.write(offset::DIVIDE_CONFIG, 0xA, 0);
    let _ = a.write(offset::INITIAL_COUNT, u32::MAX, u64::MAX - 5);
    assert_eq!(a.next_deadline(), Some(u64::MAX));
    assert_eq!(a.current_count(u64::MAX), u32::MAX);
    let mut b = with_clock(1, u64::MAX);
    let _ = b.write(offset::LVT_TIMER, PERIODIC, 0);
    let _ = b.write(offset::INITIAL_COUNT, 3, 0);
    assert_eq!(b.next_deadline(), Some(1));
    assert!(fired(&mut b, u64::MAX));
    // Elapsed timer ticks (2^64 - 1)^2 / 2 (divide by 2) leave 1 modulo 3: the count reads 2.
    assert_eq!(b.current_count(u64::MAX), 2);
}

#[test]
fn software_disable_silences_an_armed_timer() {
    let mut a = apic();
    let _ = a.write(offset::LVT_TIMER, PERIODIC, 0);
    let _ = a.write(offset::INITIAL_COUNT, 100, 0);
    assert_eq!(a.next_deadline(), Some(10_000));
    let fx = a.write(offset::SVR, 0xFF, 100);
    assert!(fx.timer_changed);
    assert_eq!(a.next_deadline(), None);
    assert_eq!(read(&mut a, offset::LVT_TIMER), PERIODIC | MASKED);
    assert_eq!(a.current_count(5000), 50, "still counting");
    assert!(!fired(&mut a, 20_000));
}

#[test]
fn a_timer_with_an_illegal_vector_records_a_receive_error() {
    let mut a = apic();
    let _ = a.write(offset::LVT_TIMER, 0x05, 0);
    let _ = a.write(offset::INITIAL_COUNT, 1, 0);
    let fx = a.expire(1_000);
    assert!(!fx.interrupt_pending);
    assert_eq!(a.highest_irr(), None);
    assert_eq!(
        common::esr(&mut a),
        conduit_vlapic::esr::RECEIVE_ILLEGAL_VECTOR
    );
}
