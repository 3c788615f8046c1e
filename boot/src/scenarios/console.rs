//! Issue 17, "Console": the console named by an ACPI SPCR table that the harness generates
//! (`QemuConsole::spcr`) and injects with `-acpitable`: COM2 (`-serial null -serial stdio`) and,
//! on a machine without any legacy UART, a `pci-serial` card found through its I/O BAR. The whole
//! log (kept from before the switch and replayed) and the debug shell must work on that UART.
//! `qemu-console-fallback`: a configured COM2 that does not exist. COM1's read-back line settings
//! are asserted in `qemu-foundation`.

use super::{ANY_EXCEPTION, BANNER, Config, PANIC, Scenario};
use crate::expect::End;
use crate::machine::{MachineSpec, QemuConsole, QemuSpec};
use crate::script::Step;

/// The shell commands both runs type, and their answers.
const INPUT: &[Step] = &[
    Step::line(r"shell: ready on ", "help"),
    Step::line(r"^  quit +end the run", "quit"),
];

/// `qemu-console-com2`: an SPCR naming COM2, `console = "auto"`.
pub const QEMU_CONSOLE_COM2: Scenario = Scenario {
    name: "qemu-console-com2",
    machine: MachineSpec::Qemu(QemuSpec {
        console: QemuConsole::Com2Spcr,
        ..QemuSpec::TCG
    }),
    config: Config::Inline(
        "[hypervisor]\nname = \"console-com2\"\non_idle = \"shell\"\nconsole = \"auto\"\n",
    ),
    guests: &[],
    expect: &[
        // The early log, written to COM1 before ACPI was read, replayed on COM2.
        r"console: COM1 at port 0x3f8, 115200 8N1 \(divisor 1, read back\) \(the early console",
        BANNER,
        r"SPCR: present at 0x[0-9a-f]+, 80 bytes, revision 2",
        r#"console: COM2 at port 0x2f8, 115200 8N1 \(divisor 1, read back\); chosen because the ACPI SPCR table names it \(conduit.toml console = "auto"; the SPCR's baud rate\)"#,
        r"console: the log and the debug shell continue on COM2 at port 0x2f8",
        r"boot complete: ",
        r"shell: ready on COM2 \(type `help`",
        r"conduit> help$",
        r"^  pci +list PCI functions",
        r"conduit> quit$",
        r"CONDUIT EXIT: success",
    ],
    forbid: &[PANIC, ANY_EXCEPTION, r"does not work", r"unusable"],
    input: INPUT,
    end: End::Success,
    timeout_secs: 120,
};

/// `qemu-console-pci`: no legacy UART (the early COM1 does not answer: boot goes on, its output
/// kept), an SPCR naming a `pci-serial` card (1b36:0002 at 00:05.0) without an address,
/// `console = "spcr"`: the kernel takes the card's I/O BAR from the enumerated list.
pub const QEMU_CONSOLE_PCI: Scenario = Scenario {
    name: "qemu-console-pci",
    machine: MachineSpec::Qemu(QemuSpec {
        console: QemuConsole::PciSerialSpcr,
        ..QemuSpec::TCG
    }),
    config: Config::Inline(
        "[hypervisor]\nname = \"console-pci\"\non_idle = \"shell\"\nconsole = \"spcr\"\n",
    ),
    guests: &[],
    expect: &[
        r"console: COM1: no UART answers there \(the scratch register does not read back, or the line status reads 0xff\); the log is kept for the configured console",
        BANNER,
        r"SPCR: present at 0x[0-9a-f]+, 80 bytes, revision 2",
        r#"console: PCI serial card 00:05\.0 at port 0x[0-9a-f]+ \(I/O BAR0\), 115200 8N1 \(divisor 1, read back\); chosen because the ACPI SPCR table names it \(conduit.toml console = "spcr"; the SPCR's baud rate\)"#,
        r"console: the log and the debug shell continue on PCI serial card 00:05\.0",
        r"shell: ready on PCI serial card 00:05\.0 \(type `help`",
        r"conduit> help$",
        r"^  pci +list PCI functions",
        r"conduit> quit$",
        r"CONDUIT EXIT: success",
    ],
    forbid: &[PANIC, ANY_EXCEPTION, r"does not work", r"unusable"],
    input: INPUT,
    end: End::Success,
    timeout_secs: 120,
};

/// `qemu-console-fallback`: `console = "com2"` on a machine with COM1 only: COM2 does not answer,
/// and the log says so and where the log and the shell stay.
pub const QEMU_CONSOLE_FALLBACK: Scenario = Scenario {
    name: "qemu-console-fallback",
    machine: MachineSpec::Qemu(QemuSpec::TCG),
    config: Config::Inline(
        "[hypervisor]\nname = \"console-fallback\"\non_idle = \"exit\"\nconsole = \"com2\"\nbaud = 57600\n",
    ),
    guests: &[],
    expect: &[
        r"console: COM1 at port 0x3f8, 115200 8N1 \(divisor 1, read back\) \(the early console",
        BANNER,
        r#"console: COM2 at port 0x2f8 does not work \(no UART answers there .*; it was chosen because conduit.toml console = "com2"\): the log and the debug shell stay on COM1 at port 0x3f8"#,
        r"boot complete: ",
        r"CONDUIT EXIT: success",
    ],
    forbid: &[PANIC, ANY_EXCEPTION, r"console: COM2 at port 0x2f8, "],
    input: &[],
    end: End::Success,
    timeout_secs: 120,
};
