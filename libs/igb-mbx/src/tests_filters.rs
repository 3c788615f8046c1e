//! Replays of `igbvf`'s multicast and VLAN requests and of its whole probe-and-open sequence
//! against the shared tables (MTA, VLVF, VFTA).

use super::tests::{BASE_VMOLR, MAC_A, refused, reset, service};
use crate::proto::{ACK, CTS, NACK};
use crate::service::{VMOLR_LPE, VMOLR_MPME, VMOLR_ROMPE, VMOLR_STRVLAN};
use crate::tables::VLVF_ENABLE;
use crate::*;
use alloc::vec;
use alloc::vec::Vec;

#[test]
fn multicast_hashes_fill_the_mta() {
    let mut s = service();
    reset(&mut s, 0);
    reset(&mut s, 1);
    // 01:00:5e:00:00:01 hashes to 0x010 (igbvf: (mc[4] >> 4) | (mc[5] << 4)), and 0x8a3.
    let o = s.message(0, &[0x0002_0003, 0x08a3_0010]);
    assert_eq!(o.reply, vec![0x0002_0003 | CTS | ACK]);
    assert_eq!(
        o.actions,
        vec![
            Action::Mta {
                index: 0,
                value: 1 << 16
            },
            Action::Mta {
                index: 0x45,
                value: 1 << 3
            },
            Action::Vmolr {
                vf: 0,
                value: BASE_VMOLR | VMOLR_ROMPE
            },
        ]
    );
    // VF 1 shares a word: the MTA is the union.
    let o = s.message(1, &[0x0001_0003, 0x0000_0011]);
    assert_eq!(
        o.actions[0],
        Action::Mta {
            index: 0,
            value: (1 << 16) | (1 << 17)
        }
    );
    // VF 0 drops its list: only VF 1's bit stays.
    let o = s.message(0, &[0x0000_0003]);
    assert_eq!(
        o.actions,
        vec![
            Action::Mta {
                index: 0,
                value: 1 << 17
            },
            Action::Mta {
                index: 0x45,
                value: 0
            },
            Action::Vmolr {
                vf: 0,
                value: BASE_VMOLR
            },
        ]
    );
    // 30 hashes fit the mailbox; 31 are more than Linux's PF takes.
    let mut full = vec![0x001e_0003];
    full.extend((0..15).map(|i| (i * 2 + 1) << 16 | (i * 2)));
    assert_eq!(s.message(0, &full).verdict, Verdict::Accepted);
    full[0] = 0x001f_0003;
    let o = s.message(0, &full);
    assert_eq!(o.reply, vec![0x001f_0003 | CTS | NACK]);
    assert_eq!(
        refused(&o),
        Some(&Refusal::TooManyMulticast {
            count: 31,
            limit: 30
        })
    );
}

#[test]
fn vlans_only_configured_ids() {
    let mut s = service();
    reset(&mut s, 0);
    reset(&mut s, 1);
    // Linux's 8021q adds VLAN 0 when the interface comes up: entry 0, pool 0.
    let o = s.message(0, &[0x0001_0004, 0]);
    assert_eq!(o.reply, vec![0x0001_0004 | CTS | ACK]);
    assert_eq!(
        o.actions,
        vec![
            Action::Vlvf {
                index: 0,
                value: VLVF_ENABLE | 1 << 12
            },
            Action::Vfta { index: 0, value: 1 },
            Action::Vmolr {
                vf: 0,
                value: BASE_VMOLR
            },
        ]
    );
    // VLAN 100: the highest free entry, VFTA word 3 bit 4, tags stripped.
    let o = s.message(0, &[0x0001_0004, 100]);
    assert_eq!(
        o.actions,
        vec![
            Action::Vlvf {
                index: 31,
                value: VLVF_ENABLE | 1 << 12 | 100
            },
            Action::Vfta {
                index: 3,
                value: 1 << 4
            },
            Action::Vmolr {
                vf: 0,
                value: BASE_VMOLR | VMOLR_STRVLAN
            },
        ]
    );
    // VF 1 was given no VLAN: 100 is refused, and so is 4095 (the id's 12 bits).
    for vid in [100u32, 0x1fff] {
        let o = s.message(1, &[0x0001_0004, vid]);
        assert_eq!(o.reply, vec![0x0001_0004 | CTS | NACK]);
        assert_eq!(
            refused(&o),
            Some(&Refusal::VlanNotAllowed {
                vid: (vid & 0xfff) as u16
            })
        );
        assert!(o.actions.is_empty());
    }
    // Removing VLAN 100 frees the entry: VFTA first, then VLVF.
    let o = s.message(0, &[0x0000_0004, 100]);
    assert_eq!(
        &o.actions[..2],
        &[
            Action::Vfta { index: 3, value: 0 },
            Action::Vlvf {
                index: 31,
                value: 0
            },
        ]
    );
    // Both VFs on VLAN 0 share entry 0; an FLR of VF 0 leaves VF 1's membership.
    s.message(1, &[0x0001_0004, 0]);
    let flr = s.reset_event(0);
    assert!(flr.contains(&Action::Vlvf {
        index: 0,
        value: VLVF_ENABLE | 1 << 13
    }));
    assert!(!flr.iter().any(|a| matches!(a, Action::Vfta { .. })));
}

#[test]
fn vlan_entries_run_out() {
    let vids: Vec<u16> = (1..=40).collect();
    let mut s = Service::new(vec![(0, Policy::new(MAC_A, false, vids))], None).expect("valid");
    reset(&mut s, 0);
    for vid in 1..=31u32 {
        assert_eq!(
            s.message(0, &[0x0001_0004, vid]).verdict,
            Verdict::Accepted,
            "{vid}"
        );
    }
    let o = s.message(0, &[0x0001_0004, 32]);
    assert_eq!(refused(&o), Some(&Refusal::VlanTableFull { vid: 32 }));
    assert_eq!(o.reply, vec![0x0001_0004 | CTS | NACK]);
}

#[test]
fn igbvf_probe_and_open_in_order() {
    let mut s = service();
    // Probe: CTRL.RST (VFLRE), VF_RESET; open: the frame size for MTU 1500, the unicast filters
    // cleared, the multicast list (IPv4 all-hosts and IPv6 all-nodes hash to 0x010, a
    // solicited-node address 33:33:ff:12:34:56 to 0x563), VLAN 0 from 8021q.
    s.reset_event(0);
    let steps: [&[u32]; 5] = [
        &[0x0000_0001],
        &[0x0000_0005, 1518],
        &[0x0001_0002],
        &[0x0003_0003, 0x0010_0010, 0x0000_0563],
        &[0x0001_0004, 0],
    ];
    let mut replies = Vec::new();
    for words in steps {
        let o = s.message(0, words);
        assert_eq!(o.verdict, Verdict::Accepted, "{words:x?}");
        replies.push(o.reply[0]);
    }
    assert_eq!(
        replies,
        [
            0x8000_0001,
            0xa000_0005,
            0xa001_0002,
            0xa003_0003,
            0xa001_0004
        ]
    );
    // The pool ends with multicast filtering, long packets up to 1518 and VLAN 0.
    let o = s.message(0, &[0x0002_0006]);
    assert_eq!(
        o.actions,
        [Action::Vmolr {
            vf: 0,
            value: BASE_VMOLR | VMOLR_MPME | VMOLR_LPE | 1518
        }]
    );
    let o = s.message(0, &[0x0000_0006]);
    assert_eq!(
        o.actions,
        [Action::Vmolr {
            vf: 0,
            value: BASE_VMOLR | VMOLR_ROMPE | VMOLR_LPE | 1518
        }]
    );
}
