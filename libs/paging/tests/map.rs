//! Mapping: leaf-size choice, translation, overlap, input checks, address-space limits.

mod common;

use common::*;
use conduit_paging::{
    Access, Attributes, Config, Ept, Error, Invalidation, LargePages, Level, PageSize, PageTable,
    PagingLevels,
};

fn size_at<F: conduit_paging::EntryFormat>(table: &PageTable<F, Fake>, addr: u64) -> PageSize {
    table.translate(addr).expect("mapped").page_size
}

#[test]
fn large_pages_chosen_where_aligned_and_allowed() {
    let (mut t, fake) = ept(all_large());
    let mut a = fake.clone();
    // 1 GiB + 2 MiB + 4 KiB, all aligned: one leaf of each size.
    let len = GIB1 + MIB2 + KIB4;
    t.map(&mut a, GIB1, 2 * GIB1, len, Attributes::wb(Access::RWX))
        .expect("map");
    fake.assert_clean();
    assert_eq!(size_at(&t, GIB1), PageSize::Size1G);
    assert_eq!(size_at(&t, GIB1 + GIB1 - KIB4), PageSize::Size1G);
    assert_eq!(size_at(&t, 2 * GIB1), PageSize::Size2M);
    assert_eq!(size_at(&t, 2 * GIB1 + MIB2), PageSize::Size4K);
    assert_eq!(
        t.translate(2 * GIB1 + MIB2).expect("mapped").phys,
        3 * GIB1 + MIB2
    );
    // Root, one PDPT, one PD (for the 2 MiB leaf), one PT (for the 4 KiB leaf).
    assert_eq!(fake.live_frames(), 4);
    assert!(t.translate(2 * GIB1 + MIB2 + KIB4).is_err());
}

#[test]
fn no_large_pages_when_not_allowed() {
    let (mut t, fake) = ept(LargePages::empty());
    let mut a = fake.clone();
    t.map(&mut a, GIB1, GIB1, 2 * MIB2, Attributes::wb(Access::RW))
        .expect("map");
    fake.assert_clean();
    assert_eq!(size_at(&t, GIB1), PageSize::Size4K);
    assert_eq!(size_at(&t, GIB1 + MIB2 + 0x1000), PageSize::Size4K);
    // Root, PDPT, PD, two PTs.
    assert_eq!(fake.live_frames(), 5);
}

#[test]
fn only_2m_allowed_maps_a_gigabyte_with_2m_leaves() {
    let (mut t, fake) = vtd(PagingLevels::Four, LargePages::SIZE_2M);
    let mut a = fake.clone();
    t.map(&mut a, 0, GIB1, GIB1, Attributes::wb(Access::RW))
        .expect("map");
    fake.assert_clean();
    for addr in [0, MIB2 * 100, GIB1 - KIB4] {
        assert_eq!(size_at(&t, addr), PageSize::Size2M);
    }
    assert_eq!(fake.live_frames(), 3);
    // Only 1 GiB allowed: a 2 MiB-aligned 2 MiB range becomes 512 4 KiB leaves.
    let (mut t, fake) = vtd(PagingLevels::Four, LargePages::SIZE_1G);
    let mut a = fake.clone();
    t.map(&mut a, 0, 0, MIB2, Attributes::wb(Access::RW))
        .expect("map");
    assert_eq!(size_at(&t, 0), PageSize::Size4K);
    assert_eq!(fake.live_frames(), 4);
}

#[test]
fn physical_alignment_limits_leaf_size() {
    let (mut t, fake) = ept(all_large());
    let mut a = fake.clone();
    // Input 1 GiB-aligned, physical only 2 MiB-aligned: 2 MiB leaves.
    t.map(&mut a, GIB1, GIB1 + MIB2, GIB1, Attributes::wb(Access::RW))
        .expect("map");
    assert_eq!(size_at(&t, GIB1), PageSize::Size2M);
    assert_eq!(t.translate(GIB1 + 5).expect("mapped").phys, GIB1 + MIB2 + 5);
    // Input 2 MiB-aligned, physical only 4 KiB-aligned: 4 KiB leaves.
    t.map(&mut a, 4 * GIB1, KIB4, MIB2, Attributes::wb(Access::RW))
        .expect("map");
    assert_eq!(size_at(&t, 4 * GIB1), PageSize::Size4K);
    assert_eq!(size_at(&t, 4 * GIB1 + MIB2 - KIB4), PageSize::Size4K);
    fake.assert_clean();
}

#[test]
fn unaligned_range_uses_small_leaves_up_to_the_boundaries() {
    let (mut t, fake) = ept(all_large());
    let mut a = fake.clone();
    let start = MIB2 - 2 * KIB4;
    t.map(
        &mut a,
        start,
        start + GIB1,
        2 * KIB4 + MIB2 + KIB4,
        Attributes::wb(Access::RX),
    )
    .expect("map");
    fake.assert_clean();
    assert_eq!(size_at(&t, start), PageSize::Size4K);
    assert_eq!(size_at(&t, start + KIB4), PageSize::Size4K);
    assert_eq!(size_at(&t, MIB2), PageSize::Size2M);
    assert_eq!(size_at(&t, 2 * MIB2), PageSize::Size4K);
    assert_eq!(
        t.translate(2 * MIB2 + 0xabc).expect("mapped").phys,
        GIB1 + 2 * MIB2 + 0xabc
    );
    assert_eq!(
        t.translate(start - KIB4),
        Err(Error::NotMapped { addr: start - KIB4 })
    );
    assert_eq!(
        t.translate(2 * MIB2 + KIB4),
        Err(Error::NotMapped {
            addr: 2 * MIB2 + KIB4
        })
    );
}

#[test]
fn translation_reports_offset_page_and_attributes() {
    let (mut t, fake) = ept(all_large());
    let mut a = fake.clone();
    let attrs = Attributes::wb(Access::RW);
    t.map(&mut a, 0, 3 * GIB1, GIB1, attrs).expect("map");
    let tr = t.translate(0x1234_5678).expect("mapped");
    assert_eq!(tr.phys, 3 * GIB1 + 0x1234_5678);
    assert_eq!(tr.page_phys, 3 * GIB1);
    assert_eq!(tr.page_size, PageSize::Size1G);
    assert_eq!(tr.attributes, attrs);
    assert_eq!(tr.raw, (3 * GIB1) | 0xb3);
}

#[test]
fn overlapping_map_is_refused_and_changes_nothing() {
    let (mut t, fake) = ept(all_large());
    let mut a = fake.clone();
    t.map(&mut a, GIB1, 0, MIB2, Attributes::wb(Access::RW))
        .expect("map");
    t.map(
        &mut a,
        5 * GIB1 + MIB2 / 2,
        0,
        KIB4,
        Attributes::wb(Access::RW),
    )
    .expect("map");
    let before = fake.snapshot();
    let allocations = fake.allocations();
    // Overlaps the end of the 2 MiB leaf.
    assert_eq!(
        t.map(
            &mut a,
            GIB1 + MIB2 - KIB4,
            0,
            2 * KIB4,
            Attributes::wb(Access::RW)
        ),
        Err(Error::AlreadyMapped {
            addr: GIB1 + MIB2 - KIB4
        })
    );
    // Would be a 2 MiB leaf, but a 4 KiB page inside is mapped.
    assert_eq!(
        t.map(&mut a, 5 * GIB1, 0, MIB2, Attributes::wb(Access::RW)),
        Err(Error::AlreadyMapped {
            addr: 5 * GIB1 + MIB2 / 2
        })
    );
    // Exactly the same range again.
    assert_eq!(
        t.map(&mut a, GIB1, 0, MIB2, Attributes::wb(Access::RW)),
        Err(Error::AlreadyMapped { addr: GIB1 })
    );
    assert_eq!(fake.snapshot(), before);
    assert_eq!(fake.allocations(), allocations);
    fake.assert_clean();
}

#[test]
fn bad_inputs_are_typed_errors_and_change_nothing() {
    let fake = Fake::new();
    let mut a = fake.clone();
    let config = Config::new(PagingLevels::Four).with_phys_addr_bits(39);
    let mut t = PageTable::new(Ept::new(), fake.clone(), config, &mut a).expect("new");
    let rw = Attributes::wb(Access::RW);
    let before = fake.snapshot();
    let cases = [
        (0x1001, 0, KIB4, Error::MisalignedAddress { addr: 0x1001 }),
        (0x1000, 0x10, KIB4, Error::MisalignedPhysical { phys: 0x10 }),
        (0x1000, 0, 0x1800, Error::MisalignedLength { len: 0x1800 }),
        (0x1000, 0, 0, Error::EmptyRange),
        (
            1 << 48,
            0,
            KIB4,
            Error::AddressOutOfRange {
                addr: 1 << 48,
                bits: 48,
            },
        ),
        (
            (1 << 48) - KIB4,
            0,
            2 * KIB4,
            Error::AddressOutOfRange {
                addr: (1 << 48) + KIB4 - 1,
                bits: 48,
            },
        ),
        (
            u64::MAX - 0xfff,
            0,
            KIB4,
            Error::AddressOutOfRange {
                addr: u64::MAX - 0xfff,
                bits: 48,
            },
        ),
        (
            0,
            1 << 39,
            KIB4,
            Error::PhysicalOutOfRange {
                phys: 1 << 39,
                bits: 39,
            },
        ),
        (
            0,
            (1 << 39) - KIB4,
            2 * KIB4,
            Error::PhysicalOutOfRange {
                phys: 1 << 39,
                bits: 39,
            },
        ),
    ];
    for (addr, phys, len, error) in cases {
        assert_eq!(
            t.map(&mut a, addr, phys, len, rw),
            Err(error),
            "map {addr:#x} {phys:#x} {len:#x}"
        );
    }
    assert_eq!(
        t.unmap(&mut a, 0x1001, KIB4),
        Err(Error::MisalignedAddress { addr: 0x1001 })
    );
    assert_eq!(t.unmap(&mut a, 0, 0), Err(Error::EmptyRange));
    assert_eq!(
        t.unmap(&mut a, 0, 0x10),
        Err(Error::MisalignedLength { len: 0x10 })
    );
    assert_eq!(
        t.translate(1 << 48),
        Err(Error::AddressOutOfRange {
            addr: 1 << 48,
            bits: 48
        })
    );
    assert_eq!(fake.snapshot(), before);
    // The last page of both address spaces is fine.
    t.map(&mut a, (1 << 48) - KIB4, (1 << 39) - KIB4, KIB4, rw)
        .expect("last page");
    fake.assert_clean();
}

#[test]
fn three_level_table_limits_and_shape() {
    let (mut t, fake) = vtd(PagingLevels::Three, all_large());
    let mut a = fake.clone();
    assert_eq!(t.address_bits(), 39);
    let rw = Attributes::wb(Access::RW);
    assert_eq!(
        t.map(&mut a, 1 << 39, 0, KIB4, rw),
        Err(Error::AddressOutOfRange {
            addr: 1 << 39,
            bits: 39
        })
    );
    assert_eq!(
        t.map(&mut a, (1 << 39) - GIB1, 0, 2 * GIB1, rw),
        Err(Error::AddressOutOfRange {
            addr: (1 << 39) + GIB1 - 1,
            bits: 39
        })
    );
    // The top 1 GiB: a leaf in the root (a PDPT) itself.
    t.map(&mut a, (1 << 39) - GIB1, GIB1, GIB1, rw)
        .expect("top gigabyte");
    assert_eq!(fake.live_frames(), 1);
    assert_eq!(fake.entry(t.root(), 511), GIB1 | 0x83);
    t.map(&mut a, 0x7000, 0x9000, KIB4, rw).expect("low page");
    let walk = t.walk(0x7000).expect("in range");
    let levels: Vec<Level> = walk.steps().iter().map(|s| s.level).collect();
    assert_eq!(levels, [Level::Pdpt, Level::Pd, Level::Pt]);
    assert_eq!(t.translate(0x7000).expect("mapped").phys, 0x9000);
    fake.assert_clean();
    assert_eq!(destroy(t, &fake), 3);
}

#[test]
fn host_tables_take_canonical_upper_half_addresses() {
    let (mut t, fake) = host(all_large());
    let mut a = fake.clone();
    let rw = Attributes::wb(Access::RW);
    let kernel = 0xffff_8000_0000_0000;
    let inv = t.map(&mut a, kernel, 0x20_0000, MIB2, rw).expect("map");
    assert_eq!(
        inv,
        Invalidation {
            start: kernel,
            len: MIB2,
            tables_freed: false
        }
    );
    assert_eq!(t.translate(kernel + 0x10).expect("mapped").phys, 0x20_0010);
    assert_eq!(t.walk(kernel).expect("walk").steps()[0].index, 256);
    // The very last page of the address space.
    let top = 0xffff_ffff_ffff_f000;
    t.map(&mut a, top, 0x5000, KIB4, rw).expect("top page");
    assert_eq!(t.translate(u64::MAX).expect("mapped").phys, 0x5fff);
    assert_eq!(
        t.map(&mut a, top, 0, 2 * KIB4, rw),
        Err(Error::AddressOutOfRange {
            addr: KIB4 - 1,
            bits: 48
        })
    );
    let inv = t
        .unmap(&mut a, top, KIB4)
        .expect("unmap")
        .expect("was mapped");
    assert_eq!((inv.start, inv.len), (top, KIB4));
    // Non-canonical, and a range running from the lower half into the hole.
    let hole = 0x0000_8000_0000_0000;
    assert_eq!(
        t.map(&mut a, hole, 0, KIB4, rw),
        Err(Error::AddressOutOfRange {
            addr: hole,
            bits: 48
        })
    );
    assert_eq!(
        t.map(&mut a, hole - KIB4, 0, 2 * KIB4, rw),
        Err(Error::AddressOutOfRange {
            addr: hole + KIB4 - 1,
            bits: 48
        })
    );
    // Both ends canonical but the range would cross the hole.
    assert!(matches!(
        t.map(&mut a, 0, 0, kernel + KIB4, rw),
        Err(Error::AddressOutOfRange { .. })
    ));
    assert_eq!(
        t.translate(hole),
        Err(Error::AddressOutOfRange {
            addr: hole,
            bits: 48
        })
    );
    fake.assert_clean();
}

#[test]
fn map_reports_its_range_for_invalidation() {
    let (mut t, fake) = vtd(PagingLevels::Four, all_large());
    let mut a = fake.clone();
    let inv = t
        .map(
            &mut a,
            0x3000,
            0x8000,
            5 * KIB4,
            Attributes::wb(Access::READ),
        )
        .expect("map");
    assert_eq!(
        inv,
        Invalidation {
            start: 0x3000,
            len: 5 * KIB4,
            tables_freed: false
        }
    );
    assert_eq!(inv.pages(), 5);
    assert_eq!(inv.aligned_block(), (0, 3));
}

#[test]
fn flush_hook_covers_new_tables_links_and_leaves() {
    let (mut t, fake) = vtd(PagingLevels::Four, all_large());
    let mut a = fake.clone();
    fake.clear_logs();
    t.map(
        &mut a,
        0x10_0000 + 4 * KIB4,
        0x8000,
        4 * KIB4,
        Attributes::wb(Access::RW),
    )
    .expect("map");
    fake.assert_clean();
    let walk = t.walk(0x10_0000).expect("walk");
    let tables: Vec<u64> = walk.steps().iter().map(|s| s.table).collect();
    let flushes = fake.flushes();
    // Each new table flushed whole, each link flushed, then the four leaves as one range.
    let expected = vec![
        (tables[1], 0x1000),
        (tables[0], 8),
        (tables[2], 0x1000),
        (tables[1], 8),
        (tables[3], 0x1000),
        (tables[2], 8),
        (tables[3] + 8 * 0x104, 32),
    ];
    assert_eq!(flushes, expected);
    // Every write is covered by a flush issued after it.
    for (addr, _) in fake.writes() {
        assert!(
            flushes.iter().any(|(f, len)| (*f..f + len).contains(&addr)),
            "write {addr:#x} never flushed"
        );
    }
}

#[test]
fn flush_hook_for_vtd_uses_one_range_per_table() {
    let (mut t, fake) = vtd(PagingLevels::Three, LargePages::empty());
    let mut a = fake.clone();
    t.map(&mut a, 0, 0, 3 * MIB2, Attributes::wb(Access::RW))
        .expect("map");
    fake.assert_clean();
    fake.clear_logs();
    t.unmap(&mut a, 0, 3 * MIB2).expect("unmap");
    fake.assert_clean();
    // Three page tables cleared (one flush of 4 KiB each), three PD links and then one root
    // link cleared (8 bytes each).
    let flushes = fake.flushes();
    assert_eq!(flushes.iter().filter(|(_, len)| *len == 0x1000).count(), 3);
    assert_eq!(flushes.iter().filter(|(_, len)| *len == 8).count(), 4);
    assert_eq!(flushes.len(), 7);
}
