//! x2APIC MSRs, IA32_APIC_BASE transitions and x2APIC destinations (SDM Vol. 3A §11.12).

mod common;

use common::Page;
use common::{apic, fresh, read};
use conduit_vlapic::{ApicMode, Effects, Gp, Trigger, Vlapic, esr, offset};

const EN: u64 = 1 << 11;
const EXTD: u64 = 1 << 10;
const BASE: u64 = 0xFEE0_0000;

fn x2(id: u32) -> Vlapic<Page> {
    let mut a = fresh(id);
    let fx = a.set_apic_base(BASE | EN | EXTD).expect("xAPIC -> x2APIC");
    assert!(fx.mode_changed);
    assert_eq!(a.msr_write(0x80F, 0x1FF, 0), Ok(Effects::default()));
    a
}

#[test]
fn entering_x2apic_mode_widens_the_id_and_derives_the_ldr() {
    let a = x2(0x23);
    assert_eq!(a.mode(), ApicMode::X2Apic);
    assert_eq!(a.apic_base(), BASE | EN | EXTD);
    assert_eq!(a.msr_read(0x802, 0), Ok(0x23));
    assert_eq!(a.msr_read(0x803, 0), Ok(0x0006_0014));
    // Cluster 2, bit 3.
    assert_eq!(a.msr_read(0x80D, 0), Ok(0x0002_0008));
    assert_eq!(
        a.page().get(offset::LDR),
        0x0002_0008,
        "where the CPU reads it"
    );
}

#[test]
fn apic_base_transitions_follow_the_state_diagram() {
    let mut a = fresh(0);
    assert_eq!(
        a.set_apic_base(BASE | EN),
        Ok(Effects::default()),
        "no change"
    );
    assert_eq!(
        a.set_apic_base(BASE | EXTD),
        Err(Gp),
        "EN=0 EXTD=1 is invalid"
    );
    assert!(a.set_apic_base(BASE | EN | EXTD).is_ok());
    assert_eq!(a.set_apic_base(BASE | EN), Err(Gp), "x2APIC -> xAPIC");
    assert_eq!(a.mode(), ApicMode::X2Apic);
    assert!(
        a.set_apic_base(BASE)
            .expect("x2APIC -> disabled")
            .mode_changed
    );
    assert_eq!(a.mode(), ApicMode::Disabled);
    assert_eq!(a.apic_base(), BASE | (1 << 8));
    assert_eq!(
        a.set_apic_base(BASE | EN | EXTD),
        Err(Gp),
        "disabled -> x2APIC"
    );
    assert!(
        a.set_apic_base(BASE | EN)
            .expect("disabled -> xAPIC")
            .mode_changed
    );
    assert!(a.set_apic_base(BASE).is_ok(), "xAPIC -> disabled");
}

#[test]
fn apic_base_reserved_bits_and_relocation_are_refused() {
    let mut a = fresh(1);
    for bad in [
        BASE | EN | 1,
        BASE | EN | (1 << 9),
        BASE | EN | (1 << 52),
        0xFED0_0000 | EN,
        EN,
    ] {
        assert_eq!(a.set_apic_base(bad), Err(Gp), "{bad:#x}");
    }
    // The BSP flag is read-only.
    assert!(a.set_apic_base(BASE | EN | (1 << 8)).is_ok());
    assert_eq!(a.apic_base(), BASE | EN);
}

#[test]
fn disabling_resets_the_apic() {
    let mut a = apic();
    let _ = a.write(offset::TPR, 0x40, 0);
    let _ = a.accept(0x80, Trigger::Level);
    let _ = a.write(offset::LVT_TIMER, 0x30, 0);
    let _ = a.write(offset::INITIAL_COUNT, 100, 0);
    let fx = a.set_apic_base(BASE).expect("disable");
    assert!(fx.mode_changed && fx.tmr_changed && fx.timer_changed);
    assert_eq!(a.deliverable(), None);
    assert!(!a.accept(0x90, Trigger::Edge).interrupt_pending);
    assert!(!a.matches(0, false));
    assert_eq!(a.read(offset::TPR, 0), (0, Effects::default()), "MMIO off");
    assert!(a.set_apic_base(BASE | EN).is_ok());
    assert_eq!(read(&mut a, offset::TPR), 0);
    assert_eq!(read(&mut a, offset::SVR), 0xFF);
    assert_eq!(read(&mut a, offset::LVT_TIMER), 0x1_0000);
    assert_eq!(a.highest_irr(), None);
    assert_eq!(a.eoi_exit_bitmap(), [0; 4]);
    assert_eq!(a.next_deadline(), None);
}

#[test]
fn each_interface_only_in_its_mode() {
    let mut a = apic();
    assert_eq!(a.msr_read(0x808, 0), Err(Gp));
    assert_eq!(a.msr_write(0x808, 0x20, 0), Err(Gp));
    let mut b = x2(0);
    assert_eq!(b.read(offset::VERSION, 0), (0, Effects::default()));
    assert_eq!(b.write(offset::TPR, 0x20, 0), Effects::default());
    assert_eq!(b.tpr(), 0);
    assert_eq!(b.msr_read(0x7FF, 0), Err(Gp));
    assert_eq!(b.msr_read(0x900, 0), Err(Gp));
}

#[test]
fn reads_of_write_only_and_reserved_msrs_fault() {
    let a = x2(5);
    for msr in [
        0x80B, 0x83F, 0x809, 0x80C, 0x80E, 0x831, 0x83A, 0x840, 0x8FF,
    ] {
        assert_eq!(a.msr_read(msr, 0), Err(Gp), "MSR {msr:#x}");
    }
    for msr in [
        0x808, 0x80A, 0x80F, 0x810, 0x818, 0x827, 0x828, 0x82F, 0x832, 0x837, 0x838, 0x839, 0x83E,
    ] {
        assert!(a.msr_read(msr, 0).is_ok(), "MSR {msr:#x}");
    }
}

#[test]
fn writes_with_reserved_bits_or_to_read_only_msrs_fault() {
    let mut a = x2(5);
    let cases: &[(u32, u64)] = &[
        (0x802, 5),        // ID
        (0x803, 0),        // version
        (0x80A, 0),        // PPR
        (0x80D, 0),        // LDR
        (0x810, 0),        // ISR
        (0x839, 0),        // current count
        (0x808, 0x100),    // TPR bit 8
        (0x808, 1 << 32),  // TPR bits 63:32
        (0x80B, 1),        // EOI must be 0
        (0x828, 1),        // ESR must be 0
        (0x80F, 1 << 12),  // SVR EOI-broadcast suppression, not offered
        (0x832, 1 << 12),  // LVT timer delivery status
        (0x832, 0x6_0030), // reserved timer mode
        (0x837, 0x700),    // LVT error has no delivery mode
        (0x83E, 0x4),      // DCR bit 2
        (0x830, 1 << 12),  // ICR delivery status
        (0x830, 1 << 16),  // ICR bit 16
        (0x83F, 0x100),    // SELF IPI bit 8
        (0x80E, 0),        // no DFR
        (0x831, 0),        // no ICR high
    ];
    for &(msr, value) in cases {
        assert_eq!(
            a.msr_write(msr, value, 0),
            Err(Gp),
            "MSR {msr:#x} <- {value:#x}"
        );
    }
    assert_eq!(a.msr_read(0x808, 0), Ok(0));
    assert_eq!(a.msr_read(0x832, 0), Ok(0x1_0000));
}

#[test]
fn x2apic_register_writes_take_effect() {
    let mut a = x2(0);
    assert_eq!(a.msr_write(0x808, 0x20, 0), Ok(Effects::default()));
    assert_eq!(a.msr_read(0x80A, 0), Ok(0x20));
    let _ = a.accept(0x61, Trigger::Level);
    assert!(a.acknowledge(0x61));
    assert_eq!(a.msr_read(0x810 + 3, 0), Ok(1 << 1));
    assert_eq!(a.msr_write(0x80B, 0, 0).map(|fx| fx.eoi), Ok(Some(0x61)));
    assert!(
        a.msr_write(0x832, 0x2_0040, 0)
            .expect("periodic")
            .timer_changed
    );
    assert_eq!(a.msr_write(0x83E, 0xB, 0), Ok(Effects::default()));
    assert!(a.msr_write(0x838, 100, 0).expect("arm").timer_changed);
    assert_eq!(a.next_deadline(), Some(5000));
    assert_eq!(a.msr_read(0x839, 2500), Ok(50));
}

#[test]
fn self_ipi_msr() {
    let mut a = x2(0);
    let fx = a.msr_write(0x83F, 0x55, 0).expect("self IPI");
    assert!(fx.interrupt_pending && fx.ipi.is_none());
    assert_eq!(a.highest_irr(), Some(0x55));
    assert!(
        !a.msr_write(0x83F, 0x05, 0)
            .expect("illegal vector")
            .interrupt_pending
    );
    assert_eq!(a.msr_write(0x828, 0, 0), Ok(Effects::default()));
    assert_eq!(
        a.msr_read(0x828, 0),
        Ok(u64::from(esr::SEND_ILLEGAL_VECTOR))
    );
}

#[test]
fn the_icr_is_one_64_bit_msr() {
    let mut a = x2(0);
    let fx = a
        .msr_write(0x830, (0x1234_5678 << 32) | 0x0000_0830, 0)
        .expect("ICR");
    let ipi = fx.ipi.expect("fixed logical IPI");
    assert_eq!((ipi.vector, ipi.dest), (0x30, 0x1234_5678));
    assert_eq!(a.msr_read(0x830, 0), Ok((0x1234_5678 << 32) | 0x0000_0830));
    assert_eq!(a.page().get(offset::ICR_LOW), 0x830);
    assert_eq!(a.page().get(offset::X2APIC_ICR_HIGH), 0x1234_5678);
}

#[test]
fn x2apic_destinations() {
    let a = x2(0x23);
    assert!(a.matches(0x23, false));
    assert!(a.matches(u32::MAX, false));
    assert!(!a.matches(0x24, false));
    assert!(a.matches(0x0002_0008, true));
    assert!(a.matches(0x0002_00FF, true));
    assert!(!a.matches(0x0002_0001, true), "other member");
    assert!(!a.matches(0x0003_0008, true), "other cluster");
    assert!(a.matches(0xFFFF_0008, true), "every cluster");
}
