//! Interrupt encodings and allocation (work in progress).
#![cfg_attr(not(test), no_std)]
