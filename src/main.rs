//! The `dvt` command: parse arguments, call the library, render the outcome.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::run()
}
