//! Envoy's cost of one new host by route layout (issue 7, P1/P4 design): see
//! `contour_tests::bench::layout`. `make bench-layout`; `LAYOUT_HOSTS`,
//! `LAYOUT_SAMPLES` override the sizes.

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> contour_tests::bench::Result<()> {
    contour_tests::bench::layout::main().await
}
