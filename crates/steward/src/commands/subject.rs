//! `steward subject find|show|correct`.

use std::str::FromStr;

use steward_core::ledger::{ConsentError, Ledger};
use steward_core::{Store, SubjectId, Vault, VaultError};

use crate::cli::{CorrectArgs, Global, ShowArgs, SubjectCommand, ViewFormat};
use crate::vault::{cli_access, identity, open_ledger, with_vault};
use crate::{Outcome, output};

pub fn run(global: &Global, command: &SubjectCommand) -> Outcome {
    let (declaration, runtime) = match super::vault_command(global) {
        Ok(v) => v,
        Err(outcome) => return outcome,
    };
    runtime.block_on(async {
        with_vault!(global, declaration.clone(), |vault| match command {
            SubjectCommand::Find(args) =>
                find(
                    &vault,
                    args.email.as_deref(),
                    args.phone.as_deref(),
                    args.username.as_deref(),
                    args.purpose.as_deref(),
                )
                .await,
            SubjectCommand::Show(args) => {
                match open_ledger(vault, &declaration, global, "http://127.0.0.1:8080").await {
                    Ok(ledger) => show(&ledger, args).await,
                    Err(o) => o,
                }
            }
            SubjectCommand::Correct(args) => {
                match open_ledger(vault, &declaration, global, "http://127.0.0.1:8080").await {
                    Ok(ledger) => correct(&ledger, args).await,
                    Err(o) => o,
                }
            }
        })
    })
}

async fn find<S: Store>(
    vault: &Vault<S>,
    email: Option<&str>,
    phone: Option<&str>,
    username: Option<&str>,
    purpose: Option<&str>,
) -> Outcome {
    let access = cli_access();
    let identity = match identity(email, phone, username) {
        Ok(i) => i,
        Err(o) => return o,
    };
    match vault.lookup(&access, &identity, purpose).await {
        Ok(Some(id)) => match output::stdout(format!("{id}\n").as_bytes()) {
            Ok(()) => Outcome::Ok,
            Err(_) => Outcome::Unreadable,
        },
        Ok(None) => {
            output::stderr(&format!(
                "no subject has this {}{}",
                identity.kind(),
                purpose.map_or(String::new(), |p| format!(" for `{p}`"))
            ));
            Outcome::Invalid
        }
        Err(e) => fail(&e),
    }
}

/// Shows what a purpose may see, through the ledger: permits and purposes of collection apply
/// as they do to the API.
async fn show<S: Store>(ledger: &Ledger<S>, args: &ShowArgs) -> Outcome {
    let access = cli_access();
    let id = match subject_id(&args.id) {
        Ok(id) => id,
        Err(o) => return o,
    };
    let view = match ledger.read(&access, id, &args.purpose, &[]).await {
        Ok(v) => v,
        Err(ConsentError::Vault(e)) => return fail(&e),
        Err(e) => {
            output::stderr(&format!("error: {e}"));
            return Outcome::Invalid;
        }
    };
    let text = match args.format {
        ViewFormat::Json => serde_json::to_string_pretty(&view)
            .map(|s| s + "\n")
            .unwrap_or_default(),
        ViewFormat::Text => {
            let mut out = format!("subject {}\n", view.id);
            if view.identities.is_empty() && view.fields.is_empty() {
                out.push_str(&format!(
                    "  nothing `{}` may use: it sees what was collected for it or for a purpose it names in `compatible_with`, and a consent purpose what it declares once the person consented\n",
                    args.purpose
                ));
            }
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

fn subject_id(text: &str) -> Result<SubjectId, Outcome> {
    SubjectId::from_str(text).map_err(|_| {
        output::stderr(&format!(
            "error: `{text}` is not a subject id (a UUID, as printed by `steward subject find`)"
        ));
        Outcome::Invalid
    })
}

/// Corrects each CATEGORY=VALUE in turn through the ledger (an identity's change is told where
/// the declaration says so); stops at the first refusal, naming it.
async fn correct<S: Store>(ledger: &Ledger<S>, args: &CorrectArgs) -> Outcome {
    let id = match subject_id(&args.id) {
        Ok(id) => id,
        Err(o) => return o,
    };
    let mut changes = Vec::new();
    for change in &args.changes {
        let Some((category, value)) = change.split_once('=') else {
            output::stderr(&format!(
                "error: `--set {change}` needs CATEGORY=VALUE, e.g. --set user.name='Ana López'"
            ));
            return Outcome::Invalid;
        };
        changes.push((category.trim(), value));
    }
    let access = cli_access();
    for (category, value) in changes {
        let result = ledger
            .rectify(
                &access,
                id,
                category,
                value,
                &args.purpose,
                &steward_core::FieldSource::Staff,
            )
            .await;
        match result {
            Ok(()) => output::stderr(&format!("corrected {category}")),
            Err(ConsentError::Vault(e)) => return fail(&e),
            Err(e) => {
                output::stderr(&format!("error: {e}"));
                return Outcome::Invalid;
            }
        }
    }
    Outcome::Ok
}

/// Prints a vault error and chooses the exit code.
pub fn fail(e: &VaultError) -> Outcome {
    output::stderr(&format!("error: {e}"));
    match e {
        VaultError::Crypto(_) | VaultError::Store(_) | VaultError::Audit(_) => Outcome::Unreadable,
        _ => Outcome::Invalid,
    }
}
