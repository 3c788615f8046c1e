//! XCR0: the state components a guest enables with XSETBV (SDM Vol. 1 §13.3, Vol. 2C "XSETBV").

/// XCR0 bits (SDM Vol. 1 §13.1 "XSAVE-Supported Features and State-Component Bitmaps").
pub const X87: u64 = 1 << 0;
pub const SSE: u64 = 1 << 1;
pub const AVX: u64 = 1 << 2;
/// AVX-512: opmask registers, upper halves of ZMM0-15, ZMM16-31.
pub const OPMASK: u64 = 1 << 5;
pub const ZMM_HI256: u64 = 1 << 6;
pub const HI16_ZMM: u64 = 1 << 7;
/// All three AVX-512 components: XSETBV accepts them only together.
pub const AVX512: u64 = OPMASK | ZMM_HI256 | HI16_ZMM;
/// Protection keys (PKRU).
pub const PKRU: u64 = 1 << 9;

/// The user state components Conduit lets a guest enable and switches between guests: x87, SSE
/// and AVX. Not AVX-512 and PKRU yet: Bochs enumerates them inconsistently (CPUID leaf 0xD gives
/// PKRU no size and AVX-512 non-standard offsets, so a guest's XSAVE buffer would be too small),
/// and nothing here checks a CPU's enumeration of them against the architectural layout. Not MPX
/// (bits 3-4: deprecated, and its BNDCFGS would need the VMCS's own controls), not supervisor
/// components (XSS), not AMX (bits 17-18: needs XFD).
pub const CONDUIT_XCR0: u64 = X87 | SSE | AVX;

/// CR4.OSXSAVE (SDM Vol. 3A §2.5): XSETBV and XGETBV are enabled.
pub const CR4_OSXSAVE: u64 = 1 << 18;

/// What guests may enable: the components the host supports (CPUID.(EAX=0DH,ECX=0):EDX:EAX)
/// that Conduit switches ([`CONDUIT_XCR0`]).
pub fn allowed(host_supported: u64) -> u64 {
    host_supported & CONDUIT_XCR0
}

/// Why an XSETBV is refused: each is a #GP(0) in the guest (SDM Vol. 2C, XSETBV, "Protected
/// Mode Exceptions").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XsetbvError {
    /// ECX names an extended control register other than XCR0.
    NotXcr0(u32),
    /// CR4.OSXSAVE is clear (the processor reports this as #UD before any VM exit).
    OsxsaveClear,
    /// Bit 0 (x87) must always be set.
    X87Clear,
    /// AVX needs SSE.
    AvxWithoutSse,
    /// AVX-512's three components go together, and only with AVX.
    Avx512Partial,
    Avx512WithoutAvx,
    /// Bits the hypervisor does not allow (unsupported by the CPU, or not switched by Conduit).
    NotAllowed(u64),
}

impl core::fmt::Display for XsetbvError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NotXcr0(ecx) => write!(f, "XCR{ecx} is not XCR0"),
            Self::OsxsaveClear => write!(f, "CR4.OSXSAVE is clear"),
            Self::X87Clear => write!(f, "x87 (bit 0) clear"),
            Self::AvxWithoutSse => write!(f, "AVX (bit 2) without SSE (bit 1)"),
            Self::Avx512Partial => write!(f, "AVX-512 bits 5-7 not all equal"),
            Self::Avx512WithoutAvx => write!(f, "AVX-512 without AVX"),
            Self::NotAllowed(bits) => write!(f, "bits {bits:#x} not allowed"),
        }
    }
}

/// Checks XSETBV of `value` into XCR`ecx` by a guest whose CR4 is `guest_cr4`, against
/// `allowed` (from [`allowed`]). `Ok` means the guest's XCR0 becomes `value`.
pub fn check_xsetbv(ecx: u32, value: u64, allowed: u64, guest_cr4: u64) -> Result<(), XsetbvError> {
    if guest_cr4 & CR4_OSXSAVE == 0 {
        return Err(XsetbvError::OsxsaveClear);
    }
    if ecx != 0 {
        return Err(XsetbvError::NotXcr0(ecx));
    }
    if value & X87 == 0 {
        return Err(XsetbvError::X87Clear);
    }
    if value & AVX != 0 && value & SSE == 0 {
        return Err(XsetbvError::AvxWithoutSse);
    }
    let avx512 = value & AVX512;
    if avx512 != 0 && avx512 != AVX512 {
        return Err(XsetbvError::Avx512Partial);
    }
    if avx512 != 0 && value & AVX == 0 {
        return Err(XsetbvError::Avx512WithoutAvx);
    }
    let refused = value & !allowed;
    if refused != 0 {
        return Err(XsetbvError::NotAllowed(refused));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: u64 = X87 | SSE | AVX | AVX512 | PKRU;
    const ON: u64 = CR4_OSXSAVE;

    #[test]
    fn allowed_is_the_intersection() {
        // MPX (3-4), AVX-512 (5-7), PKRU (9) and AMX (17-18) supported by the host are refused.
        assert_eq!(allowed(0x6_02ff), X87 | SSE | AVX);
        assert_eq!(allowed(0x7), X87 | SSE | AVX);
        assert_eq!(allowed(0x3), X87 | SSE);
    }

    #[test]
    fn valid_values() {
        for v in [
            X87,
            X87 | SSE,
            X87 | SSE | AVX,
            X87 | SSE | AVX | AVX512,
            ALL,
            X87 | PKRU,
        ] {
            assert_eq!(check_xsetbv(0, v, ALL, ON), Ok(()), "{v:#x}");
        }
    }

    #[test]
    fn architectural_refusals() {
        assert_eq!(check_xsetbv(1, 0x7, ALL, ON), Err(XsetbvError::NotXcr0(1)));
        assert_eq!(check_xsetbv(0, 0x7, ALL, 0), Err(XsetbvError::OsxsaveClear));
        assert_eq!(check_xsetbv(0, 0, ALL, ON), Err(XsetbvError::X87Clear));
        assert_eq!(
            check_xsetbv(0, SSE | AVX, ALL, ON),
            Err(XsetbvError::X87Clear)
        );
        assert_eq!(
            check_xsetbv(0, X87 | AVX, ALL, ON),
            Err(XsetbvError::AvxWithoutSse)
        );
        for partial in [OPMASK, ZMM_HI256, HI16_ZMM, OPMASK | HI16_ZMM] {
            assert_eq!(
                check_xsetbv(0, X87 | SSE | AVX | partial, ALL, ON),
                Err(XsetbvError::Avx512Partial)
            );
        }
        assert_eq!(
            check_xsetbv(0, X87 | SSE | AVX512, ALL, ON),
            Err(XsetbvError::Avx512WithoutAvx)
        );
    }

    #[test]
    fn policy_refusals() {
        let host = X87 | SSE | AVX;
        assert_eq!(
            check_xsetbv(0, X87 | SSE | AVX | AVX512, host, ON),
            Err(XsetbvError::NotAllowed(AVX512))
        );
        // MPX bits, even in the architecturally valid pair.
        assert_eq!(
            check_xsetbv(0, X87 | (3 << 3), allowed(0xff), ON),
            Err(XsetbvError::NotAllowed(3 << 3))
        );
        assert_eq!(
            check_xsetbv(0, X87 | (1 << 63), ALL, ON),
            Err(XsetbvError::NotAllowed(1 << 63))
        );
    }
}
