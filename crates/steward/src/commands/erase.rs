//! `steward erase`: crypto-shred a subject and print the receipt.

use std::str::FromStr;

use steward_core::ledger::{ConsentError, Ledger};
use steward_core::{Store, SubjectId};

use crate::cli::{EraseArgs, Global};
use crate::commands::subject::fail;
use crate::vault::{cli_access, identity, open_ledger, with_vault};
use crate::{Outcome, output};

pub fn run(global: &Global, args: &EraseArgs) -> Outcome {
    let (declaration, runtime) = match super::vault_command(global) {
        Ok(v) => v,
        Err(outcome) => return outcome,
    };
    runtime.block_on(async {
        with_vault!(global, declaration.clone(), |vault| {
            match open_ledger(vault, &declaration, global, "http://127.0.0.1:8080").await {
                Ok(ledger) => erase(&ledger, args).await,
                Err(o) => o,
            }
        })
    })
}

async fn erase<S: Store>(ledger: &Ledger<S>, args: &EraseArgs) -> Outcome {
    let vault = ledger.vault();
    let access = cli_access();
    let id = match &args.subject {
        Some(text) => match SubjectId::from_str(text) {
            Ok(id) => id,
            Err(_) => {
                output::stderr(&format!("error: `{text}` is not a subject id"));
                return Outcome::Invalid;
            }
        },
        None => {
            let identity = match identity(
                args.email.as_deref(),
                args.phone.as_deref(),
                args.username.as_deref(),
            ) {
                Ok(i) => i,
                Err(o) => return o,
            };
            match vault.lookup(&access, &identity, None).await {
                Ok(Some(id)) => id,
                Ok(None) => {
                    output::stderr(&format!(
                        "no subject has this {}; nothing to erase",
                        identity.kind()
                    ));
                    return Outcome::Invalid;
                }
                Err(e) => return fail(&e),
            }
        }
    };
    if args.dry_run {
        return match vault.plan_erasure(&access, id).await {
            Ok((removed, retained)) => {
                let mut out = format!(
                    "Erasing subject {id} would (nothing was changed):\n  remove: {}\n",
                    removed.join(", ")
                );
                for r in &retained {
                    let until = r
                        .until
                        .map_or("no end date".to_owned(), |u| u.date().to_string());
                    out.push_str(&format!(
                        "  keep:   {} for `{}` until {until}: {}\n",
                        r.category, r.purpose, r.reason
                    ));
                }
                match output::stdout(out.as_bytes()) {
                    Ok(()) => Outcome::Ok,
                    Err(_) => Outcome::Unreadable,
                }
            }
            Err(e) => fail(&e),
        };
    }
    match ledger.erase_one(&access, id).await {
        Ok(receipt) => {
            let text = serde_json::to_string_pretty(&receipt)
                .map(|s| s + "\n")
                .unwrap_or_default();
            match output::stdout(text.as_bytes()) {
                Ok(()) => Outcome::Ok,
                Err(_) => Outcome::Unreadable,
            }
        }
        Err(ConsentError::Vault(e)) => fail(&e),
        Err(e) => {
            output::stderr(&format!("error: {e}"));
            Outcome::Unreadable
        }
    }
}
