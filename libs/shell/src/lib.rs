//! Serial debug shell (work in progress).
#![cfg_attr(not(test), no_std)]
