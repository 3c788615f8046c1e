//! Where things are: the workspace root, the kernel ELF of each image, the build directories.
//!
//! Conduit is built as two images. The production image (`cargo build -p conduit-kernel -p
//! conduit-control --release`) is what `run` and `image` boot by default and what goes onto a
//! machine; it has no self-tests and refuses a configuration with `[test]`, `test_break` or
//! `test_apic`. The test image is the same kernel and control task built with their `selftest`
//! feature into their own target directory, `<target>/test-image`; `test` boots it by default. The control task is
//! taken from next to the kernel ELF (`crate::image::control_task_path`), so each image brings
//! its own; guest images stay where the configuration names them (the normal target directory).

use conduit_config::TestOnly;
use std::path::{Path, PathBuf};

/// The kernel ELF, relative to an image's target directory.
const KERNEL_IN_TARGET: &str = "x86_64-unknown-none/release/conduit-kernel";
/// The test image's target directory, relative to the workspace's target directory.
const TEST_IMAGE_DIR: &str = "test-image";

/// Which build of the kernel and its control task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelImage {
    /// Without test code: `scripts/run`, `run`, `image`, hardware.
    Production,
    /// With the `selftest` feature: the boot scenarios.
    Test,
}

impl KernelImage {
    /// The command that builds this image (from the workspace root).
    pub fn build_command(self) -> &'static str {
        match self {
            Self::Production => "cargo build -p conduit-kernel -p conduit-control --release",
            Self::Test => {
                "cargo build -p conduit-kernel -p conduit-control --release --features selftest \
                 --target-dir target/test-image"
            }
        }
    }

    /// `production` or `test`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Production => "production",
            Self::Test => "test",
        }
    }
}

/// A path problem that stops the tool before anything runs.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error(
        "no Cargo workspace found above {0} (looked for a Cargo.toml with [workspace]); \
         run inside the Conduit repository or set CONDUIT_ROOT"
    )]
    NoWorkspace(PathBuf),
    #[error("CONDUIT_ROOT={0} is not a directory")]
    BadRootEnv(PathBuf),
    #[error("cannot read the current directory: {0}")]
    CurrentDir(#[source] std::io::Error),
    #[error(
        "{} image's kernel ELF not found at {path}; build it with `{}` (or pass --kernel PATH)",
        image.name(),
        image.build_command()
    )]
    NoKernel { image: KernelImage, path: PathBuf },
    #[error(
        "{origin}: {what} needs the test image, and {kernel} is the production image (it would \
         refuse the configuration at boot): pass --kernel {test_kernel} (build it with `{}`; \
         `scripts/test` does)",
        KernelImage::Test.build_command()
    )]
    NeedsTestImage {
        origin: String,
        what: String,
        kernel: PathBuf,
        test_kernel: PathBuf,
    },
    #[error("kernel ELF {0} does not exist")]
    KernelArgMissing(PathBuf),
}

/// The workspace layout the tool works in.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The directory of the workspace's Cargo.toml.
    pub root: PathBuf,
    /// The cargo target directory (`CARGO_TARGET_DIR` if set, else `<root>/target`).
    pub target: PathBuf,
}

impl Workspace {
    /// Finds the workspace: `CONDUIT_ROOT` if set, else the nearest ancestor of the current directory
    /// whose Cargo.toml has a `[workspace]` table.
    pub fn locate() -> Result<Self, PathError> {
        if let Some(root) = std::env::var_os("CONDUIT_ROOT") {
            let root = PathBuf::from(root);
            return if root.is_dir() {
                Ok(Self::at(root))
            } else {
                Err(PathError::BadRootEnv(root))
            };
        }
        let cwd = std::env::current_dir().map_err(PathError::CurrentDir)?;
        find_workspace_root(&cwd)
            .map(Self::at)
            .ok_or(PathError::NoWorkspace(cwd))
    }

    /// The workspace at `root`, with its target directory from `CARGO_TARGET_DIR` or the default.
    pub fn at(root: PathBuf) -> Self {
        let target = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) => root.join(dir),
            None => root.join("target"),
        };
        Self { root, target }
    }

    /// `build/<sub>` under the root.
    pub fn build_dir(&self, sub: &str) -> PathBuf {
        self.root.join("build").join(sub)
    }

    /// Where `image`'s kernel ELF is built.
    pub fn image_kernel(&self, image: KernelImage) -> PathBuf {
        match image {
            KernelImage::Production => self.target.join(KERNEL_IN_TARGET),
            KernelImage::Test => self.target.join(TEST_IMAGE_DIR).join(KERNEL_IN_TARGET),
        }
    }

    /// The kernel to boot: `explicit` if given (it must exist), else `image`'s build (with a hint
    /// on how to build it if it is missing).
    pub fn kernel(
        &self,
        explicit: Option<&Path>,
        image: KernelImage,
    ) -> Result<PathBuf, PathError> {
        match explicit {
            Some(p) if p.is_file() => Ok(p.to_path_buf()),
            Some(p) => Err(PathError::KernelArgMissing(p.to_path_buf())),
            None => {
                let path = self.image_kernel(image);
                if path.is_file() {
                    Ok(path)
                } else {
                    Err(PathError::NoKernel { image, path })
                }
            }
        }
    }

    /// The kernel `run` and `image` boot for a configuration (named `origin` in errors): the one
    /// given, else the production image. A configuration with a test-only setting
    /// (`test_only`) is refused here if it would go to the production image's ELF, with how to
    /// get the test image, rather than be refused by the kernel at boot.
    pub fn kernel_for_config(
        &self,
        explicit: Option<&Path>,
        origin: &str,
        test_only: Option<&TestOnly>,
    ) -> Result<PathBuf, PathError> {
        let production = self.image_kernel(KernelImage::Production);
        if let Some(what) = test_only {
            let is_production = match explicit {
                None => true,
                Some(p) => same_file(p, &production),
            };
            if is_production {
                return Err(PathError::NeedsTestImage {
                    origin: origin.to_string(),
                    what: what.to_string(),
                    kernel: production,
                    test_kernel: self.image_kernel(KernelImage::Test),
                });
            }
        }
        self.kernel(explicit, KernelImage::Production)
    }
}

/// Whether `a` and `b` name the same file (by their canonical paths; equal paths if either
/// cannot be resolved).
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The nearest ancestor of `start` (itself included) holding a Cargo.toml with a `[workspace]` table.
pub fn find_workspace_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| is_workspace_manifest(&dir.join("Cargo.toml")))
        .map(Path::to_path_buf)
}

fn is_workspace_manifest(manifest: &Path) -> bool {
    std::fs::read_to_string(manifest)
        .map(|text| text.lines().any(|l| l.trim() == "[workspace]"))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_workspace_above_a_member() {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = find_workspace_root(here).expect("workspace root");
        assert_eq!(root, here.parent().expect("boot/ has a parent"));
        assert!(root.join("boot").is_dir());
    }

    #[test]
    fn missing_kernel_says_how_to_build_it() {
        let root = PathBuf::from("/nonexistent-conduit-root");
        let ws = Workspace {
            target: root.join("target"),
            root,
        };
        let msg = ws
            .kernel(None, KernelImage::Production)
            .expect_err("no kernel there")
            .to_string();
        assert!(
            msg.starts_with("production image's kernel ELF not found at /nonexistent-conduit-root/target/x86_64-unknown-none/release/conduit-kernel")
                && msg.contains("`cargo build -p conduit-kernel -p conduit-control --release`"),
            "{msg}"
        );
        let msg = ws
            .kernel(None, KernelImage::Test)
            .expect_err("no kernel there")
            .to_string();
        assert!(
            msg.starts_with("test image's kernel ELF not found at /nonexistent-conduit-root/target/test-image/x86_64-unknown-none/release/conduit-kernel")
                && msg.contains("--features selftest --target-dir target/test-image`"),
            "{msg}"
        );
        let e = ws
            .kernel(
                Some(Path::new("/nonexistent/kernel.elf")),
                KernelImage::Test,
            )
            .expect_err("missing");
        assert!(matches!(e, PathError::KernelArgMissing(_)));
    }

    /// A workspace in a fresh temporary directory with both images' kernel ELFs present.
    fn workspace_with_both_images(tag: &str) -> Workspace {
        let root =
            std::env::temp_dir().join(format!("conduit-boot-paths-{tag}-{}", std::process::id()));
        let ws = Workspace {
            target: root.join("target"),
            root,
        };
        for image in [KernelImage::Production, KernelImage::Test] {
            let k = ws.image_kernel(image);
            std::fs::create_dir_all(k.parent().expect("has a directory")).expect("mkdir");
            std::fs::write(&k, b"ELF").expect("write");
        }
        ws
    }

    #[test]
    fn each_image_has_its_own_target_directory() {
        let ws = workspace_with_both_images("dirs");
        let production = ws.kernel(None, KernelImage::Production).expect("built");
        let test = ws.kernel(None, KernelImage::Test).expect("built");
        assert_eq!(production, ws.target.join(KERNEL_IN_TARGET));
        assert_eq!(
            test,
            ws.target
                .join("test-image/x86_64-unknown-none/release/conduit-kernel")
        );
        // Each image's control task is the one built next to its kernel.
        assert_eq!(
            crate::image::control_task_path(&test),
            ws.target
                .join("test-image/x86_64-unknown-none/release/conduit-control")
        );
        // An explicit kernel wins over either default.
        assert_eq!(
            ws.kernel(Some(&production), KernelImage::Test)
                .expect("exists"),
            production
        );
        std::fs::remove_dir_all(&ws.root).expect("clean up");
    }

    #[test]
    fn a_test_configuration_needs_the_test_image() {
        let ws = workspace_with_both_images("config");
        let scenario = TestOnly::Scenario(conduit_config::TestCase::Control);
        let production = ws.image_kernel(KernelImage::Production);
        let test = ws.image_kernel(KernelImage::Test);
        // Without test-only settings: the production image, or the kernel given.
        assert_eq!(
            ws.kernel_for_config(None, "c.toml", None).expect("ok"),
            production
        );
        assert_eq!(
            ws.kernel_for_config(Some(&test), "c.toml", None)
                .expect("ok"),
            test
        );
        // With one: refused for the production image (by default or given), naming the setting
        // and the test image's kernel; accepted for any other kernel.
        for given in [None, Some(production.as_path())] {
            let e = ws
                .kernel_for_config(given, "c.toml", Some(&scenario))
                .expect_err("production image");
            let msg = e.to_string();
            assert!(
                msg.starts_with("c.toml: [test] scenario \"control\" needs the test image")
                    && msg.contains(&format!("pass --kernel {}", test.display()))
                    && msg.contains("--features selftest"),
                "{msg}"
            );
        }
        let brk = TestOnly::GuestBreak {
            guest: "badstate".into(),
            value: conduit_config::GuestBreak::TrUnusable,
        };
        assert!(
            ws.kernel_for_config(None, "c.toml", Some(&brk))
                .expect_err("production image")
                .to_string()
                .contains("guest \"badstate\" test_break = \"tr-unusable\" needs the test image")
        );
        assert_eq!(
            ws.kernel_for_config(Some(&test), "c.toml", Some(&brk))
                .expect("test image"),
            test
        );
        let apic = TestOnly::GuestApic {
            guest: "soft".into(),
            value: conduit_config::ApicTest::Software,
        };
        assert!(
            ws.kernel_for_config(None, "c.toml", Some(&apic))
                .expect_err("production image")
                .to_string()
                .contains("guest \"soft\" test_apic = \"software\" needs the test image")
        );
        std::fs::remove_dir_all(&ws.root).expect("clean up");
    }
}
