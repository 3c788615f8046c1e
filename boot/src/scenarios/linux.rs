//! Issue 13, Must-show 1-3: Debian's stock kernel, unmodified, in two Conduit guests next to
//! `hello64` on Bochs `tigerlake` (`boot/scenarios/linux.toml`, `docs/linux-guests.md`).
//!
//! - `linux` boots to the busybox shell of `initramfs.cpio.gz` with `console=ttyS0` and nothing
//!   else. At its `/init` the harness types `vms` (the boot's exits by reason), waits until
//!   `linux-panic` is done, attaches the console and types into Linux's shell: `/proc/interrupts`
//!   twice around `sleep 2`, the `hypervisor` and `vmx` flags of `/proc/cpuinfo`, the PCI devices
//!   Linux sees (two: the e1000 and the UHCI on its line), the e1000 brought up by Linux's own driver (issue 14, Must-show
//!   1: `insmod`, a DHCP lease from Bochs' `vnet`, `ping -c 3` to its host between two `vms`, the
//!   `eth0` line of `/proc/interrupts` against Conduit's count), an idle `sleep 10` bracketed by
//!   two `vms` (detached with Ctrl-] in between), and `poweroff -f`.
//! - `linux` has Bochs' e1000 assigned without an IOMMU, its BARs pre-assigned in the guest's BAR
//!   window and its RAM identity-placed at host 512 MiB (`docs/linux-guests.md`, "Assigned
//!   devices in Linux guests").
//! - `linux-panic` crashes at its `/init` (sysrq), reboots after `panic=1` through a reset path,
//!   is restarted once from its image (`on_crash = "restart"`, `max_restarts = 1`), crashes again
//!   and is stopped with the reason.
//!
//! - `hello64` runs to its end while both kernels boot, before their consoles print anything
//!   (Linux logs nothing until its 8250 console registers); the harness restarts it when
//!   `linux-panic`'s second boot starts printing, so that its output interleaves with Linux's.
//!
//! The interactive part runs only once `linux-panic` has stopped and `hello64` has exited: while
//! attached, Linux's output goes to the console raw, and another guest's log line could land in
//! the middle of one of its lines. The figures the expectations cannot compute (Linux's TSC rate
//! against Conduit's, the timer count rising, exits per second at idle, instructions to `/init`)
//! are checked and printed by [`crate::linux_log`].

use super::guests::HELLO64;
use super::{BANNER, Config, Scenario};
use crate::expect::End;
use crate::machine::{BochsSpec, MachineSpec};
use crate::script::{Input, Step};

/// Bochs' e1000 (82540EM, 8086:100e, INTx only) in slot 2 on its built-in `vnet` network: a
/// server at 192.168.10.1 that answers ARP, ICMP echo and DHCP (no host networking).
const BOCHS_E1000_VNET: &[&str] = &[
    "pci: enabled=1, chipset=i440fx, slot1=pcivga, slot2=e1000",
    "e1000: enabled=1, mac=52:54:00:12:34:56, ethmod=vnet",
];

/// Ctrl-]: detaches the console from the guest (`console <guest>` on the debug shell).
const DETACH: &[u8] = &[0x1d];

/// What the harness types. Commands typed into Linux end with an `echo` whose output differs
/// from its echoed command line (`$((…))` is expanded), so a step waits for the command's end.
const INPUT: &[Step] = &[
    // At /init: the exits of the whole boot, by reason.
    Step::line(r"linux: conduit-initramfs: ready", "vms"),
    // hello64 again while linux-panic's second boot prints (see the module doc).
    Step::line(
        r"linux-panic: \[ *[0-9]+\.[0-9]+\] Linux version",
        "restart hello64",
    ),
    // The interactive part once linux-panic has stopped (see the module doc).
    Step::line(r#"guest "linux-panic" stopped: "#, "console linux"),
    Step::line(
        r"^console: attached to linux's serial port",
        "cat /proc/interrupts; echo IRQ-$((0+1))",
    ),
    Step::line(
        r"^IRQ-1$",
        "sleep 2; cat /proc/interrupts; echo IRQ-$((1+1))",
    ),
    Step::line(r"^IRQ-2$", "echo HV=$(grep -c hypervisor /proc/cpuinfo)"),
    Step::line(r"^HV=", "echo VMX=$(grep -c vmx /proc/cpuinfo)"),
    Step::line(r"^VMX=", "ls /sys/bus/pci/devices; echo LS-$((2+1))"),
    Step::line(
        r"^LS-3$",
        "echo PCI=$(ls /sys/bus/pci/devices | wc -l) BUS=$(ls /sys/class/pci_bus)",
    ),
    // Issue 14, Must-show 1: Linux's e1000 driver on the assigned e1000, a DHCP lease from
    // Bochs' vnet, three pings to its host.
    Step::line(
        r"^PCI=",
        "insmod /lib/modules/e1000.ko && ip link set eth0 up && sleep 3; echo NET-$((3+1))",
    ),
    Step::line(
        r"^NET-4$",
        "udhcpc -i eth0 -n -q -t 5 -T 3; echo DHCP-$((4+1))",
    ),
    // The ping runs detached, between two `vms` (the exits it causes, by reason); Linux's count
    // of the e1000's interrupts right before the second `vms`, whose count of the device
    // interrupts routed to the guest it must agree with (`linux_log`).
    Step::line(
        r"^DHCP-5$",
        "echo PING-START; sleep 2; ping -c 3 192.168.10.1; grep eth0 /proc/interrupts; echo PING-$((5+1))",
    ),
    Step {
        wait: r"^PING-START$",
        send: Input::Raw(DETACH),
    },
    Step::line(r"^console: detached from linux", "vms"),
    Step::line(r"linux: PING-6$", "vms"),
    Step::line(r"^    device interrupts routed to it: ", "console linux"),
    // Idle: the first uptime, detach, `vms`; Linux sleeps 10 s (its output is logged as lines
    // while detached); after its second uptime, `vms` again.
    Step::line(
        r"^console: attached to linux's serial port",
        "cat /proc/uptime; sleep 10; cat /proc/uptime; echo IDLE-$((6*7))",
    ),
    Step {
        wait: r"^[0-9]+\.[0-9]{2} [0-9]+\.[0-9]{2}$",
        send: Input::Raw(DETACH),
    },
    Step::line(r"^console: detached from linux", "vms"),
    Step::line(r"linux: IDLE-42$", "vms"),
    Step::line(r"^  hello64: ", "console linux"),
    Step::line(r"^console: attached to linux's serial port", "poweroff -f"),
];

/// The main sequence: the hypervisor's account, the shell, and Linux's shell while attached.
const EXPECT: &[&str] = &[
    BANNER,
    r"config: bundle of [0-9]+ bytes, 3 guest\(s\)",
    // Issue 14: `linux`'s identity-placed RAM, claimed before anything else allocates.
    r#"guest "linux": host \[0x20000000, 0x2c000000\) reserved for its identity-placed RAM"#,
    r"VMX: available",
    r"time: TSC [0-9]+\.[0-9]{3} MHz \(measured",
    r#"guest "linux": 192 MiB at host 0x20000000, EPTP"#,
    // The e1000 assigned without an IOMMU (the warning stays), its BARs as firmware leaves them.
    r#"guest "linux": assigned 00:03\.0 .*WITHOUT DMA remapping \(unsafe_no_iommu\): it can reach all memory"#,
    r#"guest "linux": BAR0 of 00:01\.0 starts at 0xc0000000 \(as firmware leaves it\)"#,
    r#"guest "linux": BAR1 of 00:01\.0 starts at 0xc000 \(as firmware leaves it\)"#,
    // The UHCI that shares the e1000's line (see linux.toml): its 32 ports right after.
    r#"guest "linux": BAR4 of 00:02\.0 starts at 0xc040 \(as firmware leaves it\)"#,
    r#"guest "linux-panic": 128 MiB at host 0x[0-9a-f]+, EPTP"#,
    r"sched: running 3 guest\(s\) round-robin",
    // `linux`'s clocksource: the TSC, kept. Here rather than among its boot lines, whose order
    // around it depends on whether the kernel trusts the TSC at once.
    r"linux: \[ *[0-9]+\.[0-9]+\] clocksource: Switched to clocksource tsc$",
    // Must-show 2: at /init, the exits of the boot.
    r"linux: conduit-initramfs: ready \(6\.1\.",
    r"conduit> vms$",
    r"^3 guest\(s\), [1-3] runnable, 0 not created; TSC ",
    r"^  linux: [^;]+; 192 MiB at host 0x[0-9a-f]+, VPID [0-9]+, [0-9]+\.[0-9]{3} ms in guest$",
    r"^    exits: [1-9][0-9]* \(",
    // hello64 ran to its end while the Linux guests booted (its own sequence); run again, its
    // output interleaves with linux-panic's second boot.
    r"conduit> restart hello64$",
    r#"guest "hello64" restarted from its image \(restart 1\)"#,
    r"hello64: hello from hello64",
    r"linux-panic: \[ *[0-9]+\.[0-9]+\] ",
    r#"guest "hello64" exited with code 0x64"#,
    // Must-show 3 (the details in the `linux-panic` sequence): stopped at its second crash.
    r#"guest "linux-panic" stopped: reset through .*; not restarted: 1 restart\(s\) already \(on_crash = "restart", max_restarts = 1\)"#,
    r"conduit> console linux$",
    r"^console: attached to linux's serial port \(Ctrl-\] returns to the shell\)$",
    // Linux's shell, raw on the console: the UART's interrupt through the I/O APIC's pin 4, and
    // the local APIC timer counts (compared in `linux_log`).
    r"^ *24: +[1-9][0-9]* +IO-APIC +4-edge +ttyS0$",
    r"^ *LOC: +[0-9]+ +Local timer interrupts$",
    r"^IRQ-1$",
    r"^ *LOC: +[0-9]+ +Local timer interrupts$",
    r"^IRQ-2$",
    // A hypervisor, and no VMX.
    r"^HV=[1-9][0-9]*$",
    r"^VMX=0$",
    // The PCI functions Linux found: exactly the guest's virtual functions, none here; the root
    // bus of its ACPI tables was scanned.
    r"^LS-3$",
    r"^PCI=2 BUS=0000:00$",
    // Issue 14, Must-show 1. The driver turns decode on: the BARs are mapped where Linux found
    // them (hypervisor lines may land inside Linux's raw output: not anchored).
    r#"guest "linux": BAR0 of 00:01\.0 \(00:03\.0\) mapped: GPA 0xc0000000-0xc001ffff -> HPA 0x[0-9a-f]+ \(128 KiB, uncached, no exits\)"#,
    r#"guest "linux": I/O BAR1 of 00:01\.0 \(00:03\.0\) at ports 0xc000-0xc03f"#,
    r"e1000 0000:00:01\.0 eth0: \(PCI:33MHz:32-bit\) 52:54:00:12:34:56",
    r"e1000: eth0 NIC Link is Up 1000 Mbps Full Duplex",
    r"^NET-4$",
    r"^udhcpc: lease of 192\.168\.10\.15 obtained from 192\.168\.10\.1",
    r"^udhcpc-script: bound eth0 192\.168\.10\.15/24 router ",
    r"^DHCP-5$",
    r"^PING-START$",
    r"^console: detached from linux; back in the shell$",
    r"conduit> vms$",
    r"^  linux: [^;]+; 192 MiB at host",
    r"^    exits: [1-9][0-9]* \(",
    r"linux: 64 bytes from 192\.168\.10\.1: seq=0 ",
    r"linux: 64 bytes from 192\.168\.10\.1: seq=1 ",
    r"linux: 64 bytes from 192\.168\.10\.1: seq=2 ",
    r"linux: 3 packets transmitted, 3 packets received, 0% packet loss",
    // The e1000's INTx: virtual device 1, INTA#, on the guest's I/O APIC input 17.
    r"linux: +[0-9]+: +[1-9][0-9]* +IO-APIC +17-fasteoi +eth0$",
    r"linux: PING-6$",
    r"conduit> vms$",
    r"^  linux: [^;]+; 192 MiB at host",
    r"^    exits: [1-9][0-9]* \(",
    r"^    device interrupts routed to it: [1-9][0-9]*$",
    r"conduit> console linux$",
    r"^console: attached to linux's serial port",
    // Idle: uptime, detached, `vms`, uptime 10 s later (logged), `vms`.
    r"^[0-9]+\.[0-9]{2} [0-9]+\.[0-9]{2}$",
    r"^console: detached from linux; back in the shell$",
    r"conduit> vms$",
    r"^  linux: [^;]+; 192 MiB at host",
    r"^    exits: [1-9][0-9]* \(",
    // (Linux's earlier prompt may precede it on the logged line.)
    r"linux: (.*[^0-9.])?[0-9]+\.[0-9]{2} [0-9]+\.[0-9]{2}$",
    r"linux: IDLE-42$",
    r"conduit> vms$",
    r"^3 guest\(s\), 1 runnable, 0 not created; TSC ",
    r"^  linux: [^;]+; 192 MiB at host",
    r"^    exits: [1-9][0-9]* \(",
    r#"^  linux-panic: stopped \(reset through .*\); 128 MiB at host 0x[0-9a-f]+, VPID [0-9]+, [0-9]+\.[0-9]{3} ms in guest, restarted 1 time\(s\)$"#,
    r"^  hello64: exited with code 0x64; 4 MiB at host 0x[0-9a-f]+, VPID [0-9]+, [0-9]+\.[0-9]{3} ms in guest, restarted 1 time\(s\)$",
    // Linux still answers after the other guests ended; `poweroff -f` ends it through ACPI S5.
    r"conduit> console linux$",
    r"^console: attached to linux's serial port",
    r#"guest "linux" powered off \(ACPI S5 through the sleep control register\)"#,
    r"console: linux is stopped \(powered off \(ACPI S5 through the sleep control register\)\); back in the shell",
    r"sched: every guest has finished",
    r#"guest "linux": stopped \(powered off \(ACPI S5 through the sleep control register\)\); [1-9][0-9]* exits"#,
    r#"guest "linux-panic": stopped \(reset through .*not restarted: 1 restart\(s\) already"#,
    r#"guest "hello64": exited with code 0x64; [1-9][0-9]* exits"#,
    r"CONDUIT EXIT: success",
];

/// `linux`'s boot, logged line by line under its name (Must-show 1), in order.
const LINUX_BOOT: &[&str] = &[
    r"linux: \[ *[0-9]+\.[0-9]+\] Linux version 6\.1\.",
    // Unmodified, and no parameter besides the console.
    r"linux: \[ *[0-9]+\.[0-9]+\] Command line: console=ttyS0$",
    // Issue 14: the identity-placed RAM above the translated low MiB.
    r"linux: \[ *[0-9]+\.[0-9]+\] BIOS-e820: \[mem 0x0000000020100000-0x000000002bffffff\] usable$",
    // The rate is compared with Conduit's in `linux_log`.
    r"linux: \[ *[0-9]+\.[0-9]+\] tsc: Detected [0-9]+\.[0-9]{3} MHz",
    r"linux: \[ *[0-9]+\.[0-9]+\] IOAPIC\[0\]: apic_id 0, version 32, address 0xfec00000, GSI 0-23$",
    r"linux: \[ *[0-9]+\.[0-9]+\] ACPI: Using ACPI \(MADT\) for SMP configuration information$",
    // XSAVE: Linux 6.1.1xx sets the FPU up after the MADT was read (arch_cpu_finalize_init).
    r"linux: \[ *[0-9]+\.[0-9]+\] x86/fpu: Enabled xstate features 0x[0-9a-f]+, context size is [0-9]+ bytes",
    // Issue 14: the BAR window of PCI0's _CRS, and the e1000's BARs as firmware left them.
    r"linux: \[ *[0-9]+\.[0-9]+\] pci_bus 0000:00: root bus resource \[mem 0xc0000000-0xdfffffff window\]$",
    r"linux: \[ *[0-9]+\.[0-9]+\] pci 0000:00:01\.0: \[8086:100e\] type 00 class 0x020000$",
    r"linux: \[ *[0-9]+\.[0-9]+\] pci 0000:00:01\.0: BAR 0 \[mem 0xc0000000-0xc001ffff\]$",
    r"linux: \[ *[0-9]+\.[0-9]+\] pci 0000:00:01\.0: BAR 1 \[io +0xc000-0xc03f\]$",
    // The 16550A on I/O APIC pin 4 (GSI 4). On a hardware-reduced ACPI platform Linux has no
    // legacy PIC and so no legacy IRQ numbers: GSI 4 gets the first dynamic IRQ number after the
    // I/O APIC's 24 GSIs (docs/virtual-platform.md); /proc/interrupts below shows the pin.
    r"linux: \[ *[0-9]+\.[0-9]+\] .*ttyS0 at I/O 0x3f8 \(irq = 24, base_baud = 115200\) is a 16550A$",
    r"linux: \[ *[0-9]+\.[0-9]+\] Run /init as init process$",
    r"linux: conduit-initramfs: ready",
];

/// `linux-panic` (Must-show 3): two boots, two crashes, one restart, then stopped.
const LINUX_PANIC: &[&str] = &[
    r"linux-panic: \[ *[0-9]+\.[0-9]+\] Linux version 6\.1\.",
    r"linux-panic: \[ *[0-9]+\.[0-9]+\] Command line: console=ttyS0 panic=1$",
    r"linux-panic: \[ *[0-9]+\.[0-9]+\] Run /init as init process$",
    r"linux-panic: conduit-initramfs: panic test",
    r"linux-panic: \[ *[0-9]+\.[0-9]+\] Kernel panic - not syncing: sysrq triggered crash$",
    r"linux-panic: \[ *[0-9]+\.[0-9]+\] Rebooting in 1 seconds",
    r#"guest "linux-panic": reset through "#,
    r#"guest "linux-panic" restarted from its image \(restart 1\)"#,
    r"linux-panic: \[ *[0-9]+\.[0-9]+\] Linux version 6\.1\.",
    r"linux-panic: \[ *[0-9]+\.[0-9]+\] Run /init as init process$",
    r"linux-panic: \[ *[0-9]+\.[0-9]+\] Kernel panic - not syncing: sysrq triggered crash$",
    r"linux-panic: \[ *[0-9]+\.[0-9]+\] Rebooting in 1 seconds",
    r#"guest "linux-panic": reset through "#,
    r#"guest "linux-panic" stopped: reset through "#,
];

/// Never seen: a failed self-check of hello64, a problem in `linux`'s kernel log, a
/// guest stopped by the hypervisor other than `linux-panic`, a crash of Conduit's shell input.
const FORBID: &[&str] = &[
    super::PANIC,
    super::ANY_EXCEPTION,
    r"self-check failed",
    r"linux: .*(Kernel panic|BUG:|Oops|WARNING:|Call Trace)",
    r"linux: .*Marking clocksource 'tsc' as unstable",
    // Linux keeps the BARs it found (no reassignment).
    r"pci 0000:00:01\.0: BAR [0-9]+ .*(assigned|no space|failed)",
    r#"guest "(linux|hello64)" stopped"#,
    // linux-panic stopped for anything but a reset ("reset through ...") or a triple fault: a
    // reset path the hypervisor missed (the run stops here instead of at its timeout).
    r#"guest "linux-panic" stopped: ([^rt]|r[^e]|t[^r])"#,
    r#"guest "linux": reset"#,
    r"restarted from its image \(restart 2\)",
];

/// `bochs-linux`: the whole of Must-show 1-3 in one boot.
pub(super) const BOCHS_LINUX: Scenario = Scenario {
    name: "bochs-linux",
    machine: MachineSpec::Bochs(BochsSpec {
        extra_lines: BOCHS_E1000_VNET,
        ..BochsSpec::DEFAULT
    }),
    config: Config::File("boot/scenarios/linux.toml"),
    expect: EXPECT,
    guests: &[
        ("linux", LINUX_BOOT),
        ("linux-panic", LINUX_PANIC),
        ("hello64", HELLO64),
    ],
    forbid: FORBID,
    input: INPUT,
    end: End::Success,
    // 666 s measured with the e1000 part on a loaded two-core host.
    timeout_secs: 1200,
};

/// `bochs-identity-refused` (issue 14, "Without an IOMMU"): identity-placed RAM over a host range
/// the hypervisor already uses (its heap) is refused with the reason, before and at the guest's
/// creation; the other guest runs to its end.
pub(super) const BOCHS_IDENTITY_REFUSED: Scenario = Scenario {
    name: "bochs-identity-refused",
    machine: MachineSpec::Bochs(BochsSpec::DEFAULT),
    config: Config::File("boot/scenarios/identity-refused.toml"),
    expect: &[
        BANNER,
        r"heap [0-9]+ KiB at physical 0x8[0-9a-f]{5},",
        r#"guest "linux": host \[0xa00000, 0x8a00000\) cannot hold its identity-placed RAM: part of it is not free \(its region is handed out up to 0x[0-9a-f]+\)"#,
        r#"guest "linux" refused before entry: .*identity-placed RAM at host \[0xa00000, 0x8a00000\) is not available: "#,
        r"sched: running 1 guest\(s\) round-robin",
        r#"guest "hello64" exited with code 0x64"#,
        r"CONDUIT EXIT: success",
    ],
    guests: &[("hello64", HELLO64)],
    forbid: &[super::PANIC, super::ANY_EXCEPTION, r"linux: "],
    input: &[],
    end: End::Success,
    timeout_secs: 300,
};
