//! Conduit's GDT and TSS (Intel SDM Vol. 3A, 3.4.5 "Segment Descriptors", 8.7 "Task Management in
//! 64-bit Mode"). The TSS supplies separate IST stacks, so a double fault caused by a kernel stack
//! overflow, an NMI or a machine check still has a good stack to report on.
//!
//! Ring 3 (the control task, kernel `control`): the GDT holds a user data and a user code segment
//! in the order SYSRET needs (SDM Vol. 3A §5.8.8: SS = STAR[63:48] + 8, CS = STAR[63:48] + 16);
//! RSP0 of the TSS is a dedicated stack that exceptions and interrupts taken at CPL 3 run on;
//! and the TSS carries an I/O permission bitmap (SDM Vol. 1 §19.5.2) that opens exactly ports
//! 0xCF8-0xCFF (configuration mechanism #1) to ring 3, for machines without ECAM.

use core::cell::UnsafeCell;
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
/// The stack for exceptions and interrupts taken at CPL 3.
const RSP0_STACK_SIZE: usize = 32 * 1024;

#[repr(C, align(16))]
struct Stack([u8; IST_STACK_SIZE]);

#[repr(C, align(16))]
struct Rsp0Stack([u8; RSP0_STACK_SIZE]);

static mut IST_STACKS: [Stack; 3] = [const { Stack([0; IST_STACK_SIZE]) }; 3];
static mut RSP0_STACK: Rsp0Stack = Rsp0Stack([0; RSP0_STACK_SIZE]);

/// Bytes of the I/O permission bitmap: one bit per port, plus the terminating 0xFF byte.
const IOMAP_LEN: usize = 8192 + 1;
/// Ports ring 3 may use: CONFIG_ADDRESS and CONFIG_DATA (PCI Local Bus Spec 3.0 §3.2.2.3.2).
const RING3_PORTS: core::ops::RangeInclusive<u16> = 0xcf8..=0xcff;

/// The TSS immediately followed by its I/O permission bitmap (the bitmap's offset is the TSS's
/// I/O map base, SDM Vol. 1 §19.5.2).
#[repr(C)]
struct TssBlock {
    tss: TaskStateSegment,
    iomap: [u8; IOMAP_LEN],
}

/// The selectors of Conduit's segments; VM exits load the same ones as host state.
#[derive(Debug, Clone, Copy)]
pub struct Selectors {
    pub code: SegmentSelector,
    pub data: SegmentSelector,
    pub tss: SegmentSelector,
    /// Ring 3 data (RPL 3), SS of the control task.
    pub user_data: SegmentSelector,
    /// Ring 3 64-bit code (RPL 3), CS of the control task.
    pub user_code: SegmentSelector,
}

impl Selectors {
    /// IA32_STAR: SYSCALL loads CS/SS from bits 47:32, SYSRET from bits 63:48 (+16 / +8).
    pub fn star(&self) -> u64 {
        let sysret_base = u64::from(self.user_data.0 & !7) - 8;
        (sysret_base << 48) | (u64::from(self.code.0) << 32)
    }
}

/// The GDT lives in an `UnsafeCell`: LTR marks the TSS descriptor busy, and reloading TR after a
/// VM exit (which cuts TR's limit to 0x67, SDM Vol. 3C §28.5.2) needs the busy bit cleared.
struct GdtCell(UnsafeCell<GlobalDescriptorTable>);

// SAFETY: written only by `init` (once, before anything else uses it) and by `reload_tr`,
// which runs on the only CPU with interrupts disabled.
unsafe impl Sync for GdtCell {}

static TSS: Once<TssBlock> = Once::new();
static GDT: GdtCell = GdtCell(UnsafeCell::new(GlobalDescriptorTable::new()));
static SELECTORS: Once<Selectors> = Once::new();

fn build_tss() -> TssBlock {
    let mut tss = TaskStateSegment::new();
    for (slot, ist) in [IST_DOUBLE_FAULT, IST_NMI, IST_MACHINE_CHECK]
        .into_iter()
        .enumerate()
    {
        // SAFETY: only the address of the static stack is taken, never a reference; each IST
        // stack is used by exactly one exception vector.
        let base = unsafe { core::ptr::addr_of!(IST_STACKS[slot]) } as u64;
        tss.interrupt_stack_table[usize::from(ist)] = VirtAddr::new(base + IST_STACK_SIZE as u64);
    }
    let rsp0 = core::ptr::addr_of!(RSP0_STACK) as u64;
    tss.privilege_stack_table[0] = VirtAddr::new(rsp0 + RSP0_STACK_SIZE as u64);
    let mut iomap = [0xff; IOMAP_LEN];
    for port in RING3_PORTS {
        iomap[usize::from(port / 8)] &= !(1 << (port % 8));
    }
    TssBlock { tss, iomap }
}

/// Builds and loads the GDT and TSS, and reloads every segment register.
pub fn init() {
    let block = TSS.call_once(build_tss);
    let sel = SELECTORS.call_once(|| {
        // SAFETY: runs once (inside `call_once`), before the GDT is loaded or read.
        let gdt = unsafe { &mut *GDT.0.get() };
        let code = gdt.append(Descriptor::kernel_code_segment());
        let data = gdt.append(Descriptor::kernel_data_segment());
        let tss = match Descriptor::tss_segment_with_iomap(&block.tss, &block.iomap) {
            Ok(d) => d,
            Err(_) => Descriptor::tss_segment(&block.tss),
        };
        let tss = gdt.append(tss);
        let user_data = gdt.append(Descriptor::user_data_segment());
        let user_code = gdt.append(Descriptor::user_code_segment());
        Selectors {
            code,
            data,
            tss,
            user_data,
            user_code,
        }
    });
    // SAFETY: the GDT is a static, complete from here on; only the busy bit of the TSS
    // descriptor changes later (`reload_tr`).
    let gdt: &'static GlobalDescriptorTable = unsafe { &*GDT.0.get() };
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

/// Loads TR again so that its cached limit covers the I/O permission bitmap once more: a VM exit
/// sets TR's limit to 0x67 (SDM Vol. 3C §28.5.2), which would deny ring 3 every port. LTR needs
/// an available (not busy) descriptor, so the busy bit is cleared first (SDM Vol. 3A §8.2.2).
pub fn reload_tr() {
    let Some(sel) = SELECTORS.get() else { return };
    let gdtr = x86_64::instructions::tables::sgdt();
    let type_byte = gdtr.base.as_u64() + u64::from(sel.tss.index()) * 8 + 5;
    // SAFETY: GDTR names the GDT static (inside an UnsafeCell); byte 5 of the TSS descriptor is
    // its type and flags: 0x8b (busy) becomes 0x89 (available). One CPU, interrupts off.
    unsafe {
        let p = type_byte as *mut u8;
        p.write_volatile(p.read_volatile() & !0x02);
        load_tss(sel.tss);
    }
}

/// The selectors of the loaded GDT (host-state fields of a VMCS need them).
pub fn selectors() -> Selectors {
    match SELECTORS.get() {
        Some(s) => *s,
        None => panic!("gdt::init runs before anything asks for selectors"),
    }
}

/// The linear address of the TSS (HOST_TR_BASE).
pub fn tss_base() -> u64 {
    match TSS.get() {
        Some(block) => core::ptr::from_ref(&block.tss) as u64,
        None => panic!("gdt::init runs before anything asks for the TSS"),
    }
}
