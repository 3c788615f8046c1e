//! Host-test helpers: a fake VMCS behind the typed VMREAD/VMWRITE traits.

use crate::fields::{
    FieldEncoding, ValueOf, VmcsRead, VmcsReadable, VmcsWritable, VmcsWrite, Width,
};
use std::collections::HashMap;

/// A VMCS as a map from full-access encodings to 64-bit values; the high access of a 64-bit field
/// reads and writes bits 63:32 of the full field, as on hardware.
#[derive(Debug, Default, Clone)]
pub struct FakeVmcs {
    pub fields: HashMap<u32, u64>,
}

/// VMfailValid with VM-instruction error 12: "VMREAD/VMWRITE from/to unsupported VMCS component"
/// (used here for fields never written).
#[derive(Debug, PartialEq, Eq)]
pub struct Unsupported(pub u32);

impl FakeVmcs {
    /// What the processor would store on a VM exit.
    pub fn set_exit_info(&mut self, encoding: u32, value: u64) {
        self.fields.insert(encoding, value);
    }
}

impl VmcsRead for FakeVmcs {
    type Error = Unsupported;
    fn read<F: VmcsReadable>(&mut self, field: F) -> Result<ValueOf<F>, Unsupported> {
        let e = FieldEncoding(field.encoding());
        let full = *self.fields.get(&(e.0 & !1)).ok_or(Unsupported(e.0))?;
        let raw = if e.is_high() { full >> 32 } else { full };
        Ok(F::Width::from_raw(raw))
    }
}

impl VmcsWrite for FakeVmcs {
    type Error = Unsupported;
    fn write<F: VmcsWritable>(&mut self, field: F, value: ValueOf<F>) -> Result<(), Unsupported> {
        let e = FieldEncoding(field.encoding());
        let raw = F::Width::to_raw(value);
        if e.is_high() {
            let slot = self.fields.entry(e.0 & !1).or_insert(0);
            *slot = (*slot & 0xffff_ffff) | (raw << 32);
        } else {
            self.fields.insert(e.0, raw);
        }
        Ok(())
    }
}
