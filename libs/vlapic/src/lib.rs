//! The virtual local APIC of one vCPU, as a pure state machine (SDM Vol. 3A ch. 11 "Advanced
//! Programmable Interrupt Controller (APIC)"; Vol. 3C ch. 30 "APIC Virtualization and Virtual
//! Interrupts").
//!
//! One model serves both ways the kernel runs a guest's APIC:
//! - **APIC virtualization** (TPR shadow, virtualize APIC accesses, APIC-register
//!   virtualization, virtual-interrupt delivery): the model's register page *is* the VMCS
//!   virtual-APIC page. The CPU reads it for guest reads and updates TPR, PPR, IRR and ISR
//!   itself on virtual-interrupt delivery and virtual EOI. A trap-like APIC-write exit finds the
//!   new value already in the page: the kernel calls [`Vlapic::apic_write`]. An EOI-induced exit
//!   (vectors in the EOI-exit bitmap: [`Vlapic::vmcs_eoi_exit_bitmap`]) calls
//!   [`Vlapic::eoi_exit`]; [`Vlapic::rvi_svi`] gives the guest interrupt status.
//! - **Software emulation**: every xAPIC MMIO access ([`Vlapic::read`], [`Vlapic::write`]) or
//!   x2APIC MSR access ([`Vlapic::msr_read`], [`Vlapic::msr_write`]) exits and reaches the
//!   model; the kernel injects [`Vlapic::deliverable`] vectors by VM-entry event injection
//!   and calls [`Vlapic::acknowledge`] (IRR → ISR) when it does.
//!
//! The page ([`ApicPage`]) holds exactly the SDM's layout ([`offset`]), so the CPU and the
//! model agree; what is not a register (timer deadlines, the APIC mode, IA32_APIC_BASE, the
//! error accumulator) lives in [`Vlapic`]. The model never reads a clock: calls that depend on
//! time take the guest's TSC (`now`), and [`Vlapic::next_deadline`] tells the kernel when to
//! call [`Vlapic::expire`]. Operations return [`Effects`]: what the kernel must carry out
//! (an EOI for the I/O APIC, an IPI to route, a timer or EOI-exit bitmap to reprogram).
//!
//! Which SDM sections each part implements:
//! - register layout, reset state, software disable: Vol. 3A §11.4 (Table 11-1, §11.4.7.1,
//!   §11.4.7.2): `regs.rs`, this file;
//! - xAPIC MMIO accesses: §11.4.1: `xapic.rs`;
//! - local vector table and error status: §11.5.1, §11.5.3 ([`lvt`], [`esr`]);
//! - timer: §11.5.4 and §11.5.4.1 (TSC-deadline mode): `timer.rs`;
//! - IPIs and destinations (ID, LDR, DFR flat and cluster models): §11.6: `ipi.rs`,
//!   [`Vlapic::matches`], and which of a guest's APICs an IPI reaches: [`targets`] (`dest.rs`);
//! - acceptance, priorities (TPR, PPR), EOI: §11.8: this file;
//! - x2APIC (MSR interface, IA32_APIC_BASE transitions, logical x2APIC ID): §11.12:
//!   `x2apic.rs`;
//! - APIC virtualization (virtual-APIC page, EOI-exit bitmap, RVI/SVI, APIC-write exits):
//!   Vol. 3C §30.1-§30.5.
//!
//! Where the SDM leaves a choice, the model does this:
//! - MMIO accesses must be 32-bit at a 16-byte aligned offset; other offsets read 0 and
//!   ignore writes (sub-dword reads are the kernel's to extract from the aligned dword).
//!   Reserved offsets, including APR (0x090), RRD (0x0C0) and SELF IPI (0x3F0) in xAPIC mode,
//!   set ESR "illegal register address".
//! - The xAPIC ID register is read-only; the APIC base stays at [`APIC_BASE_ADDRESS`]
//!   (writing another base to IA32_APIC_BASE is #GP); the BSP flag is read-only.
//! - EOI-broadcast suppression is not offered (version bit 24 clear, SVR bit 12 reserved:
//!   dropped in xAPIC mode, #GP in x2APIC mode). SVR bit 9 (focus checking) is kept, without
//!   effect.
//! - A software-disabled APIC (SVR bit 8 clear) accepts no fixed interrupts; pending ones
//!   stay pending and deliverable.
//! - A timer mode change disarms the timer and clears the initial count and
//!   IA32_TSC_DEADLINE; a new divide configuration applies from the next initial-count
//!   write; the reserved timer mode 11 is dropped (xAPIC) or #GP (x2APIC).
//! - An ICR or SELF IPI write with an illegal vector (fixed or lowest-priority delivery, or
//!   self IPI) sets "send illegal vector" and sends nothing; ICR delivery modes 011 and 111 send
//!   nothing. IPIs are delivered at once: the ICR's delivery status always reads idle.
//! - APIC IDs are 0-254 (0xFF is the xAPIC broadcast ID).
//!
//! ```
//! use conduit_vlapic::{ApicPage, Effects, TimerClock, Trigger, Vlapic, offset};
//!
//! struct Page(Box<[u32; 1024]>);
//! impl ApicPage for Page {
//!     fn read(&self, offset: u32) -> u32 { self.0[offset as usize / 4] }
//!     fn write(&mut self, offset: u32, value: u32) { self.0[offset as usize / 4] = value }
//! }
//!
//! let clock = TimerClock { tsc_hz: 50_000_000, apic_timer_hz: 1_000_000 };
//! let mut apic = Vlapic::new(Page(Box::new([0; 1024])), 0, true, clock).unwrap();
//! assert_eq!(apic.write(offset::SVR, 0x1FF, 0), Effects::default()); // software-enable
//! let fx = apic.accept(0x31, Trigger::Level);
//! assert!(fx.interrupt_pending && fx.tmr_changed);
//! assert_eq!(apic.deliverable(), Some(0x31));
//! assert!(apic.acknowledge(0x31));             // injected: IRR -> ISR
//! let fx = apic.write(offset::EOI, 0, 0);
//! assert_eq!(fx.eoi, Some(0x31));               // level-triggered: tell the I/O APIC
//! ```
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

mod dest;
mod effects;
mod inbox;
mod ipi;
mod regs;
mod timer;
mod x2apic;
mod xapic;

pub use dest::{MAX_APICS, Targets, targets};
pub use effects::{Effects, Trigger};
pub use inbox::{Drained, Inbox};
pub use ipi::{DeliveryMode, DestMode, Ipi, Shorthand};
pub use regs::{esr, lvt, offset};
pub use timer::{TimerClock, TimerMode};
pub use x2apic::{APIC_BASE_ADDRESS, apic_base_bits};

use regs::{SVR_ENABLED, VERSION};
use timer::Timer;

/// The 4 KiB register page. `offset` is a byte offset, a multiple of 4 below 0x1000 (registers
/// sit at 16-byte strides, [`offset`]). The kernel implements it on a physical frame with
/// volatile accesses; tests on an array.
pub trait ApicPage {
    /// The 32-bit value at `offset`.
    fn read(&self, offset: u32) -> u32;
    /// Stores `value` at `offset`.
    fn write(&mut self, offset: u32, value: u32);
}

/// How the APIC is enabled (IA32_APIC_BASE bits 11:10, SDM Vol. 3A §11.12.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApicMode {
    /// Globally disabled (EN = 0): no MMIO, no MSRs, no interrupts.
    Disabled,
    /// xAPIC: MMIO at [`APIC_BASE_ADDRESS`].
    XApic,
    /// x2APIC: MSRs 0x800-0x8FF.
    X2Apic,
}

/// An access the SDM answers with #GP(0): the kernel injects it into the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gp;

/// Why [`Vlapic::new`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// The ID does not fit the 8-bit xAPIC ID (0xFF is the broadcast ID).
    IdTooLarge(u32),
    /// A clock rate of 0 Hz.
    ZeroClock,
}

/// Page offset and bit of `vector` in a 256-bit register (ISR, TMR, IRR) at `base`.
fn bit_of(base: u32, vector: u8) -> (u32, u32) {
    (base + u32::from(vector / 32) * 0x10, 1 << (vector % 32))
}

/// One vCPU's local APIC over its register page `P`.
#[derive(Debug)]
pub struct Vlapic<P> {
    page: P,
    id: u32,
    bsp: bool,
    mode: ApicMode,
    timer: Timer,
    /// Errors detected since the last ESR write (SDM Vol. 3A §11.5.3).
    esr_pending: u32,
}

impl<P: ApicPage> Vlapic<P> {
    /// An APIC in its power-up state (SDM Vol. 3A §11.4.7.1), xAPIC mode, at
    /// [`APIC_BASE_ADDRESS`], BSP flag per `bsp`. IDs above 254 are refused (they need an
    /// x2APIC-only start, which Conduit does not offer yet).
    pub fn new(page: P, apic_id: u32, bsp: bool, clock: TimerClock) -> Result<Self, ConfigError> {
        if apic_id >= 0xFF {
            return Err(ConfigError::IdTooLarge(apic_id));
        }
        if clock.tsc_hz == 0 || clock.apic_timer_hz == 0 {
            return Err(ConfigError::ZeroClock);
        }
        let mut apic = Self {
            page,
            id: apic_id,
            bsp,
            mode: ApicMode::XApic,
            timer: Timer::new(clock),
            esr_pending: 0,
        };
        apic.reset();
        Ok(apic)
    }

    /// The register page (for the kernel: its physical address goes into the VMCS).
    pub fn page(&self) -> &P {
        &self.page
    }

    /// The APIC ID.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The current mode.
    pub fn mode(&self) -> ApicMode {
        self.mode
    }

    /// An INIT (SDM Vol. 3A §11.4.7.3 "Local APIC State After an INIT Reset"): every register
    /// back to its power-up state but the APIC ID; IA32_APIC_BASE (the mode) is unchanged.
    pub fn init(&mut self) {
        self.reset();
    }

    /// Power-up register state: everything 0 but DFR (all ones), SVR (0xFF), the LVTs
    /// (masked), version and ID; timer stopped, no pending errors.
    fn reset(&mut self) {
        for dword in 0..1024 {
            self.page.write(dword * 4, 0);
        }
        self.page.write(offset::VERSION, VERSION);
        self.page.write(offset::DFR, u32::MAX);
        self.page.write(offset::SVR, 0xFF);
        for reg in lvt::ALL {
            self.page.write(reg, lvt::MASKED);
        }
        self.timer.reset();
        self.esr_pending = 0;
        self.write_id_register();
    }

    /// The ID register in the current mode's format (xAPIC: bits 31:24).
    fn write_id_register(&mut self) {
        let value = match self.mode {
            ApicMode::X2Apic => self.id,
            _ => self.id << 24,
        };
        self.page.write(offset::ID, value);
    }

    fn sw_enabled(&self) -> bool {
        self.page.read(offset::SVR) & SVR_ENABLED != 0
    }

    fn test_bit(&self, base: u32, vector: u8) -> bool {
        let (reg, bit) = bit_of(base, vector);
        self.page.read(reg) & bit != 0
    }

    /// Sets or clears a bit; returns whether it changed.
    fn set_bit(&mut self, base: u32, vector: u8, on: bool) -> bool {
        let (reg, bit) = bit_of(base, vector);
        let old = self.page.read(reg);
        let new = if on { old | bit } else { old & !bit };
        self.page.write(reg, new);
        old != new
    }

    fn highest(&self, base: u32) -> Option<u8> {
        (0..8u32).rev().find_map(|i| {
            let word = self.page.read(base + i * 0x10);
            (word != 0).then(|| (i * 32 + 31 - word.leading_zeros()) as u8)
        })
    }

    /// The highest vector in the IRR.
    pub fn highest_irr(&self) -> Option<u8> {
        self.highest(offset::IRR)
    }

    /// The highest vector in the ISR (the one being serviced).
    pub fn highest_isr(&self) -> Option<u8> {
        self.highest(offset::ISR)
    }

    /// The task priority register.
    pub fn tpr(&self) -> u8 {
        self.page.read(offset::TPR) as u8
    }

    /// The processor priority: TPR if its class (bits 7:4) is at least the class of the
    /// highest in-service vector, else that class with sub-class 0 (SDM Vol. 3A §11.8.3.1).
    pub fn ppr(&self) -> u8 {
        let tpr = self.tpr();
        let isrv = self.highest_isr().unwrap_or(0);
        if tpr >> 4 >= isrv >> 4 {
            tpr
        } else {
            isrv & 0xF0
        }
    }

    /// Stores the processor priority in the page, where guest reads (and the CPU) find it.
    fn update_ppr(&mut self) {
        let ppr = self.ppr();
        self.page.write(offset::PPR, u32::from(ppr));
    }

    /// The vector the APIC would present to the CPU now: the highest IRR vector whose
    /// priority class is above the PPR's (SDM Vol. 3A §11.8.4). `None` while the APIC is
    /// globally disabled. Whether the vCPU can take it (RFLAGS.IF, interruptibility) is the
    /// kernel's business.
    pub fn deliverable(&self) -> Option<u8> {
        if self.mode == ApicMode::Disabled {
            return None;
        }
        self.highest_irr().filter(|v| v >> 4 > self.ppr() >> 4)
    }

    /// The CPU took `vector` (software mode: the kernel injected it): IRR → ISR, PPR raised.
    /// Returns `false`, changing nothing, if `vector` was not pending.
    pub fn acknowledge(&mut self, vector: u8) -> bool {
        if !self.test_bit(offset::IRR, vector) {
            return false;
        }
        self.set_bit(offset::IRR, vector, false);
        self.set_bit(offset::ISR, vector, true);
        self.update_ppr();
        true
    }

    /// Accepts a fixed interrupt (from the I/O APIC, an MSI, an IPI or a local source): sets
    /// its IRR bit and sets (level) or clears (edge) its TMR bit (SDM Vol. 3A §11.8.4).
    /// Vectors 0-15 are illegal: ESR "receive illegal vector", not accepted. A disabled APIC
    /// (global or software) accepts nothing. `interrupt_pending` says whether it was accepted.
    pub fn accept(&mut self, vector: u8, trigger: Trigger) -> Effects {
        if vector < 16 {
            return self.error(esr::RECEIVE_ILLEGAL_VECTOR);
        }
        if self.mode == ApicMode::Disabled || !self.sw_enabled() {
            return Effects::default();
        }
        self.set_bit(offset::IRR, vector, true);
        let tmr_changed = self.set_bit(offset::TMR, vector, trigger == Trigger::Level);
        Effects {
            interrupt_pending: true,
            tmr_changed,
            ..Effects::default()
        }
    }

    /// Records errors in the ESR accumulator; a new error raises the LVT error interrupt if
    /// unmasked (SDM Vol. 3A §11.5.3). An illegal vector in the LVT error entry itself is
    /// recorded as a receive error without another interrupt.
    fn error(&mut self, bits: u32) -> Effects {
        let new = bits & !self.esr_pending;
        self.esr_pending |= bits;
        let entry = self.page.read(offset::LVT_ERROR);
        if new == 0 || entry & lvt::MASKED != 0 {
            return Effects::default();
        }
        let vector = entry as u8;
        if vector < 16 {
            self.esr_pending |= esr::RECEIVE_ILLEGAL_VECTOR;
            return Effects::default();
        }
        self.accept(vector, Trigger::Edge)
    }

    /// Software-mode EOI (a write to the EOI register): clears the highest ISR bit and
    /// returns it if it was level-triggered (TMR set), for the I/O APIC (SDM Vol. 3A
    /// §11.8.5). No-op without an in-service vector.
    pub fn eoi(&mut self) -> Option<u8> {
        let vector = self.highest_isr()?;
        self.set_bit(offset::ISR, vector, false);
        self.update_ppr();
        self.test_bit(offset::TMR, vector).then_some(vector)
    }

    /// An EOI-induced VM exit for `vector` (APICv mode, SDM Vol. 3C §30.1.4 and §29.1.2):
    /// the CPU already cleared the ISR bit and updated SVI and PPR. Returns `vector` if it is
    /// level-triggered, for the I/O APIC (an edge-triggered vector exits only while another
    /// waits behind it: [`Vlapic::vmcs_eoi_exit_bitmap`]).
    pub fn eoi_exit(&mut self, vector: u8) -> Option<u8> {
        self.update_ppr();
        self.test_bit(offset::TMR, vector).then_some(vector)
    }

    /// The level-triggered vectors (the TMR) as an EOI-exit bitmap: their EOIs must reach the
    /// I/O APIC. Part of what the VMCS holds ([`Vlapic::vmcs_eoi_exit_bitmap`]).
    pub fn eoi_exit_bitmap(&self) -> [u64; 4] {
        self.bitmap(offset::TMR)
    }

    /// The EOI-exit bitmap for the VMCS at a VM entry under virtual-interrupt delivery: the
    /// level-triggered vectors ([`Vlapic::eoi_exit_bitmap`]) and, while a requested vector waits
    /// behind another one (two or more in the IRR, or one while a vector is in service), every
    /// vector requested or in service.
    ///
    /// The EOI of a vector in the bitmap ends in an EOI-induced VM exit where the CPU would
    /// otherwise evaluate pending virtual interrupts (SDM Vol. 3C §30.1.4 "EOI Virtualization"),
    /// so a vector that the EOI uncovers is not recognized before the next entry, which sees
    /// RFLAGS.IF and holds it back while IF = 0 ([`Vlapic::hold_virtual_delivery`]). Linux
    /// writes EOI at the start of its handlers, with IF = 0: without the exit, the vector
    /// waiting behind the one being handled becomes recognized inside the handler, and Bochs 2.7
    /// delivers it there at the next host interrupt. With two vCPUs on one CPU a timer vector and
    /// an IPI often wait together for a vCPU's next turn. One exit per such EOI; none while at
    /// most one vector is requested and none is in service.
    pub fn vmcs_eoi_exit_bitmap(&self) -> [u64; 4] {
        let tmr = self.bitmap(offset::TMR);
        let requested: u32 = (0..8)
            .map(|i| self.page.read(offset::IRR + i * 0x10).count_ones())
            .sum();
        let waits = requested > 1 || (requested == 1 && self.highest_isr().is_some());
        if !waits {
            return tmr;
        }
        let (irr, isr) = (self.bitmap(offset::IRR), self.bitmap(offset::ISR));
        core::array::from_fn(|i| tmr[i] | irr[i] | isr[i])
    }

    /// A 256-bit register (ISR, TMR, IRR) at `base` as four 64-bit words, vector 0 in bit 0 of
    /// the first.
    fn bitmap(&self, base: u32) -> [u64; 4] {
        core::array::from_fn(|i| {
            let reg = base + (i as u32) * 0x20;
            u64::from(self.page.read(reg)) | (u64::from(self.page.read(reg + 0x10)) << 32)
        })
    }

    /// Guest interrupt status for the VMCS: (RVI, SVI) = highest IRR and ISR vectors, 0 when
    /// none (SDM Vol. 3C §30.1.1 / §24.4.2).
    pub fn rvi_svi(&self) -> (u8, u8) {
        (
            self.highest_irr().unwrap_or(0),
            self.highest_isr().unwrap_or(0),
        )
    }

    /// With virtual-interrupt delivery: whether the VM entry about to happen must set
    /// "interrupt-window exiting" because a vector waits in the IRR while the guest cannot take
    /// an interrupt (`interruptible` false: RFLAGS.IF = 0, or blocking by STI or MOV SS). The
    /// window exit comes once the guest can take one; the entry after it clears the control and
    /// the CPU delivers the vector then.
    ///
    /// While the control is 1 the CPU recognizes no virtual interrupt: not at this entry, not
    /// after an EOI or self-IPI the guest virtualizes before the exit (SDM Vol. 3C §30.2.1
    /// "Evaluation of Pending Virtual Interrupts"). Architecturally this is not needed, as
    /// delivery itself waits for IF = 1 and no blocking (§30.2.2 "Virtual-Interrupt Delivery").
    /// Bochs 2.7 however delivers a recognized virtual interrupt whenever a host interrupt
    /// arrives while the guest runs with IF = 0 under external-interrupt exiting (its interrupt
    /// acknowledge takes the pending virtual vector instead of exiting), which nests the vector
    /// into a guest region with interrupts off. A vector below the in-service class counts too:
    /// an EOI the guest virtualizes before IF returns would make it recognized. Costs one exit
    /// per vector that waits for the guest (`docs/virtual-platform.md`, "Local APIC").
    pub fn hold_virtual_delivery(&self, interruptible: bool) -> bool {
        !interruptible && self.highest_irr().is_some()
    }

    /// TPR write (bits 7:0): the PPR follows.
    fn write_tpr(&mut self, value: u32) {
        self.page.write(offset::TPR, value);
        self.update_ppr();
    }

    /// SVR write: clearing the enable bit masks every LVT (SDM Vol. 3A §11.4.7.2); a timer
    /// expiry already due at `now` happens first.
    fn write_svr(&mut self, value: u32, now: u64) -> Effects {
        let mut fx = Effects::default();
        if value & SVR_ENABLED == 0 {
            fx = self.expire(now);
            let before = self.timer.next_deadline();
            for reg in lvt::ALL {
                let entry = self.page.read(reg);
                self.page.write(reg, entry | lvt::MASKED);
            }
            self.timer.mask();
            fx.timer_changed |= self.timer.next_deadline() != before;
        }
        self.page.write(offset::SVR, value);
        fx
    }

    /// LVT write with reserved bits already clear (and, for the timer, a valid mode); masked
    /// forcibly while the APIC is software-disabled. A timer mode change disarms the timer.
    fn write_lvt(&mut self, reg: u32, value: u32, now: u64) -> Effects {
        let value = if self.sw_enabled() {
            value
        } else {
            value | lvt::MASKED
        };
        let mut fx = Effects::default();
        if reg == offset::LVT_TIMER {
            // An expiry already due happens under the old entry.
            fx.merge(self.expire(now));
            if self.timer.write_lvt(value) {
                self.page.write(offset::INITIAL_COUNT, 0);
            }
            fx.timer_changed = true;
        }
        self.page.write(reg, value);
        fx
    }

    /// ESR write: the accumulated errors become readable and the accumulator clears.
    fn write_esr(&mut self) {
        self.page.write(offset::ESR, self.esr_pending);
        self.esr_pending = 0;
    }

    fn write_initial_count(&mut self, count: u32, now: u64) -> Effects {
        let mut fx = self.expire(now);
        if self.timer.write_initial(count, now) {
            self.page.write(offset::INITIAL_COUNT, count);
            fx.timer_changed = true;
        } else {
            self.page.write(offset::INITIAL_COUNT, 0);
        }
        fx
    }

    fn write_divide(&mut self, value: u32) {
        self.page.write(offset::DIVIDE_CONFIG, value);
        self.timer.write_divide(value);
    }

    /// Processes a timer expiry due at `now` (if any): the timer vector enters the IRR unless
    /// the LVT timer entry is masked (SDM Vol. 3A §11.5.4).
    pub fn expire(&mut self, now: u64) -> Effects {
        let before = self.timer.next_deadline();
        let mut fx = match self.timer.expire(now) {
            Some(vector) => self.accept(vector, Trigger::Edge),
            None => Effects::default(),
        };
        fx.timer_changed |= self.timer.next_deadline() != before;
        fx
    }

    /// The TSC value at which the timer next needs [`Vlapic::expire`]; `None` when disarmed
    /// or masked.
    pub fn next_deadline(&self) -> Option<u64> {
        self.timer.next_deadline()
    }

    /// The timer's current count at `now` (also what reads of offset 0x390 return).
    pub fn current_count(&self, now: u64) -> u32 {
        self.timer.current_count(now)
    }

    /// IA32_TSC_DEADLINE (MSR 0x6E0) as the guest reads it: 0 unless armed in TSC-deadline
    /// mode.
    pub fn tsc_deadline(&self) -> u64 {
        self.timer.tsc_deadline()
    }

    /// Writes IA32_TSC_DEADLINE (SDM Vol. 3A §11.5.4.1): ignored unless the timer is in
    /// TSC-deadline mode; 0 disarms; a value not after `now` fires at once.
    pub fn set_tsc_deadline(&mut self, value: u64, now: u64) -> Effects {
        if !self.timer.set_tsc_deadline(value) {
            return Effects::default();
        }
        let mut fx = self.expire(now);
        fx.timer_changed = true;
        fx
    }
}
