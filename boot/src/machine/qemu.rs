//! QEMU: q35 with an Intel IOMMU, two PCIe root ports (igb, SR-IOV NVMe), edu and `isa-debug-exit`.
//!
//! The device set is the one measured in `docs/platforms.md`; KVM uses the same devices with
//! `-cpu host` and a split irqchip (which interrupt remapping needs under KVM).

use super::{HostTools, Launch, MachineError, SerialOut};
use std::path::Path;

/// The size of the NVMe namespace's backing file (sparse).
const NVME_BYTES: u64 = 64 << 20;

/// QEMU's accelerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Software emulation: no VMX, everything else (VT-d, SR-IOV) works.
    Tcg,
    /// KVM with nested VT-x.
    Kvm,
}

/// A QEMU machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QemuSpec {
    pub accel: Accel,
    /// `intel-iommu,intremap=`.
    pub intremap: bool,
    /// `intel-iommu,caching-mode=` (CAP.CM: invalidate after making entries present too).
    pub caching_mode: bool,
    /// `intel-iommu,eim=` (x2APIC-mode interrupt remapping).
    pub eim: bool,
    /// Where the harness' serial line (stdio) is, and the SPCR table injected to name it.
    pub console: QemuConsole,
    /// `-smp` (CPUs: `4`, or with hot-pluggable absent ones, `2,maxcpus=4`).
    pub smp: &'static str,
    /// More arguments, appended after the standard ones.
    pub extra_args: &'static [&'static str],
}

/// The UART the harness talks to (QEMU's stdio), and whether an SPCR names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QemuConsole {
    /// COM1 (`-serial stdio`), no SPCR: the default.
    Com1,
    /// COM1 unconnected, COM2 on stdio (`-serial null -serial stdio`), and an SPCR naming COM2
    /// (I/O port 0x2f8, 115200) injected with `-acpitable`.
    Com2Spcr,
    /// No legacy UART at all (`-serial none`: COM1 reads as an empty bus), a `pci-serial` card
    /// (1b36:0002) at 00:05.0 on stdio, and an SPCR naming that PCI function with no address (the
    /// kernel finds its I/O BAR).
    PciSerialSpcr,
}

/// The PCI address of the [`QemuConsole::PciSerialSpcr`] card.
pub const PCI_SERIAL_SLOT: u8 = 5;

impl QemuConsole {
    /// The SPCR table to inject, if any (generated here at test time, never committed as a
    /// binary).
    pub fn spcr(self) -> Option<[u8; conduit_uart::spcr::LEN]> {
        use conduit_uart::spcr::{self, PciUart, Registers, Spcr};
        let base = Spcr {
            revision: spcr::REVISION,
            interface: spcr::TYPE_16550,
            registers: None,
            baud: Some(115_200),
            pci: None,
        };
        match self {
            Self::Com1 => None,
            Self::Com2Spcr => Some(spcr::encode(&Spcr {
                registers: Some(Registers::Io { base: 0x2f8 }),
                ..base
            })),
            Self::PciSerialSpcr => Some(spcr::encode(&Spcr {
                pci: Some(PciUart {
                    vendor: 0x1b36,
                    device: 0x0002,
                    segment: 0,
                    bus: 0,
                    dev: PCI_SERIAL_SLOT,
                    func: 0,
                }),
                ..base
            })),
        }
    }

    /// The arguments wiring the serial lines (`spcr`: the table file, when [`Self::spcr`] has
    /// one).
    fn args(self, spcr: Option<&Path>) -> Vec<String> {
        let mut a: Vec<String> = match self {
            Self::Com1 => vec!["-serial".into(), "stdio".into()],
            Self::Com2Spcr => ["-serial", "null", "-serial", "stdio"]
                .map(String::from)
                .to_vec(),
            Self::PciSerialSpcr => vec![
                "-serial".into(),
                "none".into(),
                "-chardev".into(),
                "stdio,id=pcicon".into(),
                "-device".into(),
                format!("pci-serial,chardev=pcicon,bus=pcie.0,addr={PCI_SERIAL_SLOT:#x}"),
            ],
        };
        if let Some(path) = spcr {
            a.push("-acpitable".into());
            a.push(format!("file={}", escape(path)));
        }
        a
    }
}

impl QemuSpec {
    /// TCG with the default IOMMU options (`intremap=on,caching-mode=on`).
    pub const TCG: Self = Self {
        accel: Accel::Tcg,
        intremap: true,
        caching_mode: true,
        eim: false,
        console: QemuConsole::Com1,
        smp: "1",
        extra_args: &[],
    };
    /// KVM with the default IOMMU options.
    pub const KVM: Self = Self {
        accel: Accel::Kvm,
        ..Self::TCG
    };

    /// A one-line description for listings.
    pub fn describe(&self) -> String {
        let accel = match self.accel {
            Accel::Tcg => "tcg",
            Accel::Kvm => "kvm",
        };
        let mut s = format!("qemu {accel} {}", self.iommu_options());
        match self.console {
            QemuConsole::Com1 => {}
            QemuConsole::Com2Spcr => s.push_str(" console on COM2 (SPCR)"),
            QemuConsole::PciSerialSpcr => s.push_str(" console on pci-serial (SPCR)"),
        }
        if self.smp != "1" {
            s.push_str(" -smp ");
            s.push_str(self.smp);
        }
        for a in self.extra_args {
            s.push(' ');
            s.push_str(a);
        }
        s
    }

    fn iommu_options(&self) -> String {
        let on = |b: bool| if b { "on" } else { "off" };
        format!(
            "intremap={},caching-mode={},eim={}",
            on(self.intremap),
            on(self.caching_mode),
            on(self.eim)
        )
    }
}

/// Files a QEMU run uses.
#[derive(Debug, Clone, Copy)]
pub struct QemuFiles<'a> {
    /// The boot disk (the GPT UEFI image).
    pub disk: &'a Path,
    /// The NVMe namespace's raw backing file (one per run: QEMU locks it).
    pub nvme: &'a Path,
    /// The firmware for `-bios`.
    pub ovmf: &'a Path,
    /// The SPCR table file for `-acpitable`, when the console needs one.
    pub spcr: Option<&'a Path>,
}

/// QEMU's option syntax doubles commas inside values.
fn escape(path: &Path) -> String {
    path.display().to_string().replace(',', ",,")
}

/// The complete argument list (without the program name). The serial console is on stdio.
pub fn args(spec: &QemuSpec, files: QemuFiles<'_>, extra: &[String]) -> Vec<String> {
    let (machine, accel, cpu) = match spec.accel {
        Accel::Tcg => ("q35", "tcg", "max"),
        Accel::Kvm => ("q35,kernel-irqchip=split", "kvm", "host"),
    };
    let mut a: Vec<String> = Vec::new();
    let mut push = |items: &[&str]| a.extend(items.iter().map(|s| (*s).to_string()));
    push(&[
        "-machine", machine, "-accel", accel, "-cpu", cpu, "-smp", spec.smp, "-m", "1G",
    ]);
    // The IOMMU must come before the PCI devices it translates for.
    let iommu = format!("intel-iommu,{}", spec.iommu_options());
    push(&["-device", &iommu]);
    push(&[
        "-device",
        "pcie-root-port,id=rp0,chassis=1,slot=1,bus=pcie.0",
    ]);
    push(&[
        "-device",
        "pcie-root-port,id=rp1,chassis=2,slot=2,bus=pcie.0",
    ]);
    push(&["-netdev", "user,id=n0", "-device", "igb,netdev=n0,bus=rp0"]);
    let nvme = format!("file={},if=none,id=nvm0,format=raw", escape(files.nvme));
    push(&["-drive", &nvme]);
    push(&["-device", "nvme-subsys,id=subsys0,nqn=subsys0"]);
    push(&[
        "-device",
        "nvme,serial=deadbeef,bus=rp1,subsys=subsys0,sriov_max_vfs=4,sriov_vq_flexible=8,\
         sriov_vi_flexible=4,max_ioqpairs=12,msix_qsize=8",
    ]);
    push(&["-device", "nvme-ns,drive=nvm0,nsid=1", "-device", "edu"]);
    push(&["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
    // The boot disk on the ICH9 AHCI controller (00:1f.2), first in the firmware's boot order.
    let disk = format!("file={},if=none,id=boot0,format=raw", escape(files.disk));
    push(&[
        "-drive",
        &disk,
        "-device",
        "ide-hd,drive=boot0,bus=ide.0,bootindex=0",
    ]);
    let ovmf = files.ovmf.display().to_string();
    push(&["-bios", &ovmf, "-display", "none", "-no-reboot"]);
    a.extend(spec.console.args(files.spcr));
    a.extend(spec.extra_args.iter().map(|s| (*s).to_string()));
    a.extend(extra.iter().cloned());
    a
}

/// Creates a fresh NVMe backing file in `dir` and returns the launch.
pub fn prepare(
    spec: &QemuSpec,
    tools: &HostTools,
    dir: &Path,
    disk: &Path,
    extra: &[String],
) -> Result<Launch, MachineError> {
    let nvme = dir.join("nvme.img");
    let io = |source| MachineError::Io {
        path: nvme.clone(),
        source,
    };
    let file = std::fs::File::create(&nvme).map_err(io)?;
    file.set_len(NVME_BYTES).map_err(io)?;
    let spcr_path = dir.join("spcr.bin");
    let spcr = match spec.console.spcr() {
        Some(table) => {
            std::fs::write(&spcr_path, table).map_err(|source| MachineError::Io {
                path: spcr_path.clone(),
                source,
            })?;
            Some(spcr_path.as_path())
        }
        None => None,
    };
    let files = QemuFiles {
        disk,
        nvme: &nvme,
        ovmf: &tools.ovmf,
        spcr,
    };
    Ok(Launch {
        program: tools.qemu.clone(),
        args: args(spec, files, extra),
        serial: SerialOut::Stdout,
        lock_file: None,
        cwd: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> QemuFiles<'static> {
        QemuFiles {
            disk: Path::new("/b/disk.img"),
            nvme: Path::new("/b/nvme.img"),
            ovmf: Path::new("/fw/OVMF.fd"),
            spcr: None,
        }
    }

    /// The value following `flag`'s `n`-th occurrence.
    fn values<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
        args.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    }

    #[test]
    fn console_wiring_and_the_generated_spcr() {
        let a = args(&QemuSpec::TCG, files(), &[]);
        assert_eq!(values(&a, "-serial"), ["stdio"]);
        assert!(values(&a, "-acpitable").is_empty());
        assert_eq!(QemuConsole::Com1.spcr(), None);

        let com2 = QemuSpec {
            console: QemuConsole::Com2Spcr,
            ..QemuSpec::TCG
        };
        let with_spcr = QemuFiles {
            spcr: Some(Path::new("/b/spcr.bin")),
            ..files()
        };
        let a = args(&com2, with_spcr, &[]);
        assert_eq!(values(&a, "-serial"), ["null", "stdio"]);
        assert_eq!(values(&a, "-acpitable"), ["file=/b/spcr.bin"]);
        let table = QemuConsole::Com2Spcr.spcr().expect("an SPCR");
        let spcr = conduit_uart::spcr::parse(&table).expect("valid");
        assert_eq!(
            spcr.registers,
            Some(conduit_uart::spcr::Registers::Io { base: 0x2f8 })
        );

        let pci = QemuSpec {
            console: QemuConsole::PciSerialSpcr,
            ..QemuSpec::TCG
        };
        let a = args(&pci, with_spcr, &[]);
        assert_eq!(values(&a, "-serial"), ["none"]);
        assert_eq!(values(&a, "-chardev"), ["stdio,id=pcicon"]);
        assert!(values(&a, "-device").contains(&"pci-serial,chardev=pcicon,bus=pcie.0,addr=0x5"));
        let table = QemuConsole::PciSerialSpcr.spcr().expect("an SPCR");
        let spcr = conduit_uart::spcr::parse(&table).expect("valid");
        assert_eq!(spcr.registers, None);
        assert_eq!(
            spcr.pci.map(|p| (p.vendor, p.device, p.bus, p.dev, p.func)),
            Some((0x1b36, 0x0002, 0, PCI_SERIAL_SLOT, 0))
        );
    }

    #[test]
    fn tcg_has_the_documented_device_set() {
        let a = args(&QemuSpec::TCG, files(), &[]);
        assert_eq!(values(&a, "-machine"), ["q35"]);
        assert_eq!(values(&a, "-accel"), ["tcg"]);
        assert_eq!(values(&a, "-cpu"), ["max"]);
        assert_eq!(values(&a, "-m"), ["1G"]);
        assert_eq!(values(&a, "-smp"), ["1"]);
        let devices = values(&a, "-device");
        assert_eq!(
            devices[0],
            "intel-iommu,intremap=on,caching-mode=on,eim=off"
        );
        for want in [
            "pcie-root-port,id=rp0,chassis=1,slot=1,bus=pcie.0",
            "pcie-root-port,id=rp1,chassis=2,slot=2,bus=pcie.0",
            "igb,netdev=n0,bus=rp0",
            "nvme-subsys,id=subsys0,nqn=subsys0",
            "nvme-ns,drive=nvm0,nsid=1",
            "edu",
            "isa-debug-exit,iobase=0xf4,iosize=0x04",
        ] {
            assert!(
                devices.contains(&want),
                "missing -device {want}: {devices:?}"
            );
        }
        let nvme = devices
            .iter()
            .find(|d| d.starts_with("nvme,"))
            .expect("nvme device");
        assert!(
            nvme.contains("bus=rp1") && nvme.contains("sriov_max_vfs=4"),
            "{nvme}"
        );
        assert!(
            nvme.contains("sriov_vq_flexible=8,sriov_vi_flexible=4,max_ioqpairs=12"),
            "{nvme}"
        );
        let drives = values(&a, "-drive");
        assert!(
            drives.contains(&"file=/b/nvme.img,if=none,id=nvm0,format=raw"),
            "{drives:?}"
        );
        assert!(
            drives.contains(&"file=/b/disk.img,if=none,id=boot0,format=raw"),
            "{drives:?}"
        );
        assert_eq!(values(&a, "-bios"), ["/fw/OVMF.fd"]);
        assert_eq!(values(&a, "-serial"), ["stdio"]);
        assert_eq!(values(&a, "-display"), ["none"]);
        assert!(a.iter().any(|x| x == "-no-reboot"));
    }

    #[test]
    fn kvm_uses_host_cpu_and_split_irqchip_with_the_same_devices() {
        let kvm = args(&QemuSpec::KVM, files(), &[]);
        let tcg = args(&QemuSpec::TCG, files(), &[]);
        assert_eq!(values(&kvm, "-machine"), ["q35,kernel-irqchip=split"]);
        assert_eq!(values(&kvm, "-accel"), ["kvm"]);
        assert_eq!(values(&kvm, "-cpu"), ["host"]);
        assert_eq!(values(&kvm, "-device"), values(&tcg, "-device"));
    }

    #[test]
    fn iommu_options_and_extra_arguments_go_where_they_should() {
        let spec = QemuSpec {
            caching_mode: false,
            eim: true,
            extra_args: &["-s"],
            ..QemuSpec::TCG
        };
        let a = args(&spec, files(), &["-d".into(), "int".into()]);
        assert_eq!(
            values(&a, "-device")[0],
            "intel-iommu,intremap=on,caching-mode=off,eim=on"
        );
        assert_eq!(&a[a.len() - 3..], ["-s", "-d", "int"]);
    }

    #[test]
    fn commas_in_paths_are_escaped() {
        let f = QemuFiles {
            disk: Path::new("/a,b/disk.img"),
            ..files()
        };
        let a = args(&QemuSpec::TCG, f, &[]);
        assert!(values(&a, "-drive").contains(&"file=/a,,b/disk.img,if=none,id=boot0,format=raw"));
    }
}
