//! Conduit's guest-visible ABI: the numbers the kernel and the guests must agree on.
//!
//! `no_std`, no dependencies: the kernel, the test guests (bare metal) and the host-side
//! configuration checks all use these constants. The prose version is `guest/README.md`.
//!
//! - Hypercalls: `vmcall` with RAX = function, arguments in RBX and RCX, the result in RAX
//!   ([`HC_OK`], or an error value with [`HC_ERROR`] (bit 63) set).
//! - CPUID: leaf [`CPUID_HV_LEAF`] reports the hypervisor; CPUID.1:ECX hides VMX and sets the
//!   hypervisor-present bit.
//! - Console: a virtual 16550 at [`COM1_PORT`].
//! - Virtual interrupts (from the guest's assigned devices and its [`HC_TIMER`]): delivered as
//!   external interrupts through the guest's IDT once RFLAGS.IF = 1 and no STI / MOV SS shadow
//!   blocks them (an interrupt pending while IF = 0 arrives right after STI's shadow). There is no
//!   virtual local APIC: no EOI is needed; each vector is pending at most once (edges coalesce);
//!   the highest pending vector goes first.
//! - Entry state: [`long64`] and [`real16`].
#![no_std]

/// Version of this ABI, reported in EAX of CPUID leaf [`CPUID_HV_VERSION_LEAF`].
pub const ABI_VERSION: u32 = 1;

// ---------------------------------------------------------------------------------------------
// Hypercalls
// ---------------------------------------------------------------------------------------------

/// Writes bytes to the guest's console: RBX = GPA of the bytes, RCX = length (at most
/// [`HC_CONSOLE_WRITE_MAX`]). The bytes join the guest's console output like UART output does.
pub const HC_CONSOLE_WRITE: u64 = 1;
/// Gives up the rest of the time slice. No arguments.
pub const HC_YIELD: u64 = 2;
/// Ends the guest: RBX = exit code. The guest never runs again (the call does not return).
pub const HC_EXIT: u64 = 3;

/// Counts the guest's VM exits: RBX = a basic exit reason (0..=95, SDM Vol. 3C Appendix C) for
/// that reason's count, or [`HC_EXIT_COUNT_ALL`] for all of them. The count includes this call's
/// own exit, so two calls around an instruction differ by 1 when the instruction caused none.
pub const HC_EXIT_COUNT: u64 = 4;
/// [`HC_EXIT_COUNT`]'s RBX for the total over every reason.
pub const HC_EXIT_COUNT_ALL: u64 = u64::MAX;

/// Arms the guest's one-shot virtual timer: RBX = the vector to raise (0x20..=0xFF), RCX = the
/// delay in microseconds (1..=[`HC_TIMER_MAX_DELAY_US`]). RBX = 0 disarms it. Arming again
/// replaces the previous deadline. When the deadline has passed the vector becomes pending and is
/// delivered as described under "Virtual interrupts" below.
pub const HC_TIMER: u64 = 5;
/// The longest delay [`HC_TIMER`] accepts: one hour.
pub const HC_TIMER_MAX_DELAY_US: u64 = 3_600_000_000;
/// The lowest vector [`HC_TIMER`] accepts (0-31 are exceptions).
pub const HC_TIMER_MIN_VECTOR: u64 = 0x20;

/// The most bytes one [`HC_CONSOLE_WRITE`] may write.
pub const HC_CONSOLE_WRITE_MAX: u64 = 4096;

/// Success.
pub const HC_OK: u64 = 0;
/// Set in every error result (bit 63).
pub const HC_ERROR: u64 = 1 << 63;
/// RAX named no hypercall function.
pub const HC_ERR_UNKNOWN_FUNCTION: u64 = HC_ERROR | 1;
/// An argument is out of range (e.g. a console write longer than [`HC_CONSOLE_WRITE_MAX`]).
pub const HC_ERR_INVALID_ARGUMENT: u64 = HC_ERROR | 2;
/// A guest-physical range lies (partly) outside the guest's memory.
pub const HC_ERR_BAD_ADDRESS: u64 = HC_ERROR | 3;

/// Whether a hypercall result is an error.
pub const fn hc_is_error(result: u64) -> bool {
    result & HC_ERROR != 0
}

// ---------------------------------------------------------------------------------------------
// CPUID
// ---------------------------------------------------------------------------------------------

/// The hypervisor leaf: EAX = [`CPUID_HV_MAX_LEAF`], EBX/ECX/EDX = [`CPUID_HV_SIGNATURE`].
pub const CPUID_HV_LEAF: u32 = 0x4000_0000;
/// The highest hypervisor leaf of this ABI; EAX of [`CPUID_HV_LEAF`] is at least this (the CPUID
/// policy reports 0x4000_0010, the timing leaf, docs/cpu-policy.md).
pub const CPUID_HV_MAX_LEAF: u32 = 0x4000_0001;
/// EAX = [`ABI_VERSION`]; EBX, ECX, EDX = 0.
pub const CPUID_HV_VERSION_LEAF: u32 = 0x4000_0001;
/// The 12 signature bytes, in EBX, ECX, EDX order (four bytes each, little-endian).
pub const CPUID_HV_SIGNATURE: [u8; 12] = *b"ConduitHyprV";

/// The signature as the register values (EBX, ECX, EDX) of [`CPUID_HV_LEAF`].
pub const fn signature_registers() -> [u32; 3] {
    let s = CPUID_HV_SIGNATURE;
    [
        u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
        u32::from_le_bytes([s[4], s[5], s[6], s[7]]),
        u32::from_le_bytes([s[8], s[9], s[10], s[11]]),
    ]
}

/// The signature bytes from the register values (EBX, ECX, EDX) of a CPUID result.
pub const fn signature_bytes(ebx: u32, ecx: u32, edx: u32) -> [u8; 12] {
    let (b, c, d) = (ebx.to_le_bytes(), ecx.to_le_bytes(), edx.to_le_bytes());
    [
        b[0], b[1], b[2], b[3], c[0], c[1], c[2], c[3], d[0], d[1], d[2], d[3],
    ]
}

/// CPUID.1:ECX bit 5: VMX. The hypervisor clears it.
pub const CPUID1_ECX_VMX: u32 = 1 << 5;
/// CPUID.1:ECX bit 31: a hypervisor is present. The hypervisor sets it.
pub const CPUID1_ECX_HYPERVISOR: u32 = 1 << 31;

// ---------------------------------------------------------------------------------------------
// Console
// ---------------------------------------------------------------------------------------------

/// The virtual 16550's base port; writing a byte here (THR) emits it.
pub const COM1_PORT: u16 = 0x3f8;
/// The line status register.
pub const COM1_LSR: u16 = COM1_PORT + 5;
/// What the LSR reads: transmitter holding register and transmitter empty (bits 5 and 6).
pub const COM1_LSR_IDLE: u8 = 0x60;
/// LSR bit 5: the transmitter holding register can take a byte.
pub const LSR_THR_EMPTY: u8 = 1 << 5;

// ---------------------------------------------------------------------------------------------
// Entry state
// ---------------------------------------------------------------------------------------------

/// 64-bit guests (`entry = "long64"`).
pub mod long64 {
    /// The guest-physical area the hypervisor writes before entry (the GDT and the identity page
    /// tables): `[0, LOW_AREA_END)`. A long64 image must not load anything there.
    pub const LOW_AREA_END: u64 = 0x8000;
    /// The GDT: null, 64-bit code (selector [`CS`]), data (selector [`DS`]).
    pub const GDT_GPA: u64 = 0x800;
    /// The identity page tables live in `[PAGE_TABLES_START, LOW_AREA_END)`.
    pub const PAGE_TABLES_START: u64 = 0x1000;
    /// The identity map covers the guest-physical (= linear) addresses `[0, IDENTITY_MAP_END)`.
    pub const IDENTITY_MAP_END: u64 = 4 << 30;
    /// Where the test guests link; images should load at or above it.
    pub const IMAGE_BASE: u64 = 0x10_0000;
    /// The code segment selector.
    pub const CS: u16 = 0x08;
    /// DS, ES and SS.
    pub const DS: u16 = 0x10;
    /// RFLAGS at entry (only the always-one bit 1).
    pub const RFLAGS: u64 = 0x2;
}

/// Real-mode guests (`entry = "real16"`, unrestricted guest).
pub mod real16 {
    /// Everything a real-mode guest loads, and its entry point, lies below 1 MiB.
    pub const LIMIT: u64 = 0x10_0000;
    /// SS = 0, SP = `SP` at entry.
    pub const SP: u16 = 0x7000;

    /// CS and IP for an entry point (a linear address below [`LIMIT`]):
    /// `(selector, ip)` with selector = `(entry >> 4) & 0xf000`, CS.base = selector << 4 and
    /// IP = entry - CS.base (0x7c00 gives 0000:7c00). `None` at or above 1 MiB.
    pub const fn cs_ip(entry: u64) -> Option<(u16, u16)> {
        if entry >= LIMIT {
            return None;
        }
        let selector = ((entry >> 4) & 0xf000) as u16;
        let base = (selector as u64) << 4;
        Some((selector, (entry - base) as u16))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_registers_spell_the_signature() {
        let [ebx, ecx, edx] = signature_registers();
        assert_eq!(ebx, 0x646e_6f43, "\"Cond\"");
        assert_eq!(ecx, 0x4874_6975, "\"uitH\"");
        assert_eq!(edx, 0x5672_7079, "\"yprV\"");
        assert_eq!(&signature_bytes(ebx, ecx, edx), b"ConduitHyprV");
        assert_eq!(signature_bytes(0, 0, 0), [0; 12]);
    }

    #[test]
    fn hypercall_numbers_and_errors() {
        assert_eq!([HC_CONSOLE_WRITE, HC_YIELD, HC_EXIT], [1, 2, 3]);
        assert!(!hc_is_error(HC_OK));
        for e in [
            HC_ERR_UNKNOWN_FUNCTION,
            HC_ERR_INVALID_ARGUMENT,
            HC_ERR_BAD_ADDRESS,
        ] {
            assert!(hc_is_error(e), "{e:#x}");
            assert_eq!(e >> 63, 1);
        }
        assert_eq!(HC_CONSOLE_WRITE_MAX, 4096);
    }

    #[test]
    fn cpuid_leaves_and_bits() {
        assert_eq!(CPUID_HV_LEAF, 0x4000_0000);
        assert_eq!(CPUID_HV_MAX_LEAF, CPUID_HV_VERSION_LEAF);
        assert_eq!(ABI_VERSION, 1);
        assert_eq!(CPUID1_ECX_VMX, 0x20);
        assert_eq!(CPUID1_ECX_HYPERVISOR, 0x8000_0000);
        assert_eq!(COM1_LSR, 0x3fd);
        assert_eq!(COM1_LSR_IDLE & LSR_THR_EMPTY, LSR_THR_EMPTY);
    }

    #[test]
    fn real_mode_entry_splits_into_cs_and_ip() {
        assert_eq!(real16::cs_ip(0x7c00), Some((0, 0x7c00)));
        assert_eq!(real16::cs_ip(0xffff), Some((0, 0xffff)));
        assert_eq!(real16::cs_ip(0x1_0000), Some((0x1000, 0)));
        assert_eq!(real16::cs_ip(0x9_1234), Some((0x9000, 0x1234)));
        assert_eq!(real16::cs_ip(0xf_fff0), Some((0xf000, 0xfff0)));
        assert_eq!(real16::cs_ip(0x10_0000), None);
        for entry in [0u64, 0x7c00, 0x1_2345, 0xf_ffff] {
            let (cs, ip) = real16::cs_ip(entry).unwrap();
            assert_eq!((u64::from(cs) << 4) + u64::from(ip), entry);
        }
    }

    #[test]
    fn long64_layout_is_consistent() {
        const {
            assert!(long64::GDT_GPA + 24 <= long64::PAGE_TABLES_START);
            assert!(long64::PAGE_TABLES_START < long64::LOW_AREA_END);
            assert!(long64::LOW_AREA_END <= long64::IMAGE_BASE);
            assert!((real16::SP as u64) <= 0x7c00);
        }
    }
}
