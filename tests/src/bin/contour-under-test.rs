//! The `contour` binary, built by this crate so that its tests run exactly
//! the code they were compiled with (`CARGO_BIN_EXE_contour-under-test`).

fn main() -> std::process::ExitCode {
    contour::cmd::main()
}
