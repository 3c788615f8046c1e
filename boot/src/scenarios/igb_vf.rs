//! Issue 7, "Must show" item 3: an igb VF's MSI-X vector, programmed through guest A's virtual
//! MSI-X table, becomes an IRTE owned by guest A; the VF raises it (EICS) 16 times and guest A's
//! counter shows 16; the same VF aimed at guest B's IRTE is blocked with a decoded source-id
//! fault. Measured on QEMU 10.0.2 q35 + OVMF with the harness' device set (igb PF 01:00.0 with 8
//! VFs at 01:10.0-01:11.6, stride 2; VF MSI-X: 3 entries in BAR3).
//!
//! Allocation is deterministic (lowest free first) and nothing else takes an IRTE or a vector
//! before the script: guest A's entry is IRTE 0 on host vector 0x20 (handle 0: address
//! 0xfee00010), guest B's IRTE 1 on 0x21 (handle 1: 0xfee00030).

use super::{ANY_EXCEPTION, BANNER, Config, PANIC, Scenario};
use crate::expect::End;
use crate::machine::{MachineSpec, QemuSpec};

/// In order.
const EXPECT: &[&str] = &[
    BANNER,
    r#"configuration "igb-vf""#,
    // Since issue 17 only the configured VFs (0 and 1) are enabled, moved below 4 GiB by the
    // named quirk.
    r"sriov: 01:00\.0: NumVFs 2 \(VF 1 is the highest the configuration uses; TotalVFs 8\): First VF Offset 0x80, VF Stride 2 -> VFs 01:10\.0 to 01:10\.2$",
    r"sriov: 01:00\.0: moving the VF BARs below 4 GiB: quirk igb-vf-bar-32: ",
    r"sriov: 01:00\.0: 2 of 2 VFs answer, 2 with MSI-X tables decoding; every VF BAR below 4 GiB",
    r"irq: interrupt remapping on: 256 IRTEs at 0x[0-9a-f]+ shared by 1 unit\(s\)",
    // The PF's bring-up for its VFs (crate::igb), before the control task takes configuration
    // space; the Command value beyond memory decode is the firmware's.
    r#"igb 01:00\.0: GPIE\.MSIX_MODE set for VF interrupts \(GPIE 0x00000010, memory decode on: Command 0x[0-9a-f]{4}\); VFs wanted: VF 0 \(guest "a"\), VF 1 \(guest "b"\)$"#,
    r#"guest "a": assigned 01:10\.0 \(01:00\.0 VF 0\) in IOMMU domain 1$"#,
    r#"guest "a": 01:10\.0 appears at 00:01\.0 \(virtual configuration space in the control task; BAR0 mem64 16 KiB, BAR3 mem64 16 KiB; MSI-X 3 entries in BAR3 at 0x0 \(trapped\)\)"#,
    r#"guest "b": assigned 01:10\.2 \(8086:10c9 VF 1\) in IOMMU domain 2$"#,
    r#"guest "b": 01:10\.2 appears at 00:01\.0 \(virtual configuration space in the control task; BAR0 mem64 16 KiB, BAR3 mem64 16 KiB; MSI-X 3 entries in BAR3 at 0x0 \(trapped\)\)"#,
    r"pci: ECAM at 0xb0000000 \(256 MiB, buses 0-255\) handed over",
    r#"selftest: igb-vf: guest A = "a" \(VF 01:10\.0 at its 00:01\.0\), guest B = "b" \(VF 01:10\.2 at its 00:01\.0\); PF 01:00\.0 GPIE 0x00000010 \(MSIX_MODE set by the PF's bring-up\)"#,
    // [1] Guest A's table write (through the control task) -> a guest-owned, source-verified
    // IRTE, the VF's physical entry in remappable format.
    r"irq: guest 0: MSI-X entry 0 of 01:10\.0 -> IRTE 0 -> vector 0x20 \(the guest's vector 0x51\) on APIC 0 \(fixed, edge, physical\); source-id 01:10\.0 verified \(SVT=01, SQ=00\); device programmed in remappable format: address 0xfee00010 \(handle 0, SHV 0\), data 0x0000$",
    r#"guest "a": MSI-X entry 0 of 01:10\.0 \(its vector 0x51\) routed: IRTE 0 -> vector 0x20$"#,
    r#"selftest: igb-vf \[1\] guest "a" programmed MSI-X entry 0 of its 00:01\.0 \(VF 01:10\.0\) with vector 0x51 through its virtual table: IRTE 0 owned by guest "a" \(source-id 01:10\.0 verified, SVT=01 SQ=00\) -> host vector 0x20; the VF's physical entry 0: address 0xfee00010 data 0x0000 unmasked, MSI-X enabled, bus master on \(Command 0x0006\)$"#,
    // [2] The same for guest B's VF.
    r"irq: guest 1: MSI-X entry 0 of 01:10\.2 -> IRTE 1 -> vector 0x21 \(the guest's vector 0x52\) on APIC 0 \(fixed, edge, physical\); source-id 01:10\.2 verified \(SVT=01, SQ=00\); device programmed in remappable format: address 0xfee00030 \(handle 1, SHV 0\), data 0x0000$",
    r#"selftest: igb-vf \[2\] guest "b" programmed MSI-X entry 0 of its 00:01\.0 \(VF 01:10\.2\) with vector 0x52 through its virtual table: IRTE 1 owned by guest "b" \(source-id 01:10\.2 verified, SVT=01 SQ=00\) -> host vector 0x21; the VF's physical entry 0: address 0xfee00030 data 0x0000 unmasked, MSI-X enabled, bus master on \(Command 0x0006\)$"#,
    // [3] 16 raises through the VF's EICS: all guest A's.
    r#"selftest: igb-vf \[3\] 01:10\.0 raised 16 times via EICS, guest "a" received 16 \(vector 0x51 pending\), guest "b" 0 \(the VF's EIMS 0x1, EICR cleared before each raise; host vector 0x20 counted 16, no fault\)$"#,
    // [4] Guest A's VF aimed at guest B's IRTE: the source-id check (VT-d reason 26h) blocks it.
    r"vtd: interrupt remapping fault on unit 0xfed90000: source 01:10\.0, interrupt index 1 \(0x1\), reason 0x26: interrupt source-id validation failed; the interrupt was not delivered \(reported by the fault event interrupt\)$",
    r#"selftest: igb-vf \[4\] 01:10\.0's physical MSI-X entry 0 rewritten with guest "b"'s handle 1 \(address 0xfee00030; IRTE 1 verifies source-id 01:10\.2\): raised once, delivered to nobody \(guest "a" 16, guest "b" 0: unchanged\); fault 0x26 recorded \(source 01:10\.0, index 1\): interrupt source-id validation failed$"#,
    // [5] Restored: guest A's again; guest B's own VF reaches guest B.
    r#"selftest: igb-vf \[5\] entry 0 restored: the next interrupt of 01:10\.0 reached guest "a" \(17, vector 0x51 pending\); guest "b"'s own VF 01:10\.2 raised once: guest "b" received it \(1, vector 0x52 pending\)$"#,
    r#"selftest: igb-vf \[6\] per-guest counters: guest "a" 17 interrupts and 1 interrupt-remapping fault \(its VF's forged message\), guest "b" 1 interrupt; no DMA faults$"#,
    r"selftest: igb-vf: PASS \(6 steps\)",
    // The per-guest report at the end of the scenario (guest::report).
    r#"guest "a": interrupts 17, DMA faults 0, interrupt-remapping faults 1 \(functions 01:10\.0\)$"#,
    r#"guest "b": interrupts 1, DMA faults 0, interrupt-remapping faults 0 \(functions 01:10\.2\)$"#,
    r"boot complete: .*DMAR present, DMA remapping on, interrupt remapping on",
    r"CONDUIT EXIT: success",
];

/// Nothing fails, nothing is refused, no DMA faults, and no interrupt fault but the forged one
/// (reason 0x26 from 01:10.0).
const FORBID: &[&str] = &[
    PANIC,
    ANY_EXCEPTION,
    r"FAIL",
    r"not routed",
    r"not assigned",
    r"not set up for VF interrupts",
    r"interrupt flood",
    r"vtd: DMA fault",
    r"reported by polling",
    r"primary fault overflow",
    r"interrupt remapping fault .*reason 0x2[0-57-9a-f]",
    r"interrupt remapping fault on unit [^ ]+ source (0[02-9a-f]|[1-9a-f][0-9a-f]|01:(0[0-9a-f]|1[1-9a-f]|10\.[1-7]))",
];

/// `qemu-igb-vf` (boot/scenarios/igb-vf.toml).
pub const QEMU_IGB_VF: Scenario = Scenario {
    name: "qemu-igb-vf",
    machine: MachineSpec::Qemu(QemuSpec::TCG),
    config: Config::File("boot/scenarios/igb-vf.toml"),
    guests: &[],
    expect: EXPECT,
    forbid: FORBID,
    input: &[],
    end: End::Success,
    timeout_secs: 180,
};

/// Issue 14, "Must show" item 2 (`qemu-igb-net`, boot/scenarios/igb-net.toml): the igb VF data
/// path on QEMU's user network (gateway 10.0.2.2 at 52:55:0a:00:02:02, slirp's address scheme),
/// measured on QEMU 10.0.2 with the harness' device set: guest A's IRTE 0 on host vector 0x20,
/// its VF's default MAC 02:00:00:01:00:00 from the reset handshake, its rings at GPA 0x10000
/// (TX) and 0x11000 (RX), receive buffers from GPA 0x16000 in 2 KiB steps; guest B's memory at
/// HPA 0x2600000 (the blocked buffer address).
const NET_EXPECT: &[&str] = &[
    BANNER,
    r#"configuration "igb-net""#,
    r"sriov: 01:00\.0: NumVFs 2 \(VF 1 is the highest the configuration uses; TotalVFs 8\)",
    // The PF's VMDq switch (crate::igb::switch); QEMU leaves the link down after reset until
    // autonegotiation is restarted.
    r"igb 01:00\.0: VMDq switch set for the VF data path: MRQC 0x3 \(VMDq\), VT_CTL 0x40000100 \(default pool 2 = the PF's, replication on\), DTXSWC 0x8000fbfb \(loopback, anti-spoofing on the VFs' pools\), VFRE 0x0 VFTE 0x0 \(each VF's pool waits for its reset handshake\), RCTL 0x04008002, TCTL 0x[0-9a-f]{8}, Command 0x0007; link down \(STATUS 0x[0-9a-f]{8}\): autonegotiation restarted \(PHY BMCR through MDIC\)$",
    // The PF mailbox service (crate::igb::mailbox) with the VFs' default MACs.
    r#"igb 01:00\.0: mailbox served by polling for VF 0 \(guest "a", MAC 02:00:00:01:00:00 default\), VF 1 \(guest "b", MAC 02:00:00:01:00:01 default\)"#,
    r#"selftest: igb-net: guest A = "a" \(VF 01:10\.0 of 01:00\.0, at its 00:01\.0\), guest B = "b" \(VF 01:10\.2\)"#,
    r#"selftest: igb-net \[1\] guest "a" programmed MSI-X entry 0 of its 00:01\.0 \(VF 01:10\.0\) with vector 0x61 through its virtual table: IRTE 0 owned by guest "a" \(source-id 01:10\.0 verified, SVT=01 SQ=00\) -> host vector 0x20"#,
    r#"selftest: igb-net \[1\] guest "b" programmed MSI-X entry 0 of its 00:01\.0 \(VF 01:10\.2\) with vector 0x62 through its virtual table: IRTE 1 owned by guest "b" \(source-id 01:10\.2 verified, SVT=01 SQ=00\) -> host vector 0x21"#,
    r#"selftest: igb-net \[2\] guest "a"'s BAR0 maps \(EPT\) to HPA 0x[0-9a-f]+, the VF's BAR0; CTRL\.RST \(mailbox 0x[0-9a-f]+ after it\), VF_RESET through the mailbox -> 0x80000001 with MAC 02:00:00:01:00:00; rings in guest A's memory: TX ring GPA 0x10000, RX ring GPA 0x11000, buffers GPA 0x12000-0x1a000 \(IOVAs of its domain\), RX queue 0 on MSI-X vector 0; link up \(the VF's STATUS 0x[0-9a-f]{8}\)$"#,
    // [3] ARP: the gateway's reply in guest A's memory, guest A's interrupt. QEMU's switch
    // loops guest A's own broadcast back to its pool (loopback and replication on, VMOLR.BAM set
    // by the reset handshake) first; both frames' messages are taken as one interrupt.
    r#"selftest: igb-net \[3\] ARP request for 10\.0\.2\.2 sent \(TX descriptor 0 written back, status 0x[0-9a-f]+\); the reply landed in guest A's memory at GPA 0x16800 \(64 bytes, status 0x3\): 10\.0\.2\.2 is at 52:55:0a:00:02:02, to 02:00:00:01:00:00 \(10\.0\.2\.15\); 2 frame\(s\) received \(before it: \["ARP op 1 10\.0\.2\.15 \(02:00:00:01:00:00\) -> 10\.0\.2\.2 from 02:00:00:01:00:00"\]\); guest "a" interrupts 0 -> 1 \(vector 0x61 pending: true\), guest "b" 0 -> 0$"#,
    // [4] ICMP echo: the reply from 10.0.2.2 with the same identifier, sequence and data.
    r#"selftest: igb-net \[4\] ICMP echo to 10\.0\.2\.2 \(id 0xc0d1, seq 1, 24 data bytes\) sent from TX descriptor 1 \(VFGPTC 1 -> 2\); the reply landed in guest A's memory at GPA 0x17000 \(66 bytes\): 10\.0\.2\.2 -> 10\.0\.2\.15 \(from 52:55:0a:00:02:02\), id 0xc0d1 seq 1, ttl 255, data equal; 1 frame\(s\) received \(before it: \[\]\); guest "a" interrupts 1 -> 2, guest "b" 0 -> 0$"#,
    // [5] A buffer at guest B's memory: blocked, attributed to the VF.
    r"vtd: DMA fault on unit 0xfed90000: source 01:10\.0, read at IOVA 0x2600000, reason 0x06: read of a page without read permission",
    r#"selftest: igb-net \[5\] TX descriptor 2 with its buffer at 0x2600000 \(guest "b"'s memory, outside guest "a"'s\): the VF's read was blocked, fault 0x06 recorded \(source 01:10\.0, address 0x2600000, read\): .*nothing received \(VFGPRC 3 -> 3\), interrupts unchanged \(guest A 2, guest B 0\)"#,
    // [6] The next echo goes and is answered.
    r#"selftest: igb-net \[6\] ICMP echo to 10\.0\.2\.2 \(id 0xc0d1, seq 2, 24 data bytes\) sent from TX descriptor 3 \(VFGPTC 3 -> 4\); the reply landed in guest A's memory at GPA 0x17800 \(66 bytes\): 10\.0\.2\.2 -> 10\.0\.2\.15 \(from 52:55:0a:00:02:02\), id 0xc0d1 seq 2, ttl 255, data equal; 1 frame\(s\) received \(before it: \[\]\); guest "a" interrupts 2 -> 3, guest "b" 0 -> 0$"#,
    r#"selftest: igb-net \[7\] per-guest counters: guest "a" 3 interrupts \(4 frames received\) and 1 DMA fault \(the blocked descriptor\), guest "b" none$"#,
    r"selftest: igb-net: PASS \(7 steps\)",
    r#"guest "a": interrupts 3, DMA faults 1, interrupt-remapping faults 0 \(functions 01:10\.0\)$"#,
    r#"guest "b": interrupts 0, DMA faults 0, interrupt-remapping faults 0 \(functions 01:10\.2\)$"#,
    r"CONDUIT EXIT: success",
];

/// Nothing fails, nothing is refused, no interrupt-remapping fault, and no DMA fault but the
/// blocked descriptor's (a read, reason 0x06, from 01:10.0).
const NET_FORBID: &[&str] = &[
    PANIC,
    ANY_EXCEPTION,
    r"FAIL",
    r"not routed",
    r"not assigned",
    r"not set up",
    r"interrupt flood",
    r"interrupt remapping fault",
    r"primary fault overflow",
    r"vtd: DMA fault .*reason 0x0[0-57-9a-f]",
    r"vtd: DMA fault on unit [^ ]+ source (0[02-9a-f]|[1-9a-f][0-9a-f]|01:(0[0-9a-f]|1[1-9a-f]|10\.[1-7]))",
];

/// `qemu-igb-net` (boot/scenarios/igb-net.toml).
pub const QEMU_IGB_NET: Scenario = Scenario {
    name: "qemu-igb-net",
    machine: MachineSpec::Qemu(QemuSpec::TCG),
    config: Config::File("boot/scenarios/igb-net.toml"),
    guests: &[],
    expect: NET_EXPECT,
    forbid: NET_FORBID,
    input: &[],
    end: End::Success,
    timeout_secs: 180,
};

/// Issue 14, Must-show 4 (igb half): Debian's stock Linux drives VF 0 of the igb PF with its own
/// `igbvf` driver (loaded from its initramfs), in its IOMMU domain: the VF's reset through the
/// hypervisor's mailbox service gives it its MAC, udhcpc takes a lease from QEMU's user network
/// and 10.0.2.2 answers three pings. Needs VMX: runs only where `/dev/kvm` and VMX are present
/// (elsewhere listed as not run). Written from the TCG measurements of `qemu-igb-mailbox` and
/// `qemu-igb-net` (the MAC 02:00:00:01:00:00 of PF 01:00.0's VF 0, the lease 10.0.2.15 and the
/// gateway's echo replies) and from Linux 6.1's igbvf messages; not run on a KVM host yet.
pub const KVM_LINUX_IGB_VF: Scenario = Scenario {
    name: "kvm-linux-igb-vf",
    machine: MachineSpec::Qemu(QemuSpec::KVM),
    config: Config::File("boot/scenarios/linux-igb-vf.toml"),
    guests: &[("linux", LINUX_IGBVF)],
    expect: LINUX_IGBVF_EXPECT,
    forbid: LINUX_IGBVF_FORBID,
    input: &[],
    end: End::Success,
    timeout_secs: 600,
};

/// `kvm-linux-igb-vf`, the hypervisor's lines in order.
const LINUX_IGBVF_EXPECT: &[&str] = &[
    BANNER,
    r#"guest "linux": assigned 01:10\.0 \(01:00\.0 VF 0\) in IOMMU domain [0-9]+"#,
    r"VF_RESET 0x00000001 -> ACK 0x80000001, MAC 02:00:00:01:00:00",
    r#"guest "linux": stopped \(powered off"#,
    r"CONDUIT EXIT: success",
];

/// `linux`'s console, in order: igbvf binds the VF at virtual 00:01.0 with the MAC the mailbox
/// gave, the lease, three replies, the VF's MSI-X vectors counted by Linux.
const LINUX_IGBVF: &[&str] = &[
    r"linux: \[ *[0-9]+\.[0-9]+\] Linux version 6\.1\.",
    r"linux: conduit-initramfs: igbvf test",
    r"linux: \[ *[0-9]+\.[0-9]+\] igbvf 0000:00:01\.0: Intel\(R\) Gigabit Virtual Function Network Connection",
    r"linux: conduit-initramfs: eth0 02:00:00:01:00:00$",
    r"linux: conduit-initramfs: udhcpc: lease of 10\.0\.2\.15 obtained from 10\.0\.2\.2",
    r"linux: conduit-initramfs: 3 packets transmitted, 3 packets received, 0% packet loss$",
    // Linux 6.1 names the chip `PCI-MSI` (per-device `PCI-MSIX-<bdf>` names came later).
    r"linux: conduit-initramfs: irq: +[0-9]+: +[1-9][0-9]* +PCI-MSI(X-0000:00:01\.0)? +[0-9]+-edge +eth0",
];

/// `kvm-linux-igb-vf`: no module or driver failure, no fault of the VF, no refused mailbox
/// message, nothing refused at assignment.
const LINUX_IGBVF_FORBID: &[&str] = &[
    PANIC,
    ANY_EXCEPTION,
    r"conduit-initramfs: (insmod igbvf failed|no eth0)",
    r"linux: .*(Kernel panic|BUG:|Oops|WARNING:|Call Trace)",
    r"linux: .*igbvf .*(failed|Timeout|Invalid MAC)",
    r"refused [A-Z_]+ \(id",
    r"ignored message",
    r"not assigned",
    r"DMA fault",
    r"interrupt-remapping fault",
];
