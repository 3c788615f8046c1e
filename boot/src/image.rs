//! The UEFI image builder: `conduit.toml` + the guest images it names → bundle (the kernel's
//! ramdisk) → GPT disk.
//!
//! Guest images are read from the `image` path of each `[[guest]]`, relative to the directory of
//! the configuration file (an inline configuration names its directory), unless an override
//! (`--image KEY=PATH`) gives another file for that `image` string.
//!
//! The control task (`control/`, the ring-3 owner of PCI configuration space) is packed too,
//! under [`CONTROL_TASK_IMAGE`]: the ELF `conduit-control` built next to the kernel ELF (`cargo
//! build -p conduit-control --release` puts both in the same directory), or the file
//! `CONDUIT_CONTROL_TASK` names.

use conduit_config::toml_front::{self, ConfigError, Loaded};
use conduit_config::{BundleError, CONTROL_TASK_IMAGE, ExitMethod};
use std::path::{Path, PathBuf};

/// The I/O port of QEMU's `isa-debug-exit` device, as every QEMU machine here configures it.
pub const QEMU_DEBUG_EXIT_PORT: u16 = 0xf4;

/// Where the configuration text comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigText {
    /// A file (`conduit.toml` or a scenario's file); images are relative to its directory.
    File(PathBuf),
    /// Text given inline (a scenario's `Inline` config, or the defaults); images are relative to
    /// `dir`.
    Inline { text: String, dir: PathBuf },
}

/// Everything one image needs.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    pub kernel: PathBuf,
    pub config: ConfigText,
    pub exit: ExitMethod,
    /// Image overrides: (a guest's `image` string, the file to read instead).
    pub images: Vec<(String, PathBuf)>,
    /// The disk image to create; the ramdisk goes next to it, with the extension `ramdisk`.
    pub out: PathBuf,
}

/// Why an image could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot read configuration {path}: {source}")]
    ReadConfig {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: {source}")]
    Config { origin: String, source: ConfigError },
    #[error("`--image {key}=...` names no guest image of {origin} (its images: {known})")]
    UnusedOverride {
        key: String,
        origin: String,
        known: String,
    },
    #[error("`--image {0}=...` is given twice")]
    DuplicateImage(String),
    #[error("cannot encode the boot bundle: {0}")]
    Bundle(#[from] BundleError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create the UEFI disk image {path}: {reason}")]
    Disk { path: PathBuf, reason: String },
    #[error(
        "control task image {path}: {reason} (build it with `cargo build -p conduit-control --release`, or set CONDUIT_CONTROL_TASK)"
    )]
    ControlTask { path: PathBuf, reason: String },
    #[error("guest image key `{0}` is reserved for the control task")]
    ReservedImageKey(String),
}

/// The files an image build produced.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    pub disk: PathBuf,
    pub ramdisk: PathBuf,
}

/// The ramdisk path that goes with a disk image path.
pub fn ramdisk_path(disk: &Path) -> PathBuf {
    disk.with_extension("ramdisk")
}

/// Where the test guests are built, relative to the target directory: a missing image there gets
/// a hint on how to build it.
const GUEST_BUILD_DIR: &str = "x86_64-unknown-none/release";

/// Reads one guest image; the error names the file, the cause and, for the test guests, the build
/// command.
fn read_image(path: &Path) -> Result<Vec<u8>, String> {
    toml_front::read_image(path).map_err(|why| {
        let built_guest = path
            .parent()
            .is_some_and(|dir| dir.ends_with(GUEST_BUILD_DIR));
        if built_guest {
            format!("{why} (build the test guests with `cargo build -p conduit-guest --release`)")
        } else {
            why
        }
    })
}

/// Reads, parses and validates the configuration, then reads and checks every guest image it
/// names (`overrides` first). Errors name the configuration and the key.
pub fn load_config(
    config: &ConfigText,
    exit: ExitMethod,
    overrides: &[(String, PathBuf)],
) -> Result<Loaded, ImageError> {
    let (origin, text, dir) = match config {
        ConfigText::File(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ImageError::ReadConfig {
                path: path.clone(),
                source,
            })?;
            let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
            (path.display().to_string(), text, dir)
        }
        ConfigText::Inline { text, dir } => (
            "inline configuration".to_string(),
            text.clone(),
            dir.clone(),
        ),
    };
    let in_config = |source| ImageError::Config {
        origin: origin.clone(),
        source,
    };
    let doc = toml_front::parse(&text, exit).map_err(in_config)?;
    let keys = doc.image_keys();
    for (i, (key, _)) in overrides.iter().enumerate() {
        if overrides[..i].iter().any(|(k, _)| k == key) {
            return Err(ImageError::DuplicateImage(key.clone()));
        }
        if !keys.contains(&key.as_str()) {
            return Err(ImageError::UnusedOverride {
                key: key.clone(),
                origin: origin.clone(),
                known: if keys.is_empty() {
                    "none".to_string()
                } else {
                    keys.join(", ")
                },
            });
        }
    }
    doc.resolve(|key| {
        let path = overrides
            .iter()
            .find(|(k, _)| k == key)
            .map_or_else(|| dir.join(key), |(_, p)| p.clone());
        read_image(&path)
    })
    .map_err(in_config)
}

/// Builds the encoded bundle (the ramdisk's bytes).
pub fn encode_bundle(spec: &ImageSpec) -> Result<Vec<u8>, ImageError> {
    let loaded = load_config(&spec.config, spec.exit, &spec.images)?;
    Ok(loaded.bundle().encode()?)
}

/// Where the control task's ELF is taken from: `CONDUIT_CONTROL_TASK`, else `conduit-control`
/// next to the kernel ELF.
pub fn control_task_path(kernel: &Path) -> PathBuf {
    match std::env::var_os("CONDUIT_CONTROL_TASK") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => kernel.with_file_name("conduit-control"),
    }
}

/// [`encode_bundle`] with the control task's image added under [`CONTROL_TASK_IMAGE`].
pub fn encode_bundle_with_task(spec: &ImageSpec, task: &Path) -> Result<Vec<u8>, ImageError> {
    let mut loaded = load_config(&spec.config, spec.exit, &spec.images)?;
    if loaded.images.iter().any(|(k, _)| k == CONTROL_TASK_IMAGE) {
        return Err(ImageError::ReservedImageKey(CONTROL_TASK_IMAGE.to_string()));
    }
    let bytes = std::fs::read(task).map_err(|e| ImageError::ControlTask {
        path: task.to_path_buf(),
        reason: e.to_string(),
    })?;
    conduit_config::elf::parse(&bytes).map_err(|e| ImageError::ControlTask {
        path: task.to_path_buf(),
        reason: e.to_string(),
    })?;
    loaded.images.push((CONTROL_TASK_IMAGE.to_string(), bytes));
    Ok(loaded.bundle().encode()?)
}

/// Builds the bundle (with the control task), writes the ramdisk next to `spec.out` and creates
/// the GPT UEFI disk image.
pub fn build(spec: &ImageSpec) -> Result<BuiltImage, ImageError> {
    let bytes = encode_bundle_with_task(spec, &control_task_path(&spec.kernel))?;
    if let Some(dir) = spec.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| ImageError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let ramdisk = ramdisk_path(&spec.out);
    std::fs::write(&ramdisk, &bytes).map_err(|source| ImageError::Write {
        path: ramdisk.clone(),
        source,
    })?;
    bootloader::UefiBoot::new(&spec.kernel)
        .set_ramdisk(&ramdisk)
        .create_disk_image(&spec.out)
        .map_err(|e| ImageError::Disk {
            path: spec.out.clone(),
            reason: format!("{e:#}"),
        })?;
    Ok(BuiltImage {
        disk: spec.out.clone(),
        ramdisk,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use conduit_config::Bundle;

    fn spec(config: &str, images: Vec<(String, PathBuf)>) -> ImageSpec {
        ImageSpec {
            kernel: PathBuf::from("/nonexistent"),
            config: ConfigText::Inline {
                text: config.to_string(),
                dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
            },
            exit: ExitMethod::QemuDebugExit {
                port: QEMU_DEBUG_EXIT_PORT,
            },
            images,
            out: PathBuf::from("/nonexistent/disk.img"),
        }
    }

    /// A flat long64 guest whose image is `image` (relative to boot/ in these tests).
    fn flat_guest(name: &str, image: &str) -> String {
        format!(
            "[[guest]]\nname = \"{name}\"\nmemory_mib = 2\nimage = \"{image}\"\n\
             format = \"flat\"\nload_gpa = 0x100000\n"
        )
    }

    #[test]
    fn bundle_round_trips_with_the_chosen_exit() {
        let bytes = encode_bundle(&spec("[hypervisor]\nname = \"t\"\n", Vec::new())).expect("ok");
        let bundle = Bundle::decode(&bytes).expect("decodes");
        assert_eq!(bundle.config.name, "t");
        assert_eq!(bundle.config.exit, ExitMethod::QemuDebugExit { port: 0xf4 });
        assert!(bundle.config.guests.is_empty() && bundle.images.is_empty());
    }

    #[test]
    fn config_errors_name_the_key_and_the_origin() {
        let e = encode_bundle(&spec("[hypervisor]\nlog_level = \"loud\"\n", Vec::new()))
            .expect_err("bad level");
        let msg = e.to_string();
        assert!(msg.contains("`hypervisor.log_level`"), "{msg}");
        assert!(msg.starts_with("inline configuration"), "{msg}");
        let e = encode_bundle(&spec(
            "[[guest]]\nname = \"g\"\nmemory_mib = 1024\nimage = \"x\"\n",
            Vec::new(),
        ))
        .expect_err("too much memory");
        assert!(e.to_string().contains("`guest[0].memory_mib`"), "{e}");
    }

    #[test]
    fn guest_images_are_read_relative_to_the_configuration() {
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let text = format!(
            "{}{}",
            flat_guest("a", "Cargo.toml"),
            flat_guest("b", "Cargo.toml")
        );
        let bytes = encode_bundle(&spec(&text, Vec::new())).expect("ok");
        let bundle = Bundle::decode(&bytes).expect("decodes");
        let len = std::fs::metadata(&manifest).map(|m| m.len()).ok();
        // One image, shared by both guests, under its `image` string.
        assert_eq!(bundle.images.len(), 1);
        assert_eq!(bundle.image("Cargo.toml").map(|b| b.len() as u64), len);
        assert_eq!(bundle.config.guests.len(), 2);
        assert_eq!(
            bundle.config.guests[1].segments[0].file_len,
            len.unwrap_or(0)
        );
        // A configuration file: relative to its own directory.
        let from_file = load_config(&ConfigText::File(manifest.clone()), ExitMethod::Halt, &[]);
        assert!(
            matches!(from_file, Err(ImageError::Config { .. })),
            "Cargo.toml is no conduit.toml"
        );
    }

    #[test]
    fn a_missing_image_names_the_guest_key_and_how_to_build_test_guests() {
        let text = flat_guest(
            "hostile",
            "../target/x86_64-unknown-none/release/no-such-guest",
        );
        let e = encode_bundle(&spec(&text, Vec::new())).expect_err("missing");
        let msg = e.to_string();
        assert!(msg.contains("`guest \"hostile\".image`"), "{msg}");
        assert!(msg.contains("no-such-guest"), "{msg}");
        assert!(
            msg.contains("cargo build -p conduit-guest --release"),
            "{msg}"
        );
        let other = flat_guest("g", "nowhere/x.bin");
        let msg = encode_bundle(&spec(&other, Vec::new()))
            .expect_err("missing")
            .to_string();
        assert!(
            msg.contains("x.bin") && !msg.contains("cargo build"),
            "{msg}"
        );
    }

    #[test]
    fn overrides_replace_named_images_only() {
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let text = flat_guest("g", "not/there.bin");
        let over = vec![("not/there.bin".to_string(), manifest.clone())];
        let bytes = encode_bundle(&spec(&text, over)).expect("override used");
        let bundle = Bundle::decode(&bytes).expect("decodes");
        assert!(bundle.image("not/there.bin").is_some());
        let unused = vec![("other".to_string(), manifest.clone())];
        let e = encode_bundle(&spec(&text, unused)).expect_err("unused override");
        assert!(
            matches!(&e, ImageError::UnusedOverride { key, known, .. } if key == "other" && known == "not/there.bin"),
            "{e}"
        );
        let twice = vec![
            ("not/there.bin".to_string(), manifest.clone()),
            ("not/there.bin".to_string(), manifest),
        ];
        assert!(matches!(
            encode_bundle(&spec(&text, twice)),
            Err(ImageError::DuplicateImage(k)) if k == "not/there.bin"
        ));
    }

    #[test]
    fn the_control_task_is_packed_under_its_reserved_key() {
        let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let text = flat_guest("g", "Cargo.toml");
        let missing =
            encode_bundle_with_task(&spec(&text, Vec::new()), Path::new("/nonexistent/t"))
                .expect_err("no task image");
        assert!(
            missing
                .to_string()
                .contains("cargo build -p conduit-control --release"),
            "{missing}"
        );
        let not_elf = encode_bundle_with_task(&spec(&text, Vec::new()), &here.join("Cargo.toml"))
            .expect_err("not an ELF");
        assert!(
            matches!(not_elf, ImageError::ControlTask { .. }),
            "{not_elf}"
        );
        let reserved = flat_guest("g", CONTROL_TASK_IMAGE);
        let over = vec![(CONTROL_TASK_IMAGE.to_string(), here.join("Cargo.toml"))];
        let e = encode_bundle_with_task(&spec(&reserved, over), &here.join("Cargo.toml"))
            .expect_err("reserved key");
        assert!(matches!(e, ImageError::ReservedImageKey(_)), "{e}");
        assert_eq!(
            control_task_path(Path::new("/t/x86_64-unknown-none/release/conduit-kernel")),
            Path::new("/t/x86_64-unknown-none/release/conduit-control")
        );
    }

    #[test]
    fn ramdisk_sits_next_to_the_disk() {
        assert_eq!(
            ramdisk_path(Path::new("build/run/disk.img")),
            Path::new("build/run/disk.ramdisk")
        );
    }
}
