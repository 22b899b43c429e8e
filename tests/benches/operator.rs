//! Scenario 6 of issue 7 (operator reconcile): see `contour_tests::bench::operator`
//! (ours: `contour_operator::reconcile` on a ContourDeployment) and
//! `contour_tests::bench::operator_upstream` (upstream: `contour gateway-provisioner`
//! on a ContourDeployment + GatewayClass + Gateway). `make bench-operator`;
//! `TARGETS` (ours when unset; the Makefile passes `ours,upstream`) picks the controllers;
//! `OPERATOR_INSTANCES`, `OPERATOR_NOOP_RUNS`, `OPERATOR_UPSTREAM_SETTLE_MS`,
//! `OPERATOR_UPSTREAM_GAP_MS` override the sizes.

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> contour_tests::bench::Result<()> {
    contour_tests::bench::operator::main().await
}
