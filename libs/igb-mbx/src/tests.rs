//! Replays of what Linux's `igbvf` sends (its `vf.c`: reset, `e1000_rar_set_vf`,
//! `e1000_update_mc_addr_list_vf`, `e1000_set_vfta_vf`, `e1000_rlpml_set_vf`, the unicast filter
//! clear of `igbvf_set_uni`) and every refusal.

use crate::proto::{self, ACK, CTS, NACK};
use crate::service::{VMOLR_AUPE, VMOLR_BAM, VMOLR_LPE, VMOLR_MPME};
use crate::*;
use alloc::vec;
use alloc::vec::Vec;

pub(super) const MAC_A: Mac = Mac([0x02, 0x00, 0x00, 0x01, 0x80, 0x00]);
pub(super) const MAC_B: Mac = Mac([0x52, 0x54, 0x00, 0x12, 0x34, 0x57]);
pub(super) const PF_MAC: Mac = Mac([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
pub(super) const BASE_VMOLR: u32 = VMOLR_AUPE | VMOLR_BAM;

/// VF 0 with a default (changeable) MAC and VLAN 100; VF 1 with a pinned MAC and no VLANs.
pub(super) fn service() -> Service {
    Service::new(
        vec![
            (0, Policy::new(MAC_A, false, vec![100])),
            (1, Policy::new(MAC_B, true, vec![])),
        ],
        Some(PF_MAC),
    )
    .expect("valid policies")
}

/// The words `igbvf` sends to set its MAC (`E1000_VF_SET_MAC_ADDR`, the address in words 1-2).
fn set_mac(mac: Mac) -> Vec<u32> {
    let [lo, hi] = mac.to_words();
    vec![u32::from(proto::VF_SET_MAC_ADDR), lo, hi]
}

pub(super) fn refused(o: &Outcome) -> Option<&Refusal> {
    match &o.verdict {
        Verdict::Refused(r) => Some(r),
        _ => None,
    }
}

/// What `igbvf`'s reset does: CTRL.RST (the PF sees VFLRE), then `VF_RESET`.
pub(super) fn reset(s: &mut Service, vf: u8) -> Outcome {
    s.reset_event(vf);
    s.message(vf, &[u32::from(proto::VF_RESET)])
}

#[test]
fn reset_handshake_answers_with_the_mac_and_enables_the_vf() {
    let mut s = service();
    let flr = s.reset_event(0);
    assert_eq!(
        flr.last(),
        Some(&Action::ReceiveAddress {
            index: 23,
            mac: MAC_A,
            pool: 0
        })
    );
    assert!(!s.clear_to_send(0));
    let o = s.message(0, &[0x0000_0001]);
    assert_eq!(o.verdict, Verdict::Accepted);
    // igbvf checks word 0 == VF_RESET | ACK exactly and copies the MAC from words 1-2.
    assert_eq!(o.reply, vec![0x8000_0001, 0x0100_0002, 0x0000_0080]);
    assert_eq!(Mac::from_words(o.reply[1], o.reply[2]), MAC_A);
    assert_eq!(
        o.actions,
        vec![
            Action::Vmolr {
                vf: 0,
                value: BASE_VMOLR
            },
            Action::ReceiveAddress {
                index: 23,
                mac: MAC_A,
                pool: 0
            },
            Action::RxTx {
                vf: 0,
                enable: true
            },
        ]
    );
    assert!(s.clear_to_send(0));
    assert!(!s.clear_to_send(1));
    let o = reset(&mut s, 1);
    assert_eq!(o.reply[0], 0x8000_0001);
    assert_eq!(Mac::from_words(o.reply[1], o.reply[2]), MAC_B);
    assert!(o.actions.contains(&Action::ReceiveAddress {
        index: 22,
        mac: MAC_B,
        pool: 1
    }));
}

#[test]
fn requests_before_the_reset_get_a_nack_without_cts() {
    let mut s = service();
    let o = s.message(0, &[u32::from(proto::VF_SET_LPE), 1518]);
    assert_eq!(o.reply, vec![0x0000_0005 | NACK]);
    assert_eq!(refused(&o), Some(&Refusal::NotClearToSend));
    assert!(o.actions.is_empty());
    // A malformed reset before the handshake: not a reset, so not clear to send either.
    let o = s.message(0, &[0x0001_0001]);
    assert_eq!(o.reply, vec![0x0001_0001 | NACK]);
    assert_eq!(refused(&o), Some(&Refusal::NotClearToSend));
    // After an FLR the VF must shake hands again.
    reset(&mut s, 0);
    s.reset_event(0);
    let o = s.message(0, &set_mac(Mac([0x02, 0, 0, 0, 0, 9])));
    assert_eq!(refused(&o), Some(&Refusal::NotClearToSend));
}

#[test]
fn set_mac_takes_a_free_unicast_address() {
    let mut s = service();
    reset(&mut s, 0);
    let new = Mac([0x02, 0x11, 0x22, 0x33, 0x44, 0x55]);
    let o = s.message(0, &set_mac(new));
    assert_eq!(o.verdict, Verdict::Accepted);
    assert_eq!(o.reply, vec![0x0000_0002 | CTS | ACK]);
    assert_eq!(
        o.actions,
        vec![Action::ReceiveAddress {
            index: 23,
            mac: new,
            pool: 0
        }]
    );
    assert_eq!(s.mac(0), Some(new));
    // A VF_RESET keeps the address the VF set; an FLR brings the configured one back.
    let o = s.message(0, &[1]);
    assert_eq!(Mac::from_words(o.reply[1], o.reply[2]), new);
    let o = reset(&mut s, 0);
    assert_eq!(Mac::from_words(o.reply[1], o.reply[2]), MAC_A);
}

#[test]
fn set_mac_refusals() {
    let mut s = service();
    reset(&mut s, 0);
    reset(&mut s, 1);
    let nack = 0x0000_0002 | CTS | NACK;
    let cases = [
        (
            0,
            MAC_B,
            Refusal::MacTaken {
                mac: MAC_B,
                by: Holder::Vf(1),
            },
        ),
        (
            0,
            PF_MAC,
            Refusal::MacTaken {
                mac: PF_MAC,
                by: Holder::Pf,
            },
        ),
        (
            0,
            Mac([0x01, 0, 0x5e, 0, 0, 1]),
            Refusal::MacInvalid(Mac([0x01, 0, 0x5e, 0, 0, 1])),
        ),
        (0, Mac([0; 6]), Refusal::MacInvalid(Mac([0; 6]))),
        (
            1,
            Mac([0x02, 9, 9, 9, 9, 9]),
            Refusal::MacPinned {
                requested: Mac([0x02, 9, 9, 9, 9, 9]),
                configured: MAC_B,
            },
        ),
        // VF 1 is pinned, but VF 0's address is the reason given.
        (
            1,
            MAC_A,
            Refusal::MacTaken {
                mac: MAC_A,
                by: Holder::Vf(0),
            },
        ),
    ];
    for (vf, mac, why) in cases {
        let o = s.message(vf, &set_mac(mac));
        assert_eq!(o.reply, vec![nack], "{mac}");
        assert_eq!(refused(&o), Some(&why), "{mac}");
        assert!(o.actions.is_empty());
    }
    // The pinned VF may restate its own address.
    assert_eq!(s.message(1, &set_mac(MAC_B)).verdict, Verdict::Accepted);
    // VF 0 moves away from its configured address: VF 1 (unpinned in this service) still may
    // not take it, since the configuration gave it to VF 0.
    let mut s = Service::new(
        vec![
            (0, Policy::new(MAC_A, false, vec![])),
            (1, Policy::new(MAC_B, false, vec![])),
        ],
        None,
    )
    .expect("valid");
    reset(&mut s, 0);
    reset(&mut s, 1);
    let other = Mac([0x02, 1, 2, 3, 4, 5]);
    assert_eq!(s.message(0, &set_mac(other)).verdict, Verdict::Accepted);
    let o = s.message(1, &set_mac(MAC_A));
    assert_eq!(
        refused(&o),
        Some(&Refusal::MacTaken {
            mac: MAC_A,
            by: Holder::Vf(0)
        })
    );
    let o = s.message(1, &set_mac(other));
    assert_eq!(
        refused(&o),
        Some(&Refusal::MacTaken {
            mac: other,
            by: Holder::Vf(0)
        })
    );
}

#[test]
fn unicast_filters_clear_is_acked_add_is_refused() {
    let mut s = service();
    reset(&mut s, 0);
    // igbvf_set_uni clears the filters on every receive-mode change.
    let o = s.message(0, &[0x0001_0002]);
    assert_eq!(o.reply, vec![0x0001_0002 | CTS | ACK]);
    let [lo, hi] = Mac([0x02, 7, 7, 7, 7, 7]).to_words();
    let o = s.message(0, &[0x0002_0002, lo, hi]);
    assert_eq!(o.reply, vec![0x0002_0002 | CTS | NACK]);
    assert_eq!(
        refused(&o),
        Some(&Refusal::MacFilter(Mac([0x02, 7, 7, 7, 7, 7])))
    );
    let o = s.message(0, &[0x0003_0002, lo, hi]);
    assert_eq!(
        refused(&o),
        Some(&Refusal::Malformed(Malformed::MacInfo { info: 3 }))
    );
}

#[test]
fn max_frame_size_within_bounds() {
    let mut s = service();
    reset(&mut s, 0);
    // igbvf_configure_rx: MTU 1500 + Ethernet header + FCS.
    let o = s.message(0, &[0x0000_0005, 1518]);
    assert_eq!(o.reply, vec![0x0000_0005 | CTS | ACK]);
    assert_eq!(
        o.actions,
        vec![Action::Vmolr {
            vf: 0,
            value: BASE_VMOLR | VMOLR_LPE | 1518
        }]
    );
    for size in [9729, 63, 0x1_0000] {
        let o = s.message(0, &[0x0000_0005, size]);
        assert_eq!(o.reply, vec![0x0000_0005 | CTS | NACK]);
        assert_eq!(
            refused(&o),
            Some(&Refusal::FrameSize {
                size,
                min: 64,
                max: 9728
            })
        );
    }
    assert_eq!(
        s.message(0, &[0x0000_0005, 9728]).verdict,
        Verdict::Accepted
    );
}

#[test]
fn promiscuous_as_linux_answers_it() {
    let mut s = service();
    reset(&mut s, 0);
    // Multicast promiscuous: accepted, the flag cleared in the reply word.
    let o = s.message(0, &[0x0002_0006]);
    assert_eq!(o.reply, vec![0x0000_0006 | CTS | ACK]);
    assert_eq!(
        o.actions,
        vec![Action::Vmolr {
            vf: 0,
            value: BASE_VMOLR | VMOLR_MPME
        }]
    );
    let o = s.message(0, &[0x0000_0006]);
    assert_eq!(o.reply, vec![0x0000_0006 | CTS | ACK]);
    // Any other flag (unicast promiscuous): NACK.
    let o = s.message(0, &[0x0001_0006]);
    assert_eq!(o.reply, vec![0x0001_0006 | CTS | NACK]);
    assert_eq!(
        refused(&o),
        Some(&Refusal::Malformed(Malformed::PromiscFlags { flags: 1 }))
    );
}

#[test]
fn unknown_and_malformed_messages() {
    let mut s = service();
    reset(&mut s, 0);
    // API negotiation (ixgbe's id 0x08): igb's PF does not know it.
    let o = s.message(0, &[0x0000_0008, 2]);
    assert_eq!(o.reply, vec![0x0000_0008 | CTS | NACK]);
    assert_eq!(refused(&o), Some(&Refusal::Unknown { id: 8 }));
    assert!(
        refused(&o)
            .map(|r| alloc::format!("{r}"))
            .is_some_and(|t| t.contains("API negotiation"))
    );
    let o = s.message(0, &[0x0000_1234]);
    assert_eq!(refused(&o), Some(&Refusal::Unknown { id: 0x1234 }));
    assert_eq!(o.id(), 0x1234);
    // A reset with information bits is no reset.
    let o = s.message(0, &[0x0001_0001]);
    assert_eq!(o.reply, vec![0x0001_0001 | CTS | NACK]);
    assert_eq!(
        refused(&o),
        Some(&Refusal::Malformed(Malformed::ResetInfo { info: 1 }))
    );
    // Messages shorter than their payload.
    let short = [
        (vec![0x0000_0002, 0], 3usize),
        (vec![0x0000_0004], 2),
        (vec![0x0000_0005], 2),
        (vec![0x0003_0003, 0], 3),
    ];
    for (words, needed) in short {
        let o = s.message(0, &words);
        assert_eq!(
            refused(&o),
            Some(&Refusal::Malformed(Malformed::Short {
                id: (words[0] & 0xffff) as u16,
                words: words.len(),
                needed
            }))
        );
        assert_eq!(o.reply, vec![words[0] | CTS | NACK]);
    }
    assert_eq!(
        refused(&s.message(0, &[])),
        Some(&Refusal::Malformed(Malformed::Empty))
    );
    // A word that already carries ACK/NACK is not a request: no reply.
    for w in [0x8000_0003, 0x4000_0001] {
        let o = s.message(0, &[w]);
        assert_eq!(o.verdict, Verdict::Ignored(Ignored::AlreadyAnswered));
        assert!(o.reply.is_empty() && o.actions.is_empty());
    }
    // A VF no guest was given.
    let o = s.message(5, &[1]);
    assert_eq!(o.reply, vec![1 | NACK]);
    assert_eq!(refused(&o), Some(&Refusal::Unassigned));
    assert!(s.reset_event(5).is_empty());
}

#[test]
fn setup_refuses_conflicting_policies() {
    let p = |mac| Policy::new(mac, false, vec![]);
    let cases = [
        (vec![(8, p(MAC_A))], None, SetupError::VfIndex(8)),
        (
            vec![(0, p(MAC_A)), (0, p(MAC_B))],
            None,
            SetupError::TwiceServed(0),
        ),
        (
            vec![(0, p(MAC_A)), (1, p(MAC_A))],
            None,
            SetupError::SharedMac {
                vf: 1,
                mac: MAC_A,
                with: Holder::Vf(0),
            },
        ),
        (
            vec![(0, p(PF_MAC))],
            Some(PF_MAC),
            SetupError::SharedMac {
                vf: 0,
                mac: PF_MAC,
                with: Holder::Pf,
            },
        ),
        (
            vec![(0, p(Mac([1, 0, 0, 0, 0, 0])))],
            None,
            SetupError::InvalidMac {
                vf: 0,
                mac: Mac([1, 0, 0, 0, 0, 0]),
            },
        ),
        (
            vec![(0, Policy::new(MAC_A, false, vec![4095]))],
            None,
            SetupError::Vlan { vf: 0, vid: 4095 },
        ),
        (
            vec![(0, Policy::new(MAC_A, false, vec![0]))],
            None,
            SetupError::Vlan { vf: 0, vid: 0 },
        ),
    ];
    for (policies, pf, want) in cases {
        assert_eq!(Service::new(policies, pf).err(), Some(want));
    }
    let s = service();
    assert_eq!(s.served().collect::<Vec<_>>(), vec![0, 1]);
    assert_eq!(
        s.policy(1).map(|p| (p.mac, p.mac_pinned)),
        Some((MAC_B, true))
    );
    assert!(s.policy(2).is_none());
}

#[test]
fn addresses() {
    assert_eq!(default_mac(0x01, 0x80, 2), Mac([2, 0, 0, 1, 0x80, 2]));
    assert!(default_mac(0x01, 0x80, 2).is_valid_unicast());
    assert_eq!(alloc::format!("{MAC_B}"), "52:54:00:12:34:57");
    let [lo, hi] = MAC_B.to_words();
    assert_eq!((lo, hi), (0x1200_5452, 0x0000_5734));
    assert_eq!(Mac::from_words(lo, hi | 0xffff_0000), MAC_B);
    assert_eq!(receive_address_index(0), 23);
    assert_eq!(receive_address_index(7), 16);
}
