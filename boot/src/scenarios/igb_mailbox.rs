//! Issue 14, "igb PF mailbox service" and Must-show 2's mailbox items: the hypervisor answers
//! the igb VFs' mailbox messages as Linux's igb PF driver does, within each VF's configuration
//! (`kernel/src/igb/mailbox.rs`, `libs/igb-mbx`). QEMU has no VMX: the self-test plays each
//! guest's `igbvf` through the VF's BAR0 as the guest's EPT maps it, and the PF's side runs as
//! the scheduler's loop runs it.
//!
//! Measured on QEMU 10.0.2 q35 + OVMF with the harness' device set (igb PF 01:00.0, VFs 0 and 1
//! at 01:10.0 and 01:10.2; the PF's own address 52:54:00:12:34:56 is QEMU's default). Guest A's
//! MAC 02:c0:ff:ee:00:0a and VLAN 100 come from boot/scenarios/igb-mailbox.toml; guest B's
//! 02:00:00:01:00:01 is the default (PF bus 01, devfn 00, VF 1). The receive addresses (23 for VF
//! 0, 22 for VF 1) are where Linux's PF puts VF addresses; the reply words are the protocol's
//! (ACK 0x80000000, NACK 0x40000000, CTS 0x20000000 or'd into the request word).

use super::{ANY_EXCEPTION, BANNER, Config, PANIC, Scenario};
use crate::expect::End;
use crate::machine::{MachineSpec, QemuSpec};

/// In order.
const EXPECT: &[&str] = &[
    BANNER,
    r#"configuration "igb-mailbox""#,
    r"sriov: 01:00\.0: 2 of 2 VFs answer, 2 with MSI-X tables decoding",
    // The service is set up with the PF's bring-up, before the control task takes
    // configuration space.
    r#"igb 01:00\.0: mailbox served by polling for VF 0 \(guest "a", MAC 02:c0:ff:ee:00:0a configured\), VF 1 \(guest "b", MAC 02:00:00:01:00:01 default\); PF MAC [0-9a-f:]{17}; CTRL_EXT\.PFRSTD set \(PF reset done for the VFs\)$"#,
    r"pci: ECAM at 0xb0000000 \(256 MiB, buses 0-255\) handed over",
    r#"selftest: igb-mailbox: guest "a"'s driver placed BAR0 of its 00:01\.0 \(VF 0, 01:10\.0\) at GPA 0x[0-9a-f]+, memory decode on; its EPT maps it to HPA 0x[0-9a-f]+$"#,
    // [1] Guest A's reset handshake: its configured MAC, byte for byte.
    r#"igb mailbox 01:10\.0 \(guest "a", VF 0 of 01:00\.0\): VF reset: not clear to send until its VF_RESET; filters reset, MAC 02:c0:ff:ee:00:0a$"#,
    r#"igb mailbox 01:10\.0 \(guest "a", VF 0 of 01:00\.0\): VF_RESET 0x00000001 -> ACK 0x80000001, MAC 02:c0:ff:ee:00:0a \(receive address 23, pool 0\), the VF's receive and transmit enabled, clear to send$"#,
    r#"selftest: igb-mailbox \[1\] guest "a"'s VF 01:10\.0: CTRL\.RST \(mailbox 0x[0-9a-f]+ after it\), VF_RESET -> 0x80000001 with MAC 02:c0:ff:ee:00:0a \(bytes 02 c0 ff ee 00 0a, the configured address\); PF 01:00\.0: receive address 23 RAL 0xeeffc002 RAH 0x80040a00 \(valid, pool 0\), VFRE 0x[0-9a-f]*[13579bdf] VFTE 0x[0-9a-f]*[13579bdf]$"#,
    // [2] Guest B's VF's MAC is refused to guest A, with the reason.
    r#"igb mailbox 01:10\.0 \(guest "a", VF 0 of 01:00\.0\): refused SET_MAC_ADDR \(id 0x0002, word 0x00000002\): 02:00:00:01:00:01 belongs to VF 1 \(01:10\.2, guest "b"\); NACK 0x60000002$"#,
    r#"selftest: igb-mailbox \[2\] guest "a" asked for guest B's VF's MAC 02:00:00:01:00:01: 0x60000002 \(NACK, CTS\), receive address 23 unchanged$"#,
    // [3] Unknown and malformed messages: NACK, logged with the reason.
    r#"igb mailbox 01:10\.0 \(guest "a", VF 0 of 01:00\.0\): refused API_NEGOTIATE \(id 0x0008, word 0x00000008\): unknown message id 0x0008 \(API negotiation: igb's PF has no such message\); NACK 0x60000008$"#,
    r#"igb mailbox 01:10\.0 \(guest "a", VF 0 of 01:00\.0\): refused SET_PROMISC \(id 0x0006, word 0x00010006\): malformed: SET_PROMISC flags 0x01 are not defined \(multicast 0x02 is\); NACK 0x60010006$"#,
    r#"selftest: igb-mailbox \[3\] guest "a": unknown message 0x00000008 -> 0x60000008, malformed 0x00010006 -> 0x60010006 \(NACK, CTS\)$"#,
    // [4] Maximum frame size and the configured VLAN accepted; another VLAN refused.
    r#"igb mailbox 01:10\.0 \(guest "a", VF 0 of 01:00\.0\): SET_LPE 0x00000005 -> ACK 0xa0000005 \(1 register write\(s\)\)$"#,
    r#"igb mailbox 01:10\.0 \(guest "a", VF 0 of 01:00\.0\): SET_VLAN 0x00010004 -> ACK 0xa0010004 \(3 register write\(s\)\)$"#,
    r#"igb mailbox 01:10\.0 \(guest "a", VF 0 of 01:00\.0\): refused SET_VLAN \(id 0x0004, word 0x00010004\): VLAN 4000 is not one the configuration gives the VF; NACK 0x60010004$"#,
    r#"selftest: igb-mailbox \[4\] guest "a": SET_LPE 1518 -> 0xa0000005; VLAN 100 \(configured\) -> 0xa0010004; VLAN 4000 \(not given\) -> 0x60010004$"#,
    // [5] Guest B: NACK without CTS before its reset, then its own handshake; guest A unaffected.
    r#"igb mailbox 01:10\.2 \(guest "b", VF 1 of 01:00\.0\): refused SET_LPE \(id 0x0005, word 0x00000005\): the VF has not completed its reset handshake; NACK 0x40000005$"#,
    r#"igb mailbox 01:10\.2 \(guest "b", VF 1 of 01:00\.0\): VF_RESET 0x00000001 -> ACK 0x80000001, MAC 02:00:00:01:00:01 \(receive address 22, pool 1\), the VF's receive and transmit enabled, clear to send$"#,
    r#"selftest: igb-mailbox \[5\] guest "b"'s VF 01:10\.2: CTRL\.RST \(mailbox 0x[0-9a-f]+ after it\), VF_RESET -> 0x80000001 with MAC 02:00:00:01:00:01 \(bytes 02 00 00 01 00 01, the default address\); PF 01:00\.0: receive address 22 RAL 0x01000002 RAH 0x80080100 \(valid, pool 1\), VFRE 0x[0-9a-f]*[2367abef] VFTE 0x[0-9a-f]*[2367abef]$"#,
    r#"selftest: igb-mailbox \[5\] guest "b"'s SET_LPE before its reset -> 0x40000005 \(NACK, no CTS\); after guest B's handshake guest "a"'s receive address 23 and enables are unchanged \(RAH 0x80040a00, VFRE 0x[0-9a-f]+\)$"#,
    r"selftest: igb-mailbox: PASS \(5 steps\)",
    r"CONDUIT EXIT: success",
];

/// Nothing fails; no mailbox is left unserved; no message is ignored; nothing of guest B's is
/// refused but its request before the reset; no DMA or interrupt-remapping fault.
const FORBID: &[&str] = &[
    PANIC,
    ANY_EXCEPTION,
    r"FAIL",
    r"mailbox not served",
    r"mailbox registers:",
    r"ignored message",
    r"guest \x22b\x22, VF 1 of 01:00\.0\): refused (?:[^S]|S[^E]|SE[^T]|SET_[^L])",
    r"vtd: DMA fault",
    r"interrupt remapping fault",
];

/// `qemu-igb-mailbox` (boot/scenarios/igb-mailbox.toml).
pub const QEMU_IGB_MAILBOX: Scenario = Scenario {
    name: "qemu-igb-mailbox",
    machine: MachineSpec::Qemu(QemuSpec::TCG),
    config: Config::File("boot/scenarios/igb-mailbox.toml"),
    guests: &[],
    expect: EXPECT,
    forbid: FORBID,
    input: &[],
    end: End::Success,
    timeout_secs: 180,
};
