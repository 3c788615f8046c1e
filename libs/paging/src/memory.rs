//! The two services a table needs from its environment: frames for paging structures, and
//! access to physical memory. The kernel implements them over its physical-memory offset
//! mapping; the host tests implement them over a `HashMap`.

/// Hands out and takes back 4 KiB frames for paging structures.
pub trait FrameAllocator {
    /// A 4 KiB aligned frame whose 512 entries all read as zero through the table's
    /// [`PhysMemory`], or `None` when memory is exhausted.
    ///
    /// The table calls [`PhysMemory::flush`] over the whole frame before linking it, so a
    /// frame zeroed through the CPU caches is fine even for a non-coherent IOMMU.
    fn allocate_frame(&mut self) -> Option<u64>;

    /// Takes back a frame previously returned by [`FrameAllocator::allocate_frame`].
    ///
    /// A frame freed by `unmap` (or by a failed `map` undoing its own work) was unlinked from
    /// the tree before it was freed, but hardware paging-structure caches may still reference it
    /// until the caller has carried out the invalidation of that operation (for a failed `map`,
    /// of the whole requested range). An allocator that could hand the frame to someone else in
    /// that window, e.g. to another CPU, must defer its reuse.
    fn free_frame(&mut self, frame: u64);
}

impl<A: FrameAllocator + ?Sized> FrameAllocator for &mut A {
    fn allocate_frame(&mut self) -> Option<u64> {
        (**self).allocate_frame()
    }

    fn free_frame(&mut self, frame: u64) {
        (**self).free_frame(frame);
    }
}

/// Reads and writes 64-bit paging-structure entries by physical address.
pub trait PhysMemory {
    /// Reads the 8-byte aligned entry at physical address `phys`.
    fn read_entry(&self, phys: u64) -> u64;

    /// Writes the 8-byte aligned entry at physical address `phys` with one 64-bit store:
    /// hardware may walk the table concurrently and must never see a torn entry.
    fn write_entry(&mut self, phys: u64, value: u64);

    /// Makes the entries in `[phys, phys + len)` visible to a hardware walker that does not
    /// snoop the CPU caches. Called after every modification, before anything that depends on
    /// it is linked into the tree, always with an 8-byte aligned range inside one frame. The
    /// VT-d driver implements it with CLFLUSH when the remapping unit's page walks are not
    /// coherent (VT-d spec, Extended Capability Register, field C = 0); EPT and host paging are
    /// coherent and keep this default, which does nothing.
    fn flush(&mut self, phys: u64, len: u64) {
        let _ = (phys, len);
    }
}

impl<M: PhysMemory + ?Sized> PhysMemory for &mut M {
    fn read_entry(&self, phys: u64) -> u64 {
        (**self).read_entry(phys)
    }

    fn write_entry(&mut self, phys: u64, value: u64) {
        (**self).write_entry(phys, value);
    }

    fn flush(&mut self, phys: u64, len: u64) {
        (**self).flush(phys, len);
    }
}
