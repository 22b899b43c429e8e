//! Scenario 1 of issue 7 (route propagation): see `contour_tests::bench::propagation`.
//! `make bench-propagation`; `TARGETS=ours,upstream` adds upstream Contour;
//! `PROPAGATION_SIZES`, `PROPAGATION_SAMPLES`, `PROPAGATION_READY_CAP_SECS`, ... override the sizes.

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> contour_tests::bench::Result<()> {
    contour_tests::bench::propagation::main().await
}
