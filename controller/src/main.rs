//! `contour`: serve, bootstrap, certgen and cli (see `contour::cmd`).

fn main() -> std::process::ExitCode {
    contour::cmd::main()
}
