//! The control task's address space (virtual addresses of ring 3).
//!
//! The task lives in one PML4 slot of its own ([`SLOT`], 512 GiB at [`SLOT_BASE`]); every other
//! slot of its PML4 repeats the kernel's entries with the U/S bit clear (Intel SDM Vol. 3A §4.6
//! "Access Rights": a supervisor-mode page is never accessible at CPL 3), so exceptions and
//! `SYSCALL` enter the kernel without a CR3 switch while the task can reach nothing of it.
//!
//! | range | what | access |
//! |---|---|---|
//! | [`IMAGE_BASE`] .. + [`IMAGE_MAX`] | the task's ELF image (`control/link.ld`) | per segment: R+X or R+W |
//! | [`STACK_TOP`] − [`STACK_SIZE`] .. [`STACK_TOP`] | the stack, reset at every call (guard page below) | R+W |
//! | [`SHARED_VA`] | the shared page ([`crate::shared::SharedPage`]) | R+W |
//! | [`config_va`]`(i)` .. + 256 MiB | ECAM window `i` of [`crate::shared::InitInfo`], where the platform has ECAM | R+W, uncached |

/// The PML4 index of the task's slot.
pub const SLOT: usize = 192;
/// First address of the slot (canonical lower half).
pub const SLOT_BASE: u64 = (SLOT as u64) << 39;
/// Where the task's image is linked (its ELF segments must lie in `[IMAGE_BASE, IMAGE_BASE +
/// IMAGE_MAX)`).
pub const IMAGE_BASE: u64 = SLOT_BASE;
/// The largest image span accepted.
pub const IMAGE_MAX: u64 = 64 << 20;
/// Top of the task's stack (RSP at each entry).
pub const STACK_TOP: u64 = SLOT_BASE + 0x4000_0000;
/// Size of the stack; the page below it stays unmapped.
pub const STACK_SIZE: u64 = 64 << 10;
/// The shared page.
pub const SHARED_VA: u64 = SLOT_BASE + 0x4800_0000;
/// The first ECAM window (bus `start_bus` of the first MCFG allocation at this address).
pub const CONFIG_VA: u64 = SLOT_BASE + (256 << 30);
/// The largest configuration window (256 buses × 1 MiB, PCIe Base Spec r6.0 §7.2.2).
pub const CONFIG_MAX: u64 = 256 << 20;
/// The most ECAM windows the task maps: one per MCFG allocation (PCI Firmware Spec 3.3
/// §4.1.2: one per segment and bus range), of any segment.
pub const MAX_WINDOWS: usize = 16;

/// Where window `index` (`< MAX_WINDOWS`) is mapped: the windows follow each other, one
/// [`CONFIG_MAX`] apart, so each can hold a whole segment's 256 buses.
#[must_use]
pub const fn config_va(index: usize) -> u64 {
    CONFIG_VA + index as u64 * CONFIG_MAX
}

const _: () = assert!(in_slot(config_va(MAX_WINDOWS) - 1));

/// Whether `addr` lies in the task's slot.
#[must_use]
pub const fn in_slot(addr: u64) -> bool {
    addr >= SLOT_BASE && addr < SLOT_BASE + (1 << 39)
}
