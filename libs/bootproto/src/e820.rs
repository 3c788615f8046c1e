//! The BIOS e820 memory map a guest OS reads (ACPI 6.5 §15 "System Address Map Interfaces",
//! Table 15.1 for the address range types), built from regions: sorted, overlaps refused,
//! touching regions of one type merged.

use crate::ram::GuestRam;
use alloc::vec::Vec;

/// An address range type (ACPI 6.5 Table 15.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Kind {
    /// `AddressRangeMemory`: RAM the OS may use.
    Ram = 1,
    /// `AddressRangeReserved`: not for the OS (firmware, MMIO).
    Reserved = 2,
    /// `AddressRangeACPI`: the ACPI tables; RAM once the OS has read them.
    Acpi = 3,
}

/// One range of the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub addr: u64,
    pub size: u64,
    pub kind: Kind,
}

impl Entry {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.addr + self.size
    }

    /// The 20-byte form of `struct boot_e820_entry` / the Multiboot mmap entry body: address,
    /// size, type, little-endian.
    pub fn to_bytes(&self) -> [u8; 20] {
        let mut b = [0u8; 20];
        b[..8].copy_from_slice(&self.addr.to_le_bytes());
        b[8..16].copy_from_slice(&self.size.to_le_bytes());
        b[16..].copy_from_slice(&(self.kind as u32).to_le_bytes());
        b
    }
}

/// Why a set of regions is not a memory map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum E820Error {
    #[error("region at {addr:#x} is empty or wraps around")]
    BadRegion { addr: u64 },
    #[error("regions [{a:#x}, {a_end:#x}) and [{b:#x}, {b_end:#x}) overlap")]
    Overlap {
        a: u64,
        a_end: u64,
        b: u64,
        b_end: u64,
    },
}

/// Collects regions, then [`E820Builder::build`] sorts, checks and merges them.
#[derive(Debug, Clone, Default)]
pub struct E820Builder {
    regions: Vec<Entry>,
}

impl E820Builder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `[addr, addr + size)` of type `kind`.
    pub fn add(&mut self, addr: u64, size: u64, kind: Kind) -> &mut Self {
        self.regions.push(Entry { addr, size, kind });
        self
    }

    /// The map, sorted by address, with touching regions of the same type merged.
    pub fn build(&self) -> Result<Vec<Entry>, E820Error> {
        let mut r = self.regions.clone();
        if let Some(bad) = r
            .iter()
            .find(|e| e.size == 0 || e.addr.checked_add(e.size).is_none())
        {
            return Err(E820Error::BadRegion { addr: bad.addr });
        }
        r.sort_by_key(|e| e.addr);
        let mut out: Vec<Entry> = Vec::with_capacity(r.len());
        for e in r {
            match out.last_mut() {
                Some(last) if last.end() > e.addr => {
                    return Err(E820Error::Overlap {
                        a: last.addr,
                        a_end: last.end(),
                        b: e.addr,
                        b_end: e.end(),
                    });
                }
                Some(last) if last.end() == e.addr && last.kind == e.kind => last.size += e.size,
                _ => out.push(e),
            }
        }
        Ok(out)
    }
}

/// The 640 KiB conventional memory ends here; the EBDA-sized hole above it is reserved.
pub const LOW_RAM_END: u64 = 0x9_FC00;
/// Start of RAM above the legacy hole.
pub const HIGH_RAM_START: u64 = 0x10_0000;

/// The map of a Conduit guest (the layout is described in `docs/linux-guests.md`): RAM
/// `[0, 0x9FC00)`, reserved up to `firmware.0`, the firmware tables `firmware` as ACPI, the
/// rest of the legacy hole reserved, the RAM above 1 MiB (`ram.high()`: `[1 MiB, size)`, or
/// for identity-placed RAM its host range less the first MiB), and each of `mmio` (the emulated
/// devices' windows above RAM, e.g. the I/O APIC, local APIC and PCIe ECAM) reserved. What lies
/// between is not in the map (no RAM, no reservation: where a PC has its PCI hole).
pub fn guest_map(
    ram: &GuestRam,
    firmware: (u64, u64),
    mmio: &[(u64, u64)],
) -> Result<Vec<Entry>, E820Error> {
    let mut b = E820Builder::new();
    b.add(0, LOW_RAM_END, Kind::Ram);
    let (fw, fw_end) = firmware;
    if fw > LOW_RAM_END {
        b.add(LOW_RAM_END, fw - LOW_RAM_END, Kind::Reserved);
    }
    b.add(fw, fw_end - fw, Kind::Acpi);
    if fw_end < HIGH_RAM_START {
        b.add(fw_end, HIGH_RAM_START - fw_end, Kind::Reserved);
    }
    let high = ram.high();
    if !high.is_empty() {
        b.add(high.start, high.end - high.start, Kind::Ram);
    }
    for &(addr, size) in mmio {
        b.add(addr, size, Kind::Reserved);
    }
    b.build()
}

/// The emulated devices' windows every Conduit guest has above its RAM: the PCIe ECAM window
/// of its virtual bus (1 MiB, bus 0; PCIe Base Spec r6.0 §7.2.2), the I/O APIC (82093AA
/// datasheet §3.0) and the local APIC at its default APIC_BASE (SDM Vol. 3A §11.4.1).
pub const GUEST_MMIO: [(u64, u64); 3] = [
    (0xE000_0000, 0x10_0000),
    (0xFEC0_0000, 0x1000),
    (0xFEE0_0000, 0x1000),
];

/// The map of a Conduit guest with RAM `ram`: [`guest_map`] with the firmware tables at
/// `FIRMWARE_GPA..FIRMWARE_END` and [`GUEST_MMIO`] reserved.
pub fn conduit_guest_map(ram: &GuestRam) -> Result<Vec<Entry>, E820Error> {
    use crate::layout::{FIRMWARE_END, FIRMWARE_GPA};
    guest_map(ram, (FIRMWARE_GPA, FIRMWARE_END), &GUEST_MMIO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_sorted_and_touching_ones_of_a_kind_merged() {
        let map = E820Builder::new()
            .add(0x2000, 0x1000, Kind::Ram)
            .add(0, 0x1000, Kind::Ram)
            .add(0x1000, 0x1000, Kind::Ram)
            .add(0x3000, 0x1000, Kind::Reserved)
            .add(0x5000, 0x1000, Kind::Reserved)
            .build()
            .unwrap();
        assert_eq!(
            map,
            [
                Entry {
                    addr: 0,
                    size: 0x3000,
                    kind: Kind::Ram
                },
                Entry {
                    addr: 0x3000,
                    size: 0x1000,
                    kind: Kind::Reserved
                },
                Entry {
                    addr: 0x5000,
                    size: 0x1000,
                    kind: Kind::Reserved
                },
            ]
        );
    }

    #[test]
    fn overlaps_are_refused() {
        let e = E820Builder::new()
            .add(0x1000, 0x2000, Kind::Ram)
            .add(0x2000, 0x1000, Kind::Reserved)
            .build()
            .unwrap_err();
        assert_eq!(
            e,
            E820Error::Overlap {
                a: 0x1000,
                a_end: 0x3000,
                b: 0x2000,
                b_end: 0x3000
            }
        );
        // The same kind overlapping is refused too, not merged.
        assert!(
            E820Builder::new()
                .add(0, 0x2000, Kind::Ram)
                .add(0x1000, 0x2000, Kind::Ram)
                .build()
                .is_err()
        );
    }

    #[test]
    fn empty_and_wrapping_regions_are_refused() {
        assert_eq!(
            E820Builder::new().add(0x1000, 0, Kind::Ram).build(),
            Err(E820Error::BadRegion { addr: 0x1000 })
        );
        assert_eq!(
            E820Builder::new().add(u64::MAX, 2, Kind::Ram).build(),
            Err(E820Error::BadRegion { addr: u64::MAX })
        );
    }

    #[test]
    fn the_guest_map_has_the_legacy_hole_the_tables_and_the_mmio() {
        let map = guest_map(
            &GuestRam::contiguous(256 << 20),
            (0xE_0000, 0x10_0000),
            &[
                (0xE000_0000, 0x10_0000),
                (0xFEC0_0000, 0x1000),
                (0xFEE0_0000, 0x1000),
            ],
        )
        .unwrap();
        let want = [
            (0, 0x9_FC00, Kind::Ram),
            (0x9_FC00, 0xE_0000 - 0x9_FC00, Kind::Reserved),
            (0xE_0000, 0x2_0000, Kind::Acpi),
            (0x10_0000, (256 << 20) - 0x10_0000, Kind::Ram),
            (0xE000_0000, 0x10_0000, Kind::Reserved),
            (0xFEC0_0000, 0x1000, Kind::Reserved),
            (0xFEE0_0000, 0x1000, Kind::Reserved),
        ];
        assert_eq!(map.len(), want.len());
        for (e, (addr, size, kind)) in map.iter().zip(want) {
            assert_eq!((e.addr, e.size, e.kind), (addr, size, kind));
        }
    }

    #[test]
    fn the_conduit_map_reserves_the_device_windows() {
        let map = conduit_guest_map(&GuestRam::contiguous(512 << 20)).unwrap();
        assert_eq!(map.len(), 7);
        for (addr, size) in GUEST_MMIO {
            assert!(map.contains(&Entry {
                addr,
                size,
                kind: Kind::Reserved
            }));
        }
    }

    #[test]
    fn identity_placed_ram_is_listed_at_its_host_address_and_the_gap_is_left_out() {
        let ram = GuestRam::identity(0x1000_0000, 192 << 20).unwrap();
        let map = conduit_guest_map(&ram).unwrap();
        let ram_entries: Vec<(u64, u64)> = map
            .iter()
            .filter(|e| e.kind == Kind::Ram)
            .map(|e| (e.addr, e.end()))
            .collect();
        assert_eq!(
            ram_entries,
            [(0, 0x9_FC00), (0x1010_0000, 0x1000_0000 + (192 << 20))]
        );
        // Nothing between 1 MiB and the identity range, nor in the BAR window below the ECAM.
        assert!(
            !map.iter()
                .any(|e| e.addr < 0x1010_0000 && e.end() > 0x10_0000)
        );
        assert!(
            !map.iter()
                .any(|e| e.addr < 0xE000_0000 && e.end() > 0xC000_0000)
        );
    }

    #[test]
    fn mmio_overlapping_ram_is_refused() {
        assert!(
            guest_map(
                &GuestRam::contiguous(256 << 20),
                (0xE_0000, 0x10_0000),
                &[(0x800_0000, 0x1000)]
            )
            .is_err()
        );
    }

    #[test]
    fn entries_encode_as_20_little_endian_bytes() {
        let b = Entry {
            addr: 0x1122_3344_5566_7788,
            size: 0x10,
            kind: Kind::Acpi,
        }
        .to_bytes();
        assert_eq!(&b[..8], &0x1122_3344_5566_7788u64.to_le_bytes());
        assert_eq!(&b[8..16], &0x10u64.to_le_bytes());
        assert_eq!(&b[16..], &3u32.to_le_bytes());
    }
}
