//! Shared test support: conduit-pci's fake configuration space and q35 models (reused, not
//! copied), the igb and nvme VF models, and helpers that look at a virtual function through
//! conduit-pci's own walkers.
#![allow(dead_code)]

#[path = "../../../pci/tests/support/mod.rs"]
pub mod pci;
pub mod vfs;
