//! `contour-operator`: reconciles ContourDeployment resources.

fn main() -> std::process::ExitCode {
    contour_operator::cmd::main()
}
