//! The task's heap: `linked_list_allocator` over an arena in its own `.bss`, so a restart (which
//! zeroes `.bss`) also empties the heap.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};
use linked_list_allocator::LockedHeap;

/// Bytes of heap: enough for dozens of virtual functions (about 12 KiB each).
const HEAP_SIZE: usize = 512 * 1024;

#[repr(C, align(4096))]
struct Arena(UnsafeCell<[u8; HEAP_SIZE]>);

// SAFETY: the task is single-threaded (one CPU, entered only by the kernel's synchronous call);
// the arena is only handed to the allocator, once.
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena(UnsafeCell::new([0; HEAP_SIZE]));
static READY: AtomicBool = AtomicBool::new(false);

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Hands the arena to the allocator the first time it is called in this life of the task.
pub fn init() {
    if !READY.swap(true, Ordering::AcqRel) {
        // SAFETY: the arena is a static of this task used by nothing else, and READY makes
        // this run once per life of the task (a restart zeroes READY together with the arena).
        unsafe { HEAP.lock().init(ARENA.0.get().cast::<u8>(), HEAP_SIZE) };
    }
}
