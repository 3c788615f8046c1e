//! Fuzz target: the decoder of the guest instruction behind an MMIO exit (`conduit_mmio`).
//! The bytes are guest memory: the guest chooses them.
//!
//! Invariants beyond "no panic":
//! - a decoded access is what a reference decoder written here from the SDM (Vol. 2A §2.1.1
//!   prefixes, §2.2.1 REX, Tables 2-2 and 2-3 for ModR/M, SIB and displacement; the MOV and
//!   MOVZX pages for operand sizes and immediates) makes of the same bytes: length, access
//!   size, direction, register (REX.R, AH-BH without REX) and immediate (sign-extended with
//!   REX.W);
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

/// The reference: the accepted subset decoded independently of the crate.
fn reference(bytes: &[u8], mode: Mode) -> Option<Access> {
    let mut i = 0;
    let (mut opsize, mut rex) = (false, 0u8);
    loop {
        match *bytes.get(i)? {
            0x66 => opsize = true,
            0x67 if mode == Mode::Protected32 => return None,
            0x67 | 0x26 | 0x2e | 0x36 | 0x3e | 0x64 | 0x65 => {}
            b @ 0x40..=0x4f if mode == Mode::Long64 => {
                rex = b;
                i += 1;
                break;
            }
            _ => break,
        }
        i += 1;
    }
    let w = rex & 8 != 0;
    let full = if w {
        8
    } else if opsize {
        2
    } else {
        4
    };
    let mut op = u16::from(*bytes.get(i)?);
    i += 1;
    if op == 0x0f {
        op = 0x0f00 | u16::from(*bytes.get(i)?);
        i += 1;
    }
    if !matches!(op, 0x88..=0x8b | 0xc6 | 0xc7 | 0x0fb6 | 0x0fb7) {
        return None;
    }
    let modrm = *bytes.get(i)?;
    i += 1;
    let (md, reg, rm) = (modrm >> 6, (modrm >> 3) & 7, modrm & 7);
    if md == 3 || (matches!(op, 0xc6 | 0xc7) && reg != 0) {
        return None;
    }
    if rm == 4 {
        let base = *bytes.get(i)? & 7;
        i += 1;
        if md == 0 && base == 5 {
            i += 4;
        }
    } else if md == 0 && rm == 5 {
        i += 4;
    }
    i += match md {
        1 => 1,
        2 => 4,
        _ => 0,
    };
    let n = reg | ((rex & 4) << 1);
    let byte_reg = if rex == 0 && (4..8).contains(&n) {
        Reg {
            index: n - 4,
            high_byte: true,
        }
    } else {
        Reg {
            index: n,
            high_byte: false,
        }
    };
    let reg_full = Reg {
        index: n,
        high_byte: false,
    };
    let imm = |i: usize, len: usize| -> Option<u64> {
        let b = bytes.get(i..i + len)?;
        Some(b.iter().rev().fold(0u64, |v, &x| (v << 8) | u64::from(x)))
    };
    let (size, kind, imm_len) = match op {
        0x88 => (1, Kind::StoreReg(byte_reg), 0),
        0x89 => (full, Kind::StoreReg(reg_full), 0),
        0x8a => (
            1,
            Kind::Load {
                dest: byte_reg,
                dest_size: 1,
            },
            0,
        ),
        0x8b => (
            full,
            Kind::Load {
                dest: reg_full,
                dest_size: full,
            },
            0,
        ),
        0x0fb6 => (
            1,
            Kind::Load {
                dest: reg_full,
                dest_size: full,
            },
            0,
        ),
        0x0fb7 => (
            2,
            Kind::Load {
                dest: reg_full,
                dest_size: full,
            },
            0,
        ),
        0xc6 => (1, Kind::StoreImm(imm(i, 1)?), 1),
        _ => match full {
            2 => (2, Kind::StoreImm(imm(i, 2)?), 2),
            4 => (4, Kind::StoreImm(imm(i, 4)?), 4),
            _ => (8, Kind::StoreImm(imm(i, 4)? as u32 as i32 as i64 as u64), 4),
        },
    };
    let len = i + imm_len;
    if len > MAX_LEN || len > bytes.len() {
        return None;
    }
    Some(Access {
        size,
        kind,
        len: len as u8,
    })
}

fn check(bytes: &[u8], mode: Mode, access: Access, gpr_seed: u64) {
    assert_eq!(
        Some(access),
        reference(bytes, mode),
        "the reference decodes {bytes:02x?} alike"
    );
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
