//! What a VM entry under virtual-interrupt delivery gets from the model (RVI/SVI and whether
//! to hold delivery back with interrupt-window exiting), against a processor that follows SDM
//! Vol. 3C §30.1.3 (PPR virtualization), §30.1.4 (EOI virtualization), §30.2.1 (evaluation) and
//! §30.2.2 (delivery), plus the one way Bochs 2.7 departs from them: a host interrupt that
//! arrives while the guest runs with RFLAGS.IF = 0 delivers a recognized virtual interrupt
//! instead of exiting.

mod common;

use common::{CLOCK, Page};
use conduit_vlapic::{Effects, Trigger, Vlapic, offset};

/// The Linux timer vector and the vector of its 16550's I/O APIC pin (`bochs-linux`).
const TIMER: u8 = 0xEC;
const UART: u8 = 0x21;
/// Linux's call-function-single IPI vector (`bochs-linux-smp`).
const CALL: u8 = 0xFB;

/// The processor's side of one vCPU: RVI, SVI and VPPR, the virtual-APIC page it shares with
/// the model, RFLAGS.IF, the "interrupt-window exiting" control and the EOI-exit bitmap.
struct Cpu {
    page: Page,
    rvi: u8,
    svi: u8,
    vppr: u8,
    recognized: bool,
    window: bool,
    if_set: bool,
    eoi_exits: [u64; 4],
}

/// How the guest's run ends.
#[derive(Debug, PartialEq, Eq)]
enum Event {
    /// The CPU delivered this virtual interrupt through the guest's IDT.
    Delivered(u8),
    /// A VM exit: the hypervisor runs next.
    Exit,
}

impl Cpu {
    fn new(page: Page) -> Self {
        Self {
            page,
            rvi: 0,
            svi: 0,
            vppr: 0,
            recognized: false,
            window: false,
            if_set: false,
            eoi_exits: [0; 4],
        }
    }

    /// VM entry: RVI/SVI from the guest-interrupt status the model computed, the window control
    /// and the EOI-exit bitmap as the model asks, then PPR virtualization and evaluation (SDM
    /// Vol. 3C §27.3.2.5).
    fn enter(&mut self, apic: &Vlapic<Page>, if_set: bool) {
        (self.rvi, self.svi) = apic.rvi_svi();
        self.eoi_exits = apic.vmcs_eoi_exit_bitmap();
        self.window = apic.hold_virtual_delivery(if_set);
        self.if_set = if_set;
        self.ppr_virtualization();
        self.evaluate();
    }

    fn ppr_virtualization(&mut self) {
        let vtpr = self.page.get(offset::TPR) as u8;
        self.vppr = if vtpr >> 4 >= self.svi >> 4 {
            vtpr
        } else {
            self.svi & 0xF0
        };
        self.page.set(offset::PPR, u32::from(self.vppr));
    }

    fn evaluate(&mut self) {
        self.recognized = !self.window && self.rvi >> 4 > self.vppr >> 4;
    }

    fn highest(&self, base: u32) -> u8 {
        (0..8u32)
            .rev()
            .find_map(|i| {
                let w = self.page.get(base + i * 0x10);
                (w != 0).then(|| (i * 32 + 31 - w.leading_zeros()) as u8)
            })
            .unwrap_or(0)
    }

    fn flip(&self, base: u32, vector: u8, on: bool) {
        let reg = base + u32::from(vector / 32) * 0x10;
        let bit = 1 << (vector % 32);
        let w = self.page.get(reg);
        self.page.set(reg, if on { w | bit } else { w & !bit });
    }

    fn deliver(&mut self) -> Event {
        let vector = self.rvi;
        self.flip(offset::ISR, vector, true);
        self.svi = vector;
        self.vppr = vector & 0xF0;
        self.page.set(offset::PPR, u32::from(self.vppr));
        self.flip(offset::IRR, vector, false);
        self.rvi = self.highest(offset::IRR);
        self.recognized = false;
        self.if_set = false;
        Event::Delivered(vector)
    }

    /// The guest writes EOI (EOI virtualization, SDM Vol. 3C §30.1.4). Returns whether it ends
    /// in an EOI-induced VM exit (the vector's bit in the EOI-exit bitmap) instead of an
    /// evaluation of pending virtual interrupts.
    fn eoi(&mut self) -> bool {
        let vector = self.svi;
        self.flip(offset::ISR, vector, false);
        self.svi = self.highest(offset::ISR);
        self.ppr_virtualization();
        let exits = self.eoi_exits[usize::from(vector / 64)] & (1 << (vector % 64)) != 0;
        if !exits {
            self.evaluate();
        }
        exits
    }

    /// The guest sets IF (STI, POPF, IRET).
    fn set_if(&mut self) -> Event {
        self.if_set = true;
        if self.window {
            Event::Exit
        } else if self.recognized {
            self.deliver()
        } else {
            Event::Exit
        }
    }

    /// A host interrupt while the guest runs with IF = 0 (external-interrupt exiting): a VM
    /// exit, except that Bochs 2.7 delivers a recognized virtual interrupt first.
    fn host_interrupt(&mut self) -> Event {
        assert!(!self.if_set, "only the IF = 0 case is modelled");
        if self.recognized {
            self.deliver()
        } else {
            Event::Exit
        }
    }
}

fn apicv_pair() -> (Vlapic<Page>, Cpu) {
    let page = Page::new();
    let cpu = Cpu::new(page.clone());
    let mut apic = Vlapic::new(page, 0, true, CLOCK).expect("valid configuration");
    assert_eq!(apic.write(offset::SVR, 0x1FF, 0), Effects::default());
    (apic, cpu)
}

#[test]
fn a_vector_that_arrives_while_if_is_clear_waits_for_the_window_exit() {
    // The `bochs-linux` hang: Linux's 16550 handler runs with IF = 0 (its EOI already done)
    // when the timer vector becomes pending; a host interrupt (the tick) arrives before the
    // handler's IRET.
    let (mut apic, mut cpu) = apicv_pair();
    assert!(apic.accept(TIMER, Trigger::Edge).interrupt_pending);
    cpu.enter(&apic, false);
    assert_eq!(
        cpu.host_interrupt(),
        Event::Exit,
        "nothing nests into the handler"
    );
    assert!(cpu.window, "the entry holds delivery back while IF = 0");
    assert_eq!(apic.rvi_svi(), (TIMER, 0));
    // More I/O exits inside the handler: each entry holds it back again.
    cpu.enter(&apic, false);
    assert_eq!(cpu.host_interrupt(), Event::Exit);
    // The handler's IRET sets IF: interrupt-window exit, and the next entry delivers.
    assert_eq!(cpu.set_if(), Event::Exit);
    cpu.enter(&apic, true);
    assert!(!cpu.window);
    assert_eq!(cpu.set_if(), Event::Delivered(TIMER));
    assert_eq!(apic.highest_isr(), Some(TIMER));
    assert_eq!(apic.rvi_svi(), (0, TIMER));
}

#[test]
fn a_vector_below_the_in_service_class_is_held_back_too() {
    // 0x31 waits behind 0x70 in service; the guest's EOI of 0x70 (virtualized, no exit) would
    // make 0x31 recognized while IF is still 0.
    let (mut apic, mut cpu) = apicv_pair();
    assert!(apic.accept(0x70, Trigger::Edge).interrupt_pending);
    cpu.enter(&apic, true);
    assert_eq!(cpu.set_if(), Event::Delivered(0x70));
    assert!(apic.accept(0x31, Trigger::Edge).interrupt_pending);
    assert_eq!(apic.deliverable(), None);
    cpu.enter(&apic, false);
    cpu.eoi();
    assert_eq!(cpu.host_interrupt(), Event::Exit);
    assert!(cpu.window);
    assert_eq!(apic.deliverable(), Some(0x31));
    assert_eq!(cpu.set_if(), Event::Exit);
    cpu.enter(&apic, true);
    assert_eq!(cpu.set_if(), Event::Delivered(0x31));
}

#[test]
fn nothing_pending_or_if_set_costs_no_window_exit() {
    let (mut apic, mut cpu) = apicv_pair();
    assert!(!apic.hold_virtual_delivery(false));
    assert!(!apic.hold_virtual_delivery(true));
    assert!(apic.accept(UART, Trigger::Edge).interrupt_pending);
    assert!(!apic.hold_virtual_delivery(true));
    cpu.enter(&apic, true);
    assert!(!cpu.window);
    assert_eq!(
        apic.vmcs_eoi_exit_bitmap(),
        [0; 4],
        "one vector, none in service"
    );
    assert_eq!(cpu.set_if(), Event::Delivered(UART));
    assert!(!cpu.eoi(), "its EOI needs no exit");
    assert_eq!(apic.highest_irr(), None);
    assert!(!apic.hold_virtual_delivery(false));
}

#[test]
fn an_eoi_that_would_uncover_a_waiting_vector_exits_instead() {
    // The `bochs-linux-smp` hang: the other vCPU's call-function IPI and the timer vector wait
    // together for the vCPU's turn, which starts with IF = 1. The CPU delivers the IPI; Linux's
    // handler writes EOI first thing, with IF = 0. Evaluated there, the timer vector would be
    // recognized inside the handler, and a host interrupt (the tick) would nest it into the
    // handler (Bochs 2.7), which deadlocked Linux.
    let (mut apic, mut cpu) = apicv_pair();
    assert!(apic.accept(TIMER, Trigger::Edge).interrupt_pending);
    assert!(apic.accept(CALL, Trigger::Edge).interrupt_pending);
    cpu.enter(&apic, true);
    assert!(!cpu.window, "IF = 1: nothing held back");
    assert_eq!(cpu.set_if(), Event::Delivered(CALL));
    assert!(cpu.eoi(), "the handler's EOI exits");
    assert_eq!(cpu.host_interrupt(), Event::Exit);
    assert_eq!(
        apic.eoi_exit(CALL),
        None,
        "edge-triggered: nothing for the I/O APIC"
    );
    // The next entry, still inside the handler (IF = 0), holds the timer vector back.
    cpu.enter(&apic, false);
    assert!(cpu.window);
    assert_eq!(
        cpu.host_interrupt(),
        Event::Exit,
        "nothing nests into the handler"
    );
    // The handler's IRET: interrupt-window exit; the next entry delivers, and with nothing
    // left waiting the timer's EOI costs no exit.
    assert_eq!(cpu.set_if(), Event::Exit);
    cpu.enter(&apic, true);
    assert_eq!(cpu.set_if(), Event::Delivered(TIMER));
    assert!(!cpu.eoi());
    assert_eq!(apic.rvi_svi(), (0, 0));
}

#[test]
fn a_vector_waiting_behind_one_in_service_makes_its_eoi_exit() {
    // A guest that runs with IF = 1 inside a handler (0x70 in service) when 0x31 arrives: the
    // EOI of 0x70, whenever the guest writes it, exits, so 0x31 waits for the next entry.
    let (mut apic, mut cpu) = apicv_pair();
    assert!(apic.accept(0x70, Trigger::Edge).interrupt_pending);
    cpu.enter(&apic, true);
    assert_eq!(cpu.set_if(), Event::Delivered(0x70));
    assert!(apic.accept(0x31, Trigger::Edge).interrupt_pending);
    let bitmap = apic.vmcs_eoi_exit_bitmap();
    assert_eq!(bitmap, [1 << 0x31, 1 << (0x70 - 64), 0, 0]);
    cpu.enter(&apic, true);
    assert!(cpu.eoi());
    assert_eq!(apic.eoi_exit(0x70), None);
    cpu.enter(&apic, true);
    assert_eq!(apic.vmcs_eoi_exit_bitmap(), [0; 4]);
    assert_eq!(cpu.set_if(), Event::Delivered(0x31));
}

#[test]
fn level_triggered_vectors_stay_in_the_bitmap() {
    let (mut apic, _) = apicv_pair();
    assert!(apic.accept(0x70, Trigger::Level).tmr_changed);
    assert_eq!(apic.vmcs_eoi_exit_bitmap(), [0, 1 << (0x70 - 64), 0, 0]);
    assert!(apic.accept(0x31, Trigger::Edge).interrupt_pending);
    assert_eq!(
        apic.vmcs_eoi_exit_bitmap(),
        [1 << 0x31, 1 << (0x70 - 64), 0, 0]
    );
    assert_eq!(apic.eoi_exit_bitmap(), [0, 1 << (0x70 - 64), 0, 0]);
}
