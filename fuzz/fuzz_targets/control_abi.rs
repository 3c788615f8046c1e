//! Fuzz target: the control-task message interface in both directions
//! (`conduit_control_abi`): requests the core sends in registers, replies and events the task
//! hands back in registers and the shared page (which a faulty task may fill with anything).
//!
//! Invariants:
//! - core → task: a request that decodes re-encodes to the same registers, and every request
//!   built from valid fields decodes to itself (a segment only with `PhysicalRead`); ECAM windows
//!   that pass `ConfigWindows::new` place every access inside the one window decoding its
//!   segment and bus;
//! - task → core: a reply that decodes re-encodes to the same registers; an event that decodes
//!   survives encode and decode unchanged; a BAR that decodes survives its round trip;
//! - the shared page's message is a valid prefix of the bytes, at most `MESSAGE_LEN` long, and
//!   at most `MAX_EVENTS` events are ever read from it, whatever counts the task wrote.
#![no_main]

use arbitrary::Arbitrary;
use conduit_control_abi::shared::{EcamWindow, InitInfo, mode};
use conduit_control_abi::shared::{MESSAGE_LEN, SharedPage, WireBar, WireEvent};
use conduit_control_abi::{ConfigWindows, Op, Reply, Request, Target, layout};
use conduit_pci::{Bdf, PciAddress};
use conduit_vpci::access::MAX_EVENTS;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Wire {
    tag: u8,
    index: u32,
    flags: u32,
    kind: u32,
    a: u64,
    b: u64,
    c: u64,
    d: u64,
}

#[derive(Arbitrary, Debug)]
struct Input {
    regs: [u64; 3],
    op: u8,
    size: u8,
    guest: u16,
    rid: u16,
    segment: u16,
    windows: Vec<(u32, u32, u32, u32)>,
    config_offset: u16,
    offset: u64,
    value: u64,
    reply: [u64; 2],
    events: Vec<Wire>,
    event_count: u32,
    bar: (u32, u32, u32, u32, u64, u64),
    message: Vec<u8>,
    message_len: u32,
}

fn wire(w: &Wire) -> WireEvent {
    WireEvent {
        tag: u32::from(w.tag % 9),
        index: w.index,
        flags: w.flags,
        kind: w.kind,
        a: w.a,
        b: w.b,
        c: w.c,
        d: w.d,
    }
}

fuzz_target!(|input: Input| {
    // Core → task.
    if let Ok(r) = Request::decode(input.regs) {
        assert_eq!(
            r.encode(),
            input.regs,
            "a decoded request re-encodes to its registers"
        );
    }
    if let Some(op) = Op::from_raw(input.op) {
        let r = Request {
            op,
            guest: input.guest,
            vbdf: Bdf::from_routing_id(input.rid),
            segment: if op == Op::PhysicalRead {
                input.segment
            } else {
                0
            },
            offset: input.offset,
            size: input.size,
            value: input.value,
        };
        assert_eq!(Request::decode(r.encode()), Ok(r), "encode then decode");
    }
    // Core → task: the ECAM windows of every segment.
    let mut init = InitInfo {
        mode: mode::ECAM,
        window_count: input.windows.len() as u32,
        ..InitInfo::default()
    };
    for (slot, &(segment, start_bus, end_bus, reserved)) in
        init.windows.iter_mut().zip(&input.windows)
    {
        *slot = EcamWindow {
            segment,
            start_bus,
            end_bus,
            reserved,
        };
    }
    if let Ok(w) = ConfigWindows::new(&init) {
        let at = PciAddress::new(input.segment, Bdf::from_routing_id(input.rid));
        if let Some(Target::Ecam(va)) = w.locate(at, input.config_offset) {
            let count = init.window_count as usize;
            let (i, win) = init.windows[..count]
                .iter()
                .enumerate()
                .find(|(_, e)| {
                    e.segment == u32::from(at.segment)
                        && (e.start_bus..=e.end_bus).contains(&u32::from(at.bdf.bus()))
                })
                .expect("a located access has its window");
            let base = layout::config_va(i);
            assert!(
                va >= base && va + 4 <= base + ConfigWindows::window_bytes(win),
                "{va:#x} outside window {i}"
            );
        }
    }
    // Task → core: registers.
    if let Some(reply) = Reply::decode(input.reply[0], input.reply[1]) {
        assert_eq!(reply.encode(), input.reply);
    }
    // Task → core: the shared page.
    let mut page = SharedPage::ZERO;
    for (slot, w) in page.events.iter_mut().zip(&input.events) {
        *slot = wire(w);
    }
    page.event_count = input.event_count;
    let n = input.message.len().min(MESSAGE_LEN);
    page.message[..n].copy_from_slice(&input.message[..n]);
    page.message_len = input.message_len;
    let text = page.message();
    assert!(text.len() <= MESSAGE_LEN && text.len() <= input.message_len as usize);
    assert_eq!(
        text.as_bytes(),
        &page.message[..text.len()],
        "the message is a prefix"
    );
    let mut read = 0;
    for event in page.events() {
        read += 1;
        if let Ok(e) = event {
            assert_eq!(WireEvent::encode(&e).decode(), Ok(e), "event round trip");
        }
    }
    assert!(read <= MAX_EVENTS && read <= input.event_count as usize);
    let (index, kind, prefetchable, guest_base, address, size) = input.bar;
    let wb = WireBar {
        index,
        kind,
        prefetchable,
        guest_base,
        address,
        size,
    };
    if let Some(bar) = wb.to_bar() {
        assert!(bar.index < 6);
        assert_eq!(
            WireBar::from_bar(&bar).to_bar(),
            Some(bar),
            "BAR round trip"
        );
    }
});
