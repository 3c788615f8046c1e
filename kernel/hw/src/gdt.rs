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

/// The BSP's IST and RSP0 stacks (the APs' come from the frame allocator, [`CpuStacks`]).
static mut IST_STACKS: [Stack; 3] = [const { Stack([0; IST_STACK_SIZE]) }; 3];
static mut RSP0_STACK: Rsp0Stack = Rsp0Stack([0; RSP0_STACK_SIZE]);

/// Bytes an AP's IST and RSP0 stacks need, in one block of frames.
pub const AP_TRAP_STACKS: usize = 3 * IST_STACK_SIZE + RSP0_STACK_SIZE;

/// Bytes of the unmapped guard page below each of an AP's stacks: a stack that overflows faults
/// on it (a page fault, then a double fault on the IST stack, SDM Vol. 3A §6.15 "Interrupt 8")
/// instead of overwriting the stack below.
pub const GUARD: u64 = 4096;

/// An AP's trap stacks in the order they are mapped (each above its own guard page): the three
/// IST stacks, then the RSP0 stack.
pub const AP_TRAP_STACK_SIZES: [u64; 4] = [
    IST_STACK_SIZE as u64,
    IST_STACK_SIZE as u64,
    IST_STACK_SIZE as u64,
    RSP0_STACK_SIZE as u64,
];

/// The tops of one CPU's IST and RSP0 stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuStacks {
    pub ist: [u64; 3],
    pub rsp0: u64,
}

impl CpuStacks {
    /// The trap stacks of an AP whose stacks are mapped from virtual `base` on: a [`GUARD`] page,
    /// then a stack of [`AP_TRAP_STACK_SIZES`], and so on (`memory::mmio::map_stacks`).
    pub fn carve(base: u64) -> Self {
        let mut tops = [0; 4];
        let mut top = base;
        for (t, size) in tops.iter_mut().zip(AP_TRAP_STACK_SIZES) {
            top += GUARD + size;
            *t = top;
        }
        Self {
            ist: [tops[0], tops[1], tops[2]],
            rsp0: tops[3],
        }
    }
}

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

/// One CPU's GDT and TSS. Each CPU has its own, so that each has its own TSS (its IST and RSP0
/// stacks, and the busy bit LTR sets, SDM Vol. 3A §8.2.2); the selectors are the same on every
/// CPU. The tables live in an `UnsafeCell`: LTR marks the TSS descriptor busy, and reloading TR
/// after a VM exit (which cuts TR's limit to 0x67, SDM Vol. 3C §28.5.2) needs the busy bit
/// cleared. The GDT is the first field: [`current_cpu`] finds the record from GDTR's base.
#[repr(C)]
struct Tables {
    gdt: GlobalDescriptorTable,
    tss: TssBlock,
}

struct TablesCell(UnsafeCell<Tables>);

// SAFETY: CPU i's record is written only by `init_cpu(i)`, which runs once on CPU i before
// anything reads it, and by `reload_tr` on CPU i with interrupts disabled. No CPU touches
// another's record.
unsafe impl Sync for TablesCell {}

/// The most CPUs Conduit runs on.
pub const MAX_CPUS: usize = 64;

static TABLES: [TablesCell; MAX_CPUS] = [const {
    TablesCell(UnsafeCell::new(Tables {
        gdt: GlobalDescriptorTable::new(),
        tss: TssBlock {
            tss: TaskStateSegment::new(),
            iomap: [0; IOMAP_LEN],
        },
    }))
}; MAX_CPUS];
static SELECTORS: Once<Selectors> = Once::new();

fn fill_tss(block: &mut TssBlock, stacks: &CpuStacks) {
    for (slot, ist) in [IST_DOUBLE_FAULT, IST_NMI, IST_MACHINE_CHECK]
        .into_iter()
        .enumerate()
    {
        block.tss.interrupt_stack_table[usize::from(ist)] = VirtAddr::new(stacks.ist[slot]);
    }
    block.tss.privilege_stack_table[0] = VirtAddr::new(stacks.rsp0);
    block.iomap.fill(0xff);
    for port in RING3_PORTS {
        block.iomap[usize::from(port / 8)] &= !(1 << (port % 8));
    }
}

/// The BSP's stacks: the static ones.
fn bsp_stacks() -> CpuStacks {
    let mut ist = [0; 3];
    for (slot, top) in ist.iter_mut().enumerate() {
        // SAFETY: only the address of the static stack is taken, never a reference; each IST
        // stack is used by exactly one exception vector of the BSP.
        let base = unsafe { core::ptr::addr_of!(IST_STACKS[slot]) } as u64;
        *top = base + IST_STACK_SIZE as u64;
    }
    let rsp0 = core::ptr::addr_of!(RSP0_STACK) as u64 + RSP0_STACK_SIZE as u64;
    CpuStacks { ist, rsp0 }
}

/// Builds and loads the BSP's (CPU 0's) GDT and TSS, and reloads every segment register.
pub fn init() {
    init_cpu(0, &bsp_stacks());
}

/// Builds and loads CPU `cpu`'s GDT and TSS (with `stacks`), and reloads every segment register.
/// Runs once on each CPU, on that CPU; `cpu` < [`MAX_CPUS`] (larger indices panic: the caller
/// numbers at most that many).
pub fn init_cpu(cpu: usize, stacks: &CpuStacks) {
    let tables = TABLES[cpu].0.get();
    // SAFETY: this CPU's record, written only here, before this CPU loads it (see `TablesCell`).
    let block: &'static mut TssBlock = unsafe { &mut (*tables).tss };
    fill_tss(block, stacks);
    let block: &'static TssBlock = block;
    let mut gdt = GlobalDescriptorTable::new();
    let code = gdt.append(Descriptor::kernel_code_segment());
    let data = gdt.append(Descriptor::kernel_data_segment());
    let tss = match Descriptor::tss_segment_with_iomap(&block.tss, &block.iomap) {
        Ok(d) => d,
        Err(_) => Descriptor::tss_segment(&block.tss),
    };
    let tss = gdt.append(tss);
    let user_data = gdt.append(Descriptor::user_data_segment());
    let user_code = gdt.append(Descriptor::user_code_segment());
    let sel = *SELECTORS.call_once(|| Selectors {
        code,
        data,
        tss,
        user_data,
        user_code,
    });
    // SAFETY: as above (the GDT field, disjoint from the TSS block borrowed above); the TSS
    // descriptor points at this record's block, which lives forever.
    unsafe { (*tables).gdt = gdt };
    // SAFETY: the GDT is a static, complete from here on; only the busy bit of the TSS
    // descriptor changes later (`reload_tr`).
    let gdt: &'static GlobalDescriptorTable = unsafe { &(*tables).gdt };
    gdt.load();
    // SAFETY: the selectors index descriptors of the GDT just loaded, which lives forever (every
    // CPU's GDT has the same layout, so the selectors are the same).
    unsafe {
        CS::set_reg(sel.code);
        SS::set_reg(sel.data);
        DS::set_reg(sel.data);
        ES::set_reg(sel.data);
        load_tss(sel.tss);
    }
}

/// The index of the CPU this runs on, from GDTR's base: each CPU loads its own GDT, which only
/// ring 0 can change (LGDT) and which a VM exit restores from the VMCS's HOST_GDTR_BASE. `None`
/// before the CPU loaded its GDT (the loader's is still in use).
pub fn current_cpu() -> Option<usize> {
    let base = x86_64::instructions::tables::sgdt().base.as_u64();
    let first = TABLES.as_ptr() as u64;
    let size = core::mem::size_of::<TablesCell>() as u64;
    let offset = base.checked_sub(first)?;
    let index = (offset / size) as usize;
    (offset % size == 0 && index < MAX_CPUS).then_some(index)
}

/// Loads TR again so that its cached limit covers the I/O permission bitmap once more: a VM exit
/// sets TR's limit to 0x67 (SDM Vol. 3C §28.5.2), which would deny ring 3 every port. LTR needs
/// an available (not busy) descriptor, so the busy bit is cleared first (SDM Vol. 3A §8.2.2).
pub fn reload_tr() {
    let Some(sel) = SELECTORS.get() else { return };
    let Some(cpu) = current_cpu() else { return };
    // SAFETY: this CPU's own GDT (see `TablesCell`), loaded; only the busy bit of its TSS
    // descriptor is read and written.
    let gdt = unsafe { core::ptr::addr_of_mut!((*TABLES[cpu].0.get()).gdt) };
    let type_byte = gdt as u64 + u64::from(sel.tss.index()) * 8 + 5;
    // SAFETY: byte 5 of the TSS descriptor in this CPU's GDT is its type and flags: 0x8b (busy)
    // becomes 0x89 (available). Only this CPU uses its GDT; interrupts are off here.
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

/// The linear address of this CPU's TSS (HOST_TR_BASE).
pub fn tss_base() -> u64 {
    match current_cpu() {
        // SAFETY: only the address of this CPU's TSS is taken.
        Some(cpu) => unsafe { core::ptr::addr_of!((*TABLES[cpu].0.get()).tss.tss) as u64 },
        None => panic!("gdt::init runs before anything asks for the TSS"),
    }
}
