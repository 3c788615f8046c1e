//! IRTE authorization: a requester may only program indices, vectors and destinations it owns.

use conduit_irq::{
    AllocError, ApicMode, DeliveryMode, Destination, DestinationMode, DestinationPolicy,
    FormatError, GuestId, IrtAllocator, IrtSize, Irte, IrteBuilder, Owner, Resource,
    SourceQualifier, VectorAllocator, authorize_irte,
};

const HV: Owner = Owner::Hypervisor;
const G1: Owner = Owner::Guest(GuestId(1));
const G2: Owner = Owner::Guest(GuestId(2));

/// G1 runs on x2APIC IDs 1 and 2, G2 on 3; the hypervisor may target anything.
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
            _ if mode == DestinationMode::Logical => false,
            Owner::Guest(GuestId(1)) => matches!(destination, Destination::X2Apic(1 | 2)),
            Owner::Guest(GuestId(2)) => destination == Destination::X2Apic(3),
            Owner::Guest(_) => false,
        }
    }
}

struct Setup {
    irt: IrtAllocator<64>,
    vectors: VectorAllocator,
    g1_index: u16,
    g2_index: u16,
    hv_index: u16,
    g1_vector: u8,
    g2_vector: u8,
}

fn setup() -> Option<Setup> {
    let mut irt = IrtAllocator::new(IrtSize::from_field(5)?).ok()?;
    let mut vectors = VectorAllocator::new(&[0xef]).ok()?;
    Some(Setup {
        g1_index: irt.alloc(G1).ok()?,
        g2_index: irt.alloc(G2).ok()?,
        hv_index: irt.alloc(HV).ok()?,
        g1_vector: vectors.alloc(G1).ok()?,
        g2_vector: vectors.alloc(G2).ok()?,
        irt,
        vectors,
    })
}

fn guest_irte(dest: u32, vector: u8) -> Result<Irte, FormatError> {
    IrteBuilder::new(Destination::X2Apic(dest), vector)
        .verify_requester(0x0300, SourceQualifier::All)
        .build()
}

#[test]
fn guest_may_program_what_it_owns() {
    let s = setup().unwrap();
    let irte = guest_irte(2, s.g1_vector).unwrap();
    let auth = |index, irte: &Irte| {
        authorize_irte(G1, index, irte, &s.irt, ApicMode::X2Apic, &s.vectors, &Cpus)
    };
    assert_eq!(auth(s.g1_index, &irte), Ok(()));
    // Someone else's index, a free index, an index outside the table.
    assert_eq!(
        auth(s.g2_index, &irte),
        Err(AllocError::NotOwner {
            resource: Resource::IrtIndex,
            value: s.g2_index.into(),
            owner: G2,
            requester: G1
        })
    );
    assert_eq!(
        auth(40, &irte),
        Err(AllocError::NotAllocated {
            resource: Resource::IrtIndex,
            value: 40
        })
    );
    assert_eq!(
        auth(64, &irte),
        Err(AllocError::OutOfRange {
            resource: Resource::IrtIndex,
            value: 64
        })
    );
}

#[test]
fn guest_may_not_use_foreign_vectors_or_destinations() {
    let s = setup().unwrap();
    let auth = |irte: &Irte| {
        authorize_irte(
            G1,
            s.g1_index,
            irte,
            &s.irt,
            ApicMode::X2Apic,
            &s.vectors,
            &Cpus,
        )
    };
    let foreign_vector = guest_irte(2, s.g2_vector).unwrap();
    assert_eq!(
        auth(&foreign_vector),
        Err(AllocError::NotOwner {
            resource: Resource::Vector,
            value: s.g2_vector.into(),
            owner: G2,
            requester: G1
        })
    );
    let reserved = guest_irte(2, 0xef).unwrap();
    assert!(matches!(
        auth(&reserved),
        Err(AllocError::NotOwner { owner: HV, .. })
    ));
    let free_vector = guest_irte(2, 0x90).unwrap();
    assert_eq!(
        auth(&free_vector),
        Err(AllocError::NotAllocated {
            resource: Resource::Vector,
            value: 0x90
        })
    );
    let foreign_cpu = guest_irte(3, s.g1_vector).unwrap();
    assert_eq!(
        auth(&foreign_cpu),
        Err(AllocError::DestinationNotOwned {
            destination: Destination::X2Apic(3),
            requester: G1
        })
    );
    let logical = foreign_cpu
        .to_builder()
        .destination(Destination::X2Apic(1))
        .destination_mode(DestinationMode::Logical);
    assert!(matches!(
        auth(&logical.build().unwrap()),
        Err(AllocError::DestinationNotOwned { .. })
    ));
}

#[test]
fn guest_needs_source_validation_and_vectored_delivery() {
    let s = setup().unwrap();
    let auth = |irte: &Irte| {
        authorize_irte(
            G1,
            s.g1_index,
            irte,
            &s.irt,
            ApicMode::X2Apic,
            &s.vectors,
            &Cpus,
        )
    };
    let good = guest_irte(1, s.g1_vector).unwrap();
    let open = good.to_builder().no_source_validation().build().unwrap();
    assert_eq!(auth(&open), Err(AllocError::SourceNotVerified(G1)));
    let bus = good.to_builder().verify_bus_range(3, 4).build().unwrap();
    assert_eq!(auth(&bus), Ok(()));
    let nmi = good
        .to_builder()
        .vector(0)
        .delivery_mode(DeliveryMode::Nmi)
        .build()
        .unwrap();
    assert_eq!(
        auth(&nmi),
        Err(AllocError::DeliveryNotPermitted {
            delivery: DeliveryMode::Nmi,
            requester: G1
        })
    );
    let lowest = good
        .to_builder()
        .delivery_mode(DeliveryMode::LowestPriority)
        .build()
        .unwrap();
    assert_eq!(auth(&lowest), Ok(()));
}

#[test]
fn entry_width_must_match_the_table() {
    let s = setup().unwrap();
    let xapic = IrteBuilder::new(Destination::XApic(1), s.g1_vector)
        .verify_requester(0x0300, SourceQualifier::All)
        .build()
        .unwrap();
    assert_eq!(
        authorize_irte(
            G1,
            s.g1_index,
            &xapic,
            &s.irt,
            ApicMode::X2Apic,
            &s.vectors,
            &Cpus
        ),
        Err(AllocError::ApicModeMismatch {
            entry: ApicMode::XApic,
            table: ApicMode::X2Apic
        })
    );
}

#[test]
fn clearing_needs_only_the_index() {
    let s = setup().unwrap();
    let clear = Irte::NOT_PRESENT;
    assert_eq!(
        authorize_irte(
            G1,
            s.g1_index,
            &clear,
            &s.irt,
            ApicMode::X2Apic,
            &s.vectors,
            &Cpus
        ),
        Ok(())
    );
    assert!(matches!(
        authorize_irte(
            G1,
            s.g2_index,
            &clear,
            &s.irt,
            ApicMode::X2Apic,
            &s.vectors,
            &Cpus
        ),
        Err(AllocError::NotOwner {
            resource: Resource::IrtIndex,
            ..
        })
    ));
}

#[test]
fn hypervisor_may_use_any_delivery_mode_on_its_own_entries() {
    let s = setup().unwrap();
    let nmi = IrteBuilder::new(Destination::X2Apic(9), 0)
        .delivery_mode(DeliveryMode::Nmi)
        .build()
        .unwrap();
    assert_eq!(
        authorize_irte(
            HV,
            s.hv_index,
            &nmi,
            &s.irt,
            ApicMode::X2Apic,
            &s.vectors,
            &Cpus
        ),
        Ok(())
    );
    let reserved = IrteBuilder::new(Destination::X2Apic(9), 0xef)
        .build()
        .unwrap();
    assert_eq!(
        authorize_irte(
            HV,
            s.hv_index,
            &reserved,
            &s.irt,
            ApicMode::X2Apic,
            &s.vectors,
            &Cpus
        ),
        Ok(())
    );
    // But not a guest's vector.
    let guests = IrteBuilder::new(Destination::X2Apic(9), s.g1_vector)
        .build()
        .unwrap();
    assert!(matches!(
        authorize_irte(
            HV,
            s.hv_index,
            &guests,
            &s.irt,
            ApicMode::X2Apic,
            &s.vectors,
            &Cpus
        ),
        Err(AllocError::NotOwner {
            resource: Resource::Vector,
            owner: G1,
            ..
        })
    ));
}

#[test]
fn errors_read_well() {
    let e = AllocError::NotOwner {
        resource: Resource::Vector,
        value: 0x41,
        owner: G1,
        requester: G2,
    };
    assert_eq!(
        e.to_string(),
        "guest 2 does not own Vector 0x41 (held by guest 1)"
    );
    assert_eq!(
        AllocError::Reserved(0xef).to_string(),
        "vector 0xef is reserved for the hypervisor"
    );
}
