//! `steward`: the command-line program.
//!
//! Parses the command line, runs one command, and turns its outcome into an exit code:
//! 0 success, 1 the declaration has errors (or the command's own work failed a check),
//! 2 a file could not be read, parsed or written. This crate owns configuration and the CLI;
//! it depends on every other Steward crate and nothing depends on it.

mod cli;
mod clock;
mod commands;
mod master_key;
mod output;
mod vault;

use std::process::ExitCode;

use clap::Parser;

/// How a command ended, and so the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done (warnings allowed).
    Ok,
    /// The declaration has errors, or the work was refused for a reason the user can fix in it.
    Invalid,
    /// A file could not be read, parsed or written.
    Unreadable,
}

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Ok => ExitCode::SUCCESS,
            Outcome::Invalid => ExitCode::from(1),
            Outcome::Unreadable => ExitCode::from(2),
        }
    }
}

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    commands::run(&args).into()
}
