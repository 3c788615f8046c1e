//! Fuzz target: the PF side of the igb PF/VF mailbox (`conduit_igb_mbx`): messages a VF driver
//! (a guest) writes into its mailbox, and VF resets, against the per-VF policies.
//!
//! Invariants (82576 datasheet §7.8.2.9, and the policy rules the crate documents):
//! - a message already marked ACK/NACK gets no reply and changes no register; every other
//!   message gets one reply word first, with its id, marked ACK exactly when accepted and
//!   NACK when refused; a refusal writes no PF register; at most 16 reply words;
//! - before its reset handshake a VF gets nothing but its reset served;
//! - every register write names the VF's own pool: its receive address entry
//!   (`receive_address_index`) and pool, its VMOLR, its RX/TX enable; table indices are in range;
//! - a VF's address is always a valid unicast address, never the PF's nor another VF's, and
//!   the configured one when the configuration pins it;
//! - an accepted VLAN join is VLAN 0 or one the policy gives the VF.
#![no_main]

use arbitrary::Arbitrary;
use conduit_igb_mbx::proto::{ACK, ID_MASK, MAILBOX_WORDS, NACK};
use conduit_igb_mbx::{
    Action, MTA_WORDS, Mac, Policy, Request, Service, VFTA_WORDS, VLVF_ENTRIES, Verdict,
    receive_address_index,
};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Vf {
    index: u8,
    mac: [u8; 6],
    pinned: bool,
    vlans: Vec<u16>,
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// A message with a known id (`id % 9`) and info byte, then raw words.
    Message {
        vf: u8,
        id: u8,
        info: u8,
        rest: Vec<u32>,
    },
    /// Raw mailbox words.
    Raw {
        vf: u8,
        words: Vec<u32>,
    },
    Reset(u8),
}

#[derive(Arbitrary, Debug)]
struct Input {
    vfs: Vec<Vf>,
    pf_mac: Option<[u8; 6]>,
    ops: Vec<Op>,
}

fn check_actions(vf: u8, actions: &[Action]) {
    for a in actions {
        match *a {
            Action::ReceiveAddress { index, mac, pool } => {
                assert_eq!(
                    (index, pool),
                    (receive_address_index(vf), vf),
                    "{a:?} for VF {vf}"
                );
                assert!(mac.is_valid_unicast(), "{a:?}");
            }
            Action::RxTx { vf: v, .. } | Action::Vmolr { vf: v, .. } => assert_eq!(v, vf, "{a:?}"),
            Action::Vlvf { index, .. } => assert!(usize::from(index) < VLVF_ENTRIES),
            Action::Vfta { index, .. } => assert!(usize::from(index) < VFTA_WORDS),
            Action::Mta { index, .. } => assert!(usize::from(index) < MTA_WORDS),
        }
    }
}

fuzz_target!(|input: Input| {
    let policies: Vec<(u8, Policy)> = input
        .vfs
        .iter()
        .take(8)
        .map(|v| {
            (
                v.index % 9,
                Policy::new(Mac(v.mac), v.pinned, v.vlans.clone()),
            )
        })
        .collect();
    let pf_mac = input.pf_mac.map(Mac);
    let Ok(mut service) = Service::new(policies.clone(), pf_mac) else {
        return;
    };
    for op in input.ops {
        let (vf, words) = match op {
            Op::Message { vf, id, info, rest } => {
                let mut words = vec![u32::from(id % 9) | (u32::from(info) << 16)];
                words.extend(rest.into_iter().take(MAILBOX_WORDS - 1));
                (vf % 9, words)
            }
            Op::Raw { vf, words } => (vf % 9, words.into_iter().take(MAILBOX_WORDS).collect()),
            Op::Reset(vf) => {
                let vf = vf % 9;
                let actions = service.reset_event(vf);
                check_actions(vf, &actions);
                assert!(
                    !service.clear_to_send(vf),
                    "a reset VF waits for its handshake"
                );
                (vf, Vec::new())
            }
        };
        if !words.is_empty() {
            let cts = service.clear_to_send(vf);
            let out = service.message(vf, &words);
            let word = words[0];
            assert!(out.reply.len() <= MAILBOX_WORDS);
            match &out.verdict {
                Verdict::Ignored(_) => {
                    assert!(
                        word & (ACK | NACK) != 0 && out.reply.is_empty() && out.actions.is_empty()
                    );
                }
                Verdict::Accepted => {
                    let first = out.reply[0];
                    assert!(first & ACK != 0 && first & NACK == 0, "{out:?}");
                    assert_eq!(first & ID_MASK, word & ID_MASK);
                    let request = conduit_igb_mbx::proto::decode(&words);
                    assert!(
                        cts || request == Ok(Request::Reset),
                        "served before its handshake"
                    );
                    if let Ok(Request::SetVlan { add: true, vid }) = request {
                        let allowed = policies.iter().find(|(i, _)| *i == vf).map(|(_, p)| p);
                        assert!(
                            vid == 0 || allowed.is_some_and(|p| p.vlans.contains(&vid)),
                            "VLAN {vid}"
                        );
                    }
                }
                Verdict::Refused(why) => {
                    let first = out.reply[0];
                    assert!(first & NACK != 0 && first & ACK == 0, "{why:?}");
                    assert_eq!(first & ID_MASK, word & ID_MASK);
                    assert!(out.actions.is_empty(), "a refusal wrote registers: {why:?}");
                }
            }
            check_actions(vf, &out.actions);
        }
        let served: Vec<u8> = service.served().collect();
        for (i, &a) in served.iter().enumerate() {
            let mac = service.mac(a).expect("served VFs have an address");
            assert!(mac.is_valid_unicast());
            assert_ne!(Some(mac), pf_mac, "VF {a} took the PF's address");
            for &b in &served[..i] {
                assert_ne!(service.mac(b), Some(mac), "VFs {a} and {b} share {mac:?}");
            }
            let policy = &policies
                .iter()
                .find(|(i, _)| *i == a)
                .expect("served from policy")
                .1;
            if policy.mac_pinned {
                assert_eq!(mac, policy.mac, "pinned address changed");
            }
        }
    }
});
