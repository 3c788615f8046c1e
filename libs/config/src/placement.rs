//! Placement: which physical CPUs run a guest's vCPUs (`cpus = [N, ...]`, `dedicated =
//! true|false` in its `[[guest]]` table). vCPU k runs on the ((k mod n))-th CPU of the n named
//! ([`vcpu_cpu`]): with one CPU per vCPU each has its own, with fewer CPUs than vCPUs some take
//! turns.
//!
//! CPUs are named by their index in the firmware's MADT order with the bootstrap processor as
//! CPU 0 (`docs/configuration.md`, "Placement"). Two steps, both pure:
//! 1. [`check`] and [`check_exclusive`] (the image builder): the keys of each guest, and a
//!    dedicated CPU that another guest also names. Errors name `guest[i].cpus` or
//!    `guest[i].dedicated`.
//! 2. [`assign`] (the kernel, at boot): every guest's CPU against the CPUs that came up, and the
//!    default for a guest that names none: round-robin in configuration order over the online
//!    CPUs that no guest has dedicated. Errors name `guest "name".cpus`.

use crate::error::{ConfigError, invalid};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// CPU indices run from 0 to `MAX_CPUS - 1`.
pub const MAX_CPUS: usize = 256;

/// Where a guest runs, as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// The physical CPUs named by `cpus` (at most one per vCPU); empty: the default.
    pub cpus: Vec<u16>,
    /// `dedicated = true`: the CPU runs this guest alone, without time slices.
    pub dedicated: bool,
}

/// Checks one guest's `cpus` and `dedicated` keys; `vcpus` is its number of vCPUs.
pub fn check(
    i: usize,
    cpus: Option<&[i64]>,
    dedicated: Option<bool>,
    vcpus: u32,
) -> Result<Placement, ConfigError> {
    let key = |k: &str| format!("guest[{i}].{k}");
    let dedicated = dedicated.unwrap_or(false);
    let Some(raw) = cpus else {
        if dedicated {
            return Err(invalid(
                &key("dedicated"),
                "a dedicated guest names its CPU: add `cpus = [N]`",
            ));
        }
        return Ok(Placement::default());
    };
    if raw.is_empty() {
        return Err(invalid(
            &key("cpus"),
            "empty: name a CPU, or leave the key out for the default placement",
        ));
    }
    let mut list: Vec<u16> = Vec::with_capacity(raw.len());
    for &c in raw {
        let cpu = u16::try_from(c)
            .ok()
            .filter(|&c| usize::from(c) < MAX_CPUS)
            .ok_or_else(|| {
                invalid(
                    &key("cpus"),
                    format!("CPU {c}: CPUs are numbered 0 to {}", MAX_CPUS - 1),
                )
            })?;
        if list.contains(&cpu) {
            return Err(invalid(&key("cpus"), format!("CPU {cpu} is named twice")));
        }
        list.push(cpu);
    }
    if list.len() as u64 > u64::from(vcpus) {
        return Err(invalid(
            &key("cpus"),
            format!(
                "{} CPUs for {vcpus} vCPU(s): each CPU named runs at least one of the guest's \
                 vCPUs; name at most {vcpus}",
                list.len()
            ),
        ));
    }
    if dedicated {
        if list.contains(&0) {
            return Err(invalid(
                &key("dedicated"),
                "CPU 0 also runs the debug shell and the end-of-run report: it can be shared, \
                 not dedicated",
            ));
        }
        if u64::from(vcpus) != list.len() as u64 {
            return Err(invalid(
                &key("dedicated"),
                format!(
                    "{} dedicated CPU(s) for {vcpus} vCPUs: some vCPUs would take turns on a \
                     dedicated CPU, which runs one vCPU; name one CPU per vCPU",
                    list.len()
                ),
            ));
        }
    }
    Ok(Placement {
        cpus: list,
        dedicated,
    })
}

/// Refuses a CPU dedicated to one guest that another guest also names. `guests` are
/// (name, placement) in configuration order; the error names the later of the two guests' key.
pub fn check_exclusive(guests: &[(&str, &Placement)]) -> Result<(), ConfigError> {
    for (k, (name, p)) in guests.iter().enumerate() {
        for (j, (other, q)) in guests[..k].iter().enumerate() {
            let Some(&cpu) = p.cpus.iter().find(|c| q.cpus.contains(c)) else {
                continue;
            };
            if q.dedicated {
                return Err(invalid(
                    &format!("guest[{k}].cpus"),
                    format!(
                        "CPU {cpu} is dedicated to guest {other:?} (guest[{j}]); guest {name:?} \
                         cannot run there too"
                    ),
                ));
            }
            if p.dedicated {
                return Err(invalid(
                    &format!("guest[{k}].dedicated"),
                    format!(
                        "CPU {cpu} cannot be dedicated to guest {name:?}: guest {other:?} \
                         (guest[{j}]) runs there too"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A physical CPU as the kernel found it at boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpuUp {
    /// Started and running its scheduler.
    Online,
    /// In the MADT, but not usable: why (it did not start, or it is disabled).
    Down(String),
}

/// Where a guest runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assigned {
    /// The CPUs its vCPUs run on ([`vcpu_cpu`]); never empty; the first runs vCPU 0.
    pub cpus: Vec<u16>,
    pub dedicated: bool,
    /// Whether the configuration named no CPU (the default placement chose it).
    pub by_default: bool,
}

/// Places every guest (`guests`: name and placement, in configuration order) on the CPUs of
/// this machine (`cpus[i]` is CPU i's state): every CPU a guest names must be online, else the
/// guest is refused naming `guest "name".cpus` (the others run); a guest that names none goes,
/// with all its vCPUs, to the next online CPU, round-robin, skipping CPUs dedicated to a guest.
pub fn assign(guests: &[(&str, &Placement)], cpus: &[CpuUp]) -> Vec<Result<Assigned, ConfigError>> {
    let named: Vec<Result<Option<u16>, ConfigError>> = guests
        .iter()
        .map(|(name, p)| {
            for &cpu in &p.cpus {
                match cpus.get(usize::from(cpu)) {
                    Some(CpuUp::Online) => {}
                    Some(CpuUp::Down(why)) => {
                        return Err(invalid(
                            &format!("guest {name:?}.cpus"),
                            format!("CPU {cpu} is not online ({why})"),
                        ));
                    }
                    None => {
                        return Err(invalid(
                            &format!("guest {name:?}.cpus"),
                            format!(
                                "CPU {cpu}: this machine has {} CPU(s) (0 to {})",
                                cpus.len(),
                                cpus.len().saturating_sub(1)
                            ),
                        ));
                    }
                }
            }
            Ok(p.cpus.first().copied())
        })
        .collect();
    let reserved: Vec<u16> = guests
        .iter()
        .zip(&named)
        .filter(|((_, p), n)| p.dedicated && n.is_ok())
        .flat_map(|((_, p), _)| p.cpus.iter().copied())
        .collect();
    let shared: Vec<u16> = (0..cpus.len())
        .filter(|&c| cpus[c] == CpuUp::Online)
        .filter_map(|c| u16::try_from(c).ok())
        .filter(|c| !reserved.contains(c))
        .collect();
    let mut next = 0;
    guests
        .iter()
        .zip(named)
        .map(|((name, p), n)| match n? {
            Some(_) => Ok(Assigned {
                cpus: p.cpus.clone(),
                dedicated: p.dedicated,
                by_default: false,
            }),
            None => {
                let cpu = *shared.get(next % shared.len().max(1)).ok_or_else(|| {
                    invalid(
                        &format!("guest {name:?}.cpus"),
                        "no CPU is online to run it",
                    )
                })?;
                next += 1;
                Ok(Assigned {
                    cpus: alloc::vec![cpu],
                    dedicated: false,
                    by_default: true,
                })
            }
        })
        .collect()
}

impl Assigned {
    /// The CPU that runs vCPU 0 (the guest's bootstrap processor).
    pub fn first(&self) -> u16 {
        self.cpus[0]
    }
}

/// The CPU of `cpus` (a guest's, in the configured order) that runs its vCPU `vcpu`: vCPU k on
/// the (k mod n)-th of the n CPUs; `None` for an empty list.
pub fn vcpu_cpu(cpus: &[u16], vcpu: usize) -> Option<u16> {
    cpus.get(vcpu.checked_rem(cpus.len())?).copied()
}

#[cfg(test)]
#[path = "placement_tests.rs"]
mod tests;
