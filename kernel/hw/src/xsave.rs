//! The XSAVE feature set on the host: CR4.OSXSAVE, XCR0, XSAVE/XRSTOR of a guest's extended state
//! (Intel SDM Vol. 1 Chapter 13 "Managing State Using the XSAVE Feature Set"), and the debug
//! registers DR0-DR3/DR6 (SDM Vol. 3B §18.2 "Debug Registers"). The only module that executes
//! XSETBV, XSAVE, XRSTOR and MOV to or from a debug register.
//!
//! The hypervisor itself never touches x87, SSE or AVX registers (its target,
//! `x86_64-unknown-none`, is soft-float), so the registers hold whichever guest last ran; the
//! kernel's `guest::xstate` decides when to switch them.

use alloc::vec::Vec;
use conduit_cpustate::xcr0::{self, XsetbvError};
use conduit_cpustate::xsave as layout;
use core::arch::x86_64::__cpuid_count;
use x86_64::registers::control::Cr4;

/// CPUID.1:ECX.XSAVE[bit 26].
const CPUID1_ECX_XSAVE: u32 = 1 << 26;

/// XSAVE could not be turned on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XsaveError {
    /// CPUID.1:ECX.XSAVE is clear.
    Unsupported,
    /// The CPU supports no SSE state with XSAVE (CPUID.(EAX=0DH,ECX=0):EAX bit 1 clear).
    NoSse(u64),
}

impl core::fmt::Display for XsaveError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Unsupported => write!(f, "the CPU has no XSAVE (CPUID.1:ECX bit 26)"),
            Self::NoSse(m) => write!(f, "XSAVE supports components {m:#x}, without SSE"),
        }
    }
}

/// XSAVE enabled on this CPU (CR4.OSXSAVE set): what guests may enable and how big their save
/// areas are.
#[derive(Debug, Clone, Copy)]
pub struct Xsave {
    /// The components guests may enable and that a switch saves and restores in full
    /// (`conduit_cpustate::xcr0::allowed` of what the CPU supports).
    mask: u64,
    /// Bytes of a standard-format area for `mask`, from the components' CPUID sub-leaves.
    size: usize,
    /// What CPUID.(EAX=0DH,ECX=0):ECX reports for all supported components.
    reported: usize,
}

fn cpuid(leaf: u32, sub: u32) -> [u32; 4] {
    let r = __cpuid_count(leaf, sub);
    [r.eax, r.ebx, r.ecx, r.edx]
}

/// Sets CR4.OSXSAVE (SDM Vol. 1 §13.3) and reads the supported components from
/// CPUID.(EAX=0DH,ECX=0):EDX:EAX. XCR0 keeps its reset value (x87 only) until a guest's is loaded.
pub fn enable() -> Result<Xsave, XsaveError> {
    if cpuid(1, 0)[2] & CPUID1_ECX_XSAVE == 0 {
        return Err(XsaveError::Unsupported);
    }
    let [eax, _, ecx, edx] = cpuid(0xd, 0);
    let supported = u64::from(eax) | (u64::from(edx) << 32);
    let mask = xcr0::allowed(supported);
    if mask & xcr0::SSE == 0 {
        return Err(XsaveError::NoSse(supported));
    }
    // SAFETY: CPUID reports XSAVE, so CR4.OSXSAVE may be set; it only enables XSETBV, XGETBV and
    // the XSAVE instructions (and the kernel uses none of the state they manage).
    unsafe { Cr4::write_raw(Cr4::read_raw() | xcr0::CR4_OSXSAVE) };
    Ok(Xsave {
        mask,
        size: layout::area_size(mask, cpuid),
        reported: ecx as usize,
    })
}

/// One 64-byte chunk: the allocation unit that makes an area 64-byte aligned.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct Chunk([u8; 64]);

/// One vCPU's x87/SSE/AVX/AVX-512/PKRU state in the standard XSAVE format, 64-byte aligned
/// (SDM Vol. 1 §13.4).
#[derive(Debug)]
pub struct XsaveArea {
    chunks: Vec<Chunk>,
}

impl XsaveArea {
    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: `Chunk` is 64 plain bytes without padding; the slice covers exactly the vector.
        unsafe {
            core::slice::from_raw_parts_mut(self.chunks.as_mut_ptr().cast(), self.chunks.len() * 64)
        }
    }

    /// Puts the area back to the architectural initial state (what FNINIT and a reset give).
    pub fn reset(&mut self) {
        layout::write_init_image(self.bytes_mut());
    }
}

impl Xsave {
    /// The components guests may enable (the input of the XSETBV check and the CPUID policy).
    pub fn mask(&self) -> u64 {
        self.mask
    }

    /// Bytes of a standard-format area for the allowed components, from their CPUID sub-leaves.
    pub fn area_size(&self) -> usize {
        self.size
    }

    /// What CPUID.(EAX=0DH,ECX=0):ECX reports for all supported components.
    pub fn reported_size(&self) -> usize {
        self.reported
    }

    /// A new area holding the initial state, [`layout::allocation_size`] bytes.
    pub fn new_area(&self) -> XsaveArea {
        let bytes = layout::allocation_size(self.size, self.reported);
        let mut area = XsaveArea {
            chunks: alloc::vec![Chunk([0; 64]); bytes / 64],
        };
        area.reset();
        area
    }

    /// Loads `value` into XCR0, if it is a value XSETBV accepts within [`Xsave::mask`].
    pub fn set_xcr0(&self, value: u64) -> Result<(), XsetbvError> {
        xcr0::check_xsetbv(0, value, self.mask, xcr0::CR4_OSXSAVE)?;
        // SAFETY: CR4.OSXSAVE is set (`enable`) and `value` passed XSETBV's checks against the
        // supported components, so XSETBV cannot fault.
        unsafe { xsetbv(value) };
        Ok(())
    }

    /// Switches the extended state: with XCR0 at the full mask (so no component is lost), XSAVEs
    /// the registers into `out` (the previous owner's area, if any) and XRSTORs `into`; then
    /// loads `xcr0`, the incoming vCPU's own XCR0. Areas come from [`Xsave::new_area`] of this
    /// same `Xsave`.
    pub fn switch(
        &self,
        out: Option<&mut XsaveArea>,
        into: &XsaveArea,
        xcr0: u64,
    ) -> Result<(), XsetbvError> {
        xcr0::check_xsetbv(0, xcr0, self.mask, xcr0::CR4_OSXSAVE)?;
        match out {
            Some(out) => self.save(out),
            // SAFETY: CR4.OSXSAVE is set and `mask` is a valid XCR0 (x87 and SSE present,
            // AVX-512 and AVX as the CPU reports them: `allowed` keeps whole groups).
            None => unsafe { xsetbv(self.mask) },
        }
        let (lo, hi) = (self.mask as u32, (self.mask >> 32) as u32);
        // SAFETY: the area is aligned and sized for `mask`, and holds either the init image (a zero
        // header, MXCSR 0x1f80) or what XSAVE wrote with the same mask, so its header and MXCSR
        // are valid and XRSTOR cannot fault; XCR0 is `mask` (set above or by `save`).
        unsafe {
            core::arch::asm!(
                "xrstor64 [{area}]",
                area = in(reg) into.chunks.as_ptr(),
                in("eax") lo, in("edx") hi,
                options(nostack, preserves_flags, readonly),
            )
        };
        // SAFETY: checked above like `set_xcr0`.
        unsafe { xsetbv(xcr0) };
        Ok(())
    }

    /// XSAVEs the registers into `out` with XCR0 at the full mask (so no component is lost),
    /// which XCR0 stays at: the registers are free for the next [`Xsave::switch`].
    pub fn save(&self, out: &mut XsaveArea) {
        let (lo, hi) = (self.mask as u32, (self.mask >> 32) as u32);
        // SAFETY: CR4.OSXSAVE is set and `mask` is a valid XCR0 (x87 and SSE present, AVX-512 and
        // AVX as the CPU reports them: `allowed` keeps whole groups).
        unsafe { xsetbv(self.mask) };
        // SAFETY: the area is 64-byte aligned and `size` bytes long, the size CPUID gives for
        // `mask`; XSAVE writes only within it.
        unsafe {
            core::arch::asm!(
                "xsave64 [{area}]",
                area = in(reg) out.chunks.as_mut_ptr(),
                in("eax") lo, in("edx") hi,
                options(nostack, preserves_flags),
            )
        };
    }
}

/// XSETBV of XCR0.
///
/// # Safety
/// CR4.OSXSAVE is set and `value` is an XCR0 the CPU accepts.
unsafe fn xsetbv(value: u64) {
    // SAFETY: guaranteed by the caller.
    unsafe {
        core::arch::asm!(
            "xsetbv",
            in("ecx") 0u32, in("eax") value as u32, in("edx") (value >> 32) as u32,
            options(nostack, nomem, preserves_flags),
        )
    };
}

/// DR0-DR3 and DR6: the debug registers neither the VMCS (it holds DR7) nor VM exits switch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DebugRegs {
    pub dr: [u64; 4],
    pub dr6: u64,
}

/// DR6's value after reset (SDM Vol. 3B §18.2.3): reserved bits set, no condition reported.
pub const DR6_INIT: u64 = 0xffff_0ff0;

impl DebugRegs {
    /// The state after reset.
    pub const INIT: Self = Self {
        dr: [0; 4],
        dr6: DR6_INIT,
    };

    /// Reads the registers.
    pub fn read() -> Self {
        let (mut d0, mut d1, mut d2, mut d3, mut d6): (u64, u64, u64, u64, u64);
        // SAFETY: MOV from a debug register at CPL 0 has no side effect (DR7.GD is clear in the
        // host: a VM exit loads DR7 with 0x400, SDM Vol. 3C §28.5.1).
        unsafe {
            core::arch::asm!(
                "mov {0}, dr0", "mov {1}, dr1", "mov {2}, dr2", "mov {3}, dr3", "mov {4}, dr6",
                out(reg) d0, out(reg) d1, out(reg) d2, out(reg) d3, out(reg) d6,
                options(nostack, nomem, preserves_flags),
            )
        };
        Self {
            dr: [d0, d1, d2, d3],
            dr6: d6,
        }
    }

    /// Loads the registers. DR6's upper half must be zero (a MOV of anything else faults): it is
    /// cleared.
    pub fn load(&self) {
        let [d0, d1, d2, d3] = self.dr;
        // SAFETY: the host never enables a breakpoint (DR7 is 0x400 after every VM exit, SDM Vol.
        // 3C §28.5.1, and Conduit never writes DR7), so addresses in DR0-DR3 arm nothing here;
        // DR6's upper 32 bits are cleared, so no MOV faults.
        unsafe {
            core::arch::asm!(
                "mov dr0, {0}", "mov dr1, {1}", "mov dr2, {2}", "mov dr3, {3}", "mov dr6, {4}",
                in(reg) d0, in(reg) d1, in(reg) d2, in(reg) d3, in(reg) self.dr6 & 0xffff_ffff,
                options(nostack, nomem, preserves_flags),
            )
        };
    }
}
