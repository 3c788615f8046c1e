//! MSI-X: the virtual capability on the igb and nvme VFs, and the trapped table page.

mod support;

use conduit_vpci::{AccessError, Event, MsixEntry, MsixInfo, MsixTable};
use support::vfs::{IGB_VF0, NVME_VF0, machine, r, w};

fn entry_event(index: u16, address: u64, data: u32, masked: bool) -> Option<Event> {
    Some(Event::MsixEntryChanged {
        index,
        address,
        data,
        masked,
    })
}

#[test]
fn igb_vf_capability() {
    let m = machine();
    let vf = m.igb_vf(IGB_VF0);
    assert_eq!(
        vf.msix(),
        Some(&MsixInfo {
            offset: 0x70,
            table_size: 3,
            table_bir: 3,
            table_offset: 0,
            pba_bir: 3,
            pba_offset: 0x2000,
        })
    );
    assert_eq!(
        r(&vf, 0x70, 4),
        0x0002_0011,
        "table size 3, disabled although the device had it on"
    );
    assert_eq!(
        (r(&vf, 0x74, 4), r(&vf, 0x78, 4)),
        (0x0000_0003, 0x0000_2003)
    );
    assert_eq!(vf.msix_table().map(MsixTable::len), Some(3));
    assert_eq!(vf.msix_control(), Some((false, false)));
}

#[test]
fn nvme_vf_capability() {
    let m = machine();
    let vf = m.nvme_vf(NVME_VF0);
    assert_eq!(r(&vf, 0x40, 4), 0x0000_8011, "table size 1, next 0x80");
    assert_eq!(
        (r(&vf, 0x44, 4), r(&vf, 0x48, 4)),
        (0x0000_2000, 0x0000_3000)
    );
    let info = vf.msix().copied().expect("MSI-X");
    assert_eq!(
        (info.table_size, info.table_len(), info.pba_len()),
        (1, 16, 8)
    );
}

#[test]
fn control_enable_and_function_mask() {
    let m = machine();
    let mut vf = m.igb_vf(IGB_VF0);
    let ev = w(&mut vf, 0x72, 2, 0xffff);
    assert_eq!(r(&vf, 0x72, 2), 0xc002, "table size unchanged");
    assert_eq!(
        ev,
        [Event::MsixControlChanged {
            enabled: true,
            function_mask: true
        }]
    );
    assert_eq!(
        w(&mut vf, 0x73, 1, 0x80),
        [Event::MsixControlChanged {
            enabled: true,
            function_mask: false
        }]
    );
    assert!(w(&mut vf, 0x72, 2, 0x8000).is_empty());
    // Table Offset/BIR and PBA Offset/BIR are read-only.
    w(&mut vf, 0x74, 4, 0);
    w(&mut vf, 0x78, 4, u32::MAX);
    assert_eq!(
        (r(&vf, 0x74, 4), r(&vf, 0x78, 4)),
        (0x0000_0003, 0x0000_2003)
    );
    assert_eq!(vf.msix_control(), Some((true, false)));
}

#[test]
fn table_entry_writes_produce_exact_events() {
    let m = machine();
    let mut vf = m.igb_vf(IGB_VF0);
    let t = vf.msix_table_mut().expect("table");
    assert_eq!(
        t.write(0x10, 4, 0xfee0_1000),
        Ok(entry_event(1, 0xfee0_1000, 0, true))
    );
    assert_eq!(
        t.write(0x14, 4, 0x0000_0002),
        Ok(entry_event(1, 0x2_fee0_1000, 0, true))
    );
    assert_eq!(
        t.write(0x18, 4, 0x0000_4021),
        Ok(entry_event(1, 0x2_fee0_1000, 0x4021, true))
    );
    assert_eq!(
        t.write(0x1c, 4, 0),
        Ok(entry_event(1, 0x2_fee0_1000, 0x4021, false))
    );
    assert_eq!(
        t.entry(1),
        Some(MsixEntry {
            address: 0x2_fee0_1000,
            data: 0x4021,
            masked: false
        })
    );
    // Qword writes: address, then data + vector control in one go.
    assert_eq!(
        t.write(0x20, 8, 0x0000_0000_fee0_200f),
        Ok(entry_event(2, 0xfee0_200c, 0, true))
    );
    assert_eq!(
        t.write(0x28, 8, 0x0000_0000_0000_0033),
        Ok(entry_event(2, 0xfee0_200c, 0x33, false))
    );
    assert_eq!(
        t.write(0x28, 8, 0x0000_0001_0000_0033),
        Ok(entry_event(2, 0xfee0_200c, 0x33, true))
    );
    // Entry 0 untouched.
    assert_eq!(
        t.entry(0),
        Some(MsixEntry {
            address: 0,
            data: 0,
            masked: true
        })
    );
    // Rewriting a value is not a change.
    assert_eq!(t.write(0x18, 4, 0x0000_4021), Ok(None));
}

#[test]
fn table_reads() {
    let m = machine();
    let mut vf = m.igb_vf(IGB_VF0);
    let t = vf.msix_table_mut().expect("table");
    assert_eq!(
        (t.read(0x0c, 4), t.read(0x08, 8)),
        (Ok(1), Ok(1 << 32)),
        "reset: masked"
    );
    t.write(0x00, 8, 0x1234_5678_fee0_0000).expect("write");
    assert_eq!(t.read(0x00, 8), Ok(0x1234_5678_fee0_0000));
    assert_eq!(
        (t.read(0x00, 4), t.read(0x04, 4)),
        (Ok(0xfee0_0000), Ok(0x1234_5678))
    );
    // Reserved Vector Control bits read zero.
    t.write(0x0c, 4, u32::MAX.into()).expect("write");
    assert_eq!(t.read(0x0c, 4), Ok(1));
}

#[test]
fn out_of_range_entries_and_bad_accesses() {
    let m = machine();
    let mut vf = m.igb_vf(IGB_VF0);
    let t = vf.msix_table_mut().expect("table");
    let before = t.clone();
    // Entry 3 does not exist (3 entries), nor does the rest of the trapped page.
    for off in [0x30, 0x3c, 0x800, 0xff8] {
        assert_eq!(t.read(off, 4), Ok(0), "{off:#x}");
        assert_eq!(t.write(off, 4, u64::MAX), Ok(None));
        assert_eq!(t.write(off, 8 - (off as u8 & 4), u64::MAX), Ok(None));
    }
    assert_eq!(t.read(u64::MAX - 7, 8), Ok(0));
    assert_eq!(t.write(u64::MAX - 7, 8, 0), Ok(None));
    assert_eq!(t.read(0, 2), Err(AccessError::BadSize { size: 2 }));
    assert_eq!(t.write(0, 1, 0), Err(AccessError::BadSize { size: 1 }));
    assert_eq!(
        t.write(2, 4, 0),
        Err(AccessError::Misaligned { offset: 2, size: 4 })
    );
    assert_eq!(
        t.write(6, 4, 0),
        Err(AccessError::Straddles { offset: 6, size: 4 })
    );
    assert_eq!(
        t.read(4, 8),
        Err(AccessError::Straddles { offset: 4, size: 8 })
    );
    assert_eq!(
        t.write(0x1c, 8, u64::MAX),
        Err(AccessError::Straddles {
            offset: 0x1c,
            size: 8
        })
    );
    assert_eq!(*t, before, "nothing changed");
    // nvme: one entry; entry 1 is out of range.
    let mut nv = m.nvme_vf(NVME_VF0);
    let t = nv.msix_table_mut().expect("table");
    assert_eq!(t.write(0x10, 4, 0xfee0_0000), Ok(None));
    assert_eq!(
        t.write(0x00, 4, 0xfee0_0000),
        Ok(entry_event(0, 0xfee0_0000, 0, true))
    );
}

#[test]
fn pba_reports_the_last_known_state() {
    let mut t = MsixTable::new(3);
    assert_eq!(t.read_pba(0, 8), Ok(0));
    t.set_pending(2, true);
    t.set_pending(0, true);
    t.set_pending(3, true); // beyond the table
    assert_eq!(t.read_pba(0, 8), Ok(0b101));
    t.set_pending(0, false);
    assert_eq!((t.read_pba(0, 4), t.read_pba(4, 4)), (Ok(0b100), Ok(0)));
    t.set_pba_qword(0, u64::MAX);
    assert_eq!(t.read_pba(0, 8), Ok(0b111), "bits beyond the table dropped");
    assert_eq!(t.read_pba(8, 8), Ok(0), "beyond the array");
    assert_eq!(
        t.read_pba(1, 4),
        Err(AccessError::Misaligned { offset: 1, size: 4 })
    );
    let mut big = MsixTable::new(100);
    big.set_pba_qword(1, u64::MAX);
    big.set_pba_qword(5, u64::MAX);
    assert_eq!(
        (big.read_pba(8, 4), big.read_pba(12, 4)),
        (Ok(0xffff_ffff), Ok(0xf))
    );
    big.set_pending(99, false);
    assert_eq!(big.read_pba(8, 8), Ok((1 << 35) - 1));
}

#[test]
fn table_size_limits() {
    assert_eq!(MsixTable::new(0).len(), 1);
    assert_eq!(MsixTable::new(5000).len(), 2048);
    let t = MsixTable::new(2048);
    assert_eq!(t.entries().count(), 2048);
    assert!(t.entries().all(|e| e.masked));
}

#[test]
fn table_guest_address_follows_the_bar() {
    let m = machine();
    let mut vf = m.nvme_vf(NVME_VF0);
    assert_eq!(vf.msix_table_guest_addr(), None);
    w(&mut vf, 0x10, 4, 0xfebf_0000);
    assert_eq!(vf.msix_table_guest_addr(), None, "BAR not decoding");
    w(&mut vf, 0x04, 2, 0x0002);
    assert_eq!(vf.msix_table_guest_addr(), Some(0xfebf_2000));
    let mut igb = m.igb_vf(IGB_VF0);
    w(&mut igb, 0x1c, 4, 0xfebe_0000);
    w(&mut igb, 0x04, 2, 0x0002);
    assert_eq!(igb.msix_table_guest_addr(), Some(0xfebe_0000));
}

#[test]
fn reset_masks_every_entry() {
    let m = machine();
    let mut vf = m.igb_vf(IGB_VF0);
    w(&mut vf, 0x72, 2, 0x8000);
    let t = vf.msix_table_mut().expect("table");
    t.write(0x0c, 4, 0).expect("unmask");
    t.set_pending(1, true);
    let ev: Vec<_> = vf.reset().into_iter().collect();
    assert_eq!(
        ev,
        [Event::MsixControlChanged {
            enabled: false,
            function_mask: false
        }]
    );
    let t = vf.msix_table().expect("table");
    assert!(t.entries().all(|e| e.masked));
    assert_eq!(t.read_pba(0, 8), Ok(0));
}
