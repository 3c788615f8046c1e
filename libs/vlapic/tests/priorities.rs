//! Acceptance, priorities, EOI and the APIC-virtualization usage (SDM Vol. 3A §11.8,
//! Vol. 3C §30.1).

mod common;

use common::{CLOCK, Page, apic, bit, esr, fresh, read};
use conduit_vlapic::{Effects, Trigger, Vlapic, esr, offset};

#[test]
fn software_disabled_apic_accepts_nothing() {
    let mut a = fresh(0);
    assert!(!a.accept(0x40, Trigger::Edge).interrupt_pending);
    assert_eq!(a.highest_irr(), None);
    assert_eq!(a.deliverable(), None);
}

#[test]
fn highest_vector_is_delivered_first_and_lower_classes_wait() {
    let mut a = apic();
    for v in [0x40, 0x80, 0x50] {
        let fx = a.accept(v, Trigger::Edge);
        assert!(fx.interrupt_pending);
        assert!(!fx.tmr_changed);
    }
    assert_eq!(a.deliverable(), Some(0x80));
    assert!(a.acknowledge(0x80));
    assert_eq!(a.ppr(), 0x80);
    // 0x50 (class 5) is below the in-service class 8.
    assert_eq!(a.deliverable(), None);
    assert_eq!(a.highest_irr(), Some(0x50));
    assert_eq!(a.write(offset::EOI, 0, 0).eoi, None);
    assert_eq!(a.ppr(), 0);
    assert_eq!(a.deliverable(), Some(0x50));
    assert!(a.acknowledge(0x50));
    assert_eq!(a.write(offset::EOI, 0, 0), Effects::default());
    assert_eq!(a.deliverable(), Some(0x40));
}

#[test]
fn a_higher_class_nests_and_eoi_unwinds_from_the_top() {
    let mut a = apic();
    let _ = a.accept(0x41, Trigger::Edge);
    assert!(a.acknowledge(0x41));
    let _ = a.accept(0x92, Trigger::Edge);
    assert_eq!(a.deliverable(), Some(0x92));
    assert!(a.acknowledge(0x92));
    assert_eq!(a.highest_isr(), Some(0x92));
    assert!(bit(&mut a, offset::ISR, 0x41) && bit(&mut a, offset::ISR, 0x92));
    assert_eq!(read(&mut a, offset::PPR), 0x90);
    assert_eq!(a.eoi(), None);
    assert_eq!(a.highest_isr(), Some(0x41));
    assert_eq!(read(&mut a, offset::PPR), 0x40);
    assert_eq!(a.eoi(), None);
    assert_eq!(a.highest_isr(), None);
    assert_eq!(a.eoi(), None, "EOI without an in-service vector is a no-op");
}

#[test]
fn same_class_does_not_nest() {
    let mut a = apic();
    let _ = a.accept(0x45, Trigger::Edge);
    assert!(a.acknowledge(0x45));
    let _ = a.accept(0x4A, Trigger::Edge);
    assert_eq!(a.deliverable(), None);
    assert!(
        !a.acknowledge(0x33),
        "acknowledging a vector that is not pending"
    );
    assert_eq!(a.highest_isr(), Some(0x45));
}

#[test]
fn tpr_blocks_its_class_and_below() {
    let mut a = apic();
    assert_eq!(a.write(offset::TPR, 0x5A, 0), Effects::default());
    let _ = a.accept(0x5F, Trigger::Edge);
    assert_eq!(a.deliverable(), None);
    assert_eq!(read(&mut a, offset::PPR), 0x5A);
    let _ = a.accept(0x60, Trigger::Edge);
    assert_eq!(a.deliverable(), Some(0x60));
    assert_eq!(a.write(offset::TPR, 0x10, 0), Effects::default());
    assert_eq!(a.deliverable(), Some(0x60));
    assert!(a.acknowledge(0x60));
    assert_eq!(a.deliverable(), None, "0x5F is below the in-service 0x60");
}

#[test]
fn ppr_is_tpr_or_the_in_service_class() {
    let mut a = apic();
    let _ = a.accept(0x47, Trigger::Edge);
    assert!(a.acknowledge(0x47));
    assert_eq!(a.write(offset::TPR, 0x32, 0), Effects::default());
    assert_eq!(a.ppr(), 0x40, "ISRV class wins, sub-class 0");
    assert_eq!(a.write(offset::TPR, 0x4C, 0), Effects::default());
    assert_eq!(a.ppr(), 0x4C, "equal class: TPR");
    assert_eq!(a.write(offset::TPR, 0x1_52, 0), Effects::default());
    assert_eq!(read(&mut a, offset::TPR), 0x52, "TPR bits 31:8 reserved");
    assert_eq!(read(&mut a, offset::PPR), 0x52);
}

#[test]
fn level_vectors_report_their_eoi_and_edge_ones_do_not() {
    let mut a = apic();
    let fx = a.accept(0x60, Trigger::Level);
    assert!(fx.interrupt_pending && fx.tmr_changed);
    assert!(bit(&mut a, offset::TMR, 0x60));
    let fx = a.accept(0x61, Trigger::Edge);
    assert!(!fx.tmr_changed);
    assert!(a.acknowledge(0x61));
    assert_eq!(a.write(offset::EOI, 0, 0).eoi, None);
    assert!(a.acknowledge(0x60));
    assert_eq!(a.write(offset::EOI, 0, 0).eoi, Some(0x60));
    // Re-accepted as edge: the TMR bit clears (§11.8.4).
    let fx = a.accept(0x60, Trigger::Edge);
    assert!(fx.tmr_changed);
    assert!(!bit(&mut a, offset::TMR, 0x60));
}

#[test]
fn illegal_vectors_are_refused_with_receive_error() {
    let mut a = apic();
    for v in [0u8, 5, 15] {
        assert!(!a.accept(v, Trigger::Edge).interrupt_pending);
    }
    assert_eq!(a.highest_irr(), None);
    assert!(a.accept(16, Trigger::Edge).interrupt_pending);
    assert_eq!(esr(&mut a), esr::RECEIVE_ILLEGAL_VECTOR);
}

#[test]
fn esr_shows_errors_only_after_a_write_and_the_write_clears_them() {
    let mut a = apic();
    let _ = a.accept(3, Trigger::Edge);
    assert_eq!(read(&mut a, offset::ESR), 0, "not latched yet");
    assert_eq!(esr(&mut a), esr::RECEIVE_ILLEGAL_VECTOR);
    assert_eq!(
        read(&mut a, offset::ESR),
        esr::RECEIVE_ILLEGAL_VECTOR,
        "stable until written"
    );
    assert_eq!(esr(&mut a), 0, "the write cleared the accumulator");
}

#[test]
fn a_new_error_raises_the_error_lvt_once() {
    let mut a = apic();
    assert_eq!(a.write(offset::LVT_ERROR, 0xFE, 0), Effects::default());
    let fx = a.accept(2, Trigger::Edge);
    assert!(fx.interrupt_pending);
    assert_eq!(a.highest_irr(), Some(0xFE));
    assert!(a.acknowledge(0xFE));
    // The same error again, not yet cleared by an ESR write: no new interrupt.
    assert!(!a.accept(2, Trigger::Edge).interrupt_pending);
    assert_eq!(a.highest_irr(), None);
    assert_eq!(esr(&mut a), esr::RECEIVE_ILLEGAL_VECTOR);
    // After the ESR write the same error is new again.
    assert!(a.accept(2, Trigger::Edge).interrupt_pending);
    assert_eq!(esr(&mut a), esr::RECEIVE_ILLEGAL_VECTOR);
    // An error LVT with an illegal vector records a receive error, nothing more.
    assert_eq!(a.write(offset::LVT_ERROR, 0x05, 0), Effects::default());
    assert_eq!(esr(&mut a), 0);
    let (value, fx) = a.read(0x040, 0);
    assert_eq!((value, fx), (0, Effects::default()));
    assert_eq!(
        esr(&mut a),
        esr::ILLEGAL_REGISTER_ADDRESS | esr::RECEIVE_ILLEGAL_VECTOR
    );
}

#[test]
fn apicv_hardware_delivers_and_eoi_exit_reports_level_vectors() {
    let page = Page::new();
    let cpu = page.clone();
    let mut a = Vlapic::new(page, 0, true, CLOCK).expect("valid");
    assert_eq!(a.write(offset::SVR, 0x1FF, 0), Effects::default());
    let fx = a.accept(0x70, Trigger::Level);
    assert!(fx.tmr_changed);
    let _ = a.accept(0x31, Trigger::Edge);
    assert_eq!(a.rvi_svi(), (0x70, 0));
    assert_eq!(a.eoi_exit_bitmap(), [0, 1 << (0x70 - 64), 0, 0]);
    // Virtual-interrupt delivery of 0x70 by the CPU: IRR -> ISR in the page, PPR, SVI.
    cpu.set(offset::IRR + 0x30, 0);
    cpu.set(offset::ISR + 0x30, 1 << (0x70 - 0x60));
    cpu.set(offset::PPR, 0x70);
    assert_eq!(a.highest_isr(), Some(0x70));
    assert_eq!(a.rvi_svi(), (0x31, 0x70));
    assert_eq!(a.deliverable(), None);
    // Virtual EOI by the CPU, then the EOI-induced exit (0x70 is in the bitmap).
    cpu.set(offset::ISR + 0x30, 0);
    assert_eq!(a.eoi_exit(0x70), Some(0x70));
    assert_eq!(a.ppr(), 0);
    assert_eq!(a.deliverable(), Some(0x31));
    assert_eq!(a.eoi_exit(0x31), None, "edge vectors need no broadcast");
}

#[test]
fn apicv_write_exits_act_on_the_value_in_the_page() {
    let page = Page::new();
    let guest = page.clone();
    let mut a = Vlapic::new(page, 2, false, CLOCK).expect("valid");
    guest.set(offset::SVR, 0x1FF);
    assert_eq!(a.apic_write(offset::SVR, 0), Effects::default());
    assert!(a.accept(0x40, Trigger::Edge).interrupt_pending);
    // ID is read-only: the exit restores it.
    guest.set(offset::ID, 0x0900_0000);
    assert_eq!(a.apic_write(offset::ID, 0), Effects::default());
    assert_eq!(guest.get(offset::ID), 0x0200_0000);
    // ESR: the written value is replaced by the latched errors.
    let _ = a.accept(1, Trigger::Edge);
    guest.set(offset::ESR, 0x1234);
    assert_eq!(a.apic_write(offset::ESR, 0), Effects::default());
    assert_eq!(guest.get(offset::ESR), esr::RECEIVE_ILLEGAL_VECTOR);
    // ICR: the IPI goes out.
    guest.set(offset::ICR_HIGH, 0x0100_0000);
    guest.set(offset::ICR_LOW, 0x0000_0455);
    let fx = a.apic_write(offset::ICR_LOW, 0);
    let ipi = fx.ipi.expect("an NMI IPI");
    assert_eq!((ipi.dest, ipi.vector), (1, 0x55));
    // A reserved timer mode is dropped, the page restored.
    guest.set(offset::LVT_TIMER, 0x6_0030);
    assert_eq!(a.apic_write(offset::LVT_TIMER, 0), Effects::default());
    assert_eq!(guest.get(offset::LVT_TIMER), 0x1_0000);
}
