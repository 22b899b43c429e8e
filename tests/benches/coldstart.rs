//! Scenario 2 of issue 7 (cold start): see `contour_tests::bench::coldstart`.
//! `make bench-coldstart`; `TARGETS=ours,upstream` adds upstream Contour;
//! `COLDSTART_PROXIES`, `COLDSTART_SERVICES`, `COLDSTART_SECRETS`, ... override the sizes.

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> contour_tests::bench::Result<()> {
    contour_tests::bench::coldstart::main().await
}
