//! Where things are: the workspace root, the default kernel ELF, the build directories.

use std::path::{Path, PathBuf};

/// The kernel ELF, relative to the target directory.
const KERNEL_IN_TARGET: &str = "x86_64-unknown-none/release/conduit-kernel";

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
        "kernel ELF not found at {0}; build it with `cargo build -p conduit-kernel --release` \
         (or pass --kernel PATH)"
    )]
    NoKernel(PathBuf),
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

    /// The kernel to boot: `explicit` if given (it must exist), else the release build in the
    /// target directory (with a hint on how to build it if it is missing).
    pub fn kernel(&self, explicit: Option<&Path>) -> Result<PathBuf, PathError> {
        match explicit {
            Some(p) if p.is_file() => Ok(p.to_path_buf()),
            Some(p) => Err(PathError::KernelArgMissing(p.to_path_buf())),
            None => {
                let p = self.target.join(KERNEL_IN_TARGET);
                if p.is_file() {
                    Ok(p)
                } else {
                    Err(PathError::NoKernel(p))
                }
            }
        }
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
        let e = ws.kernel(None).expect_err("no kernel there");
        let msg = e.to_string();
        assert!(
            msg.contains("cargo build -p conduit-kernel --release"),
            "{msg}"
        );
        let e = ws
            .kernel(Some(Path::new("/nonexistent/kernel.elf")))
            .expect_err("missing");
        assert!(matches!(e, PathError::KernelArgMissing(_)));
    }
}
