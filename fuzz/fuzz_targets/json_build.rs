//! Raw JSON documents deserialized into the API types, then the builder,
//! the translation and the incremental engine (see `contour_fuzz::json`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    contour_fuzz::json(data);
});
