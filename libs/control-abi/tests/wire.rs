//! The message interface's encodings: requests and replies round-trip through registers, events
//! through the shared page, and nonsense from a misbehaving task is refused, never trusted.

use conduit_control_abi::shared::{SharedPage, WireError};
use conduit_control_abi::{
    DecodeError, Op, PHYSICAL_MSI_ENABLE, Reply, Request, Status, WireBar, WireEvent, layout,
};
use conduit_pci::{Bar, BarKind, Bdf};
use conduit_vpci::Event;

fn bdf(b: u8, d: u8, f: u8) -> Bdf {
    Bdf::new(b, d, f).expect("valid")
}

#[test]
fn requests_round_trip_through_registers() {
    let cases = [
        Request::read(0, bdf(0, 1, 0), 0x10, 4),
        Request::write(7, bdf(0, 31, 7), 0xffc, 1, 0xdead_beef),
        Request {
            offset: u64::MAX,
            value: u64::MAX,
            size: 8,
            ..Request::new(Op::MsixWrite, u16::MAX, bdf(255, 31, 7))
        },
        Request::new(Op::Init, 0, bdf(0, 0, 0)),
        Request {
            offset: 0xfee0_0010,
            value: PHYSICAL_MSI_ENABLE,
            ..Request::new(Op::PhysicalMsi, 2, bdf(0, 3, 0))
        },
    ];
    for r in cases {
        assert_eq!(Request::decode(r.encode()), Ok(r));
    }
    // A segment-qualified physical read round-trips with its segment in RDI bits 63:48, and
    // 0001:02:00.0 is not 0000:02:00.0.
    let on1 = Request::physical_read(1, bdf(2, 0, 0), 0x10, 4);
    let on0 = Request::physical_read(0, bdf(2, 0, 0), 0x10, 4);
    assert_eq!(on1.encode()[0] >> 48, 1);
    assert_eq!(Request::decode(on1.encode()), Ok(on1));
    assert_ne!(Request::decode(on1.encode()), Ok(on0));
    assert_eq!(
        Request::decode(Request::physical_read(0xffff, bdf(0xff, 31, 7), 0xffc, 4).encode())
            .map(|r| (r.segment, r.vbdf, r.offset)),
        Ok((0xffff, bdf(0xff, 31, 7), 0xffc))
    );
    // The layout of RDI is the documented one.
    let [rdi, rsi, rdx] = Request::write(3, bdf(0, 1, 0), 0x04, 2, 0x0006).encode();
    assert_eq!(rdi, 4 | 2 << 8 | 3 << 16 | 0x08 << 32);
    assert_eq!((rsi, rdx), (4, 6));
}

#[test]
fn malformed_requests_are_refused() {
    assert_eq!(
        Request::decode([0x99, 0, 0]),
        Err(DecodeError::UnknownOp(0x99))
    );
    // A segment goes only with the physical read: every other op names a guest's virtual
    // function, and a guest's topology has no segments.
    assert_eq!(
        Request::decode([3 | 1 << 48, 0, 0]),
        Err(DecodeError::SegmentWithoutPhysical {
            op: Op::ConfigRead,
            segment: 1
        })
    );
    for op in [1u64, 2, 4, 5, 6, 8, 9] {
        assert!(
            matches!(
                Request::decode([op | 0xffff << 48, 0, 0]),
                Err(DecodeError::SegmentWithoutPhysical {
                    segment: 0xffff,
                    ..
                })
            ),
            "op {op}"
        );
    }
    for raw in 0..=255u8 {
        let ok = Op::from_raw(raw).is_some();
        let test_op = cfg!(feature = "selftest") && raw == 0x7f;
        assert_eq!(ok, matches!(raw, 1..=9) || test_op, "op {raw:#x}");
    }
}

/// The production task (no `selftest` feature) knows no test request: 0x7f is an unknown op.
#[cfg(not(feature = "selftest"))]
#[test]
fn the_test_fault_op_is_unknown_without_the_test_feature() {
    assert_eq!(
        Request::decode([0x7f, 0, 0]),
        Err(DecodeError::UnknownOp(0x7f))
    );
    assert_eq!(Op::from_raw(0x7f), None);
}

/// The test image's deliberate faults: op 0x7f with a [`FaultKind`] round-trips.
#[cfg(feature = "selftest")]
mod test_faults {
    use super::bdf;
    use conduit_control_abi::{FaultKind, Op, Request};

    #[test]
    fn test_fault_requests_round_trip() {
        for k in FaultKind::ALL {
            let r = Request {
                value: k as u64,
                ..Request::new(Op::TestFault, 0, bdf(0, 0, 0))
            };
            assert_eq!(r.encode()[0] & 0xff, 0x7f);
            assert_eq!(Request::decode(r.encode()), Ok(r));
        }
    }

    #[test]
    fn fault_kinds_round_trip() {
        for k in FaultKind::ALL {
            assert_eq!(FaultKind::from_raw(k as u64), Some(k));
            assert!(!k.name().is_empty());
        }
        assert_eq!(FaultKind::from_raw(0), None);
        assert_eq!(FaultKind::from_raw(99), None);
    }
}

#[test]
fn replies_round_trip_and_unknown_statuses_are_refused() {
    for raw in 0..=9 {
        let s = Status::from_raw(raw).expect("defined");
        let r = Reply {
            status: s,
            value: 0x1234,
        };
        let [rsi, rdx] = r.encode();
        assert_eq!(Reply::decode(rsi, rdx), Some(r));
        assert!(!s.describe().is_empty());
    }
    assert_eq!(Reply::decode(10, 0), None);
    assert_eq!(Reply::decode(u64::MAX, 0), None);
    assert_eq!(Reply::ok(5).status, Status::Ok);
    assert_eq!(Reply::error(Status::Full).value, 0);
}

#[test]
fn every_event_round_trips() {
    let events = [
        Event::FunctionReset,
        Event::CommandChanged {
            memory: true,
            io: false,
            bus_master: true,
            intx_disable: true,
        },
        Event::BarMoved {
            index: 0,
            kind: BarKind::Memory64,
            guest_addr: 0xc000_0000,
            old_guest_addr: None,
            size: 0x4000,
            phys_addr: 0xfe00_0000,
        },
        Event::BarMoved {
            index: 2,
            kind: BarKind::Io,
            guest_addr: 0xc000,
            old_guest_addr: Some(0xd000),
            size: 0x20,
            phys_addr: 0x6000,
        },
        Event::BarUnmapped {
            index: 5,
            kind: BarKind::Memory32,
            guest_addr: 0xc002_0000,
            size: 0x2_0000,
        },
        Event::MsiChanged {
            enabled: true,
            address: 0xfee0_0000,
            data: 0x4041,
            mask: 0xffff_ffff,
            vectors: 32,
        },
        Event::MsixControlChanged {
            enabled: true,
            function_mask: false,
        },
        Event::MsixEntryChanged {
            index: 2047,
            address: 0x1_fee0_1000,
            data: u32::MAX,
            masked: true,
        },
    ];
    for e in events {
        assert_eq!(WireEvent::encode(&e).decode(), Ok(e), "{e:?}");
    }
}

#[test]
fn garbage_events_are_refused() {
    let base = WireEvent::default();
    assert_eq!(base.decode(), Err(WireError::Tag(0)));
    let bad_kind = WireEvent {
        tag: 3,
        kind: 3,
        ..base
    };
    assert_eq!(bad_kind.decode(), Err(WireError::Kind(3)));
    let bad_index = WireEvent {
        tag: 4,
        index: 256,
        ..base
    };
    assert_eq!(bad_index.decode(), Err(WireError::Range));
    let bad_data = WireEvent {
        tag: 7,
        b: 1 << 32,
        ..base
    };
    assert_eq!(bad_data.decode(), Err(WireError::Range));
    let bad_entry = WireEvent {
        tag: 7,
        index: 1 << 16,
        ..base
    };
    assert_eq!(bad_entry.decode(), Err(WireError::Range));
}

#[test]
fn the_shared_page_clamps_what_the_task_claims() {
    let mut page = SharedPage::ZERO;
    page.event_count = 1000;
    assert_eq!(page.events().count(), conduit_vpci::access::MAX_EVENTS);
    assert!(
        page.events().all(|e| e.is_err()),
        "zeroed slots are no events"
    );
    page.message_len = u32::MAX;
    page.message[..5].copy_from_slice(b"hello");
    assert!(page.message().starts_with("hello"));
    page.set_message("bad \u{e9}");
    assert_eq!(page.message(), "bad \u{e9}");
    // A message cut inside a UTF-8 sequence ends before it.
    page.message_len = 5;
    assert_eq!(page.message(), "bad ");
    let long = "x".repeat(5000);
    page.set_message(&long);
    assert_eq!(
        page.message().len(),
        conduit_control_abi::shared::MESSAGE_LEN
    );
}

#[test]
fn bars_round_trip_and_bad_ones_are_refused() {
    let bar = Bar {
        index: 3,
        kind: BarKind::Memory64,
        prefetchable: true,
        address: 0xfe00_0000,
        size: 0x4000,
    };
    assert_eq!(WireBar::from_bar(&bar).to_bar(), Some(bar));
    assert_eq!(WireBar::from_bar(&bar).guest_base, 0);
    let placed = WireBar::with_guest_base(&bar, 0xc000_4000);
    assert_eq!(
        (placed.to_bar(), placed.guest_base),
        (Some(bar), 0xc000_4000)
    );
    let mut w = WireBar::from_bar(&bar);
    w.index = 6;
    assert_eq!(w.to_bar(), None);
    w.index = 0;
    w.kind = 7;
    assert_eq!(w.to_bar(), None);
}

#[test]
fn the_layout_stays_in_one_slot() {
    for a in [
        layout::IMAGE_BASE,
        layout::IMAGE_BASE + layout::IMAGE_MAX - 1,
        layout::STACK_TOP - layout::STACK_SIZE,
        layout::STACK_TOP - 1,
        layout::SHARED_VA,
        layout::CONFIG_VA,
        layout::CONFIG_VA + layout::CONFIG_MAX - 1,
    ] {
        assert!(layout::in_slot(a), "{a:#x}");
    }
    assert!(!layout::in_slot(layout::SLOT_BASE - 1));
    assert!(!layout::in_slot(layout::SLOT_BASE + (1 << 39)));
    // The stack's guard page is not part of anything else.
    let guard = layout::STACK_TOP - layout::STACK_SIZE - 4096;
    assert!(guard >= layout::IMAGE_BASE + layout::IMAGE_MAX);
}

#[test]
fn only_requests_made_for_a_guest_can_blame_it() {
    for op in [
        Op::ConfigRead,
        Op::ConfigWrite,
        Op::MsixRead,
        Op::MsixWrite,
        Op::ResetFunction,
        Op::PhysicalMsi,
    ] {
        assert!(op.on_behalf_of_guest(), "{op:?}");
    }
    for op in [Op::Init, Op::AddFunction, Op::PhysicalRead] {
        assert!(!op.on_behalf_of_guest(), "{op:?}");
    }
}
