//! Scenario 6 of issue 7 (operator reconcile): see `contour_tests::bench::operator`.
//! `make bench-operator`; ours only (upstream has no ContourDeployment operator).
//! `OPERATOR_INSTANCES`, `OPERATOR_NOOP_RUNS` override the sizes.

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> contour_tests::bench::Result<()> {
    contour_tests::bench::operator::main().await
}
