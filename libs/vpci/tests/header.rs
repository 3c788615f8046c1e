//! Identity pass-through, header defaults, Command/Status filtering, build errors.

mod support;

use conduit_pci::{Bar, BarKind, ConfigAccess, SriovCap};
use conduit_vpci::bar::BadBarReason;
use conduit_vpci::{BuildError, Event, Policy, VfConfig, VirtualFunction};
use support::pci::devices::{IGB_PF, NVME_PF, RP0, igb_pf, q35};
use support::pci::fake::{FakeConfig, FakeFn, bdf};
use support::vfs::{IGB_VF0, IGB_VF1, Machine, NVME_VF0, fake_bdf, machine, r, single, w};

fn cmd(memory: bool, io: bool, bus_master: bool, intx_disable: bool) -> Event {
    Event::CommandChanged {
        memory,
        io,
        bus_master,
        intx_disable,
    }
}

#[test]
fn igb_vf_identity_comes_from_the_pf() {
    let m = machine();
    // The VF itself reads 0xFFFF for both IDs.
    assert_eq!(m.cfg.read32(IGB_VF0, 0), u32::MAX);
    let vf = m.igb_vf(IGB_VF0);
    assert_eq!(r(&vf, 0x00, 4), 0x10ca_8086);
    assert_eq!((r(&vf, 0x00, 2), r(&vf, 0x02, 2)), (0x8086, 0x10ca));
    assert_eq!((r(&vf, 0x00, 1), r(&vf, 0x03, 1)), (0x86, 0x10));
    assert_eq!(r(&vf, 0x08, 4), 0x0200_0001, "class 02/00/00, revision 1");
    assert_eq!(r(&vf, 0x0e, 1), 0x00, "Type 0, single function");
    assert_eq!(r(&vf, 0x2c, 4), 0x0000_8086, "subsystem passed through");
    assert_eq!(r(&vf, 0x3d, 1), 0, "VFs have no INTx pin");
    assert_eq!(r(&vf, 0x06, 2), 0x0010, "Status: only Capabilities List");
    assert_eq!(r(&vf, 0x04, 2), 0, "Command starts clear");
    assert_eq!(vf.bdf(), IGB_VF0);
}

#[test]
fn nvme_vf_identity() {
    let m = machine();
    let vf = m.nvme_vf(NVME_VF0);
    assert_eq!(r(&vf, 0x00, 4), 0x0010_1b36);
    assert_eq!(r(&vf, 0x08, 4), 0x0108_0202);
    assert_eq!(r(&vf, 0x2c, 4), 0x1100_1af4);
}

#[test]
fn pf_identity_and_interrupt_pin() {
    let mut f = igb_pf();
    f.set8(0x3d, 1);
    f.set32(0x2c, 0xa001_8086);
    let vf = single(f).expect("builds");
    assert_eq!(r(&vf, 0x00, 4), 0x10c9_8086);
    assert_eq!(r(&vf, 0x08, 4), 0x0200_0001);
    assert_eq!(r(&vf, 0x2c, 4), 0xa001_8086);
    assert_eq!(r(&vf, 0x3d, 1), 1, "a PF's INTx pin is passed through");
}

#[test]
fn unimplemented_header_registers_read_zero_and_ignore_writes() {
    let m = machine();
    let mut vf = m.igb_vf(IGB_VF0);
    for off in [0x0d, 0x0f, 0x28, 0x30, 0x35, 0x38, 0x3e, 0x3f] {
        assert_eq!(r(&vf, off, 1), 0, "byte {off:#x}");
        assert!(w(&mut vf, off, 1, 0xff).is_empty());
        assert_eq!(r(&vf, off, 1), 0, "byte {off:#x} after write");
    }
    // Expansion ROM sizing finds nothing.
    w(&mut vf, 0x30, 4, u32::MAX);
    assert_eq!(r(&vf, 0x30, 4), 0);
}

#[test]
fn scratch_registers_hold_what_the_guest_writes() {
    let m = machine();
    let mut vf = m.igb_vf(IGB_VF0);
    assert!(w(&mut vf, 0x3c, 1, 0x0b).is_empty());
    assert!(w(&mut vf, 0x0c, 1, 0x10).is_empty());
    assert_eq!((r(&vf, 0x3c, 1), r(&vf, 0x0c, 1)), (0x0b, 0x10));
    // The pin next to the line is not writable.
    w(&mut vf, 0x3c, 4, u32::MAX);
    assert_eq!(r(&vf, 0x3c, 4), 0x0000_00ff);
}

#[test]
fn command_filtering_on_a_vf() {
    let m = machine();
    let mut vf = m.igb_vf(IGB_VF0);
    let ev = w(&mut vf, 0x04, 2, 0xffff);
    assert_eq!(
        r(&vf, 0x04, 2),
        0x0406,
        "MEM, BME, INTx disable; no I/O, SERR, parity"
    );
    assert_eq!(ev.first(), Some(&cmd(true, false, true, true)));
    // The same value again changes nothing.
    assert!(w(&mut vf, 0x04, 2, 0x0406).is_empty());
    // Bus master alone.
    let ev = w(&mut vf, 0x04, 2, 0x0004);
    assert_eq!(ev.first(), Some(&cmd(false, false, true, false)));
    assert_eq!(r(&vf, 0x04, 2), 0x0004);
    // SERR#, parity, MWI, special cycles are masked.
    assert!(w(&mut vf, 0x04, 2, 0x0004 | 0x0100 | 0x0040 | 0x0010 | 0x0008).is_empty());
    assert_eq!(r(&vf, 0x04, 2), 0x0004);
}

#[test]
fn io_space_bit_only_with_an_io_bar() {
    let mut pf = single(igb_pf()).expect("builds");
    let ev = w(&mut pf, 0x04, 2, 0x0001);
    assert_eq!(r(&pf, 0x04, 2), 0x0001);
    assert_eq!(ev.first(), Some(&cmd(false, true, false, false)));
    let mut nvme = single(support::pci::devices::nvme_pf()).expect("builds");
    assert!(w(&mut nvme, 0x04, 2, 0x0001).is_empty());
    assert_eq!(r(&nvme, 0x04, 2), 0);
}

#[test]
fn status_rw1c_and_read_only_bits() {
    let m = machine();
    let mut vf = m.igb_vf(IGB_VF0);
    // The guest cannot set anything in Status, not even RW1C bits or Capabilities List off.
    assert!(w(&mut vf, 0x06, 2, 0xffff).is_empty());
    assert_eq!(r(&vf, 0x06, 2), 0x0010);
    assert!(w(&mut vf, 0x06, 2, 0x0000).is_empty());
    assert_eq!(r(&vf, 0x06, 2), 0x0010);
    // The core raises error bits; non-RW1C bits in the request are ignored.
    vf.raise_status(0xffff);
    assert_eq!(r(&vf, 0x06, 2), 0xf910);
    // Writing 1 clears exactly those bits, 0 leaves them.
    w(&mut vf, 0x06, 2, 0x2100);
    assert_eq!(r(&vf, 0x06, 2), 0xd810);
    // A dword write to Command/Status with ones in the Status half clears the rest and sets
    // Command.
    let ev = w(&mut vf, 0x04, 4, 0xffff_0004);
    assert_eq!(r(&vf, 0x04, 4), 0x0010_0004);
    assert_eq!(ev, [cmd(false, false, true, false)]);
    // Byte write to the upper Status byte.
    vf.raise_status(0x8000);
    w(&mut vf, 0x07, 1, 0x80);
    assert_eq!(r(&vf, 0x06, 2), 0x0010);
}

#[test]
fn header_identity_survives_writes() {
    let m = machine();
    let mut vf = m.igb_vf(IGB_VF1);
    for (off, size) in [
        (0x00, 4),
        (0x00, 2),
        (0x02, 2),
        (0x08, 4),
        (0x0e, 1),
        (0x2c, 4),
        (0x34, 1),
        (0x3d, 1),
    ] {
        let before = r(&vf, off, size);
        assert!(w(&mut vf, off, size, 0).is_empty());
        assert!(w(&mut vf, off, size, u32::MAX).is_empty());
        assert_eq!(r(&vf, off, size), before, "{off:#x}/{size}");
    }
}

#[test]
fn multi_function_bit_is_settable_by_the_topology_only() {
    let m = machine();
    let mut vf = m.igb_vf(IGB_VF0);
    vf.set_multi_function(true);
    assert_eq!(r(&vf, 0x0e, 1), 0x80);
    w(&mut vf, 0x0c, 4, 0);
    assert_eq!(r(&vf, 0x0e, 1), 0x80);
    // A reset keeps it.
    let _ = vf.reset();
    assert_eq!(r(&vf, 0x0e, 1), 0x80);
    vf.set_multi_function(false);
    assert_eq!(r(&vf, 0x0e, 1), 0x00);
}

#[test]
fn vf_config_overlay() {
    let mut m = machine();
    let mut ov = VfConfig::new(&m.cfg, IGB_VF0, 0x8086, 0x10ca);
    assert_eq!(ov.read32(IGB_VF0, 0), 0x10ca_8086);
    assert_eq!(ov.read32(IGB_VF1, 0), u32::MAX, "other functions untouched");
    assert_eq!(ov.read32(IGB_VF0, 8), 0x0200_0001);
    assert_eq!(ov.read16(IGB_VF0, 2), 0x10ca);
    let writes = m.cfg.writes.len();
    ov.write32(IGB_VF0, 4, 0x4);
    assert_eq!(m.cfg.writes.len(), writes, "writes are dropped");
    assert_eq!(m.cfg.func(IGB_VF0).get16(4), 0);
}

#[test]
fn building_never_writes_the_device() {
    let mut m = machine();
    m.cfg.writes.clear();
    let _ = m.igb_vf(IGB_VF0);
    let _ = m.nvme_vf(NVME_VF0);
    assert!(m.cfg.writes.is_empty(), "{:x?}", m.cfg.writes);
}

#[test]
fn from_function_only_writes_bars_with_decode_off() {
    let mut cfg = q35();
    cfg.writes.clear();
    let vf = VirtualFunction::from_function(&mut cfg, IGB_PF, &Policy::DEFAULT).expect("builds");
    assert!(cfg.decode_violations.is_empty());
    assert_eq!(cfg.get(IGB_PF).get16(0x04), 0x0007, "Command restored");
    // Nothing but Command and BAR registers was written.
    assert!(
        cfg.writes
            .iter()
            .all(|&(_, off, _)| off == 0x04 || (0x10..0x28).contains(&off))
    );
    assert_eq!(r(&vf, 0x04, 2), 0, "the virtual Command starts clear");
}

fn errors(m: &Machine) {
    let policy = Policy::DEFAULT;
    // Not one of the PF's VFs (01:10.4 would be VF 2, NumVFs is 2).
    let vf2 = bdf(1, 0x10, 4);
    assert_eq!(
        VirtualFunction::from_vf(&m.cfg, &m.igb, &m.igb_bars, vf2, &policy).err(),
        Some(BuildError::NotAVf {
            pf: IGB_PF,
            vf: vf2
        })
    );
    // A VF of the other PF.
    assert_eq!(
        VirtualFunction::from_vf(&m.cfg, &m.igb, &m.igb_bars, NVME_VF0, &policy).err(),
        Some(BuildError::NotAVf {
            pf: IGB_PF,
            vf: NVME_VF0
        })
    );
}

#[test]
fn build_errors_for_vfs() {
    let mut m = machine();
    errors(&m);
    // VF that does not answer.
    m.cfg.fns.remove(&IGB_VF1);
    assert_eq!(
        VirtualFunction::from_vf(&m.cfg, &m.igb, &m.igb_bars, IGB_VF1, &Policy::DEFAULT).err(),
        Some(BuildError::NotPresent { bdf: IGB_VF1 })
    );
    // VF Enable clear.
    let mut cfg = m.cfg.clone();
    let mut s = m.igb;
    s.disable_vfs(&mut cfg).expect("disable");
    assert_eq!(
        VirtualFunction::from_vf(&cfg, &s, &m.igb_bars, IGB_VF0, &Policy::DEFAULT).err(),
        Some(BuildError::NotAVf {
            pf: IGB_PF,
            vf: IGB_VF0
        })
    );
    // VF BARs never programmed (nvme VF BAR0 left at 0).
    let mut cfg = q35();
    let mut s = SriovCap::find(&cfg, NVME_PF)
        .expect("walk")
        .expect("SR-IOV");
    s.set_num_vfs(&mut cfg, 1).expect("NumVFs");
    s.enable_vfs(&mut cfg, false).expect("enable");
    cfg.insert(NVME_VF0, support::vfs::nvme_vf());
    let bars = s.size_vf_bars(&mut cfg).expect("size");
    assert_eq!(
        VirtualFunction::from_vf(&cfg, &s, &bars, NVME_VF0, &Policy::DEFAULT).err(),
        Some(BuildError::BadBar {
            index: 0,
            reason: BadBarReason::Unassigned
        })
    );
}

#[test]
fn build_errors_for_functions() {
    // A bridge.
    let mut cfg = q35();
    assert_eq!(
        VirtualFunction::from_function(&mut cfg, RP0, &Policy::DEFAULT).err(),
        Some(BuildError::NotAnEndpoint {
            bdf: RP0,
            header_type: 0x01
        })
    );
    // Nothing there.
    let gone = bdf(7, 0, 0);
    assert!(matches!(
        VirtualFunction::from_function(&mut cfg, gone, &Policy::DEFAULT),
        Err(BuildError::Pci(conduit_pci::PciError::NotPresent { .. }))
    ));
    assert_eq!(
        VirtualFunction::build(&cfg, gone, &[], &Policy::DEFAULT).err(),
        Some(BuildError::NotPresent { bdf: gone })
    );
    // Hand-made BAR lists that cannot be backed.
    let f = FakeFn::new(0x1234, 0x5678, 0xff0000, 0);
    let mut cfg = FakeConfig::default();
    cfg.insert(fake_bdf(), f);
    let bar = |index, kind, size, address| Bar {
        index,
        kind,
        prefetchable: false,
        address,
        size,
    };
    let cases = [
        (
            vec![bar(5, BarKind::Memory64, 0x4000, 0x1000_0000)],
            5,
            BadBarReason::Index,
        ),
        (
            vec![bar(6, BarKind::Memory32, 0x4000, 0x1000_0000)],
            6,
            BadBarReason::Index,
        ),
        (
            vec![
                bar(0, BarKind::Memory64, 0x4000, 0x1000_0000),
                bar(1, BarKind::Memory32, 0x4000, 0x2000_0000),
            ],
            1,
            BadBarReason::Overlap,
        ),
        (
            vec![bar(0, BarKind::Memory32, 0x3000, 0x1000_0000)],
            0,
            BadBarReason::Size,
        ),
        (
            vec![bar(0, BarKind::Memory32, 8, 0x1000_0000)],
            0,
            BadBarReason::Size,
        ),
        (
            vec![bar(0, BarKind::Memory32, 1 << 33, 0x1000_0000)],
            0,
            BadBarReason::Size,
        ),
        (vec![bar(2, BarKind::Io, 2, 0x6000)], 2, BadBarReason::Size),
        (
            vec![bar(0, BarKind::Memory32, 0x4000, 0)],
            0,
            BadBarReason::Unassigned,
        ),
        (
            vec![bar(0, BarKind::Memory32, 0x4000, 0x1000_2000)],
            0,
            BadBarReason::Misaligned,
        ),
    ];
    for (bars, index, reason) in cases {
        assert_eq!(
            VirtualFunction::build(&cfg, fake_bdf(), &bars, &Policy::DEFAULT).err(),
            Some(BuildError::BadBar { index, reason }),
            "{bars:?}"
        );
    }
}

#[test]
fn interrupt_line_starts_where_the_core_sets_it_and_returns_there_on_reset() {
    let m = machine();
    let mut vf = m.igb_vf(IGB_VF0);
    assert_eq!(r(&vf, 0x3c, 1), 0, "nothing set: 0");
    vf.set_interrupt_line(18);
    assert_eq!(r(&vf, 0x3c, 1), 18);
    assert_eq!(
        r(&vf, 0x3c, 4),
        18,
        "pin (0 for a VF), Min_Gnt, Max_Lat unchanged"
    );
    // Still the guest's scratch register.
    w(&mut vf, 0x3c, 1, 0x0b);
    assert_eq!(r(&vf, 0x3c, 1), 0x0b);
    // A Function Level Reset (Device Control bit 15 of the PCIe capability at 0xa0) brings the
    // line the core set back.
    let ev = w(&mut vf, 0xa9, 1, 0x80);
    assert_eq!(ev.first(), Some(&Event::FunctionReset));
    assert_eq!(r(&vf, 0x3c, 1), 18);
}
