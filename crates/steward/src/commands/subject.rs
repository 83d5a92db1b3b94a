//! `steward subject find|show`.

use std::str::FromStr;

use steward_core::{Store, SubjectId, Vault, VaultError};

use crate::cli::{CheckFormat, Global, ShowArgs, SubjectCommand};
use crate::vault::{cli_access, identity, with_vault};
use crate::{Outcome, output};

pub fn run(global: &Global, command: &SubjectCommand) -> Outcome {
    let (declaration, runtime) = match super::vault_command(global) {
        Ok(v) => v,
        Err(outcome) => return outcome,
    };
    runtime.block_on(async {
        with_vault!(global, declaration, |vault| match command {
            SubjectCommand::Find(args) =>
                find(
                    &vault,
                    args.email.as_deref(),
                    args.phone.as_deref(),
                    args.username.as_deref()
                )
                .await,
            SubjectCommand::Show(args) => show(&vault, args).await,
        })
    })
}

async fn find<S: Store>(
    vault: &Vault<S>,
    email: Option<&str>,
    phone: Option<&str>,
    username: Option<&str>,
) -> Outcome {
    let access = cli_access();
    let identity = match identity(email, phone, username) {
        Ok(i) => i,
        Err(o) => return o,
    };
    match vault.lookup(&access, &identity, None).await {
        Ok(Some(id)) => match output::stdout(format!("{id}\n").as_bytes()) {
            Ok(()) => Outcome::Ok,
            Err(_) => Outcome::Unreadable,
        },
        Ok(None) => {
            output::stderr(&format!("no subject has this {}", identity.kind()));
            Outcome::Invalid
        }
        Err(e) => fail(&e),
    }
}

async fn show<S: Store>(vault: &Vault<S>, args: &ShowArgs) -> Outcome {
    let access = cli_access();
    let Ok(id) = SubjectId::from_str(&args.id) else {
        output::stderr(&format!(
            "error: `{}` is not a subject id (a UUID, as printed by `steward subject find`)",
            args.id
        ));
        return Outcome::Invalid;
    };
    let view = match vault.read(&access, id, &args.purpose, &[]).await {
        Ok(v) => v,
        Err(e) => return fail(&e),
    };
    let text = match args.format {
        CheckFormat::Json => serde_json::to_string_pretty(&view)
            .map(|s| s + "\n")
            .unwrap_or_default(),
        CheckFormat::Text => {
            let mut out = format!("subject {}\n", view.id);
            for (kind, value) in &view.identities {
                out.push_str(&format!("  {kind}: {value}\n"));
            }
            for f in &view.fields {
                out.push_str(&format!(
                    "  {}: {}   (collected {} for `{}`, from {})\n",
                    f.category,
                    f.value,
                    f.collected_at.date(),
                    f.purpose,
                    f.source
                ));
            }
            out
        }
    };
    match output::stdout(text.as_bytes()) {
        Ok(()) => Outcome::Ok,
        Err(_) => Outcome::Unreadable,
    }
}

/// Prints a vault error and chooses the exit code.
pub fn fail(e: &VaultError) -> Outcome {
    output::stderr(&format!("error: {e}"));
    match e {
        VaultError::Crypto(_) | VaultError::Store(_) | VaultError::Audit(_) => Outcome::Unreadable,
        _ => Outcome::Invalid,
    }
}
