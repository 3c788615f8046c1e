//! Vector and IRT-index allocation and ownership.

use conduit_irq::{
    AllocError, FIRST_VECTOR, GuestId, IrtAllocator, IrtSize, LAST_VECTOR, Owner, Resource,
    VectorAllocator,
};

const HV: Owner = Owner::Hypervisor;
const G1: Owner = Owner::Guest(GuestId(1));
const G2: Owner = Owner::Guest(GuestId(2));

fn size(s: u8) -> IrtSize {
    IrtSize::from_field(s).unwrap_or(IrtSize::MAX)
}

// ---- vectors ----

#[test]
fn reserved_vectors_must_be_usable_ones() {
    assert!(VectorAllocator::new(&[0x20, 0xef, 0xfe, 0xef]).is_ok());
    assert_eq!(
        VectorAllocator::new(&[0x1f]).err(),
        Some(AllocError::OutOfRange {
            resource: Resource::Vector,
            value: 0x1f
        })
    );
    assert_eq!(
        VectorAllocator::new(&[0xff]).err(),
        Some(AllocError::OutOfRange {
            resource: Resource::Vector,
            value: 0xff
        })
    );
}

#[test]
fn allocation_skips_reserved_and_is_lowest_first() {
    let mut v = VectorAllocator::new(&[0x20, 0x22]).unwrap();
    assert_eq!(v.alloc(G1), Ok(0x21));
    assert_eq!(v.alloc(G2), Ok(0x23));
    assert_eq!(v.owner(0x21), Some(G1));
    assert_eq!(v.owner(0x20), Some(HV));
    assert!(v.is_reserved(0x22) && !v.is_reserved(0x21));
    assert_eq!(v.owner(0x30), None);
}

#[test]
fn vectors_run_out() {
    let mut v = VectorAllocator::new(&[0x20, 0xef, 0xfe]).unwrap();
    let usable = usize::from(LAST_VECTOR - FIRST_VECTOR) + 1 - 3;
    assert_eq!(v.free_count(), usable);
    for i in 0..usable {
        let vector = v.alloc(G1).unwrap();
        assert!(
            (FIRST_VECTOR..=LAST_VECTOR).contains(&vector),
            "{i}: {vector:#x}"
        );
        assert!(!v.is_reserved(vector));
    }
    assert_eq!(
        v.alloc(G2),
        Err(AllocError::Exhausted {
            resource: Resource::Vector,
            count: 1
        })
    );
    assert_eq!(v.free_count(), 0);
    v.free(0x80, G1).unwrap();
    assert_eq!(v.alloc(G2), Ok(0x80));
}

#[test]
fn free_checks_owner_and_refuses_double_free() {
    let mut v = VectorAllocator::new(&[0xef]).unwrap();
    let x = v.alloc(G1).unwrap();
    assert_eq!(
        v.free(x, G2),
        Err(AllocError::NotOwner {
            resource: Resource::Vector,
            value: x.into(),
            owner: G1,
            requester: G2
        })
    );
    assert_eq!(
        v.free(x, HV).map_err(|_| ()),
        Err(()),
        "not even the hypervisor frees a guest's vector"
    );
    assert_eq!(v.free(x, G1), Ok(()));
    assert_eq!(
        v.free(x, G1),
        Err(AllocError::NotAllocated {
            resource: Resource::Vector,
            value: x.into()
        })
    );
    assert_eq!(v.free(0xef, HV), Err(AllocError::Reserved(0xef)));
    assert_eq!(
        v.free(0x10, HV),
        Err(AllocError::OutOfRange {
            resource: Resource::Vector,
            value: 0x10
        })
    );
    assert_eq!(
        v.free(0xff, HV),
        Err(AllocError::OutOfRange {
            resource: Resource::Vector,
            value: 0xff
        })
    );
}

#[test]
fn alloc_at_refuses_taken_reserved_and_out_of_range() {
    let mut v = VectorAllocator::new(&[0xef]).unwrap();
    assert_eq!(v.alloc_at(0x40, G1), Ok(()));
    assert_eq!(
        v.alloc_at(0x40, G2),
        Err(AllocError::AlreadyAllocated {
            resource: Resource::Vector,
            value: 0x40,
            owner: G1
        })
    );
    assert_eq!(v.alloc_at(0xef, HV), Err(AllocError::Reserved(0xef)));
    assert_eq!(
        v.alloc_at(0x02, HV),
        Err(AllocError::OutOfRange {
            resource: Resource::Vector,
            value: 2
        })
    );
    // alloc() does not hand out what alloc_at() took.
    for _ in 0..0x20 {
        assert_ne!(v.alloc(G2), Ok(0x40));
    }
}

#[test]
fn vector_ownership_queries_and_release() {
    let mut v = VectorAllocator::new(&[0xef, 0xfe]).unwrap();
    let a = v.alloc(G1).unwrap();
    let b = v.alloc(G2).unwrap();
    let c = v.alloc(G1).unwrap();
    let h = v.alloc(HV).unwrap();
    assert_eq!(v.owned_by(G1).collect::<Vec<_>>(), [a, c]);
    assert_eq!(v.owned_by(G2).collect::<Vec<_>>(), [b]);
    assert_eq!(v.owned_by(HV).collect::<Vec<_>>(), [h, 0xef, 0xfe]);
    assert_eq!(v.check(a, G1), Ok(()));
    assert_eq!(v.check(0xef, HV), Ok(()));
    assert!(matches!(
        v.check(0xef, G1),
        Err(AllocError::NotOwner { owner: HV, .. })
    ));
    assert_eq!(v.release_all(G1), 2);
    assert_eq!(v.owned_by(G1).count(), 0);
    assert_eq!(v.owner(b), Some(G2));
    // Releasing the hypervisor's vectors keeps the reserved ones.
    assert_eq!(v.release_all(HV), 1);
    assert_eq!(v.owned_by(HV).collect::<Vec<_>>(), [0xef, 0xfe]);
}

// ---- IRT indices ----

#[test]
fn table_size_comes_from_the_s_field() {
    let irt = IrtAllocator::<256>::new(size(7)).unwrap();
    assert_eq!(irt.entries(), 256);
    assert_eq!(
        IrtAllocator::<128>::new(size(7)).err(),
        Some(AllocError::TableTooLarge {
            entries: 256,
            capacity: 128
        })
    );
    let mut empty = IrtAllocator::<16>::empty();
    assert_eq!(
        empty.alloc(G1),
        Err(AllocError::Exhausted {
            resource: Resource::IrtIndex,
            count: 1
        })
    );
    empty.configure(size(3)).unwrap();
    assert_eq!(empty.entries(), 16);
    assert_eq!(empty.alloc(G1), Ok(0));
    assert_eq!(empty.configure(size(2)), Err(AllocError::InUse(1)));
    empty.free(0, G1).unwrap();
    assert_eq!(empty.configure(size(2)), Ok(()));
}

#[test]
fn indices_run_out() {
    let mut irt = IrtAllocator::<2>::new(size(0)).unwrap();
    assert_eq!(irt.alloc(G1), Ok(0));
    assert_eq!(irt.alloc(G2), Ok(1));
    assert_eq!(
        irt.alloc(G1),
        Err(AllocError::Exhausted {
            resource: Resource::IrtIndex,
            count: 1
        })
    );
    assert_eq!(irt.used(), 2);
}

#[test]
fn multi_message_blocks_are_aligned_powers_of_two() {
    let mut irt = IrtAllocator::<256>::new(size(7)).unwrap();
    for expected in 0..3 {
        assert_eq!(irt.alloc(G1), Ok(expected));
    }
    assert_eq!(irt.alloc_block(G2, 4), Ok(4));
    assert_eq!(irt.alloc_block(G2, 2), Ok(8));
    assert_eq!(irt.alloc_block(G2, 32), Ok(32));
    assert_eq!(irt.alloc_block(G2, 16), Ok(16));
    assert_eq!(irt.alloc(G1), Ok(3));
    assert_eq!(irt.alloc(G1), Ok(10));
    for bad in [0, 3, 6, 64] {
        assert_eq!(
            irt.alloc_block(G1, bad),
            Err(AllocError::InvalidBlock {
                base: 0,
                count: bad
            })
        );
    }
    assert_eq!(irt.owned_by(G2).collect::<Vec<_>>().len(), 4 + 2 + 32 + 16);
    assert_eq!(irt.used(), 5 + 4 + 2 + 32 + 16);
}

#[test]
fn fragmentation_can_exhaust_blocks_but_not_singles() {
    let mut irt = IrtAllocator::<8>::new(size(2)).unwrap();
    for _ in 0..8 {
        irt.alloc(G1).unwrap();
    }
    irt.free(1, G1).unwrap();
    irt.free(2, G1).unwrap();
    // Two free entries, but no free aligned pair.
    assert_eq!(
        irt.alloc_block(G2, 2),
        Err(AllocError::Exhausted {
            resource: Resource::IrtIndex,
            count: 2
        })
    );
    assert_eq!(irt.alloc(G2), Ok(1));
    // A block larger than the table.
    let mut tiny = IrtAllocator::<2>::new(size(0)).unwrap();
    assert_eq!(
        tiny.alloc_block(G1, 4),
        Err(AllocError::Exhausted {
            resource: Resource::IrtIndex,
            count: 4
        })
    );
    assert_eq!(tiny.alloc_block(G1, 2), Ok(0));
}

#[test]
fn index_free_checks_owner_and_refuses_double_free() {
    let mut irt = IrtAllocator::<16>::new(size(3)).unwrap();
    let i = irt.alloc(G1).unwrap();
    assert_eq!(
        irt.free(i, G2),
        Err(AllocError::NotOwner {
            resource: Resource::IrtIndex,
            value: i.into(),
            owner: G1,
            requester: G2
        })
    );
    assert_eq!(irt.free(i, G1), Ok(()));
    assert_eq!(
        irt.free(i, G1),
        Err(AllocError::NotAllocated {
            resource: Resource::IrtIndex,
            value: i.into()
        })
    );
    assert_eq!(
        irt.free(16, G1),
        Err(AllocError::OutOfRange {
            resource: Resource::IrtIndex,
            value: 16
        })
    );
    assert_eq!(
        irt.free(u16::MAX, G1),
        Err(AllocError::OutOfRange {
            resource: Resource::IrtIndex,
            value: 0xffff
        })
    );
    assert_eq!(irt.used(), 0);
}

#[test]
fn block_free_is_all_or_nothing() {
    let mut irt = IrtAllocator::<16>::new(size(3)).unwrap();
    let base = irt.alloc_block(G1, 4).unwrap();
    let other = irt.alloc(G2).unwrap();
    assert_eq!(other, 4);
    // 2..6 overlaps G2's index 4: refused, nothing freed.
    assert_eq!(
        irt.free_block(2, 4, G1),
        Err(AllocError::NotOwner {
            resource: Resource::IrtIndex,
            value: 4,
            owner: G2,
            requester: G1
        })
    );
    assert_eq!(irt.owned_by(G1).count(), 4);
    // Running off the end of the table.
    assert_eq!(
        irt.free_block(14, 4, G1),
        Err(AllocError::OutOfRange {
            resource: Resource::IrtIndex,
            value: 16
        })
    );
    assert_eq!(
        irt.free_block(base, 0, G1),
        Err(AllocError::InvalidBlock { base: 0, count: 0 })
    );
    assert_eq!(irt.free_block(base, 4, G1), Ok(()));
    assert_eq!(irt.owned_by(G1).count(), 0);
    assert_eq!(irt.used(), 1);
}

#[test]
fn index_queries_and_release() {
    let mut irt = IrtAllocator::<16>::new(size(3)).unwrap();
    let a = irt.alloc(G1).unwrap();
    let b = irt.alloc(G2).unwrap();
    let c = irt.alloc_block(G1, 2).unwrap();
    assert_eq!(irt.owner(a), Some(G1));
    assert_eq!(irt.owner(b), Some(G2));
    assert_eq!(irt.owner(15), None);
    assert_eq!(irt.owner(999), None);
    assert_eq!(irt.owned_by(G1).collect::<Vec<_>>(), [a, c, c + 1]);
    assert_eq!(irt.check(b, G2), Ok(()));
    assert_eq!(irt.check_block(c, 2, G1), Ok(()));
    assert_eq!(irt.release_all(G1), 3);
    assert_eq!(irt.used(), 1);
    assert_eq!(irt.owned_by(G1).count(), 0);
    assert_eq!(irt.alloc(G2), Ok(0));
}

#[test]
fn largest_table() {
    let mut irt = Box::new(IrtAllocator::<65536>::empty());
    irt.configure(IrtSize::MAX).unwrap();
    assert_eq!(irt.alloc_block(G1, 32), Ok(0));
    assert_eq!(
        irt.check(0xffff, G1),
        Err(AllocError::NotAllocated {
            resource: Resource::IrtIndex,
            value: 0xffff
        })
    );
}
