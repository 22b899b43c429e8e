//! The DAG builder, the Envoy translation and the incremental engine on a
//! structured set of objects and a sequence of changes (see
//! `contour_fuzz::model` and `contour_fuzz::dag`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|scenario: contour_fuzz::model::Scenario| {
    // CONTOUR_FUZZ_DEBUG=1 prints the structured input (to read a crash).
    if std::env::var_os("CONTOUR_FUZZ_DEBUG").is_some() {
        eprintln!("{scenario:#?}");
    }
    contour_fuzz::dag(&scenario);
});
