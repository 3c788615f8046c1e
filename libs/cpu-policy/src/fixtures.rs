//! Recorded and modelled hosts for the tests.

use crate::HostCpuid;

/// A host that answers from a table of (leaf, subleaf, registers); leaves without subleaves
/// answer every subleaf alike. Beyond its maximum basic or extended leaf it answers the highest
/// basic leaf, as the SDM specifies; a leaf within range but absent reads as zeros.
pub struct TableHost {
    pub leaves: &'static [(u32, Option<u32>, [u32; 4])],
}

impl TableHost {
    fn lookup(&self, leaf: u32, subleaf: u32) -> Option<[u32; 4]> {
        self.leaves
            .iter()
            .find(|(l, s, _)| *l == leaf && s.is_none_or(|s| s == subleaf))
            .map(|e| e.2)
    }

    fn max(&self, leaf: u32) -> u32 {
        self.lookup(leaf, 0).map_or(0, |r| r[0])
    }
}

impl HostCpuid for TableHost {
    fn cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
        let max_basic = self.max(0);
        let in_range = if leaf & 0x8000_0000 != 0 {
            leaf <= self.max(0x8000_0000)
        } else {
            leaf <= max_basic
        };
        if in_range {
            self.lookup(leaf, subleaf).unwrap_or([0; 4])
        } else {
            self.lookup(max_basic, subleaf).unwrap_or([0; 4])
        }
    }
}

/// Bochs 2.8's `tigerlake` CPU model (`cpu: model=tigerlake`), as used by Conduit's Bochs boot
/// scenarios. Every leaf with `None` as subleaf, and subleaf 0 of leaves 4, 7, 0xB and 0xD, is
/// copied from the CPUID dump Bochs writes to its log at power-on ("CPUID[0x00000001]:
/// 000806c1 00010800 77faf3bf bfebfbff", in `build/test/bochs-vmx-guests/bochs.out` after
/// `scripts/test --bochs`). That dump shows subleaf 0 only: leaf 4 subleaves 1-3 are the values
/// of Bochs' `cpu/cpudb/intel/tigerlake.cc`; leaf 0xD subleaf 1 is what Bochs' generic code
/// reports for a model with XSAVEOPT, XSAVEC and XSAVES and CET supervisor state (IA32_XSS
/// bits 11-12); subleaves 2-9 are the standard-format layout the SDM gives (Vol. 1 §13.4, the
/// layout of Tiger Lake parts). Note subleaf 0: ECX = 0xac0 (2752) while the layout ends at
/// 2696, and EBX = 0x240 is for the power-on XCR0: the reason the policy computes sizes.
pub const TIGERLAKE: TableHost = TableHost {
    leaves: &[
        (0x0, None, [0x0000001b, 0x756e6547, 0x6c65746e, 0x49656e69]),
        (0x1, None, [0x000806c1, 0x00010800, 0x77faf3bf, 0xbfebfbff]),
        (0x2, None, [0x00feff01, 0x000000f0, 0x00000000, 0x00000000]),
        (
            0x4,
            Some(0),
            [0x1c004121, 0x02c0003f, 0x0000003f, 0x00000000],
        ),
        (
            0x4,
            Some(1),
            [0x1c004122, 0x01c0003f, 0x0000003f, 0x00000000],
        ),
        (
            0x4,
            Some(2),
            [0x1c004143, 0x04c0003f, 0x000003ff, 0x00000000],
        ),
        (
            0x4,
            Some(3),
            [0x1c03c163, 0x01c0003f, 0x00003fff, 0x00000004],
        ),
        (0x5, None, [0x00000040, 0x00000040, 0x00000003, 0x11121020]),
        (0x6, None, [0x0017eff7, 0x00000002, 0x00000009, 0x00000000]),
        (
            0x7,
            Some(0),
            [0x00000000, 0xf1bf27eb, 0x00405fce, 0xfc100510],
        ),
        (0xa, None, [0x08300805, 0x00000000, 0x0000000f, 0x00008604]),
        (
            0xb,
            Some(0),
            [0x00000001, 0x00000001, 0x00000000, 0x00000000],
        ),
        (
            0xd,
            Some(0),
            [0x000002e7, 0x00000240, 0x00000ac0, 0x00000000],
        ),
        (
            0xd,
            Some(1),
            [0x0000000f, 0x00000240, 0x00001800, 0x00000000],
        ),
        (0xd, Some(2), [256, 576, 0, 0]),
        (0xd, Some(5), [64, 1088, 0, 0]),
        (0xd, Some(6), [512, 1152, 0, 0]),
        (0xd, Some(7), [1024, 1664, 0, 0]),
        (0xd, Some(9), [8, 2688, 0, 0]),
        (0x15, None, [0x00000002, 0x0000007e, 0x0249f000, 0x00000000]),
        (0x16, None, [0x00000960, 0x00001068, 0x00000064, 0x00000000]),
        (
            0x18,
            Some(0),
            [0x00000008, 0x00000000, 0x00000000, 0x00000000],
        ),
        (0x8000_0000, None, [0x80000008, 0, 0, 0]),
        (
            0x8000_0001,
            None,
            [0x00000000, 0x00000000, 0x00000121, 0x2c100000],
        ),
        (
            0x8000_0002,
            None,
            [0x68743131, 0x6e654720, 0x746e4920, 0x52286c65],
        ),
        (
            0x8000_0003,
            None,
            [0x6f432029, 0x54286572, 0x6920294d, 0x31312d35],
        ),
        (
            0x8000_0004,
            None,
            [0x37473533, 0x32204020, 0x4730342e, 0x00007a48],
        ),
        (
            0x8000_0006,
            None,
            [0x00000000, 0x00000000, 0x01007040, 0x00000000],
        ),
        (
            0x8000_0007,
            None,
            [0x00000000, 0x00000000, 0x00000000, 0x00000100],
        ),
        (
            0x8000_0008,
            None,
            [0x00003028, 0x00000000, 0x00000000, 0x00000000],
        ),
    ],
};

/// A modelled KVM-like host (not a recording): a Skylake client part as a nested hypervisor's
/// guest sees it. Maximum basic leaf 0xD (no 0x15/0x16), the hypervisor bit and nested VMX set,
/// AVX2 without AVX-512, XCR0 mask x87|SSE|AVX|MPX (0x1f) with consistent leaf 0xD sizes, TSX
/// (HLE, RTM), MPX, no invariant TSC, and an AMD-style SVM bit in 0x80000001 ECX.
pub const KVM_SKYLAKE: TableHost = TableHost {
    leaves: &[
        (0x0, None, [0x0000000d, 0x756e6547, 0x6c65746e, 0x49656e69]),
        (0x1, None, [0x000506e3, 0x02010800, 0xfffa3223, 0x0f8bfbff]),
        (
            0x4,
            Some(0),
            [0x04000121, 0x01c0003f, 0x0000003f, 0x00000001],
        ),
        (
            0x4,
            Some(1),
            [0x04000122, 0x01c0003f, 0x0000003f, 0x00000001],
        ),
        (
            0x4,
            Some(2),
            [0x04000143, 0x03c0003f, 0x00000fff, 0x00000001],
        ),
        (
            0x4,
            Some(3),
            [0x04004163, 0x0280003f, 0x00003fff, 0x00000001],
        ),
        (
            0x7,
            Some(0),
            [0x00000000, 0x009c4fbb, 0x00000004, 0xac000400],
        ),
        (0xa, None, [0x07300402, 0x00000000, 0x00000000, 0x00000603]),
        (
            0xd,
            Some(0),
            [0x0000001f, 0x00000440, 0x00000440, 0x00000000],
        ),
        (
            0xd,
            Some(1),
            [0x00000001, 0x00000000, 0x00000000, 0x00000000],
        ),
        (0xd, Some(2), [256, 576, 0, 0]),
        (0xd, Some(3), [64, 960, 0, 0]),
        (0xd, Some(4), [64, 1024, 0, 0]),
        (0x8000_0000, None, [0x80000008, 0, 0, 0]),
        (
            0x8000_0001,
            None,
            [0x00000000, 0x00000000, 0x00001125, 0x2c100800],
        ),
        (0x8000_0007, None, [0, 0, 0, 0]),
        (
            0x8000_0008,
            None,
            [0x00003027, 0x00000000, 0x00000000, 0x00000000],
        ),
    ],
};
