//! Issue 17, "Console": the console named by an ACPI SPCR table that the harness generates
//! (`QemuConsole::spcr`) and injects with `-acpitable`: COM2 (`-serial null -serial stdio`) and
//! a `pci-serial` card found through its I/O BAR. The whole log (replayed from the early COM1,
//! which QEMU leaves unconnected) and the debug shell must work on that UART. COM1's read-back
//! line settings are asserted in `qemu-foundation`.

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

/// `qemu-console-pci`: an SPCR naming a `pci-serial` card (1b36:0002 at 00:05.0) without an
/// address, `console = "spcr"`: the kernel takes the card's I/O BAR from the enumerated list.
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
        r"console: COM1 at port 0x3f8, 115200 8N1 \(divisor 1, read back\) \(the early console",
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
