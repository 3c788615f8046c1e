//! Conduit's configuration.
//!
//! The user writes `conduit.toml`; the host-side image builder parses and validates it ([`toml_front`],
//! feature `std`), reads the guest images it names and checks them ([`guest`], [`elf`]), and packs
//! the result into a [`bundle`] that the loader hands to the kernel as its ramdisk. The kernel only
//! decodes the bundle: it never parses TOML.
#![cfg_attr(not(any(test, feature = "std")), no_std)]

extern crate alloc;

pub mod bundle;
pub mod device;
pub mod elf;
pub mod error;
pub mod guest;
pub mod model;
pub mod os;
pub mod placement;
pub mod testing;
#[cfg(any(test, feature = "std"))]
pub mod toml_front;

pub use bundle::{Bundle, BundleError, CONTROL_TASK_IMAGE, GuestImage};
pub use error::ConfigError;
pub use guest::MAX_GUEST_RAM_END;
pub use model::{
    ApicTest, BootConfig, ConsoleChoice, DeviceAssignment, DeviceSel, EntryMode, ExitMethod,
    GuestBreak, GuestConfig, LogLevel, MacText, MultibootModule, OnControlCrash, OnCrash, OnIdle,
    OsBoot, Segment, TestCase, TestOnly,
};
pub use placement::Placement;

#[cfg(test)]
mod identity_tests;
