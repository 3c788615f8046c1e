//! Configuration-space emulation of one assigned PCI function (work in progress).
#![cfg_attr(not(test), no_std)]
