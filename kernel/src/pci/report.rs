//! The boot log's picture of the PCI tree: one line per function (BDF, vendor:device, class),
//! one with its BARs and sizes, one with its capability lists.

use super::Function;
use alloc::string::String;
use conduit_pci::{Bar, BarKind, ClassCode, cap_id, ext_cap_id};
use core::fmt::Write;
use log::{info, warn};

/// Human name of a class code (PCI Code and ID Assignment Spec, chapter 1).
pub fn class_name(class: ClassCode) -> &'static str {
    match (class.base, class.sub) {
        (0x01, 0x06) => "SATA controller",
        (0x01, 0x08) => "NVM Express controller",
        (0x01, _) => "storage controller",
        (0x02, 0x00) => "Ethernet controller",
        (0x02, _) => "network controller",
        (0x03, 0x00) => "VGA controller",
        (0x03, _) => "display controller",
        (0x06, 0x00) => "host bridge",
        (0x06, 0x01) => "ISA bridge",
        (0x06, 0x04) => "PCI-to-PCI bridge",
        (0x06, _) => "bridge",
        (0x0c, 0x03) => "USB controller",
        (0x0c, 0x05) => "SMBus controller",
        (0x0c, _) => "serial bus controller",
        (0x08, _) => "system peripheral",
        (0x00, _) | (0xff, _) => "unclassified device",
        _ => "device",
    }
}

fn cap_name(id: u8) -> &'static str {
    match id {
        cap_id::PM => "PM",
        cap_id::MSI => "MSI",
        cap_id::VENDOR => "vendor",
        cap_id::SSVID => "SSVID",
        cap_id::PCIE => "PCIe",
        cap_id::MSIX => "MSI-X",
        0x12 => "SATA",
        0x13 => "AF",
        _ => "?",
    }
}

fn ext_cap_name(id: u16) -> &'static str {
    match id {
        ext_cap_id::AER => "AER",
        0x0002 | 0x0009 => "VC",
        0x0003 => "DSN",
        0x000b => "vendor",
        ext_cap_id::ACS => "ACS",
        ext_cap_id::ARI => "ARI",
        ext_cap_id::ATS => "ATS",
        ext_cap_id::SRIOV => "SR-IOV",
        0x0019 => "SecPCIe",
        0x001e => "L1SS",
        _ => "?",
    }
}

/// `4 KiB`, `1 MiB`, `32 B`: sizes are powers of two, so exact.
pub fn size(bytes: u64) -> String {
    let (value, unit) = match bytes {
        b if b >= 1 << 30 && b.is_multiple_of(1 << 30) => (b >> 30, "GiB"),
        b if b >= 1 << 20 && b.is_multiple_of(1 << 20) => (b >> 20, "MiB"),
        b if b >= 1 << 10 && b.is_multiple_of(1 << 10) => (b >> 10, "KiB"),
        b => (b, "B"),
    };
    alloc::format!("{value} {unit}")
}

/// `io`, `mem32`, `mem64 prefetchable`, ...
pub fn bar_kind(bar: &Bar) -> &'static str {
    match (bar.kind, bar.prefetchable) {
        (BarKind::Io, _) => "io",
        (BarKind::Memory32, false) => "mem32",
        (BarKind::Memory32, true) => "mem32 prefetchable",
        (BarKind::Memory64, false) => "mem64",
        (BarKind::Memory64, true) => "mem64 prefetchable",
    }
}

/// Logs one function of the tree, indented by its depth.
pub fn log_function(f: &Function) {
    let indent = "  ".repeat(usize::from(f.depth));
    let c = f.header.class;
    let mut line = alloc::format!(
        "pci: {indent}{} {:04x}:{:04x} class {:02x}:{:02x}:{:02x} {}",
        f.address(),
        f.vendor_id(),
        f.device_id(),
        c.base,
        c.sub,
        c.prog_if,
        class_name(c)
    );
    if let Some(range) = f.bridge.and_then(|b| b.range()) {
        let _ = write!(line, ", buses {:02x}-{:02x}", range.start(), range.end());
    }
    if let Some(vf) = f.vf {
        let _ = write!(line, ", VF {} of {}", vf.index, vf.pf);
    }
    info!("{line}");
    let mut bars = String::new();
    for bar in f.bars.iter() {
        let _ = write!(
            bars,
            "{}BAR{} {} {:#x} size {}",
            if bars.is_empty() { "" } else { ", " },
            bar.index,
            bar_kind(bar),
            bar.address,
            size(bar.size)
        );
    }
    if !bars.is_empty() {
        info!("pci: {indent}    {bars}");
    }
    let mut caps = String::new();
    for cap in &f.caps {
        let _ = write!(caps, " {}@{:#x}", cap_name(cap.id), cap.offset);
    }
    if !f.ext_caps.is_empty() {
        caps.push(';');
        for cap in &f.ext_caps {
            let _ = write!(caps, " {}@{:#x}", ext_cap_name(cap.id), cap.offset);
        }
    }
    if !caps.is_empty() {
        info!("pci: {indent}    caps{caps}");
    }
    if (1..=4).contains(&f.intx.pin) {
        info!(
            "pci: {indent}    INTx: pin INT{}#, Interrupt Line {}",
            char::from(b'A' + f.intx.pin - 1),
            f.intx.line
        );
    }
    for p in &f.problems {
        warn!("pci: {indent}    {}: {p}", f.address());
    }
}
