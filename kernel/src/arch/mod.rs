//! Everything that touches the hardware directly. Policy lives outside `arch`.
pub mod x86_64;
