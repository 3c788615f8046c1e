//! The 16550 UART as Conduit drives it, and the ACPI table that names a console UART.
//!
//! - [`uart`]: the register set (PC16550D data sheet; the same layout at I/O ports or in MMIO
//!   with a register stride), divisor arithmetic, line-control encoding, programming with a
//!   read-back of the line settings, and transmit/receive with bounded waits, over any
//!   [`uart::RegisterAccess`].
//! - [`spcr`]: Microsoft's Serial Port Console Redirection table (revision 2 and later), decoded
//!   without panicking on any input, and encoded (the boot harness injects one into QEMU).
//! - [`dbg2`]: Microsoft's Debug Port Table 2, for its first 16550-type serial port (used when
//!   there is no SPCR).
//!
//! See `docs/console.md` for how the kernel chooses its console.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

pub mod dbg2;
pub mod spcr;
pub mod uart;
