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
    /// More arguments, appended after the standard ones.
    pub extra_args: &'static [&'static str],
}

impl QemuSpec {
    /// TCG with the default IOMMU options (`intremap=on,caching-mode=on`).
    pub const TCG: Self = Self {
        accel: Accel::Tcg,
        intremap: true,
        caching_mode: true,
        eim: false,
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
        "-machine", machine, "-accel", accel, "-cpu", cpu, "-smp", "1", "-m", "1G",
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
    push(&[
        "-bios",
        &ovmf,
        "-serial",
        "stdio",
        "-display",
        "none",
        "-no-reboot",
    ]);
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
    let files = QemuFiles {
        disk,
        nvme: &nvme,
        ovmf: &tools.ovmf,
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
