//! Virtual BARs: sizing answered from the physical (per-VF) sizes, guest programming, mapping
//! events, masking of garbage, I/O BARs.

mod support;

use conduit_pci::BarKind;
use conduit_vpci::{Event, VirtualFunction};
use support::pci::devices::{igb_pf, nvme_pf};
use support::vfs::{
    IGB_VF_BAR0, IGB_VF_BAR3, IGB_VF0, IGB_VF1, KIB16, NVME_VF_BAR0, NVME_VF0, NVME_VF1, machine,
    r, single, w,
};

/// The guest's sizing sequence on the register at `off`: save, write all ones, read, restore.
fn size_reg(vf: &mut VirtualFunction, off: u16) -> u32 {
    let saved = r(vf, off, 4);
    assert!(
        w(vf, off, 4, u32::MAX).is_empty(),
        "decode is off: no events"
    );
    let mask = r(vf, off, 4);
    assert!(w(vf, off, 4, saved).is_empty());
    assert_eq!(r(vf, off, 4), saved, "restored");
    mask
}

fn moved(index: u8, kind: BarKind, guest: u64, old: Option<u64>, size: u64, phys: u64) -> Event {
    Event::BarMoved {
        index,
        kind,
        guest_addr: guest,
        old_guest_addr: old,
        size,
        phys_addr: phys,
    }
}

#[test]
fn igb_vf_sizing_gives_16k_prefetchable_64bit_masks() {
    let m = machine();
    let mut vf = m.igb_vf(IGB_VF0);
    assert_eq!(r(&vf, 0x10, 4), 0x0000_000c, "type bits before sizing");
    assert_eq!(size_reg(&mut vf, 0x10), 0xffff_c00c);
    assert_eq!(size_reg(&mut vf, 0x14), 0xffff_ffff);
    assert_eq!(size_reg(&mut vf, 0x1c), 0xffff_c00c);
    assert_eq!(size_reg(&mut vf, 0x20), 0xffff_ffff);
    for off in [0x18, 0x24] {
        assert_eq!(size_reg(&mut vf, off), 0, "unimplemented BAR at {off:#x}");
    }
    let bars: Vec<_> = vf
        .bars()
        .map(|b| (b.index, b.kind, b.prefetchable, b.size))
        .collect();
    assert_eq!(
        bars,
        [
            (0, BarKind::Memory64, true, KIB16),
            (3, BarKind::Memory64, true, KIB16)
        ]
    );
}

#[test]
fn nvme_vf_sizing_is_non_prefetchable() {
    let m = machine();
    let mut vf = m.nvme_vf(NVME_VF0);
    assert_eq!(size_reg(&mut vf, 0x10), 0xffff_c004);
    assert_eq!(size_reg(&mut vf, 0x14), 0xffff_ffff);
    for off in [0x18, 0x1c, 0x20, 0x24] {
        assert_eq!(size_reg(&mut vf, off), 0);
    }
}

#[test]
fn vf_physical_addresses_are_per_vf_apertures() {
    let m = machine();
    let phys = |vf: &VirtualFunction| vf.bars().map(|b| b.phys_addr).collect::<Vec<_>>();
    assert_eq!(phys(&m.igb_vf(IGB_VF0)), [IGB_VF_BAR0, IGB_VF_BAR3]);
    assert_eq!(
        phys(&m.igb_vf(IGB_VF1)),
        [IGB_VF_BAR0 + KIB16, IGB_VF_BAR3 + KIB16]
    );
    assert_eq!(phys(&m.nvme_vf(NVME_VF0)), [NVME_VF_BAR0]);
    assert_eq!(phys(&m.nvme_vf(NVME_VF1)), [NVME_VF_BAR0 + KIB16]);
}

#[test]
fn programming_with_decode_off_then_enabling_memory() {
    let m = machine();
    let mut vf = m.igb_vf(IGB_VF1);
    assert!(w(&mut vf, 0x10, 4, 0x8000_0000).is_empty());
    assert!(w(&mut vf, 0x14, 4, 0).is_empty());
    assert!(w(&mut vf, 0x1c, 4, 0x8000_4000).is_empty());
    assert!(w(&mut vf, 0x20, 4, 0x1).is_empty());
    assert_eq!(r(&vf, 0x10, 4), 0x8000_000c);
    assert_eq!(vf.bar_guest_addr(3), Some(0x1_8000_4000));
    assert_eq!(vf.bar_decoding(0), None);
    let ev = w(&mut vf, 0x04, 2, 0x0006);
    assert_eq!(
        ev,
        [
            Event::CommandChanged {
                memory: true,
                io: false,
                bus_master: true,
                intx_disable: false
            },
            moved(
                0,
                BarKind::Memory64,
                0x8000_0000,
                None,
                KIB16,
                IGB_VF_BAR0 + KIB16
            ),
            moved(
                3,
                BarKind::Memory64,
                0x1_8000_4000,
                None,
                KIB16,
                IGB_VF_BAR3 + KIB16
            ),
        ]
    );
    assert_eq!(vf.bar_decoding(0), Some(0x8000_0000));
    // Bus master off: no mapping change.
    let ev = w(&mut vf, 0x04, 2, 0x0002);
    assert_eq!(
        ev,
        [Event::CommandChanged {
            memory: true,
            io: false,
            bus_master: false,
            intx_disable: false
        }]
    );
    // Memory off: both unmapped.
    let ev = w(&mut vf, 0x04, 2, 0x0000);
    assert_eq!(
        ev[1..],
        [
            Event::BarUnmapped {
                index: 0,
                kind: BarKind::Memory64,
                guest_addr: 0x8000_0000,
                size: KIB16
            },
            Event::BarUnmapped {
                index: 3,
                kind: BarKind::Memory64,
                guest_addr: 0x1_8000_4000,
                size: KIB16
            },
        ]
    );
    assert_eq!(vf.bar_decoding(3), None);
    assert_eq!(
        vf.bar_guest_addr(3),
        Some(0x1_8000_4000),
        "the address is kept"
    );
}

#[test]
fn moving_a_decoding_bar_reports_old_and_new() {
    let m = machine();
    let mut vf = m.nvme_vf(NVME_VF0);
    w(&mut vf, 0x10, 4, 0xfe00_0000);
    let ev = w(&mut vf, 0x04, 2, 0x0002);
    assert_eq!(
        ev[1],
        moved(0, BarKind::Memory64, 0xfe00_0000, None, KIB16, NVME_VF_BAR0)
    );
    // Low half then high half: two moves, each with the previous address.
    let ev = w(&mut vf, 0x10, 4, 0xfe00_4000);
    assert_eq!(
        ev,
        [moved(
            0,
            BarKind::Memory64,
            0xfe00_4000,
            Some(0xfe00_0000),
            KIB16,
            NVME_VF_BAR0
        )]
    );
    let ev = w(&mut vf, 0x14, 4, 0x2);
    assert_eq!(
        ev,
        [moved(
            0,
            BarKind::Memory64,
            0x2_fe00_4000,
            Some(0xfe00_4000),
            KIB16,
            NVME_VF_BAR0
        )]
    );
    // Writing the same address again: nothing.
    assert!(w(&mut vf, 0x10, 4, 0xfe00_4000).is_empty());
    // A word write to bits 31:16.
    let ev = w(&mut vf, 0x12, 2, 0xfd00);
    assert_eq!(
        ev,
        [moved(
            0,
            BarKind::Memory64,
            0x2_fd00_4000,
            Some(0x2_fe00_4000),
            KIB16,
            NVME_VF_BAR0
        )]
    );
}

#[test]
fn unaligned_and_garbage_addresses_are_masked() {
    let m = machine();
    let mut vf = m.igb_vf(IGB_VF0);
    w(&mut vf, 0x10, 4, 0x1234_5678);
    assert_eq!(
        r(&vf, 0x10, 4),
        0x1234_400c,
        "aligned to 16 KiB, type bits kept"
    );
    w(&mut vf, 0x10, 4, 0x0000_3ff3);
    assert_eq!(
        r(&vf, 0x10, 4),
        0x0000_000c,
        "below the size: nothing sticks"
    );
    // Byte writes into the flag byte cannot change the type.
    w(&mut vf, 0x10, 1, 0xff);
    assert_eq!(r(&vf, 0x10, 1), 0x0c);
    w(&mut vf, 0x11, 1, 0xff);
    assert_eq!(r(&vf, 0x10, 4), 0x0000_c00c);
    // Upper half takes anything.
    w(&mut vf, 0x14, 4, 0xdead_beef);
    assert_eq!(vf.bar_guest_addr(0), Some(0xdead_beef_0000_c000));
    // Writing to the upper half of BAR3 and to absent BARs does not touch BAR0.
    w(&mut vf, 0x18, 4, 0xffff_ffff);
    w(&mut vf, 0x20, 4, 0x0000_0001);
    assert_eq!(r(&vf, 0x18, 4), 0);
    assert_eq!(vf.bar_guest_addr(0), Some(0xdead_beef_0000_c000));
    assert_eq!(vf.bar_guest_addr(3), Some(0x1_0000_0000));
    assert_eq!(vf.bar_guest_addr(1), None, "upper half is not a BAR");
}

#[test]
fn pf_bars_memory32_io_and_64bit() {
    let mut pf = single(igb_pf()).expect("builds");
    let bars: Vec<_> = pf
        .bars()
        .map(|b| (b.index, b.kind, b.size, b.phys_addr))
        .collect();
    assert_eq!(
        bars,
        [
            (0, BarKind::Memory32, 128 << 10, 0xc106_0000),
            (1, BarKind::Memory32, 128 << 10, 0xc108_0000),
            (2, BarKind::Io, 32, 0x6000),
            (3, BarKind::Memory64, 16 << 10, 0xc10a_0000),
        ]
    );
    assert_eq!(size_reg(&mut pf, 0x10), 0xfffe_0000);
    assert_eq!(size_reg(&mut pf, 0x14), 0xfffe_0000);
    assert_eq!(
        size_reg(&mut pf, 0x18),
        0x0000_ffe1,
        "32-byte I/O BAR, 16-bit decode"
    );
    assert_eq!(size_reg(&mut pf, 0x1c), 0xffff_c004);
    assert_eq!(size_reg(&mut pf, 0x20), 0xffff_ffff);
}

#[test]
fn io_bar_maps_with_io_space() {
    let mut pf = single(igb_pf()).expect("builds");
    w(&mut pf, 0x18, 4, 0x0000_c0e3);
    assert_eq!(r(&pf, 0x18, 4), 0x0000_c0e1);
    w(&mut pf, 0x18, 4, 0x1234_c020);
    assert_eq!(r(&pf, 0x18, 4), 0x0000_c021, "bits 31:16 read-only zero");
    let ev = w(&mut pf, 0x04, 2, 0x0001);
    assert_eq!(
        ev,
        [
            Event::CommandChanged {
                memory: false,
                io: true,
                bus_master: false,
                intx_disable: false
            },
            moved(2, BarKind::Io, 0xc020, None, 32, 0x6000),
        ]
    );
    // Memory space on maps the memory BARs (at their programmed 0), I/O unaffected.
    let ev = w(&mut pf, 0x04, 2, 0x0003);
    let indices: Vec<u8> = ev
        .iter()
        .filter_map(|e| match e {
            Event::BarMoved { index, .. } => Some(*index),
            _ => None,
        })
        .collect();
    assert_eq!(indices, [0, 1, 3]);
}

#[test]
fn nvme_pf_from_function() {
    let mut pf = single(nvme_pf()).expect("builds");
    assert_eq!(size_reg(&mut pf, 0x10), 0xffff_c004);
    assert_eq!(pf.bar(0).map(|b| b.phys_addr), Some(0xc100_0000));
}

#[test]
fn reset_unmaps_and_clears_bars() {
    let m = machine();
    let mut vf = m.igb_vf(IGB_VF0);
    w(&mut vf, 0x10, 4, 0x8000_0000);
    w(&mut vf, 0x04, 2, 0x0006);
    let ev: Vec<Event> = vf.reset().into_iter().collect();
    assert_eq!(
        ev,
        [
            Event::CommandChanged {
                memory: false,
                io: false,
                bus_master: false,
                intx_disable: false
            },
            Event::BarUnmapped {
                index: 0,
                kind: BarKind::Memory64,
                guest_addr: 0x8000_0000,
                size: KIB16
            },
            Event::BarUnmapped {
                index: 3,
                kind: BarKind::Memory64,
                guest_addr: 0,
                size: KIB16
            },
        ]
    );
    assert_eq!(r(&vf, 0x10, 4), 0x0000_000c);
    assert!(vf.reset().is_empty(), "a second reset changes nothing");
}

#[test]
fn a_placed_bar_survives_a_reset_and_a_written_one_does_not() {
    let m = machine();
    let mut vf = m.igb_vf(IGB_VF0);
    vf.place_bar(0x10, 0xc000_0000).expect("placed");
    assert_eq!(
        r(&vf, 0x10, 4),
        0xc000_000c,
        "the guest first reads the placed address"
    );
    // The guest moves it, then resets the function: back where it was placed, as a fresh build.
    w(&mut vf, 0x10, 4, 0xd000_0000);
    w(&mut vf, 0x1c, 4, 0xd001_0000);
    vf.reset();
    assert_eq!(
        r(&vf, 0x10, 4),
        0xc000_000c,
        "placed: kept across the reset"
    );
    assert_eq!(
        r(&vf, 0x1c, 4),
        0x0000_000c,
        "written by the guest: back to 0"
    );
    let mut fresh = m.igb_vf(IGB_VF0);
    fresh.place_bar(0x10, 0xc000_0000).expect("placed");
    for off in (0x10..0x28).step_by(4) {
        assert_eq!(
            r(&vf, off, 4),
            r(&fresh, off, 4),
            "reset = fresh build at {off:#x}"
        );
    }
}
