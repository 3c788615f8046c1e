//! Operating-system guests (`kind = "linux"`, `"multiboot"`): their keys, and the check of the
//! kernel, command line, initrd and modules against the kernel's own header with
//! `conduit-bootproto` (the Linux boot protocol, Multiboot 0.6.96; the guest-physical layout
//! is described in `docs/linux-guests.md`).

use crate::error::{ConfigError, invalid};
use crate::guest::{GuestSpec, ImageFormat, RawGuest};
use crate::model::{EntryMode, GuestConfig, MultibootModule, OnCrash, OsBoot, Segment};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use conduit_bootproto::bzimage::SetupHeader;
use conduit_bootproto::layout::{LayoutError, LinuxLayout};
use conduit_bootproto::ram::GuestRam;
use conduit_bootproto::{e820, multiboot};
use serde::Deserialize;

/// One entry of a multiboot guest's `modules`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModule {
    pub path: Option<String>,
    pub cmdline: Option<String>,
}

/// `max_restarts` when `on_crash = "restart"` gives none.
pub const DEFAULT_MAX_RESTARTS: u32 = 3;
/// The largest `max_restarts`.
pub const MAX_RESTARTS: u32 = 1000;

/// What `kind` selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A purpose-built image: the `image`, `format`, `entry` keys.
    Image,
    /// An operating system's kernel with its boot inputs.
    Os {
        kernel: String,
        format: ImageFormat,
        entry: EntryMode,
        os: OsBoot,
    },
}

/// Keys that belong to one kind only, for the "not for this kind" errors.
const IMAGE_KEYS: [&str; 5] = ["image", "format", "entry", "load_gpa", "entry_gpa"];
const OS_KEYS: [&str; 4] = ["kernel", "initrd", "cmdline", "modules"];

fn present(raw: &RawGuest, k: &str) -> bool {
    match k {
        "image" => raw.image.is_some(),
        "format" => raw.format.is_some(),
        "entry" => raw.entry.is_some(),
        "load_gpa" => raw.load_gpa.is_some(),
        "entry_gpa" => raw.entry_gpa.is_some(),
        "kernel" => raw.kernel.is_some(),
        "initrd" => raw.initrd.is_some(),
        "cmdline" => raw.cmdline.is_some(),
        "modules" => raw.modules.is_some(),
        _ => false,
    }
}

/// Refuses any of `keys` in a guest of `kind`.
fn refuse(i: usize, raw: &RawGuest, kind: &str, keys: &[&str]) -> Result<(), ConfigError> {
    match keys.iter().find(|k| present(raw, k)) {
        Some(k) => Err(invalid(
            &format!("guest[{i}].{k}"),
            format!("not a key of kind = \"{kind}\""),
        )),
        None => Ok(()),
    }
}

/// `vcpus`: 1 (the default) to [`crate::guest::MAX_VCPUS`]; more than 1 only for an operating
/// system, whose local APICs start the other vCPUs (a purpose-built image has no local APIC).
pub fn check_vcpus(i: usize, raw: &RawGuest, kind: &Kind) -> Result<u32, ConfigError> {
    let Some(v) = raw.vcpus else {
        return Ok(1);
    };
    let max = crate::guest::MAX_VCPUS;
    let n = u32::try_from(v)
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| {
            invalid(
                &format!("guest[{i}].vcpus"),
                format!("{v} vCPUs: must be 1 to {max}"),
            )
        })?;
    if n > 1 && matches!(kind, Kind::Image) {
        return Err(invalid(
            &format!("guest[{i}].vcpus"),
            format!(
                "{n} vCPUs for kind = \"image\": only an operating system (kind = \"linux\" or \"multiboot\") has the local APICs that start more than one"
            ),
        ));
    }
    Ok(n)
}

/// Reads `kind` and the kind's own keys.
pub fn check_kind(i: usize, raw: &RawGuest) -> Result<Kind, ConfigError> {
    let key = |k: &str| format!("guest[{i}].{k}");
    match raw.kind.as_deref() {
        None | Some("image") => {
            refuse(i, raw, "image", &OS_KEYS)?;
            Ok(Kind::Image)
        }
        Some("linux") => {
            refuse(i, raw, "linux", &IMAGE_KEYS)?;
            refuse(i, raw, "linux", &["modules"])?;
            let (kernel, cmdline) = kernel_and_cmdline(i, raw)?;
            let initrd = match raw.initrd.clone() {
                Some(p) if p.is_empty() => {
                    return Err(invalid(
                        &key("initrd"),
                        "empty path (leave the key out for none)",
                    ));
                }
                other => other,
            };
            Ok(Kind::Os {
                kernel,
                format: ImageFormat::BzImage,
                entry: EntryMode::Linux64,
                os: OsBoot::Linux { cmdline, initrd },
            })
        }
        Some("multiboot") => {
            refuse(i, raw, "multiboot", &IMAGE_KEYS)?;
            refuse(i, raw, "multiboot", &["initrd"])?;
            let (kernel, cmdline) = kernel_and_cmdline(i, raw)?;
            let mut modules = Vec::new();
            for (j, m) in raw.modules.iter().flatten().enumerate() {
                let mkey = |k: &str| format!("guest[{i}].modules[{j}].{k}");
                let image = m
                    .path
                    .clone()
                    .filter(|p| !p.is_empty())
                    .ok_or_else(|| invalid(&mkey("path"), "missing: the module's file"))?;
                let cmdline = m.cmdline.clone().unwrap_or_default();
                if cmdline.contains('\0') {
                    return Err(invalid(&mkey("cmdline"), "contains a NUL character"));
                }
                modules.push(MultibootModule { image, cmdline });
            }
            Ok(Kind::Os {
                kernel,
                format: ImageFormat::Multiboot,
                entry: EntryMode::Multiboot32,
                os: OsBoot::Multiboot { cmdline, modules },
            })
        }
        Some(k) => Err(invalid(
            &key("kind"),
            format!("unknown guest kind {k:?} (expected \"image\", \"linux\" or \"multiboot\")"),
        )),
    }
}

/// The `kernel` and `cmdline` keys of an operating-system guest.
fn kernel_and_cmdline(i: usize, raw: &RawGuest) -> Result<(String, String), ConfigError> {
    let key = |k: &str| format!("guest[{i}].{k}");
    let kernel = raw
        .kernel
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid(&key("kernel"), "missing: the path of the kernel"))?;
    let cmdline = raw.cmdline.clone().unwrap_or_default();
    if cmdline.contains('\0') {
        return Err(invalid(&key("cmdline"), "contains a NUL character"));
    }
    Ok((kernel, cmdline))
}

/// Reads `on_crash` and `max_restarts`.
pub fn check_on_crash(i: usize, raw: &RawGuest) -> Result<OnCrash, ConfigError> {
    let key = |k: &str| format!("guest[{i}].{k}");
    match raw.on_crash.as_deref() {
        None | Some("stop") => match raw.max_restarts {
            Some(_) => Err(invalid(
                &key("max_restarts"),
                "only with on_crash = \"restart\"",
            )),
            None => Ok(OnCrash::Stop),
        },
        Some("restart") => {
            let max_restarts = match raw.max_restarts {
                None => DEFAULT_MAX_RESTARTS,
                Some(m) => u32::try_from(m)
                    .ok()
                    .filter(|m| (1..=MAX_RESTARTS).contains(m))
                    .ok_or_else(|| {
                        invalid(
                            &key("max_restarts"),
                            format!("{m}: must be 1 to {MAX_RESTARTS}"),
                        )
                    })?,
            };
            Ok(OnCrash::Restart { max_restarts })
        }
        Some(v) => Err(invalid(
            &key("on_crash"),
            format!("unknown value {v:?} (expected \"stop\" or \"restart\")"),
        )),
    }
}

/// Checks a Linux guest's bzImage, command line and initrd (`extra`: the initrd's bytes, if the
/// guest has one) against its memory, and places the protected-mode kernel.
pub fn place_linux(
    spec: &GuestSpec,
    image: &[u8],
    extra: &[&[u8]],
) -> Result<GuestConfig, ConfigError> {
    let key = |k: &str| format!("guest {:?}.{k}", spec.name);
    let Some(OsBoot::Linux { cmdline, initrd }) = &spec.os else {
        return Err(invalid(
            &key("kind"),
            "a bzImage guest without its Linux settings",
        ));
    };
    let h = SetupHeader::parse(image)
        .map_err(|e| invalid(&key("kernel"), format!("{:?}: {e}", spec.image)))?;
    let initrd_len = match (initrd, extra) {
        (None, []) => 0,
        (Some(path), [[]]) => {
            return Err(invalid(&key("initrd"), format!("{path:?} is empty")));
        }
        (Some(_), [bytes]) => bytes.len() as u64,
        _ => {
            return Err(invalid(
                &key("initrd"),
                format!(
                    "{} files given for {} initrd",
                    extra.len(),
                    initrd.iter().len()
                ),
            ));
        }
    };
    let memory = u64::from(spec.memory_mib) << 20;
    let ram = match spec.identity_ram_at {
        Some(base) => GuestRam::identity(base, memory)
            .map_err(|e| invalid(&key("identity_ram_at"), format!("{e}")))?,
        None => GuestRam::contiguous(memory),
    };
    let layout = LinuxLayout::new(&ram, &h, cmdline.len(), initrd_len).map_err(|e| {
        let k = match e {
            LayoutError::CmdlineTooLong { .. } => "cmdline",
            LayoutError::InitrdDoesNotFit { .. } => "initrd",
            LayoutError::KernelDoesNotFit { .. } | LayoutError::NotRelocatable { .. } => "kernel",
        };
        invalid(
            &key(k),
            format!(
                "{e} (memory_mib = {} for {:?})",
                spec.memory_mib, spec.image
            ),
        )
    })?;
    let kernel = Segment {
        gpa: layout.kernel,
        file_offset: h.setup_len as u64,
        file_len: h.kernel_len,
        mem_len: layout.kernel_end - layout.kernel,
    };
    Ok(GuestConfig {
        name: spec.name.clone(),
        memory_mib: spec.memory_mib,
        vcpus: spec.vcpus,
        entry: EntryMode::Linux64,
        entry_point: layout.entry,
        segments: Vec::from([kernel]),
        image: spec.image.clone(),
        time_slice_us: spec.time_slice_us,
        test_break: spec.test_break,
        test_apic: spec.test_apic,
        devices: spec.devices.clone(),
        os: spec.os.clone(),
        on_crash: spec.on_crash,
        on_control_crash: spec.on_control_crash,
        identity_ram_at: spec.identity_ram_at,
        placement: spec.placement.clone(),
    })
}

/// Checks a Multiboot guest's kernel (its header, and where its address fields or ELF program
/// headers put it), its modules (`extra`, in order) and the size of the information structure.
pub fn place_multiboot(
    spec: &GuestSpec,
    image: &[u8],
    extra: &[&[u8]],
) -> Result<GuestConfig, ConfigError> {
    let key = |k: &str| format!("guest {:?}.{k}", spec.name);
    let Some(OsBoot::Multiboot { cmdline, modules }) = &spec.os else {
        return Err(invalid(
            &key("kind"),
            "a Multiboot guest without its settings",
        ));
    };
    let kernel_err =
        |e: &dyn core::fmt::Display| invalid(&key("kernel"), format!("{:?}: {e}", spec.image));
    let header = multiboot::Header::find(image).map_err(|e| kernel_err(&e))?;
    let (mut segments, entry) = match header.address_load(image).map_err(|e| kernel_err(&e))? {
        Some(l) => (
            Vec::from([Segment {
                gpa: l.load_addr,
                file_offset: l.file_offset,
                file_len: l.file_len,
                mem_len: l.mem_len,
            }]),
            l.entry,
        ),
        None => {
            let elf = crate::elf::parse_32_or_64(image).map_err(|e| {
                kernel_err(&format!(
                    "no address fields (flags bit 16), and not a loadable ELF: {e}"
                ))
            })?;
            (elf.segments, elf.entry)
        }
    };
    let memory = u64::from(spec.memory_mib) << 20;
    segments.sort_by_key(|s| s.gpa);
    for s in &segments {
        if s.gpa < multiboot::KERNEL_MIN || s.end() > memory {
            return Err(kernel_err(&format!(
                "segment [{:#x}, {:#x}) is outside [1 MiB, {memory:#x}) (memory_mib = {})",
                s.gpa,
                s.end(),
                spec.memory_mib
            )));
        }
    }
    if let Some(w) = segments.windows(2).find(|w| w[0].end() > w[1].gpa) {
        return Err(kernel_err(&format!(
            "segments at {:#x} and {:#x} overlap",
            w[0].gpa, w[1].gpa
        )));
    }
    if !segments.iter().any(|s| (s.gpa..s.end()).contains(&entry)) {
        return Err(kernel_err(&format!(
            "entry point {entry:#x} is outside every loaded segment"
        )));
    }
    if extra.len() != modules.len() {
        return Err(invalid(
            &key("modules"),
            format!("{} files given for {} modules", extra.len(), modules.len()),
        ));
    }
    let kernel_end = segments.iter().map(Segment::end).max().unwrap_or(0);
    let lens: Vec<u64> = extra.iter().map(|m| m.len() as u64).collect();
    let places = multiboot::place_modules(kernel_end, &lens, memory).map_err(|e| {
        invalid(
            &key("modules"),
            format!(
                "{e}: {} bytes after the kernel's end {kernel_end:#x} in {memory:#x}",
                lens.iter().sum::<u64>()
            ),
        )
    })?;
    let map = e820::conduit_guest_map(&GuestRam::contiguous(memory))
        .map_err(|e| invalid(&key("memory_mib"), format!("{e}")))?;
    let info_modules: Vec<multiboot::InfoModule<'_>> = places
        .iter()
        .zip(modules)
        .map(|(&place, m)| multiboot::InfoModule {
            place,
            cmdline: &m.cmdline,
        })
        .collect();
    let info = multiboot::build_info(multiboot::INFO_GPA as u32, cmdline, &info_modules, &map)
        .map_err(|e| invalid(&key("cmdline"), format!("{e}")))?;
    if multiboot::INFO_GPA + info.len() as u64 > multiboot::INFO_LIMIT {
        return Err(invalid(
            &key("cmdline"),
            format!(
                "the command lines and the information structure take {} bytes, more than the {} \
                 bytes at {:#x}",
                info.len(),
                multiboot::INFO_LIMIT - multiboot::INFO_GPA,
                multiboot::INFO_GPA
            ),
        ));
    }
    Ok(GuestConfig {
        name: spec.name.clone(),
        memory_mib: spec.memory_mib,
        vcpus: spec.vcpus,
        entry: EntryMode::Multiboot32,
        entry_point: entry,
        segments,
        image: spec.image.clone(),
        time_slice_us: spec.time_slice_us,
        test_break: spec.test_break,
        test_apic: spec.test_apic,
        devices: spec.devices.clone(),
        os: spec.os.clone(),
        on_crash: spec.on_crash,
        on_control_crash: spec.on_control_crash,
        identity_ram_at: spec.identity_ram_at,
        placement: spec.placement.clone(),
    })
}

#[cfg(test)]
#[path = "os_tests.rs"]
mod tests;
