//! Describing a data buffer to the controller with Physical Region Page entries (NVMe Base Spec
//! 2.0 §4.1.1 "Physical Region Page Entry and List") and splitting a transfer so that no command
//! exceeds the controller's Maximum Data Transfer Size (Identify Controller MDTS, in units of
//! CAP.MPSMIN).
//!
//! PRP1 points at the first byte (dword aligned, any offset in its page); every further memory
//! page the buffer touches starts at a page boundary. If the buffer touches one page PRP2 is
//! unused (0), two pages: PRP2 is the second page, more: PRP2 points at a PRP list whose entries
//! are the second and later pages. One list page holds `page / 8` entries; a list that would need
//! a second (chained) list page is refused here, so one command moves at most
//! [`single_list_limit`] bytes.

use core::fmt;

/// Why a buffer or a transfer cannot be described.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrpError {
    /// The memory page size is not a power of two of at least 4 KiB.
    BadPageSize(u64),
    /// PRP1 must be dword aligned (bits 1:0 clear).
    Misaligned(u64),
    /// Nothing to transfer.
    Empty,
    /// The buffer touches more pages than one PRP list describes.
    TooLong {
        /// Pages the buffer touches.
        pages: u64,
        /// Most pages PRP1 and one list page describe.
        max: u64,
    },
    /// A PRP list must start at a page boundary here.
    ListMisaligned(u64),
    /// The transfer is not a whole number of logical blocks.
    NotBlocks {
        /// Bytes asked for.
        bytes: u64,
        /// The logical block size.
        block: u32,
    },
    /// One command may move less than one logical block.
    LimitBelowBlock {
        /// The per-command limit in bytes.
        limit: u64,
        /// The logical block size.
        block: u32,
    },
}

impl fmt::Display for PrpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadPageSize(p) => write!(f, "memory page size {p:#x} is not usable"),
            Self::Misaligned(a) => write!(f, "PRP1 {a:#x} is not dword aligned"),
            Self::Empty => write!(f, "a transfer of 0 bytes"),
            Self::TooLong { pages, max } => write!(
                f,
                "the buffer touches {pages} pages; PRP1 and one PRP list describe {max}"
            ),
            Self::ListMisaligned(a) => write!(f, "PRP list at {a:#x} is not page aligned"),
            Self::NotBlocks { bytes, block } => {
                write!(
                    f,
                    "{bytes} bytes are not a whole number of {block}-byte blocks"
                )
            }
            Self::LimitBelowBlock { limit, block } => write!(
                f,
                "one command may move {limit} bytes, less than one {block}-byte block"
            ),
        }
    }
}

fn check_page(page: u64) -> Result<u64, PrpError> {
    if page < 4096 || !page.is_power_of_two() {
        return Err(PrpError::BadPageSize(page));
    }
    Ok(page)
}

/// Most bytes one command moves with PRP1 and one page-aligned PRP list page (`page / 8`
/// entries after the first page).
pub fn single_list_limit(page: u64) -> u64 {
    (page / 8 + 1) * page
}

/// The Maximum Data Transfer Size in bytes: `2^mdts` pages of CAP.MPSMIN bytes; `None` when MDTS
/// is 0 (no limit) or the product does not fit.
pub fn max_transfer(mdts: u8, min_page: u64) -> Option<u64> {
    if mdts == 0 {
        return None;
    }
    1u64.checked_shl(u32::from(mdts))?.checked_mul(min_page)
}

/// How one command's buffer is described.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prp {
    addr: u64,
    len: u64,
    page: u64,
}

impl Prp {
    /// The buffer of `len` bytes at device address `addr`, with memory pages of `page` bytes.
    pub fn new(addr: u64, len: u64, page: u64) -> Result<Self, PrpError> {
        let page = check_page(page)?;
        if addr & 3 != 0 {
            return Err(PrpError::Misaligned(addr));
        }
        if len == 0 {
            return Err(PrpError::Empty);
        }
        let p = Self { addr, len, page };
        let max = page / 8 + 1;
        if p.pages() > max {
            return Err(PrpError::TooLong {
                pages: p.pages(),
                max,
            });
        }
        Ok(p)
    }

    /// Memory pages the buffer touches.
    pub fn pages(&self) -> u64 {
        let first = self.addr & !(self.page - 1);
        let end = self.addr.saturating_add(self.len);
        end.saturating_sub(first).div_ceil(self.page)
    }

    /// PRP Entry 1: the buffer's first byte.
    pub fn prp1(&self) -> u64 {
        self.addr
    }

    /// Does PRP2 point at a list?
    pub fn needs_list(&self) -> bool {
        self.pages() > 2
    }

    fn page_at(&self, i: u64) -> u64 {
        (self.addr & !(self.page - 1)) + i * self.page
    }

    /// PRP Entry 2: 0 for one page, the second page for two, else `list` (where the caller puts
    /// [`Prp::list`]), which must be page aligned.
    pub fn prp2(&self, list: u64) -> Result<u64, PrpError> {
        Ok(match self.pages() {
            1 => 0,
            2 => self.page_at(1),
            _ if list & (self.page - 1) != 0 => return Err(PrpError::ListMisaligned(list)),
            _ => list,
        })
    }

    /// The PRP list's entries (the second and later pages); empty when no list is needed.
    pub fn list(&self) -> impl Iterator<Item = u64> + '_ {
        let n = if self.needs_list() { self.pages() } else { 1 };
        (1..n).map(|i| self.page_at(i))
    }
}

/// One command's part of a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// Offset in the buffer (bytes) and in the namespace range (`offset / block` blocks).
    pub offset: u64,
    /// Bytes this command moves.
    pub bytes: u64,
    /// Logical blocks this command moves.
    pub blocks: u32,
}

/// The commands a transfer of `bytes` in `block`-byte logical blocks takes when one command may
/// move at most `limit` bytes (the smaller of MDTS and [`single_list_limit`], and at most 65536
/// blocks, NLB's range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunks {
    bytes: u64,
    step: u64,
    block: u32,
    at: u64,
}

impl Chunks {
    /// Plans the transfer.
    pub fn new(bytes: u64, block: u32, limit: u64) -> Result<Self, PrpError> {
        let b = u64::from(block);
        if bytes == 0 {
            return Err(PrpError::Empty);
        }
        if b == 0 || !bytes.is_multiple_of(b) {
            return Err(PrpError::NotBlocks { bytes, block });
        }
        let step = (limit / b).min(65536) * b;
        if step == 0 {
            return Err(PrpError::LimitBelowBlock { limit, block });
        }
        Ok(Self {
            bytes,
            step,
            block,
            at: 0,
        })
    }

    /// Commands the transfer takes.
    pub fn count(&self) -> u64 {
        self.bytes.div_ceil(self.step)
    }
}

impl Iterator for Chunks {
    type Item = Chunk;

    fn next(&mut self) -> Option<Chunk> {
        if self.at >= self.bytes {
            return None;
        }
        let bytes = self.step.min(self.bytes - self.at);
        let c = Chunk {
            offset: self.at,
            bytes,
            blocks: (bytes / u64::from(self.block)) as u32,
        };
        self.at += bytes;
        Some(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u64 = 4096;

    #[test]
    fn one_and_two_pages_need_no_list() {
        let p = Prp::new(0x40_0000, 4096, P).unwrap();
        assert_eq!(
            (p.pages(), p.prp1(), p.prp2(0x123).unwrap()),
            (1, 0x40_0000, 0)
        );
        assert!(p.list().next().is_none());
        // 8 KiB from a page boundary: two pages, PRP2 the second.
        let p = Prp::new(0x40_0000, 8192, P).unwrap();
        assert_eq!(p.prp2(0).unwrap(), 0x40_1000);
        // 512 bytes straddling a boundary also touch two pages.
        let p = Prp::new(0x40_0f00, 512, P).unwrap();
        assert_eq!((p.pages(), p.prp2(0).unwrap()), (2, 0x40_1000));
        // An offset into the first page: PRP1 keeps it, later pages start at boundaries.
        let p = Prp::new(0x40_0200, 4096 - 0x200, P).unwrap();
        assert_eq!(p.pages(), 1);
    }

    #[test]
    fn longer_buffers_use_a_list_of_the_later_pages() {
        // 512 KiB from a boundary: PRP1 the first page, 127 list entries.
        let p = Prp::new(0x40_0000, 512 << 10, P).unwrap();
        assert!(p.needs_list());
        assert_eq!(p.pages(), 128);
        assert_eq!(p.prp2(0x80_5000).unwrap(), 0x80_5000);
        let list: Vec<u64> = p.list().collect();
        assert_eq!(list.len(), 127);
        assert_eq!(list[0], 0x40_1000);
        assert_eq!(list[126], 0x47_f000);
        assert!(list.windows(2).all(|w| w[1] == w[0] + P));
        assert_eq!(p.prp2(0x80_5008), Err(PrpError::ListMisaligned(0x80_5008)));
        // Three pages with an offset.
        let p = Prp::new(0x1800, 8192, P).unwrap();
        assert_eq!(p.list().collect::<Vec<_>>(), [0x2000, 0x3000]);
    }

    #[test]
    fn limits_and_bad_buffers() {
        assert_eq!(single_list_limit(P), 513 * P);
        assert!(Prp::new(0, 513 * P, P).is_ok());
        assert_eq!(
            Prp::new(0, 513 * P + 1, P),
            Err(PrpError::TooLong {
                pages: 514,
                max: 513
            })
        );
        assert_eq!(Prp::new(0x1002, 8, P), Err(PrpError::Misaligned(0x1002)));
        assert_eq!(Prp::new(0x1000, 0, P), Err(PrpError::Empty));
        assert_eq!(Prp::new(0, 8, 2048), Err(PrpError::BadPageSize(2048)));
        assert_eq!(Prp::new(0, 8, 6000), Err(PrpError::BadPageSize(6000)));
    }

    #[test]
    fn mdts_in_bytes() {
        assert_eq!(max_transfer(7, P), Some(512 << 10));
        assert_eq!(max_transfer(5, 8192), Some(256 << 10));
        assert_eq!(max_transfer(0, P), None);
        assert_eq!(max_transfer(64, P), None);
        assert_eq!(max_transfer(60, P), None, "overflows");
    }

    #[test]
    fn a_mebibyte_under_mdts_7_is_two_commands() {
        let c = Chunks::new(1 << 20, 512, 512 << 10).unwrap();
        assert_eq!(c.count(), 2);
        let all: Vec<Chunk> = c.collect();
        assert_eq!(
            all,
            [
                Chunk {
                    offset: 0,
                    bytes: 512 << 10,
                    blocks: 1024
                },
                Chunk {
                    offset: 512 << 10,
                    bytes: 512 << 10,
                    blocks: 1024
                }
            ]
        );
    }

    #[test]
    fn uneven_tails_and_refusals() {
        let all: Vec<Chunk> = Chunks::new(5 * 512, 512, 1024 + 100).unwrap().collect();
        assert_eq!(all.iter().map(|c| c.blocks).collect::<Vec<_>>(), [2, 2, 1]);
        assert_eq!(all[2].offset, 2048);
        // NLB caps a command at 65536 blocks whatever the byte limit.
        let c = Chunks::new(70000 * 512, 512, u64::MAX).unwrap();
        assert_eq!(c.count(), 2);
        assert_eq!(
            Chunks::new(1000, 512, 4096),
            Err(PrpError::NotBlocks {
                bytes: 1000,
                block: 512
            })
        );
        assert_eq!(Chunks::new(0, 512, 4096), Err(PrpError::Empty));
        assert_eq!(
            Chunks::new(4096, 4096, 2048),
            Err(PrpError::LimitBelowBlock {
                limit: 2048,
                block: 4096
            })
        );
    }
}
