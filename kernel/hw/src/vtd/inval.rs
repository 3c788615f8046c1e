//! The register-based invalidation interface (§6.5.1), used where ECAP.QI = 0 and before the
//! invalidation queue is enabled (the two must not be mixed: with queued invalidation enabled,
//! the command registers may not be used). The commands are encoded by `conduit_vtd`.

use super::VtdError;
use super::regs::{IotlbRegisters, Registers};
pub use conduit_vtd::{Drain, Invalidation, RegisterCommand};
use volatile::{VolatilePtr, map_field};

/// Spins until `done` or 5 s passed (or the clock stopped: [`crate::time::Deadline::poll`]).
pub fn wait_for(mut done: impl FnMut() -> bool) -> bool {
    let mut deadline = crate::time::Deadline::after_ms(5000);
    loop {
        if done() {
            return true;
        }
        if !matches!(deadline.poll(), Ok(false)) {
            return done();
        }
        core::hint::spin_loop();
    }
}

/// Carries out `inv` through the Context Command or IOTLB registers and waits for completion.
pub fn by_register(
    regs: VolatilePtr<'static, Registers>,
    tlb: VolatilePtr<'static, IotlbRegisters>,
    drain: Drain,
    inv: Invalidation,
) -> Result<(), VtdError> {
    match RegisterCommand::for_invalidation(inv, drain) {
        RegisterCommand::Context { ccmd } => {
            let reg = map_field!(regs.ccmd);
            reg.write(ccmd);
            if wait_for(|| reg.read() & RegisterCommand::BUSY == 0) {
                Ok(())
            } else {
                Err(VtdError::Timeout {
                    what: "context-cache invalidation (CCMD.ICC)",
                })
            }
        }
        RegisterCommand::Iotlb { iva, iotlb } => {
            if let Some(iva) = iva {
                map_field!(tlb.iva).write(iva);
            }
            let reg = map_field!(tlb.iotlb);
            reg.write(iotlb);
            if wait_for(|| reg.read() & RegisterCommand::BUSY == 0) {
                Ok(())
            } else {
                Err(VtdError::Timeout {
                    what: "IOTLB invalidation (IOTLB_REG.IVT)",
                })
            }
        }
    }
}
