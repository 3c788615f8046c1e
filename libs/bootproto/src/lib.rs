//! Operating-system boot protocols for Conduit guests, as pure functions (no memory access:
//! the kernel writes the bytes these functions compute).
//!
//! - [`bzimage`]: the Linux setup header, validated (protocol 2.12+, 64-bit entry).
//! - [`layout`]: where kernel, zero page, command line, initrd and firmware tables go.
//! - [`zeropage`]: `struct boot_params` with the e820 map, command line and initrd.
//! - [`e820`]: the memory map builder (sorted, overlaps refused, merged).
//! - [`ram`]: where guest RAM lies in guest-physical space (contiguous, or identity-placed).
//! - [`multiboot`]: Multiboot 0.6.96 header search, address-field loads, module placement and
//!   the information structure.
//!
//! The guest-physical map and the entry state are described in `docs/linux-guests.md`.
//!
//! ```
//! use conduit_bootproto::{bzimage::SetupHeader, e820, layout::LinuxLayout, ram::GuestRam, zeropage};
//! # fn demo(kernel: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
//! let memory = GuestRam::contiguous(256 << 20);
//! let header = SetupHeader::parse(kernel)?;
//! let layout = LinuxLayout::new(&memory, &header, "console=ttyS0".len(), 0)?;
//! let map = e820::guest_map(&memory, (0xE_0000, 0x10_0000), &[(0xFEC0_0000, 0x1000)])?;
//! let page = zeropage::build(kernel, &header, &layout, &map, Some(layout.rsdp))?;
//! // Copy kernel[header.setup_len..] to layout.kernel, `page` to layout.zero_page and the
//! // command line with a NUL to layout.cmdline; enter at layout.entry with RSI = zero page.
//! # let _ = page; Ok(()) }
//! ```
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod bzimage;
pub mod e820;
pub mod layout;
pub mod multiboot;
pub mod ram;
pub mod zeropage;
