//! MSI emulation: the guest programs the virtual capability, the core gets the state as events,
//! the physical capability is never written.

mod support;

use conduit_vpci::{Event, MsiInfo, VirtualFunction};
use support::pci::devices::igb_pf;
use support::pci::fake::FakeFn;
use support::vfs::{r, single, w};

fn msi(enabled: bool, address: u64, data: u32, mask: u32, vectors: u8) -> Event {
    Event::MsiChanged {
        enabled,
        address,
        data,
        mask,
        vectors,
    }
}

/// The igb PF with QEMU's MSI: 64-bit, one vector, no per-vector masking (`hw/net/igb.c`), left
/// enabled with an address by the host.
fn igb() -> VirtualFunction {
    let mut f = igb_pf();
    f.set16(0x52, 0x0081);
    f.set32(0x54, 0xfee0_100c);
    f.set32(0x5c, 0x0000_4041);
    single(f).expect("builds")
}

/// A 32-bit MSI with per-vector masking, 8 vectors capable, at 0x40.
fn pvm32() -> VirtualFunction {
    let mut f = FakeFn::new(0x1234, 0x0001, 0xff0000, 0);
    f.cap_list(0x40);
    f.cap(0x40, 0x05, 0);
    f.set16(0x42, 0x0106);
    f.set32(0x50, 0x0000_00aa); // pending bits on the device
    single(f).expect("builds")
}

/// A 64-bit MSI with Extended Message Data, 1 vector.
fn ext64() -> VirtualFunction {
    let mut f = FakeFn::new(0x1234, 0x0002, 0xff0000, 0);
    f.cap_list(0x40);
    f.cap(0x40, 0x05, 0);
    f.set16(0x42, 0x0280);
    single(f).expect("builds")
}

#[test]
fn capability_shape_and_reset_state() {
    let vf = igb();
    assert_eq!(
        vf.msi(),
        Some(&MsiInfo {
            offset: 0x50,
            is_64bit: true,
            per_vector_mask: false,
            extended_data: false,
            multiple_message_capable: 0,
        })
    );
    assert_eq!(
        r(&vf, 0x50, 4),
        0x0080_7005,
        "ID 5, next 0x70, 64-bit, disabled"
    );
    assert_eq!(
        (r(&vf, 0x54, 4), r(&vf, 0x5c, 4)),
        (0, 0),
        "host values not shown"
    );
    let p = pvm32();
    assert_eq!(
        p.msi()
            .map(|m| (m.max_vectors(), m.mask_bits(), m.byte_len())),
        Some((8, 0xff, 0x14))
    );
    assert_eq!(r(&p, 0x50, 4), 0, "pending bits read zero");
}

#[test]
fn programming_sequence_reports_each_change() {
    let mut vf = igb();
    assert_eq!(
        w(&mut vf, 0x54, 4, 0xfee0_0000),
        [msi(false, 0xfee0_0000, 0, 0, 1)]
    );
    assert_eq!(
        w(&mut vf, 0x58, 4, 0x1),
        [msi(false, 0x1_fee0_0000, 0, 0, 1)]
    );
    assert_eq!(
        w(&mut vf, 0x5c, 2, 0x4023),
        [msi(false, 0x1_fee0_0000, 0x4023, 0, 1)]
    );
    assert_eq!(
        w(&mut vf, 0x52, 2, 0x0001),
        [msi(true, 0x1_fee0_0000, 0x4023, 0, 1)]
    );
    assert_eq!(r(&vf, 0x52, 2), 0x0081);
    // Same values: nothing to do.
    assert!(w(&mut vf, 0x54, 4, 0xfee0_0000).is_empty());
    assert!(w(&mut vf, 0x52, 2, 0x0001).is_empty());
    assert_eq!(
        w(&mut vf, 0x52, 1, 0x00),
        [msi(false, 0x1_fee0_0000, 0x4023, 0, 1)]
    );
}

#[test]
fn read_only_fields_and_reserved_bits() {
    let mut vf = igb();
    w(&mut vf, 0x54, 4, 0xfee0_0003);
    assert_eq!(r(&vf, 0x54, 4), 0xfee0_0000, "address bits 1:0 reserved");
    // Capability bits (64-bit, MMC, PVM) and the upper data half (no ext data) do not move.
    w(&mut vf, 0x52, 2, 0xffff);
    assert_eq!(r(&vf, 0x52, 2), 0x0081, "MME clamped to MMC 0, enable set");
    w(&mut vf, 0x5c, 4, u32::MAX);
    assert_eq!(r(&vf, 0x5c, 4), 0x0000_ffff);
    w(&mut vf, 0x50, 2, 0);
    assert_eq!(r(&vf, 0x50, 2), 0x7005);
}

#[test]
fn several_vectors_are_offered_as_one() {
    let mut vf = pvm32();
    // The device is capable of 8 vectors (MMC 3); the virtual capability offers one (MMC 0).
    assert_eq!(vf.msi().map(|m| m.max_vectors()), Some(8));
    assert_eq!(
        r(&vf, 0x42, 2),
        0x0100,
        "per-vector masking, MMC 0, disabled"
    );
    // A driver asking for 32 or 4 vectors gets one: MME reads 0, the event says one vector.
    let ev = w(&mut vf, 0x42, 2, 0x0051);
    assert_eq!(r(&vf, 0x42, 2), 0x0101, "MME 5 clamped to 0");
    assert_eq!(ev, [msi(true, 0, 0, 0, 1)]);
    let ev = w(&mut vf, 0x42, 2, 0x0020);
    assert_eq!(
        (r(&vf, 0x42, 2), ev),
        (0x0100, vec![msi(false, 0, 0, 0, 1)])
    );
}

#[test]
fn per_vector_mask_bits() {
    let mut vf = pvm32();
    w(&mut vf, 0x44, 4, 0xfee0_2000);
    w(&mut vf, 0x48, 2, 0x0031);
    let ev = w(&mut vf, 0x4c, 4, u32::MAX);
    assert_eq!(r(&vf, 0x4c, 4), 0x1, "one bit: the one vector offered");
    assert_eq!(ev, [msi(false, 0xfee0_2000, 0x31, 0x1, 1)]);
    assert_eq!(
        w(&mut vf, 0x4c, 1, 0x0e),
        [msi(false, 0xfee0_2000, 0x31, 0x0, 1)]
    );
    // Pending is read-only; the 32-bit layout has no upper address.
    assert!(w(&mut vf, 0x50, 4, u32::MAX).is_empty());
    assert_eq!(r(&vf, 0x50, 4), 0);
    assert!(w(&mut vf, 0x4a, 2, 0xffff).is_empty(), "no extended data");
    assert_eq!(r(&vf, 0x48, 4), 0x31);
}

#[test]
fn extended_message_data() {
    let mut vf = ext64();
    assert_eq!(
        vf.msi().map(|m| (m.extended_data, m.byte_len())),
        Some((true, 0x10))
    );
    w(&mut vf, 0x4c, 4, 0xbeef_0042);
    assert_eq!(r(&vf, 0x4c, 4), 0xbeef_0042);
    let ev = w(&mut vf, 0x43, 1, 0x04);
    assert_eq!(r(&vf, 0x42, 2), 0x0680);
    assert_eq!(
        ev,
        [msi(false, 0, 0xbeef_0042, 0, 1)],
        "32-bit data once enabled"
    );
}

#[test]
fn the_physical_capability_is_never_written() {
    let mut cfg = support::pci::fake::FakeConfig::default();
    let mut f = igb_pf();
    f.set16(0x52, 0x0081);
    cfg.insert(support::vfs::fake_bdf(), f);
    let mut vf = VirtualFunction::from_function(
        &mut cfg,
        support::vfs::fake_bdf(),
        &conduit_vpci::Policy::DEFAULT,
    )
    .expect("builds");
    let writes = cfg.writes.clone();
    assert!(
        writes
            .iter()
            .all(|&(_, off, _)| !(0x50..0x64).contains(&off))
    );
    for off in (0x50..0x64).step_by(2) {
        w(&mut vf, off, 2, 0xffff);
    }
    assert_eq!(
        cfg.writes, writes,
        "the emulation holds no handle to the device"
    );
    assert_eq!(cfg.get(support::vfs::fake_bdf()).get16(0x52), 0x0081);
}
