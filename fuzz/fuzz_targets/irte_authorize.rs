//! Fuzz target: IRTE authorization (`conduit_irq::authorize_irte`) over sequences of IRT index
//! and vector allocations, frees and IRTE writes requested by the hypervisor and by guests.
//!
//! The target plays the kernel's `install`: an entry reaches the (model) interrupt
//! remapping table only when `authorize_irte` allows it. Invariants (VT-d §9.10, §5.1.4 and
//! the rules the crate documents):
//! - the decision is exactly the specification's: the requester holds the index; a present
//!   entry has the table's destination width; a guest's entry uses Fixed or Lowest Priority
//!   delivery and verifies the source ID; a vector-carrying entry's vector is the requester's;
//!   the destination is one the requester may target;
//! - so a refused IRTE is never written, an entry a guest wrote never carries a vector it does
//!   not own, an exception vector (< 0x20), NMI/SMI/INIT/ExtINT, or unverified sources;
//! - the allocators' bookkeeping matches a model of who holds what, and every IRTE decoded
//!   from raw bits re-encodes to bits that decode to the same entry.
#![no_main]

use arbitrary::Arbitrary;
use conduit_irq::{
    ApicMode, Destination, DestinationMode, DestinationPolicy, GuestId, IrtAllocator, IrtSize,
    Irte, IrteBuilder, Owner, SourceQualifier, SourceValidation, VectorAllocator, authorize_irte,
};
use libfuzzer_sys::fuzz_target;

const ENTRIES: usize = 64;

#[derive(Arbitrary, Debug)]
enum Op {
    IrtAlloc(u8),
    IrtAllocBlock(u8, u8),
    IrtFree(u8, u16),
    VecAlloc(u8),
    VecAllocAt(u8, u8),
    VecFree(u8, u8),
    /// Raw IRTE bits, as a faulty caller might pass them.
    WriteRaw {
        requester: u8,
        index: u16,
        raw: [u64; 2],
    },
    /// An IRTE built the way the kernel builds them.
    WriteBuilt {
        requester: u8,
        index: u16,
        vector: u8,
        dest: u32,
        logical: bool,
        sid: Option<u16>,
    },
}

fn owner(n: u8) -> Owner {
    match n % 4 {
        0 => Owner::Hypervisor,
        g => Owner::Guest(GuestId(u16::from(g))),
    }
}

/// Guest `g` runs on the CPUs whose APIC ID is `g` modulo 4 (physical mode only); the
/// hypervisor may target any CPU.
struct Cpus;

impl DestinationPolicy for Cpus {
    fn may_target(
        &self,
        requester: Owner,
        mode: DestinationMode,
        destination: Destination,
    ) -> bool {
        match requester {
            Owner::Hypervisor => true,
            Owner::Guest(GuestId(g)) => {
                mode == DestinationMode::Physical && destination.id() % 4 == u32::from(g)
            }
        }
    }
}

fn specification(
    requester: Owner,
    irte: &Irte,
    irt_owner: Option<Owner>,
    vector_owner: Option<Owner>,
    mode: ApicMode,
) -> bool {
    if irt_owner != Some(requester) {
        return false;
    }
    if !irte.is_present() {
        return true;
    }
    let carries = irte.delivery_mode().carries_vector();
    let guest = matches!(requester, Owner::Guest(_));
    irte.destination().mode() == mode
        && (!guest || (carries && irte.source_validation() != SourceValidation::None))
        && (!carries || vector_owner == Some(requester))
        && Cpus.may_target(requester, irte.destination_mode(), irte.destination())
}

fuzz_target!(|input: (bool, Vec<u8>, Vec<Op>)| {
    let (x2apic, reserved, ops) = input;
    let mode = if x2apic {
        ApicMode::X2Apic
    } else {
        ApicMode::XApic
    };
    let reserved: Vec<u8> = reserved
        .into_iter()
        .filter(|v| (0x20..=0xfe).contains(v))
        .take(8)
        .collect();
    let mut vectors = VectorAllocator::new(&reserved).expect("in-range reserved vectors");
    let size = IrtSize::for_entries(ENTRIES).expect("64 entries");
    let mut irt: IrtAllocator<ENTRIES> = IrtAllocator::new(size).expect("fits");
    let mut table: [Option<(Owner, Irte)>; ENTRIES] = [None; ENTRIES];
    let mut irt_model: [Option<Owner>; ENTRIES] = [None; ENTRIES];
    for op in ops {
        let write = match op {
            Op::IrtAlloc(o) => {
                if let Ok(i) = irt.alloc(owner(o)) {
                    assert_eq!(irt_model[usize::from(i)], None, "handed out a held index");
                    irt_model[usize::from(i)] = Some(owner(o));
                }
                None
            }
            Op::IrtAllocBlock(o, c) => {
                let count = 1usize << (c % 7);
                if let Ok(base) = irt.alloc_block(owner(o), count) {
                    let base = usize::from(base);
                    assert!(base.is_multiple_of(count), "blocks are aligned");
                    for slot in &mut irt_model[base..base + count] {
                        assert_eq!(*slot, None, "handed out a held index");
                        *slot = Some(owner(o));
                    }
                }
                None
            }
            Op::IrtFree(o, index) => {
                let held = irt_model.get(usize::from(index)).copied().flatten();
                let freed = irt.free(index, owner(o)).is_ok();
                assert_eq!(freed, held == Some(owner(o)), "only the holder frees");
                if freed {
                    irt_model[usize::from(index)] = None;
                }
                None
            }
            Op::VecAlloc(o) => {
                if let Ok(v) = vectors.alloc(owner(o)) {
                    assert!((0x20..=0xfe).contains(&v));
                }
                None
            }
            Op::VecAllocAt(v, o) => {
                let free = vectors.owner(v).is_none();
                let ok = vectors.alloc_at(v, owner(o)).is_ok();
                assert!(!ok || (free && (0x20..=0xfe).contains(&v)), "vector {v:#x}");
                None
            }
            Op::VecFree(v, o) => {
                let held = vectors.owner(v);
                if vectors.free(v, owner(o)).is_ok() {
                    assert_eq!(held, Some(owner(o)), "only the holder frees");
                    assert!(!reserved.contains(&v), "reserved vectors stay");
                }
                None
            }
            Op::WriteRaw {
                requester,
                index,
                raw,
            } => match Irte::decode(raw, mode) {
                Ok(irte) => {
                    assert_eq!(
                        Irte::decode(irte.encode(), mode),
                        Ok(irte),
                        "IRTE round trip"
                    );
                    Some((owner(requester), index % (ENTRIES as u16 + 4), irte))
                }
                Err(_) => None,
            },
            Op::WriteBuilt {
                requester,
                index,
                vector,
                dest,
                logical,
                sid,
            } => {
                let destination = match mode {
                    ApicMode::XApic => Destination::XApic(dest as u8),
                    ApicMode::X2Apic => Destination::X2Apic(dest),
                };
                let dm = if logical {
                    DestinationMode::Logical
                } else {
                    DestinationMode::Physical
                };
                let b = IrteBuilder::new(destination, vector).destination_mode(dm);
                let b = match sid {
                    Some(sid) => b.verify_requester(sid, SourceQualifier::All),
                    None => b.no_source_validation(),
                };
                b.build()
                    .ok()
                    .map(|irte| (owner(requester), index % (ENTRIES as u16 + 4), irte))
            }
        };
        if let Some((requester, index, irte)) = write {
            let irt_owner = irt_model.get(usize::from(index)).copied().flatten();
            let vector_owner = vectors.owner(irte.vector());
            let expected = specification(requester, &irte, irt_owner, vector_owner, mode);
            let verdict = authorize_irte(requester, index, &irte, &irt, mode, &vectors, &Cpus);
            assert_eq!(
                verdict.is_ok(),
                expected,
                "{requester:?} IRTE {index}: {irte:?}: {verdict:?}"
            );
            if verdict.is_ok() {
                if let Owner::Guest(g) = requester
                    && irte.is_present()
                {
                    assert!(irte.delivery_mode().carries_vector(), "{g:?} entry {index}");
                    assert!(
                        irte.vector() >= 0x20,
                        "{g:?} entry {index}: exception vector"
                    );
                    assert_ne!(irte.source_validation(), SourceValidation::None);
                }
                table[usize::from(index)] = Some((requester, irte));
            }
        }
    }
    // The table as the hardware holds it: no present guest entry with an exception vector.
    for (i, slot) in table.iter().enumerate() {
        if let Some((Owner::Guest(_), e)) = slot {
            assert!(!e.is_present() || e.vector() >= 0x20, "entry {i}");
        }
    }
    for (i, m) in irt_model.iter().enumerate() {
        assert_eq!(irt.owner(i as u16), *m, "IRT index {i} owner");
    }
    assert_eq!(irt.used(), irt_model.iter().flatten().count());
});
