//! Fuzz target: the boot bundle the kernel takes from its ramdisk (`conduit_config::Bundle`).
//!
//! The input is the bundle's payload; the target frames it with a correct header (so the
//! fuzzer reaches the postcard decoder behind the checksum) and also decodes it raw.
//! Invariants beyond "no panic":
//! - a payload that decodes re-encodes to a bundle that decodes to the same value;
//! - every image the bundle carries is found by its name, and borrowed from inside the input;
//! - a truncated or altered frame is refused.
#![no_main]

use conduit_config::Bundle;
use conduit_config::bundle::{MAGIC, fnv1a64};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|payload: &[u8]| {
    let _ = Bundle::decode(payload);
    let mut framed = Vec::with_capacity(24 + payload.len());
    framed.extend_from_slice(&MAGIC);
    framed.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    framed.extend_from_slice(&fnv1a64(payload).to_le_bytes());
    framed.extend_from_slice(payload);
    let Ok(bundle) = Bundle::decode(&framed) else {
        return;
    };
    let range = framed.as_ptr_range();
    for image in &bundle.images {
        let bytes = image.bytes.as_ptr_range();
        assert!(
            range.start <= bytes.start && bytes.end <= range.end,
            "images are borrowed"
        );
        assert!(
            bundle.image(image.name).is_some(),
            "an image is found by its name"
        );
    }
    let encoded = bundle.encode().expect("a decoded bundle encodes");
    assert_eq!(
        Bundle::decode(&encoded),
        Ok(bundle.clone()),
        "decode(encode(x)) == x"
    );
    assert!(
        Bundle::decode(&framed[..framed.len() - 1]).is_err(),
        "truncated frame refused"
    );
    let mut altered = framed.clone();
    let last = altered.len() - 1;
    altered[last] ^= 0x01;
    assert!(Bundle::decode(&altered).is_err(), "altered payload refused");
});
