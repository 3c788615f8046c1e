//! `conduit.toml`: parsing and validation (host side).
//!
//! Every error names the key it is about, so a user can find the line to fix. Two steps:
//! [`parse`] checks the text alone (every key, every guest's values); [`Document::resolve`] (or
//! [`load`]) then reads the guest images the configuration names and checks each against its
//! guest, giving the [`Loaded`] configuration and images that make the boot bundle.

pub use crate::error::ConfigError;
use crate::error::invalid;
use crate::guest::{self, GuestSpec, RawGuest};
use crate::model::{BootConfig, ConsoleChoice, ExitMethod, LogLevel, OnIdle, TestCase};
use crate::{Bundle, GuestImage};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde::Deserialize;
use std::path::Path;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    hypervisor: HypervisorSection,
    test: Option<TestSection>,
    #[serde(default)]
    guest: Vec<RawGuest>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct HypervisorSection {
    name: Option<String>,
    log_level: Option<String>,
    on_idle: Option<String>,
    unsafe_no_iommu: Option<bool>,
    console: Option<String>,
    baud: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestSection {
    scenario: String,
}

/// A configuration whose text is valid; its guest images are not read yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Everything but the guests (`config.guests` is empty until [`Document::resolve`]).
    pub config: BootConfig,
    /// The guests, in file order.
    pub guests: Vec<GuestSpec>,
}

/// A fully validated configuration with the guest images it names: the contents of a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub config: BootConfig,
    /// (image key = the guest's `image` string, bytes), one per distinct key, in first-use order.
    pub images: Vec<(String, Vec<u8>)>,
}

impl Loaded {
    /// The bundle of this configuration, borrowing the images.
    pub fn bundle(&self) -> Bundle<'_> {
        Bundle {
            config: self.config.clone(),
            images: self
                .images
                .iter()
                .map(|(name, bytes)| GuestImage { name, bytes })
                .collect(),
        }
    }
}

/// Parses and validates the text of `conduit.toml`. `exit` is the machine's way out, chosen by the
/// runner.
pub fn parse(text: &str, exit: ExitMethod) -> Result<Document, ConfigError> {
    let file: File = toml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
    let log_level = match file.hypervisor.log_level.as_deref() {
        None => LogLevel::Info,
        Some(name) => LogLevel::from_name(name).ok_or_else(|| {
            invalid(
                "hypervisor.log_level",
                alloc::format!(
                    "unknown level {name:?} (expected error, warn, info, debug or trace)"
                ),
            )
        })?,
    };
    let on_idle = match file.hypervisor.on_idle.as_deref() {
        None => OnIdle::default(),
        Some(name) => OnIdle::from_name(name).ok_or_else(|| {
            invalid(
                "hypervisor.on_idle",
                alloc::format!("unknown value {name:?} (expected \"exit\" or \"shell\")"),
            )
        })?,
    };
    let console = match file.hypervisor.console.as_deref() {
        None => ConsoleChoice::default(),
        Some(name) => ConsoleChoice::from_name(name).ok_or_else(|| {
            invalid(
                "hypervisor.console",
                alloc::format!(
                    "unknown console {name:?} (expected \"auto\", \"com1\", \"com2\" or \"spcr\")"
                ),
            )
        })?,
    };
    let baud = file
        .hypervisor
        .baud
        .unwrap_or(conduit_uart::uart::DEFAULT_BAUD);
    conduit_uart::uart::divisor(baud)
        .map_err(|e| invalid("hypervisor.baud", alloc::format!("{e}")))?;
    let test = match file.test {
        None => None,
        Some(t) => Some(TestCase::from_name(&t.scenario).ok_or_else(|| {
            invalid(
                "test.scenario",
                alloc::format!("unknown scenario {:?}", t.scenario),
            )
        })?),
    };
    let name = file
        .hypervisor
        .name
        .unwrap_or_else(|| String::from("default"));
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_graphic()) {
        return Err(invalid(
            "hypervisor.name",
            "must be 1-64 printable ASCII characters without spaces",
        ));
    }
    let guests = guest::check_all(&file.guest)?;
    let unsafe_no_iommu = file.hypervisor.unsafe_no_iommu.unwrap_or(false);
    if let Some(i) = guests.iter().position(|g| g.identity_ram_at.is_some())
        && !unsafe_no_iommu
    {
        return Err(invalid(
            &alloc::format!("guest[{i}].identity_ram_at"),
            "identity-placed RAM is for devices assigned without an IOMMU, which needs \
             [hypervisor] unsafe_no_iommu = true (with DMA remapping the guest's own domain \
             translates its DMA)",
        ));
    }
    Ok(Document {
        config: BootConfig {
            log_level,
            exit,
            test,
            on_idle,
            name,
            guests: Vec::new(),
            unsafe_no_iommu,
            console,
            baud,
        },
        guests,
    })
}

impl Document {
    /// The distinct files of the guests (`image`/`kernel`, `initrd`), in first-use order.
    pub fn image_keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = Vec::new();
        for g in &self.guests {
            for k in core::iter::once(g.image.as_str()).chain(g.extra_files()) {
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
        }
        keys
    }

    /// Reads every image with `read` (given the image key; an error is a message naming the file
    /// and the cause) and checks each guest against its image.
    pub fn resolve<F>(self, mut read: F) -> Result<Loaded, ConfigError>
    where
        F: FnMut(&str) -> Result<Vec<u8>, String>,
    {
        let mut images: Vec<(String, Vec<u8>)> = Vec::new();
        let mut config = self.config;
        for spec in &self.guests {
            let (image_key, extra_key) = match spec.os {
                None => ("image", "image"),
                Some(crate::model::OsBoot::Linux { .. }) => ("kernel", "initrd"),
                Some(crate::model::OsBoot::Multiboot { .. }) => ("kernel", "modules"),
            };
            let files: Vec<(&str, &str)> = core::iter::once((spec.image.as_str(), image_key))
                .chain(spec.extra_files().into_iter().map(|f| (f, extra_key)))
                .collect();
            // Each file once in the bundle, however many guests (or keys) name it.
            let mut at = Vec::with_capacity(files.len());
            for (file, key) in files {
                let i = match images.iter().position(|(k, _)| k == file) {
                    Some(i) => i,
                    None => {
                        let bytes = read(file).map_err(|why| {
                            invalid(&alloc::format!("guest {:?}.{key}", spec.name), why)
                        })?;
                        images.push((file.into(), bytes));
                        images.len() - 1
                    }
                };
                at.push(i);
            }
            let extra: Vec<&[u8]> = at[1..].iter().map(|&i| images[i].1.as_slice()).collect();
            config
                .guests
                .push(guest::place_with(spec, &images[at[0]].1, &extra)?);
        }
        Ok(Loaded { config, images })
    }

    /// [`Document::resolve`] reading each image from `dir.join(key)`: `dir` is the directory of
    /// the configuration file.
    pub fn resolve_in(self, dir: &Path) -> Result<Loaded, ConfigError> {
        self.resolve(|key| read_image(&dir.join(key)))
    }
}

/// Reads an image file; the error names the file.
pub fn read_image(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| alloc::format!("cannot read {}: {e}", path.display()))
}

/// Parses `text` and reads the images it names relative to `dir` (the directory of the
/// configuration file).
pub fn load(text: &str, exit: ExitMethod, dir: &Path) -> Result<Loaded, ConfigError> {
    parse(text, exit)?.resolve_in(dir)
}

#[cfg(test)]
#[path = "toml_front_tests.rs"]
mod tests;
