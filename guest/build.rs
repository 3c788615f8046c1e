//! Links every guest at a fixed address: its own linker script, and no PIE (the target's default),
//! so the output is an `ET_EXEC` whose `PT_LOAD` segments sit where `conduit.toml` expects them.

use std::path::PathBuf;

/// (binary, linker script in `link/`).
const BINS: &[(&str, &str)] = &[
    ("hello64", "long64.ld"),
    ("hostile", "long64.ld"),
    ("triple", "long64.ld"),
    ("bench64", "long64.ld"),
    ("pcigst64", "long64.ld"),
    ("nvmegst64", "long64.ld"),
    ("ticker64", "long64.ld"),
    ("irq64", "long64.ld"),
    ("irqstack", "long64.ld"),
    ("cpustate_a", "long64.ld"),
    ("cpustate_b", "long64.ld"),
    ("real16", "real16.ld"),
    ("mboot32", "mboot32.ld"),
    ("vplat", "vplat.ld"),
];

fn main() {
    let link =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default()).join("link");
    for (bin, script) in BINS {
        println!(
            "cargo:rustc-link-arg-bin={bin}=-T{}",
            link.join(script).display()
        );
    }
    // The target links static PIEs by default; guests are loaded at their link address.
    println!("cargo:rustc-link-arg-bins=--no-pie");
    // Debug info stays in the build, not in the boot bundle (symbols stay, for reading RIPs).
    println!("cargo:rustc-link-arg-bins=--strip-debug");
    println!("cargo:rerun-if-changed=link");
    println!("cargo:rerun-if-changed=build.rs");
}
