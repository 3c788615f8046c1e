//! The guest's INTx routing: the pure rule and the `_PRT` built from it, read back with the
//! `aml` crate.

use super::dsdt::{aml_context, name};
use super::{BASE, LEN, config, dsdt_of, pci};
use crate::{PCI_GSI_BASE, Pin, PrtEntry, build, intx_gsi};

const PINS: [Pin; 4] = [Pin::IntA, Pin::IntB, Pin::IntC, Pin::IntD];

#[test]
fn rule_rotates_over_inputs_16_to_23() {
    assert_eq!(intx_gsi(1, Pin::IntA), 17);
    assert_eq!(intx_gsi(1, Pin::IntD), 20);
    assert_eq!(intx_gsi(7, Pin::IntA), 23);
    assert_eq!(intx_gsi(8, Pin::IntA), 16);
    assert_eq!(intx_gsi(31, Pin::IntB), 16);
    for device in 0..32 {
        let inputs: Vec<u32> = PINS.iter().map(|&p| intx_gsi(device, p)).collect();
        for (i, &g) in inputs.iter().enumerate() {
            assert!((PCI_GSI_BASE..PCI_GSI_BASE + 8).contains(&g));
            // A device's four pins are on four different inputs.
            assert!(!inputs[..i].contains(&g), "device {device}");
        }
        // INTA# of neighbouring devices differ.
        assert_ne!(intx_gsi(device, Pin::IntA), intx_gsi(device + 1, Pin::IntA));
    }
}

#[test]
fn pin_register_values() {
    assert_eq!(Pin::from_register(0), None);
    for (v, p) in (1..=4).zip(PINS) {
        assert_eq!(Pin::from_register(v), Some(p));
        assert_eq!(p.prt_index() + 1, v);
    }
    assert_eq!(Pin::from_register(5), None);
    assert_eq!(Pin::from_register(0xff), None);
}

#[test]
fn prt_of_routed_entries_reads_back() {
    let routed = [
        PrtEntry::routed(1, Pin::IntA),
        PrtEntry::routed(2, Pin::IntA),
        PrtEntry::routed(3, Pin::IntB),
    ];
    let mut cfg = config();
    cfg.pci = Some(crate::PciRoot {
        prt: &routed,
        ..pci()
    });
    let t = build(&cfg, BASE, LEN).expect("builds");
    let mut ctx = aml_context(dsdt_of(&t));
    let prt = aml::pci_routing::PciRoutingTable::from_prt_path(&name("\\_SB.PCI0._PRT"), &mut ctx)
        .expect("_PRT parses");
    use aml::pci_routing::Pin as P;
    for (device, pin, gsi) in [(1, P::IntA, 17), (2, P::IntA, 18), (3, P::IntB, 20)] {
        let irq = prt.route(device, 0, pin, &mut ctx).expect("routed");
        assert_eq!(irq.irq, gsi, "device {device} {pin:?}");
        // A GSI entry: level-triggered, active low (ACPI 6.5 §6.2.13).
        assert_eq!(irq.trigger, aml::resource::InterruptTrigger::Level);
        assert_eq!(irq.polarity, aml::resource::InterruptPolarity::ActiveLow);
    }
}
