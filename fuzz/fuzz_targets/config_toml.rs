//! Fuzz target: `conduit.toml` and the guest images it names, as the image builder reads them
//! (`conduit_config::toml_front`), and the boot bundle made from the result.
//!
//! Input: the configuration text, a NUL byte, then the bytes every image key reads as.
//! Invariants beyond "no panic":
//! - an accepted configuration has at most 64 guests with unique, non-empty names and at most
//!   768 MiB of guest memory in all, and no device assigned twice;
//! - every placed guest's segments lie inside its memory, do not overlap, carry no more file
//!   bytes than memory bytes, and its entry point lies inside one of them (ELF and flat
//!   images; operating-system guests inside their memory);
//! - the bundle made from it decodes to the same configuration and images.
#![no_main]

use conduit_config::toml_front::parse;
use conduit_config::{Bundle, ExitMethod};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let Ok(text) = core::str::from_utf8(&data[..split]) else {
        return;
    };
    let image = data.get(split + 1..).unwrap_or(&[]).to_vec();
    let Ok(doc) = parse(text, ExitMethod::BochsShutdown) else {
        return;
    };
    assert!(doc.guests.len() <= 64);
    let total: u64 = doc.guests.iter().map(|g| u64::from(g.memory_mib)).sum();
    assert!(total <= 768, "{total} MiB of guest memory");
    for (i, g) in doc.guests.iter().enumerate() {
        assert!(!g.name.is_empty());
        assert!(
            doc.guests[..i].iter().all(|h| h.name != g.name),
            "duplicate {:?}",
            g.name
        );
    }
    let assigned: Vec<_> = doc.guests.iter().flat_map(|g| g.devices.iter()).collect();
    for (i, d) in assigned.iter().enumerate() {
        assert!(!assigned[..i].contains(d), "{d} assigned twice");
    }
    let Ok(loaded) = doc.resolve(|_| Ok(image.clone())) else {
        return;
    };
    for g in &loaded.config.guests {
        let memory = g.memory_bytes();
        let mut segments = g.segments.clone();
        segments.sort_by_key(|s| s.gpa);
        for s in &segments {
            let end = s.gpa.checked_add(s.mem_len).expect("segment end overflows");
            assert!(
                end <= memory,
                "guest {:?}: segment {s:?} outside {memory:#x}",
                g.name
            );
            assert!(s.file_len <= s.mem_len, "guest {:?}: {s:?}", g.name);
        }
        for w in segments.windows(2) {
            assert!(w[0].end() <= w[1].gpa, "guest {:?}: {w:?} overlap", g.name);
        }
        assert!(
            g.entry_point < memory,
            "guest {:?}: entry outside memory",
            g.name
        );
        if g.os.is_none() {
            assert!(
                segments
                    .iter()
                    .any(|s| (s.gpa..s.end()).contains(&g.entry_point)),
                "guest {:?}: entry {:#x} outside its segments",
                g.name,
                g.entry_point
            );
            for s in &segments {
                assert!(
                    s.file_offset + s.file_len <= image.len() as u64,
                    "{s:?} beyond the image"
                );
            }
        }
    }
    let bundle = loaded.bundle();
    let bytes = bundle.encode().expect("a loaded configuration encodes");
    assert_eq!(Bundle::decode(&bytes), Ok(bundle), "bundle round trip");
});
