//! Which paging a guest's control registers select, for the hypervisor's walks of the guest's
//! own tables (e.g. fetching the instruction behind an EPT violation). Intel SDM Vol. 3A §4.1.1
//! "Four Paging Modes" (Table 4-1): CR0.PG, CR4.PAE, IA32_EFER.LME and CR4.LA57 select none,
//! 32-bit, PAE, 4-level or 5-level paging. 4-level paging is walked with the [`Host`] entry
//! format (the same IA-32e entries) over a [`ReadOnlyTable`]; the other modes are refused with
//! the reason.

use crate::format::Host;
use crate::read::{PhysRead, ReadOnlyTable};
use crate::types::{Config, LargePages, PagingLevels};

const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const CR4_LA57: u64 = 1 << 12;
const EFER_LMA: u64 = 1 << 10;
const EFER_NXE: u64 = 1 << 11;

/// The guest's registers that select and root its paging.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GuestRegisters {
    pub cr0: u64,
    pub cr3: u64,
    pub cr4: u64,
    /// IA32_EFER (LMA: IA-32e mode active; NXE: execute-disable bit honoured).
    pub efer: u64,
}

/// A paging mode the walker does not handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UnsupportedPaging {
    /// CR0.PG = 1, CR4.PAE = 0.
    #[error("32-bit paging (CR4.PAE = 0) is not walked")]
    ThirtyTwoBit,
    /// CR4.PAE = 1 outside IA-32e mode.
    #[error("PAE paging outside IA-32e mode is not walked")]
    Pae,
    /// IA-32e mode with CR4.LA57 = 1.
    #[error("5-level paging (CR4.LA57 = 1) is not walked")]
    FiveLevel,
    /// A MAXPHYADDR outside 1..=52.
    #[error("physical-address width {0} is outside 1..=52")]
    PhysicalWidth(u8),
}

/// How the guest's linear addresses become guest-physical ones.
#[derive(Debug, Clone, Copy)]
pub enum GuestPaging<R: PhysRead> {
    /// CR0.PG = 0: linear addresses are physical.
    Off,
    /// 4-level paging rooted at CR3.
    FourLevel(ReadOnlyTable<Host, R>),
}

impl<R: PhysRead> GuestPaging<R> {
    /// The paging `regs` select over the guest's `memory`. `phys_addr_bits` is the guest's
    /// MAXPHYADDR; `page_1g` whether it may use 1 GiB pages (CPUID.80000001H:EDX.Page1GB).
    pub fn new(
        regs: GuestRegisters,
        memory: R,
        phys_addr_bits: u8,
        page_1g: bool,
    ) -> Result<Self, UnsupportedPaging> {
        if regs.cr0 & CR0_PG == 0 {
            return Ok(Self::Off);
        }
        if regs.cr4 & CR4_PAE == 0 {
            return Err(UnsupportedPaging::ThirtyTwoBit);
        }
        if regs.efer & EFER_LMA == 0 {
            return Err(UnsupportedPaging::Pae);
        }
        if regs.cr4 & CR4_LA57 != 0 {
            return Err(UnsupportedPaging::FiveLevel);
        }
        let mut large = LargePages::SIZE_2M;
        large.set(LargePages::SIZE_1G, page_1g);
        let config = Config::new(PagingLevels::Four)
            .with_large_pages(large)
            .with_phys_addr_bits(phys_addr_bits);
        let format = Host::new().with_no_execute(regs.efer & EFER_NXE != 0);
        // `new` refuses only a width outside 1..=52 (the host format has four levels).
        ReadOnlyTable::new(format, memory, config, regs.cr3)
            .map(Self::FourLevel)
            .map_err(|_| UnsupportedPaging::PhysicalWidth(phys_addr_bits))
    }

    /// The guest-physical address of `linear`, or why there is none.
    pub fn translate(&self, linear: u64) -> Result<u64, crate::Error> {
        match self {
            Self::Off => Ok(linear),
            Self::FourLevel(t) => t.translate(linear).map(|t| t.phys),
        }
    }
}
