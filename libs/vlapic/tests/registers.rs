//! xAPIC registers: reset state, access rules, ICR and IPIs, software disable, logical
//! destinations (SDM Vol. 3A §11.4-§11.6).

mod common;

use common::{CLOCK, Page, apic, bit, esr, fresh, read};
use conduit_vlapic::{
    ApicMode, ConfigError, DeliveryMode, DestMode, Effects, Ipi, Shorthand, TimerClock, Trigger,
    Vlapic, esr, lvt, offset,
};

#[test]
fn power_up_state() {
    let mut a = fresh(3);
    assert_eq!(a.mode(), ApicMode::XApic);
    assert_eq!(a.apic_base(), 0xFEE0_0800, "enabled, not the BSP");
    assert_eq!(fresh(0).apic_base(), 0xFEE0_0900, "enabled, BSP");
    assert_eq!(read(&mut a, offset::ID), 0x0300_0000);
    assert_eq!(read(&mut a, offset::VERSION), 0x0006_0014);
    assert_eq!(read(&mut a, offset::SVR), 0xFF);
    assert_eq!(read(&mut a, offset::DFR), 0xFFFF_FFFF);
    for reg in lvt::ALL {
        assert_eq!(read(&mut a, reg), 0x1_0000, "LVT {reg:#x} masked");
    }
    for reg in [
        offset::TPR,
        offset::PPR,
        offset::LDR,
        offset::ESR,
        offset::ICR_LOW,
        offset::ICR_HIGH,
        offset::INITIAL_COUNT,
        offset::CURRENT_COUNT,
        offset::DIVIDE_CONFIG,
    ] {
        assert_eq!(read(&mut a, reg), 0, "register {reg:#x}");
    }
    for i in 0..24 {
        assert_eq!(read(&mut a, offset::ISR + i * 0x10), 0);
    }
    assert_eq!(a.next_deadline(), None);
    assert_eq!(a.eoi_exit_bitmap(), [0; 4]);
}

#[test]
fn bad_configurations_are_refused() {
    assert_eq!(
        Vlapic::new(Page::new(), 0xFF, false, CLOCK).err(),
        Some(ConfigError::IdTooLarge(0xFF))
    );
    let zero = TimerClock {
        tsc_hz: 50_000_000,
        apic_timer_hz: 0,
    };
    assert_eq!(
        Vlapic::new(Page::new(), 0, true, zero).err(),
        Some(ConfigError::ZeroClock)
    );
}

#[test]
fn read_only_and_write_only_registers() {
    let mut a = apic();
    for (reg, value) in [
        (offset::ID, 0x0500_0000),
        (offset::VERSION, 0),
        (offset::PPR, 0xF0),
        (offset::IRR + 0x20, u32::MAX),
        (offset::ISR, u32::MAX),
        (offset::TMR + 0x70, u32::MAX),
        (offset::CURRENT_COUNT, 77),
    ] {
        assert_eq!(a.write(reg, value, 0), Effects::default());
    }
    assert_eq!(read(&mut a, offset::ID), 0);
    assert_eq!(read(&mut a, offset::VERSION), 0x0006_0014);
    assert_eq!(a.ppr(), 0);
    assert_eq!((a.highest_irr(), a.highest_isr()), (None, None));
    assert_eq!(a.eoi_exit_bitmap(), [0; 4]);
    assert_eq!(read(&mut a, offset::CURRENT_COUNT), 0);
    assert_eq!(read(&mut a, offset::EOI), 0, "EOI is write-only");
    assert_eq!(esr(&mut a), 0, "none of that is an error");
}

#[test]
fn reserved_offsets_are_illegal_register_addresses() {
    let mut a = apic();
    for off in [
        0x000, 0x010, 0x090, 0x0C0, 0x290, 0x3A0, 0x3F0, 0x400, 0xFF0,
    ] {
        assert_eq!(a.read(off, 0), (0, Effects::default()), "offset {off:#x}");
        assert_eq!(esr(&mut a), esr::ILLEGAL_REGISTER_ADDRESS, "read {off:#x}");
        assert_eq!(a.write(off, 0x55, 0), Effects::default());
        assert_eq!(esr(&mut a), esr::ILLEGAL_REGISTER_ADDRESS, "write {off:#x}");
    }
}

#[test]
fn misaligned_accesses_are_ignored() {
    let mut a = apic();
    assert_eq!(a.write(offset::TPR + 4, 0x77, 0), Effects::default());
    assert_eq!(a.write(offset::TPR + 1, 0x77, 0), Effects::default());
    assert_eq!(a.write(0x1000, 0x77, 0), Effects::default());
    assert_eq!(a.tpr(), 0);
    assert_eq!(read(&mut a, offset::VERSION + 8), 0);
    assert_eq!(esr(&mut a), 0);
}

#[test]
fn reserved_bits_are_dropped() {
    let mut a = apic();
    let writes = [
        (offset::LDR, 0x1234_5678, 0x1200_0000),
        (offset::DFR, 0x0000_0000, 0x0FFF_FFFF),
        (offset::SVR, 0xFFFF_FFFF, 0x3FF),
        (offset::ICR_HIGH, 0xFFFF_FFFF, 0xFF00_0000),
        (offset::DIVIDE_CONFIG, 0xFFFF_FFFF, 0xB),
        (offset::LVT_ERROR, 0xFFFF_FFFF, 0x1_00FF),
        (offset::LVT_LINT0, 0xFFFF_FFFF, 0x1_A7FF),
        (offset::LVT_THERMAL, 0xFFFF_FFFF, 0x1_07FF),
        (offset::LVT_TIMER, 0x3_FFFF, 0x3_00FF),
    ];
    for (reg, value, expect) in writes {
        let _ = a.write(reg, value, 0);
        assert_eq!(read(&mut a, reg), expect, "register {reg:#x}");
    }
}

#[test]
fn icr_with_illegal_vector_sets_send_error_and_sends_nothing() {
    let mut a = apic();
    for low in [0x0000_0003, 0x0000_010F, 0x0004_0001] {
        let fx = a.write(offset::ICR_LOW, low, 0);
        assert_eq!(fx.ipi, None, "ICR {low:#x}");
        assert_eq!(esr(&mut a), esr::SEND_ILLEGAL_VECTOR);
    }
    assert_eq!(a.highest_irr(), None);
    // NMI and INIT carry no vector: vector 0 is fine.
    assert!(a.write(offset::ICR_LOW, 0x0000_0400, 0).ipi.is_some());
    assert_eq!(esr(&mut a), 0);
}

#[test]
fn icr_fields_reach_the_ipi() {
    let mut a = apic();
    let _ = a.write(offset::ICR_HIGH, 0x0200_0000, 0);
    let fx = a.write(offset::ICR_LOW, 0x0000_C500, 0);
    assert_eq!(
        fx.ipi,
        Some(Ipi {
            vector: 0,
            delivery_mode: DeliveryMode::Init,
            dest: 2,
            dest_mode: DestMode::Physical,
            shorthand: Shorthand::None,
            level: true,
            trigger: Trigger::Level,
        })
    );
    let fx = a.write(offset::ICR_LOW, 0x000C_0E9A, 0);
    let ipi = fx.ipi.expect("start-up IPI");
    assert_eq!(ipi.delivery_mode, DeliveryMode::StartUp);
    assert_eq!(ipi.vector, 0x9A);
    assert_eq!(ipi.dest_mode, DestMode::Logical);
    assert_eq!(ipi.shorthand, Shorthand::AllExcludingSelf);
    assert_eq!(
        read(&mut a, offset::ICR_LOW),
        0x000C_0E9A,
        "delivery status idle"
    );
    // Remote read (011) is reserved: nothing is sent.
    assert_eq!(a.write(offset::ICR_LOW, 0x0000_0340, 0), Effects::default());
}

#[test]
fn self_ipis_are_accepted_locally() {
    let mut a = apic();
    let fx = a.write(offset::ICR_LOW, 0x0004_0070, 0);
    assert!(fx.interrupt_pending);
    assert_eq!(fx.ipi, None);
    assert_eq!(a.highest_irr(), Some(0x70));
    // All including self: local acceptance and an IPI for the others.
    let fx = a.write(offset::ICR_LOW, 0x0008_8071, 0);
    assert!(fx.interrupt_pending && fx.tmr_changed);
    assert_eq!(
        fx.ipi.map(|i| i.shorthand),
        Some(Shorthand::AllIncludingSelf)
    );
    assert!(bit(&mut a, offset::TMR, 0x71));
    assert_eq!(a.highest_irr(), Some(0x71));
}

#[test]
fn software_disable_masks_every_lvt_for_good() {
    let mut a = apic();
    for reg in lvt::ALL {
        let _ = a.write(reg, 0x40, 0);
        assert_eq!(read(&mut a, reg) & lvt::MASKED, 0);
    }
    let _ = a.accept(0x50, Trigger::Edge);
    assert_eq!(a.write(offset::SVR, 0xFF, 0), Effects::default());
    for reg in lvt::ALL {
        assert_eq!(read(&mut a, reg), 0x1_0040, "LVT {reg:#x}");
        let _ = a.write(reg, 0x41, 0);
        assert_eq!(read(&mut a, reg), 0x1_0041, "LVT {reg:#x} stays masked");
    }
    // Pending interrupts are held; new ones are refused.
    assert_eq!(a.deliverable(), Some(0x50));
    assert!(!a.accept(0x60, Trigger::Edge).interrupt_pending);
    assert_eq!(a.write(offset::SVR, 0x1FF, 0), Effects::default());
    assert_eq!(
        read(&mut a, offset::LVT_LINT0),
        0x1_0041,
        "re-enabling unmasks nothing"
    );
}

#[test]
fn physical_and_flat_logical_destinations() {
    let mut a = fresh(3);
    assert!(a.matches(3, false));
    assert!(a.matches(0xFF, false));
    assert!(!a.matches(4, false));
    let _ = a.write(offset::LDR, 0x0400_0000, 0);
    assert!(a.matches(0x04, true));
    assert!(a.matches(0x0C, true));
    assert!(!a.matches(0x03, true));
    assert!(a.matches(0xFF, true), "broadcast");
}

#[test]
fn cluster_logical_destinations() {
    let mut a = fresh(1);
    let _ = a.write(offset::DFR, 0x0FFF_FFFF, 0);
    let _ = a.write(offset::LDR, 0x2100_0000, 0);
    assert!(a.matches(0x21, true));
    assert!(a.matches(0x23, true));
    assert!(!a.matches(0x22, true), "same cluster, other member");
    assert!(!a.matches(0x31, true), "other cluster");
    assert!(a.matches(0xF1, true), "cluster 0xF reaches every cluster");
    assert!(a.matches(0xFF, true));
    // A DFR model that is neither flat nor cluster matches nothing.
    let _ = a.write(offset::DFR, 0x5FFF_FFFF, 0);
    assert!(!a.matches(0x21, true));
}
