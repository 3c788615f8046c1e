//! Legacy INTx of assigned functions: the physical line (an I/O APIC input) routed to one input
//! of the owning guest's virtual I/O APIC, level-triggered (`conduit_irq::intx` holds the pure
//! rules; `docs/interrupts.md`, "INTx of assigned functions").
//!
//! - **Route** ([`route_intx`]): the GSI from the function's Interrupt Line and the MADT's
//!   overrides (`conduit_irq::intx::locate`), refused when another function on that GSI is not
//!   the guest's (the hypervisor's or another guest's); then a vector of the guest's and the
//!   I/O APIC entry, written masked: in remappable format through an IRTE that verifies the
//!   I/O APIC's source-id where interrupt remapping is on (VT-d §5.1.5.1), in compatibility
//!   format aimed at this CPU otherwise (82093AA §3.2.4); then opened.
//! - **Fire** (the interrupt path, lock-free but for a `try_lock`): the physical entry is
//!   masked and the guest's virtual input marked asserted ([`take_asserted`] hands it to the
//!   virtual platform before the guest's next entry). The local APIC's EOI that ends the
//!   handler clears the entry's remote IRR; being masked, the input cannot fire again.
//! - **Guest EOI** ([`guest_eoi`]): when the guest's EOI for the vector it programmed reaches
//!   its virtual I/O APIC (remote IRR cleared) the virtual input is deasserted and the physical
//!   entry unmasked: a device that still asserts its line fires again at once.
//! - **Flood**: a line that fires more than the MSI flood limit within one tick is cut off like
//!   an MSI ([`super::dispatch`]): left masked for good and reported once by [`report_floods`].
//!
//! The interrupt path masks the entry through the state's lock: every holder of that lock has
//! interrupts disabled and finishes without waiting for another CPU, so on the CPU taking the
//! interrupt the lock is free, and on another CPU it is held only for a bounded time (device
//! interrupts go to the CPU of the guest that owns the line, so several CPUs take them).

use super::{IrqError, STATE, State, dispatch, with_state};
use alloc::format;
use alloc::string::String;
use conduit_irq::{
    Binding, DirectRte, GuestId, IntxSource, IntxState, IrteBuilder, LineUser, OnEoi, OnFire,
    Owner, RemappableRte, SourceQualifier, intx::foreign_user,
};
use conduit_pci::PciAddress;
use core::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use log::{info, warn};

/// An INTx line given to a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntxRoute {
    pub guest: GuestId,
    pub bdf: PciAddress,
    /// Pin, Interrupt Line, GSI and signalling of the physical line.
    pub source: IntxSource,
    /// Index into the I/O APICs found at init, and its input.
    pub ioapic: usize,
    pub pin: u8,
    /// The host vector the line arrives on.
    pub vector: u8,
    /// The IRTE, where interrupt remapping is on.
    pub index: Option<u16>,
    /// The guest's virtual I/O APIC input it drives.
    pub input: u8,
    /// The flood guard's cut-off was reported.
    reported: bool,
}

/// Per host vector: the INTx line it carries, packed for the interrupt path (0: none).
struct Line {
    /// `VALID | ioapic << 24 | pin << 16 | input << 8`, the guest in [`Line::guest`].
    packed: AtomicU32,
    guest: AtomicU32,
    state: AtomicU8,
}

const VALID: u32 = 1;

impl Line {
    const fn new() -> Self {
        Self {
            packed: AtomicU32::new(0),
            guest: AtomicU32::new(0),
            state: AtomicU8::new(0),
        }
    }

    fn get(&self) -> Option<(usize, u8, u8, GuestId)> {
        let p = self.packed.load(Ordering::Acquire);
        (p & VALID != 0).then(|| {
            (
                (p >> 24) as usize,
                (p >> 16) as u8,
                (p >> 8) as u8,
                GuestId(self.guest.load(Ordering::Acquire) as u16),
            )
        })
    }

    fn state(&self) -> IntxState {
        IntxState::from_u8(self.state.load(Ordering::Acquire))
    }

    fn set_state(&self, s: IntxState) {
        self.state.store(s.to_u8(), Ordering::Release);
    }
}

static LINES: [Line; 256] = [const { Line::new() }; 256];
/// Per guest: the virtual I/O APIC inputs asserted since [`take_asserted`] last ran.
static ASSERTED: [AtomicU32; dispatch::MAX_GUESTS] =
    [const { AtomicU32::new(0) }; dispatch::MAX_GUESTS];

/// Where INTx pin `pin` with Interrupt Line `line` arrives on this machine (the MADT's
/// overrides applied; `conduit_irq::intx::locate`). `None` before [`init`].
pub fn locate_intx(
    pin: u8,
    line: u8,
) -> Option<Result<conduit_irq::IntxSource, conduit_irq::IntxError>> {
    let overrides: alloc::vec::Vec<conduit_irq::LineOverride> = with_state(|s| {
        Ok(s.overrides
            .iter()
            .map(crate::platform::acpi::IsaOverride::line_override)
            .collect())
    })
    .ok()?;
    Some(conduit_irq::intx::locate(pin, line, &overrides))
}

/// Routes the INTx of `bdf`, located at `source`, to input `input` of guest `guest`'s virtual
/// I/O APIC. `users` lists every function whose INTx reaches a GSI, with its owner: the line is
/// refused if a function other than `bdf` on the same GSI is not the guest's, or if the guest
/// already has a line on that GSI (one virtual input per physical input).
pub fn route_intx(
    guest: GuestId,
    bdf: PciAddress,
    source: IntxSource,
    input: u8,
    users: &[LineUser<PciAddress>],
) -> Result<IntxRoute, IrqError> {
    let owner = Owner::Guest(guest);
    let gsi = source.gsi;
    if let Some(u) = foreign_user(users, bdf, gsi, owner) {
        return Err(IrqError::Intx(format!(
            "its line (GSI {gsi}) is shared with {} ({}), which the guest does not own",
            u.function,
            match u.owner {
                Owner::Hypervisor => String::from("kept by the hypervisor"),
                Owner::Guest(g) => format!("guest {}", g.0),
            }
        )));
    }
    with_state(|s| {
        if let Some(r) = s.intx.iter().find(|r| r.source.gsi == gsi) {
            return Err(IrqError::Intx(format!(
                "GSI {gsi} already carries the INTx of {} for guest {}",
                r.bdf, r.guest.0
            )));
        }
        let (ioapic, pin) = s
            .ioapics
            .iter()
            .enumerate()
            .find_map(|(i, io)| io.dev.pin_of(gsi).map(|p| (i, p)))
            .ok_or(IrqError::NoIoApic(gsi))?;
        let (vector, index, rte) = entry(s, owner, ioapic, source)?;
        dispatch::bind(
            vector,
            Binding {
                owner,
                index,
                virtual_vector: None,
                vcpu: 0,
            },
        );
        let l = &LINES[usize::from(vector)];
        l.set_state(IntxState::Armed);
        l.guest.store(u32::from(guest.0), Ordering::Release);
        l.packed.store(
            VALID | (ioapic as u32) << 24 | u32::from(pin) << 16 | u32::from(input) << 8,
            Ordering::Release,
        );
        let route = IntxRoute {
            guest,
            bdf,
            source,
            ioapic,
            pin,
            vector,
            index,
            input,
            reported: false,
        };
        s.intx.push(route);
        let io = &mut s.ioapics[ioapic];
        io.dev.write_rte(pin, rte);
        io.dev.set_masked(pin, false);
        let readback = io.dev.read_rte(pin);
        let signalling = alloc::format!(
            "{}, active {}",
            match source.trigger {
                conduit_irq::TriggerMode::Level => "level",
                conduit_irq::TriggerMode::Edge => "edge",
            },
            match source.polarity {
                conduit_irq::Polarity::ActiveLow => "low",
                conduit_irq::Polarity::ActiveHigh => "high",
            }
        );
        let through = match (index, io.source_id) {
            (Some(i), Some(sid)) => {
                format!("IRTE {i} (remappable format, source-id {sid} verified)")
            }
            _ => String::from("direct (compatibility format: no interrupt remapping)"),
        };
        info!(
            "irq: guest {}: INTx of {bdf} (pin INT{}#, Interrupt Line {}) -> GSI {gsi} (I/O APIC \
             {} input {pin}, {signalling}) -> {through} -> vector {vector:#x}; the guest's \
             virtual I/O APIC input {input}; redirection entry {readback:#018x}",
            guest.0,
            char::from(b'A' + source.pin - 1),
            source.line,
            io.dev.id(),
        );
        Ok(route)
    })
}

/// Takes the vector (and the IRTE under remapping) and encodes the masked redirection entry.
fn entry(
    s: &mut State,
    owner: Owner,
    ioapic: usize,
    source: IntxSource,
) -> Result<(u8, Option<u16>, u64), IrqError> {
    // A guest's INTx goes to its vCPU 0's CPU.
    let apic = s.apic_of(owner, 0)?;
    if s.ir.is_none() {
        let vector = s.vectors.alloc(owner)?;
        let rte = DirectRte {
            vector,
            dest: apic as u8,
            trigger: source.trigger,
            polarity: source.polarity,
            masked: true,
        };
        return Ok((vector, None, rte.encode()));
    }
    let io = &s.ioapics[ioapic];
    let sid = io.source_id.ok_or(IrqError::NoSourceId(io.dev.id()))?;
    let destination = s.destination(owner, 0)?;
    let (vector, index) = super::route::allocate(s, owner)?;
    let irte = match IrteBuilder::new(destination, vector)
        .trigger_mode(source.trigger)
        .verify_requester(sid.bdf.routing_id(), SourceQualifier::All)
        .build()
    {
        Ok(i) => i,
        Err(e) => {
            super::route::undo(s, owner, vector, index);
            return Err(e.into());
        }
    };
    if let Err(e) = s.install(owner, sid.segment, index, &irte) {
        super::route::undo(s, owner, vector, index);
        return Err(e);
    }
    let rte = RemappableRte::for_irte(index, &irte, source.polarity, true);
    Ok((vector, Some(index), rte.encode()))
}

/// Masks or unmasks input `pin` of I/O APIC `ioapic` from the interrupt path (see the module
/// documentation); returns whether that I/O APIC exists.
fn set_masked_now(ioapic: usize, pin: u8, masked: bool) -> bool {
    let mut guard = STATE.lock();
    match guard.as_mut().and_then(|s| s.ioapics.get_mut(ioapic)) {
        Some(io) => {
            io.dev.set_masked(pin, masked);
            true
        }
        None => false,
    }
}

/// The interrupt path: `vector` fired. If it carries an INTx line, the physical input is masked
/// and, the first time since the guest's last EOI, the guest's virtual input asserted.
pub(super) fn on_fire(vector: u8) {
    let l = &LINES[usize::from(vector)];
    let Some((ioapic, pin, input, guest)) = l.get() else {
        return;
    };
    let (next, action) = l.state().fire();
    l.set_state(next);
    set_masked_now(ioapic, pin, true);
    if action == OnFire::MaskAndAssert
        && let Some(a) = ASSERTED.get(usize::from(guest.0))
    {
        a.fetch_or(1 << input, Ordering::AcqRel);
    }
}

/// The interrupt path: the flood guard cut `vector` off. An INTx line stays masked for good.
pub(super) fn cut_off(vector: u8) {
    let l = &LINES[usize::from(vector)];
    if let Some((ioapic, pin, _, _)) = l.get() {
        l.set_state(IntxState::CutOff);
        set_masked_now(ioapic, pin, true);
    }
}

/// The virtual I/O APIC inputs of guest `id` asserted since the last call (bit n: input n).
pub fn take_asserted(id: GuestId) -> u32 {
    ASSERTED
        .get(usize::from(id.0))
        .map_or(0, |a| a.swap(0, Ordering::AcqRel))
}

/// The guest's EOIs reached the virtual I/O APIC inputs in `inputs` (bit n: input n; the
/// platform deasserted them): their physical inputs are unmasked, unless cut off.
pub fn guest_eoi(id: GuestId, inputs: u32) {
    if inputs == 0 {
        return;
    }
    let result = with_state(|s| {
        for r in s.intx.iter().filter(|r| r.guest == id) {
            if inputs & (1 << r.input) == 0 {
                continue;
            }
            let l = &LINES[usize::from(r.vector)];
            let (next, action) = l.state().eoi();
            l.set_state(next);
            if action == OnEoi::DeassertAndUnmask
                && let Some(io) = s.ioapics.get_mut(r.ioapic)
            {
                io.dev.set_masked(r.pin, false);
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        warn!("irq: guest {}: INTx EOI: {e}", id.0);
    }
}

/// Guest `id`'s virtual platform was reset (the guest restarted): nothing it asserted will see
/// an EOI, so every line of it waiting for one is re-armed (unmasked) and its assertions
/// forgotten. Lines cut off stay masked.
pub fn guest_reset(id: GuestId) {
    take_asserted(id);
    let result = with_state(|s| {
        for r in s.intx.iter().filter(|r| r.guest == id) {
            let l = &LINES[usize::from(r.vector)];
            if l.state() == IntxState::Asserted {
                l.set_state(IntxState::Armed);
                if let Some(io) = s.ioapics.get_mut(r.ioapic) {
                    io.dev.set_masked(r.pin, false);
                }
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        warn!("irq: guest {}: INTx reset: {e}", id.0);
    }
}

/// Guest `id`'s function `bdf` is quarantined (a request of the guest's crashed the control
/// task): its INTx line is masked for good, like a line the flood guard cut off.
pub fn quarantine(id: GuestId, bdf: PciAddress) {
    let result = with_state(|s| {
        for r in s.intx.iter().filter(|r| r.guest == id && r.bdf == bdf) {
            LINES[usize::from(r.vector)].set_state(IntxState::CutOff);
            if let Some(io) = s.ioapics.get_mut(r.ioapic) {
                io.dev.set_masked(r.pin, true);
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        warn!("irq: guest {}: quarantining the INTx of {bdf}: {e}", id.0);
    }
}

/// The INTx route of `bdf`, and whether its physical input is masked now with the line's state
/// (for the self-tests).
#[cfg(feature = "selftest")]
pub fn intx_status(bdf: PciAddress) -> Option<(IntxRoute, bool, IntxState)> {
    with_state(|s| {
        let r = s.intx.iter().find(|r| r.bdf == bdf).copied();
        Ok(r.and_then(|r| {
            s.ioapics.get(r.ioapic).map(|io| {
                (
                    r,
                    io.dev.read_rte(r.pin) & conduit_hw::ioapic::RTE_MASKED != 0,
                    LINES[usize::from(r.vector)].state(),
                )
            })
        }))
    })
    .ok()
    .flatten()
}

/// Reports every INTx line the flood guard cut off and that was not reported yet: once per
/// line, naming the guest, the function and the GSI. Called by [`super::service`].
pub(super) fn report_floods(s: &mut State) {
    for r in s.intx.iter_mut().filter(|r| !r.reported) {
        let dispatch::Flood::Tripped { seen, tick, .. } = dispatch::flood(r.vector) else {
            continue;
        };
        if let Some(io) = s.ioapics.get_mut(r.ioapic) {
            io.dev.set_masked(r.pin, true);
        }
        LINES[usize::from(r.vector)].set_state(IntxState::CutOff);
        r.reported = true;
        warn!(
            "irq: interrupt flood from the INTx of {} (guest {}, GSI {}, vector {:#x}): {seen} \
             interrupts within one tick (limit {}) at tick {tick}: the line is left masked at \
             the I/O APIC; {} suppressed since; the guest's other interrupts are not affected",
            r.bdf,
            r.guest.0,
            r.source.gsi,
            r.vector,
            dispatch::FLOOD_LIMIT,
            dispatch::suppressed(r.vector)
        );
    }
}
