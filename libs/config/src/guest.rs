//! Guests: the `[[guest]]` tables of `conduit.toml`, their checks, and their placement in guest
//! memory once the image is read.
//!
//! Two steps, both pure (no file access, so the kernel-side crate stays `no_std`):
//! 1. [`check_all`] turns the raw tables into [`GuestSpec`]s: every key's value and range, unique
//!    names, the memory total. Errors name `guest[i].key` (0-based table position).
//! 2. [`place`] reads one guest's image bytes in its format and checks where the segments and the
//!    entry point land. Errors name `guest "name".key`.

use crate::elf;
use crate::error::{ConfigError, invalid};
use crate::model::{
    ApicTest, EntryMode, GuestBreak, GuestConfig, OnControlCrash, OnCrash, OsBoot, Segment,
};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use conduit_abi::{long64, real16};
use serde::Deserialize;

/// Smallest guest RAM.
pub const MIN_MEMORY_MIB: u32 = 2;
/// Largest guest RAM.
pub const MAX_MEMORY_MIB: u32 = 512;
/// Largest total of all guests' RAM.
pub const MAX_TOTAL_MEMORY_MIB: u32 = 768;
/// Every guest's RAM ends at or below this guest-physical address: its BAR window starts here
/// (an identity-placed guest's RAM lies at its host address, which must be below it too).
pub const MAX_GUEST_RAM_END: u64 = 0xC000_0000;
/// Most `[[guest]]` tables: the guests the control task keeps topologies for and the interrupt
/// path keeps pending vectors for.
pub const MAX_GUESTS: usize = 64;
/// Time slice bounds and default, in microseconds.
pub const MIN_TIME_SLICE_US: u32 = 100;
pub const MAX_TIME_SLICE_US: u32 = 100_000;
pub const DEFAULT_TIME_SLICE_US: u32 = 1000;
/// Most vCPUs of one guest (each its own VMCS and local APIC; they take turns on the CPU that
/// runs the guest).
pub const MAX_VCPUS: u32 = 8;
/// Longest guest name.
pub const MAX_NAME_LEN: usize = 32;

/// One `[[guest]]` table as written (types only; values are checked by [`check_all`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGuest {
    pub name: Option<String>,
    pub memory_mib: Option<i64>,
    pub image: Option<String>,
    pub format: Option<String>,
    pub entry: Option<String>,
    pub time_slice_us: Option<i64>,
    pub load_gpa: Option<i64>,
    pub entry_gpa: Option<i64>,
    pub test_break: Option<String>,
    /// `"software"`: the local APIC in software emulation (test image only).
    pub test_apic: Option<String>,
    /// `[[guest.device]]` tables.
    pub device: Option<Vec<crate::device::RawDevice>>,
    /// `"image"` (the default: a purpose-built image), `"linux"` or `"multiboot"`.
    pub kind: Option<String>,
    /// The operating system's kernel (`kind = "linux"`: a bzImage; `"multiboot"`).
    pub kernel: Option<String>,
    /// `kind = "linux"`: the initial RAM disk.
    pub initrd: Option<String>,
    /// The kernel command line.
    pub cmdline: Option<String>,
    /// Virtual CPUs: 1 (default) to [`MAX_VCPUS`]; more than 1 only for `kind = "linux"` or
    /// `"multiboot"`.
    pub vcpus: Option<i64>,
    /// `"stop"` (default) or `"restart"`.
    pub on_crash: Option<String>,
    /// `"quarantine"` (default) or `"stop"`: when a request of the guest crashes the control
    /// task.
    pub on_control_crash: Option<String>,
    /// With `on_crash = "restart"`: how often (default [`crate::os::DEFAULT_MAX_RESTARTS`]).
    pub max_restarts: Option<i64>,
    /// `kind = "multiboot"`: `modules = [{ path = "...", cmdline = "..." }]`.
    pub modules: Option<Vec<crate::os::RawModule>>,
    /// `kind = "linux"`, with `[hypervisor] unsafe_no_iommu = true`: the guest's RAM at GPA =
    /// HPA from this host-physical address (its first MiB excepted).
    pub identity_ram_at: Option<i64>,
    /// The physical CPU that runs the guest, by index (`crate::placement`).
    pub cpus: Option<Vec<i64>>,
    /// `true`: that CPU runs this guest alone, without time slices.
    pub dedicated: Option<bool>,
}

/// How the image file is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// ELF64 x86-64 `ET_EXEC`: `PT_LOAD` segments at `p_paddr`, entry `e_entry`.
    Elf,
    /// Raw bytes loaded at `load_gpa`, entered at `entry_gpa` (default: `load_gpa`).
    Flat { load_gpa: u64, entry_gpa: u64 },
    /// A Linux bzImage (`kind = "linux"`).
    BzImage,
    /// A Multiboot kernel (`kind = "multiboot"`).
    Multiboot,
}

/// A guest whose keys are all valid; its image is not read yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestSpec {
    pub name: String,
    pub memory_mib: u32,
    pub vcpus: u32,
    /// The `image` string: the path relative to the configuration file's directory, and the key
    /// of the image in the bundle.
    pub image: String,
    pub format: ImageFormat,
    pub entry: EntryMode,
    pub time_slice_us: u32,
    pub test_break: Option<GuestBreak>,
    pub test_apic: Option<ApicTest>,
    pub devices: Vec<crate::model::DeviceAssignment>,
    /// An operating-system guest's boot inputs (its initrd and module paths are bundle keys).
    pub os: Option<OsBoot>,
    pub on_crash: OnCrash,
    pub on_control_crash: OnControlCrash,
    /// The checked `identity_ram_at`.
    pub identity_ram_at: Option<u64>,
    /// The checked `cpus` and `dedicated`.
    pub placement: crate::Placement,
}

impl GuestSpec {
    /// The host range an identity-placed guest's RAM takes, `[base, base + memory)`.
    pub fn identity_range(&self) -> Option<core::ops::Range<u64>> {
        self.identity_ram_at
            .map(|base| base..base + (u64::from(self.memory_mib) << 20))
    }

    /// The files the guest is built from besides `image`, in order: the initrd, or the modules.
    pub fn extra_files(&self) -> Vec<&str> {
        match &self.os {
            None => Vec::new(),
            Some(OsBoot::Linux { initrd, .. }) => initrd.iter().map(String::as_str).collect(),
            Some(OsBoot::Multiboot { modules, .. }) => {
                modules.iter().map(|m| m.image.as_str()).collect()
            }
        }
    }
}

fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// A non-negative integer key as u64.
fn address(key: &str, value: i64) -> Result<u64, ConfigError> {
    u64::try_from(value).map_err(|_| invalid(key, format!("{value} is negative")))
}

fn check_one(i: usize, raw: &RawGuest) -> Result<GuestSpec, ConfigError> {
    let key = |k: &str| format!("guest[{i}].{k}");
    let name = raw
        .name
        .clone()
        .ok_or_else(|| invalid(&key("name"), "missing: every guest needs a name"))?;
    if !valid_name(&name) {
        return Err(invalid(
            &key("name"),
            format!("{name:?} is not 1-32 characters of a-z, 0-9, '-' and '_'"),
        ));
    }
    let memory = raw
        .memory_mib
        .ok_or_else(|| invalid(&key("memory_mib"), "missing"))?;
    let memory_mib = u32::try_from(memory)
        .ok()
        .filter(|m| (MIN_MEMORY_MIB..=MAX_MEMORY_MIB).contains(m))
        .ok_or_else(|| {
            invalid(
                &key("memory_mib"),
                format!(
                    "{memory} MiB for guest {name:?}: must be {MIN_MEMORY_MIB} to {MAX_MEMORY_MIB}"
                ),
            )
        })?;
    let kind = crate::os::check_kind(i, raw)?;
    let vcpus = crate::os::check_vcpus(i, raw, &kind)?;
    let (image, format, entry, os) = match kind {
        crate::os::Kind::Image => {
            let (image, format, entry) = check_image_keys(i, raw)?;
            (image, format, entry, None)
        }
        crate::os::Kind::Os {
            kernel,
            format,
            entry,
            os,
        } => (kernel, format, entry, Some(os)),
    };
    let on_crash = crate::os::check_on_crash(i, raw)?;
    let on_control_crash = match raw.on_control_crash.as_deref() {
        None | Some("quarantine") => OnControlCrash::Quarantine,
        Some("stop") => OnControlCrash::Stop,
        Some(other) => {
            return Err(invalid(
                &key("on_control_crash"),
                format!("unknown value {other:?} (expected \"quarantine\" or \"stop\")"),
            ));
        }
    };
    let time_slice_us = match raw.time_slice_us {
        None => DEFAULT_TIME_SLICE_US,
        Some(t) => u32::try_from(t)
            .ok()
            .filter(|t| (MIN_TIME_SLICE_US..=MAX_TIME_SLICE_US).contains(t))
            .ok_or_else(|| {
                invalid(
                    &key("time_slice_us"),
                    format!("{t} µs: must be {MIN_TIME_SLICE_US} to {MAX_TIME_SLICE_US}"),
                )
            })?,
    };
    let test_break = match raw.test_break.as_deref() {
        None => None,
        Some(b) => Some(GuestBreak::from_name(b).ok_or_else(|| {
            let known: Vec<&str> = GuestBreak::ALL.iter().map(|b| b.name()).collect();
            invalid(
                &key("test_break"),
                format!("unknown value {b:?} (expected one of {known:?})"),
            )
        })?),
    };
    let test_apic = match raw.test_apic.as_deref() {
        None => None,
        Some(a) => Some(ApicTest::from_name(a).ok_or_else(|| {
            let known: Vec<&str> = ApicTest::ALL.iter().map(|a| a.name()).collect();
            invalid(
                &key("test_apic"),
                format!("unknown value {a:?} (expected one of {known:?})"),
            )
        })?),
    };
    let devices = crate::device::check(i, raw.device.as_deref().unwrap_or_default())?;
    let placement = crate::placement::check(i, raw.cpus.as_deref(), raw.dedicated, vcpus)?;
    let identity_ram_at = match raw.identity_ram_at {
        None => None,
        Some(v) => Some(check_identity(
            &key("identity_ram_at"),
            v,
            memory_mib,
            os.as_ref(),
        )?),
    };
    Ok(GuestSpec {
        name,
        memory_mib,
        vcpus,
        image,
        format,
        entry,
        time_slice_us,
        test_break,
        test_apic,
        devices,
        os,
        on_crash,
        on_control_crash,
        identity_ram_at,
        placement,
    })
}

/// `identity_ram_at`: a Linux guest's (its e820 map and kernel placement follow the RAM; see
/// `conduit_bootproto::ram`), 2 MiB aligned, at or above 1 MiB, and the whole block below
/// [`MAX_GUEST_RAM_END`].
fn check_identity(
    key: &str,
    value: i64,
    memory_mib: u32,
    os: Option<&OsBoot>,
) -> Result<u64, ConfigError> {
    if !matches!(os, Some(OsBoot::Linux { .. })) {
        return Err(invalid(
            key,
            "only a kind = \"linux\" guest can have identity-placed RAM",
        ));
    }
    let base = address(key, value)?;
    let size = u64::from(memory_mib) << 20;
    conduit_bootproto::ram::GuestRam::identity(base, size)
        .map_err(|e| invalid(key, format!("{e}")))?;
    let end = base.saturating_add(size);
    if end > MAX_GUEST_RAM_END {
        return Err(invalid(
            key,
            format!(
                "the guest's RAM [{base:#x}, {end:#x}) must end at or below {MAX_GUEST_RAM_END:#x} \
                 (the guest's BAR window starts there)"
            ),
        ));
    }
    Ok(base)
}

/// The keys of a purpose-built image guest (`kind = "image"`): `image`, `format`, `entry`,
/// `load_gpa`, `entry_gpa`.
fn check_image_keys(
    i: usize,
    raw: &RawGuest,
) -> Result<(String, ImageFormat, EntryMode), ConfigError> {
    let key = |k: &str| format!("guest[{i}].{k}");
    let image = raw
        .image
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid(&key("image"), "missing: the path of the guest's image file"))?;
    let entry = match raw.entry.as_deref() {
        None => EntryMode::Long64,
        Some(e) => EntryMode::from_name(e).ok_or_else(|| {
            invalid(
                &key("entry"),
                format!("unknown entry mode {e:?} (expected \"long64\" or \"real16\")"),
            )
        })?,
    };
    let flat = match raw.format.as_deref() {
        None | Some("elf") => false,
        Some("flat") => true,
        Some(f) => {
            return Err(invalid(
                &key("format"),
                format!("unknown image format {f:?} (expected \"elf\" or \"flat\")"),
            ));
        }
    };
    let format = if flat {
        let load_gpa = raw.load_gpa.ok_or_else(|| {
            invalid(
                &key("load_gpa"),
                "missing: format = \"flat\" needs the load address",
            )
        })?;
        let load_gpa = address(&key("load_gpa"), load_gpa)?;
        let entry_gpa = match raw.entry_gpa {
            Some(e) => address(&key("entry_gpa"), e)?,
            None => load_gpa,
        };
        ImageFormat::Flat {
            load_gpa,
            entry_gpa,
        }
    } else {
        for (k, v) in [("load_gpa", raw.load_gpa), ("entry_gpa", raw.entry_gpa)] {
            if v.is_some() {
                return Err(invalid(
                    &key(k),
                    "only for format = \"flat\" (an ELF image gives its own addresses)",
                ));
            }
        }
        ImageFormat::Elf
    };
    Ok((image, format, entry))
}

/// Checks every `[[guest]]` table's keys, the uniqueness of names and the memory total.
pub fn check_all(raws: &[RawGuest]) -> Result<Vec<GuestSpec>, ConfigError> {
    if raws.len() > MAX_GUESTS {
        return Err(invalid(
            &format!("guest[{MAX_GUESTS}]"),
            format!("{} guests; at most {MAX_GUESTS}", raws.len()),
        ));
    }
    let mut specs: Vec<GuestSpec> = Vec::with_capacity(raws.len());
    let mut total: u32 = 0;
    for (i, raw) in raws.iter().enumerate() {
        let spec = check_one(i, raw)?;
        if let Some(j) = specs.iter().position(|s| s.name == spec.name) {
            return Err(invalid(
                &format!("guest[{i}].name"),
                format!("{:?} is already the name of guest[{j}]", spec.name),
            ));
        }
        total = total.saturating_add(spec.memory_mib);
        if total > MAX_TOTAL_MEMORY_MIB {
            return Err(invalid(
                &format!("guest[{i}].memory_mib"),
                format!(
                    "guest {:?} brings the guests' memory to {total} MiB, over the total limit of \
                     {MAX_TOTAL_MEMORY_MIB} MiB",
                    spec.name
                ),
            ));
        }
        if let Some(r) = spec.identity_range() {
            let overlap = specs.iter().enumerate().find_map(|(j, s)| {
                s.identity_range()
                    .filter(|o| o.start < r.end && r.start < o.end)
                    .map(|o| (j, o))
            });
            if let Some((j, o)) = overlap {
                return Err(invalid(
                    &format!("guest[{i}].identity_ram_at"),
                    format!(
                        "[{:#x}, {:#x}) overlaps guest[{j}]'s identity-placed RAM [{:#x}, {:#x})",
                        r.start, r.end, o.start, o.end
                    ),
                ));
            }
        }
        specs.push(spec);
    }
    let assigned: Vec<_> = specs
        .iter()
        .map(|s| (s.name.clone(), s.devices.clone()))
        .collect();
    crate::device::check_unique(&assigned)?;
    let placements: Vec<_> = specs
        .iter()
        .map(|s| (s.name.as_str(), &s.placement))
        .collect();
    crate::placement::check_exclusive(&placements)?;
    Ok(specs)
}

/// Reads `image` in the guest's format and checks the placement of its segments and entry point.
/// An operating-system guest also needs its [`GuestSpec::extra_files`]: see [`place_with`].
pub fn place(spec: &GuestSpec, image: &[u8]) -> Result<GuestConfig, ConfigError> {
    place_with(spec, image, &[])
}

/// [`place`] with the contents of the guest's [`GuestSpec::extra_files`], in their order.
pub fn place_with(
    spec: &GuestSpec,
    image: &[u8],
    extra: &[&[u8]],
) -> Result<GuestConfig, ConfigError> {
    let key = |k: &str| format!("guest {:?}.{k}", spec.name);
    let memory = u64::from(spec.memory_mib) << 20;
    // Which key supplied the addresses: the ELF itself, or the flat image's keys.
    let (mut segments, entry_point, seg_key, entry_key) = match spec.format {
        ImageFormat::Elf => {
            let elf = elf::parse(image).map_err(|e| {
                invalid(
                    &key("image"),
                    format!(
                        "{:?} is not a loadable ELF64 x86-64 executable: {e}",
                        spec.image
                    ),
                )
            })?;
            (elf.segments, elf.entry, key("image"), key("image"))
        }
        ImageFormat::Flat {
            load_gpa,
            entry_gpa,
        } => {
            if image.starts_with(b"\x7fELF") {
                return Err(invalid(
                    &key("format"),
                    "\"flat\", but the image is an ELF file (use format = \"elf\")",
                ));
            }
            let len = image.len() as u64;
            if len == 0 {
                return Err(invalid(&key("image"), format!("{:?} is empty", spec.image)));
            }
            if len > memory {
                return Err(invalid(
                    &key("image"),
                    format!(
                        "flat image of {len} bytes is larger than the guest's {} MiB of memory",
                        spec.memory_mib
                    ),
                ));
            }
            let segment = Segment {
                gpa: load_gpa,
                file_offset: 0,
                file_len: len,
                mem_len: len,
            };
            (
                Vec::from([segment]),
                entry_gpa,
                key("load_gpa"),
                key("entry_gpa"),
            )
        }
        ImageFormat::BzImage => return crate::os::place_linux(spec, image, extra),
        ImageFormat::Multiboot => return crate::os::place_multiboot(spec, image, extra),
    };
    segments.sort_by_key(|s| s.gpa);
    let range = |s: &Segment| {
        format!(
            "[{:#x}, {:#x})",
            s.gpa,
            u128::from(s.gpa) + u128::from(s.mem_len)
        )
    };
    for s in &segments {
        if s.gpa.checked_add(s.mem_len).is_none_or(|end| end > memory) {
            return Err(invalid(
                &seg_key,
                format!(
                    "segment at GPA {} lies outside the guest's memory [0, {memory:#x}) ({} MiB)",
                    range(s),
                    spec.memory_mib
                ),
            ));
        }
        match spec.entry {
            EntryMode::Long64 if s.gpa < long64::LOW_AREA_END => {
                return Err(invalid(
                    &seg_key,
                    format!(
                        "segment at GPA {} overlaps [0, {:#x}), where the hypervisor writes a long64 \
                         guest's GDT and identity page tables (link at {:#x} or above)",
                        range(s),
                        long64::LOW_AREA_END,
                        long64::IMAGE_BASE
                    ),
                ));
            }
            EntryMode::Real16 if s.end() > real16::LIMIT => {
                return Err(invalid(
                    &seg_key,
                    format!(
                        "segment at GPA {} reaches above 1 MiB, out of a real16 guest's reach",
                        range(s)
                    ),
                ));
            }
            _ => {}
        }
    }
    if let Some(w) = segments.windows(2).find(|w| w[0].end() > w[1].gpa) {
        return Err(invalid(
            &seg_key,
            format!(
                "segments at GPA {} and {} overlap",
                range(&w[0]),
                range(&w[1])
            ),
        ));
    }
    if spec.entry == EntryMode::Real16 && entry_point >= real16::LIMIT {
        return Err(invalid(
            &entry_key,
            format!(
                "entry point {entry_point:#x} is at or above 1 MiB: a real16 guest cannot reach it"
            ),
        ));
    }
    if entry_point >= memory {
        return Err(invalid(
            &entry_key,
            format!("entry point {entry_point:#x} is outside the guest's memory [0, {memory:#x})"),
        ));
    }
    if !segments
        .iter()
        .any(|s| (s.gpa..s.end()).contains(&entry_point))
    {
        return Err(invalid(
            &entry_key,
            format!("entry point {entry_point:#x} is outside every loaded segment"),
        ));
    }
    Ok(GuestConfig {
        name: spec.name.clone(),
        memory_mib: spec.memory_mib,
        vcpus: spec.vcpus,
        entry: spec.entry,
        entry_point,
        segments,
        image: spec.image.clone(),
        time_slice_us: spec.time_slice_us,
        test_break: spec.test_break,
        test_apic: spec.test_apic,
        devices: spec.devices.clone(),
        os: None,
        on_crash: spec.on_crash,
        on_control_crash: spec.on_control_crash,
        identity_ram_at: spec.identity_ram_at,
        placement: spec.placement.clone(),
    })
}

#[cfg(test)]
#[path = "guest_tests.rs"]
mod tests;
