//! Fuzz target: the ELF checks of guest images (`conduit_config::elf`), 64-bit guests and
//! 32- or 64-bit Multiboot kernels.
//!
//! Invariants beyond "no panic":
//! - an accepted image has at least one segment, every segment's file bytes lie inside the
//!   file, no segment has more file bytes than memory bytes, and no segment's end overflows;
//! - the ELF64 parser accepts nothing the 32-or-64 parser refuses, with the same result.
#![no_main]

use conduit_config::elf::{ElfImage, parse, parse_32_or_64};
use libfuzzer_sys::fuzz_target;

fn check(image: &ElfImage, len: usize) {
    assert!(!image.segments.is_empty(), "something to load");
    for s in &image.segments {
        let end = s
            .file_offset
            .checked_add(s.file_len)
            .expect("file range overflows");
        assert!(end <= len as u64, "{s:?} beyond the {len}-byte file");
        assert!(s.file_len <= s.mem_len, "{s:?}");
        assert!(s.gpa.checked_add(s.mem_len).is_some(), "{s:?} overflows");
    }
}

fuzz_target!(|data: &[u8]| {
    let any = parse_32_or_64(data);
    if let Ok(image) = &any {
        check(image, data.len());
    }
    if let Ok(image) = parse(data) {
        check(&image, data.len());
        assert_eq!(any, Ok(image), "ELF64 acceptance agrees");
    }
});
