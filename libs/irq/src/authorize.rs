//! Whether a requester may write an IRTE: the one check every path that programs interrupt
//! remapping on someone's behalf goes through.

use crate::error::AllocError;
use crate::irt::IrtAllocator;
use crate::irte::{Irte, SourceValidation};
use crate::types::{ApicMode, Destination, DestinationMode, Owner};
use crate::vector::VectorAllocator;

/// Which interrupt destinations a requester may aim at (for a guest: the physical CPUs its
/// vCPUs run on).
pub trait DestinationPolicy {
    /// Whether `requester` may target `destination` in `mode` (for logical mode, every CPU the
    /// logical ID can select must be the requester's).
    fn may_target(&self, requester: Owner, mode: DestinationMode, destination: Destination)
    -> bool;
}

/// Checks that `requester` may write `irte` at `index` of a table in `table_mode`:
///
/// 1. it holds `index` in `table` (so it can also clear it: a not-present entry needs nothing
///    more);
/// 2. the entry's destination width is the table's (IRTA_REG.EIME);
/// 3. a guest uses Fixed or Lowest Priority delivery only (no SMI, NMI, INIT or ExtINT), and
///    its entry verifies the source id (SVT 01b or 10b) so that no other device can raise it;
/// 4. for Fixed and Lowest Priority, it holds the vector in `vectors` (the vector space of the
///    destination);
/// 5. `destinations` lets it target the destination.
pub fn authorize_irte<const N: usize, P>(
    requester: Owner,
    index: u16,
    irte: &Irte,
    table: &IrtAllocator<N>,
    table_mode: ApicMode,
    vectors: &VectorAllocator,
    destinations: &P,
) -> Result<(), AllocError>
where
    P: DestinationPolicy + ?Sized,
{
    table.check(index, requester)?;
    if !irte.is_present() {
        return Ok(());
    }
    let entry_mode = irte.destination().mode();
    if entry_mode != table_mode {
        return Err(AllocError::ApicModeMismatch {
            entry: entry_mode,
            table: table_mode,
        });
    }
    let delivery = irte.delivery_mode();
    if let Owner::Guest(_) = requester {
        if !delivery.carries_vector() {
            return Err(AllocError::DeliveryNotPermitted {
                delivery,
                requester,
            });
        }
        if irte.source_validation() == SourceValidation::None {
            return Err(AllocError::SourceNotVerified(requester));
        }
    }
    if delivery.carries_vector() {
        vectors.check(irte.vector(), requester)?;
    }
    if !destinations.may_target(requester, irte.destination_mode(), irte.destination()) {
        return Err(AllocError::DestinationNotOwned {
            destination: irte.destination(),
            requester,
        });
    }
    Ok(())
}
