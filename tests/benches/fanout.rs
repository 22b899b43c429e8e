//! Scenario 4 of issue 7 (fan-out): see `contour_tests::bench::fanout`.
//! `make bench-fanout`; `TARGETS=ours,upstream` adds upstream Contour;
//! `FANOUT_ROUTES`, `FANOUT_CLIENTS`, `FANOUT_CHANGES` override the sizes.

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> contour_tests::bench::Result<()> {
    contour_tests::bench::fanout::main().await
}
