//! Conduit's configuration.
//!
//! The user writes `conduit.toml`; the host-side image builder parses and validates it ([`toml_front`],
//! feature `std`) and packs the result, with the guest images, into a [`bundle`] that the loader hands
//! to the kernel as its ramdisk. The kernel only decodes the bundle: it never parses TOML.
#![cfg_attr(not(any(test, feature = "std")), no_std)]

extern crate alloc;

pub mod bundle;
pub mod model;
#[cfg(any(test, feature = "std"))]
pub mod toml_front;

pub use bundle::{Bundle, BundleError, GuestImage};
pub use model::{BootConfig, ExitMethod, LogLevel, TestCase};
