//! The `herald` entry point, built inside the test crate so the end-to-end
//! tests can run it as a process (`CARGO_BIN_EXE_herald-e2e`): Cargo only
//! exposes binaries of the package under test. It is the same code as the
//! shipped binary, whose `main` is also just `herald::cli::main()`.

fn main() -> std::process::ExitCode {
    herald::cli::main()
}
