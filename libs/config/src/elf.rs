//! A minimal ELF64 reader for guest images: the header and the program headers, nothing else.
//!
//! Only what a loader needs: a little-endian x86-64 `ET_EXEC` file whose `PT_LOAD` segments are
//! copied to their physical addresses (`p_paddr`). Every offset and length is checked against the
//! file with checked arithmetic: a hostile image is an error, never a panic or an overflow.

use crate::model::Segment;
use alloc::vec::Vec;

/// `\x7fELF`.
const MAGIC: [u8; 4] = [0x7f, b'E', b'L', b'F'];
const HEADER_LEN: usize = 64;
const PHDR_LEN: usize = 56;
const ELFCLASS32: u8 = 1;
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const EV_CURRENT: u8 = 1;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const EM_386: u16 = 3;
const EM_X86_64: u16 = 62;
const PT_LOAD: u32 = 1;
const PT_INTERP: u32 = 3;
/// `e_phnum` value meaning "the real count is elsewhere" (not supported).
const PN_XNUM: u16 = 0xffff;

/// The most program headers an image may have (real guests have a handful).
pub const MAX_PROGRAM_HEADERS: u16 = 256;

/// What the loader needs from an ELF image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfImage {
    /// `e_entry`.
    pub entry: u64,
    /// The non-empty `PT_LOAD` segments, in file order, placed at `p_paddr`.
    pub segments: Vec<Segment>,
}

/// Why bytes are not a loadable ELF image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElfError {
    #[error("{0} bytes is too short for an ELF header")]
    Truncated(usize),
    #[error("not an ELF file (magic {0:02x?})")]
    BadMagic([u8; 4]),
    #[error("not a 64-bit ELF (class {0}, expected 2; Multiboot kernels may be 32-bit, class 1)")]
    NotElf64(u8),
    #[error("not a little-endian ELF (data encoding {0}, expected 1)")]
    NotLittleEndian(u8),
    #[error("unknown ELF version {0}")]
    BadVersion(u8),
    #[error("a position-independent ELF (ET_DYN): link the guest at a fixed address (ET_EXEC)")]
    PositionIndependent,
    #[error("ELF type {0} is not an executable (ET_EXEC = 2)")]
    NotExecutable(u16),
    #[error("ELF machine {machine} is not {expected} (62: x86-64 for ELF64, 3: i386 for ELF32)")]
    WrongMachine { machine: u16, expected: u16 },
    #[error("no program headers")]
    NoProgramHeaders,
    #[error("program header entries are {size} bytes, expected {expected}")]
    BadPhentsize { size: u16, expected: usize },
    #[error("{0} program headers (at most 256, and PN_XNUM is not supported)")]
    TooManyProgramHeaders(u16),
    #[error(
        "program header table ({count} entries at offset {offset:#x}) lies beyond the file's {len} bytes"
    )]
    ProgramHeadersOutOfRange { offset: u64, count: u16, len: usize },
    #[error("program header {0} is PT_INTERP: the image needs a dynamic loader")]
    Interpreter(usize),
    #[error(
        "segment {index}: file bytes [{offset:#x}, +{filesz:#x}) lie beyond the file's {len} bytes"
    )]
    SegmentOutOfFile {
        index: usize,
        offset: u64,
        filesz: u64,
        len: usize,
    },
    #[error("segment {index}: file size {filesz:#x} exceeds memory size {memsz:#x}")]
    FileLargerThanMemory {
        index: usize,
        filesz: u64,
        memsz: u64,
    },
    #[error("segment {index}: address {paddr:#x} + size {memsz:#x} overflows")]
    AddressOverflow {
        index: usize,
        paddr: u64,
        memsz: u64,
    },
    #[error(
        "segment {index}: virtual address {vaddr:#x} differs from physical {paddr:#x} (guests run identity-mapped)"
    )]
    NotIdentity {
        index: usize,
        vaddr: u64,
        paddr: u64,
    },
    #[error("no loadable (PT_LOAD) segment")]
    NothingToLoad,
}

/// Little-endian field readers over a slice already checked to be long enough.
fn u16_at(b: &[u8], at: usize) -> u16 {
    let mut w = [0; 2];
    w.copy_from_slice(&b[at..at + 2]);
    u16::from_le_bytes(w)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Where the header and program-header fields of one ELF class are (System V gABI, "ELF
/// Header" and "Program Header"; ELF32 words and addresses are 4 bytes, ELF64's 8).
struct ClassLayout {
    header_len: usize,
    phdr_len: usize,
    /// Width of an address or offset field.
    word: usize,
    machine: u16,
    e_entry: usize,
    e_phoff: usize,
    e_phentsize: usize,
    e_phnum: usize,
    /// p_offset, p_vaddr, p_paddr, p_filesz, p_memsz.
    ph: [usize; 5],
}

const ELF64: ClassLayout = ClassLayout {
    header_len: HEADER_LEN,
    phdr_len: PHDR_LEN,
    word: 8,
    machine: EM_X86_64,
    e_entry: 24,
    e_phoff: 32,
    e_phentsize: 54,
    e_phnum: 56,
    ph: [8, 16, 24, 32, 40],
};

const ELF32: ClassLayout = ClassLayout {
    header_len: 52,
    phdr_len: 32,
    word: 4,
    machine: EM_386,
    e_entry: 24,
    e_phoff: 28,
    e_phentsize: 42,
    e_phnum: 44,
    ph: [4, 8, 12, 16, 20],
};

impl ClassLayout {
    fn word_at(&self, b: &[u8], at: usize) -> u64 {
        if self.word == 8 {
            u64_at(b, at)
        } else {
            u64::from(u32_at(b, at))
        }
    }
}

/// Parses the ELF header and program headers of `bytes`: an ELF64 x86-64 executable.
pub fn parse(bytes: &[u8]) -> Result<ElfImage, ElfError> {
    parse_classes(bytes, false)
}

/// [`parse`], also accepting an ELF32 i386 executable (Multiboot kernels are usually ELF32;
/// their addresses are then below 4 GiB by construction).
pub fn parse_32_or_64(bytes: &[u8]) -> Result<ElfImage, ElfError> {
    parse_classes(bytes, true)
}

fn parse_classes(bytes: &[u8], allow_32: bool) -> Result<ElfImage, ElfError> {
    let ident = bytes.get(..16).ok_or(ElfError::Truncated(bytes.len()))?;
    if ident[..4] != MAGIC {
        return Err(ElfError::BadMagic([ident[0], ident[1], ident[2], ident[3]]));
    }
    let class = match ident[4] {
        ELFCLASS64 => &ELF64,
        ELFCLASS32 if allow_32 => &ELF32,
        c => return Err(ElfError::NotElf64(c)),
    };
    let h = bytes
        .get(..class.header_len)
        .ok_or(ElfError::Truncated(bytes.len()))?;
    if h[5] != ELFDATA2LSB {
        return Err(ElfError::NotLittleEndian(h[5]));
    }
    if h[6] != EV_CURRENT {
        return Err(ElfError::BadVersion(h[6]));
    }
    match u16_at(h, 16) {
        ET_EXEC => {}
        ET_DYN => return Err(ElfError::PositionIndependent),
        t => return Err(ElfError::NotExecutable(t)),
    }
    let machine = u16_at(h, 18);
    if machine != class.machine {
        return Err(ElfError::WrongMachine {
            machine,
            expected: class.machine,
        });
    }
    let entry = class.word_at(h, class.e_entry);
    let phoff = class.word_at(h, class.e_phoff);
    let phentsize = u16_at(h, class.e_phentsize);
    let phnum = u16_at(h, class.e_phnum);
    if phnum == 0 {
        return Err(ElfError::NoProgramHeaders);
    }
    if phnum == PN_XNUM || phnum > MAX_PROGRAM_HEADERS {
        return Err(ElfError::TooManyProgramHeaders(phnum));
    }
    if usize::from(phentsize) != class.phdr_len {
        return Err(ElfError::BadPhentsize {
            size: phentsize,
            expected: class.phdr_len,
        });
    }
    let table = usize::try_from(phoff)
        .ok()
        .and_then(|start| {
            let end = start.checked_add(usize::from(phnum) * class.phdr_len)?;
            bytes.get(start..end)
        })
        .ok_or(ElfError::ProgramHeadersOutOfRange {
            offset: phoff,
            count: phnum,
            len: bytes.len(),
        })?;
    let mut segments = Vec::new();
    for (index, ph) in table.chunks_exact(class.phdr_len).enumerate() {
        match u32_at(ph, 0) {
            PT_LOAD => {}
            PT_INTERP => return Err(ElfError::Interpreter(index)),
            _ => continue,
        }
        let [offset, vaddr, paddr, filesz, memsz] = class.ph.map(|at| class.word_at(ph, at));
        let in_file = offset
            .checked_add(filesz)
            .is_some_and(|end| end <= bytes.len() as u64);
        if !in_file {
            return Err(ElfError::SegmentOutOfFile {
                index,
                offset,
                filesz,
                len: bytes.len(),
            });
        }
        if filesz > memsz {
            return Err(ElfError::FileLargerThanMemory {
                index,
                filesz,
                memsz,
            });
        }
        if paddr.checked_add(memsz).is_none() {
            return Err(ElfError::AddressOverflow {
                index,
                paddr,
                memsz,
            });
        }
        if memsz == 0 {
            continue;
        }
        if vaddr != paddr {
            return Err(ElfError::NotIdentity {
                index,
                vaddr,
                paddr,
            });
        }
        segments.push(Segment {
            gpa: paddr,
            file_offset: offset,
            file_len: filesz,
            mem_len: memsz,
        });
    }
    if segments.is_empty() {
        return Err(ElfError::NothingToLoad);
    }
    Ok(ElfImage { entry, segments })
}

/// Builds ELF images for tests (here and in [`crate::guest`]).
#[cfg(test)]
pub(crate) mod build {
    use alloc::vec::Vec;

    /// One program header: (type, offset, vaddr, paddr, filesz, memsz).
    pub type Ph = (u32, u64, u64, u64, u64, u64);

    /// A valid x86-64 ET_EXEC header with `phdrs` right after it, padded to `len` bytes with 0x90.
    pub fn elf(entry: u64, phdrs: &[Ph], len: usize) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        b.extend_from_slice(&62u16.to_le_bytes()); // x86-64
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&entry.to_le_bytes());
        b.extend_from_slice(&64u64.to_le_bytes()); // phoff
        b.extend_from_slice(&0u64.to_le_bytes()); // shoff
        b.extend_from_slice(&0u32.to_le_bytes()); // flags
        b.extend_from_slice(&64u16.to_le_bytes()); // ehsize
        b.extend_from_slice(&56u16.to_le_bytes()); // phentsize
        b.extend_from_slice(&(phdrs.len() as u16).to_le_bytes());
        b.extend_from_slice(&[0; 6]); // shentsize, shnum, shstrndx
        for &(t, off, va, pa, fsz, msz) in phdrs {
            b.extend_from_slice(&t.to_le_bytes());
            b.extend_from_slice(&5u32.to_le_bytes());
            for v in [off, va, pa, fsz, msz, 0x1000] {
                b.extend_from_slice(&v.to_le_bytes());
            }
        }
        if b.len() < len {
            b.resize(len, 0x90);
        }
        b
    }

    /// A valid i386 ELF32 ET_EXEC header with `phdrs` (32-bit fields) right after it.
    pub fn elf32(entry: u32, phdrs: &[Ph], len: usize) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&[0x7f, b'E', b'L', b'F', 1, 1, 1, 0]);
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        b.extend_from_slice(&3u16.to_le_bytes()); // i386
        b.extend_from_slice(&1u32.to_le_bytes());
        for v in [entry, 52, 0, 0] {
            b.extend_from_slice(&v.to_le_bytes()); // entry, phoff, shoff, flags
        }
        for v in [52u16, 32, phdrs.len() as u16, 0, 0, 0] {
            b.extend_from_slice(&v.to_le_bytes()); // ehsize, phentsize, phnum, sh*
        }
        for &(t, off, va, pa, fsz, msz) in phdrs {
            b.extend_from_slice(&t.to_le_bytes());
            for v in [off, va, pa, fsz, msz, 5, 0x1000] {
                b.extend_from_slice(&(v as u32).to_le_bytes());
            }
        }
        if b.len() < len {
            b.resize(len, 0x90);
        }
        b
    }

    /// A PT_LOAD at `addr` (identity) of `filesz` file bytes at `off`, `memsz` in memory.
    pub fn load(off: u64, addr: u64, filesz: u64, memsz: u64) -> Ph {
        (1, off, addr, addr, filesz, memsz)
    }
}

#[cfg(test)]
mod tests {
    use super::build::{elf, elf32, load};
    use super::*;

    fn good() -> Vec<u8> {
        elf(
            0x10_0000,
            &[
                load(0x1000, 0x10_0000, 0x200, 0x200),
                (0x6474_e551, 0, 0, 0, 0, 0), // PT_GNU_STACK: ignored
                load(0x1200, 0x10_1000, 0x100, 0x3000),
                load(0, 0x20_0000, 0, 0), // empty: skipped
            ],
            0x1300,
        )
    }

    #[test]
    fn a_good_image_gives_its_entry_and_load_segments() {
        let img = parse(&good()).unwrap();
        assert_eq!(img.entry, 0x10_0000);
        assert_eq!(
            img.segments,
            [
                Segment {
                    gpa: 0x10_0000,
                    file_offset: 0x1000,
                    file_len: 0x200,
                    mem_len: 0x200
                },
                Segment {
                    gpa: 0x10_1000,
                    file_offset: 0x1200,
                    file_len: 0x100,
                    mem_len: 0x3000
                },
            ]
        );
    }

    fn patched(at: usize, bytes: &[u8]) -> Vec<u8> {
        let mut b = good();
        b[at..at + bytes.len()].copy_from_slice(bytes);
        b
    }

    #[test]
    fn header_errors() {
        assert_eq!(parse(&good()[..63]), Err(ElfError::Truncated(63)));
        assert_eq!(parse(&[]), Err(ElfError::Truncated(0)));
        assert!(matches!(
            parse(&patched(0, b"MZ")),
            Err(ElfError::BadMagic(_))
        ));
        assert_eq!(parse(&patched(4, &[1])), Err(ElfError::NotElf64(1)));
        assert_eq!(parse(&patched(5, &[2])), Err(ElfError::NotLittleEndian(2)));
        assert_eq!(parse(&patched(6, &[0])), Err(ElfError::BadVersion(0)));
        assert_eq!(
            parse(&patched(16, &3u16.to_le_bytes())),
            Err(ElfError::PositionIndependent)
        );
        assert_eq!(
            parse(&patched(16, &1u16.to_le_bytes())),
            Err(ElfError::NotExecutable(1))
        );
        assert_eq!(
            parse(&patched(18, &3u16.to_le_bytes())),
            Err(ElfError::WrongMachine {
                machine: 3,
                expected: 62
            })
        );
        assert_eq!(
            parse(&patched(54, &32u16.to_le_bytes())),
            Err(ElfError::BadPhentsize {
                size: 32,
                expected: 56
            })
        );
        assert_eq!(
            parse(&patched(56, &0u16.to_le_bytes())),
            Err(ElfError::NoProgramHeaders)
        );
    }

    #[test]
    fn hostile_program_header_tables() {
        // phoff far beyond the file, and so large that phoff + table size overflows.
        for phoff in [0x10_0000u64, u64::MAX - 8, u64::MAX] {
            assert!(matches!(
                parse(&patched(32, &phoff.to_le_bytes())),
                Err(ElfError::ProgramHeadersOutOfRange { offset, .. }) if offset == phoff
            ));
        }
        // A table that starts inside the file but runs past its end.
        let short = &good()[..64 + 56 * 3];
        assert!(matches!(
            parse(short),
            Err(ElfError::ProgramHeadersOutOfRange { count: 4, .. })
        ));
        // Huge counts: refused before any arithmetic on them.
        assert_eq!(
            parse(&patched(56, &0xffffu16.to_le_bytes())),
            Err(ElfError::TooManyProgramHeaders(0xffff))
        );
        assert_eq!(
            parse(&patched(56, &257u16.to_le_bytes())),
            Err(ElfError::TooManyProgramHeaders(257))
        );
        // 256 entries are allowed by count, but this file does not hold them.
        assert!(matches!(
            parse(&patched(56, &256u16.to_le_bytes())),
            Err(ElfError::ProgramHeadersOutOfRange { count: 256, .. })
        ));
    }

    #[test]
    fn hostile_segments() {
        let one = |ph| parse(&elf(0x10_0000, &[ph], 0x2000));
        assert!(matches!(
            one(load(0x1f00, 0x10_0000, 0x200, 0x200)),
            Err(ElfError::SegmentOutOfFile { index: 0, .. })
        ));
        // p_offset + p_filesz overflows u64.
        assert!(matches!(
            one(load(u64::MAX - 0x10, 0x10_0000, 0x20, 0x20)),
            Err(ElfError::SegmentOutOfFile { .. })
        ));
        assert!(matches!(
            one(load(0x100, 0x10_0000, u64::MAX, u64::MAX)),
            Err(ElfError::SegmentOutOfFile { .. })
        ));
        assert_eq!(
            one(load(0, 0x10_0000, 0x20, 0x10)),
            Err(ElfError::FileLargerThanMemory {
                index: 0,
                filesz: 0x20,
                memsz: 0x10
            })
        );
        // p_paddr + p_memsz overflows u64.
        assert!(matches!(
            one(load(0, u64::MAX - 0xf, 0x10, 0x10)),
            Err(ElfError::AddressOverflow { .. })
        ));
        assert!(matches!(
            one((1, 0, 0xffff_8000_0010_0000, 0x10_0000, 0x10, 0x10)),
            Err(ElfError::NotIdentity { .. })
        ));
        assert_eq!(one((3, 0, 0, 0, 0x10, 0x10)), Err(ElfError::Interpreter(0)));
        assert_eq!(one((4, 0, 0, 0, 0, 0)), Err(ElfError::NothingToLoad));
        assert_eq!(one(load(0, 0x10_0000, 0, 0)), Err(ElfError::NothingToLoad));
    }

    #[test]
    fn every_truncation_of_a_good_image_is_an_error_not_a_panic() {
        let full = good();
        for n in 0..full.len() {
            assert!(parse(&full[..n]).is_err(), "prefix of {n} bytes accepted");
        }
        // Flipping any header byte never panics.
        for at in 0..64 + 56 * 4 {
            let mut b = full.clone();
            b[at] ^= 0xff;
            let _ = parse(&b);
        }
    }

    #[test]
    fn elf32_only_where_asked_for() {
        let b = elf32(0x10_0010, &[load(0x1000, 0x10_0000, 0x20, 0x1000)], 0x1100);
        assert_eq!(parse(&b), Err(ElfError::NotElf64(1)));
        let img = parse_32_or_64(&b).unwrap();
        assert_eq!(img.entry, 0x10_0010);
        assert_eq!(
            img.segments,
            [Segment {
                gpa: 0x10_0000,
                file_offset: 0x1000,
                file_len: 0x20,
                mem_len: 0x1000
            }]
        );
        // An ELF32 must be i386, and its checks are those of ELF64.
        let mut x = b.clone();
        x[18] = 62;
        assert_eq!(
            parse_32_or_64(&x),
            Err(ElfError::WrongMachine {
                machine: 62,
                expected: 3
            })
        );
        assert_eq!(parse_32_or_64(&b[..40]), Err(ElfError::Truncated(40)));
        let beyond = elf32(0x10_0000, &[load(0x1000, 0x10_0000, 0x200, 0x200)], 0x1100);
        assert!(matches!(
            parse_32_or_64(&beyond),
            Err(ElfError::SegmentOutOfFile { .. })
        ));
        // ELF64 is still accepted.
        assert!(parse_32_or_64(&good()).is_ok());
    }
}
