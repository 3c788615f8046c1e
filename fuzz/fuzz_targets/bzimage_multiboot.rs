//! Fuzz target: the Linux bzImage setup header and the Multiboot header checks
//! (`conduit_bootproto::bzimage`, `conduit_bootproto::multiboot`), on kernel files a
//! configuration may name.
//!
//! Invariants beyond "no panic" (Linux boot protocol 2.12+, Multiboot 0.6.96 §3.1):
//! - an accepted bzImage has its setup sectors and a protected-mode kernel inside the file,
//!   syssize within the kernel, a power-of-two alignment and a non-zero init size, protocol
//!   2.12 or later with a 64-bit entry;
//! - a Multiboot header found lies 4-byte aligned in the first 8 KiB with a valid checksum;
//!   an address load it describes reads only inside the file and its entry point lies in the
//!   loaded range.
#![no_main]

use conduit_bootproto::bzimage::SetupHeader;
use conduit_bootproto::multiboot::Header;
use libfuzzer_sys::fuzz_target;

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = SetupHeader::parse(data) {
        assert!(h.setup_len < data.len(), "a kernel follows the setup code");
        assert_eq!(h.kernel_len, (data.len() - h.setup_len) as u64);
        assert!(u64::from(le32(data, 0x1f4)) * 16 <= h.kernel_len, "syssize");
        assert!(h.kernel_alignment.is_power_of_two() && h.init_size != 0);
        assert!(h.version >= 0x020c && h.header_end <= h.setup_len);
        assert_eq!(le32(data, 0x202), u32::from_le_bytes(*b"HdrS"));
    }
    if let Ok(mb) = Header::find(data) {
        assert!(mb.offset.is_multiple_of(4) && mb.offset + 12 <= data.len().min(8192));
        let (magic, flags, sum) = (
            le32(data, mb.offset),
            le32(data, mb.offset + 4),
            le32(data, mb.offset + 8),
        );
        assert_eq!(magic, 0x1bad_b002);
        assert_eq!(magic.wrapping_add(flags).wrapping_add(sum), 0, "checksum");
        assert_eq!(flags, mb.flags);
        if let Ok(Some(load)) = mb.address_load(data) {
            assert!(
                load.file_offset + load.file_len <= data.len() as u64,
                "{load:?}"
            );
            assert!(load.file_len <= load.mem_len, "{load:?}");
            assert!((load.load_addr..load.load_addr + load.mem_len).contains(&load.entry));
        }
    }
});
