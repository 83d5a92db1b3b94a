//! `steward apikey create|revoke`.

use steward_core::api_key::{NewApiKey, Role};
use steward_core::{Clock, Store, SystemClock};

use crate::cli::{ApiKeyCommand, Global, RoleArg};
use crate::vault::with_vault;
use crate::{Outcome, output};

pub fn run(global: &Global, command: &ApiKeyCommand) -> Outcome {
    let (declaration, runtime) = match super::vault_command(global) {
        Ok(v) => v,
        Err(outcome) => return outcome,
    };
    runtime.block_on(async {
        with_vault!(global, declaration, |vault| apply(vault.store(), command)
            .await)
    })
}

async fn apply<S: Store>(store: &S, command: &ApiKeyCommand) -> Outcome {
    let now = SystemClock.now();
    match command {
        ApiKeyCommand::Create(args) => {
            let role = match args.role {
                RoleArg::Admin => Role::Admin,
                RoleArg::Service => Role::Service,
            };
            let key = match NewApiKey::generate(role, &args.name, now) {
                Ok(k) => k,
                Err(e) => {
                    output::stderr(&format!("error: {e}"));
                    return Outcome::Unreadable;
                }
            };
            if let Err(e) = store.insert_api_key(&key.record).await {
                output::stderr(&format!("error: {e}"));
                return Outcome::Unreadable;
            }
            output::stderr(&format!(
                "Created {} key {} (\"{}\"). It is shown once, below; only its hash is kept.\nUse it as `Authorization: Bearer <key>`; revoke it with `steward apikey revoke {}`.",
                role.as_str(),
                key.record.prefix,
                args.name,
                key.record.prefix
            ));
            match output::stdout(format!("{}\n", key.secret.as_str()).as_bytes()) {
                Ok(()) => Outcome::Ok,
                Err(_) => Outcome::Unreadable,
            }
        }
        ApiKeyCommand::Revoke(args) => match store.revoke_api_key(&args.prefix, now).await {
            Ok(true) => {
                output::stderr(&format!(
                    "revoked {}: it is refused from now on",
                    args.prefix
                ));
                Outcome::Ok
            }
            Ok(false) => {
                output::stderr(&format!("no active key has the prefix `{}`", args.prefix));
                Outcome::Invalid
            }
            Err(e) => {
                output::stderr(&format!("error: {e}"));
                Outcome::Unreadable
            }
        },
    }
}
