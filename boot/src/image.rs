//! The UEFI image builder: `conduit.toml` + guest images → bundle (the kernel's ramdisk) → GPT disk.

use conduit_config::toml_front::{self, ConfigError};
use conduit_config::{Bundle, BundleError, ExitMethod, GuestImage};
use std::path::{Path, PathBuf};

/// The I/O port of QEMU's `isa-debug-exit` device, as every QEMU machine here configures it.
pub const QEMU_DEBUG_EXIT_PORT: u16 = 0xf4;

/// Where the configuration text comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigText {
    /// A file (`conduit.toml` or a scenario's file).
    File(PathBuf),
    /// Text given inline (a scenario's `Inline` config, or the defaults).
    Inline(String),
}

/// Everything one image needs.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    pub kernel: PathBuf,
    pub config: ConfigText,
    pub exit: ExitMethod,
    /// Guest images: (name the configuration uses, file on the host).
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
    #[error("cannot read guest image `{name}` from {path}: {source}")]
    ReadImage {
        name: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("guest image name `{0}` is given twice")]
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

/// Reads, parses and validates the configuration. Errors name the file and the key.
pub fn load_config(
    config: &ConfigText,
    exit: ExitMethod,
) -> Result<conduit_config::BootConfig, ImageError> {
    let (origin, text) = match config {
        ConfigText::File(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ImageError::ReadConfig {
                path: path.clone(),
                source,
            })?;
            (path.display().to_string(), text)
        }
        ConfigText::Inline(text) => ("inline configuration".to_string(), text.clone()),
    };
    toml_front::parse(&text, exit).map_err(|source| ImageError::Config { origin, source })
}

/// Reads the guest images, refusing duplicate names.
fn read_images(images: &[(String, PathBuf)]) -> Result<Vec<(String, Vec<u8>)>, ImageError> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::with_capacity(images.len());
    for (name, path) in images {
        if out.iter().any(|(n, _)| n == name) {
            return Err(ImageError::DuplicateImage(name.clone()));
        }
        let bytes = std::fs::read(path).map_err(|source| ImageError::ReadImage {
            name: name.clone(),
            path: path.clone(),
            source,
        })?;
        out.push((name.clone(), bytes));
    }
    Ok(out)
}

/// Builds the encoded bundle (the ramdisk's bytes).
pub fn encode_bundle(spec: &ImageSpec) -> Result<Vec<u8>, ImageError> {
    let config = load_config(&spec.config, spec.exit)?;
    let images = read_images(&spec.images)?;
    let bundle = Bundle {
        config,
        images: images
            .iter()
            .map(|(name, bytes)| GuestImage { name, bytes })
            .collect(),
    };
    Ok(bundle.encode()?)
}

/// Builds the bundle, writes the ramdisk next to `spec.out` and creates the GPT UEFI disk image.
pub fn build(spec: &ImageSpec) -> Result<BuiltImage, ImageError> {
    let bytes = encode_bundle(spec)?;
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

    fn spec(config: &str, images: Vec<(String, PathBuf)>) -> ImageSpec {
        ImageSpec {
            kernel: PathBuf::from("/nonexistent"),
            config: ConfigText::Inline(config.to_string()),
            exit: ExitMethod::QemuDebugExit {
                port: QEMU_DEBUG_EXIT_PORT,
            },
            images,
            out: PathBuf::from("/nonexistent/disk.img"),
        }
    }

    #[test]
    fn bundle_round_trips_with_the_chosen_exit() {
        let bytes = encode_bundle(&spec("[hypervisor]\nname = \"t\"\n", Vec::new())).expect("ok");
        let bundle = Bundle::decode(&bytes).expect("decodes");
        assert_eq!(bundle.config.name, "t");
        assert_eq!(bundle.config.exit, ExitMethod::QemuDebugExit { port: 0xf4 });
    }

    #[test]
    fn config_errors_name_the_key_and_the_origin() {
        let e = encode_bundle(&spec("[hypervisor]\nlog_level = \"loud\"\n", Vec::new()))
            .expect_err("bad level");
        let msg = e.to_string();
        assert!(msg.contains("`hypervisor.log_level`"), "{msg}");
        assert!(msg.starts_with("inline configuration"), "{msg}");
    }

    #[test]
    fn guest_images_are_read_and_duplicates_refused() {
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let one = vec![("m".to_string(), manifest.clone())];
        let bytes = encode_bundle(&spec("", one)).expect("ok");
        let bundle = Bundle::decode(&bytes).expect("decodes");
        assert_eq!(
            bundle.image("m").map(<[u8]>::len),
            std::fs::metadata(&manifest).ok().map(|m| m.len() as usize)
        );
        let two = vec![
            ("m".to_string(), manifest.clone()),
            ("m".to_string(), manifest),
        ];
        assert!(
            matches!(encode_bundle(&spec("", two)), Err(ImageError::DuplicateImage(n)) if n == "m")
        );
        let missing = vec![("x".to_string(), PathBuf::from("/nonexistent/x.bin"))];
        assert!(matches!(
            encode_bundle(&spec("", missing)),
            Err(ImageError::ReadImage { .. })
        ));
    }

    #[test]
    fn ramdisk_sits_next_to_the_disk() {
        assert_eq!(
            ramdisk_path(Path::new("build/run/disk.img")),
            Path::new("build/run/disk.ramdisk")
        );
    }
}
