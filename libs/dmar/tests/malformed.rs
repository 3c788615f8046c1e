//! Malformed tables: every failure is a typed error, nothing panics.

mod support;

use conduit_dmar::{Dmar, DmarError, ParseOptions, RemappingStructure};
use support::{FakeBridges, Table, bdf, drhd_body, fix_checksum, q35_bytes, q35_scopes, scope};

/// Walks everything a consumer could touch, returning the first error.
fn walk(dmar: &Dmar<'_>) -> Result<usize, DmarError> {
    let mut n = 0;
    for s in dmar.structures() {
        let s = s?;
        for sc in s.scopes() {
            let sc = sc?;
            n += sc.path().count();
            let _ = sc.coverage(&FakeBridges::q35());
        }
        n += 1;
    }
    Ok(n)
}

#[test]
fn every_prefix_of_the_q35_table_is_an_error() {
    let full = q35_bytes();
    for len in 0..full.len() {
        let prefix = &full[..len];
        let err = Dmar::parse(prefix).expect_err("a prefix must not parse");
        let expected = match len {
            0..=7 => DmarError::Truncated {
                needed: 48,
                available: len,
            },
            _ => DmarError::LengthExceedsBuffer {
                length: 136,
                available: len,
            },
        };
        assert_eq!(err, expected, "prefix of {len} bytes");
        // Also with the checksum check off: the Length check still catches it.
        let lenient = ParseOptions {
            verify_checksum: false,
        };
        assert!(
            Dmar::parse_with(prefix, lenient).is_err(),
            "prefix of {len} bytes (lenient)"
        );
    }
}

#[test]
fn every_prefix_with_length_rewritten_is_an_error() {
    // Harder: the prefix claims to be the whole table (Length patched, checksum fixed), so the
    // error has to come from the structure/scope walk.
    let full = q35_bytes();
    for len in 10..full.len() {
        let mut t = full[..len].to_vec();
        t[4..8].copy_from_slice(&(len as u32).to_le_bytes());
        fix_checksum(&mut t);
        let r = Dmar::parse(&t);
        match len {
            10..=47 => assert_eq!(
                r,
                Err(DmarError::LengthTooSmall { length: len as u32 }),
                "{len}"
            ),
            48 => assert!(r.is_ok(), "header only: a table with no structures"),
            49..=51 => assert_eq!(
                r,
                Err(DmarError::StructureHeaderTruncated { offset: 48 }),
                "{len}"
            ),
            _ => assert!(
                matches!(
                    r,
                    Err(DmarError::StructureOverrun {
                        offset: 48,
                        length: 88,
                        ..
                    })
                ),
                "{len}: {r:?}"
            ),
        }
    }
}

#[test]
fn table_length_larger_than_buffer() {
    let mut b = q35_bytes();
    b[4..8].copy_from_slice(&137u32.to_le_bytes());
    assert_eq!(
        Dmar::parse(&b),
        Err(DmarError::LengthExceedsBuffer {
            length: 137,
            available: 136
        })
    );
    b[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        Dmar::parse(&b),
        Err(DmarError::LengthExceedsBuffer {
            length: u32::MAX,
            available: 136
        })
    );
    b[4..8].copy_from_slice(&0u32.to_le_bytes());
    assert_eq!(
        Dmar::parse(&b),
        Err(DmarError::LengthTooSmall { length: 0 })
    );
}

#[test]
fn bad_checksum_and_signature() {
    let mut b = q35_bytes();
    b[9] = b[9].wrapping_add(1);
    assert_eq!(Dmar::parse(&b), Err(DmarError::BadChecksum { sum: 1 }));
    let lenient = Dmar::parse_with(
        &b,
        ParseOptions {
            verify_checksum: false,
        },
    )
    .expect("lenient");
    assert_eq!(lenient.header().checksum, 0xca);
    let mut b = q35_bytes();
    b[100] ^= 0x10; // a scope byte: the checksum catches corruption anywhere
    assert!(matches!(
        Dmar::parse(&b),
        Err(DmarError::BadChecksum { .. })
    ));
    let mut b = q35_bytes();
    b[..4].copy_from_slice(b"APIC");
    assert_eq!(
        Dmar::parse(&b),
        Err(DmarError::BadSignature { found: *b"APIC" })
    );
    assert_eq!(
        Dmar::parse(b"DMAx"),
        Err(DmarError::BadSignature { found: *b"DMAx" })
    );
}

#[test]
fn zero_and_short_structure_lengths() {
    for (ty, len) in [
        (0u16, 0u16),
        (0, 4),
        (0, 15),
        (1, 23),
        (2, 7),
        (3, 19),
        (0x99, 0),
        (0x99, 3),
    ] {
        let mut t = Table::new(0x2f, 1);
        t.u16(ty).u16(len).raw(&[0; 32]);
        let b = t.finish();
        assert_eq!(
            Dmar::parse(&b),
            Err(DmarError::StructureTooShort {
                offset: 48,
                structure_type: ty,
                length: len
            }),
            "type {ty} length {len}"
        );
    }
}

#[test]
fn structure_overrunning_the_table() {
    let mut b = q35_bytes();
    b[50..52].copy_from_slice(&89u16.to_le_bytes());
    fix_checksum(&mut b);
    assert_eq!(
        Dmar::parse(&b),
        Err(DmarError::StructureOverrun {
            offset: 48,
            length: 89,
            remaining: 88
        })
    );
    // A second structure overrunning after a good first one: the first is still yielded.
    let mut t = Table::new(0x2f, 1);
    t.structure(0, &drhd_body(1, 0, 0, 0xfed9_0000, &[]));
    t.u16(1).u16(0x400).raw(&[0; 20]);
    let b = t.finish();
    assert_eq!(
        Dmar::parse(&b),
        Err(DmarError::StructureOverrun {
            offset: 64,
            length: 0x400,
            remaining: 24
        })
    );
    let lenient = Dmar::parse_with(
        &b,
        ParseOptions {
            verify_checksum: false,
        },
    );
    assert!(lenient.is_err(), "framing errors are not optional");
}

#[test]
fn device_scope_errors() {
    let cases: [(Vec<u8>, DmarError); 5] = [
        // Length 0.
        (
            vec![1, 0, 0, 0, 0, 0, 0, 0],
            DmarError::ScopeTooShort {
                offset: 64,
                length: 0,
            },
        ),
        // Length 6: header only, no path.
        (
            vec![1, 6, 0, 0, 0, 0, 0, 0],
            DmarError::ScopeTooShort {
                offset: 64,
                length: 6,
            },
        ),
        // Length 9: odd path.
        (
            vec![1, 9, 0, 0, 0, 0, 0, 0, 0, 0],
            DmarError::ScopeOddPath {
                offset: 64,
                length: 9,
            },
        ),
        // Length 12 with 8 bytes left in the DRHD.
        (
            vec![1, 12, 0, 0, 0, 0, 2, 0],
            DmarError::ScopeOverrun {
                offset: 64,
                length: 12,
                remaining: 8,
            },
        ),
        // One stray byte after the scopes.
        (vec![1], DmarError::ScopeHeaderTruncated { offset: 64 }),
    ];
    for (raw, want) in cases {
        let mut t = Table::new(0x2f, 1);
        t.structure(
            0,
            &drhd_body(0, 0, 0, 0xfed9_0000, std::slice::from_ref(&raw)),
        );
        let b = t.finish();
        assert_eq!(Dmar::parse(&b), Err(want), "{raw:?}");
        // The lenient parse fails the same way, and so does a manual walk of the DRHD's scopes.
        let lenient = Dmar::parse_with(
            &b,
            ParseOptions {
                verify_checksum: false,
            },
        );
        assert_eq!(lenient, Err(want));
    }
    // A bad scope after good ones: the good ones are yielded first.
    let mut scopes = q35_scopes();
    scopes.push(vec![2, 40, 0, 0, 0, 0, 3, 0]);
    let mut t = Table::new(0x2f, 1);
    t.structure(0, &drhd_body(0, 0, 0, 0xfed9_0000, &scopes));
    let b = t.finish();
    assert_eq!(
        Dmar::parse(&b),
        Err(DmarError::ScopeOverrun {
            offset: 136,
            length: 40,
            remaining: 8
        })
    );
}

#[test]
fn unknown_structures_are_skipped_by_length() {
    let mut t = Table::new(0x2f, 1);
    t.structure(0x99, &[0xaa; 8]);
    t.structure(0, &drhd_body(0, 0, 0, 0xfed9_0000, &q35_scopes()));
    t.structure(7, &[]);
    t.structure(0xffff, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    let b = t.finish();
    let dmar = Dmar::parse(&b).expect("unknown types are not errors");
    let items: Vec<_> = dmar.structures().collect::<Result<_, _>>().expect("valid");
    assert_eq!(items.len(), 4);
    assert!(
        matches!(items[0], RemappingStructure::Unknown { structure_type: 0x99, offset: 48, bytes } if bytes.len() == 12)
    );
    assert!(
        matches!(items[1], RemappingStructure::Drhd(d) if d.offset() == 60 && d.scopes().count() == 9)
    );
    assert!(
        matches!(items[2], RemappingStructure::Unknown { structure_type: 7, bytes, .. } if bytes.len() == 4)
    );
    assert!(
        matches!(items[3], RemappingStructure::Unknown { structure_type: 0xffff, bytes, .. } if bytes.len() == 16)
    );
    assert_eq!(items[0].scopes().count(), 0);
    assert_eq!(dmar.drhds().count(), 1);
    let vf = bdf(1, 0x10, 2);
    assert!(
        dmar.drhd_for_device(0, vf, &FakeBridges::q35())
            .expect("valid")
            .is_some()
    );
}

#[test]
fn zero_length_after_a_good_unknown_structure() {
    let mut t = Table::new(0x2f, 1);
    t.structure(0x42, &[0; 4]);
    t.u16(0).u16(0);
    let b = t.finish();
    assert_eq!(
        Dmar::parse(&b),
        Err(DmarError::StructureTooShort {
            offset: 56,
            structure_type: 0,
            length: 0
        })
    );
}

#[test]
fn pseudo_random_mutations_never_panic() {
    // Deterministic xorshift mutations of the q35 table and of a table using every structure type;
    // both with and without fixing the checksum. Success or a typed error, never a panic.
    let mut rich = Table::new(0x2f, 0x07);
    rich.structure(
        0,
        &drhd_body(
            1,
            2,
            0,
            0xfed9_0000,
            &[
                scope(3, 2, 0xf0, &[(0x1f, 0)]),
                scope(4, 0, 0, &[(0x1e, 7)]),
            ],
        ),
    );
    rich.structure(
        1,
        &[
            0, 0, 0, 0, 0, 0, 0xe0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xe3, 0, 0, 0, 0, 0,
        ],
    );
    rich.structure(2, &[1, 0, 0, 0]);
    rich.structure(3, &[0; 16]);
    rich.structure(4, &[0, 0, 0, 1, b'\\', b'_', b'S', b'B', 0]);
    rich.structure(5, &[1, 0, 0, 0, 1, 8, 0, 0, 0, 0, 2, 0]);
    rich.structure(6, &[0, 0, 0, 0, 1, 8, 1, 0, 0, 0, 3, 0]);
    let rich = rich.finish();
    assert!(Dmar::parse(&rich).is_ok());

    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut ok, mut err) = (0, 0);
    for base in [q35_bytes(), rich] {
        for round in 0..4000 {
            let mut b = base.clone();
            for _ in 0..(1 + next() % 4) {
                let i = (next() as usize) % b.len();
                b[i] = next() as u8;
            }
            if round % 3 == 0 {
                let cut = (next() as usize) % (b.len() + 1);
                b.truncate(cut);
            }
            if round % 2 == 0 && b.len() >= 10 {
                fix_checksum(&mut b);
            }
            match Dmar::parse(&b).and_then(|d| walk(&d)) {
                Ok(_) => ok += 1,
                Err(_) => err += 1,
            }
            let _ = Dmar::parse_with(
                &b,
                ParseOptions {
                    verify_checksum: false,
                },
            )
            .map(|d| walk(&d));
        }
    }
    assert!(
        ok > 0 && err > 0,
        "both outcomes exercised: ok {ok}, err {err}"
    );
}
