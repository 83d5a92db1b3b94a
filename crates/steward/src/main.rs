//! `steward`: the command-line program.
//!
//! Parses the command line, runs one command, and turns its outcome into an exit code:
//! 0 success, 1 the declaration has errors (or the command's own work failed a check),
//! 2 a file could not be read, parsed or written. This crate owns configuration and the CLI;
//! it depends on every other Steward crate and nothing depends on it.

mod cli;
mod clock;
mod commands;
mod config;
mod master_key;
mod output;
mod vault;

use std::process::ExitCode;

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
    let expanded = match config::expand(std::env::args_os().collect()) {
        Ok(e) => e,
        Err(e) => {
            output::stderr(&format!("error: {e}"));
            return Outcome::Unreadable.into();
        }
    };
    let matches =
        match <cli::Cli as clap::CommandFactory>::command().try_get_matches_from(&expanded.args) {
            Ok(m) => m,
            Err(e) => match config::blame(&expanded, &e) {
                // A value the configuration file gave: named by its file and key, not a flag.
                Some(message) => {
                    output::stderr(&format!("error: {message}"));
                    return Outcome::Unreadable.into();
                }
                None => e.exit(),
            },
        };
    let args = match <cli::Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(a) => a,
        Err(e) => e.exit(),
    };
    if let cli::Command::Serve(serve) = &args.command
        && serve.print_config
    {
        return commands::serve::print_config(&expanded, &matches).into();
    }
    commands::run(&args).into()
}
