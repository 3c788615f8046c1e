//! Hostile guests and hostile devices: all-ones everywhere, misaligned and straddling accesses,
//! long random sequences. Read-only state never changes and nothing panics.

mod support;

use std::collections::BTreeSet;

use conduit_vpci::access::MAX_EVENTS;
use conduit_vpci::{AccessError, Event, Policy, VirtualFunction};
use support::pci::devices::igb_pf;
use support::pci::fake::{FakeConfig, FakeFn};
use support::vfs::{IGB_VF0, NVME_VF0, ext_caps, fake_bdf, image, legacy_caps, machine, r, single};

/// Byte offsets a guest may change on each model, by register.
fn igb_vf_writable() -> BTreeSet<u16> {
    let mut s: BTreeSet<u16> = [0x04, 0x05, 0x0c, 0x3c, 0x73, 0xa8, 0xa9].into();
    s.extend(0x10..0x18);
    s.extend(0x1c..0x24);
    s
}

fn nvme_vf_writable() -> BTreeSet<u16> {
    let mut s: BTreeSet<u16> = [0x04, 0x05, 0x0c, 0x3c, 0x43, 0x88, 0x89].into();
    s.extend(0x10..0x18);
    s
}

fn igb_pf_writable() -> BTreeSet<u16> {
    let mut s: BTreeSet<u16> = [0x04, 0x05, 0x0c, 0x3c, 0x73, 0xa8, 0xa9].into();
    s.extend(0x10..0x24); // BAR0, BAR1, BAR2 (I/O), BAR3 pair
    s.extend([0x52, 0x53]); // MSI control
    s.extend(0x54..0x5e); // MSI address, upper address, data
    s
}

fn igb_pf_msi() -> VirtualFunction {
    let mut f = igb_pf();
    f.set16(0x52, 0x0080);
    single(f).expect("builds")
}

/// Identity registers, legacy list, extended list.
type Identity = (Vec<u32>, Vec<(u8, u16)>, Vec<(u16, u16)>);

/// What must never change: identity registers and both capability lists.
fn identity(vf: &VirtualFunction) -> Identity {
    let regs = [0x00, 0x08, 0x0c, 0x2c, 0x34, 0x3c]
        .iter()
        .map(|&o| {
            // Cache Line Size and Interrupt Line are guest scratch bytes.
            let scratch = if matches!(o, 0x0c | 0x3c) { 0xff } else { 0 };
            r(vf, o, 4) & !scratch
        })
        .chain([r(vf, 0x06, 2)])
        .collect();
    (regs, legacy_caps(vf), ext_caps(vf))
}

fn check_only_writable_changed(before: &[u8], after: &[u8], writable: &BTreeSet<u16>, what: &str) {
    for (off, (b, a)) in (0u16..).zip(before.iter().zip(after)) {
        assert!(
            b == a || writable.contains(&off),
            "{what}: byte {off:#x} changed {b:#x} -> {a:#x}"
        );
    }
}

/// Writes all ones at every offset of the space with `size`, ascending or descending.
fn all_ones(vf: &mut VirtualFunction, size: u8, descending: bool) -> Vec<Event> {
    let mut offs: Vec<u16> = (0..0x1000).step_by(usize::from(size)).collect();
    if descending {
        offs.reverse();
    }
    let mut events = Vec::new();
    for off in offs {
        let ev = vf
            .write(off, size, u32::MAX)
            .expect("aligned access accepted");
        assert!(ev.len() <= MAX_EVENTS);
        events.extend(ev);
    }
    events
}

#[test]
fn all_ones_everywhere_keeps_identity() {
    let m = machine();
    type Model = (&'static str, VirtualFunction, BTreeSet<u16>);
    let models: Vec<Model> = vec![
        ("igb VF", m.igb_vf(IGB_VF0), igb_vf_writable()),
        ("nvme VF", m.nvme_vf(NVME_VF0), nvme_vf_writable()),
        ("igb PF", igb_pf_msi(), igb_pf_writable()),
    ];
    for (name, fresh, writable) in models {
        let before = image(&fresh);
        let id = identity(&fresh);
        for size in [1, 2, 4] {
            for descending in [false, true] {
                let mut vf = fresh.clone();
                let events = all_ones(&mut vf, size, descending);
                let what = format!("{name} size {size} descending {descending}");
                check_only_writable_changed(&before, &image(&vf), &writable, &what);
                assert_eq!(identity(&vf), id, "{what}");
                let flrs = events
                    .iter()
                    .filter(|e| **e == Event::FunctionReset)
                    .count();
                let flr_capable = name != "igb PF";
                assert_eq!(flrs, usize::from(flr_capable), "{what}");
                if !flr_capable || descending {
                    // The FLR came before the header writes (or never): the writes stuck.
                    assert_eq!(r(&vf, 0x04, 2) & 0x0006, 0x0006, "{what}");
                    assert_eq!(
                        r(&vf, 0x10, 4),
                        vf.bar(0).map_or(0, |b| b.low_mask() | b.type_bits())
                    );
                } else {
                    assert_eq!(
                        image(&vf),
                        before,
                        "{what}: the FLR at Device Control undid everything"
                    );
                }
            }
        }
    }
}

#[test]
fn descending_all_ones_final_values() {
    let m = machine();
    let mut vf = m.igb_vf(IGB_VF0);
    all_ones(&mut vf, 4, true);
    assert_eq!(r(&vf, 0x04, 4), 0x0010_0406);
    assert_eq!((r(&vf, 0x10, 4), r(&vf, 0x14, 4)), (0xffff_c00c, u32::MAX));
    assert_eq!((r(&vf, 0x1c, 4), r(&vf, 0x20, 4)), (0xffff_c00c, u32::MAX));
    assert_eq!(r(&vf, 0x70, 4), 0xc002_0011);
    assert_eq!(r(&vf, 0xa8, 2), 0, "the FLR reset Device Control");
    assert_eq!(r(&vf, 0x3c, 4), 0x0000_00ff);
}

#[test]
fn misaligned_straddling_and_out_of_range_are_rejected() {
    let m = machine();
    let mut vf = m.igb_vf(IGB_VF0);
    vf.write(0x04, 2, 0x0006).expect("enable");
    let before = image(&vf);
    for off in (0..0x20).chain(0xff0..0x1010).chain([0xfffe, u16::MAX]) {
        for size in 0..=9u8 {
            let expected = if ![1, 2, 4].contains(&size) {
                Some(AccessError::BadSize { size })
            } else if off % u16::from(size) != 0 {
                let o = u64::from(off);
                Some(if (off % 4) + u16::from(size) > 4 {
                    AccessError::Straddles { offset: o, size }
                } else {
                    AccessError::Misaligned { offset: o, size }
                })
            } else if off >= 0x1000 {
                Some(AccessError::OutOfRange {
                    offset: u64::from(off),
                })
            } else {
                None
            };
            assert_eq!(vf.read(off, size).err(), expected, "read {off:#x}/{size}");
            let wr = vf.clone().write(off, size, u32::MAX).err();
            assert_eq!(wr, expected, "write {off:#x}/{size}");
            if expected.is_some() {
                vf.write(off, size, u32::MAX).expect_err("rejected");
                assert_eq!(
                    image(&vf),
                    before,
                    "rejected write at {off:#x}/{size} changed state"
                );
            }
        }
    }
    // Concrete cases from the brief.
    assert_eq!(
        vf.read(0x03, 2),
        Err(AccessError::Straddles { offset: 3, size: 2 })
    );
    assert_eq!(
        vf.read(0x01, 2),
        Err(AccessError::Misaligned { offset: 1, size: 2 })
    );
    assert_eq!(
        vf.read(0x02, 4),
        Err(AccessError::Straddles { offset: 2, size: 4 })
    );
    assert_eq!(vf.read(0xfff, 1), Ok(0));
    assert_eq!(
        vf.read(0x1000, 1),
        Err(AccessError::OutOfRange { offset: 0x1000 })
    );
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn random_hostile_sequences_keep_read_only_state() {
    let m = machine();
    for (seed, fresh, writable) in [
        (1u64, m.igb_vf(IGB_VF0), igb_vf_writable()),
        (2, m.nvme_vf(NVME_VF0), nvme_vf_writable()),
        (3, igb_pf_msi(), igb_pf_writable()),
    ] {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut vf = fresh.clone();
        let before = image(&fresh);
        let id = identity(&fresh);
        let (mut ok, mut rejected) = (0, 0);
        for _ in 0..40_000 {
            let x = rng.next();
            let off = if x & 1 == 0 {
                (x >> 8) as u16 & 0xff
            } else {
                (x >> 8) as u16 & 0x1fff
            };
            let size = [1, 2, 4, 4, 3, 8][((x >> 32) % 6) as usize];
            let value = match (x >> 40) % 4 {
                0 => u32::MAX,
                1 => 0,
                _ => rng.next() as u32,
            };
            match vf.write(off, size, value) {
                Ok(ev) => {
                    ok += 1;
                    assert!(ev.len() <= MAX_EVENTS);
                }
                Err(_) => rejected += 1,
            }
            if let Some(t) = vf.msix_table_mut() {
                let y = rng.next();
                let _ = t.write(y & 0x1fff, [4, 8, 2][(y >> 20) as usize % 3], rng.next());
            }
        }
        assert!(
            ok > 5_000 && rejected > 5_000,
            "both paths exercised: {ok}/{rejected}"
        );
        check_only_writable_changed(&before, &image(&vf), &writable, &format!("seed {seed}"));
        assert_eq!(identity(&vf), id);
    }
}

#[test]
fn hostile_devices_do_not_break_the_build() {
    // Every byte of the device reads all ones: not present.
    let mut f = FakeFn::new(0xffff, 0xffff, 0xff_ffff, 0xff);
    f.bytes.fill(0xff);
    assert!(single(f.clone()).is_err());
    let mut cfg = FakeConfig::default();
    cfg.insert(fake_bdf(), f.clone());
    assert!(VirtualFunction::build(&cfg, fake_bdf(), &[], &Policy::DEFAULT).is_err());
    // All ones except a valid identity and Type 0: the list pointer 0xff is refused, the
    // extended space (all ones) is treated as absent.
    f.set32(0, 0x5678_1234);
    f.set8(0x0e, 0);
    cfg.insert(fake_bdf(), f);
    let vf = VirtualFunction::build(&cfg, fake_bdf(), &[], &Policy::DEFAULT).expect("builds");
    assert_eq!((legacy_caps(&vf), ext_caps(&vf)), (vec![], vec![]));
    assert!(vf.legacy_fault().is_some());
    assert_eq!(
        (r(&vf, 0x06, 2), r(&vf, 0x34, 1), r(&vf, 0x100, 4)),
        (0, 0, 0)
    );
    assert_eq!(r(&vf, 0x10, 4), 0, "no BARs given, none shown");
    // Every capability ID in a long chain that ends in a loop.
    let mut f = FakeFn::new(0x1234, 0x5678, 0, 0);
    f.cap_list(0x40);
    for (i, off) in (0x40u8..=0xfc).step_by(4).enumerate() {
        f.cap(off, i as u8, if off == 0xfc { 0x40 } else { off + 4 });
    }
    let vf = single(f).expect("builds");
    let caps = legacy_caps(&vf);
    assert!(caps.len() <= 4, "{caps:x?}");
    assert!(
        caps.iter()
            .all(|(id, _)| [0x01, 0x05, 0x10, 0x11].contains(id))
    );
}
