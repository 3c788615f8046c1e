//! The two canonical guest states Conduit starts guests in. Both pass [`super::check_guest_state`]
//! on every CPU in [`crate::fixtures::KNOWN_CPUS`] with the controls of
//! [`crate::controls::ControlRequest::conduit`].

use super::{AccessRights, DescriptorTable, GuestState, Segment, efer, rflags};
use crate::cr::{cr0, cr4};

/// IA32_PAT at power-on: WB, WT, UC-, UC, repeated (SDM Vol. 3A, "PAT Initialization").
pub const PAT_POWER_ON: u64 = 0x0007_0406_0007_0406;
/// DR7 at power-on.
pub const DR7_POWER_ON: u64 = 0x400;

/// Access rights: accessed read/execute code segment, present (type 11, S, P).
const CODE: u32 = 0xb | AccessRights::S | AccessRights::P;
/// Access rights: accessed read/write data segment, present (type 3, S, P).
const DATA: u32 = 0x3 | AccessRights::S | AccessRights::P;
/// Access rights: busy 32-bit/64-bit TSS, present (type 11, S = 0, P).
const BUSY_TSS: u32 = 0xb | AccessRights::P;
/// Access rights: LDT, present (type 2, S = 0, P).
const LDT: u32 = 0x2 | AccessRights::P;

impl GuestState {
    /// Selectors of the flat 64-bit layout: the guest's GDT has a null descriptor, a 64-bit code
    /// descriptor at 0x08, a data descriptor at 0x10 and a 16-byte TSS descriptor at 0x18.
    pub const LONG_MODE_CS: u16 = 0x08;
    pub const LONG_MODE_DS: u16 = 0x10;
    pub const LONG_MODE_TR: u16 = 0x18;

    /// A 64-bit guest with flat segments, at CPL 0, paging with the 4-level tables at `cr3`.
    ///
    /// CR0 = PE | MP | ET | NE | WP | PG; CR4 = PAE | VMXE (VMXE is required by CR4_FIXED0: hide it
    /// with the CR4 guest/host mask and read shadow); EFER = LME | LMA; CS = 64-bit code (L = 1,
    /// D/B = 0, G = 1); SS/DS/ES/FS/GS = flat 4-GiB data; LDTR unusable; TR = busy 64-bit TSS
    /// (base 0, limit 67H); GDTR limit 27H (null, code, data, 16-byte TSS), IDTR limit 0 (no IDT
    /// yet). Set `gdtr`, `idtr` and `tr.base` to where the guest image really has them.
    /// Needs the entry controls "IA-32e mode guest" and "load IA32_EFER" (and "load IA32_PAT").
    pub const fn long_mode_flat(rip: u64, rsp: u64, cr3: u64) -> Self {
        let data = Segment::new(
            Self::LONG_MODE_DS,
            0,
            0xffff_ffff,
            DATA | AccessRights::DB | AccessRights::G,
        );
        Self {
            cr0: cr0::PE | cr0::MP | cr0::ET | cr0::NE | cr0::WP | cr0::PG,
            cr3,
            cr4: cr4::PAE | cr4::VMXE,
            dr7: DR7_POWER_ON,
            debugctl: 0,
            efer: efer::LME | efer::LMA,
            pat: PAT_POWER_ON,
            sysenter_cs: 0,
            sysenter_esp: 0,
            sysenter_eip: 0,
            rsp,
            rip,
            rflags: rflags::FIXED_1,
            es: data,
            cs: Segment::new(
                Self::LONG_MODE_CS,
                0,
                0xffff_ffff,
                CODE | AccessRights::L | AccessRights::G,
            ),
            ss: data,
            ds: data,
            fs: data,
            gs: data,
            ldtr: Segment::unusable(),
            tr: Segment::new(Self::LONG_MODE_TR, 0, 0x67, BUSY_TSS),
            gdtr: DescriptorTable {
                base: 0,
                limit: 0x27,
            },
            idtr: DescriptorTable { base: 0, limit: 0 },
            activity_state: 0,
            interruptibility: 0,
            pending_debug_exceptions: 0,
            vmcs_link_pointer: u64::MAX,
        }
    }

    /// A real-mode guest at `cs_selector:ip` (e.g. 0000:7C00 like a boot sector), as the CPU is
    /// after reset apart from CS:IP: segment bases = selector << 4, 64-KiB limits, IVT at 0
    /// (IDTR limit 3FFH). Needs "unrestricted guest" (CR0.PE = PG = 0) and no "IA-32e mode
    /// guest".
    ///
    /// CR0 = ET | NE (NE is required by CR0_FIXED0: the CR0 read shadow can show it clear);
    /// CR4 = VMXE (hide it likewise); EFER = 0; TR = busy 32-bit TSS (a reset CPU has a busy 16-bit
    /// TSS, type 3; both are allowed); LDTR usable, type 2.
    pub const fn real_mode(cs_selector: u16, ip: u16) -> Self {
        let data = Segment::new(0, 0, 0xffff, DATA);
        Self {
            cr0: cr0::ET | cr0::NE,
            cr3: 0,
            cr4: cr4::VMXE,
            dr7: DR7_POWER_ON,
            debugctl: 0,
            efer: 0,
            pat: PAT_POWER_ON,
            sysenter_cs: 0,
            sysenter_esp: 0,
            sysenter_eip: 0,
            rsp: 0,
            rip: ip as u64,
            rflags: rflags::FIXED_1,
            es: data,
            cs: Segment::new(cs_selector, (cs_selector as u64) << 4, 0xffff, CODE),
            ss: data,
            ds: data,
            fs: data,
            gs: data,
            ldtr: Segment::new(0, 0, 0xffff, LDT),
            tr: Segment::new(0, 0, 0xffff, BUSY_TSS),
            gdtr: DescriptorTable {
                base: 0,
                limit: 0xffff,
            },
            idtr: DescriptorTable {
                base: 0,
                limit: 0x3ff,
            },
            activity_state: 0,
            interruptibility: 0,
            pending_debug_exceptions: 0,
            vmcs_link_pointer: u64::MAX,
        }
    }
}
