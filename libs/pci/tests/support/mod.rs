//! Shared test support: a fake configuration space and the q35 device models.
#![allow(dead_code)]

pub mod devices;
pub mod fake;
