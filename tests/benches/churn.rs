//! Scenario 3 of issue 7 (endpoint churn): see `contour_tests::bench::churn`.
//! `make bench-churn`; `TARGETS=ours,upstream` adds upstream Contour;
//! `CHURN_CLUSTERS=1000,8000`, `CHURN_CLIENTS`, `CHURN_RATE`, `CHURN_SECS` override the sizes.

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> contour_tests::bench::Result<()> {
    contour_tests::bench::churn::main().await
}
