//! IPIs between a guest's vCPUs that change a vCPU's state rather than its local APIC's IRR
//! (`vplatform::Signal`): NMI, INIT and start-up (SDM Vol. 3A §11.6.1 delivery modes, §9.4
//! "Multiple-Processor (MP) Initialization"), and the wake-up of a vCPU a fixed IPI was sent
//! to. The local APIC models decide the destinations (`conduit_vlapic::targets`); this module
//! carries the result out on the target vCPUs.

use super::vplatform::Signal;
use super::{Activity, Guest};
use log::debug;

impl Guest {
    /// Carries out the IPIs the guest's local APICs sent since the last call. Returns whether
    /// the current vCPU should give the CPU up: another vCPU on this CPU was sent a fixed IPI or
    /// an NMI (it runs sooner, so an IPI's answer does not wait for the sender's whole slice), or
    /// the current one was INITed. A target on another CPU is sent that CPU's IPI (`cpus::kick`):
    /// it wakes from HLT, or its vCPU leaves the guest and takes what was sent at its next
    /// entry. Its registers are not touched here: they may be in use on that CPU (`run.rs`);
    /// a start-up IPI resets them where the vCPU runs.
    pub(super) fn deliver_signals(&mut self) -> bool {
        let Some(p) = self.platform.as_mut() else {
            return false;
        };
        if !p.has_signals() {
            return false;
        }
        let mut give_up = false;
        let mut to_other = false;
        let mut kick: alloc::vec::Vec<usize> = alloc::vec::Vec::new();
        let here = crate::sched::cpus::this_cpu();
        for signal in p.take_signals() {
            let t = match signal {
                Signal::Interrupt(t)
                | Signal::Ipi(t)
                | Signal::Nmi(t)
                | Signal::Init(t)
                | Signal::StartUp(t, _) => t,
            };
            let elsewhere = self.vcpus[t].home != here;
            if elsewhere && !kick.contains(&self.vcpus[t].home) {
                kick.push(self.vcpus[t].home);
            }
            match signal {
                // A device or I/O APIC vector: its vCPU's CPU is woken (above), nobody yields.
                Signal::Interrupt(_) => {}
                Signal::Ipi(t) => to_other |= t != self.current && !elsewhere,
                Signal::Nmi(t) => {
                    self.vcpus[t].events.queue_nmi();
                    to_other |= t != self.current && !elsewhere;
                }
                Signal::Init(t) => {
                    let cpu = &mut self.vcpus[t];
                    cpu.activity = Activity::WaitForSipi;
                    cpu.inits = cpu.inits.wrapping_add(1);
                    cpu.startup = None;
                    cpu.halted = false;
                    cpu.events.clear_pending();
                    cpu.ipi_sent = None;
                    debug!(
                        "guest \"{}\": vCPU {t}: INIT, waits for a start-up IPI",
                        self.name
                    );
                    give_up |= t == self.current;
                }
                Signal::StartUp(t, vector) => {
                    let cpu = &mut self.vcpus[t];
                    // A start-up IPI to a processor that is not waiting for one is ignored
                    // (SDM Vol. 3A §9.4.4.1).
                    if cpu.activity == Activity::WaitForSipi {
                        cpu.activity = Activity::Active;
                        cpu.startup = Some(vector);
                        cpu.starts += 1;
                        // The first start is logged; later ones (CPU hotplug, or a guest that
                        // storms its own vCPUs) only at debug level: the log is everyone's.
                        let level = if cpu.starts == 1 {
                            log::Level::Info
                        } else {
                            log::Level::Debug
                        };
                        log::log!(
                            level,
                            "guest \"{}\": vCPU {t}: start-up IPI, starts at {:#x}",
                            self.name,
                            u64::from(vector) << 12
                        );
                        give_up |= t != self.current && !elsewhere;
                    }
                }
            }
        }
        for cpu in kick {
            crate::sched::cpus::kick(cpu);
        }
        let cpu = &mut self.vcpus[self.current];
        if to_other && cpu.started() {
            cpu.ipi_sent = Some(conduit_hw::rdtsc());
        }
        give_up || to_other
    }
}
