//! The packed vector bindings interrupt handlers read.

use conduit_irq::{Binding, GuestId, Owner};

#[test]
fn round_trips() {
    let cases = [
        Binding {
            owner: Owner::Hypervisor,
            index: None,
            virtual_vector: None,
            vcpu: 0,
        },
        Binding {
            owner: Owner::Hypervisor,
            index: Some(0),
            virtual_vector: None,
            vcpu: 0,
        },
        Binding {
            owner: Owner::Guest(GuestId(1)),
            index: Some(255),
            virtual_vector: Some(0x41),
            vcpu: 1,
        },
        Binding {
            owner: Owner::Guest(GuestId(0xffff)),
            index: Some(0xffff),
            virtual_vector: Some(0xff),
            vcpu: 0xff,
        },
        Binding {
            owner: Owner::Guest(GuestId(0)),
            index: None,
            virtual_vector: Some(0),
            vcpu: 7,
        },
    ];
    for b in cases {
        let raw = b.pack();
        assert_ne!(raw, 0, "{b:?}");
        assert_eq!(Binding::unpack(raw), Some(b), "{raw:#x}");
    }
}

#[test]
fn zero_is_unbound_and_layout_is_fixed() {
    assert_eq!(Binding::unpack(0), None);
    assert_eq!(Binding::unpack(0x7fff_ffff_ffff_ffff), None);
    let b = Binding {
        owner: Owner::Guest(GuestId(2)),
        index: Some(5),
        virtual_vector: Some(0x41),
        vcpu: 0,
    };
    assert_eq!(b.pack(), 0xc000_0002_c041_0005);
    // The vCPU in bits 55:48, apart from the guest id.
    let v = Binding { vcpu: 3, ..b };
    assert_eq!(v.pack(), 0xc003_0002_c041_0005);
    let h = Binding {
        owner: Owner::Hypervisor,
        index: Some(3),
        virtual_vector: None,
        vcpu: 0,
    };
    assert_eq!(h.pack(), 0x8000_0000_8000_0003);
}
