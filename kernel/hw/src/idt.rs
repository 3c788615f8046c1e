//! The IDT: every architectural exception (Intel SDM Vol. 3A, 6.15 "Exception and Interrupt
//! Reference") is reported with its decoded frame, then the machine is stopped with a failure code.
//! Nothing ever hangs silently. The one exception: a fault taken at CPL 3 (CS.RPL = 3 in the
//! frame) is the control task's, and it ends that task's call instead (the kernel's `control`).
//!
//! The policy the traps reach (the control task, interrupt dispatch) lives above this crate and
//! registers itself once at boot with [`set_handlers`]; until then a CPL 3 fault is fatal like any
//! other exception, and an interrupt is reported on the same fatal path.

use super::gdt;
use crate::console;
use crate::power::{self, FailCode};
use spin::Once;
use x86_64::PrivilegeLevel;
use x86_64::registers::control::Cr2;
use x86_64::structures::idt::{InterruptDescriptorTable, InterruptStackFrame, PageFaultErrorCode};

static IDT: Once<InterruptDescriptorTable> = Once::new();
/// The registered handlers. Read with one atomic load on every trap: no lock, no allocation.
static HANDLERS: Once<Handlers> = Once::new();

/// What the traps hand to the policy above the hardware layer.
#[derive(Debug, Clone, Copy)]
pub struct Handlers {
    /// A fault taken at CPL 3 other than NMI, #DF and #MC: the control task's. It ends the
    /// task's call and does not return.
    pub user_exception: fn(vector: u8, frame: &InterruptStackFrame, error: Option<u64>) -> !,
    /// Every vector from 0x20 up but the VT-d fault and spurious vectors: dispatches the vector
    /// and acknowledges it (EOI).
    pub interrupt: fn(vector: u8),
    /// The hypervisor tick, after `interrupt`, when it interrupted CPL 3: the control task's
    /// watchdog.
    pub user_tick: fn(frame: &InterruptStackFrame),
}

/// [`set_handlers`] was called a second time; the first registration stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlreadyRegistered;

impl core::fmt::Display for AlreadyRegistered {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "the trap handlers are already registered")
    }
}

/// Registers the handlers the traps call; once, at boot, before interrupts are enabled.
pub fn set_handlers(handlers: Handlers) -> Result<(), AlreadyRegistered> {
    let mut first = false;
    HANDLERS.call_once(|| {
        first = true;
        handlers
    });
    if first {
        Ok(())
    } else {
        Err(AlreadyRegistered)
    }
}

/// Mnemonic and name of each exception vector (SDM Vol. 3A, Table 6-1).
pub fn exception_name(vector: u8) -> (&'static str, &'static str) {
    match vector {
        0 => ("#DE", "divide error"),
        1 => ("#DB", "debug"),
        2 => ("NMI", "non-maskable interrupt"),
        3 => ("#BP", "breakpoint"),
        4 => ("#OF", "overflow"),
        5 => ("#BR", "bound range exceeded"),
        6 => ("#UD", "invalid opcode"),
        7 => ("#NM", "device not available"),
        8 => ("#DF", "double fault"),
        10 => ("#TS", "invalid TSS"),
        11 => ("#NP", "segment not present"),
        12 => ("#SS", "stack-segment fault"),
        13 => ("#GP", "general protection"),
        14 => ("#PF", "page fault"),
        16 => ("#MF", "x87 floating-point error"),
        17 => ("#AC", "alignment check"),
        18 => ("#MC", "machine check"),
        19 => ("#XM", "SIMD floating-point"),
        20 => ("#VE", "virtualization exception"),
        21 => ("#CP", "control protection"),
        28 => ("#HV", "hypervisor injection"),
        29 => ("#VC", "VMM communication"),
        30 => ("#SX", "security exception"),
        _ => ("#??", "reserved vector"),
    }
}

/// Decodes a #PF error code (SDM Vol. 3A, 4.7 "Page-Fault Exceptions").
fn page_fault_cause(code: u64) -> &'static str {
    let pf = PageFaultErrorCode::from_bits_truncate(code);
    match (
        pf.contains(PageFaultErrorCode::PROTECTION_VIOLATION),
        pf.contains(PageFaultErrorCode::INSTRUCTION_FETCH),
        pf.contains(PageFaultErrorCode::CAUSED_BY_WRITE),
    ) {
        (false, true, _) => "not present, instruction fetch",
        (false, false, true) => "not present, write",
        (false, false, false) => "not present, read",
        (true, true, _) => "protection violation, instruction fetch",
        (true, false, true) => "protection violation, write",
        (true, false, false) => "protection violation, read",
    }
}

/// Prints the decoded frame and stops the machine; a fault of the control task (CPL 3) ends its
/// call instead. NMI, #DF and #MC are never the task's to survive.
fn fatal(vector: u8, frame: &InterruptStackFrame, error: Option<u64>) -> ! {
    if !matches!(vector, 2 | 8 | 18)
        && frame.code_segment.rpl() == PrivilegeLevel::Ring3
        && let Some(h) = HANDLERS.get()
    {
        (h.user_exception)(vector, frame, error);
    }
    let (mnemonic, name) = exception_name(vector);
    let detail = match (vector, error) {
        (14, Some(code)) => {
            console::emergency(format_args!(
                "EXCEPTION {mnemonic} ({name}), error code {code:#06x} ({}{})",
                page_fault_cause(code),
                if code & 4 != 0 {
                    ", user"
                } else {
                    ", supervisor"
                }
            ));
            true
        }
        (_, Some(code)) => {
            console::emergency(format_args!(
                "EXCEPTION {mnemonic} ({name}), error code {code:#06x} "
            ));
            true
        }
        (_, None) => false,
    };
    if !detail && vector >= 0x20 {
        console::emergency(format_args!(
            "INTERRUPT vector {vector:#04x} before its handler was registered"
        ));
    } else if !detail {
        console::emergency(format_args!(
            "EXCEPTION {mnemonic} ({name}), vector {vector}"
        ));
    }
    console::emergency(format_args!(
        "  RIP    {:#018x}  CS {:#06x}  RFLAGS {:#010x}",
        frame.instruction_pointer.as_u64(),
        frame.code_segment.0,
        frame.cpu_flags.bits()
    ));
    console::emergency(format_args!(
        "  RSP    {:#018x}  SS {:#06x}",
        frame.stack_pointer.as_u64(),
        frame.stack_segment.0
    ));
    if vector == 14 {
        let cr2 = Cr2::read_raw();
        console::emergency(format_args!("  CR2    {cr2:#018x}"));
    }
    power::fail(FailCode::Exception(vector))
}

macro_rules! plain {
    ($name:ident, $vector:expr) => {
        extern "x86-interrupt" fn $name(frame: InterruptStackFrame) {
            fatal($vector, &frame, None)
        }
    };
}
macro_rules! with_code {
    ($name:ident, $vector:expr) => {
        extern "x86-interrupt" fn $name(frame: InterruptStackFrame, code: u64) {
            fatal($vector, &frame, Some(code))
        }
    };
}

plain!(divide_error, 0);
plain!(debug, 1);
plain!(nmi, 2);
plain!(breakpoint, 3);
plain!(overflow, 4);
plain!(bound_range, 5);
plain!(invalid_opcode, 6);
plain!(device_not_available, 7);
with_code!(invalid_tss, 10);
with_code!(segment_not_present, 11);
with_code!(stack_segment, 12);
with_code!(general_protection, 13);
plain!(x87_fp, 16);
with_code!(alignment_check, 17);
plain!(simd_fp, 19);
plain!(virtualization, 20);
with_code!(control_protection, 21);
plain!(hv_injection, 28);
with_code!(vmm_communication, 29);
with_code!(security, 30);

extern "x86-interrupt" fn double_fault(frame: InterruptStackFrame, code: u64) -> ! {
    fatal(8, &frame, Some(code))
}

extern "x86-interrupt" fn machine_check(frame: InterruptStackFrame) -> ! {
    fatal(18, &frame, None)
}

extern "x86-interrupt" fn page_fault(frame: InterruptStackFrame, code: PageFaultErrorCode) {
    fatal(14, &frame, Some(code.bits()))
}

/// The VT-d fault event: drain the fault records, then acknowledge.
extern "x86-interrupt" fn vtd_fault(_frame: InterruptStackFrame) {
    super::apic::count_delivery(super::apic::vectors::VTD_FAULT);
    super::percpu::current().count_interrupt(super::apic::vectors::VTD_FAULT);
    super::vtd::fault::on_interrupt();
    super::apic::eoi();
}

/// The local APIC's spurious interrupt: nothing to do, and no EOI (SDM Vol. 3A, 11.9).
extern "x86-interrupt" fn spurious(_frame: InterruptStackFrame) {
    super::apic::count_delivery(super::apic::vectors::SPURIOUS);
    super::percpu::current().count_interrupt(super::apic::vectors::SPURIOUS);
}

/// Every other vector from 0x20 up: the tick and device interrupts, which the registered
/// [`Handlers::interrupt`] (the kernel's `irq`) dispatches by vector (and acknowledges). One
/// instance per vector, so the vector is known without asking the local APIC. A tick that
/// interrupted the control task (CPL 3) is also its watchdog's.
extern "x86-interrupt" fn external<const V: u8>(frame: InterruptStackFrame) {
    let Some(h) = HANDLERS.get() else {
        fatal(V, &frame, None)
    };
    (h.interrupt)(V);
    if V == super::apic::vectors::TICK && frame.code_segment.rpl() == PrivilegeLevel::Ring3 {
        (h.user_tick)(&frame);
    }
}

/// Installs [`external`] for every listed vector.
macro_rules! external_vectors {
    ($idt:ident; $($v:literal)*) => {
        $( $idt[$v].set_handler_fn(external::<$v>); )*
    };
}

/// Loads the IDT on an AP (the one every CPU shares, built by [`init`] on the BSP).
pub fn load() {
    if let Some(idt) = IDT.get() {
        idt.load();
    }
}

/// Builds and loads the IDT.
pub fn init() {
    let idt = IDT.call_once(|| {
        let mut idt = InterruptDescriptorTable::new();
        idt.divide_error.set_handler_fn(divide_error);
        idt.debug.set_handler_fn(debug);
        idt.breakpoint.set_handler_fn(breakpoint);
        idt.overflow.set_handler_fn(overflow);
        idt.bound_range_exceeded.set_handler_fn(bound_range);
        idt.invalid_opcode.set_handler_fn(invalid_opcode);
        idt.device_not_available
            .set_handler_fn(device_not_available);
        idt.invalid_tss.set_handler_fn(invalid_tss);
        idt.segment_not_present.set_handler_fn(segment_not_present);
        idt.stack_segment_fault.set_handler_fn(stack_segment);
        idt.general_protection_fault
            .set_handler_fn(general_protection);
        idt.page_fault.set_handler_fn(page_fault);
        idt.x87_floating_point.set_handler_fn(x87_fp);
        idt.alignment_check.set_handler_fn(alignment_check);
        idt.simd_floating_point.set_handler_fn(simd_fp);
        idt.virtualization.set_handler_fn(virtualization);
        idt.cp_protection_exception
            .set_handler_fn(control_protection);
        idt.hv_injection_exception.set_handler_fn(hv_injection);
        idt.vmm_communication_exception
            .set_handler_fn(vmm_communication);
        idt.security_exception.set_handler_fn(security);
        // 0x20..=0xfe but the VT-d fault vector (0x30), which has its own handler.
        external_vectors!(idt;
            0x20 0x21 0x22 0x23 0x24 0x25 0x26 0x27 0x28 0x29 0x2a 0x2b
            0x2c 0x2d 0x2e 0x2f 0x31 0x32 0x33 0x34 0x35 0x36 0x37 0x38
            0x39 0x3a 0x3b 0x3c 0x3d 0x3e 0x3f 0x40 0x41 0x42 0x43 0x44
            0x45 0x46 0x47 0x48 0x49 0x4a 0x4b 0x4c 0x4d 0x4e 0x4f 0x50
            0x51 0x52 0x53 0x54 0x55 0x56 0x57 0x58 0x59 0x5a 0x5b 0x5c
            0x5d 0x5e 0x5f 0x60 0x61 0x62 0x63 0x64 0x65 0x66 0x67 0x68
            0x69 0x6a 0x6b 0x6c 0x6d 0x6e 0x6f 0x70 0x71 0x72 0x73 0x74
            0x75 0x76 0x77 0x78 0x79 0x7a 0x7b 0x7c 0x7d 0x7e 0x7f 0x80
            0x81 0x82 0x83 0x84 0x85 0x86 0x87 0x88 0x89 0x8a 0x8b 0x8c
            0x8d 0x8e 0x8f 0x90 0x91 0x92 0x93 0x94 0x95 0x96 0x97 0x98
            0x99 0x9a 0x9b 0x9c 0x9d 0x9e 0x9f 0xa0 0xa1 0xa2 0xa3 0xa4
            0xa5 0xa6 0xa7 0xa8 0xa9 0xaa 0xab 0xac 0xad 0xae 0xaf 0xb0
            0xb1 0xb2 0xb3 0xb4 0xb5 0xb6 0xb7 0xb8 0xb9 0xba 0xbb 0xbc
            0xbd 0xbe 0xbf 0xc0 0xc1 0xc2 0xc3 0xc4 0xc5 0xc6 0xc7 0xc8
            0xc9 0xca 0xcb 0xcc 0xcd 0xce 0xcf 0xd0 0xd1 0xd2 0xd3 0xd4
            0xd5 0xd6 0xd7 0xd8 0xd9 0xda 0xdb 0xdc 0xdd 0xde 0xdf 0xe0
            0xe1 0xe2 0xe3 0xe4 0xe5 0xe6 0xe7 0xe8 0xe9 0xea 0xeb 0xec
            0xed 0xee 0xef 0xf0 0xf1 0xf2 0xf3 0xf4 0xf5 0xf6 0xf7 0xf8
            0xf9 0xfa 0xfb 0xfc 0xfd 0xfe
        );
        idt[super::apic::vectors::VTD_FAULT].set_handler_fn(vtd_fault);
        idt[super::apic::vectors::SPURIOUS].set_handler_fn(spurious);
        // SAFETY: the IST indices name stacks that gdt::init placed in the TSS, each used by
        // exactly one vector.
        unsafe {
            idt.double_fault
                .set_handler_fn(double_fault)
                .set_stack_index(gdt::IST_DOUBLE_FAULT);
            idt.non_maskable_interrupt
                .set_handler_fn(nmi)
                .set_stack_index(gdt::IST_NMI);
            idt.machine_check
                .set_handler_fn(machine_check)
                .set_stack_index(gdt::IST_MACHINE_CHECK);
        }
        idt
    });
    idt.load();
}
