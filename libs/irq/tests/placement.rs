//! Where a guest's interrupts go: the CPU of the vCPU they are for, and no CPU outside its vCPUs'.

use conduit_irq::{
    Destination, DestinationMode, DestinationPolicy, GuestId, Owner, PlacementError, Placements,
};

const SPAN: GuestId = GuestId(3);
const OTHER: GuestId = GuestId(0);

/// Four CPUs (APIC IDs 0-3, BSP 0); guest 3's vCPU 0 on APIC 1, vCPU 1 on APIC 3; guest 0 on 2.
fn machine() -> Placements {
    let mut p = Placements::new(0, vec![0, 1, 2, 3]);
    assert_eq!(p.place(SPAN, &[1, 3]), Ok(()));
    assert_eq!(p.place(OTHER, &[2]), Ok(()));
    p
}

fn physical(p: &Placements, owner: Owner, apic: u32) -> bool {
    p.may_target(owner, DestinationMode::Physical, Destination::X2Apic(apic))
}

#[test]
fn each_vcpu_has_its_cpu() {
    let p = machine();
    assert_eq!(p.apic_of(Owner::Guest(SPAN), 0), Ok(1));
    assert_eq!(p.apic_of(Owner::Guest(SPAN), 1), Ok(3));
    assert_eq!(
        p.apic_of(Owner::Guest(SPAN), 2),
        Err(PlacementError::NoSuchVcpu {
            owner: Owner::Guest(SPAN),
            vcpu: 2
        })
    );
    assert_eq!(p.apics(SPAN), &[1, 3]);
    assert_eq!(p.vcpus(SPAN), 2);
    assert_eq!(p.apic_of(Owner::Guest(OTHER), 0), Ok(2));
    // The hypervisor and a guest not placed: the bootstrap processor.
    assert_eq!(p.apic_of(Owner::Hypervisor, 0), Ok(0));
    assert!(p.apic_of(Owner::Hypervisor, 1).is_err());
    assert_eq!(p.apic_of(Owner::Guest(GuestId(9)), 1), Ok(0));
    assert_eq!(p.apics(GuestId(9)), &[0]);
    assert_eq!(p.vcpus(GuestId(9)), 0);
}

#[test]
fn a_guest_may_target_any_of_its_vcpus_cpus_only() {
    let p = machine();
    let span = Owner::Guest(SPAN);
    // vCPU 0's CPU and vCPU 1's.
    assert!(physical(&p, span, 1));
    assert!(physical(&p, span, 3));
    // Another guest's CPU, the BSP (no vCPU of its own there), a CPU the machine lacks.
    assert!(!physical(&p, span, 2));
    assert!(!physical(&p, span, 0));
    assert!(!physical(&p, span, 7));
    assert!(physical(&p, Owner::Guest(OTHER), 2));
    assert!(!physical(&p, Owner::Guest(OTHER), 3));
    // Logical destinations select CPUs by mask: refused to everyone.
    assert!(!p.may_target(span, DestinationMode::Logical, Destination::X2Apic(1)));
    assert!(!p.may_target(
        Owner::Hypervisor,
        DestinationMode::Logical,
        Destination::XApic(1)
    ));
    // The hypervisor: every CPU of the machine, none beyond.
    for apic in 0..4 {
        assert!(physical(&p, Owner::Hypervisor, apic));
    }
    assert!(!physical(&p, Owner::Hypervisor, 4));
}

#[test]
fn placing_checks_the_cpus_and_replaces() {
    let mut p = machine();
    assert_eq!(p.place(SPAN, &[]), Err(PlacementError::NoVcpus(3)));
    assert_eq!(p.place(SPAN, &[1, 5]), Err(PlacementError::NoSuchCpu(5)));
    // Refusals changed nothing.
    assert_eq!(p.apics(SPAN), &[1, 3]);
    // A CPU found later (online, listed nowhere) can be placed on once added.
    p.add_cpu(5);
    assert!(p.has_cpu(5));
    assert_eq!(p.place(SPAN, &[5, 5, 2]), Ok(()));
    assert_eq!(p.apics(SPAN), &[5, 5, 2]);
    assert!(!physical(&p, Owner::Guest(SPAN), 3));
    assert!(physical(&p, Owner::Guest(SPAN), 2));
    // The BSP is always a CPU, listed or not, and the hypervisor's destination.
    let q = Placements::new(4, vec![0, 1]);
    assert!(q.has_cpu(4));
    assert_eq!(q.apic_of(Owner::Hypervisor, 0), Ok(4));
}
