//! Header fields, BAR sizing and programming, bridges — on the q35 fake machine.

mod support;

use conduit_pci::config::{command, reg};
use conduit_pci::{
    BarKind, BridgeBuses, ConfigAccess, HeaderLayout, PciError, bridge_buses, is_present,
    read_header, set_bridge_buses, size_bars, write_bar,
};
use support::devices::{IGB_PF, NVME_PF, RP0, RP1, q35};
use support::fake::{FakeConfig, FakeFn, bdf};

#[test]
fn headers_of_the_q35_functions() {
    let cfg = q35();
    let expect = [
        (
            bdf(0, 0, 0),
            0x8086,
            0x29c0,
            0x06,
            HeaderLayout::Endpoint,
            false,
        ),
        (RP0, 0x1b36, 0x000c, 0x06, HeaderLayout::Bridge, false),
        (RP1, 0x1b36, 0x000c, 0x06, HeaderLayout::Bridge, false),
        (
            bdf(0, 4, 0),
            0x1234,
            0x11e8,
            0x00,
            HeaderLayout::Endpoint,
            false,
        ),
        (
            bdf(0, 0x1f, 0),
            0x8086,
            0x2918,
            0x06,
            HeaderLayout::Endpoint,
            true,
        ),
        (IGB_PF, 0x8086, 0x10c9, 0x02, HeaderLayout::Endpoint, false),
        (NVME_PF, 0x1b36, 0x0010, 0x01, HeaderLayout::Endpoint, false),
    ];
    for (b, vendor, device, base, layout, mf) in expect {
        let h = read_header(&cfg, b).expect("present");
        assert_eq!((h.vendor_id, h.device_id), (vendor, device), "{b}");
        assert_eq!(h.class.base, base, "{b}");
        assert_eq!(h.layout(), layout, "{b}");
        assert_eq!(h.multi_function(), mf, "{b}");
    }
    let igb = read_header(&cfg, IGB_PF).expect("present");
    assert_eq!(igb.class.as_u32(), 0x020000);
    assert_eq!(igb.revision, 1);
    assert!(igb.has_capabilities());
    let nvme = read_header(&cfg, NVME_PF).expect("present");
    assert_eq!((nvme.class.sub, nvme.class.prog_if), (0x08, 0x02));
}

#[test]
fn absent_function_reads_all_ones_and_is_not_present() {
    let mut cfg = q35();
    for b in [bdf(0, 5, 0), bdf(1, 0, 1), bdf(3, 0, 0), bdf(1, 0x10, 0)] {
        assert!(!is_present(&cfg, b));
        assert_eq!(read_header(&cfg, b), Err(PciError::NotPresent { bdf: b }));
        assert_eq!(size_bars(&mut cfg, b), Err(PciError::NotPresent { bdf: b }));
        assert_eq!(cfg.read8(b, 0x0e), 0xff);
    }
    assert!(is_present(&cfg, IGB_PF));
}

#[test]
fn igb_pf_bar_sizes() {
    let mut cfg = q35();
    let bars = size_bars(&mut cfg, IGB_PF).expect("sized");
    let b0 = bars.get(0).expect("BAR0");
    assert_eq!(
        (b0.kind, b0.size, b0.prefetchable, b0.address),
        (BarKind::Memory32, 128 << 10, false, 0xc106_0000)
    );
    let b1 = bars.get(1).expect("BAR1");
    assert_eq!(
        (b1.kind, b1.size, b1.address),
        (BarKind::Memory32, 128 << 10, 0xc108_0000)
    );
    let b2 = bars.get(2).expect("BAR2");
    assert_eq!((b2.kind, b2.size, b2.address), (BarKind::Io, 32, 0x6000));
    assert!(b2.is_io() && !b2.is_memory());
    let b3 = bars.get(3).expect("BAR3");
    assert_eq!(
        (b3.kind, b3.size, b3.address),
        (BarKind::Memory64, 16 << 10, 0xc10a_0000)
    );
    assert!(b3.is_64bit());
    assert!(bars.get(4).is_none(), "upper half of BAR3");
    assert!(bars.get(5).is_none(), "unimplemented");
    assert!(bars.get(6).is_none());
    assert_eq!(
        bars.iter().map(|b| b.index).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
}

#[test]
fn sizing_turns_decode_off_and_restores_everything() {
    let mut cfg = q35();
    let before = cfg.get(IGB_PF).bytes.clone();
    assert_eq!(cfg.read16(IGB_PF, reg::COMMAND), 0x0007);
    size_bars(&mut cfg, IGB_PF).expect("sized");
    assert!(
        cfg.decode_violations.is_empty(),
        "{:?}",
        cfg.decode_violations
    );
    assert_eq!(
        cfg.get(IGB_PF).bytes,
        before,
        "config space restored byte for byte"
    );
    let cmd_writes: Vec<u32> = cfg
        .writes
        .iter()
        .filter(|w| w.1 == reg::COMMAND)
        .map(|w| w.2)
        .collect();
    assert_eq!(
        cmd_writes,
        [0x0004, 0x0007],
        "decode off (bus master kept), then restored"
    );
    assert_eq!(cfg.writes.first().map(|w| w.1), Some(reg::COMMAND));
    assert_eq!(cfg.writes.last().map(|w| w.1), Some(reg::COMMAND));
    let all_ones = cfg.writes.iter().filter(|w| w.2 == u32::MAX).count();
    assert_eq!(
        all_ones, 6,
        "BAR0, BAR1, BAR2, BAR3 low+high, and the unimplemented BAR5"
    );
}

#[test]
fn sizing_with_decode_already_off_leaves_command_alone() {
    let mut cfg = q35();
    cfg.func(IGB_PF).set16(0x04, command::BUS_MASTER);
    size_bars(&mut cfg, IGB_PF).expect("sized");
    assert!(cfg.writes.iter().all(|w| w.1 != reg::COMMAND));
    assert!(cfg.decode_violations.is_empty());
}

#[test]
fn sizing_does_not_clear_rw1c_status_bits() {
    let mut cfg = q35();
    // Received Master Abort latched in Status (RW1C).
    cfg.func(IGB_PF).set16(0x06, 0x2010);
    size_bars(&mut cfg, IGB_PF).expect("sized");
    assert_eq!(cfg.read16(IGB_PF, reg::STATUS), 0x2010);
}

#[test]
fn nvme_and_bridge_bars() {
    let mut cfg = q35();
    let bars = size_bars(&mut cfg, NVME_PF).expect("sized");
    let b0 = bars.get(0).expect("BAR0");
    assert_eq!(
        (b0.kind, b0.size, b0.prefetchable),
        (BarKind::Memory64, 16 << 10, false)
    );
    assert_eq!(bars.iter().count(), 1);
    cfg.writes.clear();
    let rp = size_bars(&mut cfg, RP0).expect("bridge");
    assert_eq!(rp.iter().count(), 0);
    let probed: Vec<u16> = cfg
        .writes
        .iter()
        .filter(|w| w.2 == u32::MAX)
        .map(|w| w.1)
        .collect();
    assert_eq!(probed, [0x10, 0x14], "a Type 1 header has only BAR0/BAR1");
}

#[test]
fn large_64bit_bar_above_4g() {
    let mut cfg = FakeConfig::default();
    let b = bdf(5, 0, 0);
    let mut f = FakeFn::new(0x10de, 0x1234, 0x030000, 0);
    f.mem64_bar_at(FakeFn::bar(0), 16 << 30, true, 0x40_0000_0000);
    cfg.insert(b, f);
    let bars = size_bars(&mut cfg, b).expect("sized");
    let b0 = bars.get(0).expect("BAR0");
    assert_eq!(
        (b0.size, b0.address, b0.prefetchable),
        (16 << 30, 0x40_0000_0000, true)
    );
}

#[test]
fn hostile_bars_are_typed_errors_and_command_is_restored() {
    let b = bdf(5, 0, 0);
    // 64-bit BAR in the last slot.
    let mut cfg = FakeConfig::default();
    let mut f = FakeFn::new(0x1234, 1, 0, 0);
    f.mem64_bar_at(FakeFn::bar(5), 4096, false, 0);
    f.set16(0x04, 0x0002);
    cfg.insert(b, f);
    assert_eq!(
        size_bars(&mut cfg, b),
        Err(PciError::Bar64InLastSlot { bdf: b, index: 5 })
    );
    assert_eq!(
        cfg.read16(b, reg::COMMAND),
        0x0002,
        "restored after the error"
    );
    // Reserved memory type 11b.
    let mut cfg = FakeConfig::default();
    let mut f = FakeFn::new(0x1234, 1, 0, 0);
    f.set32(FakeFn::bar(1), 0b110);
    cfg.insert(b, f);
    assert_eq!(
        size_bars(&mut cfg, b),
        Err(PciError::ReservedBarType { bdf: b, index: 1 })
    );
    // A bridge's 64-bit BAR1 has no upper half either.
    let mut cfg = FakeConfig::default();
    let mut f = FakeFn::new(0x1234, 1, 0x060400, 1);
    f.mem64_bar_at(FakeFn::bar(1), 4096, false, 0);
    cfg.insert(b, f);
    assert_eq!(
        size_bars(&mut cfg, b),
        Err(PciError::Bar64InLastSlot { bdf: b, index: 1 })
    );
}

#[test]
fn write_bar_checks_alignment_and_width() {
    let mut cfg = q35();
    let bars = size_bars(&mut cfg, IGB_PF).expect("sized");
    let b0 = *bars.get(0).expect("BAR0");
    let b3 = *bars.get(3).expect("BAR3");
    let bad = |address| {
        Err(PciError::BadBarAddress {
            bdf: IGB_PF,
            index: 0,
            address,
        })
    };
    assert_eq!(
        write_bar(&mut cfg, IGB_PF, &b0, 0xd000_1000),
        bad(0xd000_1000)
    );
    assert_eq!(
        write_bar(&mut cfg, IGB_PF, &b0, 0x1_0000_0000),
        bad(0x1_0000_0000)
    );
    let moved = write_bar(&mut cfg, IGB_PF, &b0, 0xd002_0000).expect("aligned");
    assert_eq!(moved.address, 0xd002_0000);
    let moved3 = write_bar(&mut cfg, IGB_PF, &b3, 0x8_0000_4000).expect("64-bit");
    assert_eq!(moved3.address, 0x8_0000_4000);
    assert!(cfg.decode_violations.is_empty());
    let again = size_bars(&mut cfg, IGB_PF).expect("sized");
    assert_eq!(again.get(0).map(|b| b.address), Some(0xd002_0000));
    assert_eq!(again.get(3).map(|b| b.address), Some(0x8_0000_4000));
    assert_eq!(cfg.read16(IGB_PF, reg::COMMAND), 0x0007);
}

#[test]
fn root_port_bus_numbers() {
    let mut cfg = q35();
    let rp0 = bridge_buses(&cfg, RP0).expect("bridge");
    assert_eq!(
        rp0,
        BridgeBuses {
            primary: 0,
            secondary: 1,
            subordinate: 1
        }
    );
    assert_eq!(rp0.range(), Some(1..=1));
    assert!(rp0.forwards(1) && !rp0.forwards(2) && !rp0.forwards(0));
    assert_eq!(
        bridge_buses(&cfg, RP1).expect("bridge").range(),
        Some(2..=2)
    );
    assert_eq!(
        bridge_buses(&cfg, IGB_PF),
        Err(PciError::NotABridge {
            bdf: IGB_PF,
            header_type: 0
        })
    );
    let widened = BridgeBuses {
        primary: 0,
        secondary: 1,
        subordinate: 3,
    };
    set_bridge_buses(&mut cfg, RP0, widened).expect("bridge");
    assert_eq!(bridge_buses(&cfg, RP0), Ok(widened));
    let unconfigured = BridgeBuses {
        primary: 0,
        secondary: 0,
        subordinate: 0,
    };
    assert_eq!(unconfigured.range(), None);
    assert_eq!(
        BridgeBuses {
            primary: 0,
            secondary: 5,
            subordinate: 4
        }
        .range(),
        None
    );
}
