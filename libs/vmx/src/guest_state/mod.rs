//! The guest-state checker: the checks a VM entry performs on the guest-state area (SDM Vol. 3C,
//! "Checks on the Guest-State Area" and its subsections "Checks on Guest Control Registers, Debug
//! Registers, and MSRs", "Checks on Guest Segment Registers", "Checks on Guest Descriptor-Table
//! Registers", "Checks on Guest RIP, RFLAGS, and SSP", "Checks on Guest Non-Register State"),
//! run in software before VMLAUNCH so that a bad state is reported as the first SDM rule it breaks
//! instead of as a bare exit reason 33.
//!
//! Not covered: CET/SSP, PKRS, BNDCFGS, RTIT_CTL, PERF_GLOBAL_CTRL and UINV loading (Conduit does
//! not set those entry controls), SMM (entry to SMM is refused by [`crate::controls`]), the PAE
//! PDPTE checks (Conduit runs no PAE-paging guests) and the contents of a VMCS link pointer other
//! than all ones (Conduit does not use VMCS shadowing, so it requires all ones).

mod checks;
mod error;
mod presets;
mod segments;
#[cfg(test)]
mod tests_broken;
#[cfg(test)]
mod tests_valid;
mod vmcs_io;

pub use error::{GuestStateError, SegmentRule};
pub use presets::{DR7_POWER_ON, PAT_POWER_ON};
pub use vmcs_io::segment_fields;

use crate::caps::{VmxMisc, VmxMsrs};
use crate::controls::{EntryControls, PinBasedControls, SecondaryControls, VmxControls};
use crate::cr::FixedBits;
use crate::exit::InterruptionInfo;

/// The segment registers of the guest-state area.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SegReg {
    Es,
    Cs,
    Ss,
    Ds,
    Fs,
    Gs,
    Ldtr,
    Tr,
}

impl SegReg {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Es => "ES",
            Self::Cs => "CS",
            Self::Ss => "SS",
            Self::Ds => "DS",
            Self::Fs => "FS",
            Self::Gs => "GS",
            Self::Ldtr => "LDTR",
            Self::Tr => "TR",
        }
    }
}

impl core::fmt::Display for SegReg {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// GDTR or IDTR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DescriptorTableReg {
    Gdtr,
    Idtr,
}

impl core::fmt::Display for DescriptorTableReg {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Gdtr => "GDTR",
            Self::Idtr => "IDTR",
        })
    }
}

/// The access-rights format of the guest segment fields (SDM Vol. 3C, "Guest Register State",
/// table "Format of Access Rights"): bits 3:0 type, 4 S, 6:5 DPL, 7 P, 11:8 reserved, 12 AVL,
/// 13 L, 14 D/B, 15 G, 16 segment unusable, 31:17 reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AccessRights(pub u32);

impl AccessRights {
    pub const UNUSABLE: Self = Self(1 << 16);
    pub const S: u32 = 1 << 4;
    pub const P: u32 = 1 << 7;
    pub const L: u32 = 1 << 13;
    pub const DB: u32 = 1 << 14;
    pub const G: u32 = 1 << 15;

    pub const fn seg_type(self) -> u8 {
        (self.0 & 0xf) as u8
    }
    /// S: 1 = code or data, 0 = system.
    pub const fn code_or_data(self) -> bool {
        self.0 & Self::S != 0
    }
    pub const fn dpl(self) -> u8 {
        ((self.0 >> 5) & 3) as u8
    }
    pub const fn present(self) -> bool {
        self.0 & Self::P != 0
    }
    pub const fn long(self) -> bool {
        self.0 & Self::L != 0
    }
    pub const fn default_big(self) -> bool {
        self.0 & Self::DB != 0
    }
    pub const fn granularity(self) -> bool {
        self.0 & Self::G != 0
    }
    pub const fn unusable(self) -> bool {
        self.0 & (1 << 16) != 0
    }
    pub const fn usable(self) -> bool {
        !self.unusable()
    }
}

/// One segment register's four VMCS fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Segment {
    pub selector: u16,
    pub base: u64,
    pub limit: u32,
    pub access_rights: u32,
}

impl Segment {
    pub const fn new(selector: u16, base: u64, limit: u32, access_rights: u32) -> Self {
        Self {
            selector,
            base,
            limit,
            access_rights,
        }
    }
    /// A segment marked unusable (null selector).
    pub const fn unusable() -> Self {
        Self::new(0, 0, 0, AccessRights::UNUSABLE.0)
    }
    pub const fn ar(self) -> AccessRights {
        AccessRights(self.access_rights)
    }
    /// RPL (bits 1:0 of the selector).
    pub const fn rpl(self) -> u8 {
        (self.selector & 3) as u8
    }
    /// TI (bit 2 of the selector).
    pub const fn ti(self) -> bool {
        self.selector & 4 != 0
    }
}

/// GDTR or IDTR: base and limit (no selector or access rights in the VMCS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DescriptorTable {
    pub base: u64,
    pub limit: u32,
}

/// Guest activity state (SDM Vol. 3C, "Guest Non-Register State", table "Format of Activity
/// State").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActivityState {
    Active = 0,
    Hlt = 1,
    Shutdown = 2,
    WaitForSipi = 3,
}

impl ActivityState {
    pub const fn from_raw(v: u32) -> Option<Self> {
        match v {
            0 => Some(Self::Active),
            1 => Some(Self::Hlt),
            2 => Some(Self::Shutdown),
            3 => Some(Self::WaitForSipi),
            _ => None,
        }
    }
    pub const fn name(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Hlt => "HLT",
            Self::Shutdown => "shutdown",
            Self::WaitForSipi => "wait-for-SIPI",
        }
    }
}

impl core::fmt::Display for ActivityState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// Interruptibility-state bits (SDM table "Format of Interruptibility State").
pub mod interruptibility {
    pub const BLOCKING_BY_STI: u32 = 1 << 0;
    pub const BLOCKING_BY_MOV_SS: u32 = 1 << 1;
    pub const BLOCKING_BY_SMI: u32 = 1 << 2;
    pub const BLOCKING_BY_NMI: u32 = 1 << 3;
    pub const ENCLAVE_INTERRUPTION: u32 = 1 << 4;
}

/// RFLAGS bits the checks look at.
pub mod rflags {
    pub const FIXED_1: u64 = 1 << 1;
    pub const TF: u64 = 1 << 8;
    pub const IF: u64 = 1 << 9;
    pub const VM: u64 = 1 << 17;
    /// Bits 63:22, 15, 5 and 3.
    pub const RESERVED: u64 = !0x3f_ffff | (1 << 15) | (1 << 5) | (1 << 3);
}

/// IA32_EFER bits.
pub mod efer {
    pub const SCE: u64 = 1 << 0;
    pub const LME: u64 = 1 << 8;
    pub const LMA: u64 = 1 << 10;
    pub const NXE: u64 = 1 << 11;
}

/// The guest-state area as plain values: what the kernel writes before VMLAUNCH (and can read
/// back from the VMCS with [`GuestState::read_from`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct GuestState {
    pub cr0: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub dr7: u64,
    pub debugctl: u64,
    pub efer: u64,
    pub pat: u64,
    pub sysenter_cs: u32,
    pub sysenter_esp: u64,
    pub sysenter_eip: u64,
    pub rsp: u64,
    pub rip: u64,
    pub rflags: u64,
    pub es: Segment,
    pub cs: Segment,
    pub ss: Segment,
    pub ds: Segment,
    pub fs: Segment,
    pub gs: Segment,
    pub ldtr: Segment,
    pub tr: Segment,
    pub gdtr: DescriptorTable,
    pub idtr: DescriptorTable,
    pub activity_state: u32,
    pub interruptibility: u32,
    pub pending_debug_exceptions: u64,
    pub vmcs_link_pointer: u64,
}

impl GuestState {
    pub const fn segment(&self, r: SegReg) -> Segment {
        match r {
            SegReg::Es => self.es,
            SegReg::Cs => self.cs,
            SegReg::Ss => self.ss,
            SegReg::Ds => self.ds,
            SegReg::Fs => self.fs,
            SegReg::Gs => self.gs,
            SegReg::Ldtr => self.ldtr,
            SegReg::Tr => self.tr,
        }
    }
    /// Checks this state: see [`check_guest_state`].
    pub fn check(&self, ctx: &CheckContext) -> Result<(), GuestStateError> {
        check_guest_state(self, ctx)
    }
}

/// The controls and capabilities the guest-state checks depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckContext {
    /// VM-entry controls ("IA-32e mode guest", "load debug controls", "load IA32_PAT", "load
    /// IA32_EFER" are the ones checked).
    pub entry: EntryControls,
    /// Secondary processor-based controls in effect ("unrestricted guest").
    pub secondary: SecondaryControls,
    /// Pin-based controls ("virtual NMIs").
    pub pin: PinBasedControls,
    /// The VM-entry interruption-information field (event injection).
    pub entry_interruption: InterruptionInfo,
    /// IA32_VMX_CR0_FIXED0/1 as the CPU reports them (the checker applies the unrestricted-guest
    /// exemption itself).
    pub cr0_fixed: FixedBits,
    /// IA32_VMX_CR4_FIXED0/1.
    pub cr4_fixed: FixedBits,
    /// IA32_VMX_MISC (supported activity states).
    pub misc: VmxMisc,
    /// MAXPHYADDR (CPUID.80000008H:EAX[7:0]); defaults to 52, the architectural maximum.
    pub physical_address_width: u8,
    /// Linear-address width (CPUID.80000008H:EAX[15:8]); defaults to 48 (4-level paging).
    pub linear_address_width: u8,
}

impl CheckContext {
    /// The context for entering with `controls` on the CPU whose capability MSRs are `msrs`, with
    /// no event injected.
    pub fn new(msrs: &VmxMsrs, controls: &VmxControls) -> Self {
        Self {
            entry: controls.entry,
            secondary: controls.effective_secondary(),
            pin: controls.pin,
            entry_interruption: InterruptionInfo::NONE,
            cr0_fixed: FixedBits::cr0(msrs),
            cr4_fixed: FixedBits::cr4(msrs),
            misc: VmxMisc::decode(msrs.misc),
            physical_address_width: 52,
            linear_address_width: 48,
        }
    }
    /// Sets MAXPHYADDR and the linear-address width (from CPUID leaf 80000008H).
    pub const fn with_address_widths(mut self, physical: u8, linear: u8) -> Self {
        self.physical_address_width = physical;
        self.linear_address_width = linear;
        self
    }
    /// Sets the VM-entry interruption-information field (an event to inject).
    pub const fn with_injection(mut self, event: InterruptionInfo) -> Self {
        self.entry_interruption = event;
        self
    }
    pub const fn ia32e_mode_guest(&self) -> bool {
        self.entry.contains(EntryControls::IA32E_MODE_GUEST)
    }
    pub const fn unrestricted_guest(&self) -> bool {
        self.secondary
            .contains(SecondaryControls::UNRESTRICTED_GUEST)
    }
}

/// Runs the SDM's guest-state checks in the SDM's order and returns the first that fails.
pub fn check_guest_state(s: &GuestState, ctx: &CheckContext) -> Result<(), GuestStateError> {
    checks::control_registers_and_msrs(s, ctx)?;
    segments::check(s, ctx)?;
    checks::descriptor_tables(s, ctx)?;
    checks::rip_and_rflags(s, ctx)?;
    checks::non_register_state(s, ctx)
}

/// `addr` is canonical for a `width`-bit linear address space: bits 63:width-1 are identical.
pub(crate) fn is_canonical(addr: u64, width: u8) -> bool {
    let w = u32::from(width.clamp(32, 64));
    if w >= 64 {
        return true;
    }
    let shift = 64 - w;
    (((addr << shift) as i64) >> shift) as u64 == addr
}
