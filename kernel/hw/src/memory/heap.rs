//! The kernel heap: `linked_list_allocator` over frames taken at boot.

use linked_list_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Hands `[start, start + size)` to the heap.
///
/// # Safety
/// The range must be mapped, writable, unused by anything else, and live forever.
pub unsafe fn init(start: u64, size: usize) {
    // SAFETY: guaranteed by the caller.
    unsafe { HEAP.lock().init(start as *mut u8, size) };
}
