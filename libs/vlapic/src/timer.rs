//! The local APIC timer (SDM Vol. 3A §11.5.4 "APIC Timer" and §11.5.4.1 "TSC-Deadline Mode").
//!
//! The timer counts down at the crystal clock divided per the divide configuration register
//! (§11.5.4, Figure 11-10). Time is the guest's TSC: the model never reads a clock, every
//! operation takes `now` and the timer only answers "when is the next expiry" in TSC ticks.
//!
//! Counting modes (one-shot, periodic) remember when the countdown started and derive every
//! later figure from that start: expiry `n` of a countdown of `c` ticks with divisor `d` is at
//! `start + ceil(n × c × d × tsc_hz / timer_hz)`, so periodic expiries never drift even when a
//! period is not a whole number of TSC ticks. All products are computed in 128 bits; a result
//! beyond `u64` saturates (an expiry that never comes).

use crate::lvt;

/// The clocks behind the timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerClock {
    /// The guest's TSC rate in Hz (the unit of every `now` and deadline).
    pub tsc_hz: u64,
    /// The timer's input clock in Hz before the divider: the core crystal clock the guest
    /// sees in CPUID leaf 0x15 ECX (1 MHz in Conduit).
    pub apic_timer_hz: u64,
}

/// The timer mode, LVT timer bits 18:17 (SDM Vol. 3A §11.5.1, Figure 11-8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerMode {
    /// 00: counts down once from the initial count.
    OneShot,
    /// 01: reloads the initial count at each expiry.
    Periodic,
    /// 10: fires when the TSC reaches IA32_TSC_DEADLINE.
    TscDeadline,
}

impl TimerMode {
    /// Decodes bits 18:17 of an LVT timer value; `None` for the reserved encoding 11.
    pub fn from_lvt(lvt: u32) -> Option<Self> {
        match (lvt >> 17) & 3 {
            0 => Some(Self::OneShot),
            1 => Some(Self::Periodic),
            2 => Some(Self::TscDeadline),
            _ => None,
        }
    }
}

/// The divisor the divide configuration register selects: bits 3 and 1:0 form a 3-bit code
/// where 111 is divide by 1 and `k` otherwise divides by `2^(k+1)` (SDM Vol. 3A Figure 11-10).
pub fn divisor(dcr: u32) -> u32 {
    let code = ((dcr >> 1) & 4) | (dcr & 3);
    1 << ((code + 1) & 7)
}

/// `ceil(a × b / c)` in 128 bits, saturated to `u64` (`c` non-zero).
fn mul_div_ceil(a: u128, b: u128, c: u128) -> u64 {
    match a.checked_mul(b) {
        Some(p) => u64::try_from(p.div_ceil(c)).unwrap_or(u64::MAX),
        None => u64::MAX,
    }
}

/// The timer state that is not in the register page.
#[derive(Debug, Clone)]
pub(crate) struct Timer {
    clock: TimerClock,
    /// The LVT timer register as last written (the page holds the same value; the shadow lets
    /// an APIC-write exit, which finds the new value already in the page, see the old one).
    lvt: u32,
    /// Initial count of the running countdown (0: stopped).
    initial: u32,
    /// Divisor selected by the divide configuration register.
    divisor: u32,
    /// Divisor in force for the running countdown (a new divide configuration applies from the
    /// next initial-count write).
    armed_divisor: u32,
    /// TSC at which the countdown last started (or was rebased to an exact expiry).
    start: u64,
    /// Next expiry in TSC ticks, if armed.
    deadline: Option<u64>,
    /// IA32_TSC_DEADLINE (0: disarmed).
    tsc_deadline: u64,
}

impl Timer {
    /// Reset state: masked one-shot, stopped, divide by 2 (SDM Vol. 3A §11.4.7.1).
    pub(crate) fn new(clock: TimerClock) -> Self {
        Self {
            clock,
            lvt: lvt::MASKED,
            initial: 0,
            divisor: divisor(0),
            armed_divisor: divisor(0),
            start: 0,
            deadline: None,
            tsc_deadline: 0,
        }
    }

    pub(crate) fn reset(&mut self) {
        *self = Self::new(self.clock);
    }

    pub(crate) fn lvt(&self) -> u32 {
        self.lvt
    }

    /// The current mode (the reserved encoding never reaches the shadow).
    pub(crate) fn mode(&self) -> TimerMode {
        TimerMode::from_lvt(self.lvt).unwrap_or(TimerMode::OneShot)
    }

    fn masked(&self) -> bool {
        self.lvt & lvt::MASKED != 0
    }

    /// Expiry number `n` of the running countdown.
    fn expiry(&self, n: u64) -> u64 {
        let ticks = u128::from(n) * u128::from(self.initial) * u128::from(self.armed_divisor);
        let delay = mul_div_ceil(
            ticks,
            u128::from(self.clock.tsc_hz),
            u128::from(self.clock.apic_timer_hz),
        );
        self.start.saturating_add(delay)
    }

    /// Timer-clock ticks (after the divider) elapsed since `start`.
    fn elapsed_ticks(&self, now: u64) -> u128 {
        let elapsed = u128::from(now.saturating_sub(self.start));
        let per_tick = u128::from(self.clock.tsc_hz) * u128::from(self.armed_divisor);
        elapsed * u128::from(self.clock.apic_timer_hz) / per_tick
    }

    /// Stops the timer: no countdown, no TSC deadline.
    fn disarm(&mut self) {
        self.initial = 0;
        self.deadline = None;
        self.tsc_deadline = 0;
    }

    /// Writes the LVT timer register (already validated, reserved bits clear, mode not 11).
    /// A change of mode disarms the timer and clears the initial count and IA32_TSC_DEADLINE
    /// (SDM Vol. 3A §11.5.4.1). Returns whether the timer was disarmed.
    pub(crate) fn write_lvt(&mut self, value: u32) -> bool {
        let changed = TimerMode::from_lvt(value) != Some(self.mode());
        self.lvt = value;
        if changed {
            self.disarm();
        }
        changed
    }

    /// Sets the mask bit (software disable of the APIC, SDM Vol. 3A §11.4.7.2).
    pub(crate) fn mask(&mut self) {
        self.lvt |= lvt::MASKED;
    }

    /// Writes the initial-count register: starts (non-zero) or stops (zero) a countdown in
    /// the counting modes; ignored in TSC-deadline mode (SDM Vol. 3A §11.5.4.1). Returns
    /// whether the write took effect.
    pub(crate) fn write_initial(&mut self, count: u32, now: u64) -> bool {
        if self.mode() == TimerMode::TscDeadline {
            return false;
        }
        self.initial = count;
        self.armed_divisor = self.divisor;
        self.start = now;
        self.deadline = (count != 0).then(|| self.expiry(1));
        true
    }

    /// Writes the divide configuration register (bits 3, 1:0).
    pub(crate) fn write_divide(&mut self, dcr: u32) {
        self.divisor = divisor(dcr);
    }

    /// The current-count register: counts down from the initial count to 0 (one-shot) or
    /// reloads (periodic); 0 when stopped and in TSC-deadline mode. A masked timer counts too.
    pub(crate) fn current_count(&self, now: u64) -> u32 {
        if self.initial == 0 || self.mode() == TimerMode::TscDeadline {
            return 0;
        }
        let ticks = self.elapsed_ticks(now);
        let initial = u128::from(self.initial);
        let remaining = match self.mode() {
            TimerMode::Periodic => initial - ticks % initial,
            _ => initial.saturating_sub(ticks),
        };
        remaining as u32
    }

    /// IA32_TSC_DEADLINE as the guest reads it: 0 outside TSC-deadline mode and once fired.
    pub(crate) fn tsc_deadline(&self) -> u64 {
        if self.mode() == TimerMode::TscDeadline {
            self.tsc_deadline
        } else {
            0
        }
    }

    /// Writes IA32_TSC_DEADLINE: ignored outside TSC-deadline mode; 0 disarms; any other
    /// value arms (a value already past expires at the next [`Timer::expire`]). Returns
    /// whether the write took effect.
    pub(crate) fn set_tsc_deadline(&mut self, value: u64) -> bool {
        if self.mode() != TimerMode::TscDeadline {
            return false;
        }
        self.tsc_deadline = value;
        self.deadline = (value != 0).then_some(value);
        true
    }

    /// When the kernel must next call [`Timer::expire`]: the armed expiry, unless the LVT is
    /// masked (a masked expiry raises nothing; the count it affects is computed from `now`).
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        if self.masked() { None } else { self.deadline }
    }

    /// Processes an expiry due at `now`: returns the vector to raise if the timer fired with
    /// its LVT unmasked. One-shot and TSC-deadline expiries disarm (the latter clears
    /// IA32_TSC_DEADLINE); periodic expiries re-arm at the first expiry after `now` computed
    /// from the countdown's start, so missed periods collapse into one interrupt and never
    /// shift the later ones.
    pub(crate) fn expire(&mut self, now: u64) -> Option<u8> {
        self.deadline.filter(|&d| d <= now)?;
        match self.mode() {
            TimerMode::OneShot => self.deadline = None,
            TimerMode::TscDeadline => {
                self.deadline = None;
                self.tsc_deadline = 0;
            }
            TimerMode::Periodic => {
                // Expiries up to `now`: `floor(elapsed ticks / initial)`, at least 1 here.
                let done = self.elapsed_ticks(now) / u128::from(self.initial);
                let done = u64::try_from(done).unwrap_or(u64::MAX - 1);
                let period_tsc = u128::from(self.initial)
                    * u128::from(self.armed_divisor)
                    * u128::from(self.clock.tsc_hz);
                let whole = u128::from(done)
                    .checked_mul(period_tsc)
                    .is_some_and(|p| p % u128::from(self.clock.apic_timer_hz) == 0);
                if whole {
                    // The last expiry fell on a whole TSC tick: restart the arithmetic there,
                    // which keeps the products small without moving any expiry.
                    self.start = self.expiry(done);
                    self.deadline = Some(self.expiry(1));
                } else {
                    self.deadline = Some(self.expiry(done + 1));
                }
            }
        }
        if self.masked() {
            None
        } else {
            Some(self.lvt as u8)
        }
    }
}
