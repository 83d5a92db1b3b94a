//! One module per command.

mod admin;
mod apikey;
mod audit;
mod check;
pub(crate) mod datasets;
mod erase;
mod import;
mod incident;
mod init;
mod keys;
mod notice;
mod request;
mod retention;
mod ropa;
pub(crate) mod serve;
pub(crate) mod subject;
mod taxonomy;

use steward_policy::{Checked, Declaration, Source};

use crate::Outcome;
use crate::cli::{Cli, Command};
use crate::output;

/// Runs the command the user asked for.
pub fn run(cli: &Cli) -> Outcome {
    match &cli.command {
        Command::Init(args) => init::run(args),
        Command::Check(args) => check::run(&cli.global, args),
        Command::Notice(args) => notice::run(&cli.global, args),
        Command::Ropa(args) => ropa::run(&cli.global, args),
        Command::Serve(args) => serve::run(&cli.global, args),
        Command::Import(args) => import::run(&cli.global, args),
        Command::Apikey(command) => apikey::run(&cli.global, command),
        Command::Keys(command) => keys::run(&cli.global, command),
        Command::Audit(command) => audit::run(&cli.global, command),
        Command::Admin(command) => admin::run(&cli.global, command),
        Command::Subject(command) => subject::run(&cli.global, command),
        Command::Erase(args) => erase::run(&cli.global, args),
        Command::Request(command) => request::run(&cli.global, command),
        Command::Recipient(command) => request::recipient(&cli.global, command),
        Command::Export(args) => request::export(&cli.global, args),
        Command::Datasets(command) => datasets::run(&cli.global, command),
        Command::Retention(command) => retention::run(&cli.global, command),
        Command::Incident(command) => incident::run(&cli.global, command),
        Command::Disclosure(command) => incident::disclosure(&cli.global, command),
        Command::Aggregate(args) => incident::aggregate(&cli.global, args),
        Command::Taxonomy(args) => taxonomy::run(args),
    }
}

/// Reads and checks the declaration for a command that needs a valid one: prints why not
/// and returns the outcome to exit with when it is unreadable or has errors.
fn valid_declaration(path: &std::path::Path) -> Result<(Source, Declaration), Outcome> {
    let source = match steward_policy::load(path) {
        Ok(s) => s,
        Err(e) => {
            output::stderr(&format!("error: {e}"));
            if !path.exists() {
                output::stderr(
                    "  = help: run `steward init` to write a starter privacy.toml, or pass --declaration FILE",
                );
            }
            return Err(Outcome::Unreadable);
        }
    };
    let checked: Checked = match steward_policy::check(&source) {
        Ok(c) => c,
        Err(fatal) => {
            output::stderr(fatal.render(&source).trim_end());
            return Err(Outcome::Unreadable);
        }
    };
    let errors = checked.diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = checked.diagnostics.len() - errors;
    match checked.declaration {
        Some(declaration) if errors == 0 => {
            if warnings > 0 {
                output::stderr(&format!(
                    "{}: {warnings} warning{} (run `steward check` to see them)",
                    source.name(),
                    if warnings == 1 { "" } else { "s" }
                ));
            }
            Ok((source, declaration))
        }
        _ => {
            for d in checked.diagnostics.iter().filter(|d| d.is_error()) {
                output::stderr(d.render(&source).trim_end());
            }
            output::stderr(&format!(
                "{}: {errors} error{}; fix them first (`steward check` lists every problem)",
                source.name(),
                if errors == 1 { "" } else { "s" }
            ));
            Err(Outcome::Invalid)
        }
    }
}

/// What a vault command needs first: a valid declaration and a runtime.
fn vault_command(
    global: &crate::cli::Global,
) -> Result<(Declaration, tokio::runtime::Runtime), Outcome> {
    let (_, declaration) = valid_declaration(&global.declaration)?;
    Ok((declaration, crate::vault::runtime()?))
}

/// Writes a command's result to a file or standard output.
fn emit(bytes: &[u8], path: Option<&std::path::Path>) -> Outcome {
    let result = match path {
        Some(path) => output::write_atomically(path, bytes)
            .map_err(|e| format!("cannot write {}: {e}", path.display())),
        None => output::stdout(bytes).map_err(|e| format!("cannot write to standard output: {e}")),
    };
    match result {
        Ok(()) => {
            if let Some(path) = path {
                output::stderr(&format!("wrote {} ({} bytes)", path.display(), bytes.len()));
            }
            Outcome::Ok
        }
        Err(e) => {
            output::stderr(&format!("error: {e}"));
            Outcome::Unreadable
        }
    }
}
