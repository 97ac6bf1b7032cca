//! The `strata` binary: everything is in the library (`strata::cli`).

fn main() -> std::process::ExitCode {
    strata::cli::run()
}
