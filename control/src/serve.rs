//! Serving requests: the guests' virtual topologies and what a guest's write means for the
//! physical function.
//!
//! Per guest (by index) the task keeps a [`VirtualTopology`] and, per function, what it needs
//! to apply a guest's Command write to the device: memory and I/O decode stay as the task set
//! them at `AddFunction` (the BARs are mapped straight through EPT, so the device must decode),
//! Bus Master follows the guest only when the core said its DMA is confined
//! ([`FN_BUS_MASTER_ALLOWED`]; the guest's view starts with Bus Master as the device had it at
//! assignment), INTx Disable follows the guest, and so do MSI-X Enable and Function Mask (the
//! table entries themselves are programmed by the core, in remappable format). The physical MSI
//! capability takes only the core's message (`Op::PhysicalMsi`). Nothing else of a guest's
//! writes reaches the device: BARs, MSI and MSI-X are virtual (`conduit-vpci`) and their changes
//! go back to the core as events.

use crate::config::Physical;
use crate::heap;
use alloc::vec::Vec;
use conduit_control_abi::shared::{FN_BUS_MASTER_ALLOWED, FN_ID_OVERRIDE, FN_QUIESCE, FN_REBUILD};
use conduit_control_abi::{
    ConfigWindows, FunctionInfo, Op, PHYSICAL_MSI_ENABLE, Reply, Request, SharedPage, Status,
    WireEvent, layout,
};
use conduit_pci::config::{command, write_command};
use conduit_pci::{Bar, Bdf, ConfigAccess, PciAddress};
use conduit_vpci::{
    AccessError, BuildError, Event, Events, MsiInfo, Policy, VfConfig, VirtualFunction,
    VirtualTopology,
};
use core::cell::UnsafeCell;

/// At most this many guests (`conduit_config::guest::MAX_GUESTS`: the configuration refuses more).
const MAX_GUESTS: u32 = 64;
/// At most this many functions per guest (devices 1-31 of virtual bus 0, and then some).
const MAX_FUNCTIONS: usize = 64;

/// What the task remembers of one assigned function's physical side.
struct Physical1 {
    vbdf: Bdf,
    bdf: Bdf,
    /// The accessor of the function's PCI segment.
    cfg: Physical,
    bus_master_allowed: bool,
    /// Decode enables the task keeps on (memory and/or I/O).
    decode: u16,
    /// Offset of the MSI-X capability (its Enable and Function Mask follow the guest's).
    msix_cap: Option<u16>,
    /// The MSI capability (programmed only with the core's message, `Op::PhysicalMsi`).
    msi: Option<MsiInfo>,
}

struct GuestState {
    topology: VirtualTopology,
    functions: Vec<Physical1>,
}

struct State {
    windows: ConfigWindows,
    guests: Vec<GuestState>,
}

/// The task's state between calls.
struct Global(UnsafeCell<Option<State>>);

// SAFETY: the task is single-threaded: the kernel enters it synchronously on one CPU, and no
// interrupt handler of the task exists. Every access goes through `with_state`, which is never
// re-entered.
unsafe impl Sync for Global {}

static STATE: Global = Global(UnsafeCell::new(None));

fn with_state<R>(f: impl FnOnce(&mut Option<State>) -> R) -> R {
    // SAFETY: see `Global`: one caller at a time, and `f` does not call `with_state`.
    f(unsafe { &mut *STATE.0.get() })
}

/// Runs `f` on the shared page.
pub fn with_shared<R>(f: impl FnOnce(&mut SharedPage) -> R) -> R {
    // SAFETY: the kernel maps the shared page read-write at SHARED_VA for this task and does
    // not touch it while the task runs (one CPU, synchronous calls); every bit pattern is a
    // valid SharedPage (plain integers).
    f(unsafe { &mut *(layout::SHARED_VA as *mut SharedPage) })
}

/// Appends text to the shared page's message.
pub struct MessageWriter<'a> {
    page: &'a mut SharedPage,
}

impl<'a> MessageWriter<'a> {
    /// Starts an empty message.
    pub fn new(page: &'a mut SharedPage) -> Self {
        page.message_len = 0;
        Self { page }
    }
}

impl core::fmt::Write for MessageWriter<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let used = (self.page.message_len as usize).min(self.page.message.len());
        let room = self.page.message.len() - used;
        // Cut at a character boundary so the message stays UTF-8.
        let mut n = s.len().min(room);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.page.message[used..used + n].copy_from_slice(&s.as_bytes()[..n]);
        self.page.message_len = (used + n) as u32;
        Ok(())
    }
}

fn message(args: core::fmt::Arguments<'_>) {
    with_shared(|page| {
        let _ = core::fmt::Write::write_fmt(&mut MessageWriter::new(page), args);
    });
}

/// Serves one request.
pub fn serve(r: &Request) -> Reply {
    match r.op {
        Op::Init => init(),
        #[cfg(feature = "selftest")]
        Op::TestFault => test_fault(r),
        _ => with_state(|state| match state {
            None => Reply::error(Status::NotInitialised),
            Some(state) => match r.op {
                Op::ConfigRead => config_read(state, r),
                Op::ConfigWrite => config_write(state, r),
                Op::AddFunction => add_function(state, r),
                Op::MsixRead | Op::MsixWrite => msix(state, r),
                Op::PhysicalRead => physical_read(state, r),
                Op::ResetFunction => reset_function(state, r),
                Op::PhysicalMsi => physical_msi(state, r),
                Op::Init => Reply::error(Status::BadRequest),
                #[cfg(feature = "selftest")]
                Op::TestFault => Reply::error(Status::BadRequest),
            },
        }),
    }
}

fn init() -> Reply {
    heap::init();
    let info = with_shared(|p| p.init);
    let windows = match ConfigWindows::new(&info) {
        Ok(w) => w,
        Err(e) => {
            message(format_args!("{e}"));
            return Reply::error(Status::BadDescription);
        }
    };
    if info.guests > MAX_GUESTS {
        return Reply::error(Status::Full);
    }
    let mut guests = Vec::new();
    for _ in 0..info.guests {
        guests.push(GuestState {
            topology: VirtualTopology::new(),
            functions: Vec::new(),
        });
    }
    with_state(|s| *s = Some(State { windows, guests }));
    Reply::ok(u64::from(info.guests))
}

fn guest(state: &mut State, index: u16) -> Result<&mut GuestState, Reply> {
    state
        .guests
        .get_mut(usize::from(index))
        .ok_or(Reply::error(Status::NoSuchGuest))
}

fn config_offset(r: &Request) -> Result<u16, Reply> {
    u16::try_from(r.offset).map_err(|_| Reply::error(Status::BadAccess))
}

fn config_read(state: &mut State, r: &Request) -> Reply {
    let g = match guest(state, r.guest) {
        Ok(g) => g,
        Err(e) => return e,
    };
    let offset = match config_offset(r) {
        Ok(o) => o,
        Err(e) => return e,
    };
    match g.topology.read(r.vbdf, offset, r.size) {
        Ok(v) => Reply::ok(u64::from(v)),
        Err(_) => Reply::error(Status::BadAccess),
    }
}

fn config_write(state: &mut State, r: &Request) -> Reply {
    let g = match guest(state, r.guest) {
        Ok(g) => g,
        Err(e) => return e,
    };
    let offset = match config_offset(r) {
        Ok(o) => o,
        Err(e) => return e,
    };
    match g.topology.write(r.vbdf, offset, r.size, r.value as u32) {
        Ok(events) => {
            apply_physical(g, r.vbdf, &events);
            publish(&events);
            Reply::ok(0)
        }
        Err(_) => Reply::error(Status::BadAccess),
    }
}

/// What a guest's write means for the device itself: only Bus Master (within what the core
/// allows) and INTx Disable; a Function Level Reset turns Bus Master off again.
fn apply_physical(g: &GuestState, vbdf: Bdf, events: &Events) {
    let Some(p) = g.functions.iter().find(|p| p.vbdf == vbdf) else {
        return;
    };
    let mut cfg = p.cfg;
    for e in events {
        match *e {
            Event::CommandChanged {
                bus_master,
                intx_disable,
                ..
            } => {
                let mut value = p.decode;
                if bus_master && p.bus_master_allowed {
                    value |= command::BUS_MASTER;
                }
                if intx_disable {
                    value |= command::INTX_DISABLE;
                }
                write_command(&mut cfg, p.bdf, value);
            }
            Event::FunctionReset => {
                write_command(&mut cfg, p.bdf, p.decode);
                if let Some(msi) = &p.msi {
                    set_msi_enable(&mut cfg, p.bdf, msi, false);
                }
            }
            Event::MsixControlChanged {
                enabled,
                function_mask,
            } => {
                if let Some(off) = p.msix_cap {
                    // Message Control (PCIe Base Spec r6.0 §7.7.2.2): Enable bit 15, Function
                    // Mask bit 14; Table Size is read-only.
                    let ctl = cfg.read16(p.bdf, off + 2) & !0xc000;
                    let ctl = ctl | u16::from(enabled) << 15 | u16::from(function_mask) << 14;
                    cfg.write16(p.bdf, off + 2, ctl);
                }
            }
            _ => {}
        }
    }
}

fn publish(events: &Events) {
    with_shared(|page| {
        let mut n = 0;
        for (slot, e) in page.events.iter_mut().zip(events.iter()) {
            *slot = WireEvent::encode(e);
            n += 1;
        }
        page.event_count = n;
    });
}

fn add_function(state: &mut State, r: &Request) -> Reply {
    let info: FunctionInfo = with_shared(|p| p.function);
    // The physical function, segment-qualified: its segment's window is the only one reached.
    let Some(address) = info.address() else {
        return Reply::error(Status::BadDescription);
    };
    let mut physical = Physical::new(state.windows, address.segment);
    let g = match guest(state, r.guest) {
        Ok(g) => g,
        Err(e) => return e,
    };
    if g.functions.len() >= MAX_FUNCTIONS {
        return Reply::error(Status::Full);
    }
    let count = (info.bar_count as usize).min(info.bars.len());
    let mut bars: Vec<Bar> = Vec::new();
    for w in &info.bars[..count] {
        match w.to_bar() {
            Some(b) => bars.push(b),
            None => return Reply::error(Status::BadDescription),
        }
    }
    let bdf = info.bdf();
    let built = if info.flags & FN_ID_OVERRIDE != 0 {
        let overlay = VfConfig::new(&physical, bdf, info.id as u16, (info.id >> 16) as u16);
        VirtualFunction::build(&overlay, bdf, &bars, &Policy::DEFAULT)
    } else {
        VirtualFunction::build(&physical, bdf, &bars, &Policy::DEFAULT)
    };
    let mut vf = match built {
        Ok(vf) => vf,
        Err(e) => {
            build_message(address, &e);
            return Reply::error(Status::BuildFailed);
        }
    };
    vf.set_interrupt_line(info.interrupt_line as u8);
    let msix_cap = vf.msix().map(|m| m.offset);
    let msi = vf.msi().copied();
    let (msix_table, msix_entries) = vf.msix().map_or((0, 0), |m| {
        (
            u32::from(m.table_bir) | m.table_offset,
            u32::from(m.table_size),
        )
    });
    let mut decode = 0;
    if bars.iter().any(Bar::is_memory) {
        decode |= command::MEMORY_SPACE;
    }
    if bars.iter().any(Bar::is_io) {
        decode |= command::IO_SPACE;
    }
    let allowed = info.flags & FN_BUS_MASTER_ALLOWED != 0;
    // Bus mastering as the hypervisor left it at assignment (an NVMe VF brought online, or what
    // the firmware set) becomes the guest's starting view, so view and device agree; where it is
    // not allowed it goes off. Decode goes on for the pass-through BARs.
    let bus_master = allowed
        && info.flags & FN_QUIESCE == 0
        && conduit_pci::config::read_command(&physical, bdf) & command::BUS_MASTER != 0;
    if bus_master
        && vf
            .write(
                conduit_pci::config::reg::COMMAND,
                2,
                u32::from(command::BUS_MASTER),
            )
            .is_err()
    {
        return Reply::error(Status::BuildFailed);
    }
    // The addresses the core placed for an OS guest go in as the guest's own write would, with
    // decode off (no event): the guest finds the BARs as firmware leaves them, and finds them
    // there again after a reset.
    for w in info.bars[..count].iter().filter(|w| w.guest_base != 0) {
        let at = conduit_vpci::bar::BAR0 + 4 * w.index as u16;
        if vf.place_bar(at, w.guest_base).is_err() {
            return Reply::error(Status::BadDescription);
        }
    }
    if let Err(e) = g.topology.insert(r.vbdf, vf) {
        message(format_args!("{e}"));
        return Reply::error(Status::Topology);
    }
    // A function rebuilt after a restart stays as its guest left it (the core replays the
    // guest's writes next); a new one starts with decode on and MSI/MSI-X off.
    if info.flags & FN_REBUILD == 0 {
        let start = decode | if bus_master { command::BUS_MASTER } else { 0 };
        write_command(&mut physical, bdf, start);
        if let Some(off) = msix_cap {
            // The guest's view starts with MSI-X off; so does the device (no message from entries
            // a previous owner left).
            let ctl = physical.read16(bdf, off + 2) & !0xc000;
            physical.write16(bdf, off + 2, ctl);
        }
        if let Some(m) = &msi {
            // Likewise MSI: off until the core programs the message it routed.
            set_msi_enable(&mut physical, bdf, m, false);
        }
    }
    with_shared(|p| {
        p.function.msix_table = msix_table;
        p.function.msix_entries = msix_entries;
    });
    g.functions.push(Physical1 {
        vbdf: r.vbdf,
        bdf,
        cfg: physical,
        bus_master_allowed: allowed,
        decode,
        msix_cap,
        msi,
    });
    Reply::ok(u64::from(decode))
}

/// The hypervisor's read of physical configuration space: 1, 2 or 4 bytes, naturally aligned.
fn physical_read(state: &State, r: &Request) -> Reply {
    let Ok(offset) = u16::try_from(r.offset) else {
        return Reply::error(Status::BadAccess);
    };
    if !matches!(r.size, 1 | 2 | 4) || !offset.is_multiple_of(u16::from(r.size)) || offset >= 0x1000
    {
        return Reply::error(Status::BadAccess);
    }
    let dword = Physical::new(state.windows, r.segment).read32(r.vbdf, offset & !3);
    let value = dword >> (8 * u32::from(offset & 3));
    let mask = match r.size {
        1 => 0xff,
        2 => 0xffff,
        _ => u32::MAX,
    };
    Reply::ok(u64::from(value & mask))
}

/// Resets (guest, vbdf) to its state after the build; the device's bus mastering goes off.
fn reset_function(state: &mut State, r: &Request) -> Reply {
    let g = match guest(state, r.guest) {
        Ok(g) => g,
        Err(e) => return e,
    };
    let Some(vf) = g.topology.get_mut(r.vbdf) else {
        return Reply::error(Status::NoSuchFunction);
    };
    let events = vf.reset();
    apply_physical(g, r.vbdf, &events);
    publish(&events);
    let command = g
        .functions
        .iter()
        .find(|p| p.vbdf == r.vbdf)
        .map_or(0xffff, |p| {
            // A reset with decode and bus mastering already off emits no Command event: make
            // sure the device is quiet all the same.
            let mut cfg = p.cfg;
            write_command(&mut cfg, p.bdf, p.decode);
            cfg.read16(p.bdf, conduit_pci::config::reg::COMMAND)
        });
    Reply::ok(u64::from(command))
}

/// MSI Enable (PCIe Base Spec r6.0 §7.7.1.2, Message Control bit 0); Multiple Message Enable
/// (bits 6:4) goes to 0: one vector.
fn set_msi_enable(cfg: &mut Physical, bdf: Bdf, msi: &MsiInfo, enabled: bool) {
    let at = msi.offset + conduit_vpci::msi::reg::CONTROL;
    let ctl = cfg.read16(bdf, at) & !(conduit_vpci::msi::control::MME_MASK | 1);
    cfg.write16(bdf, at, ctl | u16::from(enabled));
}

/// `Op::PhysicalMsi`: the core's remappable-format message into the function's MSI capability
/// (PCIe Base Spec r6.0 §7.7.1): disabled while it changes, then address, data, mask bits
/// clear, INTx disabled and Enable as asked.
fn physical_msi(state: &mut State, r: &Request) -> Reply {
    let g = match guest(state, r.guest) {
        Ok(g) => g,
        Err(e) => return e,
    };
    let Some((bdf, msi, mut physical)) = g
        .functions
        .iter()
        .find(|p| p.vbdf == r.vbdf)
        .and_then(|p| p.msi.map(|m| (p.bdf, m, p.cfg)))
    else {
        return Reply::error(Status::NoSuchFunction);
    };
    let enabled = r.value & PHYSICAL_MSI_ENABLE != 0;
    if (r.offset >> 32 != 0 && !msi.is_64bit) || r.value & !(PHYSICAL_MSI_ENABLE | 0xffff) != 0 {
        return Reply::error(Status::BadAccess);
    }
    let o = msi.offset;
    // The device already sends this message (a restarted task replaying the core's journal):
    // leave it running rather than turn MSI off and on under it.
    let holds = physical.read32(bdf, o + conduit_vpci::msi::reg::ADDRESS) == r.offset as u32
        && (!msi.is_64bit
            || physical.read32(bdf, o + conduit_vpci::msi::reg::UPPER_ADDRESS)
                == (r.offset >> 32) as u32)
        && physical.read16(bdf, o + msi.data_offset()) == r.value as u16
        && physical.read16(bdf, o + conduit_vpci::msi::reg::CONTROL) & 1 == u16::from(enabled);
    if holds {
        return Reply::ok(u64::from(
            physical.read16(bdf, o + conduit_vpci::msi::reg::CONTROL),
        ));
    }
    set_msi_enable(&mut physical, bdf, &msi, false);
    physical.write32(bdf, o + conduit_vpci::msi::reg::ADDRESS, r.offset as u32);
    if msi.is_64bit {
        physical.write32(
            bdf,
            o + conduit_vpci::msi::reg::UPPER_ADDRESS,
            (r.offset >> 32) as u32,
        );
    }
    physical.write16(bdf, o + msi.data_offset(), r.value as u16);
    if msi.per_vector_mask {
        physical.write32(bdf, o + msi.mask_offset(), 0);
    }
    if enabled {
        let cmd = conduit_pci::config::read_command(&physical, bdf);
        write_command(&mut physical, bdf, cmd | command::INTX_DISABLE);
        set_msi_enable(&mut physical, bdf, &msi, true);
    }
    Reply::ok(u64::from(
        physical.read16(bdf, o + conduit_vpci::msi::reg::CONTROL),
    ))
}

fn build_message(address: PciAddress, e: &BuildError) {
    message(format_args!("{address}: {e}"));
}

fn msix(state: &mut State, r: &Request) -> Reply {
    let g = match guest(state, r.guest) {
        Ok(g) => g,
        Err(e) => return e,
    };
    let Some(table) = g
        .topology
        .get_mut(r.vbdf)
        .and_then(VirtualFunction::msix_table_mut)
    else {
        return Reply::error(Status::NoSuchFunction);
    };
    let result: Result<u64, AccessError> = if r.op == Op::MsixRead {
        table.read(r.offset, r.size)
    } else {
        table.write(r.offset, r.size, r.value).map(|event| {
            with_shared(|page| {
                page.event_count = 0;
                if let (Some(e), Some(slot)) = (event, page.events.first_mut()) {
                    *slot = WireEvent::encode(&e);
                    page.event_count = 1;
                }
            });
            0
        })
    };
    match result {
        Ok(v) => Reply::ok(v),
        Err(_) => Reply::error(Status::BadAccess),
    }
}

/// TEST ONLY (feature `selftest`): fails on purpose, as the core asked. Kept out of line so that
/// `scripts/check-image` finds it by name in the test image (and proves it absent from the
/// production one).
#[cfg(feature = "selftest")]
#[inline(never)]
fn test_fault(r: &Request) -> Reply {
    use conduit_control_abi::FaultKind;
    let Some(kind) = FaultKind::from_raw(r.value) else {
        return Reply::error(Status::BadRequest);
    };
    match kind {
        FaultKind::WriteKernel => {
            // SAFETY: deliberately unsound: the address is the kernel's (supervisor-only), so
            // the write faults (#PF) and the kernel ends this call. That is the test.
            unsafe { (r.offset as *mut u64).write_volatile(0) };
        }
        FaultKind::ReadUnmapped => {
            let addr = layout::SLOT_BASE + 0x3000_0000;
            // SAFETY: deliberately unsound: nothing is mapped there (#PF). That is the test.
            let v = unsafe { (addr as *const u64).read_volatile() };
            return Reply::ok(v);
        }
        FaultKind::Privileged => {
            // SAFETY: HLT at CPL 3 raises #GP; the kernel ends the call. That is the test.
            unsafe { core::arch::asm!("hlt", options(nomem, nostack)) };
        }
        FaultKind::PortIo => {
            let v: u8;
            // SAFETY: port 0x80 is outside the task's I/O permission bitmap: #GP. The test.
            unsafe {
                core::arch::asm!("in al, 0x80", out("al") v, options(nomem, nostack));
            }
            return Reply::ok(u64::from(v));
        }
        FaultKind::InvalidOpcode => {
            // SAFETY: UD2 raises #UD; the kernel ends the call. That is the test.
            unsafe { core::arch::asm!("ud2", options(nomem, nostack)) };
        }
        FaultKind::Loop => loop {
            core::hint::spin_loop();
        },
        FaultKind::Panic => panic!("deliberate panic (test request)"),
    }
    Reply::error(Status::BadRequest)
}
