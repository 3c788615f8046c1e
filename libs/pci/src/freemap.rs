//! The free-space map's firmware inputs: which physical ranges the firmware already claims, and
//! whether firmware-placed VF BARs are forwarded to their PF.
//!
//! New MMIO windows may only take space that nothing claims. Besides the enumerated functions'
//! BARs and the bridges' windows ([`crate::decoders`]), the firmware claims space in two places:
//! - the UEFI memory map (UEFI 2.10 §7.2, `EFI_MEMORY_DESCRIPTOR`): every entry, whatever its
//!   type, describes something that is there (RAM, ACPI tables and NVS, runtime code and data,
//!   `EfiReservedMemoryType` and `EfiMemoryMappedIO` ranges such as chipset registers, the boot
//!   flash or the ECAM window). Only the gaps between entries may hold PCI memory, as on Linux,
//!   which allocates PCI resources only in the gaps of the firmware's map;
//! - the ACPI tables: the DMAR's remapping-unit register sets (VT-d 4.1 §8.3, Register Base
//!   Address and Size), the MADT's I/O APICs and local APIC (ACPI 6.5 §5.2.12) and the MCFG's ECAM
//!   windows (PCI Firmware Spec 3.3 §4.1.2).
//!
//! [`claims`] turns such ranges into [`Decoded`] entries of [`Decoder::Platform`], which every
//! placement treats as foreign (neither VF BARs nor a grown window may touch them), merging
//! overlapping and adjacent ones so that the map stays short. [`first_not_forwarding`] answers
//! whether a range firmware already gave a PF's VF BARs is inside a window of every bridge above
//! the PF (PCI-to-PCI Bridge Architecture Spec 1.2 §4.3), i.e. whether it decodes where it is.

use crate::bdf::Bdf;
use crate::decoders::{BridgeWindow, Decoded, Decoder};
use crate::plan::MmioWindow;

/// A firmware-claimed range: `[start, end)` (end exclusive, as memory-map entries give it).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Claim {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl Claim {
    /// `size` bytes at `base` (`end` saturates at the top of the address space).
    #[must_use]
    pub const fn at(base: u64, size: u64) -> Self {
        Self {
            start: base,
            end: base.saturating_add(size),
        }
    }
}

/// Writes the claims, sorted by address with overlapping and adjacent ones merged, into `out` as
/// [`Decoder::Platform`] ranges; empty claims are dropped. Returns how many entries were written,
/// or `None` if `out` is too short.
pub fn claims(input: impl IntoIterator<Item = Claim>, out: &mut [Decoded]) -> Option<usize> {
    let mut n = 0;
    for c in input {
        if c.end <= c.start {
            continue;
        }
        let range = MmioWindow {
            base: c.start,
            limit: c.end - 1,
        };
        // Insert in order, then merge with neighbours that touch it.
        let at = out[..n]
            .iter()
            .position(|d| d.range.base > range.base)
            .unwrap_or(n);
        if n >= out.len() {
            return None;
        }
        out.copy_within(at..n, at + 1);
        out[at] = Decoded {
            range,
            by: Decoder::Platform,
        };
        n += 1;
        let mut i = at.saturating_sub(1);
        while i + 1 < n {
            let (a, b) = (out[i].range, out[i + 1].range);
            if a.limit == u64::MAX || b.base <= a.limit + 1 {
                out[i].range.limit = a.limit.max(b.limit);
                out.copy_within(i + 2..n, i + 1);
                n -= 1;
            } else if i >= at {
                break;
            } else {
                i += 1;
            }
        }
    }
    Some(n)
}

/// The outermost bridge above a PF on `pf_bus` none of whose windows (memory or
/// prefetchable, as listed in `decoded` with [`Decoder::Bridge`]) holds all of `range`; `None` if
/// every bridge above forwards it (also when the PF sits on a root bus, with no bridge above).
#[must_use]
pub fn first_not_forwarding(
    decoded: &[Decoded],
    bridges: &[BridgeWindow],
    pf_bus: u8,
    range: MmioWindow,
) -> Option<Bdf> {
    let holds = |bdf: Bdf| {
        decoded.iter().any(|d| {
            d.by == Decoder::Bridge { bdf }
                && !d.range.is_empty()
                && d.range.base <= range.base
                && range.limit <= d.range.limit
        })
    };
    bridges
        .iter()
        .filter(|b| b.forwards(pf_bus) && !holds(b.bdf))
        .max_by_key(|b| b.subordinate.saturating_sub(b.secondary))
        .map(|b| b.bdf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoders::place_vf_space;

    fn w(base: u64, limit: u64) -> MmioWindow {
        MmioWindow { base, limit }
    }

    fn bdf(b: u8, d: u8, f: u8) -> Bdf {
        Bdf::new(b, d, f).unwrap()
    }

    fn run(input: &[Claim]) -> Vec<MmioWindow> {
        let mut out = [Decoded {
            range: w(1, 0),
            by: Decoder::Platform,
        }; 16];
        let n = claims(input.iter().copied(), &mut out).unwrap();
        assert!(out[..n].iter().all(|d| d.by == Decoder::Platform));
        out[..n].iter().map(|d| d.range).collect()
    }

    /// An OVMF-like q35 memory map below 4 GiB: RAM, a reserved hole, ACPI, the ECAM window
    /// (reserved), the boot flash (MMIO) and an unsorted, overlapping tail.
    #[test]
    fn memory_map_entries_merge_sorted() {
        let map = [
            Claim::at(0xffc0_0000, 0x40_0000),   // flash, EfiMemoryMappedIO
            Claim::at(0, 0xa_0000),              // RAM
            Claim::at(0x10_0000, 0x7f70_0000),   // RAM
            Claim::at(0x7f80_0000, 0x80_0000),   // ACPI NVS / reserved
            Claim::at(0xb000_0000, 0x1000_0000), // ECAM, EfiReservedMemoryType
            Claim::at(0xb800_0000, 0x100_0000),  // inside the ECAM claim
            Claim::at(0xfed1_c000, 0x4000),      // chipset RCRB, reserved
            Claim::at(0xfed1_c000, 0),           // empty: dropped
        ];
        assert_eq!(
            run(&map),
            vec![
                w(0, 0x9_ffff),
                w(0x10_0000, 0x7fff_ffff),
                w(0xb000_0000, 0xbfff_ffff),
                w(0xfed1_c000, 0xfed1_ffff),
                w(0xffc0_0000, 0xffff_ffff),
            ]
        );
    }

    #[test]
    fn touching_claims_merge_and_a_full_out_is_refused() {
        assert_eq!(
            run(&[
                Claim::at(0x2000, 0x1000),
                Claim::at(0x1000, 0x1000),
                Claim::at(0x3000, 1)
            ]),
            vec![w(0x1000, 0x3000)]
        );
        assert_eq!(
            run(&[Claim::at(u64::MAX - 0xfff, 0x2000), Claim::at(0x1000, 1)]),
            vec![w(0x1000, 0x1000), w(u64::MAX - 0xfff, u64::MAX - 1)]
        );
        let mut out = [Decoded {
            range: w(1, 0),
            by: Decoder::Platform,
        }; 1];
        assert_eq!(
            claims([Claim::at(0, 1), Claim::at(0x10, 1)], &mut out),
            None
        );
    }

    fn root_port() -> BridgeWindow {
        BridgeWindow {
            bdf: bdf(0, 2, 0),
            secondary: 1,
            subordinate: 1,
            memory: w(0xc120_0000, 0xc12f_ffff),
        }
    }

    /// A reserved memory-map entry right above a root port's window keeps the grown window (and
    /// the VF BARs) out of it: the window grows downwards instead, or the request fails.
    #[test]
    fn reserved_map_entry_is_never_carved() {
        let bridges = [root_port()];
        let mut decoded = vec![
            Decoded {
                range: w(0xc120_0000, 0xc12f_ffff),
                by: Decoder::Bridge { bdf: bdf(0, 2, 0) },
            },
            Decoded {
                range: w(0xc120_0000, 0xc12f_ffff),
                by: Decoder::Function { bus: 1 },
            },
        ];
        let mut out = [Decoded {
            range: w(1, 0),
            by: Decoder::Platform,
        }; 4];
        // The firmware reserves 0xc1300000-0xc13fffff (say, a chipset device it hides).
        let n = claims([Claim::at(0xc130_0000, 0x10_0000)], &mut out).unwrap();
        decoded.extend_from_slice(&out[..n]);
        let bounds = w(0xc000_0000, 0xfebf_ffff);
        let mut inner = vec![w(1, 0); decoded.len()];
        let mut foreign = inner.clone();
        let mut changes = [crate::WindowChange {
            bridge: bdf(0, 2, 0),
            before: w(1, 0),
            after: w(1, 0),
        }; 2];
        let placed = place_vf_space(
            &decoded,
            &bridges,
            1,
            bounds,
            0x4_0000,
            0x4000,
            &mut inner,
            &mut foreign,
            &mut changes,
        )
        .unwrap();
        assert!(!placed.region.overlaps(&w(0xc130_0000, 0xc13f_ffff)));
        assert!(!changes[0].after.overlaps(&w(0xc130_0000, 0xc13f_ffff)));
        assert!(changes[0].after.base <= placed.region.base);
        assert!(placed.region.limit <= changes[0].after.limit);
        // Reserved space all around the window: no room at all.
        let n = claims(
            [
                Claim::at(0xc000_0000, 0x120_0000),
                Claim::at(0xc130_0000, 0x3d00_0000),
            ],
            &mut out,
        )
        .unwrap();
        decoded.truncate(2);
        decoded.extend_from_slice(&out[..n]);
        let mut inner = vec![w(1, 0); decoded.len()];
        let mut foreign = inner.clone();
        assert!(
            place_vf_space(
                &decoded,
                &bridges,
                1,
                bounds,
                0x4_0000,
                0x4000,
                &mut inner,
                &mut foreign,
                &mut changes,
            )
            .is_err()
        );
    }

    #[test]
    fn firmware_vf_bars_are_kept_only_inside_every_window_above() {
        let rp = BridgeWindow {
            subordinate: 2,
            ..root_port()
        };
        let switch_down = BridgeWindow {
            bdf: bdf(1, 0, 0),
            secondary: 2,
            subordinate: 2,
            memory: w(1, 0),
        };
        let bridges = [rp, switch_down];
        let decoded = [
            Decoded {
                range: w(0xc120_0000, 0xc12f_ffff),
                by: Decoder::Bridge { bdf: rp.bdf },
            },
            Decoded {
                range: w(0xe0_0000_0000, 0xe0_3fff_ffff),
                by: Decoder::Bridge { bdf: rp.bdf },
            },
            Decoded {
                range: w(0xe0_0000_0000, 0xe0_0fff_ffff),
                by: Decoder::Bridge {
                    bdf: switch_down.bdf,
                },
            },
        ];
        // Above 4 GiB, inside both prefetchable windows: kept.
        assert_eq!(
            first_not_forwarding(&decoded, &bridges, 2, w(0xe0_0000_0000, 0xe0_0001_ffff)),
            None
        );
        // Inside the root port's window but not the switch port's: that port is named.
        assert_eq!(
            first_not_forwarding(&decoded, &bridges, 2, w(0xe0_2000_0000, 0xe0_2000_ffff)),
            Some(switch_down.bdf)
        );
        // Straddling the end of a window: the outermost bridge is named first.
        assert_eq!(
            first_not_forwarding(&decoded, &bridges, 2, w(0xc12f_0000, 0xc130_ffff)),
            Some(rp.bdf)
        );
        // On a root bus nothing is above: whatever firmware chose is forwarded.
        assert_eq!(
            first_not_forwarding(&decoded, &bridges, 0, w(0x1000, 0x1fff)),
            None
        );
    }
}
