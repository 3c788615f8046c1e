//! Exact raw entries each format writes, and the rights and memory types each refuses.

mod common;

use common::*;
use conduit_paging::{
    Access, Attributes, Config, EntryFormat, Ept, Error, Host, Level, MemoryType, PageSize,
    PageTable, PagingLevels, VtdSecondLevel,
};

/// Maps one page of `size` at `addr` → `phys` and returns the raw entry at every level.
fn map_one<F: EntryFormat>(
    format: F,
    size: PageSize,
    addr: u64,
    phys: u64,
    attributes: Attributes,
) -> Result<Vec<u64>, Error> {
    let (mut table, fake) = common::table(
        format,
        Config::new(PagingLevels::Four).with_large_pages(all_large()),
    );
    let mut alloc = fake.clone();
    table.map(&mut alloc, addr, phys, size.bytes(), attributes)?;
    fake.assert_clean();
    let walk = table.walk(addr).expect("in range");
    let leaf = walk.leaf().expect("mapped");
    assert_eq!(leaf.level, size.level());
    Ok(walk.steps().iter().map(|step| step.raw).collect())
}

fn leaf_of<F: EntryFormat>(
    format: F,
    size: PageSize,
    attributes: Attributes,
) -> Result<u64, Error> {
    let phys = match size {
        PageSize::Size4K => 0x5000,
        PageSize::Size2M => 0x20_0000,
        PageSize::Size1G => 0x4000_0000,
    };
    let addr = 3 * GIB1
        + match size {
            PageSize::Size4K => 0x7000,
            _ => 0,
        };
    map_one(format, size, addr, phys, attributes).map(|raws| *raws.last().expect("leaf"))
}

#[test]
fn ept_wb_leaves_at_every_size() {
    let rwx = Attributes::wb(Access::RWX);
    // R|W|X = 0b111, memory type WB (6) in bits 5:3 = 0x30, PS (bit 7) on large leaves.
    assert_eq!(leaf_of(Ept::new(), PageSize::Size4K, rwx), Ok(0x5037));
    assert_eq!(leaf_of(Ept::new(), PageSize::Size2M, rwx), Ok(0x20_00b7));
    assert_eq!(leaf_of(Ept::new(), PageSize::Size1G, rwx), Ok(0x4000_00b7));
}

#[test]
fn ept_table_entries_grant_rwx_and_nothing_else() {
    let raws = map_one(
        Ept::new(),
        PageSize::Size4K,
        0x7000,
        0x5000,
        Attributes::wb(Access::READ),
    )
    .expect("mapped");
    assert_eq!(raws.len(), 4);
    for raw in &raws[..3] {
        assert_eq!(raw & 0xfff, 0b111, "non-leaf {raw:#x}");
        assert_eq!(raw >> 52, 0);
    }
    assert_eq!(raws[3], 0x5031);
}

#[test]
fn ept_memory_types_ignore_pat_and_rights() {
    let f = Ept::new();
    let at = |access, mt| leaf_of(f, PageSize::Size4K, Attributes::new(access, mt));
    assert_eq!(at(Access::READ, MemoryType::Uncacheable), Ok(0x5001));
    assert_eq!(at(Access::RW, MemoryType::WriteCombining), Ok(0x500b));
    assert_eq!(at(Access::RW, MemoryType::WriteThrough), Ok(0x5023));
    assert_eq!(at(Access::RX, MemoryType::WriteProtect), Ok(0x502d));
    let ipat = Ept::new().with_ignore_guest_pat(true);
    assert_eq!(
        leaf_of(ipat, PageSize::Size4K, Attributes::wb(Access::RW)),
        Ok(0x5073)
    );
    assert_eq!(
        leaf_of(ipat, PageSize::Size2M, Attributes::wb(Access::RW)),
        Ok(0x20_00f3)
    );
}

#[test]
fn ept_refuses_what_it_cannot_express() {
    let f = Ept::new();
    let refuse = |access| {
        assert_eq!(
            leaf_of(f, PageSize::Size4K, Attributes::wb(access)),
            Err(Error::UnsupportedAccess { access })
        );
    };
    refuse(Access::WRITE);
    refuse(Access::WRITE | Access::EXECUTE);
    refuse(Access::EXECUTE);
    refuse(Access::empty());
    refuse(Access::RW | Access::USER);
    assert_eq!(
        leaf_of(
            f,
            PageSize::Size4K,
            Attributes::new(Access::RW, MemoryType::UncacheableMinus)
        ),
        Err(Error::UnsupportedMemoryType {
            memory_type: MemoryType::UncacheableMinus
        })
    );
    // Execute-only with the capability: X and the memory type, no R.
    let xo = Ept::new().with_execute_only(true);
    assert_eq!(
        leaf_of(xo, PageSize::Size4K, Attributes::wb(Access::EXECUTE)),
        Ok(0x5034)
    );
}

#[test]
fn vtd_read_write_leaves_at_every_size() {
    let rw = Attributes::wb(Access::RW);
    let f = VtdSecondLevel::new();
    assert_eq!(leaf_of(f, PageSize::Size4K, rw), Ok(0x5003));
    assert_eq!(leaf_of(f, PageSize::Size2M, rw), Ok(0x20_0083));
    assert_eq!(leaf_of(f, PageSize::Size1G, rw), Ok(0x4000_0083));
    assert_eq!(
        leaf_of(f, PageSize::Size4K, Attributes::wb(Access::READ)),
        Ok(0x5001)
    );
    assert_eq!(
        leaf_of(f, PageSize::Size4K, Attributes::wb(Access::WRITE)),
        Ok(0x5002)
    );
    // Execute is dropped: DMA without PASID never fetches instructions.
    assert_eq!(
        leaf_of(f, PageSize::Size4K, Attributes::wb(Access::RWX)),
        Ok(0x5003)
    );
}

#[test]
fn vtd_snoop_table_entries_and_zero_bits() {
    let snoop = VtdSecondLevel::new().with_snoop(true);
    assert_eq!(
        leaf_of(snoop, PageSize::Size4K, Attributes::wb(Access::RW)),
        Ok(0x5803)
    );
    assert_eq!(
        leaf_of(snoop, PageSize::Size2M, Attributes::wb(Access::RW)),
        Ok(0x20_0883)
    );
    let raws = map_one(
        VtdSecondLevel::new(),
        PageSize::Size4K,
        0x7000,
        0x5000,
        Attributes::wb(Access::RW),
    )
    .expect("mapped");
    for raw in &raws[..3] {
        // R|W only; X, EMT, IPAT, PS, SNP, TM (bit 62) all zero.
        assert_eq!(raw & !0x000f_ffff_ffff_f000, 0b11, "non-leaf {raw:#x}");
    }
    assert_eq!(raws[3] & (1 << 62), 0);
}

#[test]
fn vtd_refuses_user_no_access_and_non_wb() {
    let f = VtdSecondLevel::new();
    for access in [Access::empty(), Access::EXECUTE, Access::RW | Access::USER] {
        assert_eq!(
            leaf_of(f, PageSize::Size4K, Attributes::wb(access)),
            Err(Error::UnsupportedAccess { access })
        );
    }
    assert_eq!(
        leaf_of(
            f,
            PageSize::Size4K,
            Attributes::new(Access::RW, MemoryType::Uncacheable)
        ),
        Err(Error::UnsupportedMemoryType {
            memory_type: MemoryType::Uncacheable
        })
    );
}

#[test]
fn host_present_rw_nx_leaves_at_every_size() {
    let f = Host::new();
    let nx = 1u64 << 63;
    let rw = Attributes::wb(Access::RW);
    assert_eq!(leaf_of(f, PageSize::Size4K, rw), Ok(nx | 0x5003));
    assert_eq!(leaf_of(f, PageSize::Size2M, rw), Ok(nx | 0x20_0083));
    assert_eq!(leaf_of(f, PageSize::Size1G, rw), Ok(nx | 0x4000_0083));
    assert_eq!(
        leaf_of(f, PageSize::Size4K, Attributes::wb(Access::RX)),
        Ok(0x5001)
    );
    let user_rx = Attributes::wb(Access::RX | Access::USER);
    assert_eq!(leaf_of(f, PageSize::Size4K, user_rx), Ok(0x5005));
}

#[test]
fn host_caching_global_and_table_entries() {
    let f = Host::new();
    let nx = 1u64 << 63;
    let with = |mt| leaf_of(f, PageSize::Size4K, Attributes::new(Access::READ, mt));
    assert_eq!(with(MemoryType::WriteThrough), Ok(nx | 0x5009)); // PWT
    assert_eq!(with(MemoryType::UncacheableMinus), Ok(nx | 0x5011)); // PCD
    assert_eq!(with(MemoryType::Uncacheable), Ok(nx | 0x5019)); // PCD|PWT
    for mt in [MemoryType::WriteCombining, MemoryType::WriteProtect] {
        assert_eq!(
            with(mt),
            Err(Error::UnsupportedMemoryType { memory_type: mt })
        );
    }
    let global = Host::new().with_global(true);
    assert_eq!(
        leaf_of(global, PageSize::Size4K, Attributes::wb(Access::RX)),
        Ok(0x5101)
    );
    let raws = map_one(
        f,
        PageSize::Size4K,
        0x7000,
        0x5000,
        Attributes::wb(Access::READ),
    )
    .expect("mapped");
    for raw in &raws[..3] {
        assert_eq!(
            raw & !0x000f_ffff_ffff_f000,
            0b111,
            "non-leaf P|RW|US {raw:#x}"
        );
    }
}

#[test]
fn host_refuses_unreadable_and_non_executable_without_nxe() {
    let f = Host::new();
    assert_eq!(
        leaf_of(f, PageSize::Size4K, Attributes::wb(Access::WRITE)),
        Err(Error::UnsupportedAccess {
            access: Access::WRITE
        })
    );
    let no_nx = Host::new().with_no_execute(false);
    assert_eq!(
        leaf_of(no_nx, PageSize::Size4K, Attributes::wb(Access::RW)),
        Err(Error::UnsupportedAccess { access: Access::RW })
    );
    assert_eq!(
        leaf_of(no_nx, PageSize::Size4K, Attributes::wb(Access::RWX)),
        Ok(0x5003)
    );
}

#[test]
fn host_requires_four_levels() {
    let fake = Fake::new();
    let mut alloc = fake.clone();
    let result = PageTable::new(
        Host::new(),
        fake.clone(),
        Config::new(PagingLevels::Three),
        &mut alloc,
    );
    assert_eq!(
        result.err(),
        Some(Error::UnsupportedLevels {
            levels: PagingLevels::Three
        })
    );
    assert_eq!(fake.allocations(), 0);
}

#[test]
fn decoding_round_trips_attributes() {
    let ept = Attributes::new(Access::RX, MemoryType::WriteThrough);
    assert_eq!(decode(Ept::new(), ept), Some(ept));
    let vtd = Attributes::wb(Access::WRITE);
    assert_eq!(decode(VtdSecondLevel::new(), vtd), Some(vtd));
    let host = Attributes::new(Access::READ | Access::USER, MemoryType::Uncacheable);
    assert_eq!(decode(Host::new(), host), Some(host));
}

fn decode<F: EntryFormat>(format: F, attributes: Attributes) -> Option<Attributes> {
    let raw = format
        .leaf_entry(PageSize::Size2M, 0x20_0000, attributes)
        .ok()?;
    assert!(format.is_present(raw));
    assert!(format.is_leaf(Level::Pd, raw));
    assert_eq!(format.address(Level::Pd, raw), 0x20_0000);
    Some(format.leaf_attributes(PageSize::Size2M, raw))
}

#[test]
fn split_leaf_per_format() {
    // EPT 1 GiB → 2 MiB parts keep PS, memory type and ignore-PAT.
    let ept = Ept::new().with_ignore_guest_pat(true);
    let big = ept
        .leaf_entry(PageSize::Size1G, GIB1, Attributes::wb(Access::RW))
        .expect("leaf");
    assert_eq!(
        ept.split_leaf(PageSize::Size1G, big, 5),
        (GIB1 + 5 * MIB2) | 0xf3
    );
    // VT-d 2 MiB → 4 KiB parts lose PS, keep SNP.
    let vtd = VtdSecondLevel::new().with_snoop(true);
    let big = vtd
        .leaf_entry(PageSize::Size2M, MIB2, Attributes::wb(Access::RW))
        .expect("leaf");
    assert_eq!(
        vtd.split_leaf(PageSize::Size2M, big, 511),
        (MIB2 + 511 * KIB4) | 0x803
    );
    // Host: the PAT bit moves from bit 12 (large) to bit 7 (4 KiB), and stays for 2 MiB parts.
    let host = Host::new();
    let large_pat = (1 << 63) | MIB2 | (1 << 12) | 0x83;
    assert_eq!(
        host.split_leaf(PageSize::Size2M, large_pat, 1),
        (1 << 63) | (MIB2 + KIB4) | 0x83
    );
    let huge_pat = GIB1 | (1 << 12) | 0x83;
    assert_eq!(
        host.split_leaf(PageSize::Size1G, huge_pat, 2),
        (GIB1 + 2 * MIB2) | (1 << 12) | 0x83
    );
    assert_eq!(
        host.split_leaf(PageSize::Size2M, MIB2 | 0x83, 0),
        MIB2 | 0x03
    );
}

#[test]
fn large_leaf_address_excludes_low_bits() {
    // Host 2 MiB leaf with PAT (bit 12): the address is bits 51:21 only.
    let raw = MIB2 | (1 << 12) | 0x83;
    assert_eq!(Host::new().address(Level::Pd, raw), MIB2);
    assert_eq!(
        Host::new().memory_type(PageSize::Size2M, raw),
        MemoryType::WriteBack
    );
}
