//! Decoding the guest instruction behind an MMIO exit.
//!
//! When a guest touches guest-physical memory that the hypervisor emulates (an ECAM window, the
//! page of an MSI-X table), EPT reports the address and whether it was a read or a write, but not
//! the operand or the instruction's length (the VM-exit instruction-length field is not defined
//! for EPT violations, Intel SDM Vol. 3C §28.2.5). So the instruction is fetched from guest
//! memory and decoded here. Only what drivers use on device registers is accepted, all in 32- or
//! 64-bit addressing (SDM Vol. 2A §2.1 "Instruction Format", §2.2.1 "REX Prefixes", Table 2-2
//! "32-Bit Addressing Forms with the ModR/M Byte", Table 2-3 "... with the SIB Byte"):
//!
//! | opcode | instruction | access |
//! |---|---|---|
//! | `88 /r` | `MOV r/m8, r8` | store 1 byte |
//! | `89 /r` | `MOV r/m16/32/64, r16/32/64` | store 2/4/8 |
//! | `8A /r` | `MOV r8, r/m8` | load 1 |
//! | `8B /r` | `MOV r16/32/64, r/m16/32/64` | load 2/4/8 |
//! | `C6 /0 ib` | `MOV r/m8, imm8` | store 1 |
//! | `C7 /0 iw/id` | `MOV r/m16/32/64, imm16/32` (sign-extended to 64 with REX.W) | store 2/4/8 |
//! | `0F B6 /r` | `MOVZX r16/32/64, r/m8` | load 1, zero-extended |
//! | `0F B7 /r` | `MOVZX r32/64, r/m16` | load 2, zero-extended |
//!
//! Prefixes: operand size (66), address size (67), segment overrides (26 2E 36 3E 64 65) and one
//! REX immediately before the opcode. Anything else (LOCK, REP, string instructions, a register
//! operand where memory is needed, 16-bit addressing, more than 15 bytes) is an error: the caller
//! refuses the access rather than guess.
//!
//! [`Access::load_into`] applies a load to a register as the CPU would: a 32-bit destination is
//! zero-extended into 64 bits, 8- and 16-bit destinations keep the other bits, and without REX
//! registers 4-7 of a byte operand are AH, CH, DH, BH.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

/// The longest x86 instruction (SDM Vol. 2A §2.3.11).
pub const MAX_LEN: usize = 15;

/// The code segment's defaults.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// 64-bit mode: 64-bit addresses, 32-bit operands by default, REX available.
    Long64,
    /// 32-bit protected or compatibility mode (CS.D = 1): 32-bit addresses and operands.
    Protected32,
}

/// A general-purpose register operand (SDM numbering: 0 RAX, 1 RCX, 2 RDX, 3 RBX, 4 RSP, 5 RBP,
/// 6 RSI, 7 RDI, 8-15 R8-R15).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Reg {
    /// Register number.
    pub index: u8,
    /// AH, CH, DH or BH: bits 15:8 of register `index` (0-3).
    pub high_byte: bool,
}

/// What the instruction does with the memory operand.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// Memory is read into `dest`, `size` bytes zero-extended to `dest_size` bytes (equal for a
    /// plain MOV).
    Load {
        /// Destination register.
        dest: Reg,
        /// Width of the destination in bytes (1, 2, 4, 8).
        dest_size: u8,
    },
    /// The register is written to memory (its low `size` bytes).
    StoreReg(Reg),
    /// The immediate is written to memory (its low `size` bytes).
    StoreImm(u64),
}

/// A decoded MMIO instruction.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Access {
    /// Bytes of memory accessed (1, 2, 4, 8).
    pub size: u8,
    /// Direction and operand.
    pub kind: Kind,
    /// Length of the instruction in bytes (to advance RIP).
    pub len: u8,
}

/// Why bytes were not decoded.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DecodeError {
    /// The bytes end inside the instruction.
    Truncated,
    /// Longer than [`MAX_LEN`] bytes (too many prefixes).
    TooLong,
    /// An opcode this decoder does not accept.
    Unsupported(u8),
    /// A prefix this decoder does not accept (LOCK, REP/REPNE).
    UnsupportedPrefix(u8),
    /// The ModR/M byte names a register, not memory.
    RegisterOperand,
    /// 16-bit addressing (67 in 32-bit mode).
    Addressing16,
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Truncated => write!(f, "instruction bytes end early"),
            Self::TooLong => write!(f, "instruction longer than 15 bytes"),
            Self::Unsupported(op) => write!(f, "opcode {op:#04x} is not an MMIO MOV"),
            Self::UnsupportedPrefix(p) => write!(f, "prefix {p:#04x} is not accepted"),
            Self::RegisterOperand => write!(f, "the operand is a register, not memory"),
            Self::Addressing16 => write!(f, "16-bit addressing is not supported"),
        }
    }
}

struct Bytes<'a> {
    b: &'a [u8],
    at: usize,
}

impl Bytes<'_> {
    fn next(&mut self) -> Result<u8, DecodeError> {
        if self.at >= MAX_LEN {
            return Err(DecodeError::TooLong);
        }
        let v = *self.b.get(self.at).ok_or(DecodeError::Truncated)?;
        self.at += 1;
        Ok(v)
    }

    fn skip(&mut self, n: usize) -> Result<(), DecodeError> {
        for _ in 0..n {
            self.next()?;
        }
        Ok(())
    }

    fn imm(&mut self, n: usize) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for i in 0..n {
            v |= u64::from(self.next()?) << (8 * i);
        }
        Ok(v)
    }
}

/// Skips the SIB byte and displacement of a memory ModR/M (32/64-bit addressing).
fn skip_address(bytes: &mut Bytes<'_>, modrm: u8) -> Result<(), DecodeError> {
    let md = modrm >> 6;
    let rm = modrm & 7;
    if md == 3 {
        return Err(DecodeError::RegisterOperand);
    }
    let mut disp = match md {
        1 => 1,
        2 => 4,
        _ => 0,
    };
    if rm == 4 {
        let sib = bytes.next()?;
        if md == 0 && sib & 7 == 5 {
            disp = 4;
        }
    } else if md == 0 && rm == 5 {
        // disp32 (RIP-relative in 64-bit mode).
        disp = 4;
    }
    bytes.skip(disp)
}

/// Decodes the instruction at the start of `bytes` (at most [`MAX_LEN`] are looked at).
pub fn decode(bytes: &[u8], mode: Mode) -> Result<Access, DecodeError> {
    let mut b = Bytes { b: bytes, at: 0 };
    let mut opsize16 = false;
    let mut addr_override = false;
    let mut rex = 0u8;
    let mut op = b.next()?;
    loop {
        match op {
            0x66 => opsize16 = true,
            0x67 => addr_override = true,
            0x26 | 0x2e | 0x36 | 0x3e | 0x64 | 0x65 => {}
            0xf0 | 0xf2 | 0xf3 => return Err(DecodeError::UnsupportedPrefix(op)),
            0x40..=0x4f if mode == Mode::Long64 => {
                // REX must come last; the byte after it is the opcode.
                rex = op;
                op = b.next()?;
                break;
            }
            _ => break,
        }
        op = b.next()?;
    }
    if mode == Mode::Protected32 && addr_override {
        return Err(DecodeError::Addressing16);
    }
    let rex_w = rex & 0x8 != 0;
    let rex_r = (rex & 0x4) << 1;
    let full = if rex_w {
        8
    } else if opsize16 {
        2
    } else {
        4
    };
    let byte_reg = |n: u8| -> Reg {
        if rex == 0 && (4..8).contains(&n) {
            Reg {
                index: n - 4,
                high_byte: true,
            }
        } else {
            Reg {
                index: n,
                high_byte: false,
            }
        }
    };
    let (size, kind) = match op {
        0x88..=0x8b => {
            let modrm = b.next()?;
            skip_address(&mut b, modrm)?;
            let n = ((modrm >> 3) & 7) | rex_r;
            match op {
                0x88 => (1, Kind::StoreReg(byte_reg(n))),
                0x89 => (
                    full,
                    Kind::StoreReg(Reg {
                        index: n,
                        high_byte: false,
                    }),
                ),
                0x8a => (
                    1,
                    Kind::Load {
                        dest: byte_reg(n),
                        dest_size: 1,
                    },
                ),
                _ => (
                    full,
                    Kind::Load {
                        dest: Reg {
                            index: n,
                            high_byte: false,
                        },
                        dest_size: full,
                    },
                ),
            }
        }
        0xc6 | 0xc7 => {
            let modrm = b.next()?;
            if (modrm >> 3) & 7 != 0 {
                return Err(DecodeError::Unsupported(op));
            }
            skip_address(&mut b, modrm)?;
            if op == 0xc6 {
                (1, Kind::StoreImm(b.imm(1)?))
            } else if full == 2 {
                (2, Kind::StoreImm(b.imm(2)?))
            } else {
                let v = b.imm(4)?;
                let v = if full == 8 {
                    v as u32 as i32 as i64 as u64
                } else {
                    v
                };
                (full, Kind::StoreImm(v))
            }
        }
        0x0f => {
            let op2 = b.next()?;
            if op2 != 0xb6 && op2 != 0xb7 {
                return Err(DecodeError::Unsupported(op2));
            }
            let modrm = b.next()?;
            skip_address(&mut b, modrm)?;
            let n = ((modrm >> 3) & 7) | rex_r;
            let size = if op2 == 0xb6 { 1 } else { 2 };
            (
                size,
                Kind::Load {
                    dest: Reg {
                        index: n,
                        high_byte: false,
                    },
                    dest_size: full,
                },
            )
        }
        other => return Err(DecodeError::Unsupported(other)),
    };
    Ok(Access {
        size,
        kind,
        len: b.at as u8,
    })
}

impl Access {
    /// The value a store writes, given the register file (SDM numbering).
    #[must_use]
    pub fn store_value(&self, gpr: &[u64; 16]) -> Option<u64> {
        let v = match self.kind {
            Kind::StoreImm(v) => v,
            Kind::StoreReg(r) => {
                let reg = *gpr.get(usize::from(r.index))?;
                if r.high_byte { reg >> 8 } else { reg }
            }
            Kind::Load { .. } => return None,
        };
        Some(truncate(v, self.size))
    }

    /// Writes `value` (the `size` bytes read) into the destination register of a load, as the
    /// CPU would. Returns false for a store.
    pub fn load_into(&self, gpr: &mut [u64; 16], value: u64) -> bool {
        let Kind::Load { dest, dest_size } = self.kind else {
            return false;
        };
        let Some(reg) = gpr.get_mut(usize::from(dest.index)) else {
            return false;
        };
        let value = truncate(value, self.size);
        *reg = match (dest_size, dest.high_byte) {
            (1, true) => (*reg & !0xff00) | (value << 8),
            (1, false) => (*reg & !0xff) | value,
            (2, _) => (*reg & !0xffff) | value,
            (4, _) => value,
            _ => value,
        };
        true
    }
}

/// The low `size` bytes of `v`.
#[must_use]
pub const fn truncate(v: u64, size: u8) -> u64 {
    match size {
        1 => v & 0xff,
        2 => v & 0xffff,
        4 => v & 0xffff_ffff,
        _ => v,
    }
}
