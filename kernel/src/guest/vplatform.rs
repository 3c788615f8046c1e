//! The virtual platform of a guest that runs an operating system: the local APIC of each of its
//! vCPUs (`conduit-vlapic`; vCPU `i` has APIC ID `i`), its I/O APIC (`conduit-vioapic`) and the
//! interrupt line of its UART. The models decide; this module carries their decisions out: VMCS
//! fields of APIC virtualization, the guest's MMIO and MSR accesses, the routing of I/O APIC
//! deliveries and IPIs to the local APICs they name (`conduit_vlapic::targets`), the timers'
//! deadlines for the scheduler. IPIs that are no vector (NMI, INIT, start-up) are handed to the
//! guest module as [`Signal`]s, which change the target vCPU's state.
//!
//! Two ways to run the one local APIC model (Intel SDM Vol. 3C ch. 30 "APIC Virtualization and
//! Virtual Interrupts"):
//! - **APIC virtualization** where the CPU offers it (TPR shadow, virtualize APIC accesses,
//!   APIC-register virtualization, virtual-interrupt delivery): the model's register page is the
//!   VMCS virtual-APIC page; guest reads, TPR writes and EOIs of edge-triggered vectors cost no
//!   exit; other register writes come as trap-like APIC-write exits (§30.4.3.3), EOIs of
//!   level-triggered vectors as EOI-induced exits (§30.1.4); a pending vector is announced through
//!   RVI in the guest interrupt status (§30.2.1) and delivered by the CPU.
//! - **Software**: the APIC's page is left out of EPT; every access is an EPT violation carried
//!   out through the MMIO decoder, and vectors are injected at VM entry like any other event,
//!   acknowledged in the model when they go in.

use alloc::vec::Vec;
use conduit_hw::memory::{FRAME_SIZE, Memory, PhysAddr, PhysWindow};
use conduit_vioapic::{Delivery, DeliveryMode, VirtualIoApic};
use conduit_vlapic::{
    ApicPage, DeliveryMode as IpiMode, Effects, Inbox, TimerClock, Trigger, Vlapic,
};

/// Where the guest finds its local APIC and I/O APIC (guest-physical), as its ACPI MADT says.
pub const LAPIC_GPA: u64 = 0xfee0_0000;
pub const IOAPIC_GPA: u64 = 0xfec0_0000;
/// The I/O APIC's window (its registers end at 0x40 + 4; the page is the emulated range).
pub const IOAPIC_LEN: u64 = 0x1000;
/// The I/O APIC pin of the UART (ISA IRQ 4, identity-mapped to GSI 4).
pub const UART_PIN: u8 = 4;
/// The guest local APIC timer's input clock: the core crystal clock the guest's CPUID leaf 0x15
/// states (`conduit_clock::guest_leaf15`).
const APIC_TIMER_HZ: u64 = conduit_clock::GUEST_CRYSTAL_HZ as u64;

/// The virtual-APIC page: a host frame the model reads and writes through the physical-memory
/// window, and which the CPU itself reads and writes while the guest runs with APIC
/// virtualization (hence volatile accesses).
#[derive(Debug)]
pub struct ApicFrame {
    page: PhysAddr,
    base: *mut u32,
}

impl ApicPage for ApicFrame {
    // Dword-granular: the model keeps the x2APIC ICR's high half at 0x304 (SDM Vol. 3C §30.5),
    // which a 16-byte granularity would fold onto the low half at 0x300.
    fn read(&self, offset: u32) -> u32 {
        let i = (offset as usize & 0xffc) / 4;
        // SAFETY: `base` maps this vCPU's own 4 KiB virtual-APIC frame (allocated in
        // `VirtualPlatform::new`, never freed while the guest exists); `i` < 1024. The CPU
        // writes the frame only while this vCPU runs, never while the hypervisor does.
        unsafe { self.base.add(i).read_volatile() }
    }

    fn write(&mut self, offset: u32, value: u32) {
        let i = (offset as usize & 0xffc) / 4;
        // SAFETY: as in `read`.
        unsafe { self.base.add(i).write_volatile(value) }
    }
}

// SAFETY: the frame belongs to one guest, which one CPU runs at a time; the pointer is only a
// window address of that frame.
unsafe impl Send for ApicFrame {}

/// Why a platform could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlatformError {
    /// No frame is left for the virtual-APIC page.
    NoFrame,
    /// The local APIC model refused its configuration (ID or clock).
    Lapic(conduit_vlapic::ConfigError),
    /// More vCPUs than one guest's IPIs can name (`conduit_vlapic::MAX_APICS`).
    TooManyVcpus(usize),
}

impl core::fmt::Display for PlatformError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoFrame => f.write_str("no frame is left for the virtual-APIC page"),
            Self::Lapic(e) => write!(f, "local APIC: {e:?}"),
            Self::TooManyVcpus(n) => write!(f, "{n} vCPUs: more than one guest's IPIs can name"),
        }
    }
}

/// What an IPI asks of a vCPU beyond its local APIC's IRR, for the guest module to carry out
/// (`Guest::deliver_signals`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// A vector entered the IRR (or the inbox) of this vCPU: it may have to run, wake from HLT
    /// or leave the guest soon.
    Interrupt(usize),
    /// That vector was a fixed IPI from another vCPU: on the sender's CPU the target runs next,
    /// so that the answer does not wait for the sender's slice.
    Ipi(usize),
    /// An NMI for this vCPU.
    Nmi(usize),
    /// An INIT (assert) for this vCPU: it waits for a start-up IPI.
    Init(usize),
    /// A start-up IPI for this vCPU, with its vector (the start page).
    StartUp(usize, u8),
}

/// An OS guest's interrupt controllers.
#[derive(Debug)]
pub struct VirtualPlatform {
    /// The local APIC of each vCPU (index = vCPU = APIC ID).
    pub lapics: Vec<Vlapic<ApicFrame>>,
    pub ioapic: VirtualIoApic,
    /// APIC virtualization is on in the VMCS (else software emulation).
    pub apicv: bool,
    /// With APIC virtualization: the APIC-access page is in the guest's EPT at [`LAPIC_GPA`]
    /// (only while the running vCPU's APIC is in xAPIC mode;
    /// `vplatform_exits::sync_apic_page`).
    pub apic_page_mapped: bool,
    /// The EOI-exit bitmap as last written to each vCPU's VMCS.
    eoi_exit: Vec<[u64; 4]>,
    /// The UART's interrupt output as last seen (its edges drive the I/O APIC pin).
    uart_line: bool,
    /// Interrupt messages that reached nobody: I/O APIC messages of a delivery mode the platform
    /// does not deliver, IPIs to APIC IDs the guest does not own (and SMIs).
    pub dropped: u64,
    /// I/O APIC inputs driven by an assigned function's physical INTx line (bit n: input n),
    /// kept across resets (the wiring does not change).
    intx_inputs: u32,
    /// IPIs for the guest module to carry out, in the order they were sent.
    signals: Vec<Signal>,
    /// The destination of each vector of the guest's message-signalled interrupts, as it last
    /// programmed it: the MSI address's destination ID (bits 19:12) and destination mode (bit 2)
    /// (SDM Vol. 3A §11.11.1 "Message Address Register Format").
    msi_dest: [Option<(u8, bool)>; 256],
    /// The vCPUs in VMX non-root operation on another CPU (bit k: vCPU k): under APIC
    /// virtualization the processor that runs one updates its virtual-APIC page (SDM Vol. 3C
    /// §30.1.1, §30.2), so what is sent to it waits in its inbox (`conduit_vlapic::Inbox`).
    away: u64,
    /// Per vCPU: interrupts and an INIT that arrived while it was away.
    inbox: Vec<Inbox>,
}

impl VirtualPlatform {
    /// A platform with `vcpus` local APICs (IDs 0..`vcpus`, 0 the BSP) in their reset state and
    /// an I/O APIC with every pin masked.
    pub fn new(
        mem: &Memory,
        vcpus: usize,
        apicv: bool,
        tsc_hz: u64,
    ) -> Result<Self, PlatformError> {
        if vcpus > conduit_vlapic::MAX_APICS {
            return Err(PlatformError::TooManyVcpus(vcpus));
        }
        let mut lapics = Vec::with_capacity(vcpus);
        for id in 0..vcpus {
            match new_lapic(mem, id as u32, tsc_hz) {
                Ok(l) => lapics.push(l),
                Err(e) => {
                    for l in &lapics {
                        mem.frames.lock().free(l.page().page);
                    }
                    return Err(e);
                }
            }
        }
        Ok(Self {
            lapics,
            ioapic: VirtualIoApic::new(),
            apicv,
            apic_page_mapped: apicv,
            eoi_exit: alloc::vec![[0; 4]; vcpus],
            uart_line: false,
            dropped: 0,
            intx_inputs: 0,
            signals: Vec::new(),
            msi_dest: [None; 256],
            away: 0,
            inbox: alloc::vec![Inbox::default(); vcpus],
        })
    }

    /// Back to the reset state (a restarted guest) on the same virtual-APIC frames: the local
    /// APICs at power-up, every I/O APIC pin masked, the UART line low.
    pub fn reset(&mut self, apicv: bool, tsc_hz: u64) -> Result<(), conduit_vlapic::ConfigError> {
        for (id, lapic) in self.lapics.iter_mut().enumerate() {
            let frame = lapic.page();
            let (page, base) = (frame.page, frame.base);
            // SAFETY: `base` maps this vCPU's own virtual-APIC frame; the guest does not run
            // while it is rebuilt.
            unsafe { core::ptr::write_bytes(base as *mut u8, 0, FRAME_SIZE as usize) };
            *lapic = Vlapic::new(ApicFrame { page, base }, id as u32, id == 0, clock(tsc_hz))?;
        }
        self.ioapic = VirtualIoApic::new();
        self.apicv = apicv;
        // `vcpu::setup` maps the APIC-access page again under APIC virtualization.
        self.apic_page_mapped = apicv;
        self.eoi_exit.fill([0; 4]);
        self.uart_line = false;
        self.dropped = 0;
        self.signals.clear();
        self.msi_dest = [None; 256];
        self.inbox.fill(Inbox::default());
        // The wiring stays; `irq::guest_reset` re-arms the physical lines.
        let wired = core::mem::take(&mut self.intx_inputs);
        for input in 0..conduit_vioapic::PINS as u8 {
            if wired & (1 << input) != 0 {
                self.wire_intx(input);
            }
        }
        Ok(())
    }

    /// The host-physical address of vCPU `cpu`'s virtual-APIC page.
    pub fn apic_page(&self, cpu: usize) -> u64 {
        self.lapics[cpu].page().page.0
    }

    /// Hands an I/O APIC delivery to the local APICs its destination names (physical or
    /// logical, SDM Vol. 3A §11.6.2; lowest priority: the first of them, as for IPIs). Fixed and
    /// lowest-priority messages carry a vector; the others (SMI, NMI, INIT, ExtINT) have no
    /// meaning on this platform (no SMM, no 8259) and are counted as dropped.
    fn route(&mut self, d: Delivery) {
        let lowest = match d.mode {
            DeliveryMode::Fixed => false,
            DeliveryMode::LowestPriority => true,
            _ => {
                self.dropped += 1;
                return;
            }
        };
        let trigger = if d.level {
            Trigger::Level
        } else {
            Trigger::Edge
        };
        for cpu in 0..self.lapics.len() {
            if self.lapics[cpu].matches(u32::from(d.dest), d.logical) {
                self.accept(cpu, d.vector, trigger);
                if lowest {
                    return;
                }
            }
        }
    }

    /// `vector` for vCPU `cpu`'s local APIC: accepted into its IRR (SDM Vol. 3A §11.5.5), or,
    /// while the vCPU is away, into its inbox. Either way the vCPU is signalled, so that it
    /// wakes or leaves the guest and takes it ([`Signal::Interrupt`]).
    pub fn accept(&mut self, cpu: usize, vector: u8, trigger: Trigger) {
        if self.away & (1 << cpu) != 0 {
            self.inbox[cpu].post(vector, trigger);
        } else {
            let e = self.lapics[cpu].accept(vector, trigger);
            self.apply(cpu, e);
        }
        self.signal(Signal::Interrupt(cpu));
    }

    /// Records `s` for the guest module, once.
    fn signal(&mut self, s: Signal) {
        if !self.signals.contains(&s) {
            self.signals.push(s);
        }
    }

    /// vCPU `cpu` enters VMX non-root operation on its CPU (`away`), or left it and its CPU
    /// handles it again: then what reached it meanwhile goes into its local APIC at once.
    pub fn set_away(&mut self, cpu: usize, away: bool) {
        if away {
            self.away |= 1 << cpu;
        } else {
            self.away &= !(1 << cpu);
            self.drain_inbox(cpu);
        }
    }

    /// What reached vCPU `cpu` while it was away, into its local APIC: the INIT first (SDM
    /// Vol. 3A §11.4.7.3), then the vectors.
    fn drain_inbox(&mut self, cpu: usize) {
        if self.inbox[cpu].is_empty() {
            return;
        }
        let drained = self.inbox[cpu].take();
        if drained.init {
            self.lapics[cpu].init();
        }
        for (vector, trigger) in drained.vectors() {
            let e = self.lapics[cpu].accept(vector, trigger);
            self.apply(cpu, e);
        }
    }

    /// After a local APIC EOI of a level-triggered vector: the I/O APIC clears remote IRR of the
    /// pins with that vector and delivers again where the line is still asserted (an input
    /// driven by a physical INTx line is released instead: [`VirtualPlatform::wire_intx`]).
    pub fn broadcast_eoi(&mut self, vector: u8) {
        for d in self.ioapic.eoi(vector).iter() {
            self.route(d);
        }
    }

    /// Input `input` is driven by an assigned function's physical INTx line, which is masked
    /// from each interrupt until the guest's EOI for it (`VirtualIoApic::forward`).
    pub fn wire_intx(&mut self, input: u8) {
        if self.ioapic.forward(input).is_ok() {
            self.intx_inputs |= 1 << input;
        }
    }

    /// The physical INTx line behind input `input` fired: the input is asserted (a level entry
    /// delivers once, until its EOI; a masked entry waits for the guest to unmask it).
    pub fn assert_intx(&mut self, input: u8) {
        if self.intx_inputs & (1 << input) == 0 {
            return;
        }
        if let Ok(Some(d)) = self.ioapic.set_line(input, true) {
            self.route(d);
        }
    }

    /// The INTx inputs released since the last call (bit n: input n): their physical lines are
    /// to be unmasked.
    pub fn take_intx_eois(&mut self) -> u32 {
        self.ioapic.take_released()
    }

    /// Carries out what vCPU `cpu`'s local APIC operation asked for: the EOI broadcast of a
    /// level-triggered vector, and an IPI to the vCPUs it names (`conduit_vlapic::targets`):
    /// fixed and lowest-priority vectors into their IRRs, NMI, INIT and start-up as
    /// [`Signal`]s. An IPI that names no vCPU of the guest (an APIC ID or logical destination it
    /// does not own) reaches nobody and is counted as dropped, as is an SMI.
    pub fn apply(&mut self, cpu: usize, effects: Effects) {
        if let Some(vector) = effects.eoi {
            self.broadcast_eoi(vector);
        }
        let Some(ipi) = effects.ipi else {
            return;
        };
        if ipi.is_init_deassert() {
            return;
        }
        let targets = conduit_vlapic::targets(&ipi, cpu, &self.lapics);
        if targets.is_empty() && !self.accepted_by_sender(&ipi) {
            self.dropped += 1;
            return;
        }
        for t in targets.iter() {
            match ipi.delivery_mode {
                IpiMode::Fixed | IpiMode::LowestPriority => {
                    self.accept(t, ipi.vector, ipi.trigger);
                    if t != cpu {
                        self.signal(Signal::Ipi(t));
                    }
                }
                IpiMode::Nmi => self.signals.push(Signal::Nmi(t)),
                IpiMode::Init => {
                    if self.away & (1 << t) != 0 {
                        self.inbox[t].post_init();
                    } else {
                        self.lapics[t].init();
                    }
                    self.signals.push(Signal::Init(t));
                }
                IpiMode::StartUp => self.signals.push(Signal::StartUp(t, ipi.vector)),
                IpiMode::Smi => self.dropped += 1,
            }
        }
    }

    /// Whether the sender's own model took `ipi` (a fixed IPI to all including self): then an
    /// empty target set (a guest with one vCPU) still reached someone.
    fn accepted_by_sender(&self, ipi: &conduit_vlapic::Ipi) -> bool {
        ipi.delivery_mode == IpiMode::Fixed
            && ipi.shorthand == conduit_vlapic::Shorthand::AllIncludingSelf
    }

    /// The guest routed a message-signalled interrupt with `vector` to `address`.
    pub fn set_msi_destination(&mut self, vector: u8, address: u64) {
        let dest = (address >> 12) as u8;
        self.msi_dest[usize::from(vector)] = Some((dest, address & (1 << 2) != 0));
    }

    /// The vCPU a message-signalled interrupt with `vector` goes to: the first whose local APIC
    /// its destination names (lowest priority picks the first too), else vCPU 0 (a destination
    /// naming none of the guest's APICs, or a vector whose message it never wrote).
    pub fn msi_vcpu(&self, vector: u8) -> usize {
        self.msi_dest[usize::from(vector)]
            .map_or(0, |(dest, logical)| self.vcpu_named(dest, logical))
    }

    /// The vCPU a compatibility-format message to `address` is for, by the same rule as
    /// [`VirtualPlatform::msi_vcpu`]: destination ID in address bits 19:12, destination mode in
    /// bit 2 (1 = logical; SDM Vol. 3A §11.11.1), matched against the guest's local APICs as
    /// they are now; the first that matches, else vCPU 0.
    pub fn msi_target(&self, address: u64) -> usize {
        self.vcpu_named((address >> 12) as u8, address & (1 << 2) != 0)
    }

    /// The first vCPU whose local APIC the 8-bit destination `dest` names (SDM Vol. 3A
    /// §11.6.2), else vCPU 0.
    fn vcpu_named(&self, dest: u8, logical: bool) -> usize {
        self.lapics
            .iter()
            .position(|l| l.matches(u32::from(dest), logical))
            .unwrap_or(0)
    }

    /// The IPIs for the guest module to carry out since the last call.
    pub fn take_signals(&mut self) -> Vec<Signal> {
        core::mem::take(&mut self.signals)
    }

    /// Whether IPIs wait for the guest module ([`VirtualPlatform::take_signals`]).
    pub fn has_signals(&self) -> bool {
        !self.signals.is_empty()
    }

    /// The UART's interrupt output is now `asserted`: the I/O APIC pin follows it.
    pub fn set_uart_line(&mut self, asserted: bool) {
        if asserted != self.uart_line {
            self.uart_line = asserted;
            if let Ok(Some(d)) = self.ioapic.set_line(UART_PIN, asserted) {
                self.route(d);
            }
        }
    }

    /// An access of `size` bytes at `offset` in the I/O APIC's window; returns the value read.
    pub fn ioapic_access(&mut self, offset: u64, size: u8, store: Option<u64>) -> u64 {
        // The registers are 32 bits wide; other sizes are not defined (ignored / all ones).
        if size != 4 || !offset.is_multiple_of(4) {
            return u64::from(u32::MAX);
        }
        match store {
            None => u64::from(self.ioapic.read(offset as u32)),
            Some(v) => {
                for d in self.ioapic.write(offset as u32, v as u32).iter() {
                    self.route(d);
                }
                0
            }
        }
    }

    /// An access of `size` bytes at `offset` in vCPU `cpu`'s local APIC page (software
    /// emulation, or an APIC-access exit for a register the CPU does not virtualize); returns
    /// the value read.
    pub fn lapic_access(
        &mut self,
        cpu: usize,
        offset: u64,
        size: u8,
        store: Option<u64>,
        now: u64,
    ) -> u64 {
        // xAPIC registers are 32-bit, 16-byte aligned (SDM Vol. 3A §11.4.1). A narrower read
        // inside a register's 32 bits gets its bytes of the register, as APIC virtualization
        // gives them (SDM Vol. 3C §30.4.2), so both modes answer alike; other accesses read 0
        // and writes other than 32-bit aligned ones are dropped.
        let within = offset % 16 + u64::from(size) <= 4;
        let (value, e) = match store {
            None if matches!(size, 1 | 2 | 4) && within => {
                let (dword, e) = self.lapics[cpu].read((offset & !0xf) as u32, now);
                let bits = u32::from(size) * 8;
                let shifted = dword >> ((offset % 4) * 8);
                let value = if bits == 32 {
                    shifted
                } else {
                    shifted & ((1 << bits) - 1)
                };
                (value, e)
            }
            Some(v) if size == 4 && offset.is_multiple_of(16) => {
                (0, self.lapics[cpu].write(offset as u32, v as u32, now))
            }
            _ => return 0,
        };
        self.apply(cpu, e);
        u64::from(value)
    }

    /// Before an entry of vCPU `cpu`: its due timer fires into IRR. With APIC virtualization, returns what the
    /// VMCS must hold: the EOI-exit bitmap if it changed since it was last written (the
    /// level-triggered vectors, whose EOI the I/O APIC must see, and, while a vector waits behind
    /// another, the vectors whose EOI would uncover it: `Vlapic::vmcs_eoi_exit_bitmap`) and the
    /// guest interrupt status
    /// (RVI = highest IRR, SVI = highest ISR), written before every entry since the CPU itself
    /// changes it while delivering and completing vectors (SDM Vol. 3C §30.2).
    pub fn before_entry(&mut self, cpu: usize, now: u64) -> Option<(Option<[u64; 4]>, u16)> {
        let e = self.lapics[cpu].expire(now);
        self.apply(cpu, e);
        if !self.apicv {
            return None;
        }
        let bitmap = self.lapics[cpu].vmcs_eoi_exit_bitmap();
        let changed = (bitmap != self.eoi_exit[cpu]).then_some(bitmap);
        self.eoi_exit[cpu] = bitmap;
        let (rvi, svi) = self.lapics[cpu].rvi_svi();
        Some((changed, u16::from(rvi) | (u16::from(svi) << 8)))
    }

    /// The guest TSC value at which vCPU `cpu`'s local APIC timer is due next, if armed.
    pub fn next_deadline(&self, cpu: usize) -> Option<u64> {
        self.lapics[cpu].next_deadline()
    }
}

/// The timer clock of every local APIC: the TSC at `tsc_hz`, the crystal the guest's CPUID
/// states.
fn clock(tsc_hz: u64) -> TimerClock {
    TimerClock {
        tsc_hz,
        apic_timer_hz: APIC_TIMER_HZ,
    }
}

/// A local APIC with ID `id` (the BSP's if 0) on a new zeroed virtual-APIC frame.
fn new_lapic(mem: &Memory, id: u32, tsc_hz: u64) -> Result<Vlapic<ApicFrame>, PlatformError> {
    let page = mem.frames.lock().allocate().ok_or(PlatformError::NoFrame)?;
    let window = PhysWindow::new(mem, true);
    let base = window.virt(page.0) as *mut u32;
    // SAFETY: the frame was just allocated and is mapped through the window.
    unsafe { core::ptr::write_bytes(base as *mut u8, 0, FRAME_SIZE as usize) };
    Vlapic::new(ApicFrame { page, base }, id, id == 0, clock(tsc_hz)).map_err(|e| {
        mem.frames.lock().free(page);
        PlatformError::Lapic(e)
    })
}
