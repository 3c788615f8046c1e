//! The foundation's scenarios: bring-up on QEMU and the VMX capability report on Bochs.

use super::{ANY_EXCEPTION, BANNER, Config, PANIC, Scenario};
use crate::expect::End;
use crate::machine::{BochsSpec, MachineSpec, QemuSpec};

/// Issue "Foundation": bring-up on QEMU (no VMX, but VT-d and the PCIe device set).
pub(super) const QEMU_FOUNDATION: Scenario = Scenario {
    name: "qemu-foundation",
    machine: MachineSpec::Qemu(QemuSpec {
        intremap: true,
        caching_mode: true,
        ..QemuSpec::TCG
    }),
    config: Config::File("boot/scenarios/foundation.toml"),
    guests: &[],
    expect: &[
        // Issue 17: COM1 at 115200 8N1, read back (early console, then chosen: no SPCR).
        r"console: COM1 at port 0x3f8, 115200 8N1 \(divisor 1, read back\) \(the early console",
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
        r"SPCR: not present",
        // The one TSC rate, measured against the FADT's PM timer (`-cpu max` under TCG has no
        // CPUID leaf 0x15 or 0x16); the harness checks every figure derived from it (`tsc`).
        r"time: TSC [1-9][0-9]*\.[0-9]{3} MHz \(measured against the ACPI PM timer at port 0x608, median of 3 windows of 10 ms; CPUID reports no TSC frequency\)",
        r#"console: COM1 at port 0x3f8, 115200 8N1 \(divisor 1, read back\); chosen because conduit.toml console = "auto", and the firmware has no ACPI SPCR or DBG2 table"#,
        r"apic: timer: [1-9][0-9]* counts/ms \(divide by 16, measured over 10 ms = [1-9][0-9]* TSC ticks at [1-9][0-9]*\.[0-9]{3} MHz\)",
        r"boot complete: [0-9]+ MiB usable .* 1 CPU\(s\), VMX not available, DMAR present",
        r"CONDUIT EXIT: success",
    ],
    forbid: &[PANIC, ANY_EXCEPTION],
    input: &[],
    end: End::Success,
    timeout_secs: 120,
};

/// Issue "Foundation": the VMX capability report on Bochs (Tiger Lake: EPT, VPID, unrestricted guest).
pub(super) const BOCHS_FOUNDATION: Scenario = Scenario {
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
        // Values decoded from Bochs' tigerlake MSRs (`docs/platforms.md`).
        r"VMX: available, VMCS revision 4, region 4096 bytes, memory type WB, true controls: yes",
        r"EPT: 4-level walk, WB\+UC, 2M pages: yes, 1G pages: yes, INVEPT: yes \(single yes, all yes\), A/D: yes",
        r"VPID: yes, INVVPID: yes \(address yes, single yes, all yes",
        r"unrestricted guest: yes, preemption timer: yes \(rate: TSC >> 0\)",
        // The TRUE_* controls (proc, exit, entry) as Bochs 2.7 reports them.
        r"VMX MSRs: basic=0x1d8100000000004 pin=0x7f00000016 proc=0xfff9fffe04006172 proc2=0x2977fff00000000 exit=0x107fffff00036dfb entry=0x10ffff000011fb misc=0x600401e0",
        r"VMX MSRs: ept_vpid=0xf0106b34141 cr0_fixed0=0x80000021 cr0_fixed1=0xffffffff cr4_fixed0=0x2000 cr4_fixed1=0xf72fff",
        // OVMF under Bochs has no QEMU fw_cfg to take ACPI tables from: there are none.
        r"ACPI: no RSDP in the EBDA or BIOS area",
        // The one TSC rate: Bochs' TSC counts instructions (ips=50000000), 50 MHz within 1 %,
        // measured against the 8254 (no ACPI tables, so no PM timer); CPUID 0x15 of the Tiger
        // Lake model claims 2419.2 MHz and is ignored.
        r"time: TSC (49\.[5-9][0-9]{2}|50\.[0-4][0-9]{2}|50\.500) MHz \(measured against the 8254's channel 2, median of 3 windows of 10 ms; CPUID 0x15 claims 2419\.200 MHz: ignored \([0-9]+\.[0-9]{2} % off\)\)",
        r"boot complete: [0-9]+ MiB usable .*CPU count unknown \(no MADT\), VMX available, DMAR absent",
        r"CONDUIT EXIT: success",
    ],
    forbid: &[PANIC, ANY_EXCEPTION],
    input: &[],
    end: End::Success,
    timeout_secs: 240,
};
