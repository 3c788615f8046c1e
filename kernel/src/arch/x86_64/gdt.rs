//! Conduit's GDT and TSS (Intel SDM Vol. 3A, 3.4.5 "Segment Descriptors", 8.7 "Task Management in
//! 64-bit Mode"). The TSS supplies separate IST stacks, so a double fault caused by a kernel stack
//! overflow, an NMI or a machine check still has a good stack to report on.

use spin::Once;
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;

/// IST slots used by the IDT.
pub const IST_DOUBLE_FAULT: u16 = 0;
pub const IST_NMI: u16 = 1;
pub const IST_MACHINE_CHECK: u16 = 2;

const IST_STACK_SIZE: usize = 16 * 1024;

#[repr(C, align(16))]
struct Stack([u8; IST_STACK_SIZE]);

static mut IST_STACKS: [Stack; 3] = [const { Stack([0; IST_STACK_SIZE]) }; 3];

/// The selectors of Conduit's segments; VM exits load the same ones as host state.
#[derive(Debug, Clone, Copy)]
pub struct Selectors {
    pub code: SegmentSelector,
    pub data: SegmentSelector,
    pub tss: SegmentSelector,
}

static TSS: Once<TaskStateSegment> = Once::new();
static GDT: Once<(GlobalDescriptorTable, Selectors)> = Once::new();

/// Builds and loads the GDT and TSS, and reloads every segment register.
pub fn init() {
    let tss = TSS.call_once(|| {
        let mut tss = TaskStateSegment::new();
        for (slot, ist) in [IST_DOUBLE_FAULT, IST_NMI, IST_MACHINE_CHECK]
            .into_iter()
            .enumerate()
        {
            // SAFETY: only the address of the static stack is taken, never a reference; each IST
            // stack is used by exactly one exception vector.
            let base = unsafe { core::ptr::addr_of!(IST_STACKS[slot]) } as u64;
            tss.interrupt_stack_table[usize::from(ist)] =
                VirtAddr::new(base + IST_STACK_SIZE as u64);
        }
        tss
    });
    let (gdt, sel) = GDT.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let code = gdt.append(Descriptor::kernel_code_segment());
        let data = gdt.append(Descriptor::kernel_data_segment());
        let tss = gdt.append(Descriptor::tss_segment(tss));
        (gdt, Selectors { code, data, tss })
    });
    gdt.load();
    // SAFETY: the selectors index descriptors of the GDT just loaded, which lives forever.
    unsafe {
        CS::set_reg(sel.code);
        SS::set_reg(sel.data);
        DS::set_reg(sel.data);
        ES::set_reg(sel.data);
        load_tss(sel.tss);
    }
}

/// The selectors of the loaded GDT (host-state fields of a VMCS need them).
pub fn selectors() -> Selectors {
    match GDT.get() {
        Some((_, s)) => *s,
        None => panic!("gdt::init runs before anything asks for selectors"),
    }
}

/// The linear address of the TSS (HOST_TR_BASE).
pub fn tss_base() -> u64 {
    match TSS.get() {
        Some(tss) => core::ptr::from_ref(tss) as u64,
        None => panic!("gdt::init runs before anything asks for the TSS"),
    }
}
