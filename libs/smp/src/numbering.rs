//! CPU numbering: CPU 0 is the processor that booted (the BSP, found by its APIC ID, wherever the
//! MADT lists it); the others are numbered in the order the MADT lists them (ACPI 6.5 §5.2.12:
//! "the boot processor ... must be the first" is a recommendation firmware does not always keep).
//! Entries without the Enabled flag (ACPI 6.5 Table 5.22; hot-pluggable processors that are not
//! present, Online Capable or not) are skipped; so are repeated APIC IDs and entries beyond the
//! number of CPUs the hypervisor supports.

use alloc::vec::Vec;

/// One processor entry of the MADT (Local APIC or Local x2APIC structure), in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MadtCpu {
    pub apic_id: u32,
    /// Flags bit 0: the processor is present and usable.
    pub enabled: bool,
}

/// Why a MADT entry gets no CPU number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// The Enabled flag is clear.
    Disabled,
    /// Its APIC ID was listed before.
    Duplicate,
    /// More processors than the hypervisor supports.
    TooMany { max: usize },
}

impl core::fmt::Display for Skip {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Disabled => f.write_str("not enabled in the MADT"),
            Self::Duplicate => f.write_str("its APIC ID is listed twice"),
            Self::TooMany { max } => write!(f, "beyond the {max} CPUs supported"),
        }
    }
}

/// The CPUs to run on: `apic_ids[i]` is CPU i's APIC ID; `apic_ids[0]` is the BSP's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Numbering {
    pub apic_ids: Vec<u32>,
    /// Entries that get no number, with the reason.
    pub skipped: Vec<(u32, Skip)>,
    /// Whether the MADT lists the BSP at all (firmware that does not is reported; the BSP is
    /// CPU 0 anyway).
    pub bsp_listed: bool,
}

impl Numbering {
    /// The number of CPU `apic_id`, if it has one.
    pub fn index_of(&self, apic_id: u32) -> Option<usize> {
        self.apic_ids.iter().position(|&a| a == apic_id)
    }
}

/// Numbers the CPUs of `entries` (MADT order) given the BSP's APIC ID, at most `max` CPUs
/// (`max` >= 1: the BSP always has a number).
pub fn number(entries: &[MadtCpu], bsp: u32, max: usize) -> Numbering {
    let mut apic_ids = alloc::vec![bsp];
    let mut skipped = Vec::new();
    let mut seen: Vec<u32> = Vec::new();
    let mut bsp_listed = false;
    for e in entries {
        if seen.contains(&e.apic_id) {
            skipped.push((e.apic_id, Skip::Duplicate));
            continue;
        }
        seen.push(e.apic_id);
        if e.apic_id == bsp {
            bsp_listed = true;
            continue;
        }
        if !e.enabled {
            skipped.push((e.apic_id, Skip::Disabled));
        } else if apic_ids.len() >= max.max(1) {
            skipped.push((e.apic_id, Skip::TooMany { max: max.max(1) }));
        } else {
            apic_ids.push(e.apic_id);
        }
    }
    Numbering {
        apic_ids,
        skipped,
        bsp_listed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(apic_id: u32) -> MadtCpu {
        MadtCpu {
            apic_id,
            enabled: true,
        }
    }

    fn off(apic_id: u32) -> MadtCpu {
        MadtCpu {
            apic_id,
            enabled: false,
        }
    }

    #[test]
    fn bsp_first_then_madt_order() {
        let n = number(&[on(0), on(1), on(2), on(3)], 0, 16);
        assert_eq!(n.apic_ids, [0, 1, 2, 3]);
        assert!(n.skipped.is_empty());
        assert!(n.bsp_listed);
        assert_eq!(n.index_of(2), Some(2));
        assert_eq!(n.index_of(9), None);
    }

    #[test]
    fn bsp_listed_later_is_still_cpu_0() {
        let n = number(&[on(4), on(6), on(2)], 6, 16);
        assert_eq!(n.apic_ids, [6, 4, 2]);
        assert!(n.bsp_listed);
    }

    #[test]
    fn disabled_entries_are_skipped_not_started() {
        // QEMU `-smp 2,maxcpus=4`: two present CPUs, two hot-pluggable ones not enabled.
        let n = number(&[on(0), on(1), off(2), off(3)], 0, 16);
        assert_eq!(n.apic_ids, [0, 1]);
        assert_eq!(n.skipped, [(2, Skip::Disabled), (3, Skip::Disabled)]);
    }

    #[test]
    fn duplicates_and_excess_are_skipped() {
        let n = number(&[on(0), on(1), on(1), on(2), on(3)], 0, 3);
        assert_eq!(n.apic_ids, [0, 1, 2]);
        assert_eq!(
            n.skipped,
            [(1, Skip::Duplicate), (3, Skip::TooMany { max: 3 })]
        );
    }

    #[test]
    fn unlisted_bsp_and_no_madt() {
        let n = number(&[on(1)], 0, 16);
        assert_eq!(n.apic_ids, [0, 1]);
        assert!(!n.bsp_listed);
        let none = number(&[], 5, 16);
        assert_eq!(none.apic_ids, [5]);
        assert!(!none.bsp_listed);
    }

    #[test]
    fn x2apic_ids_above_255() {
        let n = number(&[on(0), on(0x1_0000), on(300)], 0, 16);
        assert_eq!(n.apic_ids, [0, 0x1_0000, 300]);
    }

    #[test]
    fn max_zero_still_keeps_the_bsp() {
        let n = number(&[on(0), on(1)], 0, 0);
        assert_eq!(n.apic_ids, [0]);
        assert_eq!(n.skipped, [(1, Skip::TooMany { max: 1 })]);
    }

    #[test]
    fn skip_reasons_read_well() {
        assert_eq!(Skip::Disabled.to_string(), "not enabled in the MADT");
        assert_eq!(
            Skip::TooMany { max: 16 }.to_string(),
            "beyond the 16 CPUs supported"
        );
    }
}
