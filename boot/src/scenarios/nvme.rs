//! Issue "VFs at work" (nvme): the expectations of `qemu-nvme-vf` and `qemu-nvme-vf-bad`, measured
//! on QEMU 10.0.2 q35 + OVMF with the harness' device set: the nvme PF 02:00.0 (1b36:0010,
//! `serial=deadbeef`, 4 VFs, 8 flexible VQ and 4 VI resources, at most 2 VQ and 1 VI per secondary
//! controller) brought up by the hypervisor in its own IOMMU domain, secondary controllers 0x1-0x4
//! for VFs 1-4 (02:00.1-02:00.4), and the VF's admin queue in guest A's memory.
//!
//! `kvm-nvme-vf-guest` runs the same admin queue from inside guest A (`nvmegst64`) on the `kvm`
//! machine (nested VT-x, the same device set). Its guest-side expectations are the values QEMU
//! 10.0.2 gave the hypervisor's driver for the same VF on TCG (CAP, Identify data and its
//! checksum); it has not been run on a KVM host yet.

use super::{ANY_EXCEPTION, BANNER, Config, PANIC, Scenario};
use crate::expect::End;
use crate::machine::{MachineSpec, QemuSpec};

/// Issue "VFs at work" (nvme): the PF's secondary controllers brought online by the hypervisor
/// (the PF's admin queues in its own IOMMU domain), a VF's admin queue in guest A's memory
/// (Identify lands there), transfers outside guest A blocked with the VF's BDF; the per-guest
/// counters at the end.
pub const QEMU_NVME_VF: Scenario = Scenario {
    name: "qemu-nvme-vf",
    machine: MachineSpec::Qemu(QemuSpec::TCG),
    config: Config::File("boot/scenarios/nvme-vf.toml"),
    guests: &[],
    expect: VF_EXPECT,
    forbid: VF_FORBID,
    input: &[],
    end: End::Success,
    timeout_secs: 180,
};

/// The same, bad input: VF 0 addressed with a controller ID the PF does not list, VF 1 asking
/// for more VQ resources than a secondary may have (test-only breaks); both are reported with
/// the NVMe status decoded and stay unassigned, VF 2 comes online, VF 9 (of 4) is refused by
/// index, the boot goes on.
pub const QEMU_NVME_VF_BAD: Scenario = Scenario {
    name: "qemu-nvme-vf-bad",
    machine: MachineSpec::Qemu(QemuSpec::TCG),
    config: Config::File("boot/scenarios/nvme-vf-bad.toml"),
    guests: &[],
    expect: BAD_EXPECT,
    forbid: BAD_FORBID,
    input: &[],
    end: End::Success,
    timeout_secs: 180,
};

/// Issue 14 (Must-show 3): nvme VFs do I/O. The PF attaches its namespace to both VFs'
/// controllers; guest A's VF writes 1 MiB of a pattern from guest A's memory to the shared
/// namespace (PRP lists, MDTS-sized commands), guest B's VF reads it back into guest B's memory
/// (checksums equal); each completion raises the VF's MSI-X on its own guest's IRTE; writes whose
/// PRP or PRP list entry points outside guest A's memory are blocked with decoded faults.
pub const QEMU_NVME_VF_IO: Scenario = Scenario {
    name: "qemu-nvme-vf-io",
    machine: MachineSpec::Qemu(QemuSpec::TCG),
    config: Config::File("boot/scenarios/nvme-vf-io.toml"),
    guests: &[],
    expect: IO_EXPECT,
    forbid: IO_FORBID,
    input: &[],
    end: End::Success,
    timeout_secs: 180,
};

/// Issue 7 (build item): the guest-side NVMe driver. Guest "a" (`nvmegst64`) finds its VF at
/// virtual 00:01.0, maps BAR0 at 0xc0000000 through its virtual configuration space and EPT, runs
/// the admin queue in its own memory (Identify lands there), and an Identify with PRP1 = GPA
/// 0x40000000 (outside its 16 MiB) is blocked by the IOMMU with the VF's BDF. Needs VMX: runs
/// only where `/dev/kvm` and VMX are present (elsewhere the harness lists it as not run).
pub const KVM_NVME_VF_GUEST: Scenario = Scenario {
    name: "kvm-nvme-vf-guest",
    machine: MachineSpec::Qemu(QemuSpec::KVM),
    config: Config::File("boot/scenarios/nvme-vf-guest.toml"),
    guests: &[("a", GUEST_A), ("b", GUEST_B)],
    expect: GUEST_EXPECT,
    forbid: GUEST_FORBID,
    input: &[],
    end: End::Success,
    timeout_secs: 300,
};

/// Issue 14, Must-show 4 (nvme half): Debian's stock Linux drives VF 0 with its own `nvme`
/// driver (the modules loaded from its initramfs), in its IOMMU domain; `dd` reads the namespace.
/// Needs VMX: runs only where `/dev/kvm` and VMX are present (elsewhere listed as not run).
/// Written from the TCG measurements of `qemu-nvme-vf-io` (namespace 1: 131072 blocks of 512
/// bytes, secondary controller 0x1 with 2 VQ and 1 VI resources: one I/O queue pair) and from
/// Linux 6.1's nvme driver messages; not run on a KVM host yet.
pub const KVM_LINUX_NVME_VF: Scenario = Scenario {
    name: "kvm-linux-nvme-vf",
    machine: MachineSpec::Qemu(QemuSpec::KVM),
    config: Config::File("boot/scenarios/linux-nvme-vf.toml"),
    guests: &[("linux", LINUX_NVME)],
    expect: LINUX_NVME_EXPECT,
    forbid: LINUX_NVME_FORBID,
    input: &[],
    end: End::Success,
    timeout_secs: 600,
};

/// `kvm-linux-nvme-vf`, the hypervisor's lines in order.
pub const LINUX_NVME_EXPECT: &[&str] = &[
    BANNER,
    NVME_PF[0],
    r#"nvme: 02:00\.0: VF 0 \(02:00\.1\) for guest "linux": secondary controller 0x1 online with 2 VQ and 1 VI resources"#,
    r"nvme: 02:00\.0: namespace 1: 131072 blocks of 512 bytes \(64 MiB\), shareable",
    r#"guest "linux": assigned 02:00\.1 \(02:00\.0 VF 0\) in IOMMU domain 2"#,
    r#"guest "linux": stopped \(powered off"#,
    r"CONDUIT EXIT: success",
];

/// `linux`'s console, in order: the nvme driver binds the VF at virtual 00:01.0, the namespace
/// (64 MiB, zeroed by the harness) is read with dd.
pub const LINUX_NVME: &[&str] = &[
    r"linux: \[ *[0-9]+\.[0-9]+\] Linux version 6\.1\.",
    r"linux: conduit-initramfs: nvme test",
    r"linux: \[ *[0-9]+\.[0-9]+\] nvme nvme0: pci function 0000:00:01\.0$",
    // Two VQ resources: the admin queue and one I/O queue.
    r"linux: \[ *[0-9]+\.[0-9]+\] nvme nvme0: 1/0/0 default/read/poll queues$",
    r"linux: conduit-initramfs: nvme0n1: 131072 sectors of 512 bytes$",
    r"linux: conduit-initramfs: dd: 4\+0 records out$",
    // The md5 of 1 MiB of zeros: the harness' fresh namespace image.
    r"linux: conduit-initramfs: nvme0n1 first MiB md5 b6d81b360a5672d80c27430f39153e2c$",
];

/// `kvm-linux-nvme-vf`: no module or driver failure, no fault of the VF, nothing refused.
pub const LINUX_NVME_FORBID: &[&str] = &[
    PANIC,
    ANY_EXCEPTION,
    r"conduit-initramfs: (insmod .* failed|no /dev/nvme0n1)",
    r"linux: .*(Kernel panic|BUG:|Oops|WARNING:|Call Trace)",
    r"linux: .*nvme nvme0: .*(timeout|failed|Removing after probe failure)",
    r"cannot be brought online",
    r"not assigned",
    r"DMA fault",
    r"interrupt-remapping fault",
];

/// `kvm-nvme-vf-guest`, the hypervisor's lines in order.
pub const GUEST_EXPECT: &[&str] = &[
    BANNER,
    NVME_PF[0],
    NVME_PF[3],
    NVME_PF[9],
    r#"nvme: 02:00\.0: VF 0 \(02:00\.1\) for guest "a": secondary controller 0x1 online with 2 VQ and 1 VI resources"#,
    r#"nvme: 02:00\.0: VF 1 \(02:00\.2\) for guest "b": secondary controller 0x2 online with 2 VQ and 1 VI resources"#,
    r#"guest "a": assigned 02:00\.1 \(02:00\.0 VF 0\) in IOMMU domain 2"#,
    r#"guest "b": assigned 02:00\.2 \(02:00\.0 VF 1\) in IOMMU domain 3"#,
    // Guest A's Identify with PRP1 = GPA 0x40000000: not mapped in its domain.
    r"vtd: DMA fault on unit 0xfed90000: source 02:00\.1, write at IOVA 0x40000000, reason 0x05",
    r"CONDUIT EXIT: success",
];

/// `nvmegst64` as guest "a", in order (its lines reach the log as `a: <line>`).
pub const GUEST_A: &[&str] = &[
    r"a: hello from nvmegst64",
    r"a: nvmegst64: pci 00:01\.0 1b36:0010 class 01:08:02$",
    r"a: nvmegst64: NVMe controller at 00:01\.0",
    r"a: nvmegst64: BAR0: read 0xffffc004 after writing all ones: memory 64-bit, size 16 KiB",
    r"a: nvmegst64: BAR0 programmed at 0xc0000000, memory decoding and bus mastering on",
    r"a: nvmegst64: CAP 0x004008200f0107ff \(MQES 2048, TO 7500 ms, DSTRD 0\), version 1\.4\.0",
    r"a: nvmegst64: controller enabled: admin SQ at GPA 0x[0-9a-f]+, CQ at GPA 0x[0-9a-f]+ \(32 entries each\); CSTS\.RDY after [0-9]+ poll\(s\)",
    // The checksum qemu-nvme-vf measured for the same VF's Identify data.
    r#"a: nvmegst64: identify: SN "deadbeef" MN "QEMU NVMe Ctrl" FR "10\.0\.2" controller id 0x1, VID 0x1b36; 4 KiB at GPA 0x[0-9a-f]+, checksum 0x5d241b4ef3cfb8b5$"#,
    // QEMU's nvme does not learn that the IOMMU dropped the write: it reports success.
    r#"a: nvmegst64: identify with PRP1 = 0x40000000 \(outside this guest's memory\): completed with NVMe status SCT 0h/SC 00h "Successful Completion"; sentinel pages at GPA 0x[0-9a-f]+, 0x[0-9a-f]+ and the data page 0x[0-9a-f]+ unchanged"#,
    r#"a: nvmegst64: the VF still answers after the blocked transfer: SN "deadbeef", controller id 0x1$"#,
    r"a: nvmegst64: controller disabled",
    r"a: nvmegst64: PASS",
    r#"guest "a" exited with code 0x4e\b"#,
];

/// `hello64` as guest "b", holding VF 1 without touching it.
pub const GUEST_B: &[&str] = &[
    r"b: hello from hello64",
    r"b: done",
    r#"guest "b" exited with code 0x64\b"#,
];

/// `kvm-nvme-vf-guest`: no failure in either guest, and only guest A's VF faults, only where
/// `nvmegst64` aims it.
pub const GUEST_FORBID: &[&str] = &[
    PANIC,
    ANY_EXCEPTION,
    r"self-check failed",
    r"cannot be brought online",
    r"not assigned",
    r#"guest "[ab]" stopped"#,
    r"DMA fault on unit 0xfed90000: source (0[0-13-9]|02:00\.[02-7])",
    r"DMA fault on unit 0xfed90000: source 02:00\.1, read at",
];

/// The nvme PF 02:00.0 (1b36:0010, `serial=deadbeef`, 4 VFs, 8 flexible VQ and 4 VI resources)
/// in its hypervisor-owned domain: Identify, primary capabilities, the secondary controllers, the
/// primary's flexible resources released, the FLR that applies it (with VFs 0 and 1 configured,
/// so NumVFs 2 at boot since issue 17).
pub const NVME_PF: &[&str] = &[
    r"nvme: 02:00\.0 1b36:0010: secondary controllers wanted for VF 0",
    r#"iommu: created domain 1 "nvme-pf-02:00\.0": IOVA 0x10000000-0x10002fff -> HPA 0x[0-9a-f]+ \(12 KiB\)"#,
    r#"nvme: 02:00\.0: admin queues in hypervisor-owned IOMMU domain 1 "nvme-pf-02:00\.0": IOVA 0x10000000-0x10002fff -> HPA 0x[0-9a-f]+ \(3 pages: ASQ, ACQ, data\); nothing else is mapped for the PF"#,
    r#"nvme: 02:00\.0: Identify Controller: VID 0x1b36, SSVID 0x1af4, SN "deadbeef", MN "QEMU NVMe Ctrl", FR "10\.0\.2", controller ID 0x0, OACS 0x1aa, version 1\.4\.0"#,
    r"nvme: 02:00\.0: primary controller 0x0 at boot: VQ flexible 8 \(primary 0, secondaries 0, private 5, at most 2 per secondary\), VI flexible 4 \(primary 0, secondaries 0, private 4, at most 1 per secondary\)",
    r"nvme: 02:00\.0: secondary controller list: 4 controller\(s\)",
    r"nvme: 02:00\.0:   secondary controller 0x4 \(primary 0x0\): VF number 4, offline, VQ 0, VI 0",
    r"nvme: 02:00\.0: Primary Controller Flexible Allocation: the primary keeps 0 flexible VQ resources after its next reset",
    r"nvme: 02:00\.0: Primary Controller Flexible Allocation: the primary keeps 0 flexible VI resources after its next reset",
    r"nvme: 02:00\.0: function level reset done \(configuration restored; NumVFs/VF Enable cleared by the reset: 2 VF\(s\) were enabled before\)",
];

/// The FLR line where the configuration names VFs 0-2 (`qemu-nvme-vf-bad`): since issue 17 the
/// PF has NumVFs 3 at boot (the highest VF named, 2, plus one; VF 9 is beyond TotalVFs).
const FLR_3_VFS: &str = r"nvme: 02:00\.0: function level reset done \(configuration restored; NumVFs/VF Enable cleared by the reset: 3 VF\(s\) were enabled before\)";

/// `qemu-nvme-vf`, in order.
pub const VF_EXPECT: &[&str] = &[
    BANNER,
    NVME_PF[0],
    NVME_PF[1],
    NVME_PF[2],
    NVME_PF[3],
    NVME_PF[4],
    NVME_PF[5],
    NVME_PF[6],
    NVME_PF[7],
    NVME_PF[8],
    NVME_PF[9],
    r"nvme: 02:00\.0: 2 VF\(s\) enabled \(NumVFs 2, VF BAR0 0x[0-9a-f]{1,8}, 16 KiB per VF\), VF Enable and VF MSE set after the FLR",
    r#"nvme: 02:00\.0: VF 0 \(02:00\.1\) for guest "a": secondary controller 0x1 online with 2 VQ and 1 VI resources"#,
    r#"nvme: 02:00\.0: VF 1 \(02:00\.2\) for guest "b": secondary controller 0x2 online with 2 VQ and 1 VI resources"#,
    r"nvme: 02:00\.0:   secondary controller 0x1 \(primary 0x0\): VF number 1, online, VQ 2, VI 1",
    r"nvme: 02:00\.0:   secondary controller 0x2 \(primary 0x0\): VF number 2, online, VQ 2, VI 1",
    r"nvme: 02:00\.0:   secondary controller 0x3 \(primary 0x0\): VF number 3, offline, VQ 0, VI 0",
    r"nvme: 02:00\.0: 2 of 2 VF\(s\) online",
    r#"iommu: created domain 2 "a": IOVA 0x0-0xffffff"#,
    r"iommu: assigned 02:00\.1 to domain 2 .a. on unit 0xfed90000",
    r#"guest "a": assigned 02:00\.1 \(02:00\.0 VF 0\) in IOMMU domain 2"#,
    r#"iommu: created domain 3 "b": IOVA 0x0-0x7fffff"#,
    r#"guest "b": assigned 02:00\.2 \(1b36:0010 VF 1\) in IOMMU domain 3"#,
    r#"selftest: nvme-vf: guest A = "a" \(16 MiB at HPA 0x[0-9a-f]+, IOMMU domain 2\), VF 02:00\.1 of 02:00\.0 \(secondary controller 0x1, 2 VQ, 1 VI\), BAR0 0x[0-9a-f]+; its driver's admin queues at GPA 0x800000 \(SQ\), 0x801000 \(CQ\), data at 0x802000, all in guest A's memory"#,
    r"selftest: nvme-vf: VF 02:00\.1: CAP 0x004008200f0107ff \(MQES 2048, TO 7500 ms, DSTRD 0\), version 1\.4\.0",
    // The 4 KiB Identify data QEMU 10.0.2 returns for VF 0 (checksum of guest A's page).
    r#"nvme-vf \[1\] Identify Controller through VF 02:00\.1: 4 KiB landed at GPA 0x802000 \(HPA 0x[0-9a-f]+\) in guest A's memory \(checksum 0x5d241b4ef3cfb8b5\): VID 0x1b36, SN "deadbeef", MN "QEMU NVMe Ctrl", FR "10\.0\.2", controller ID 0x1"#,
    r#"nvme-vf \[1\] the VF's SN "deadbeef" and MN "QEMU NVMe Ctrl" equal the PF's; its controller ID 0x1 is the secondary controller's"#,
    r"vtd: DMA fault on unit 0xfed90000: source 02:00\.1, write at IOVA 0x1000000, reason 0x05: write to a page without write permission .*\(reported by the fault event interrupt\)",
    // QEMU's nvme does not learn that the IOMMU dropped the write: it reports success.
    r#"nvme-vf \[2\] Identify with PRP1 = 0x1000000 \(GPA 0x1000000, just past the end of guest A's memory\): DMA write blocked \(source 02:00\.1, reason 0x05\); the command completed with NVMe status SCT 0h/SC 00h "Successful Completion"; unchanged: guest "b" \(HPA 0x[0-9a-f]+\) 0x[0-9a-f]{16}, hypervisor's root table \(HPA 0x[0-9a-f]+\) 0x[0-9a-f]{16}, PF admin queues \(HPA 0x[0-9a-f]+\) 0x[0-9a-f]{16}"#,
    r"vtd: DMA fault on unit 0xfed90000: source 02:00\.1, write at IOVA 0x2600000, reason 0x05",
    r#"nvme-vf \[3\] Identify with PRP1 = 0x2600000 \(guest "b"'s memory \(its HPA\)\): DMA write blocked \(source 02:00\.1, reason 0x05\)"#,
    r"vtd: DMA fault on unit 0xfed90000: source 02:00\.1, write at IOVA 0x10000000, reason 0x05",
    r"nvme-vf \[4\] Identify with PRP1 = 0x10000000 \(the IOVA of the PF's admin queues in the hypervisor-owned domain\): DMA write blocked \(source 02:00\.1, reason 0x05\)",
    r#"nvme-vf \[5\] VF 02:00\.1 still serves guest A after the blocked transfers: SN "deadbeef""#,
    r"selftest: nvme-vf: PASS \(5 steps\)",
    // The per-guest counters: guest A's VF caused the three blocked transfers, nothing else.
    r#"guest "a": interrupts 0, DMA faults 3, interrupt-remapping faults 0 \(functions 02:00\.1\)$"#,
    r#"guest "b": interrupts 0, DMA faults 0, interrupt-remapping faults 0 \(functions 02:00\.2\)$"#,
    r"boot complete: .*DMA remapping on",
    r"CONDUIT EXIT: success",
];

/// `qemu-nvme-vf`: no failure, no VF refused, and only VF 0 faults, where the script aims it.
pub const VF_FORBID: &[&str] = &[
    PANIC,
    ANY_EXCEPTION,
    r"FAIL",
    r"cannot be brought online",
    r"not assigned",
    r"reported by polling",
    r"primary fault overflow",
    // Only the VF, and only where the script aims it, may fault.
    r"DMA fault on unit 0xfed90000: source (0[0-13-9]|02:00\.[02-7])",
];

/// `qemu-nvme-vf-bad`, in order.
pub const BAD_EXPECT: &[&str] = &[
    BANNER,
    NVME_PF[0],
    r#"nvme: 02:00\.0: VF 9 for guest "d" cannot be brought online: VF index 9 is not below the PF's TotalVFs 4; it stays unassigned"#,
    NVME_PF[3],
    FLR_3_VFS,
    r"nvme: 02:00\.0: 3 VF\(s\) enabled \(NumVFs 3,",
    r"nvme: 02:00\.0: TEST: VF 0 \(02:00\.1\) addressed as controller 0x5, which the PF does not list \(its secondary controller is 0x1\)",
    r#"nvme: 02:00\.0: VF 0 for guest "a" cannot be brought online: Secondary Controller Assign \(VI 1\) for controller 0x5 failed: NVMe status SCT 1h/SC 1fh "Invalid Controller Identifier" \(do not retry\); it stays unassigned"#,
    r"nvme: 02:00\.0: TEST: VF 1 \(02:00\.2\) asks for 3 VQ resources \(at most 2 per secondary\)",
    r"nvme: 02:00\.0: controller 0x2 taken offline again: the resources assigned to it return to the pool",
    r#"nvme: 02:00\.0: VF 1 for guest "b" cannot be brought online: Secondary Controller Assign \(VQ 3\) for controller 0x2 failed: NVMe status SCT 1h/SC 21h "Invalid Number of Controller Resources" \(do not retry\); it stays unassigned"#,
    r#"nvme: 02:00\.0: VF 2 \(02:00\.3\) for guest "c": secondary controller 0x3 online with 2 VQ and 1 VI resources"#,
    r"nvme: 02:00\.0:   secondary controller 0x1 \(primary 0x0\): VF number 1, offline, VQ 0, VI 0",
    r"nvme: 02:00\.0:   secondary controller 0x2 \(primary 0x0\): VF number 2, offline, VQ 0, VI 0",
    r"nvme: 02:00\.0:   secondary controller 0x3 \(primary 0x0\): VF number 3, online, VQ 2, VI 1",
    r"nvme: 02:00\.0: 1 of 4 VF\(s\) online",
    r#"guest "a": device\[0\] 02:00\.0 VF 0 not assigned: VF 0 of 02:00\.0 is not online: .*"Invalid Controller Identifier""#,
    r#"guest "a": 4 MiB at HPA 0x[0-9a-f]+, 0 function\(s\) assigned"#,
    r#"guest "b": device\[0\] 02:00\.0 VF 1 not assigned: VF 1 of 02:00\.0 is not online: .*"Invalid Number of Controller Resources""#,
    r#"guest "b": 4 MiB at HPA 0x[0-9a-f]+, 0 function\(s\) assigned"#,
    r#"guest "c": assigned 02:00\.3 \(02:00\.0 VF 2\) in IOMMU domain 4"#,
    r#"guest "c": 4 MiB at HPA 0x[0-9a-f]+, 1 function\(s\) assigned"#,
    r#"guest "d": device\[0\] 02:00\.0 VF 9 not assigned: VF index 9 is at or beyond TotalVFs 4 of 02:00\.0"#,
    r#"guest "d": 4 MiB at HPA 0x[0-9a-f]+, 0 function\(s\) assigned"#,
    r"selftest: nvme-vf-bad: 3 VF\(s\) refused, 1 online and assigned",
    r"selftest: nvme-vf-bad: PASS",
    r"boot complete: ",
    r"CONDUIT EXIT: success",
];

/// `qemu-nvme-vf-bad`: the refused VFs are never assigned, and nothing faults.
pub const BAD_FORBID: &[&str] = &[
    PANIC,
    ANY_EXCEPTION,
    r"FAIL",
    r"assigned 02:00\.[12] ",
    r"DMA fault",
];

/// The PF's namespace 1 (the harness' 64 MiB image, 512-byte blocks) and what QEMU 10.0 answers
/// when the PF attaches it to the VFs' controllers (see `docs/sriov.md`): "already attached", the
/// VFs getting it when their controllers are enabled.
pub const NAMESPACE: &[&str] = &[
    r"nvme: 02:00\.0: namespace 1: 131072 blocks of 512 bytes \(64 MiB\), shareable \(NMIC 0x1\), attached to controller\(s\) 0x0$",
    r#"nvme: 02:00\.0: namespace 1: Namespace Attachment to controller\(s\) 0x1, 0x2 answered NVMe status SCT 1h/SC 18h "Namespace Already Attached" \(do not retry\) although its controller list names 0x0"#,
];

/// `qemu-nvme-vf-io`, in order.
pub const IO_EXPECT: &[&str] = &[
    BANNER,
    NVME_PF[0],
    NVME_PF[9],
    r#"nvme: 02:00\.0: VF 0 \(02:00\.1\) for guest "a": secondary controller 0x1 online"#,
    r#"nvme: 02:00\.0: VF 1 \(02:00\.2\) for guest "b": secondary controller 0x2 online"#,
    NAMESPACE[0],
    NAMESPACE[1],
    r"nvme: 02:00\.0: 2 of 2 VF\(s\) online",
    r#"guest "a": assigned 02:00\.1 \(02:00\.0 VF 0\) in IOMMU domain 2"#,
    r#"guest "b": assigned 02:00\.2 \(02:00\.0 VF 1\) in IOMMU domain 3"#,
    r#"selftest: nvme-vf-io: guest A = "a" \(VF 02:00\.1 at its 00:01\.0, 16 MiB at HPA 0x[0-9a-f]+\), guest B = "b" \(VF 02:00\.2 at its 00:01\.0, 16 MiB"#,
    r#"selftest: nvme-vf-io: guest "a" programmed MSI-X entry 0 of its 00:01\.0 \(VF 02:00\.1\) with vector 0x53 through its virtual table at GPA 0xc0002000: IRTE [0-9]+ owned by guest "a""#,
    // MDTS 7 of 4 KiB pages: 512 KiB per command.
    r#"selftest: nvme-vf-io: guest "a"'s driver: VF 02:00\.1 \(controller 0x1, MDTS 7 = 512 KiB per command\) sees namespace 1: 131072 blocks of 512 bytes \(64 MiB\); I/O queue pair 1 created at GPA 0x803000 \(SQ\) and 0x804000 \(CQ\), completions on MSI-X vector 0"#,
    r#"selftest: nvme-vf-io: guest "b" programmed MSI-X entry 0 of its 00:01\.0 \(VF 02:00\.2\) with vector 0x54 through its virtual table at GPA 0xc0002000: IRTE [0-9]+ owned by guest "b""#,
    r#"selftest: nvme-vf-io: guest "b"'s driver: VF 02:00\.2 \(controller 0x2, MDTS 7 = 512 KiB per command\) sees namespace 1: 131072 blocks of 512 bytes"#,
    // Two commands of 1024 blocks, each with PRP1 and a PRP list of the other 127 pages.
    r#"nvme-vf-io \[1\] guest "a": LBA 0-1023 \(512 KiB\): PRP1 0x400000, PRP2 0x805000 \(PRP list of 127 entries\): NVMe status SCT 0h/SC 00h "Successful Completion""#,
    r#"nvme-vf-io \[1\] guest "a": LBA 1024-2047 \(512 KiB\): PRP1 0x480000, PRP2 0x805000 \(PRP list of 127 entries\): NVMe status SCT 0h/SC 00h "Successful Completion""#,
    // The pattern (a fixed LCG sequence) has this checksum; guest B must read back the same.
    r#"nvme-vf-io \[1\] guest "a" wrote 1024 KiB from GPA 0x400000 \(checksum 0x1a2a82b149a62325\) at LBA 0 in 2 commands; 2 MSI-X interrupts reached guest "a" \(vector 0x53\), none guest "b""#,
    r#"nvme-vf-io \[2\] guest "b": LBA 0-1023 \(512 KiB\): PRP1 0x400000, PRP2 0x805000 \(PRP list of 127 entries\): NVMe status SCT 0h/SC 00h "Successful Completion""#,
    r#"nvme-vf-io \[2\] guest "b": LBA 1024-2047 \(512 KiB\)"#,
    r#"nvme-vf-io \[2\] guest "b" read 1024 KiB at LBA 0 into GPA 0x400000 \(zeroed: 0x[0-9a-f]{16}\) in 2 commands: checksum 0x1a2a82b149a62325, equal to guest "a"'s; 2 MSI-X interrupts reached guest "b" \(vector 0x54\), none guest "a""#,
    // Guest B's buffer at HPA 0x2600000 + 0x400000, as guest A's PRP1.
    r"vtd: DMA fault on unit 0xfed90000: source 02:00\.1, read at IOVA 0x2a00000, reason 0x06: read of a page without read permission .*\(reported by the fault event interrupt\)",
    // QEMU's nvme does not learn that the IOMMU refused the read: it reports success.
    r#"nvme-vf-io \[3\] guest "a" Write of 1 page\(s\) with PRP1 at guest B's buffer \(its HPA\): DMA read of 0x2a00000 blocked \(source 02:00\.1, reason 0x06: .*\); the command completed with NVMe status SCT 0h/SC 00h "Successful Completion"; the blocks read back hold checksum 0x[0-9a-f]{16}, not guest B's page \(0x[0-9a-f]{16}\); unchanged: guest "b" 0x[0-9a-f]{16}, root table \(HPA 0x[0-9a-f]+\) 0x[0-9a-f]{16}, PF admin queues \(HPA 0x[0-9a-f]+\) 0x[0-9a-f]{16}"#,
    r"vtd: DMA fault on unit 0xfed90000: source 02:00\.1, read at IOVA 0x10000000, reason 0x06",
    r#"nvme-vf-io \[4\] guest "a" Write of 3 page\(s\) with PRP list entry 2 at the IOVA of the PF's admin queues \(the hypervisor's domain\): DMA read of 0x10000000 blocked \(source 02:00\.1, reason 0x06: .*\); the command completed with NVMe status SCT 0h/SC 00h "Successful Completion"; unchanged: "#,
    r#"nvme-vf-io \[5\] guest "a": 2 DMA faults \(the blocked writes\), 3 interrupts for its 3 commands of steps 3-4; guest "b": no fault, 0 interrupts"#,
    r"selftest: nvme-vf-io: PASS \(5 steps\)",
    // Guest A: the Create I/O SQ completion (its vector in use since the CQ was created), 2
    // writes, 3 commands of steps 3-4; guest B: the same completion and 2 reads.
    r#"guest "a": interrupts 6, DMA faults 2, interrupt-remapping faults 0 \(functions 02:00\.1\)$"#,
    r#"guest "b": interrupts 3, DMA faults 0, interrupt-remapping faults 0 \(functions 02:00\.2\)$"#,
    r"boot complete: .*DMA remapping on",
    r"CONDUIT EXIT: success",
];

/// `qemu-nvme-vf-io`: no failure, no refused VF, and only guest A's VF faults, only on reads
/// where the script aims it.
pub const IO_FORBID: &[&str] = &[
    PANIC,
    ANY_EXCEPTION,
    r"FAIL",
    r"cannot be brought online",
    r"not assigned",
    r"do not see the PF's storage",
    r"reported by polling",
    r"primary fault overflow",
    r"DMA fault on unit 0xfed90000: source (0[0-13-9]|02:00\.[02-7])",
    r"DMA fault on unit 0xfed90000: source 02:00\.1, write at",
];
