//! The `contour-operator` binary, built by this crate so that its tests run
//! exactly the code they were compiled with
//! (`CARGO_BIN_EXE_contour-operator-under-test`).

fn main() -> std::process::ExitCode {
    contour_operator::cmd::main()
}
