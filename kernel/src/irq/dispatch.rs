//! The interrupt path: what runs when a vector arrives, lock-free.
//!
//! Every external vector (the IDT's stubs, and VM exits for external interrupts, which acknowledge
//! the interrupt on exit) comes to [`on_interrupt`], which ends with the local APIC's EOI (the
//! VT-d fault vector is drained as its own IDT handler does; the spurious vector gets no EOI). Per
//! vector there is a slot: its [`Binding`] (owner, IRTE index, the guest's virtual vector),
//! delivery counters and the flood meter. Everything is atomic: the handler never takes a lock
//! that normal code could hold, never allocates and never logs. What needs more (masking at the
//! device, the report) is left to [`super::service`].
//!
//! Tick: the local APIC timer's vector ([`vectors::TICK`]) counts ticks and closes every flood
//! window. Flood detection: more than [`FLOOD_LIMIT`] interrupts from one source within one tick
//! and the source is cut off: its IRTE is masked at once when the IOMMU's lock is free (not
//! present with fault processing disabled, so the unit drops the requests silently), else by
//! [`super::service`]; until then its interrupts are only counted as suppressed.
//!
//! Guests: an interrupt whose binding belongs to a guest is counted for that guest and its
//! virtual vector is marked pending, for the VMX core to inject on the guest's next entry
//! ([`take_pending`]); where no vCPU runs (QEMU TCG) the counts are what is observed.

use conduit_hw::apic::{self, vectors};
use conduit_hw::percpu;
use conduit_irq::{Binding, GuestId, Owner};
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};

/// Interrupts one source may raise within one tick before it is cut off.
pub const FLOOD_LIMIT: u32 = 64;
/// Guests whose interrupts are counted and whose virtual vectors are kept (guest ids
/// 0..MAX_GUESTS): every guest a configuration can have.
pub const MAX_GUESTS: usize = conduit_config::guest::MAX_GUESTS;

const FLOOD_NONE: u8 = 0;
const FLOOD_PENDING: u8 = 1;
const FLOOD_MASKED: u8 = 2;

struct Slot {
    binding: AtomicU64,
    delivered: AtomicU64,
    suppressed: AtomicU64,
    window: AtomicU32,
    flood: AtomicU8,
    flood_seen: AtomicU32,
    flood_tick: AtomicU64,
}

impl Slot {
    const fn new() -> Self {
        Self {
            binding: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
            window: AtomicU32::new(0),
            flood: AtomicU8::new(FLOOD_NONE),
            flood_seen: AtomicU32::new(0),
            flood_tick: AtomicU64::new(0),
        }
    }
}

struct GuestCounters {
    delivered: AtomicU64,
    pending: [AtomicU64; 4],
}

impl GuestCounters {
    /// Marks virtual vector `v` pending (a second mark before injection coalesces).
    fn mark_pending(&self, v: u8) {
        self.pending[usize::from(v / 64)].fetch_or(1 << (v % 64), Ordering::Release);
    }
}

static SLOTS: [Slot; 256] = [const { Slot::new() }; 256];
static GUESTS: [GuestCounters; MAX_GUESTS] = [const {
    GuestCounters {
        delivered: AtomicU64::new(0),
        pending: [const { AtomicU64::new(0) }; 4],
    }
}; MAX_GUESTS];
static TICKS: AtomicU64 = AtomicU64::new(0);
/// Set when the flood guard cuts a source off, until [`take_flood_notice`] is called.
static FLOOD_NOTICE: AtomicBool = AtomicBool::new(false);
static UNBOUND: AtomicU64 = AtomicU64::new(0);
/// How many interrupts this CPU has handled so far (every vector: the tick, device interrupts,
/// the VT-d fault event, cross-CPU requests), for waits that end at the next one.
pub fn interrupts_handled() -> u64 {
    percpu::current().interrupts()
}

/// Handles `vector` and signals EOI. Called with interrupts disabled (an interrupt gate, or the
/// VM-exit path with the interrupt acknowledged on exit).
pub fn on_interrupt(vector: u8) {
    let me = percpu::current();
    me.count_interrupt(vector);
    match vector {
        vectors::TICK => {
            me.count_tick();
            // Every CPU ticks; the hypervisor's clock of ticks and the flood windows are the
            // BSP's.
            if me.index() == 0 {
                TICKS.fetch_add(1, Ordering::Relaxed);
                for s in &SLOTS {
                    s.window.store(0, Ordering::Relaxed);
                }
                // A VT-d fault event interrupt masked for a storm is unmasked each tick.
                conduit_hw::vtd::fault::on_tick();
            }
        }
        vectors::CALL => conduit_hw::smp::on_call_ipi(),
        // Through a VM exit: drain the fault records as the IDT's handler would.
        vectors::VTD_FAULT => conduit_hw::vtd::fault::on_interrupt(),
        // The spurious vector is never acknowledged (SDM Vol. 3A §11.9).
        vectors::SPURIOUS => return,
        _ => device(vector),
    }
    apic::eoi();
}

fn device(vector: u8) {
    let slot = &SLOTS[usize::from(vector)];
    let Some(b) = Binding::unpack(slot.binding.load(Ordering::Acquire)) else {
        UNBOUND.fetch_add(1, Ordering::Relaxed);
        return;
    };
    if slot.flood.load(Ordering::Acquire) != FLOOD_NONE {
        slot.suppressed.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let seen = slot.window.fetch_add(1, Ordering::Relaxed) + 1;
    if seen > FLOOD_LIMIT {
        slot.suppressed.fetch_add(1, Ordering::Relaxed);
        slot.flood_seen.store(seen, Ordering::Relaxed);
        slot.flood_tick
            .store(TICKS.load(Ordering::Relaxed), Ordering::Relaxed);
        let masked = b
            .index
            .and_then(crate::iommu::try_mask_irte)
            .is_some_and(|r| r.is_ok());
        super::intx::cut_off(vector);
        let state = if masked { FLOOD_MASKED } else { FLOOD_PENDING };
        slot.flood.store(state, Ordering::Release);
        FLOOD_NOTICE.store(true, Ordering::Release);
        return;
    }
    slot.delivered.fetch_add(1, Ordering::Relaxed);
    super::intx::on_fire(vector);
    if let Owner::Guest(GuestId(g)) = b.owner
        && let Some(c) = GUESTS.get(usize::from(g))
    {
        c.delivered.fetch_add(1, Ordering::Relaxed);
        if let Some(v) = b.virtual_vector {
            c.mark_pending(v);
        }
        // Taken on a CPU that runs none of the guest's vCPUs: the receiving vCPU's CPU is told.
        crate::sched::cpus::guest_interrupt(g, b.vcpu);
    }
}

/// Binds `vector` (counters reset, flood meter re-armed).
pub fn bind(vector: u8, binding: Binding) {
    let slot = &SLOTS[usize::from(vector)];
    slot.binding.store(0, Ordering::Release);
    slot.delivered.store(0, Ordering::Relaxed);
    slot.suppressed.store(0, Ordering::Relaxed);
    slot.window.store(0, Ordering::Relaxed);
    slot.flood.store(FLOOD_NONE, Ordering::Relaxed);
    slot.flood_seen.store(0, Ordering::Relaxed);
    slot.binding.store(binding.pack(), Ordering::Release);
}

/// Unbinds `vector`: its interrupts count as unbound from now on.
pub fn unbind(vector: u8) {
    SLOTS[usize::from(vector)]
        .binding
        .store(0, Ordering::Release);
}

/// The binding of `vector`.
pub fn binding(vector: u8) -> Option<Binding> {
    Binding::unpack(SLOTS[usize::from(vector)].binding.load(Ordering::Acquire))
}

/// Interrupts delivered on `vector` since it was bound.
pub fn delivered(vector: u8) -> u64 {
    SLOTS[usize::from(vector)].delivered.load(Ordering::Acquire)
}

/// Interrupts on `vector` dropped by the flood guard since it was bound.
pub fn suppressed(vector: u8) -> u64 {
    SLOTS[usize::from(vector)]
        .suppressed
        .load(Ordering::Acquire)
}

/// Interrupts delivered on every bound vector, and on vectors nobody holds.
#[cfg(feature = "selftest")]
pub fn totals() -> (u64, u64) {
    let delivered = SLOTS
        .iter()
        .map(|s| s.delivered.load(Ordering::Acquire))
        .sum();
    (delivered, UNBOUND.load(Ordering::Acquire))
}

/// Ticks of the BSP's local APIC timer so far (each CPU's own: `percpu`).
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Acquire)
}

/// The flood guard's view of one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flood {
    /// Within limits.
    None,
    /// Cut off; `masked` says whether the IRTE is masked yet. `seen` interrupts arrived within
    /// the tick numbered `tick`.
    Tripped { masked: bool, seen: u32, tick: u64 },
}

/// The flood state of `vector`.
pub fn flood(vector: u8) -> Flood {
    let slot = &SLOTS[usize::from(vector)];
    match slot.flood.load(Ordering::Acquire) {
        FLOOD_NONE => Flood::None,
        state => Flood::Tripped {
            masked: state == FLOOD_MASKED,
            seen: slot.flood_seen.load(Ordering::Relaxed),
            tick: slot.flood_tick.load(Ordering::Relaxed),
        },
    }
}

/// Whether a source was cut off since the last call (and clears the notice).
pub fn take_flood_notice() -> bool {
    FLOOD_NOTICE.swap(false, Ordering::AcqRel)
}

/// Records that the IRTE of `vector` is masked now.
pub fn set_masked(vector: u8) {
    SLOTS[usize::from(vector)]
        .flood
        .store(FLOOD_MASKED, Ordering::Release);
}

/// Interrupts delivered to guest `id` so far.
pub fn guest_delivered(id: GuestId) -> u64 {
    GUESTS
        .get(usize::from(id.0))
        .map_or(0, |c| c.delivered.load(Ordering::Acquire))
}

/// The highest pending virtual vector of guest `id`, now taken (for injection at its next VM
/// entry; the highest vector has the highest priority, SDM Vol. 3A §11.8.3).
pub fn take_pending(id: GuestId) -> Option<u8> {
    let c = GUESTS.get(usize::from(id.0))?;
    for word in (0..4).rev() {
        let bits = c.pending[word].load(Ordering::Acquire);
        if bits != 0 {
            let bit = 63 - bits.leading_zeros();
            c.pending[word].fetch_and(!(1 << bit), Ordering::AcqRel);
            return Some((word as u32 * 64 + bit) as u8);
        }
    }
    None
}

/// Marks `vector` pending for guest `id` (a virtual interrupt source of the hypervisor's own, such
/// as the guest's virtual timer). Device deliveries do this in [`on_interrupt`].
pub fn raise(id: GuestId, vector: u8) {
    if let Some(c) = GUESTS.get(usize::from(id.0)) {
        c.mark_pending(vector);
    }
}

/// Whether guest `id` has a virtual vector pending.
#[inline]
pub fn has_pending(id: GuestId) -> bool {
    GUESTS
        .get(usize::from(id.0))
        .is_some_and(|c| c.pending.iter().any(|w| w.load(Ordering::Acquire) != 0))
}

/// Forgets everything pending for guest `id` (the guest is going away).
pub fn clear_guest(id: GuestId) {
    if let Some(c) = GUESTS.get(usize::from(id.0)) {
        for w in &c.pending {
            w.store(0, Ordering::Release);
        }
    }
}
