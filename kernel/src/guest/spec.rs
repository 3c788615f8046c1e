//! What the runtime needs to build a guest: decoded from the boot bundle's guest configuration.

use alloc::string::String;
use alloc::vec::Vec;
use conduit_bootproto::bzimage::SetupHeader;
use conduit_bootproto::layout::LinuxLayout;
use conduit_bootproto::multiboot::{self, ModulePlace};
use conduit_bootproto::ram::GuestRam;
use conduit_config::{MultibootModule, OsBoot};

/// How the vCPU starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// 64-bit long mode with paging on (identity map of the first 4 GiB), at this RIP.
    Long64 { rip: u64 },
    /// Real mode (unrestricted guest) at CS:IP.
    Real16 { cs: u16, ip: u16 },
    /// The Linux 64-bit boot protocol: long mode with the identity map, __BOOT_CS 0x10,
    /// __BOOT_DS 0x18, IF = 0, RSI = `zero_page`, at RIP (the load address + 0x200).
    Linux { rip: u64, zero_page: u64 },
    /// Multiboot 0.6.96 §3.2: 32-bit protected mode, paging off, flat CS 0x08 and data 0x10,
    /// IF = 0, EAX = 0x2BADB002, EBX = `info`, at EIP.
    Multiboot { eip: u64, info: u64 },
}

/// A deliberate corruption of the initial state (test configurations, feature `selftest` only):
/// the pre-entry guest-state check must refuse the guest and name the rule.
#[cfg(feature = "selftest")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Break {
    Cr0PgWithoutPe,
    RflagsReservedBitClear,
    TrUnusable,
}

/// One piece of the image to place in guest memory.
#[derive(Debug, Clone)]
pub struct LoadSegment {
    pub gpa: u64,
    pub bytes: &'static [u8],
    /// Bytes from `gpa` the segment occupies (the rest after `bytes` is zero).
    pub mem_len: u64,
}

/// What a Linux guest is booted with besides its kernel segment (placed by `super::osboot`).
#[derive(Debug, Clone)]
pub struct LinuxImage {
    /// The whole bzImage: the zero page copies its setup header.
    pub bzimage: &'static [u8],
    pub header: SetupHeader,
    pub layout: LinuxLayout,
    pub cmdline: String,
    pub initrd: Option<&'static [u8]>,
}

/// A Multiboot guest's modules and command line (placed by `super::osboot`).
#[derive(Debug, Clone)]
pub struct MultibootImage {
    pub cmdline: String,
    /// Each module's bytes, command line and place, in configuration order.
    pub modules: Vec<(&'static [u8], String, ModulePlace)>,
}

/// A guest to create.
#[derive(Debug, Clone)]
pub struct GuestSpec {
    pub name: String,
    pub memory_mib: u32,
    /// Its vCPUs (local APIC IDs 0..`vcpus`, 0 the bootstrap processor).
    pub vcpus: u32,
    /// Where its RAM lies in guest-physical space.
    pub ram: GuestRam,
    pub entry: Entry,
    pub segments: Vec<LoadSegment>,
    pub time_slice_us: u32,
    /// A Linux guest's boot inputs.
    pub linux: Option<LinuxImage>,
    /// A Multiboot guest's boot inputs.
    pub multiboot: Option<MultibootImage>,
    /// The guest's firmware tables (ACPI, the RSDP first), written at
    /// `conduit_bootproto::layout::FIRMWARE_GPA` and named in the zero page; empty: none.
    pub firmware: Vec<u8>,
    /// What a reset of its processor (triple fault, reset register, keyboard controller) does.
    pub on_crash: conduit_config::OnCrash,
    /// When one of its requests crashes the control task (`on_control_crash`).
    pub on_control_crash: conduit_config::OnControlCrash,
    /// TEST ONLY (feature `selftest`): the guest state to corrupt before entry.
    #[cfg(feature = "selftest")]
    pub test_break: Option<Break>,
    /// TEST ONLY (feature `selftest`): software emulation of the local APIC even where the CPU
    /// offers APIC virtualization (`test_apic = "software"`).
    #[cfg(feature = "selftest")]
    pub test_apic_software: bool,
}

impl GuestSpec {
    /// Whether the guest runs an operating system, which gets a virtual platform: local APIC,
    /// I/O APIC, the UART's interrupt, power and reset (`vplatform.rs`, `power.rs`).
    pub fn has_platform(&self) -> bool {
        self.linux.is_some() || self.multiboot.is_some()
    }
}

/// Turns a validated guest configuration and its files (`file`: the bundle's image of a key)
/// into a spec. The builder validated everything already; this re-checks what would otherwise
/// read outside the image or misplace the kernel, so a corrupt bundle costs one guest, not the
/// hypervisor.
pub fn from_config(
    c: &conduit_config::GuestConfig,
    file: impl Fn(&str) -> Option<&'static [u8]>,
) -> Result<GuestSpec, String> {
    use conduit_config::EntryMode;
    let image = file(&c.image)
        .ok_or_else(|| alloc::format!("image {:?} is not in the boot bundle", c.image))?;
    let (linux, multiboot) = match &c.os {
        None => (None, None),
        Some(OsBoot::Linux { cmdline, initrd }) => (
            Some(linux_image(c, image, cmdline, initrd.as_deref(), &file)?),
            None,
        ),
        Some(OsBoot::Multiboot { cmdline, modules }) => {
            (None, Some(multiboot_image(c, cmdline, modules, &file)?))
        }
    };
    let entry = match c.entry {
        EntryMode::Linux64 => {
            let l = linux
                .as_ref()
                .ok_or_else(|| String::from("Linux entry without the Linux settings"))?;
            Entry::Linux {
                rip: l.layout.entry,
                zero_page: l.layout.zero_page,
            }
        }
        EntryMode::Multiboot32 => Entry::Multiboot {
            eip: c.entry_point,
            info: multiboot::INFO_GPA,
        },
        EntryMode::Long64 => Entry::Long64 { rip: c.entry_point },
        EntryMode::Real16 => {
            let (cs, ip) = c.real_mode_cs_ip().ok_or_else(|| {
                alloc::format!("real-mode entry {:#x} is not below 1 MiB", c.entry_point)
            })?;
            Entry::Real16 { cs, ip }
        }
    };
    let mut segments = Vec::with_capacity(c.segments.len());
    for s in &c.segments {
        let bytes = usize::try_from(s.file_offset)
            .ok()
            .zip(usize::try_from(s.file_len).ok())
            .and_then(|(off, len)| image.get(off..off.checked_add(len)?))
            .ok_or_else(|| {
                alloc::format!(
                    "segment at GPA {:#x} reads beyond the {}-byte image",
                    s.gpa,
                    image.len()
                )
            })?;
        segments.push(LoadSegment {
            gpa: s.gpa,
            bytes,
            mem_len: s.mem_len,
        });
    }
    Ok(GuestSpec {
        name: c.name.clone(),
        memory_mib: c.memory_mib,
        vcpus: c.vcpus,
        ram: c
            .ram()
            .map_err(|e| alloc::format!("identity_ram_at: {e}"))?,
        entry,
        segments,
        time_slice_us: c.time_slice_us,
        firmware: match &linux {
            Some(_) => super::firmware::acpi_tables(c.vcpus)
                .map_err(|e| alloc::format!("ACPI tables: {e:?}"))?,
            None => Vec::new(),
        },
        linux,
        on_crash: c.on_crash,
        on_control_crash: c.on_control_crash,
        multiboot,
        #[cfg(feature = "selftest")]
        test_break: c.test_break.map(|b| match b {
            conduit_config::GuestBreak::Cr0PgWithoutPe => Break::Cr0PgWithoutPe,
            conduit_config::GuestBreak::RflagsReservedBitClear => Break::RflagsReservedBitClear,
            conduit_config::GuestBreak::TrUnusable => Break::TrUnusable,
        }),
        #[cfg(feature = "selftest")]
        test_apic_software: c.test_apic == Some(conduit_config::ApicTest::Software),
    })
}

/// Re-reads a Linux guest's header and recomputes its layout exactly as the builder did; the
/// kernel segment the builder placed must be where the layout puts the kernel.
fn linux_image(
    c: &conduit_config::GuestConfig,
    bzimage: &'static [u8],
    cmdline: &str,
    initrd: Option<&str>,
    file: &impl Fn(&str) -> Option<&'static [u8]>,
) -> Result<LinuxImage, String> {
    let header = SetupHeader::parse(bzimage).map_err(|e| alloc::format!("kernel: {e}"))?;
    let initrd = match initrd {
        None => None,
        Some(k) => {
            Some(file(k).ok_or_else(|| alloc::format!("initrd {k:?} is not in the boot bundle"))?)
        }
    };
    let ram = c
        .ram()
        .map_err(|e| alloc::format!("identity_ram_at: {e}"))?;
    let layout = LinuxLayout::new(
        &ram,
        &header,
        cmdline.len(),
        initrd.map_or(0, |i| i.len() as u64),
    )
    .map_err(|e| alloc::format!("{e}"))?;
    if c.entry_point != layout.entry || c.segments.iter().any(|s| s.gpa != layout.kernel) {
        return Err(alloc::format!(
            "the bundle places the kernel at {:#x}, its header at {:#x}",
            c.entry_point,
            layout.entry
        ));
    }
    Ok(LinuxImage {
        bzimage,
        header,
        layout,
        cmdline: String::from(cmdline),
        initrd,
    })
}

/// Looks a Multiboot guest's modules up in the bundle and places them after the kernel exactly
/// as the builder did.
fn multiboot_image(
    c: &conduit_config::GuestConfig,
    cmdline: &str,
    modules: &[MultibootModule],
    file: &impl Fn(&str) -> Option<&'static [u8]>,
) -> Result<MultibootImage, String> {
    let bytes: Vec<&'static [u8]> = modules
        .iter()
        .map(|m| {
            file(&m.image)
                .ok_or_else(|| alloc::format!("module {:?} is not in the boot bundle", m.image))
        })
        .collect::<Result<_, _>>()?;
    let kernel_end = c.segments.iter().map(|s| s.end()).max().unwrap_or(0);
    let lens: Vec<u64> = bytes.iter().map(|b| b.len() as u64).collect();
    let places = multiboot::place_modules(kernel_end, &lens, c.memory_bytes())
        .map_err(|e| alloc::format!("{e}"))?;
    Ok(MultibootImage {
        cmdline: String::from(cmdline),
        modules: bytes
            .into_iter()
            .zip(modules)
            .zip(places)
            .map(|((b, m), p)| (b, m.cmdline.clone(), p))
            .collect(),
    })
}
