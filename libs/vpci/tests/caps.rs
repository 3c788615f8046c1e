//! Capability filtering and relinking, on the q35 functions and on hostile lists.

mod support;

use conduit_pci::CapError;
use conduit_vpci::{ExtCapAllow, HiddenCap, HideReason, Policy, VirtualFunction};
use support::pci::devices::igb_pf;
use support::pci::fake::{FakeConfig, FakeFn};
use support::vfs::{
    IGB_VF0, NVME_VF0, ext_caps, fake_bdf, image, legacy_caps, machine, msix_cap, r, single, w,
};

fn legacy(id: u8, offset: u16, reason: HideReason) -> HiddenCap {
    HiddenCap::Legacy { id, offset, reason }
}

fn extended(id: u16, offset: u16, reason: HideReason) -> HiddenCap {
    HiddenCap::Extended { id, offset, reason }
}

/// A plain endpoint with a 16 KiB BAR0 at 0xc000_0000 and a capability list starting at
/// `first`.
fn device(first: u8) -> FakeFn {
    let mut f = FakeFn::new(0x1234, 0x5678, 0x020000, 0);
    f.mem32_bar_at(0x10, 0x4000, false, 0xc000_0000);
    f.cap_list(first);
    f
}

#[test]
fn igb_vf_keeps_pcie_and_msix_hides_aer_and_ari() {
    let m = machine();
    let vf = m.igb_vf(IGB_VF0);
    assert_eq!(legacy_caps(&vf), [(0x10, 0xa0), (0x11, 0x70)]);
    assert_eq!(ext_caps(&vf), []);
    assert_eq!(
        r(&vf, 0x100, 4),
        0,
        "extended list ends at 0x100 with a zero header"
    );
    assert_eq!(
        (r(&vf, 0x104, 4), r(&vf, 0x154, 4)),
        (0, 0),
        "hidden bytes read zero"
    );
    assert_eq!(
        vf.hidden_caps(),
        [
            extended(0x0001, 0x100, HideReason::NotAllowed),
            extended(0x000e, 0x150, HideReason::NotAllowed)
        ]
    );
    assert_eq!((vf.legacy_fault(), vf.extended_fault()), (None, None));
}

#[test]
fn nvme_vf_lists() {
    let m = machine();
    let vf = m.nvme_vf(NVME_VF0);
    assert_eq!(legacy_caps(&vf), [(0x11, 0x40), (0x10, 0x80), (0x01, 0x60)]);
    assert_eq!(ext_caps(&vf), []);
    assert_eq!(
        vf.hidden_caps(),
        [extended(0x000e, 0x100, HideReason::NotAllowed)]
    );
}

#[test]
fn pf_sriov_ari_aer_hidden_and_extended_space_blank() {
    let vf = single(igb_pf()).expect("builds");
    assert_eq!(
        legacy_caps(&vf),
        [(0x01, 0x40), (0x05, 0x50), (0x11, 0x70), (0x10, 0xa0)]
    );
    assert_eq!(ext_caps(&vf), []);
    assert_eq!(
        vf.hidden_caps(),
        [
            extended(0x0001, 0x100, HideReason::NotAllowed),
            extended(0x000e, 0x150, HideReason::NotAllowed),
            extended(0x0010, 0x160, HideReason::NotAllowed)
        ]
    );
    assert!(
        image(&vf)[0x100..].iter().all(|&b| b == 0),
        "no SR-IOV byte leaks"
    );
    assert_eq!(r(&vf, 0x17a, 2), 0, "VF Device ID not visible");
}

#[test]
fn vendor_specific_and_unknown_capabilities_are_unlinked() {
    let mut f = device(0x40);
    f.cap(0x40, 0x01, 0x48);
    f.cap(0x48, 0x09, 0x60);
    f.set32(0x4c, 0xdead_beef);
    msix_cap(&mut f, 0x60, 0x70, 4, 0x0000_2000, 0x0000_3000);
    f.cap(0x70, 0x03, 0x80);
    f.set32(0x74, 0x1234_5678);
    support::pci::devices::pcie_cap(&mut f, 0x80, 0, 0, false);
    let vf = single(f).expect("builds");
    assert_eq!(legacy_caps(&vf), [(0x01, 0x40), (0x11, 0x60), (0x10, 0x80)]);
    assert_eq!(
        r(&vf, 0x41, 1),
        0x60,
        "PM now points past the vendor capability"
    );
    assert!(image(&vf)[0x48..0x60].iter().all(|&b| b == 0));
    assert!(image(&vf)[0x70..0x80].iter().all(|&b| b == 0));
    assert_eq!(
        vf.hidden_caps(),
        [
            legacy(0x09, 0x48, HideReason::NotAllowed),
            legacy(0x03, 0x70, HideReason::NotAllowed)
        ]
    );
}

#[test]
fn looping_list_is_cut_and_the_virtual_list_terminates() {
    let mut f = device(0x40);
    f.cap(0x40, 0x01, 0x50);
    f.cap(0x50, 0x05, 0x40);
    f.set16(0x52, 0x0080);
    let vf = single(f).expect("builds despite the loop");
    assert_eq!(
        vf.legacy_fault(),
        Some(CapError::Loop {
            bdf: fake_bdf(),
            offset: 0x40
        })
    );
    assert_eq!(legacy_caps(&vf), [(0x01, 0x40), (0x05, 0x50)]);
    assert_eq!(r(&vf, 0x51, 1), 0, "MSI's next pointer now ends the list");
    assert!(vf.msi().is_some());
    // A capability pointing at itself.
    let mut f = device(0x40);
    f.cap(0x40, 0x11, 0x40);
    f.set32(0x44, 0x2000);
    f.set32(0x48, 0x3000);
    let vf = single(f).expect("builds");
    assert_eq!(legacy_caps(&vf), [(0x11, 0x40)]);
    assert!(matches!(
        vf.legacy_fault(),
        Some(CapError::Loop { offset: 0x40, .. })
    ));
}

#[test]
fn bad_pointers_end_the_walk() {
    let mut f = device(0x40);
    f.cap(0x40, 0x01, 0x51);
    let vf = single(f).expect("builds");
    assert_eq!(legacy_caps(&vf), [(0x01, 0x40)]);
    assert!(matches!(
        vf.legacy_fault(),
        Some(CapError::Misaligned { pointer: 0x51, .. })
    ));
    // Capabilities pointer into the header.
    let vf = single(device(0x3c)).expect("builds");
    assert_eq!(legacy_caps(&vf), []);
    assert_eq!(
        (r(&vf, 0x34, 1), r(&vf, 0x06, 2)),
        (0, 0),
        "no list, Status bit clear"
    );
    assert!(matches!(
        vf.legacy_fault(),
        Some(CapError::OutOfRange { pointer: 0x3c, .. })
    ));
    // No list at all.
    let vf = single(FakeFn::new(0x1234, 0x5678, 0, 0)).expect("builds");
    assert_eq!(
        (r(&vf, 0x34, 1), r(&vf, 0x06, 2), vf.legacy_fault()),
        (0, 0, None)
    );
}

#[test]
fn duplicates_overlaps_and_malformed_capabilities_are_hidden() {
    let mut f = device(0x40);
    f.cap(0x40, 0x01, 0x44); // PM: 0x40..0x48
    f.cap(0x44, 0x05, 0x50); // MSI inside PM
    msix_cap(&mut f, 0x50, 0x5c, 1, 0x2000, 0x3000);
    msix_cap(&mut f, 0x5c, 0x68, 1, 0x2000, 0x3000); // duplicate
    msix_cap(&mut f, 0x68, 0x74, 1, 0x2005, 0x3000); // BIR 5 (and a duplicate): duplicate wins
    f.cap(0x74, 0x05, 0xd0);
    f.set16(0x76, 0x0180); // 64-bit MSI with per-vector masking: 0x74..0x8c
    support::pci::devices::pcie_cap(&mut f, 0xd0, 0, 0, false); // v2 needs 0x3c bytes: past 0xff
    let vf = single(f).expect("builds");
    assert_eq!(legacy_caps(&vf), [(0x01, 0x40), (0x11, 0x50), (0x05, 0x74)]);
    assert_eq!(
        vf.hidden_caps(),
        [
            legacy(0x05, 0x44, HideReason::Overlap),
            legacy(0x11, 0x5c, HideReason::Duplicate),
            legacy(0x11, 0x68, HideReason::Duplicate),
            legacy(0x10, 0xd0, HideReason::Malformed),
        ]
    );
    assert_eq!(vf.msi().map(|m| m.offset), Some(0x74));
}

#[test]
fn msix_outside_the_bars_is_hidden() {
    for (table, pba, vectors) in [
        (0x0000_2005, 0x0000_3000, 1),    // table BIR 5: no such BAR
        (0x0000_2006, 0x0000_3000, 1),    // reserved BIR
        (0x0000_2000, 0x0000_3001, 1),    // PBA BIR 1: no such BAR
        (0x0000_0000, 0x0000_3000, 2048), // 32 KiB table in a 16 KiB BAR
        (0x0000_3ff8, 0x0000_0000, 1),    // entry crosses the end of the BAR
    ] {
        let mut f = device(0x40);
        msix_cap(&mut f, 0x40, 0, vectors, table, pba);
        let vf = single(f).expect("builds");
        assert_eq!(legacy_caps(&vf), [], "{table:#x}/{pba:#x}");
        assert_eq!(
            vf.hidden_caps(),
            [legacy(0x11, 0x40, HideReason::Malformed)]
        );
        assert!(vf.msix().is_none() && vf.msix_table().is_none());
    }
    // MSI-X in an I/O BAR.
    let mut f = device(0x40);
    f.io_bar_at(0x14, 0x100, 0x7000);
    msix_cap(&mut f, 0x40, 0, 1, 0x0000_0001, 0x0000_0081);
    assert_eq!(legacy_caps(&single(f).expect("builds")), []);
}

#[test]
fn extended_allow_list_relinks_with_a_null_head() {
    let mut f = device(0);
    f.ext_cap(0x100, 0x0001, 2, 0x140);
    f.set32(0x104, 0xffff_ffff);
    f.ext_cap(0x140, 0x0003, 1, 0x180);
    f.set32(0x144, 0x5566_7788);
    f.set32(0x148, 0x1122_3344);
    f.set32(0x14c, 0xaaaa_aaaa); // beyond the allowed 12 bytes
    f.ext_cap(0x180, 0x000d, 1, 0);
    let mut cfg = FakeConfig::default();
    cfg.insert(fake_bdf(), f);
    let dsn = [ExtCapAllow {
        id: 0x0003,
        len: 12,
    }];
    let policy = Policy { extended: &dsn };
    let vf = VirtualFunction::from_function(&mut cfg, fake_bdf(), &policy).expect("builds");
    assert_eq!(ext_caps(&vf), [(0x0000, 0x100), (0x0003, 0x140)]);
    assert_eq!(
        r(&vf, 0x100, 4),
        0x1400_0000,
        "null header pointing at the DSN"
    );
    assert_eq!(r(&vf, 0x140, 4), 0x0001_0003, "DSN, version 1, end of list");
    assert_eq!(
        (r(&vf, 0x144, 4), r(&vf, 0x148, 4), r(&vf, 0x14c, 4)),
        (0x5566_7788, 0x1122_3344, 0)
    );
    assert_eq!((r(&vf, 0x104, 4), r(&vf, 0x180, 4)), (0, 0));
    assert_eq!(
        vf.hidden_caps(),
        [
            extended(0x0001, 0x100, HideReason::NotAllowed),
            extended(0x000d, 0x180, HideReason::NotAllowed)
        ]
    );
    // Read-only.
    let mut vf = vf;
    assert!(w(&mut vf, 0x144, 4, 0).is_empty());
    assert_eq!(r(&vf, 0x144, 4), 0x5566_7788);
}

#[test]
fn extended_allowed_first_and_extended_loop() {
    let mut f = device(0);
    f.ext_cap(0x100, 0x0003, 1, 0x140);
    f.ext_cap(0x140, 0x0018, 1, 0x100); // loops back
    let mut cfg = FakeConfig::default();
    cfg.insert(fake_bdf(), f);
    let allow = [
        ExtCapAllow {
            id: 0x0003,
            len: 12,
        },
        ExtCapAllow { id: 0x0018, len: 8 },
    ];
    let vf = VirtualFunction::from_function(&mut cfg, fake_bdf(), &Policy { extended: &allow })
        .expect("builds");
    assert_eq!(ext_caps(&vf), [(0x0003, 0x100), (0x0018, 0x140)]);
    assert_eq!(r(&vf, 0x140, 4) >> 20, 0, "the loop is cut");
    assert!(matches!(
        vf.extended_fault(),
        Some(CapError::Loop { offset: 0x100, .. })
    ));
}

#[test]
fn pcie_capability_is_read_only_except_safe_device_control_bits() {
    let m = machine();
    let mut vf = m.igb_vf(IGB_VF0);
    let before = image(&vf);
    assert_eq!(
        r(&vf, 0xa4, 4),
        1 << 28,
        "Device Capabilities as on the device"
    );
    assert_eq!(
        r(&vf, 0xaa, 2),
        0,
        "Device Status reads zero (device had 0x0004)"
    );
    assert_eq!(r(&vf, 0xb2, 2), 0x1011, "Link Status passed");
    assert!(w(&mut vf, 0xa8, 2, 0x7fff).is_empty());
    assert_eq!(r(&vf, 0xa8, 2), 0x791f);
    for off in (0xa0..0xdc).step_by(4).filter(|&o| o != 0xa8) {
        w(&mut vf, off, 4, u32::MAX);
    }
    w(&mut vf, 0xa8, 2, 0);
    assert_eq!(image(&vf), before, "nothing else changed");
}

#[test]
fn flr_resets_the_virtual_function() {
    let m = machine();
    let mut vf = m.igb_vf(IGB_VF0);
    w(&mut vf, 0x10, 4, 0x8000_0000);
    w(&mut vf, 0x04, 2, 0x0006);
    w(&mut vf, 0x72, 2, 0x8000);
    w(&mut vf, 0xa8, 2, 0x0010);
    let table = vf.msix_table_mut().expect("table");
    table.write(0, 8, 0xfee0_0000).expect("entry 0");
    table.write(12, 4, 0).expect("unmask");
    let ev = w(&mut vf, 0xa9, 1, 0x80);
    use conduit_pci::BarKind::Memory64;
    use conduit_vpci::Event::*;
    assert_eq!(
        ev,
        [
            FunctionReset,
            CommandChanged {
                memory: false,
                io: false,
                bus_master: false,
                intx_disable: false
            },
            BarUnmapped {
                index: 0,
                kind: Memory64,
                guest_addr: 0x8000_0000,
                size: 0x4000
            },
            BarUnmapped {
                index: 3,
                kind: Memory64,
                guest_addr: 0,
                size: 0x4000
            },
            MsixControlChanged {
                enabled: false,
                function_mask: false
            },
        ]
    );
    assert_eq!(
        (r(&vf, 0xa8, 2), r(&vf, 0x10, 4), r(&vf, 0x72, 2)),
        (0, 0xc, 0x0002)
    );
    let entry = vf.msix_table().and_then(|t| t.entry(0)).expect("entry");
    assert!(entry.masked && entry.address == 0);
}

#[test]
fn flr_bit_without_flr_capability_does_nothing() {
    let mut vf = single(igb_pf()).expect("builds");
    w(&mut vf, 0x04, 2, 0x0002);
    assert!(w(&mut vf, 0xa8, 2, 0x8000).is_empty());
    assert_eq!((r(&vf, 0xa8, 2), r(&vf, 0x04, 2)), (0, 0x0002));
}

#[test]
fn power_management_is_read_only() {
    let m = machine();
    let mut vf = m.nvme_vf(NVME_VF0);
    assert_eq!(
        r(&vf, 0x60, 4),
        0x0003_0001,
        "PM, end of list, PMC as on the device"
    );
    assert!(w(&mut vf, 0x64, 4, 0x0000_8103).is_empty());
    assert_eq!(r(&vf, 0x64, 4), 0);
}

#[test]
fn worst_case_event_batch_fits() {
    let mut f = device(0x40);
    for i in 1..6 {
        f.mem32_bar_at(
            0x10 + 4 * i,
            0x1000,
            false,
            0xd000_0000 + (u32::from(i) << 12),
        );
    }
    f.cap(0x40, 0x05, 0x60);
    msix_cap(&mut f, 0x60, 0x80, 2, 0x2000, 0x3000);
    support::pci::devices::pcie_cap(&mut f, 0x80, 0, 0, false);
    f.set32(0x84, 1 << 28);
    let mut vf = single(f).expect("builds");
    w(&mut vf, 0x04, 2, 0x0006);
    w(&mut vf, 0x42, 2, 0x0001);
    w(&mut vf, 0x62, 2, 0x8000);
    let ev = vf.write(0x88, 2, 0x8000).expect("FLR");
    assert_eq!(ev.len(), 10);
    assert!(ev.len() <= conduit_vpci::access::MAX_EVENTS);
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e, conduit_vpci::Event::BarUnmapped { .. }))
            .count(),
        6
    );
}
