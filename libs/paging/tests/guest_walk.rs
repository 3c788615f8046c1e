//! Read-only walks of guest IA-32e page tables (`ReadOnlyTable`, `GuestPaging`) over fake guest
//! memory: 4-level translation with 4 KiB, 2 MiB and 1 GiB leaves, not-present entries, reserved
//! bits, entries outside the memory, and the paging modes that are refused.

use std::collections::HashMap;

use conduit_paging::{
    Config, Error, GuestPaging, GuestRegisters, Host, LargePages, Level, PageSize, PagingLevels,
    PhysRead, ReadOnlyTable, UnsupportedPaging,
};

/// Guest memory of `size` bytes holding only the entries written; everything else reads 0.
struct Memory {
    size: u64,
    words: HashMap<u64, u64>,
}

impl Memory {
    fn new(size: u64) -> Self {
        Self {
            size,
            words: HashMap::new(),
        }
    }

    fn set(&mut self, table: u64, index: u64, value: u64) {
        self.words.insert(table + index * 8, value);
    }
}

impl PhysRead for Memory {
    fn read_u64(&self, phys: u64) -> Option<u64> {
        assert_eq!(phys % 8, 0, "unaligned entry read at {phys:#x}");
        (phys + 8 <= self.size).then(|| self.words.get(&phys).copied().unwrap_or(0))
    }
}

const P: u64 = 1;
const RW: u64 = 1 << 1;
const PS: u64 = 1 << 7;
const XD: u64 = 1 << 63;
const PML4: u64 = 0x1000;
const PDPT: u64 = 0x2000;
const PD: u64 = 0x3000;
const PT: u64 = 0x4000;

const CR0_PE_PG: u64 = 1 | (1 << 31);
const CR4_PAE: u64 = 1 << 5;
const CR4_LA57: u64 = 1 << 12;
const EFER_LME_LMA: u64 = (1 << 8) | (1 << 10);
const EFER_NXE: u64 = 1 << 11;

/// PML4[0] -> PDPT; PDPT[0] -> PD; PD[0] -> PT (PT[5] -> 0x7000, PT[6] not present);
/// PD[1]: 2 MiB page at 0x60_0000; PDPT[1]: 1 GiB page at 0x8000_0000.
fn tables() -> Memory {
    let mut m = Memory::new(0x4000_0000);
    m.set(PML4, 0, PDPT | P | RW);
    m.set(PDPT, 0, PD | P | RW);
    m.set(PD, 0, PT | P | RW);
    m.set(PT, 5, 0x7000 | P | RW);
    m.set(PD, 1, 0x60_0000 | PS | P | RW);
    m.set(PDPT, 1, 0x8000_0000 | PS | P);
    m
}

fn regs(efer: u64, cr4: u64) -> GuestRegisters {
    GuestRegisters {
        cr0: CR0_PE_PG,
        cr3: PML4 | 0x18, // PWT/PCD bits in CR3 are not address bits
        cr4,
        efer,
    }
}

fn paging(m: &Memory, efer: u64, page_1g: bool) -> GuestPaging<&Memory> {
    GuestPaging::new(regs(EFER_LME_LMA | efer, CR4_PAE), m, 39, page_1g).expect("4-level")
}

#[test]
fn four_kib_two_mib_and_one_gib_leaves_translate() {
    let m = tables();
    let g = paging(&m, 0, true);
    assert_eq!(g.translate(0x5123), Ok(0x7123));
    assert_eq!(g.translate(0x20_0000 + 0x1_2345), Ok(0x61_2345));
    assert_eq!(g.translate(0x4000_0000 + 0x123_4567), Ok(0x8123_4567));
    let GuestPaging::FourLevel(t) = g else {
        panic!("not 4-level")
    };
    assert_eq!(t.root(), PML4);
    let walk = t.walk(0x5123).expect("walk");
    assert_eq!(walk.steps().len(), 4);
    let leaf = t.translate(0x4000_0000).expect("1 GiB");
    assert_eq!(leaf.page_size, PageSize::Size1G);
}

#[test]
fn not_present_at_each_level_is_not_mapped() {
    let m = tables();
    let g = paging(&m, 0, true);
    // PT[6], PD[2], PDPT[2], PML4[1] are all zero.
    for addr in [0x6000, 0x40_0000, 0x8000_0000, 1 << 39] {
        assert_eq!(
            g.translate(addr),
            Err(Error::NotMapped { addr }),
            "{addr:#x}"
        );
    }
}

#[test]
fn non_canonical_address_is_out_of_range() {
    let m = tables();
    let g = paging(&m, 0, true);
    assert_eq!(
        g.translate(1 << 47),
        Err(Error::AddressOutOfRange {
            addr: 1 << 47,
            bits: 48
        })
    );
    // The upper half is canonical: it walks (and PML4[256] is not present).
    let high = 0xffff_8000_0000_0000;
    assert_eq!(g.translate(high), Err(Error::NotMapped { addr: high }));
}

#[test]
fn reserved_bits_fault() {
    // An address bit above MAXPHYADDR (39) in a table pointer.
    let mut m = tables();
    m.set(PDPT, 0, PD | (1 << 40) | P);
    let err = paging(&m, 0, true).translate(0x5000);
    assert_eq!(
        err,
        Err(Error::ReservedBits {
            level: Level::Pdpt,
            raw: PD | (1 << 40) | P,
            bits: 1 << 40
        })
    );
    // XD without EFER.NXE is reserved; with NXE it is a right (no execute), not a fault.
    let mut m = tables();
    m.set(PT, 5, 0x7000 | XD | P);
    assert!(matches!(
        paging(&m, 0, true).translate(0x5000),
        Err(Error::ReservedBits {
            level: Level::Pt,
            bits: XD,
            ..
        })
    ));
    assert_eq!(paging(&m, EFER_NXE, true).translate(0x5000), Ok(0x7000));
    // PS in a PML4E.
    let mut m = tables();
    m.set(PML4, 0, PDPT | PS | P);
    assert!(matches!(
        paging(&m, 0, true).translate(0x5000),
        Err(Error::ReservedBits {
            level: Level::Pml4,
            bits: PS,
            ..
        })
    ));
    // Bits 20:13 of a 2 MiB leaf; bit 12 (PAT) is not reserved.
    let mut m = tables();
    m.set(PD, 1, 0x60_0000 | (1 << 13) | PS | P);
    assert!(matches!(
        paging(&m, 0, true).translate(0x20_0000),
        Err(Error::ReservedBits {
            level: Level::Pd,
            bits: 0x2000,
            ..
        })
    ));
    m.set(PD, 1, 0x60_0000 | (1 << 12) | PS | P);
    assert_eq!(paging(&m, 0, true).translate(0x20_0000), Ok(0x60_0000));
    // Bits 29:13 of a 1 GiB leaf.
    let mut m = tables();
    m.set(PDPT, 1, 0x8000_0000 | (1 << 29) | PS | P);
    assert!(matches!(
        paging(&m, 0, true).translate(0x4000_0000),
        Err(Error::ReservedBits {
            level: Level::Pdpt,
            bits: 0x2000_0000,
            ..
        })
    ));
}

#[test]
fn one_gib_leaf_without_page1gb_is_reserved() {
    let m = tables();
    assert!(matches!(
        paging(&m, 0, false).translate(0x4000_0000),
        Err(Error::ReservedBits {
            level: Level::Pdpt,
            bits: PS,
            ..
        })
    ));
    // 2 MiB leaves are always honoured in IA-32e mode.
    assert_eq!(paging(&m, 0, false).translate(0x20_0000), Ok(0x60_0000));
}

#[test]
fn entries_outside_memory_are_unreadable() {
    let mut m = tables();
    m.size = 0x3000; // the PD at 0x3000 is beyond the memory
    assert_eq!(
        paging(&m, 0, true).translate(0x5000),
        Err(Error::Unreadable { phys: PD })
    );
}

#[test]
fn paging_modes() {
    let m = tables();
    let off = GuestRegisters {
        cr0: 1,
        ..GuestRegisters::default()
    };
    let g = GuestPaging::new(off, &m, 39, true).expect("paging off");
    assert_eq!(g.translate(0x1234_5678), Ok(0x1234_5678));
    let cases = [
        (regs(EFER_LME_LMA, 0), UnsupportedPaging::ThirtyTwoBit),
        (regs(0, CR4_PAE), UnsupportedPaging::Pae),
        (
            regs(EFER_LME_LMA, CR4_PAE | CR4_LA57),
            UnsupportedPaging::FiveLevel,
        ),
    ];
    for (r, why) in cases {
        assert_eq!(GuestPaging::new(r, &m, 39, true).err(), Some(why), "{r:?}");
    }
    assert_eq!(
        GuestPaging::new(regs(EFER_LME_LMA, CR4_PAE), &m, 0, true).err(),
        Some(UnsupportedPaging::PhysicalWidth(0))
    );
    assert_eq!(
        UnsupportedPaging::FiveLevel.to_string(),
        "5-level paging (CR4.LA57 = 1) is not walked"
    );
}

#[test]
fn read_only_table_refuses_three_level_host_tables() {
    let m = tables();
    let config = Config::new(PagingLevels::Three).with_large_pages(LargePages::SIZE_2M);
    assert_eq!(
        ReadOnlyTable::new(Host::new(), &m, config, PML4).err(),
        Some(Error::UnsupportedLevels {
            levels: PagingLevels::Three
        })
    );
}
