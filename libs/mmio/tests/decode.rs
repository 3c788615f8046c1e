//! The MOV forms a compiler emits for volatile MMIO accesses, and what must be refused.

use conduit_mmio::{Access, DecodeError, Kind, Mode, Reg, decode, truncate};

fn reg(index: u8) -> Reg {
    Reg {
        index,
        high_byte: false,
    }
}

fn load(size: u8, dest: u8, dest_size: u8, len: u8) -> Access {
    Access {
        size,
        kind: Kind::Load {
            dest: reg(dest),
            dest_size,
        },
        len,
    }
}

#[test]
fn loads() {
    // mov eax, [rdi]
    assert_eq!(decode(&[0x8b, 0x07], Mode::Long64), Ok(load(4, 0, 4, 2)));
    // mov rax, [rdi+0x8]
    assert_eq!(
        decode(&[0x48, 0x8b, 0x47, 0x08], Mode::Long64),
        Ok(load(8, 0, 8, 4))
    );
    // mov r9d, [rax+rcx*4+0x12345678]
    assert_eq!(
        decode(
            &[0x44, 0x8b, 0x8c, 0x88, 0x78, 0x56, 0x34, 0x12],
            Mode::Long64
        ),
        Ok(load(4, 9, 4, 8))
    );
    // mov ax, [rbx]
    assert_eq!(
        decode(&[0x66, 0x8b, 0x03], Mode::Long64),
        Ok(load(2, 0, 2, 3))
    );
    // mov cl, [rdx]
    assert_eq!(decode(&[0x8a, 0x0a], Mode::Long64), Ok(load(1, 1, 1, 2)));
    // movzx eax, byte [rsi]
    assert_eq!(
        decode(&[0x0f, 0xb6, 0x06], Mode::Long64),
        Ok(load(1, 0, 4, 3))
    );
    // movzx r10d, word [rip+0x100]
    assert_eq!(
        decode(
            &[0x44, 0x0f, 0xb7, 0x15, 0x00, 0x01, 0x00, 0x00],
            Mode::Long64
        ),
        Ok(load(2, 10, 4, 8))
    );
    // mov eax, [0xe0008000] (SIB with no base, disp32)
    assert_eq!(
        decode(&[0x8b, 0x04, 0x25, 0x00, 0x80, 0x00, 0xe0], Mode::Long64),
        Ok(load(4, 0, 4, 7))
    );
    // mov eax, [rbp+0] (mod 1, rm 5: disp8, not RIP-relative)
    assert_eq!(
        decode(&[0x8b, 0x45, 0x00], Mode::Long64),
        Ok(load(4, 0, 4, 3))
    );
    // mov eax, [rsp+0x10] (SIB)
    assert_eq!(
        decode(&[0x8b, 0x44, 0x24, 0x10], Mode::Long64),
        Ok(load(4, 0, 4, 4))
    );
    // Segment override and address-size prefix: mov eax, fs:[edi]
    assert_eq!(
        decode(&[0x64, 0x67, 0x8b, 0x07], Mode::Long64),
        Ok(load(4, 0, 4, 4))
    );
    // 32-bit mode: mov ecx, [eax+0x10]
    assert_eq!(
        decode(&[0x8b, 0x48, 0x10], Mode::Protected32),
        Ok(load(4, 1, 4, 3))
    );
}

#[test]
fn stores() {
    // mov [rdi], esi
    assert_eq!(
        decode(&[0x89, 0x37], Mode::Long64),
        Ok(Access {
            size: 4,
            kind: Kind::StoreReg(reg(6)),
            len: 2
        })
    );
    // mov [rax+0x14], r8
    assert_eq!(
        decode(&[0x4c, 0x89, 0x40, 0x14], Mode::Long64),
        Ok(Access {
            size: 8,
            kind: Kind::StoreReg(reg(8)),
            len: 4
        })
    );
    // mov byte [rdi], ah (no REX: register 4 is AH)
    assert_eq!(
        decode(&[0x88, 0x27], Mode::Long64),
        Ok(Access {
            size: 1,
            kind: Kind::StoreReg(Reg {
                index: 0,
                high_byte: true
            }),
            len: 2
        })
    );
    // mov byte [rdi], spl (REX: register 4 is SPL)
    assert_eq!(
        decode(&[0x40, 0x88, 0x27], Mode::Long64),
        Ok(Access {
            size: 1,
            kind: Kind::StoreReg(reg(4)),
            len: 3
        })
    );
    // mov dword [rdi+0x14], 0x101
    assert_eq!(
        decode(&[0xc7, 0x47, 0x14, 0x01, 0x01, 0x00, 0x00], Mode::Long64),
        Ok(Access {
            size: 4,
            kind: Kind::StoreImm(0x101),
            len: 7
        })
    );
    // mov qword [rdi], -1 (imm32 sign-extended)
    assert_eq!(
        decode(&[0x48, 0xc7, 0x07, 0xff, 0xff, 0xff, 0xff], Mode::Long64),
        Ok(Access {
            size: 8,
            kind: Kind::StoreImm(u64::MAX),
            len: 7
        })
    );
    // mov word [rdi], 0x1234
    assert_eq!(
        decode(&[0x66, 0xc7, 0x07, 0x34, 0x12], Mode::Long64),
        Ok(Access {
            size: 2,
            kind: Kind::StoreImm(0x1234),
            len: 5
        })
    );
    // mov byte [rip+0x10], 0x5a
    assert_eq!(
        decode(&[0xc6, 0x05, 0x10, 0, 0, 0, 0x5a], Mode::Long64),
        Ok(Access {
            size: 1,
            kind: Kind::StoreImm(0x5a),
            len: 7
        })
    );
}

#[test]
fn refusals() {
    assert_eq!(decode(&[], Mode::Long64), Err(DecodeError::Truncated));
    assert_eq!(decode(&[0x8b], Mode::Long64), Err(DecodeError::Truncated));
    assert_eq!(
        decode(&[0x8b, 0x80, 0x00], Mode::Long64),
        Err(DecodeError::Truncated)
    );
    // mov eax, ecx: no memory operand.
    assert_eq!(
        decode(&[0x8b, 0xc1], Mode::Long64),
        Err(DecodeError::RegisterOperand)
    );
    // lock add [rdi], eax; rep movsd; add [rdi], eax.
    assert_eq!(
        decode(&[0xf0, 0x01, 0x07], Mode::Long64),
        Err(DecodeError::UnsupportedPrefix(0xf0))
    );
    assert_eq!(
        decode(&[0xf3, 0xa5], Mode::Long64),
        Err(DecodeError::UnsupportedPrefix(0xf3))
    );
    assert_eq!(
        decode(&[0x01, 0x07], Mode::Long64),
        Err(DecodeError::Unsupported(0x01))
    );
    // c7 /1 is not MOV.
    assert_eq!(
        decode(&[0xc7, 0x0f, 0, 0, 0, 0], Mode::Long64),
        Err(DecodeError::Unsupported(0xc7))
    );
    // 0f b8 (popcnt without f3) is not MOVZX.
    assert_eq!(
        decode(&[0x0f, 0xaf, 0x07], Mode::Long64),
        Err(DecodeError::Unsupported(0xaf))
    );
    // 16-bit addressing in 32-bit mode.
    assert_eq!(
        decode(&[0x67, 0x8b, 0x07], Mode::Protected32),
        Err(DecodeError::Addressing16)
    );
    // In 32-bit mode 0x48 is DEC EAX, not REX.
    assert_eq!(
        decode(&[0x48, 0x8b, 0x07], Mode::Protected32),
        Err(DecodeError::Unsupported(0x48))
    );
    // Fifteen prefixes and more.
    let long = [0x66u8; 16];
    assert_eq!(decode(&long, Mode::Long64), Err(DecodeError::TooLong));
}

#[test]
fn every_byte_sequence_decodes_or_errs_within_bounds() {
    // Exhaustive over two bytes, sampled over longer ones: never a panic, never a length
    // beyond the bytes or 15.
    let mut buf = [0u8; 15];
    for a in 0..=255u8 {
        for b2 in 0..=255u8 {
            buf[0] = a;
            buf[1] = b2;
            for (i, x) in buf.iter_mut().enumerate().skip(2) {
                *x = (a ^ b2).wrapping_mul(i as u8 + 1);
            }
            for mode in [Mode::Long64, Mode::Protected32] {
                if let Ok(acc) = decode(&buf, mode) {
                    assert!(acc.len as usize <= buf.len());
                    assert!(matches!(acc.size, 1 | 2 | 4 | 8));
                }
                let _ = decode(&buf[..2], mode);
            }
        }
    }
}

#[test]
fn loads_and_stores_move_the_right_bits() {
    let mut gpr = [0u64; 16];
    gpr[0] = 0xffff_ffff_ffff_ffff;
    // mov eax, [..]: zero-extends.
    let a = decode(&[0x8b, 0x07], Mode::Long64).expect("ok");
    assert!(a.load_into(&mut gpr, 0x1234_5678_9abc_def0));
    assert_eq!(gpr[0], 0x9abc_def0);
    // mov ax, [..]: keeps the upper 48 bits.
    gpr[0] = 0xffff_ffff_ffff_ffff;
    let a = decode(&[0x66, 0x8b, 0x07], Mode::Long64).expect("ok");
    a.load_into(&mut gpr, 0x1234);
    assert_eq!(gpr[0], 0xffff_ffff_ffff_1234);
    // mov ah, [..]
    gpr[0] = 0x1111_1111;
    let a = decode(&[0x8a, 0x27], Mode::Long64).expect("ok");
    a.load_into(&mut gpr, 0xab);
    assert_eq!(gpr[0], 0x1111_ab11);
    // movzx eax, byte [..]
    gpr[0] = u64::MAX;
    let a = decode(&[0x0f, 0xb6, 0x07], Mode::Long64).expect("ok");
    a.load_into(&mut gpr, 0x1ff);
    assert_eq!(gpr[0], 0xff);
    // movzx ax, byte [..] (66): keeps bits 63:16.
    gpr[0] = u64::MAX;
    let a = decode(&[0x66, 0x0f, 0xb6, 0x07], Mode::Long64).expect("ok");
    a.load_into(&mut gpr, 0x7f);
    assert_eq!(gpr[0], 0xffff_ffff_ffff_007f);
    // A store's value: the register's low bytes, or AH.
    gpr[6] = 0x1122_3344_5566_7788;
    let s = decode(&[0x89, 0x37], Mode::Long64).expect("ok");
    assert_eq!(s.store_value(&gpr), Some(0x5566_7788));
    gpr[0] = 0xbeef;
    let s = decode(&[0x88, 0x27], Mode::Long64).expect("ok");
    assert_eq!(s.store_value(&gpr), Some(0xbe));
    assert!(!s.load_into(&mut gpr, 0));
    assert_eq!(a.store_value(&gpr), None);
    assert_eq!(truncate(u64::MAX, 2), 0xffff);
}
