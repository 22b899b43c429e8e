//! The xDS stream state machines (state of the world and delta) and the
//! unary fetch of the per-type services, on sequences of requests and
//! snapshots (see `contour_fuzz::xds`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: contour_fuzz::xds::Input| {
    // CONTOUR_FUZZ_DEBUG=1 prints the structured input (to read a crash).
    if std::env::var_os("CONTOUR_FUZZ_DEBUG").is_some() {
        eprintln!("{input:#?}");
    }
    contour_fuzz::xds::run(&input);
});
