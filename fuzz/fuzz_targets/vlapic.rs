//! Fuzz target: the virtual local APIC (`conduit_vlapic`) in software emulation, driven by a
//! guest's xAPIC MMIO and x2APIC MSR accesses, IA32_APIC_BASE and IA32_TSC_DEADLINE writes,
//! interrupts arriving, injections, EOIs and the passing of time, in any order.
//!
//! Invariants (SDM Vol. 3A ch. 11):
//! - vectors 0-15 never enter IRR, ISR or TMR; an IPI that carries a vector never carries an
//!   illegal one;
//! - the version register and the ID register (in the current mode's format) never change;
//!   LVT entries never hold bits outside their writable mask; PPR in the page is `ppr()`;
//! - what is offered for injection is pending in IRR with a priority class above PPR's, and
//!   nothing is offered while the APIC is globally disabled;
//! - an EOI handed to the I/O APIC names a level-triggered (TMR) vector, and is the vector
//!   that was in service;
//! - the timer's next deadline is never in the past after it was processed.
#![no_main]

use arbitrary::Arbitrary;
use conduit_vlapic::{ApicMode, ApicPage, Effects, TimerClock, Trigger, Vlapic, lvt, offset};
use libfuzzer_sys::fuzz_target;

struct Page(Box<[u32; 1024]>);

impl ApicPage for Page {
    fn read(&self, offset: u32) -> u32 {
        self.0[(offset as usize / 4) % 1024]
    }
    fn write(&mut self, offset: u32, value: u32) {
        self.0[(offset as usize / 4) % 1024] = value;
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// xAPIC MMIO read of the register at `16 * n` (or any offset, for odd `raw`).
    Read {
        n: u8,
        raw: u16,
    },
    Write {
        n: u8,
        raw: u16,
        value: u32,
    },
    MsrRead(u8),
    MsrWrite(u8, u64),
    ApicBase(u64),
    TscDeadline(u64),
    Accept(u8, bool),
    /// The kernel injects what is deliverable.
    Inject,
    /// The kernel claims to inject an arbitrary vector.
    Acknowledge(u8),
    Time(u32),
}

fn offset_of(n: u8, raw: u16) -> u32 {
    if raw & 1 == 0 {
        u32::from(n & 0x3f) * 0x10
    } else {
        u32::from(raw) & 0xffc
    }
}

fn bitmap(apic: &Vlapic<Page>, base: u32, vector: u8) -> bool {
    apic.page().read(base + u32::from(vector / 32) * 0x10) & (1 << (vector % 32)) != 0
}

fn check_effects(apic: &Vlapic<Page>, fx: &Effects, in_service: Option<u8>) {
    if let Some(v) = fx.eoi {
        assert!(
            bitmap(apic, offset::TMR, v),
            "EOI broadcast for edge vector {v:#x}"
        );
        assert_eq!(
            Some(v),
            in_service,
            "the EOI'd vector was the one in service"
        );
    }
    if let Some(ipi) = fx.ipi {
        use conduit_vlapic::DeliveryMode::{Fixed, LowestPriority};
        if matches!(ipi.delivery_mode, Fixed | LowestPriority) {
            assert!(
                ipi.vector >= 16,
                "IPI with illegal vector {:#x} sent",
                ipi.vector
            );
        }
    }
}

fn check_state(apic: &Vlapic<Page>, id: u32) {
    let page = apic.page();
    for base in [offset::IRR, offset::ISR, offset::TMR] {
        assert_eq!(page.read(base) & 0xffff, 0, "vectors 0-15 in {base:#x}");
    }
    assert_eq!(
        page.read(offset::VERSION),
        0x0006_0014,
        "the version register is read-only"
    );
    match apic.mode() {
        ApicMode::X2Apic => assert_eq!(page.read(offset::ID), id),
        _ => assert_eq!(page.read(offset::ID), id << 24, "the xAPIC ID is read-only"),
    }
    for reg in lvt::ALL {
        assert_eq!(
            page.read(reg) & !lvt::writable(reg),
            0,
            "LVT {reg:#x} reserved bits"
        );
    }
    assert_eq!(
        page.read(offset::PPR),
        u32::from(apic.ppr()),
        "PPR in the page"
    );
    match apic.deliverable() {
        Some(v) => {
            assert_ne!(apic.mode(), ApicMode::Disabled);
            assert!(
                bitmap(apic, offset::IRR, v),
                "offered vector {v:#x} is pending"
            );
            assert!(v >> 4 > apic.ppr() >> 4, "offered vector {v:#x} above PPR");
        }
        None => {
            if apic.mode() != ApicMode::Disabled
                && let Some(v) = apic.highest_irr()
            {
                assert!(
                    v >> 4 <= apic.ppr() >> 4,
                    "pending {v:#x} above PPR withheld"
                );
            }
        }
    }
}

fuzz_target!(|input: (u8, bool, Vec<Op>)| {
    let (id, bsp, ops) = input;
    let id = u32::from(id % 0xff);
    let clock = TimerClock {
        tsc_hz: 3_000_000,
        apic_timer_hz: 1_000_000,
    };
    let Ok(mut apic) = Vlapic::new(Page(Box::new([0; 1024])), id, bsp, clock) else {
        panic!("IDs below 255 and non-zero clocks are accepted");
    };
    let mut now: u64 = 1_000;
    for op in ops {
        let in_service = apic.highest_isr();
        let fx = match op {
            Op::Read { n, raw } => apic.read(offset_of(n, raw), now).1,
            Op::Write { n, raw, value } => apic.write(offset_of(n, raw), value, now),
            Op::MsrRead(n) => {
                let _ = apic.msr_read(0x800 + u32::from(n), now);
                Effects::default()
            }
            Op::MsrWrite(n, value) => apic
                .msr_write(0x800 + u32::from(n), value, now)
                .unwrap_or_default(),
            Op::ApicBase(value) => apic.set_apic_base(value).unwrap_or_default(),
            Op::TscDeadline(value) => apic.set_tsc_deadline(value, now),
            Op::Accept(vector, level) => {
                let trigger = if level { Trigger::Level } else { Trigger::Edge };
                apic.accept(vector, trigger)
            }
            Op::Inject => {
                if let Some(v) = apic.deliverable() {
                    assert!(apic.acknowledge(v), "a deliverable vector is acknowledged");
                    assert!(bitmap(&apic, offset::ISR, v) && !bitmap(&apic, offset::IRR, v));
                }
                Effects::default()
            }
            Op::Acknowledge(v) => {
                let pending = bitmap(&apic, offset::IRR, v);
                assert_eq!(
                    apic.acknowledge(v),
                    pending,
                    "only pending vectors are taken"
                );
                Effects::default()
            }
            Op::Time(delta) => {
                now = now.saturating_add(u64::from(delta));
                let fx = apic.expire(now);
                if let Some(deadline) = apic.next_deadline() {
                    assert!(
                        deadline > now,
                        "deadline {deadline} not after {now} once expired"
                    );
                }
                fx
            }
        };
        // An EOI (MMIO 0xB0 or MSR 0x80B) retires the vector that was in service.
        let retired = fx.eoi.is_some();
        check_effects(&apic, &fx, if retired { in_service } else { None });
        check_state(&apic, id);
    }
});
