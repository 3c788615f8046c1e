//! The boot scenarios, as data: the one place to add more.
//!
//! Each scenario boots one image on one machine and reads the serial log. Log lines look like
//! `[<tsc>] <LEVEL> <module>: <text>`; the patterns below match the text, never the prefix.
//! Expectations must match in order (a line may satisfy several in a row); each guest's own
//! expectations (`guests`) must match in order too, but independently of the other guests' and of
//! the main ones, since guests run interleaved; any match of a forbidden pattern fails the run; the run must end with the kernel's `CONDUIT EXIT: ...` marker for `end`
//! (under QEMU, also with the matching `isa-debug-exit` status: 33 success, 35 failure).

use crate::expect::End;
use crate::machine::{BochsSpec, MachineSpec, QemuSpec};

/// Where a scenario's `conduit.toml` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Config {
    /// A file, relative to the repository root (its guest images are relative to its directory).
    File(&'static str),
    /// The text itself (its guest images are relative to the repository root).
    Inline(&'static str),
}

/// One boot test.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Unique; also the name of its build directory and log file.
    pub name: &'static str,
    pub machine: MachineSpec,
    pub config: Config,
    /// Regular expressions that must match log lines, in this order.
    pub expect: &'static [&'static str],
    /// Per guest (by its name in the configuration): regular expressions that must match log lines
    /// in this order, independently of the other guests and of `expect`.
    pub guests: &'static [(&'static str, &'static [&'static str])],
    /// Regular expressions that must match no log line.
    pub forbid: &'static [&'static str],
    /// The end the kernel must report.
    pub end: End,
    /// Seconds from the emulator's start until the run is killed and failed.
    pub timeout_secs: u64,
}

/// Forbidden in every scenario: a Rust panic.
const PANIC: &str = "panicked";
/// Forbidden where no exception is expected.
const ANY_EXCEPTION: &str = r"EXCEPTION #";

/// The banner every boot starts with.
const BANNER: &str = r"Conduit v0\.1\.0 \(git [0-9a-f]{7,}";

/// Forbidden wherever guests run: a guest's failed self-check (guest/README.md), the lines the
/// hostile and triple guests print only if the hypervisor let them go on, and the greeting of
/// `badstate` (the hello64 image), whose entry must be refused.
const GUEST_FORBID: &[&str] = &[
    PANIC,
    ANY_EXCEPTION,
    r"self-check failed",
    r"hostile: write went through",
    r"triple: still alive",
    r"badstate: hello from",
];

/// `hello64` (guest/src/bin/hello64.rs), in order. Its output reaches the log as `hello64: <line>`.
const HELLO64: &[&str] = &[
    r"hello64: hello from hello64",
    r"hello64: cpuid: signature ConduitHyprV ok, VMX hidden",
    r"hello64: cpuid: abi version 1",
    r"hello64: hlt returned",
    // LME and LMA set (0x500); NXE and SCE are the kernel's choice.
    r"hello64: rdmsr IA32_EFER -> 0x[0-9a-f]*[5d][0-9a-f]{2}\b",
    r"hello64: rdmsr 0x1234 -> #GP",
    // The one line written through hypercall 1 (HC_CONSOLE_WRITE).
    r"hello64: hypercall console ok",
    r"hello64: progress 1/4",
    r"hello64: progress 2/4",
    r"hello64: progress 3/4",
    r"hello64: progress 4/4",
    r"hello64: done",
    r#"guest "hello64" exited with code 0x64\b"#,
];

/// `real16` (guest/src/bin/real16.rs), in order.
const REAL16: &[&str] = &[
    r"real16: hello from real16",
    r"real16: cpuid: signature ConduitHyprV ok",
    r"real16: progress 1/2",
    r"real16: progress 2/2",
    r"real16: done",
    r#"guest "real16" exited with code 0x16\b"#,
];

/// `hostile`: its write to 1 GiB is at the image's first byte (section `.text.probe`).
const HOSTILE: &[&str] = &[
    r"hostile: hello from hostile",
    r#"guest "hostile" stopped: EPT violation at GPA 0x40000000 \(write, outside the guest's memory\) RIP 0x100000\b"#,
];

/// `triple`: LIDT of an empty table at 0x100000, UD2 at 0x100007.
const TRIPLE: &[&str] = &[
    r"triple: hello from triple",
    r#"guest "triple" stopped: triple fault RIP 0x100007\b"#,
];

/// `badstate`: the hello64 image with `test_break = "cr0-pg-without-pe"`: never entered.
const BADSTATE: &[&str] = &[
    r#"guest "badstate" refused before entry: invalid guest state: CR0\.PG set but CR0\.PE clear"#,
];

/// The guests of boot/scenarios/vmx-guests.toml.
const VMX_GUESTS: &[(&str, &[&str])] = &[
    ("hello64", HELLO64),
    ("real16", REAL16),
    ("hostile", HOSTILE),
    ("triple", TRIPLE),
    ("badstate", BADSTATE),
];

/// The kernel's side of a guest run on Bochs: VMX is there, and every guest ends one way or
/// another, after which the hypervisor ends the run.
const VMX_GUESTS_EXPECT: &[&str] = &[
    BANNER,
    r"config: bundle of [0-9]+ bytes, 5 guest\(s\), 4 image\(s\)",
    r"VMX: available",
    r"VMXON done",
    r#"guest "hello64": 4 MiB at host 0x[0-9a-f]+, EPTP 0x[0-9a-f]+, VPID 1, slice 1000 us"#,
    r#"guest "real16": 2 MiB at host 0x[0-9a-f]+, EPTP 0x[0-9a-f]+, VPID 2, .*entry Real16 \{ cs: 0, ip: 31744 \}"#,
    r"sched: running 4 guest\(s\) round-robin",
    r"sched: every guest has finished",
    // Both long-running guests were preempted by the VMX-preemption timer: they interleaved.
    r"preemption-timer exits per guest: hello64=[1-9][0-9]* real16=[1-9][0-9]* hostile=0 triple=0",
    r#"guest "hello64": exited with code 0x64; [0-9]+ exits, CPUID: 3, HLT: 1, VMCALL: 2, I/O instruction: [0-9]+, RDMSR: 2, VMX-preemption timer expired: [1-9][0-9]*"#,
    r#"guest "real16": exited with code 0x16; [0-9]+ exits, CPUID: 1, VMCALL: 1, I/O instruction: [0-9]+, VMX-preemption timer expired: [1-9][0-9]*"#,
    r#"guest "hostile": stopped \(EPT violation at GPA 0x40000000 \(write, outside the guest's memory\) RIP 0x100000\); [0-9]+ exits, I/O instruction: [0-9]+, EPT violation: 1"#,
    r#"guest "triple": stopped \(triple fault RIP 0x100007\); [0-9]+ exits, triple fault: 1"#,
    r"CONDUIT EXIT: success",
];

// Issue "VT-d DMA remapping": values measured on QEMU 10 q35 + OVMF with the harness' device set.

/// The PCI tree: root ports and what is behind them (igb, the SR-IOV NVMe), edu; BAR sizes and
/// capability lists as QEMU 10 models them.
const PCI_TREE: &[&str] = &[
    r"pci: configuration access through ECAM at 0xb0000000 \(buses 0-255\)",
    r"pci: 00:00\.0 8086:29c0 class 06:00:00 host bridge",
    r"pci: 00:02\.0 1b36:000c class 06:04:00 PCI-to-PCI bridge, buses 01-01",
    r"pci:     caps PCIe@0x54 MSI-X@0x48 SSVID@0x40; AER@0x100 ACS@0x148",
    r"pci:   01:00\.0 8086:10c9 class 02:00:00 Ethernet controller",
    r"pci:       BAR0 mem32 0x[0-9a-f]+ size 128 KiB, BAR1 mem32 0x[0-9a-f]+ size 128 KiB, BAR2 io 0x[0-9a-f]+ size 32 B, BAR3 mem64 0x[0-9a-f]+ size 16 KiB",
    r"pci:       caps PM@0x40 MSI@0x50 MSI-X@0x70 PCIe@0xa0; AER@0x100 ARI@0x150 SR-IOV@0x160",
    r"pci: 00:03\.0 1b36:000c class 06:04:00 PCI-to-PCI bridge, buses 02-02",
    r"pci:   02:00\.0 1b36:0010 class 01:08:02 NVM Express controller",
    r"pci:       BAR0 mem64 0x[0-9a-f]+ size 16 KiB",
    r"pci:       caps MSI-X@0x40 PCIe@0x80 PM@0x60; ARI@0x100 SR-IOV@0x120",
    r"pci: 00:04\.0 1234:11e8 class 00:ff:00 unclassified device",
    r"pci:     BAR0 mem32 0x[0-9a-f]+ size 1 MiB",
    r"pci:     caps MSI@0x40",
    r"pci: 00:1f\.2 8086:2922 class 01:06:01 SATA controller",
    r"pci: 10 functions on 3 bus\(es\)",
];

/// The DMAR's one DRHD with its scopes resolved: the root-port bridge scopes expand to igb and nvme.
const DMAR_SCOPES: &[&str] = &[
    r"DMAR: DRHD: unit at 0xfed90000, segment 0, flags 0x0 \(INCLUDE_PCI_ALL not set\)",
    r"DMAR:   I/OxAPIC id 0, source-id ff:00\.0",
    r"DMAR:   bridge 00:02\.0 1b36:000c \(PCI-to-PCI bridge\) covers buses 01-01: 01:00\.0 8086:10c9",
    r"DMAR:   bridge 00:03\.0 1b36:000c \(PCI-to-PCI bridge\) covers buses 02-02: 02:00\.0 1b36:0010",
    r"DMAR:   endpoint 00:04\.0 1234:11e8",
];

/// CAP and ECAP with `caching-mode=on` (CM is bit 7) and off.
const CAP_CM_ON: &str = r"vtd: remapping unit at 0xfed90000: version 1\.0, CAP 0x00d2008c222f0686, ECAP 0x0000000000f00f4a";
const CAP_CM_OFF: &str = r"vtd: remapping unit at 0xfed90000: version 1\.0, CAP 0x00d2008c222f0606, ECAP 0x0000000000f00f4a";
const CAP_DECODED_CM_ON: &str = r"CAP: ND=6 \(65536 domains\) AFL=0 RWBF=0 PLMR=0 PHMR=0 CM=1 SAGAW=0x6 \(39-bit 3-level, 48-bit 4-level\) MGAW=48 ZLR=0 FRO=0x220 SLLPS=0x3 \(2M yes, 1G yes\) PSI=1 NFR=0 \(1 fault record\(s\)\) MAMV=18 DWD=1 DRD=1";
const CAP_DECODED_CM_OFF: &str = r"CAP: ND=6 \(65536 domains\) AFL=0 RWBF=0 PLMR=0 PHMR=0 CM=0 SAGAW=0x6 \(39-bit 3-level, 48-bit 4-level\) MGAW=48 ZLR=0 FRO=0x220 SLLPS=0x3 \(2M yes, 1G yes\) PSI=1 NFR=0 \(1 fault record\(s\)\) MAMV=18 DWD=1 DRD=1";
const ECAP_DECODED: &str =
    r"ECAP: C=0 QI=1 DT=0 IR=1 EIM=0 PT=1 SC=0 IRO=0xf0 MHMV=15 NEST=0 PASID=0 SMTS=0";
const ROOT_TABLE: &str = r"root table at 0x[0-9a-f]+ \(legacy mode, 3 bus\(es\) with empty context tables, 4-level second-level tables, non-coherent walks: table updates flushed with CLFLUSH\); context cache and IOTLB invalidated globally through the registers";
const FAULT_IRQ: &str = r"vtd:   fault event interrupt: vector 0x30 to APIC 0, unmasked";
const TRANSLATION_ON: &str = r"vtd: unit 0xfed90000: DMA remapping enabled \(GSTS 0x[0-9a-f]+\): every function without a context entry is blocked";

/// Fault records: source edu, the IOVA, read or write, the reason and its meaning, and that the
/// fault event interrupt delivered it.
const FAULT_NO_CONTEXT: &str = r"vtd: DMA fault on unit 0xfed90000: source 00:04\.0, write at IOVA 0x4200000, reason 0x02: context entry not present: the function is assigned to no domain \(reported by the fault event interrupt\)";
const FAULT_WRITE: &str = r"vtd: DMA fault on unit 0xfed90000: source 00:04\.0, write at IOVA 0x[0-9a-f]+, reason 0x05: write to a page without write permission \(second-level entry not present or read-only\) \(reported by the fault event interrupt\)";
const FAULT_READ: &str = r"vtd: DMA fault on unit 0xfed90000: source 00:04\.0, read at IOVA 0x[0-9a-f]+, reason 0x06: read of a page without read permission \(second-level entry not present or write-only\) \(reported by the fault event interrupt\)";
const FAULT_WRITE_UNMAPPED: &str = r"vtd: DMA fault on unit 0xfed90000: source 00:04\.0, write at IOVA 0x4200000, reason 0x05: write to a page without write permission";

/// The self-test's steps. Checksums are of fixed contents (the pattern, guest A's and B's fill
/// bytes, a zeroed page), so they are the same on every run; the kernel compares them itself too.
const EDU_SETUP: &[&str] = &[
    r"selftest: vtd-edu: edu 00:04\.0 \(1234:11e8\): BAR0 0x[0-9a-f]+ \(1 MiB\), id 0x010000ed; memory space and bus mastering enabled",
    r#"iommu: created domain 1 "A": IOVA 0x4000000-0x4ffffff -> HPA 0x[0-9a-f]+ \(16 MiB\); 4-level table at"#,
    r#"iommu: created domain 2 "B": IOVA 0x4000000-0x4ffffff"#,
    r"guest A: 16 MiB at GPA 0x4000000 = HPA 0x[0-9a-f]+, IOMMU domain 1; its vCPUs are not started: VMX is not available on this CPU",
    r"guest B: 16 MiB at GPA 0x4000000 = HPA 0x[0-9a-f]+, IOMMU domain 2; its vCPUs are not started: VMX is not available on this CPU",
    r"mapping IOVA 0x[0-9a-f]+ \(not guest A's memory\) into domain 1 refused as it must be: .* is not guest memory of domain 1",
];
const STEP_1: &str = r"vtd-edu \[1\] edu not assigned: DMA write to IOVA 0x4200000 blocked \(reason 0x02\); unchanged: guest A 0x3dbbe24abd022325, guest B 0xcc499aca36a22325, root table 0x[0-9a-f]{16}";
const STEP_2: &str = r"vtd-edu \[2\] edu assigned to guest A: 4 KiB pattern read from IOVA 0x4100000 and written to IOVA 0x4200000 arrived intact: checksum 0x61a142043bc48930 == 0x61a142043bc48930";
const STEP_3: &str = r"vtd-edu \[3\] DMA write to IOVA 0x[0-9a-f]+ \(guest B's memory, outside guest A\) blocked \(reason 0x05\); guest B checksum 0xcc499aca36a22325 before, 0xcc499aca36a22325 after";
const STEP_4: &str = r"vtd-edu \[4\] DMA write to IOVA 0x[0-9a-f]+ \(the hypervisor's root table of unit 0xfed90000\) blocked \(reason 0x05\); root table checksum 0x[0-9a-f]{16} before, 0x[0-9a-f]{16} after";
const STEP_5: &str = r"vtd-edu \[5\] DMA read of IOVA 0x[0-9a-f]+ \(the hypervisor's VT-d root table\) blocked \(reason 0x06\)";
const STEP_6: &str = r"vtd-edu \[6\] IOVA 0x4200000 unmapped: DMA write blocked \(reason 0x05\); page checksum 0x7da144b97d054b25 before, 0x7da144b97d054b25 after";
const STEP_7: &str = r"vtd-edu \[7\] IOVA 0x4200000 mapped again: DMA write arrived intact: checksum 0x61a142043bc48930 == 0x61a142043bc48930";
const STEP_8: &str =
    r"vtd-edu \[8\] edu unassigned: DMA write to IOVA 0x4200000 blocked again \(reason 0x02\)";
const B_UNCHANGED: &str =
    r"guest B's memory unchanged over the whole test: 0xcc499aca36a22325 == 0xcc499aca36a22325";
// Issue "VFs at work" (nvme): the PF's bring-up as QEMU 10.0.2 reports it (measured).

/// The nvme PF 02:00.0 (1b36:0010, `serial=deadbeef`, 4 VFs, 8 flexible VQ and 4 VI resources)
/// in its hypervisor-owned domain: Identify, primary capabilities, the secondary controllers, the
/// primary's flexible resources released, the FLR that applies it.
const NVME_PF: &[&str] = &[
    r"nvme: 02:00\.0 1b36:0010: secondary controllers wanted for VF 0",
    r#"iommu: created domain 1 "nvme-pf-02:00\.0": IOVA 0x10000000-0x10002fff -> HPA 0x[0-9a-f]+ \(12 KiB\)"#,
    r#"nvme: 02:00\.0: admin queues in hypervisor-owned IOMMU domain 1 "nvme-pf-02:00\.0": IOVA 0x10000000-0x10002fff -> HPA 0x[0-9a-f]+ \(3 pages: ASQ, ACQ, data\); nothing else is mapped for the PF"#,
    r#"nvme: 02:00\.0: Identify Controller: VID 0x1b36, SSVID 0x1af4, SN "deadbeef", MN "QEMU NVMe Ctrl", FR "10\.0\.2", controller ID 0x0, OACS 0x1aa, version 1\.4\.0"#,
    r"nvme: 02:00\.0: primary controller 0x0 at boot: VQ flexible 8 \(primary 0, secondaries 0, private 5, at most 2 per secondary\), VI flexible 4 \(primary 0, secondaries 0, private 4, at most 1 per secondary\)",
    r"nvme: 02:00\.0: secondary controller list: 4 controller\(s\)",
    r"nvme: 02:00\.0:   secondary controller 0x4 \(primary 0x0\): VF number 4, offline, VQ 0, VI 0",
    r"nvme: 02:00\.0: Primary Controller Flexible Allocation: the primary keeps 0 flexible VQ resources after its next reset",
    r"nvme: 02:00\.0: Primary Controller Flexible Allocation: the primary keeps 0 flexible VI resources after its next reset",
    r"nvme: 02:00\.0: function level reset done \(configuration restored; NumVFs/VF Enable cleared by the reset: 0 VF\(s\) were enabled before\)",
];

/// Forbidden in the VT-d runs: a failed self-test, lost faults, a fault found only by polling.
const VTD_FORBID: &[&str] = &[
    PANIC,
    ANY_EXCEPTION,
    r"FAIL",
    r"primary fault overflow",
    r"dropped: pending list full",
    r"reported by polling",
];

/// All scenarios, run in this order.
pub const SCENARIOS: &[Scenario] = &[
    // Issue "Foundation": bring-up on QEMU (no VMX, but VT-d and the PCIe device set).
    Scenario {
        name: "qemu-foundation",
        machine: MachineSpec::Qemu(QemuSpec {
            intremap: true,
            caching_mode: true,
            ..QemuSpec::TCG
        }),
        config: Config::File("boot/scenarios/foundation.toml"),
        guests: &[],
        expect: &[
            BANNER,
            r"usable memory: [0-9]+ MiB",
            // QEMU's `-cpu max` reports AMD under TCG.
            r"vendor (GenuineIntel|AuthenticAMD) family",
            r"VMX: not available",
            r"MADT: 1 CPU\(s\), local APIC ids \[0\]",
            r"MADT: IOAPIC id 0 at 0xfec00000, GSI base 0",
            // OVMF on q35 places ECAM at 0xb0000000 (measured).
            r"MCFG: ECAM base 0xb0000000, segment 0, buses 0-255",
            // QEMU's DMAR: 136 bytes, HAW byte 0x2f (48 bits), flags INTR_REMAP.
            r"DMAR: present at 0x[0-9a-f]+, 136 bytes, host address width 48, flags 0x1",
            r"boot complete: [0-9]+ MiB usable .* 1 CPU\(s\), VMX not available, DMAR present",
            r"CONDUIT EXIT: success",
        ],
        forbid: &[PANIC, ANY_EXCEPTION],
        end: End::Success,
        timeout_secs: 120,
    },
    // Issue "Foundation": the VMX capability report on Bochs (Tiger Lake: EPT, VPID, unrestricted guest).
    Scenario {
        name: "bochs-foundation",
        machine: MachineSpec::Bochs(BochsSpec {
            cpu_model: "tigerlake",
            ..BochsSpec::DEFAULT
        }),
        config: Config::File("boot/scenarios/foundation.toml"),
        guests: &[],
        expect: &[
            BANNER,
            r"vendor GenuineIntel family",
            // Values decoded from Bochs' tigerlake MSRs (shared/platform-notes.md).
            r"VMX: available, VMCS revision 4, region 4096 bytes, memory type WB, true controls: yes",
            r"EPT: 4-level walk, WB\+UC, 2M pages: yes, 1G pages: yes, INVEPT: yes \(single yes, all yes\), A/D: yes",
            r"VPID: yes, INVVPID: yes \(address yes, single yes, all yes",
            r"unrestricted guest: yes, preemption timer: yes \(rate: TSC >> 0\)",
            // The TRUE_* controls (proc, exit, entry) as Bochs 2.7 reports them.
            r"VMX MSRs: basic=0x1d8100000000004 pin=0x7f00000016 proc=0xfff9fffe04006172 proc2=0x2977fff00000000 exit=0x107fffff00036dfb entry=0x10ffff000011fb misc=0x600401e0",
            r"VMX MSRs: ept_vpid=0xf0106b34141 cr0_fixed0=0x80000021 cr0_fixed1=0xffffffff cr4_fixed0=0x2000 cr4_fixed1=0xf72fff",
            // OVMF under Bochs has no QEMU fw_cfg to take ACPI tables from: there are none.
            r"ACPI: no RSDP in the EBDA or BIOS area",
            r"boot complete: [0-9]+ MiB usable .*CPU count unknown \(no MADT\), VMX available, DMAR absent",
            r"CONDUIT EXIT: success",
        ],
        forbid: &[PANIC, ANY_EXCEPTION],
        end: End::Success,
        timeout_secs: 240,
    },
    // Issue "Foundation": an unmapped read must be decoded as a #PF and end the run with failure.
    Scenario {
        name: "qemu-page-fault",
        machine: MachineSpec::Qemu(QemuSpec::TCG),
        config: Config::File("boot/scenarios/page-fault.toml"),
        guests: &[],
        expect: &[
            r"selftest: reading unmapped address 0x5a5a00000000",
            r"EXCEPTION #PF \(page fault\), error code 0x0000 \(not present, read, supervisor\)",
            // The faulting read is in the kernel, which the loader maps at 0x80_0000_0000.
            r"RIP +0x0000008000[0-9a-f]{6} +CS 0x0008",
            r"RSP +0x[0-9a-f]{16} +SS",
            r"CR2 +0x00005a5a00000000",
            r"CONDUIT EXIT: failure \(code 0xe\)",
        ],
        forbid: &[PANIC, r"#DF|double fault"],
        end: End::Failure,
        timeout_secs: 120,
    },
    // Issue "Guests": five guests under VMX on Bochs (Tiger Lake): a 64-bit guest through every
    // exit it should survive, a real-mode guest (unrestricted guest), an EPT violation, a triple
    // fault and a guest whose state the VM entry checks must refuse.
    Scenario {
        name: "bochs-vmx-guests",
        machine: MachineSpec::Bochs(BochsSpec {
            cpu_model: "tigerlake",
            ..BochsSpec::DEFAULT
        }),
        config: Config::File("boot/scenarios/vmx-guests.toml"),
        expect: VMX_GUESTS_EXPECT,
        guests: VMX_GUESTS,
        forbid: GUEST_FORBID,
        end: End::Success,
        timeout_secs: 300,
    },
    // The same guests on an older VMX implementation (Skylake-X: no Tiger Lake extras).
    Scenario {
        name: "bochs-vmx-guests-skylake",
        machine: MachineSpec::Bochs(BochsSpec {
            cpu_model: "corei7_skylake_x",
            ..BochsSpec::DEFAULT
        }),
        config: Config::File("boot/scenarios/vmx-guests.toml"),
        expect: VMX_GUESTS_EXPECT,
        guests: VMX_GUESTS,
        forbid: GUEST_FORBID,
        end: End::Success,
        timeout_secs: 300,
    },
    // Issue "Guests", bad input at boot: a guest that cannot be loaded (no room for its memory on a
    // 128 MiB machine) is reported and skipped; the other guest runs to its end.
    Scenario {
        name: "bochs-guest-too-big",
        machine: MachineSpec::Bochs(BochsSpec {
            cpu_model: "tigerlake",
            extra_lines: &["memory: guest=128, host=128"],
            ..BochsSpec::DEFAULT
        }),
        config: Config::File("boot/scenarios/guest-too-big.toml"),
        expect: &[
            BANNER,
            r"usable memory: [0-9]{2,3} MiB",
            r#"guest "toobig" refused before entry: no 120 MiB of contiguous free memory"#,
            r"sched: running 1 guest\(s\) round-robin",
            r"CONDUIT EXIT: success",
        ],
        guests: &[("hello64", HELLO64)],
        forbid: GUEST_FORBID,
        end: End::Success,
        timeout_secs: 300,
    },
    // Exit path lengths: under Bochs the TSC counts instructions, so `bench64` measures how many
    // instructions a CPUID exit and an I/O exit cost (printed for scripts/bench, not judged).
    Scenario {
        name: "bochs-bench",
        machine: MachineSpec::Bochs(BochsSpec {
            cpu_model: "tigerlake",
            ..BochsSpec::DEFAULT
        }),
        config: Config::File("boot/scenarios/bench.toml"),
        expect: &[
            BANNER,
            r"config: bundle of [0-9]+ bytes, 1 guest\(s\), 1 image\(s\)",
            r"VMX: available",
            r"CONDUIT EXIT: success",
        ],
        guests: &[(
            "bench64",
            &[
                r"bench64: hello from bench64",
                r"bench64: bench: cpuid_exit_instr=[0-9]+ io_exit_instr=[0-9]+\b",
                r#"guest "bench64" exited with code 0x0\b"#,
            ],
        )],
        forbid: GUEST_FORBID,
        end: End::Success,
        timeout_secs: 300,
    },
    // Issue "VT-d DMA remapping": device assignment from conduit.toml on a machine without VMX:
    // each guest's memory and IOMMU domain (IOVA = GPA) exist, its functions are assigned, bad
    // entries are refused by name, and the vCPUs are not started.
    Scenario {
        name: "qemu-guest-assign",
        machine: MachineSpec::Qemu(QemuSpec::TCG),
        config: Config::File("boot/scenarios/guest-assign.toml"),
        guests: &[],
        expect: &[
            BANNER,
            r"config: bundle of [0-9]+ bytes, 3 guest\(s\), 1 image\(s\)",
            r"VMX: not available",
            // Domain 1 is the hypervisor's own, for the nvme PF's admin queues.
            r#"iommu: created domain 1 "nvme-pf-02:00\.0": IOVA 0x10000000-0x10002fff"#,
            // The nvme PF's VF 0: its secondary controller is brought online before any guest (crate::nvme).
            r"nvme: 02:00\.0: VF 0 \(02:00\.1\) for guest .c.: secondary controller 0x1 online with 2 VQ and 1 VI resources",
            r#"iommu: created domain 2 "a": IOVA 0x0-0xffffff -> HPA 0x[0-9a-f]+ \(16 MiB\); 4-level table"#,
            r#"iommu: assigned 00:04\.0 to domain 2 "a" on unit 0xfed90000: context entry DID 2"#,
            r#"guest "a": assigned 00:04\.0 \(1234:11e8\) in IOMMU domain 2"#,
            r#"guest "a": 16 MiB at HPA 0x[0-9a-f]+, 1 function\(s\) assigned; its vCPUs are not started because VMX is absent"#,
            r#"iommu: created domain 3 "b": IOVA 0x0-0x7fffff -> HPA 0x[0-9a-f]+ \(8 MiB\)"#,
            r#"guest "b": assigned 01:00\.0 \(01:00\.0\) in IOMMU domain 3"#,
            r#"guest "b": 00:1e\.0 not assigned: no PCI function matches 00:1e\.0"#,
            r#"guest "b": 8 MiB at HPA 0x[0-9a-f]+, 1 function\(s\) assigned"#,
            r#"iommu: created domain 4 "c": IOVA 0x0-0x3fffff"#,
            r#"guest "c": assigned 02:00\.1 \(02:00\.0 VF 0\) in IOMMU domain 4"#,
            r#"guest "c": 4 MiB at HPA 0x[0-9a-f]+, 1 function\(s\) assigned"#,
            r"CONDUIT EXIT: success",
        ],
        forbid: &[PANIC, ANY_EXCEPTION, r"DMA fault"],
        end: End::Success,
        timeout_secs: 120,
    },
    // Issue "VT-d DMA remapping", bad input: with a malformed DMAR remapping stays off and a
    // configured assignment is refused, saying why, instead of leaving the device unprotected.
    Scenario {
        name: "qemu-guest-assign-nodmar",
        machine: MachineSpec::Qemu(QemuSpec::TCG),
        config: Config::File("boot/scenarios/guest-assign-nodmar.toml"),
        guests: &[],
        expect: &[
            BANNER,
            r"DMAR: malformed table refused: structure at 48: length 4096 overruns the table \(88 bytes left\)",
            r"DMA remapping disabled: malformed DMAR",
            r#"guest "a": 1 function\(s\) not assigned: DMA remapping is off \(malformed DMAR: structure at 48: length 4096 overruns the table \(88 bytes left\)\); set \[hypervisor\] unsafe_no_iommu = true"#,
            r#"guest "a": 16 MiB at HPA 0x[0-9a-f]+, 0 function\(s\) assigned; its vCPUs are not started because VMX is absent"#,
            r"CONDUIT EXIT: success",
        ],
        forbid: &[
            PANIC,
            ANY_EXCEPTION,
            r"assigned 00:04\.0 .*in IOMMU domain",
            r"WITHOUT DMA remapping",
        ],
        end: End::Success,
        timeout_secs: 120,
    },
    // Issue "VT-d DMA remapping": PCI tree, DMAR scopes, CAP/ECAP, and the edu DMA script with
    // caching mode on (invalidate after making entries present, too) and queued invalidation.
    Scenario {
        name: "qemu-vtd-edu",
        machine: MachineSpec::Qemu(QemuSpec::TCG),
        config: Config::File("boot/scenarios/vtd-edu.toml"),
        guests: &[],
        expect: &[
            BANNER,
            PCI_TREE[0],
            PCI_TREE[1],
            PCI_TREE[2],
            PCI_TREE[3],
            PCI_TREE[4],
            PCI_TREE[5],
            PCI_TREE[6],
            PCI_TREE[7],
            PCI_TREE[8],
            PCI_TREE[9],
            PCI_TREE[10],
            PCI_TREE[11],
            PCI_TREE[12],
            PCI_TREE[13],
            PCI_TREE[14],
            PCI_TREE[15],
            DMAR_SCOPES[0],
            DMAR_SCOPES[1],
            DMAR_SCOPES[2],
            DMAR_SCOPES[3],
            DMAR_SCOPES[4],
            CAP_CM_ON,
            CAP_DECODED_CM_ON,
            ECAP_DECODED,
            ROOT_TABLE,
            r"vtd:   queued invalidation enabled: 256 descriptors at 0x[0-9a-f]+",
            r"apic: local APIC 0 in xAPIC at 0xfee00000 mode",
            FAULT_IRQ,
            TRANSLATION_ON,
            EDU_SETUP[0],
            EDU_SETUP[1],
            EDU_SETUP[2],
            EDU_SETUP[3],
            EDU_SETUP[4],
            EDU_SETUP[5],
            FAULT_NO_CONTEXT,
            STEP_1,
            r"assigned 00:04\.0 to domain 1 .A. on unit 0xfed90000: context entry DID 1, 4-level tables at 0x[0-9a-f]+; caching mode: context cache \(device, DID 0\) and IOTLB \(domain 1\) invalidated by queued invalidation",
            STEP_2,
            FAULT_WRITE,
            STEP_3,
            FAULT_WRITE,
            STEP_4,
            FAULT_READ,
            STEP_5,
            r"domain 1: unmapped IOVA 0x4200000-0x4200fff; invalidated IOTLB \(page-selective, DID 1, 0x4200000 \+ 2048 KiB\) by queued invalidation",
            FAULT_WRITE_UNMAPPED,
            STEP_6,
            r"domain 1: mapped IOVA 0x4200000-0x4200fff -> HPA 0x[0-9a-f]+; invalidated IOTLB \(page-selective, DID 1, 0x4200000 \+ 4 KiB\) by queued invalidation",
            STEP_7,
            r"unassigned 00:04\.0 from domain 1: context entry cleared; context cache \(device\) and IOTLB \(domain 1\) invalidated by queued invalidation",
            FAULT_NO_CONTEXT,
            STEP_8,
            B_UNCHANGED,
            r"selftest: vtd-edu: PASS \(8 steps\)",
            r"boot complete: .*DMAR present, DMA remapping on",
            r"CONDUIT EXIT: success",
        ],
        forbid: VTD_FORBID,
        end: End::Success,
        timeout_secs: 120,
    },
    // The same script with caching-mode=off: no invalidation after making entries present.
    Scenario {
        name: "qemu-vtd-edu-cm-off",
        machine: MachineSpec::Qemu(QemuSpec {
            caching_mode: false,
            ..QemuSpec::TCG
        }),
        config: Config::File("boot/scenarios/vtd-edu.toml"),
        guests: &[],
        expect: &[
            BANNER,
            CAP_CM_OFF,
            CAP_DECODED_CM_OFF,
            ECAP_DECODED,
            ROOT_TABLE,
            r"vtd:   queued invalidation enabled",
            FAULT_IRQ,
            TRANSLATION_ON,
            EDU_SETUP[0],
            EDU_SETUP[5],
            FAULT_NO_CONTEXT,
            STEP_1,
            r"assigned 00:04\.0 to domain 1 .A. on unit 0xfed90000: context entry DID 1, 4-level tables at 0x[0-9a-f]+\s*$",
            STEP_2,
            FAULT_WRITE,
            STEP_3,
            FAULT_WRITE,
            STEP_4,
            FAULT_READ,
            STEP_5,
            r"domain 1: unmapped IOVA 0x4200000-0x4200fff; invalidated IOTLB \(page-selective, DID 1, 0x4200000 \+ 2048 KiB\) by queued invalidation",
            FAULT_WRITE_UNMAPPED,
            STEP_6,
            r"domain 1: mapped IOVA 0x4200000-0x4200fff -> HPA 0x[0-9a-f]+; no invalidation needed \(CAP\.CM = 0\)",
            STEP_7,
            r"unassigned 00:04\.0 from domain 1: .* invalidated by queued invalidation",
            FAULT_NO_CONTEXT,
            STEP_8,
            B_UNCHANGED,
            r"selftest: vtd-edu: PASS \(8 steps\)",
            r"CONDUIT EXIT: success",
        ],
        forbid: VTD_FORBID,
        end: End::Success,
        timeout_secs: 120,
    },
    // The same script with register-based invalidation (the path of units with ECAP.QI = 0).
    Scenario {
        name: "qemu-vtd-edu-reginv",
        machine: MachineSpec::Qemu(QemuSpec::TCG),
        config: Config::File("boot/scenarios/vtd-edu-reginv.toml"),
        guests: &[],
        expect: &[
            BANNER,
            CAP_CM_ON,
            ROOT_TABLE,
            r"vtd:   queued invalidation supported but not used \(register-based by request\)",
            TRANSLATION_ON,
            FAULT_NO_CONTEXT,
            STEP_1,
            r"assigned 00:04\.0 to domain 1 .*invalidated by register-based invalidation",
            STEP_2,
            STEP_3,
            STEP_4,
            STEP_5,
            r"domain 1: unmapped IOVA 0x4200000-0x4200fff; invalidated IOTLB \(page-selective, DID 1, 0x4200000 \+ 2048 KiB\) by register-based invalidation",
            STEP_6,
            r"domain 1: mapped IOVA 0x4200000-0x4200fff -> HPA 0x[0-9a-f]+; invalidated IOTLB \(page-selective, DID 1, 0x4200000 \+ 4 KiB\) by register-based invalidation",
            STEP_7,
            r"unassigned 00:04\.0 from domain 1: .* invalidated by register-based invalidation",
            STEP_8,
            B_UNCHANGED,
            r"selftest: vtd-edu-reginv: PASS \(8 steps\)",
            r"CONDUIT EXIT: success",
        ],
        forbid: &[
            PANIC,
            ANY_EXCEPTION,
            r"FAIL",
            r"by queued invalidation",
            r"reported by polling",
        ],
        end: End::Success,
        timeout_secs: 120,
    },
    // Issue "VFs at work" (nvme): the PF's secondary controllers brought online by the hypervisor
    // (the PF's admin queues in its own IOMMU domain), a VF's admin queue in guest A's memory
    // (Identify lands there), transfers outside guest A blocked with the VF's BDF.
    Scenario {
        name: "qemu-nvme-vf",
        machine: MachineSpec::Qemu(QemuSpec::TCG),
        config: Config::File("boot/scenarios/nvme-vf.toml"),
        guests: &[],
        expect: &[
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
            r"nvme: 02:00\.0: 2 VF\(s\) enabled \(NumVFs 2, VF BAR0 0x[0-9a-f]+, 16 KiB per VF\), VF Enable and VF MSE set after the FLR",
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
            r"boot complete: .*DMA remapping on",
            r"CONDUIT EXIT: success",
        ],
        forbid: &[
            PANIC,
            ANY_EXCEPTION,
            r"FAIL",
            r"cannot be brought online",
            r"not assigned",
            r"reported by polling",
            r"primary fault overflow",
            // Only the VF, and only where the script aims it, may fault.
            r"DMA fault on unit 0xfed90000: source (0[0-13-9]|02:00\.[02-7])",
        ],
        end: End::Success,
        timeout_secs: 180,
    },
    // The same, bad input: VF 0 addressed with a controller ID the PF does not list, VF 1 asking
    // for more VQ resources than a secondary may have (test-only breaks); both are reported with
    // the NVMe status decoded and stay unassigned, VF 2 comes online, VF 9 (of 4) is refused by
    // index, the boot goes on.
    Scenario {
        name: "qemu-nvme-vf-bad",
        machine: MachineSpec::Qemu(QemuSpec::TCG),
        config: Config::File("boot/scenarios/nvme-vf-bad.toml"),
        guests: &[],
        expect: &[
            BANNER,
            NVME_PF[0],
            r#"nvme: 02:00\.0: VF 9 for guest "d" cannot be brought online: VF index 9 is not below the PF's TotalVFs 4; it stays unassigned"#,
            NVME_PF[3],
            NVME_PF[9],
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
            r#"guest "a": 02:00\.0 VF 0 not assigned: VF 0 of 02:00\.0 is not online: .*"Invalid Controller Identifier""#,
            r#"guest "a": 4 MiB at HPA 0x[0-9a-f]+, 0 function\(s\) assigned"#,
            r#"guest "b": 02:00\.0 VF 1 not assigned: VF 1 of 02:00\.0 is not online: .*"Invalid Number of Controller Resources""#,
            r#"guest "b": 4 MiB at HPA 0x[0-9a-f]+, 0 function\(s\) assigned"#,
            r#"guest "c": assigned 02:00\.3 \(02:00\.0 VF 2\) in IOMMU domain 4"#,
            r#"guest "c": 4 MiB at HPA 0x[0-9a-f]+, 1 function\(s\) assigned"#,
            r#"guest "d": 02:00\.0 VF 9 not assigned: VF 9 of 02:00\.0 is not online: VF index 9 is not below the PF's TotalVFs 4"#,
            r#"guest "d": 4 MiB at HPA 0x[0-9a-f]+, 0 function\(s\) assigned"#,
            r"selftest: nvme-vf-bad: 3 VF\(s\) refused, 1 online and assigned",
            r"selftest: nvme-vf-bad: PASS",
            r"boot complete: ",
            r"CONDUIT EXIT: success",
        ],
        forbid: &[
            PANIC,
            ANY_EXCEPTION,
            r"FAIL",
            r"assigned 02:00\.[12] ",
            r"DMA fault",
        ],
        end: End::Success,
        timeout_secs: 180,
    },
    // A malformed DMAR is refused with the parser's reason; remapping stays off and assigning
    // edu is refused rather than done unprotected.
    Scenario {
        name: "qemu-dmar-corrupt",
        machine: MachineSpec::Qemu(QemuSpec::TCG),
        config: Config::File("boot/scenarios/dmar-corrupt.toml"),
        guests: &[],
        expect: &[
            BANNER,
            r"selftest: dmar-corrupt: parsing a copy of the DMAR whose first structure has Length 0x1000 \(136 bytes in the table; checksum fixed\)",
            r"DMAR: malformed table refused: structure at 48: length 4096 overruns the table \(88 bytes left\)",
            r"iommu: DMA remapping disabled: malformed DMAR: structure at 48: length 4096 overruns the table \(88 bytes left\); every device assignment will be refused",
            r"selftest: dmar-corrupt: DMA remapping is off: malformed DMAR",
            r"iommu: refusing to assign 00:04\.0 to domain 1: DMA remapping is disabled \(malformed DMAR: structure at 48: length 4096 overruns the table \(88 bytes left\)\): the device would DMA unprotected",
            r"selftest: dmar-corrupt: assignment of 00:04\.0 \(1234:11e8\) to domain 1 refused",
            r"selftest: dmar-corrupt: PASS",
            r"boot complete: .*DMAR present, DMA remapping off",
            r"CONDUIT EXIT: success",
        ],
        forbid: &[
            PANIC,
            ANY_EXCEPTION,
            r"FAIL",
            r"vtd: remapping unit at",
            r"DMA remapping enabled",
            r"iommu: assigned",
        ],
        end: End::Success,
        timeout_secs: 120,
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::Monitor;
    use conduit_config::ExitMethod;
    use conduit_config::toml_front::{self, Document};
    use std::path::{Path, PathBuf};

    fn root() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap_or(Path::new("."))
    }

    /// The scenario's configuration, parsed (without reading images), and its directory.
    fn document(s: &Scenario) -> (Document, PathBuf) {
        let (text, dir) = match s.config {
            Config::File(rel) => (
                std::fs::read_to_string(root().join(rel))
                    .unwrap_or_else(|e| panic!("{}: {rel}: {e}", s.name)),
                root()
                    .join(rel)
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default(),
            ),
            Config::Inline(t) => (t.to_string(), root().to_path_buf()),
        };
        let doc = toml_front::parse(&text, ExitMethod::Halt)
            .unwrap_or_else(|e| panic!("{}: {e}", s.name));
        (doc, dir)
    }

    /// The `[[bin]]` names of guest/Cargo.toml.
    fn guest_bins() -> Vec<String> {
        let manifest =
            std::fs::read_to_string(root().join("guest/Cargo.toml")).expect("guest manifest");
        let mut bins = Vec::new();
        let mut in_bin = false;
        for line in manifest.lines().map(str::trim) {
            if line.starts_with('[') {
                in_bin = line == "[[bin]]";
            } else if in_bin && let Some(v) = line.strip_prefix("name = ") {
                bins.push(v.trim_matches('"').to_string());
            }
        }
        bins
    }

    /// Every image a configuration names must be a test guest's build output, so that
    /// `cargo build -p conduit-guest --release` is all a boot test needs.
    fn images_are_test_guests(what: &str, doc: &Document, dir: &Path) {
        let bins = guest_bins();
        let out = root().join("target/x86_64-unknown-none/release");
        for key in doc.image_keys() {
            let path = dir.join(key);
            let normal: PathBuf = path.components().fold(PathBuf::new(), |mut p, c| {
                match c {
                    std::path::Component::ParentDir => {
                        p.pop();
                    }
                    std::path::Component::CurDir => {}
                    other => p.push(other),
                }
                p
            });
            let bin = normal
                .strip_prefix(&out)
                .unwrap_or_else(|_| panic!("{what}: image {key} is not in {}", out.display()));
            let bin = bin.to_string_lossy().to_string();
            assert!(
                bins.contains(&bin),
                "{what}: image {key}: no [[bin]] {bin} in guest/Cargo.toml ({bins:?})"
            );
        }
    }

    #[test]
    fn names_are_unique_and_usable_as_file_names() {
        for (i, s) in SCENARIOS.iter().enumerate() {
            assert!(
                !s.name.is_empty()
                    && s.name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "bad name {:?}",
                s.name
            );
            assert!(
                SCENARIOS[..i].iter().all(|o| o.name != s.name),
                "duplicate {}",
                s.name
            );
        }
    }

    #[test]
    fn every_pattern_compiles_and_every_config_validates() {
        for s in SCENARIOS {
            Monitor::with_sequences(s.expect, s.guests, s.forbid)
                .unwrap_or_else(|e| panic!("{}: {e}", s.name));
            let (doc, dir) = document(s);
            images_are_test_guests(s.name, &doc, &dir);
            for (guest, _) in s.guests {
                assert!(
                    doc.guests.iter().any(|g| g.name == *guest),
                    "{}: expectations for guest {guest}, which the configuration does not have",
                    s.name
                );
            }
            assert!(s.timeout_secs > 0, "{}: zero timeout", s.name);
        }
    }

    #[test]
    fn the_default_configuration_runs_test_guests() {
        let text = std::fs::read_to_string(root().join("conduit.toml")).expect("conduit.toml");
        let doc = toml_front::parse(&text, ExitMethod::Halt).expect("conduit.toml is valid");
        let names: Vec<&str> = doc.guests.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["hello64", "real16"]);
        images_are_test_guests("conduit.toml", &doc, root());
    }

    #[test]
    fn the_guest_scenarios_are_listed() {
        for name in [
            "bochs-vmx-guests",
            "bochs-vmx-guests-skylake",
            "bochs-bench",
        ] {
            let s = SCENARIOS.iter().find(|s| s.name == name).expect(name);
            assert_eq!(s.machine.kind(), crate::machine::MachineKind::Bochs);
        }
    }

    #[test]
    fn expectations_reach_the_end_marker_and_no_expectation_is_forbidden() {
        for s in SCENARIOS {
            let last = s.expect.last().copied().unwrap_or_default();
            assert!(
                last.starts_with("CONDUIT EXIT"),
                "{}: last expectation {last:?}",
                s.name
            );
            let mut sample = Monitor::new(&[], s.forbid).expect("valid");
            // The expectation patterns themselves, read as text, must not trip the forbidden ones.
            let guest_patterns = s.guests.iter().flat_map(|(_, p)| p.iter());
            for e in s.expect.iter().chain(guest_patterns) {
                sample.feed(e.replace('\\', "").as_bytes());
                sample.feed(b"\n");
            }
            assert_eq!(sample.forbidden_problem(), None, "{}", s.name);
        }
    }
}
