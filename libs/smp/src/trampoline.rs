//! The AP trampoline: four pages below 1 MiB that an application processor starts in after
//! INIT-SIPI-SIPI (Intel SDM Vol. 3A §9.4.4; the STARTUP IPI's vector VV starts the AP in real
//! mode at CS:IP = VV00:0000, physical address 0xVV000, §11.6.1 "Start-up" delivery mode).
//!
//! Page 0 holds the start code (copied from the kernel image, offset 0 is the real-mode entry)
//! and, at [`DATA`], the data block it reads: a GDT with flat 32-bit code, data and 64-bit code
//! segments, its pseudo-descriptor, the far pointers of the jumps into protected and long mode,
//! the control-register values, the 64-bit entry point and one stack per start slot. Pages 1-3
//! are temporary page tables ([`identity_tables`]): the kernel's top-level entries plus an
//! identity map of the low 2 MiB, so the code keeps running at its physical address when paging
//! turns on (§9.8.5 "Initializing IA-32e Mode"), then jumps to the kernel's address space.
//!
//! The offsets below are shared with the start code (the kernel's `global_asm!` takes them as
//! constants); [`patch`] writes the block.

/// Pages the trampoline occupies: code + data, PML4, PDPT, PD.
pub const PAGES: u64 = 4;
/// Bytes of one page.
pub const PAGE: u64 = 4096;
/// Offset of the data block in page 0; the start code must end before it.
pub const DATA: usize = 0xc00;
/// Start slots (one stack each): the most APs one start-up may bring up.
pub const MAX_SLOTS: usize = 64;

/// Offsets inside the data block.
pub mod off {
    /// The GDT: null, 32-bit code (0x08), data (0x10), 64-bit code (0x18).
    pub const GDT: usize = 0x00;
    /// Pseudo-descriptor: limit (u16) at GDTR, linear base (u32) at GDTR + 2.
    pub const GDTR: usize = 0x20;
    /// Far pointer into 32-bit code: offset (u32), selector (u16).
    pub const PM_JUMP: usize = 0x28;
    /// Far pointer into 64-bit code: offset (u32), selector (u16).
    pub const LM_JUMP: usize = 0x30;
    /// Physical address of the temporary PML4 (u32, below 4 GiB: loaded in 32-bit mode).
    pub const CR3: usize = 0x38;
    /// CR4 to load before paging (PAE and the kernel's other bits; u64, low half used).
    pub const CR4: usize = 0x40;
    /// IA32_EFER to load (LME, NXE, ...): u64.
    pub const EFER: usize = 0x48;
    /// CR0 to load (PE, PG, ...): u64, low half used.
    pub const CR0: usize = 0x50;
    /// The kernel's 64-bit entry, `extern "C" fn(slot: u64) -> !`.
    pub const ENTRY: usize = 0x58;
    /// The kernel's CR3, loaded by the entry once it runs in the kernel's address space.
    pub const KERNEL_CR3: usize = 0x60;
    /// Start slots taken so far (u32, `lock xadd` by each AP).
    pub const NEXT_SLOT: usize = 0x68;
    /// Stack tops, one u64 per slot.
    pub const STACKS: usize = 0x70;
    /// End of the block.
    pub const END: usize = STACKS + 8 * super::MAX_SLOTS;
}

const _: () = assert!(
    DATA + off::END <= PAGE as usize,
    "the data block fits page 0"
);

/// Selectors of the trampoline's GDT.
pub const CODE32: u16 = 0x08;
pub const DATA32: u16 = 0x10;
pub const CODE64: u16 = 0x18;

/// Flat descriptors (SDM Vol. 3A §3.4.5): base 0, limit 4 GiB (G = 1), present, DPL 0.
const GDT: [u64; 4] = [
    0,
    0x00cf_9a00_0000_ffff, // code, 32-bit (D = 1), execute/read
    0x00cf_9200_0000_ffff, // data, read/write
    0x00af_9a00_0000_ffff, // code, 64-bit (L = 1, D = 0)
];

/// What a trampoline cannot be built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrampolineError {
    /// The page must be 4 KiB aligned and end below 1 MiB (a STARTUP IPI names a real-mode page),
    /// outside the reserved vectors 0xA0-0xBF.
    BadBase(u64),
    /// The start code does not fit before the data block.
    CodeTooLarge { len: usize },
    /// More stacks than slots.
    TooManyStacks { count: usize },
    /// An address the AP uses before it loads the kernel's CR3 (its entry, its stack) lies in the
    /// low 512 GiB, which the temporary tables give to the identity map.
    KernelInLowSlot(u64),
}

impl core::fmt::Display for TrampolineError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BadBase(b) => write!(
                f,
                "{b:#x} is not a 4 KiB page below 1 MiB usable as a STARTUP IPI vector"
            ),
            Self::CodeTooLarge { len } => {
                write!(
                    f,
                    "the start code ({len} bytes) overlaps its data at {DATA:#x}"
                )
            }
            Self::TooManyStacks { count } => {
                write!(f, "{count} stacks for {MAX_SLOTS} start slots")
            }
            Self::KernelInLowSlot(a) => write!(
                f,
                "{a:#x} lies in the low 512 GiB, which the start code's identity map replaces"
            ),
        }
    }
}

/// The STARTUP IPI vector of a trampoline at `base`: its page number. The base must be page
/// aligned, below 1 MiB with all [`PAGES`] pages, above page 0 and outside 0xA0000-0xBFFFF
/// (vectors 0xA0-0xBF are reserved, MultiProcessor Specification 1.4 §B.4.2).
pub fn sipi_vector(base: u64) -> Result<u8, TrampolineError> {
    let end = base + PAGES * PAGE;
    let overlaps_reserved = base < 0xc_0000 && end > 0xa_0000;
    if !base.is_multiple_of(PAGE) || base == 0 || end > 0x10_0000 || overlaps_reserved {
        return Err(TrampolineError::BadBase(base));
    }
    Ok((base / PAGE) as u8)
}

/// The lowest trampoline base inside one of the `usable` ranges (`[start, end)`, conventional
/// memory free for the taking), or `None`.
pub fn choose(usable: impl IntoIterator<Item = (u64, u64)>) -> Option<u64> {
    let mut best: Option<u64> = None;
    for (start, end) in usable {
        let mut base = start.div_ceil(PAGE) * PAGE;
        while base + PAGES * PAGE <= end {
            if sipi_vector(base).is_ok() {
                best = Some(best.map_or(base, |b| b.min(base)));
                break;
            }
            base += PAGE;
            if base >= 0x10_0000 {
                break;
            }
        }
    }
    best
}

/// What the data block says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params<'a> {
    /// Physical address of page 0.
    pub base: u64,
    pub cr0: u64,
    pub cr4: u64,
    pub efer: u64,
    pub entry: u64,
    pub kernel_cr3: u64,
    /// Stack tops of the slots (the first AP to arrive takes slot 0).
    pub stacks: &'a [u64],
}

fn put(page: &mut [u8], at: usize, bytes: &[u8]) {
    page[DATA + at..DATA + at + bytes.len()].copy_from_slice(bytes);
}

/// Writes the start code and the data block into page 0 (`page`). The temporary PML4 is page 1.
pub fn patch(
    page: &mut [u8; PAGE as usize],
    code: &[u8],
    p: &Params,
) -> Result<(), TrampolineError> {
    sipi_vector(p.base)?;
    if code.len() > DATA {
        return Err(TrampolineError::CodeTooLarge { len: code.len() });
    }
    if p.stacks.len() > MAX_SLOTS {
        return Err(TrampolineError::TooManyStacks {
            count: p.stacks.len(),
        });
    }
    page.fill(0);
    page[..code.len()].copy_from_slice(code);
    let base = p.base as u32;
    let data = base + DATA as u32;
    for (i, d) in GDT.iter().enumerate() {
        put(page, off::GDT + 8 * i, &d.to_le_bytes());
    }
    put(page, off::GDTR, &((8 * GDT.len() - 1) as u16).to_le_bytes());
    put(page, off::GDTR + 2, &(data + off::GDT as u32).to_le_bytes());
    put(page, off::PM_JUMP, &(base + PM_ENTRY as u32).to_le_bytes());
    put(page, off::PM_JUMP + 4, &CODE32.to_le_bytes());
    put(page, off::LM_JUMP, &(base + LM_ENTRY as u32).to_le_bytes());
    put(page, off::LM_JUMP + 4, &CODE64.to_le_bytes());
    put(page, off::CR3, &(base + PAGE as u32).to_le_bytes());
    put(page, off::CR4, &p.cr4.to_le_bytes());
    put(page, off::EFER, &p.efer.to_le_bytes());
    put(page, off::CR0, &p.cr0.to_le_bytes());
    put(page, off::ENTRY, &p.entry.to_le_bytes());
    put(page, off::KERNEL_CR3, &p.kernel_cr3.to_le_bytes());
    put(page, off::NEXT_SLOT, &0u32.to_le_bytes());
    for (i, s) in p.stacks.iter().enumerate() {
        put(page, off::STACKS + 8 * i, &s.to_le_bytes());
    }
    Ok(())
}

/// Where the start code puts its 32-bit part (`.org` in the code).
pub const PM_ENTRY: usize = 0x100;
/// Where the start code puts its 64-bit part (`.org` in the code).
pub const LM_ENTRY: usize = 0x200;

/// Page-table entry bits: present, writable, page size (SDM Vol. 3A §4.5).
const P: u64 = 1;
const W: u64 = 2;
const PS: u64 = 1 << 7;

/// Bytes one PML4 entry maps.
const SLOT: u64 = 1 << 39;

/// Checks that every address the AP uses on the temporary tables (the kernel's entry, its
/// stacks) lies above the low 512 GiB, whose PML4 entry [`identity_tables`] replaces.
pub fn check_kernel_addresses(addrs: &[u64]) -> Result<(), TrampolineError> {
    match addrs.iter().find(|&&a| a < SLOT) {
        Some(&a) => Err(TrampolineError::KernelInLowSlot(a)),
        None => Ok(()),
    }
}

/// Builds the temporary tables in pages 1-3 of a trampoline at `base`: `pml4` is a copy of the
/// kernel's PML4 (its upper entries stay and keep the kernel reachable); its entry 0 (whatever
/// the kernel maps there, such as the loader's own identity-mapped pages, is not needed before
/// the AP loads the kernel's CR3) now points at `pdpt`, whose entry 0 points at `pd`, whose
/// entry 0 maps the low 2 MiB with a 2 MiB page.
pub fn identity_tables(
    base: u64,
    pml4: &mut [u64; 512],
    pdpt: &mut [u64; 512],
    pd: &mut [u64; 512],
) -> Result<(), TrampolineError> {
    sipi_vector(base)?;
    pdpt.fill(0);
    pd.fill(0);
    pml4[0] = (base + 2 * PAGE) | P | W;
    pdpt[0] = (base + 3 * PAGE) | P | W;
    pd[0] = P | W | PS;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word32(page: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(page[DATA + at..DATA + at + 4].try_into().unwrap())
    }

    fn word64(page: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(page[DATA + at..DATA + at + 8].try_into().unwrap())
    }

    #[test]
    fn sipi_vectors() {
        assert_eq!(sipi_vector(0x8000), Ok(0x08));
        assert_eq!(sipi_vector(0x9b000), Ok(0x9b));
        assert_eq!(sipi_vector(0x0), Err(TrampolineError::BadBase(0)));
        assert_eq!(sipi_vector(0x8800), Err(TrampolineError::BadBase(0x8800)));
        // Four pages must end below 1 MiB, and not touch 0xA0000-0xBFFFF.
        assert_eq!(sipi_vector(0xfd000), Err(TrampolineError::BadBase(0xfd000)));
        assert_eq!(sipi_vector(0xfc000), Ok(0xfc));
        assert_eq!(sipi_vector(0x9d000), Err(TrampolineError::BadBase(0x9d000)));
        assert_eq!(sipi_vector(0xb0000), Err(TrampolineError::BadBase(0xb0000)));
        assert_eq!(sipi_vector(0x9c000), Ok(0x9c));
    }

    #[test]
    fn choose_takes_the_lowest_fitting_page() {
        assert_eq!(choose([(0x0, 0x3000), (0x8000, 0x10000)]), Some(0x8000));
        assert_eq!(choose([(0x20000, 0x30000), (0x1000, 0x5000)]), Some(0x1000));
        // Unaligned start rounds up; too short a range is skipped.
        assert_eq!(choose([(0x1234, 0x6000)]), Some(0x2000));
        assert_eq!(choose([(0x1234, 0x5000)]), None);
        // Above 1 MiB, or only the reserved VGA window: nothing.
        assert_eq!(choose([(0x10_0000, 0x20_0000)]), None);
        assert_eq!(choose([(0xa_0000, 0xc_0000)]), None);
        assert_eq!(choose([]), None);
    }

    #[test]
    fn patch_writes_every_field() {
        let code = [0xfa, 0xfc, 0xeb, 0xfe];
        let mut page = [0xaau8; 4096];
        let stacks = [0xffff_8000_0001_0000, 0xffff_8000_0002_0000];
        let p = Params {
            base: 0x8000,
            cr0: 0x8005_0033,
            cr4: 0x6a0,
            efer: 0xd00,
            entry: 0x80_0001_2345,
            kernel_cr3: 0x1000,
            stacks: &stacks,
        };
        patch(&mut page, &code, &p).unwrap();
        assert_eq!(&page[..4], &code);
        assert!(page[4..DATA].iter().all(|&b| b == 0));
        assert_eq!(word64(&page, off::GDT + 8), 0x00cf_9a00_0000_ffff);
        assert_eq!(word64(&page, off::GDT + 24), 0x00af_9a00_0000_ffff);
        assert_eq!(
            u16::from_le_bytes([page[DATA + 0x20], page[DATA + 0x21]]),
            31
        );
        assert_eq!(word32(&page, off::GDTR + 2), 0x8000 + DATA as u32);
        assert_eq!(word32(&page, off::PM_JUMP), 0x8000 + PM_ENTRY as u32);
        assert_eq!(word32(&page, off::PM_JUMP + 4) & 0xffff, u32::from(CODE32));
        assert_eq!(word32(&page, off::LM_JUMP), 0x8000 + LM_ENTRY as u32);
        assert_eq!(word32(&page, off::LM_JUMP + 4) & 0xffff, u32::from(CODE64));
        assert_eq!(word32(&page, off::CR3), 0x9000);
        assert_eq!(word64(&page, off::CR4), 0x6a0);
        assert_eq!(word64(&page, off::EFER), 0xd00);
        assert_eq!(word64(&page, off::CR0), 0x8005_0033);
        assert_eq!(word64(&page, off::ENTRY), 0x80_0001_2345);
        assert_eq!(word64(&page, off::KERNEL_CR3), 0x1000);
        assert_eq!(word32(&page, off::NEXT_SLOT), 0);
        assert_eq!(word64(&page, off::STACKS), stacks[0]);
        assert_eq!(word64(&page, off::STACKS + 8), stacks[1]);
        assert_eq!(word64(&page, off::STACKS + 16), 0);
    }

    #[test]
    fn patch_refuses() {
        let mut page = [0u8; 4096];
        let p = Params {
            base: 0x8000,
            cr0: 0,
            cr4: 0,
            efer: 0,
            entry: 0,
            kernel_cr3: 0,
            stacks: &[0; MAX_SLOTS + 1],
        };
        assert_eq!(
            patch(&mut page, &[], &p),
            Err(TrampolineError::TooManyStacks {
                count: MAX_SLOTS + 1
            })
        );
        let p = Params { stacks: &[], ..p };
        assert_eq!(
            patch(&mut page, &[0; DATA + 1], &p),
            Err(TrampolineError::CodeTooLarge { len: DATA + 1 })
        );
        let p = Params {
            base: 0x10_0000,
            ..p
        };
        assert_eq!(
            patch(&mut page, &[], &p),
            Err(TrampolineError::BadBase(0x10_0000))
        );
    }

    #[test]
    fn identity_tables_map_the_low_2_mib() {
        let mut pml4 = [0u64; 512];
        pml4[1] = 0x5003; // the kernel at 512 GiB
        pml4[4] = 0x6003; // the physical-memory window
        let (mut pdpt, mut pd) = ([7u64; 512], [7u64; 512]);
        identity_tables(0x8000, &mut pml4, &mut pdpt, &mut pd).unwrap();
        assert_eq!(pml4[0], 0xa003);
        assert_eq!(pml4[1], 0x5003);
        assert_eq!(pml4[4], 0x6003);
        assert_eq!(pdpt[0], 0xb003);
        assert_eq!(pd[0], 0x83);
        assert!(pdpt[1..].iter().chain(&pd[1..]).all(|&e| e == 0));
        // Whatever the kernel had in entry 0 is replaced.
        let mut used = [0u64; 512];
        used[0] = 0x4003;
        identity_tables(0x8000, &mut used, &mut pdpt, &mut pd).unwrap();
        assert_eq!(used[0], 0xa003);
        assert_eq!(
            identity_tables(0x10_0000, &mut used, &mut pdpt, &mut pd),
            Err(TrampolineError::BadBase(0x10_0000))
        );
    }

    #[test]
    fn kernel_addresses_must_be_above_the_identity_slot() {
        assert_eq!(
            check_kernel_addresses(&[0x80_0000_1000, 0x200_0000_0000]),
            Ok(())
        );
        assert_eq!(
            check_kernel_addresses(&[0x80_0000_1000, 0x7f_ffff_f000]),
            Err(TrampolineError::KernelInLowSlot(0x7f_ffff_f000))
        );
    }
}
