//! VMCS field encodings as typed enums (Intel SDM Vol. 3D, Appendix B "Field Encoding in VMCS";
//! the encoding layout is in Vol. 3C, "VMREAD, VMWRITE, and Encodings of VMCS Fields", Table
//! "Structure of VMCS Component Encoding").
//!
//! Fields are grouped by *width* (16-bit, 32-bit, 64-bit, natural width) and by *type* (control,
//! guest-state, host-state, VM-exit information). Every group is its own enum:
//!
//! | width   | control          | guest-state    | host-state    | VM-exit information (read-only) |
//! |---------|------------------|----------------|---------------|---------------------------------|
//! | 16-bit  | [`Control16`]    | [`Guest16`]    | [`Host16`]    | (none defined)                  |
//! | 32-bit  | [`Control32`]    | [`Guest32`]    | [`Host32`]    | [`ReadOnly32`]                  |
//! | 64-bit  | [`Control64`]    | [`Guest64`]    | [`Host64`]    | [`ReadOnly64`]                  |
//! | natural | [`ControlNatural`] | [`GuestNatural`] | [`HostNatural`] | [`ReadOnlyNatural`]        |
//!
//! Every enum implements [`VmcsReadable`]; only the control, guest-state and host-state enums
//! implement [`VmcsWritable`], so `vmwrite(ReadOnly32::ExitReason, ..)` does not compile.
//! The width marker ([`VmcsReadable::Width`]) fixes the Rust type of the value, so
//! `vmread(Guest16::CsSelector)` returns a `u16` and `vmwrite(Guest64::Efer, x)` takes a `u64`.
//!
//! 64-bit fields are named by their "full" encoding (access type 0); the "high" half (access type
//! 1, the upper 32 bits only) is [`High`]`(field)`, a 32-bit field.
//!
//! The kernel implements [`VmcsRead`]/[`VmcsWrite`] once over VMREAD/VMWRITE, e.g.
//!
//! ```text
//! impl VmcsRead for CurrentVmcs {
//!     type Error = VmFail;
//!     fn read<F: VmcsReadable>(&mut self, field: F) -> Result<ValueOf<F>, VmFail> {
//!         let raw: u64;
//!         // SAFETY: in VMX operation with a current VMCS.
//!         unsafe { asm!("vmread {}, {}", out(reg) raw, in(reg) u64::from(field.encoding())) };
//!         // (check RFLAGS.CF/ZF for VMfailInvalid/VMfailValid)
//!         Ok(F::Width::from_raw(raw))
//!     }
//! }
//! ```
//!
//! and every access is then typed:
//!
//! ```
//! use conduit_vmx::fields::{Guest16, Guest64, ReadOnly32, ValueOf, VmcsReadable, VmcsWritable};
//! fn vmwrite<F: VmcsWritable>(_field: F, _value: ValueOf<F>) {}
//! fn vmread<F: VmcsReadable>(_field: F) -> Option<ValueOf<F>> { None }
//! vmwrite(Guest16::CsSelector, 0x08u16);
//! vmwrite(Guest64::Efer.high(), 0u32);
//! let _reason: Option<u32> = vmread(ReadOnly32::ExitReason);
//! ```
//!
//! while writing a VM-exit information field does not compile:
//!
//! ```compile_fail
//! use conduit_vmx::fields::{ReadOnly32, ValueOf, VmcsWritable};
//! fn vmwrite<F: VmcsWritable>(_field: F, _value: ValueOf<F>) {}
//! vmwrite(ReadOnly32::ExitReason, 0u32);
//! ```

mod control;
mod exit_info;
mod guest;
mod host;
#[cfg(test)]
mod tests;

pub use control::{Control16, Control32, Control64, ControlNatural};
pub use exit_info::{ReadOnly32, ReadOnly64, ReadOnlyNatural};
pub use guest::{Guest16, Guest32, Guest64, GuestNatural};
pub use host::{Host16, Host32, Host64, HostNatural};

/// Width of a VMCS field: bits 14:13 of its encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldWidth {
    Bits16 = 0,
    Bits64 = 1,
    Bits32 = 2,
    /// 64 bits on processors that support Intel 64 architecture (the only ones Conduit runs on).
    Natural = 3,
}

/// Type of a VMCS field: bits 11:10 of its encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldType {
    Control = 0,
    /// "VM-exit information" (called "read-only data" in older SDM editions).
    ExitInformation = 1,
    GuestState = 2,
    HostState = 3,
}

/// A raw VMCS component encoding, decoded per the SDM table "Structure of VMCS Component Encoding":
/// bit 0 access type (0 full, 1 high), bits 9:1 index, bits 11:10 type, bit 12 reserved (0),
/// bits 14:13 width, bits 31:15 reserved (0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldEncoding(pub u32);

impl FieldEncoding {
    /// Bits of an encoding that must be 0 (bit 12 and bits 31:15).
    pub const RESERVED_MASK: u32 = 0xffff_8000 | (1 << 12);

    pub const fn new(width: FieldWidth, ty: FieldType, index: u16, high: bool) -> Self {
        Self(
            ((width as u32) << 13)
                | ((ty as u32) << 10)
                | (((index as u32) & 0x1ff) << 1)
                | high as u32,
        )
    }
    pub const fn width(self) -> FieldWidth {
        match (self.0 >> 13) & 3 {
            0 => FieldWidth::Bits16,
            1 => FieldWidth::Bits64,
            2 => FieldWidth::Bits32,
            _ => FieldWidth::Natural,
        }
    }
    pub const fn field_type(self) -> FieldType {
        match (self.0 >> 10) & 3 {
            0 => FieldType::Control,
            1 => FieldType::ExitInformation,
            2 => FieldType::GuestState,
            _ => FieldType::HostState,
        }
    }
    /// Access type (bit 0): `true` for the "high" access of a 64-bit field.
    pub const fn is_high(self) -> bool {
        self.0 & 1 != 0
    }
    /// Index (bits 9:1).
    pub const fn index(self) -> u16 {
        ((self.0 >> 1) & 0x1ff) as u16
    }
    /// The reserved bits are 0, and the high access type is used only with 64-bit fields.
    pub const fn is_well_formed(self) -> bool {
        self.0 & Self::RESERVED_MASK == 0
            && (!self.is_high() || matches!(self.width(), FieldWidth::Bits64))
    }
}

mod sealed {
    pub trait Sealed {}
}

/// Width marker: the Rust type a field's value has, and how it maps to the 64-bit register operand
/// of VMREAD/VMWRITE (VMREAD zero-extends narrower fields; VMWRITE ignores the excess bits).
pub trait Width: sealed::Sealed {
    type Value: Copy + core::fmt::Debug + PartialEq + Eq;
    const WIDTH: FieldWidth;
    /// The value of a field from the register operand of VMREAD.
    fn from_raw(raw: u64) -> Self::Value;
    /// The register operand for VMWRITE.
    fn to_raw(value: Self::Value) -> u64;
}

/// 16-bit fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum W16 {}
/// 32-bit fields (and the "high" halves of 64-bit fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum W32 {}
/// 64-bit fields (full access).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum W64 {}
/// Natural-width fields (64 bits on Intel 64 processors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WNatural {}

macro_rules! width_impl {
    ($w:ty, $v:ty, $fw:expr) => {
        impl sealed::Sealed for $w {}
        impl Width for $w {
            type Value = $v;
            const WIDTH: FieldWidth = $fw;
            fn from_raw(raw: u64) -> $v {
                raw as $v
            }
            fn to_raw(value: $v) -> u64 {
                value as u64
            }
        }
    };
}
width_impl!(W16, u16, FieldWidth::Bits16);
width_impl!(W32, u32, FieldWidth::Bits32);
width_impl!(W64, u64, FieldWidth::Bits64);
width_impl!(WNatural, u64, FieldWidth::Natural);

/// The value type of a field type `F`.
pub type ValueOf<F> = <<F as VmcsReadable>::Width as Width>::Value;

/// A VMCS field that VMREAD may name.
pub trait VmcsReadable: Copy {
    /// The width marker ([`W16`], [`W32`], [`W64`], [`WNatural`]).
    type Width: Width;
    /// The type of the field (bits 11:10 of the encoding).
    const TYPE: FieldType;
    /// The encoding for VMREAD/VMWRITE's register operand.
    fn encoding(self) -> u32;
    /// The field's name as the SDM's Appendix B spells it.
    fn name(self) -> &'static str;
}

/// A VMCS field that VMWRITE may name: control, guest-state and host-state fields. The VM-exit
/// information fields do not implement it (VMWRITE to them fails with VM-instruction error 13
/// unless IA32_VMX_MISC bit 29 is set, and Conduit never needs that).
pub trait VmcsWritable: VmcsReadable {}

/// A 64-bit field accessed in full: the fields whose upper half [`High`] can name.
pub trait Full64: VmcsReadable<Width = W64> {}

/// The "high" access (access type 1) of a 64-bit field: bits 63:32 of the field, as a 32-bit
/// value. Writable exactly when the full field is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct High<F>(pub F);

impl<F: Full64> VmcsReadable for High<F> {
    type Width = W32;
    const TYPE: FieldType = F::TYPE;
    fn encoding(self) -> u32 {
        self.0.encoding() | 1
    }
    fn name(self) -> &'static str {
        self.0.name()
    }
}
impl<F: Full64 + VmcsWritable> VmcsWritable for High<F> {}

/// Typed VMREAD, implemented by the kernel over the current VMCS (and by fakes in host tests).
pub trait VmcsRead {
    type Error;
    fn read<F: VmcsReadable>(&mut self, field: F) -> Result<ValueOf<F>, Self::Error>;
}

/// Typed VMWRITE, implemented by the kernel over the current VMCS (and by fakes in host tests).
pub trait VmcsWrite {
    type Error;
    fn write<F: VmcsWritable>(&mut self, field: F, value: ValueOf<F>) -> Result<(), Self::Error>;
}

/// Defines one group of fields: the enum, its `ALL` list, names, and the trait impls.
macro_rules! vmcs_fields {
    (
        $(#[$meta:meta])*
        pub enum $name:ident: $width:ty, $ty:expr, $access:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $enc:literal, $label:literal; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u32)]
        pub enum $name {
            $( $(#[$vmeta])* $variant = $enc, )*
        }

        impl $name {
            /// Every field of this group, in encoding order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];
            /// The encoding for VMREAD/VMWRITE.
            pub const fn encoding(self) -> u32 {
                self as u32
            }
            /// The field's name as Appendix B spells it.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $label,)*
                }
            }
            /// The field with this encoding, if it belongs to this group.
            pub fn from_encoding(encoding: u32) -> Option<Self> {
                Self::ALL.iter().copied().find(|f| f.encoding() == encoding)
            }
        }

        impl $crate::fields::VmcsReadable for $name {
            type Width = $width;
            const TYPE: $crate::fields::FieldType = $ty;
            fn encoding(self) -> u32 {
                self as u32
            }
            fn name(self) -> &'static str {
                $name::name(self)
            }
        }

        vmcs_fields!(@access $name, $access);
    };
    (@access $name:ident, rw) => {
        impl $crate::fields::VmcsWritable for $name {}
    };
    (@access $name:ident, ro) => {};
}
pub(crate) use vmcs_fields;

macro_rules! full64 {
    ($($name:ident),*) => {
        $(
            impl Full64 for $name {}
            impl $name {
                /// The "high" access of this 64-bit field (bits 63:32, encoding | 1).
                pub const fn high(self) -> High<Self> {
                    High(self)
                }
            }
        )*
    };
}
full64!(Control64, Guest64, Host64, ReadOnly64);
