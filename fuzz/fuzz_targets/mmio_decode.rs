//! Fuzz target: the decoder of the guest instruction behind an MMIO exit (`conduit_mmio`).
//! The bytes are guest memory: the guest chooses them.
//!
//! Invariants beyond "no panic":
//! - a decoded access's length is the instruction's: 1..=15 bytes and within the bytes given;
//!   decoding exactly those bytes gives the same access; one byte fewer is `Truncated`;
//! - the access size is 1, 2, 4 or 8, a load's destination is at least as wide as the access
//!   and register numbers are 0-15 (AH-BH only without REX, as registers 0-3);
//! - applying a load changes only its destination register, and a 32-bit load zero-extends;
//!   a store of a register reads back exactly its low `size` bytes.
#![no_main]

use conduit_mmio::{Access, DecodeError, Kind, MAX_LEN, Mode, Reg, decode};
use libfuzzer_sys::fuzz_target;

fn check_reg(r: Reg) {
    assert!(r.index < 16);
    if r.high_byte {
        assert!(r.index < 4, "AH..BH are registers 0-3");
    }
}

fn mask(size: u8) -> u64 {
    if size == 8 {
        u64::MAX
    } else {
        (1u64 << (8 * size)) - 1
    }
}

fn check(bytes: &[u8], mode: Mode, access: Access, gpr_seed: u64) {
    let len = usize::from(access.len);
    assert!(
        (1..=MAX_LEN).contains(&len) && len <= bytes.len(),
        "len {len}"
    );
    assert!(matches!(access.size, 1 | 2 | 4 | 8), "size {}", access.size);
    assert_eq!(
        decode(&bytes[..len], mode),
        Ok(access),
        "the instruction alone"
    );
    assert_eq!(decode(&bytes[..len - 1], mode), Err(DecodeError::Truncated));
    let gpr: [u64; 16] = core::array::from_fn(|i| {
        gpr_seed.rotate_left(i as u32 * 5) ^ (i as u64).wrapping_mul(0x9e37_79b9)
    });
    match access.kind {
        Kind::Load { dest, dest_size } => {
            check_reg(dest);
            assert!(matches!(dest_size, 1 | 2 | 4 | 8) && dest_size >= access.size);
            let value = gpr_seed.wrapping_mul(0x0123_4567_89ab_cdef);
            let mut after = gpr;
            assert!(
                access.load_into(&mut after, value),
                "a decoded load applies"
            );
            for (i, (a, b)) in gpr.iter().zip(after.iter()).enumerate() {
                if i != usize::from(dest.index) {
                    assert_eq!(a, b, "register {i} is not the destination");
                }
            }
            let got = after[usize::from(dest.index)];
            let loaded = value & mask(access.size);
            let before = gpr[usize::from(dest.index)];
            match (dest.high_byte, dest_size) {
                (true, _) => {
                    assert_eq!((got >> 8) & 0xff, loaded);
                    assert_eq!(
                        got & !0xff00,
                        before & !0xff00,
                        "AH..BH keep the other bits"
                    );
                }
                (false, 4) => assert_eq!(got, loaded, "32-bit destinations zero-extend"),
                (false, 8) => assert_eq!(got, loaded),
                (false, n) => {
                    assert_eq!(got & mask(n), loaded);
                    assert_eq!(got & !mask(n), before & !mask(n), "8/16-bit keep the rest");
                }
            }
        }
        Kind::StoreReg(src) => {
            check_reg(src);
            let stored = access
                .store_value(&gpr)
                .expect("a register store has a value");
            let reg = gpr[usize::from(src.index)];
            let expected = if src.high_byte {
                (reg >> 8) & 0xff
            } else {
                reg & mask(access.size)
            };
            assert_eq!(stored, expected);
        }
        Kind::StoreImm(imm) => {
            let stored = access
                .store_value(&gpr)
                .expect("an immediate store has a value");
            assert_eq!(stored, imm & mask(access.size));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, bytes)) = data.split_first() else {
        return;
    };
    let gpr_seed = u64::from(seed).wrapping_mul(0x0101_0101_0101_0101);
    for mode in [Mode::Long64, Mode::Protected32] {
        if let Ok(access) = decode(bytes, mode) {
            check(bytes, mode, access, gpr_seed);
        }
    }
});
