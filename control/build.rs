//! Links the control task at its fixed address in its own PML4 slot (`link.ld`, matching
//! `conduit_control_abi::layout::IMAGE_BASE`), without PIE, so the kernel can load its `PT_LOAD`
//! segments where they were linked.

use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    println!(
        "cargo:rustc-link-arg-bins=-T{}",
        dir.join("link.ld").display()
    );
    println!("cargo:rustc-link-arg-bins=--no-pie");
    println!("cargo:rustc-link-arg-bins=--strip-debug");
    println!("cargo:rerun-if-changed=link.ld");
    println!("cargo:rerun-if-changed=build.rs");
}
