//! The APs' stacks: one block of frames per start slot, mapped in the hypervisor's virtual
//! region with an unmapped guard page below each stack ([`mmio::map_stacks`], docs/smp.md), so
//! that an overflow faults (a double fault on the IST stack, Intel SDM Vol. 3A §6.15) instead of
//! running into the stack below.

use super::AP_STACK;
use crate::gdt::{AP_TRAP_STACK_SIZES, AP_TRAP_STACKS};
use crate::memory::{FRAME_SIZE, Memory, mmio};
use alloc::vec::Vec;
use log::{info, warn};

/// Bytes of one start slot's block of frames: trap stacks, then the kernel stack.
pub(super) const BLOCK: usize = AP_TRAP_STACKS + AP_STACK;

/// The stacks of a start slot in the order they are mapped, each above its own guard page: the
/// trap stacks ([`crate::gdt::CpuStacks::carve`]), then the kernel stack.
pub(super) const BLOCK_STACKS: [u64; 5] = [
    AP_TRAP_STACK_SIZES[0],
    AP_TRAP_STACK_SIZES[1],
    AP_TRAP_STACK_SIZES[2],
    AP_TRAP_STACK_SIZES[3],
    AP_STACK as u64,
];

/// One start slot's block: its frames, and where its stacks are mapped.
#[derive(Debug, Clone, Copy)]
pub(super) struct Block {
    pub(super) phys: u64,
    /// The first guard page of the stacks' virtual range.
    pub(super) virt: u64,
}

impl Block {
    /// The top of the kernel stack (the last stack mapped).
    pub(super) fn top(&self) -> u64 {
        self.virt + mmio::stacks_span(&BLOCK_STACKS)
    }
}

/// Allocates one start slot's block and maps its stacks, each above an unmapped guard page
/// (an overflow faults, and the double fault runs on its own IST stack; docs/smp.md).
pub(super) fn map_block(mem: &Memory) -> Result<Block, super::SmpError> {
    let frames = BLOCK.div_ceil(FRAME_SIZE as usize);
    let phys = mem
        .frames
        .lock()
        .allocate_contiguous(frames, 1)
        .ok_or(super::SmpError::OutOfMemory)?
        .0;
    match mmio::map_stacks(mem, phys, &BLOCK_STACKS) {
        Ok(virt) => Ok(Block { phys, virt }),
        Err(e) => {
            free_frames(mem, phys);
            Err(super::SmpError::Stacks(e))
        }
    }
}

/// Gives the frames of a block back.
fn free_frames(mem: &Memory, phys: u64) {
    let mut frames = mem.frames.lock();
    for i in 0..BLOCK.div_ceil(FRAME_SIZE as usize) as u64 {
        frames.free(crate::memory::PhysAddr(phys + i * FRAME_SIZE));
    }
}

/// Unmaps the blocks nobody took (one TLB shootdown for all, in an interrupt window: the other
/// CPUs are online) and only then gives their frames back. If the unmap fails, the frames stay
/// allocated: a CPU could still reach them.
pub(super) fn free_blocks(mem: &Memory, blocks: &[Block]) {
    let ranges: Vec<(u64, u64)> = blocks
        .iter()
        .map(|b| (b.virt, mmio::stacks_span(&BLOCK_STACKS)))
        .collect();
    // SAFETY: no AP took these slots, and the slot counter is closed, so none can take them any
    // more: no CPU ever ran on these stacks.
    match super::with_interrupts(|| unsafe { mmio::unmap_stacks(mem, &ranges) }) {
        Ok(()) => {
            blocks.iter().for_each(|b| free_frames(mem, b.phys));
            info!(
                "smp: the stacks of {} unused start slot(s) unmapped and given back",
                blocks.len()
            );
        }
        Err(e) => warn!(
            "smp: unmapping the stacks of {} unused start slot(s): {e}; their frames stay allocated",
            blocks.len()
        ),
    }
}
