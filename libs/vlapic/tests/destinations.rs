//! ICR decoding and which of a guest's APICs an IPI reaches (SDM Vol. 3A §11.6.1, §11.6.2,
//! §11.12.9, §11.12.10): physical, logical flat and cluster, x2APIC logical, broadcast, the
//! shorthands, and destinations no APIC of the guest has.

mod common;

use common::{Page, fresh};
use conduit_vlapic::{DeliveryMode, Effects, Ipi, Targets, Vlapic, offset, targets};

/// IA32_APIC_BASE: the base address, global enable, x2APIC enable.
const BASE: u64 = 0xFEE0_0000;
const EN: u64 = 1 << 11;
const EXTD: u64 = 1 << 10;

/// `n` software-enabled xAPICs with IDs 0..n.
fn guest(n: u32) -> Vec<Vlapic<Page>> {
    (0..n)
        .map(|id| {
            let mut a = fresh(id);
            assert_eq!(a.write(offset::SVR, 0x1FF, 0), Effects::default());
            a
        })
        .collect()
}

/// The IPI APIC `sender` sends with ICR `high:low` (xAPIC MMIO).
fn send(apics: &mut [Vlapic<Page>], sender: usize, high: u32, low: u32) -> Option<Ipi> {
    let _ = apics[sender].write(offset::ICR_HIGH, high, 0);
    apics[sender].write(offset::ICR_LOW, low, 0).ipi
}

fn set(ids: &[usize]) -> Targets {
    Targets(ids.iter().fold(0, |s, &i| s | (1 << i)))
}

#[test]
fn physical_destination_reaches_the_apic_with_that_id() {
    let mut g = guest(4);
    // Fixed, vector 0x40, physical, to APIC ID 2.
    let ipi = send(&mut g, 0, 0x0200_0000, 0x0000_0040).expect("an IPI");
    assert_eq!(targets(&ipi, 0, &g), set(&[2]));
    // To itself by ID: the sender is a target (its model did not accept it).
    let ipi = send(&mut g, 1, 0x0100_0000, 0x0000_0041).expect("an IPI");
    assert_eq!(targets(&ipi, 1, &g), set(&[1]));
    assert_eq!(g[1].highest_irr(), None, "not accepted by the model itself");
}

#[test]
fn a_destination_the_guest_does_not_own_reaches_nobody() {
    let mut g = guest(2);
    for (high, low) in [
        (0x0500_0000, 0x0000_0040), // physical APIC ID 5
        (0x0500_0000, 0x0000_0400), // NMI to APIC ID 5
        (0x0700_0000, 0x0000_4500), // INIT assert to APIC ID 7
        (0x0900_0000, 0x0000_0612), // SIPI to APIC ID 9
        (0x8000_0000, 0x0000_0840), // logical 0x80, but no LDR holds bit 7
    ] {
        let ipi = send(&mut g, 0, high, low).expect("an IPI");
        assert!(targets(&ipi, 0, &g).is_empty(), "ICR {high:#x}:{low:#x}");
    }
}

#[test]
fn physical_broadcast_reaches_every_apic() {
    let mut g = guest(3);
    let ipi = send(&mut g, 0, 0xFF00_0000, 0x0000_0040).expect("an IPI");
    assert_eq!(targets(&ipi, 0, &g), set(&[0, 1, 2]));
}

#[test]
fn logical_flat_matches_the_ldr_bits() {
    let mut g = guest(3);
    for (i, a) in g.iter_mut().enumerate() {
        // Flat model (DFR all ones), logical ID bit i.
        let _ = a.write(offset::LDR, 1 << (24 + i), 0);
    }
    let ipi = send(&mut g, 0, 0x0600_0000, 0x0000_0840).expect("an IPI");
    assert_eq!(targets(&ipi, 0, &g), set(&[1, 2]));
    let ipi = send(&mut g, 0, 0xFF00_0000, 0x0000_0840).expect("an IPI");
    assert_eq!(targets(&ipi, 0, &g), set(&[0, 1, 2]), "logical broadcast");
}

#[test]
fn logical_cluster_matches_cluster_and_member_bits() {
    let mut g = guest(4);
    for (i, a) in g.iter_mut().enumerate() {
        // Cluster model (DFR 0x0FFFFFFF): cluster i / 2, member bit i % 2.
        let _ = a.write(offset::DFR, 0x0FFF_FFFF, 0);
        let ldr = (((i / 2) << 4) | (1 << (i % 2))) as u32;
        let _ = a.write(offset::LDR, ldr << 24, 0);
    }
    // Cluster 1, members 0 and 1: APICs 2 and 3.
    let ipi = send(&mut g, 0, 0x1300_0000, 0x0000_0840).expect("an IPI");
    assert_eq!(targets(&ipi, 0, &g), set(&[2, 3]));
    // Cluster 0, member 1: APIC 1.
    let ipi = send(&mut g, 0, 0x0200_0000, 0x0000_0840).expect("an IPI");
    assert_eq!(targets(&ipi, 0, &g), set(&[1]));
}

#[test]
fn x2apic_physical_and_logical_destinations() {
    let mut g = guest(3);
    for a in g.iter_mut() {
        assert!(
            a.set_apic_base(BASE | EN | EXTD)
                .expect("xAPIC -> x2APIC")
                .mode_changed
        );
        assert_eq!(a.msr_write(0x80F, 0x1FF, 0), Ok(Effects::default()));
    }
    // Physical: destination 2 in ICR bits 63:32 (MSR 0x830).
    let fx = g[0]
        .msr_write(0x830, (2 << 32) | 0x40, 0)
        .expect("ICR write");
    assert_eq!(targets(&fx.ipi.expect("an IPI"), 0, &g), set(&[2]));
    // Logical: cluster 0 (IDs 0-15), bits 0 and 2: APICs 0 and 2 (the sender included).
    let fx = g[0]
        .msr_write(0x830, (0b101 << 32) | 0x840, 0)
        .expect("ICR write");
    assert_eq!(targets(&fx.ipi.expect("an IPI"), 0, &g), set(&[0, 2]));
    // Cluster 1 has no APIC in this guest.
    let fx = g[0]
        .msr_write(0x830, (0x1_0001 << 32) | 0x840, 0)
        .expect("ICR write");
    assert!(targets(&fx.ipi.expect("an IPI"), 0, &g).is_empty());
    // Physical broadcast 0xFFFFFFFF.
    let fx = g[1]
        .msr_write(0x830, (0xFFFF_FFFF << 32) | 0x40, 0)
        .expect("ICR write");
    assert_eq!(targets(&fx.ipi.expect("an IPI"), 1, &g), set(&[0, 1, 2]));
}

#[test]
fn shorthands() {
    let mut g = guest(3);
    // All excluding self, fixed.
    let ipi = send(&mut g, 1, 0, 0x000C_0040).expect("an IPI");
    assert_eq!(targets(&ipi, 1, &g), set(&[0, 2]));
    // All including self, fixed: the sender accepted its share already.
    let ipi = send(&mut g, 1, 0, 0x0008_0041).expect("an IPI");
    assert_eq!(targets(&ipi, 1, &g), set(&[0, 2]));
    assert_eq!(g[1].highest_irr(), Some(0x41));
    // All including self, NMI: the sender too.
    let ipi = send(&mut g, 1, 0, 0x0008_0400).expect("an IPI");
    assert_eq!(targets(&ipi, 1, &g), set(&[0, 1, 2]));
    // Self, fixed: accepted locally, no IPI leaves the APIC.
    assert_eq!(send(&mut g, 2, 0, 0x0004_0042), None);
    assert_eq!(g[2].highest_irr(), Some(0x42));
    // Self, NMI: the sender only.
    let ipi = send(&mut g, 2, 0, 0x0004_0400).expect("an IPI");
    assert_eq!(targets(&ipi, 2, &g), set(&[2]));
    // All excluding self, INIT then start-up at page 0x9A (Linux's AP wake-up by broadcast).
    let init = send(&mut g, 0, 0, 0x000C_4500).expect("INIT");
    assert_eq!(init.delivery_mode, DeliveryMode::Init);
    assert_eq!(targets(&init, 0, &g), set(&[1, 2]));
    let sipi = send(&mut g, 0, 0, 0x000C_069A).expect("SIPI");
    assert_eq!(
        (sipi.delivery_mode, sipi.vector),
        (DeliveryMode::StartUp, 0x9A)
    );
    assert_eq!(targets(&sipi, 0, &g), set(&[1, 2]));
}

#[test]
fn lowest_priority_reaches_one_apic_and_init_deassert_none() {
    let mut g = guest(3);
    let ipi = send(&mut g, 0, 0xFF00_0000, 0x0000_0140).expect("an IPI");
    assert_eq!(targets(&ipi, 0, &g), set(&[0]));
    // INIT level de-assert (level 0, trigger level) to APIC 1: no effect.
    let ipi = send(&mut g, 0, 0x0100_0000, 0x0000_8500).expect("an IPI");
    assert!(ipi.is_init_deassert());
    assert!(targets(&ipi, 0, &g).is_empty());
    // INIT assert to APIC 1.
    let ipi = send(&mut g, 0, 0x0100_0000, 0x0000_C500).expect("an IPI");
    assert!(!ipi.is_init_deassert());
    assert_eq!(targets(&ipi, 0, &g), set(&[1]));
}

#[test]
fn init_resets_the_registers_but_keeps_the_id() {
    let mut g = guest(2);
    let _ = g[1].write(offset::TPR, 0x20, 0);
    let _ = g[1].accept(0x50, conduit_vlapic::Trigger::Edge);
    g[1].init();
    assert_eq!(g[1].id(), 1);
    assert_eq!(g[1].read(offset::ID, 0).0, 0x0100_0000);
    assert_eq!(g[1].read(offset::SVR, 0).0, 0xFF, "software-disabled again");
    assert_eq!(g[1].highest_irr(), None);
    assert_eq!(g[1].tpr(), 0);
}

#[test]
fn targets_iterates_lowest_first() {
    assert_eq!(set(&[3, 0, 5]).iter().collect::<Vec<_>>(), vec![0, 3, 5]);
    assert!(!set(&[1]).contains(64));
}
