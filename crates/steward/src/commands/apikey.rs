//! `steward apikey create|list|revoke`.

use steward_core::{Operation, Scope, Store, Vault};

use crate::cli::{ApiKeyCommand, ApiKeyCreateArgs, Global};
use crate::commands::subject::fail;
use crate::vault::{cli_access, with_vault};
use crate::{Outcome, output};

pub fn run(global: &Global, command: &ApiKeyCommand) -> Outcome {
    let (declaration, runtime) = match super::vault_command(global) {
        Ok(v) => v,
        Err(outcome) => return outcome,
    };
    runtime
        .block_on(async { with_vault!(global, declaration, |vault| apply(&vault, command).await) })
}

async fn apply<S: Store>(vault: &Vault<S>, command: &ApiKeyCommand) -> Outcome {
    match command {
        ApiKeyCommand::Create(args) => create(vault, args).await,
        ApiKeyCommand::List => list(vault).await,
        ApiKeyCommand::Revoke(args) => {
            match vault.revoke_api_key(&cli_access(), &args.prefix).await {
                Ok(true) => {
                    output::stderr(&format!(
                        "revoked {}: it is refused from now on",
                        args.prefix
                    ));
                    Outcome::Ok
                }
                Ok(false) => {
                    output::stderr(&format!(
                        "no active key has the prefix `{}`; `steward apikey list` shows them",
                        args.prefix
                    ));
                    Outcome::Invalid
                }
                Err(e) => fail(&e),
            }
        }
    }
}

async fn create<S: Store>(vault: &Vault<S>, args: &ApiKeyCreateArgs) -> Outcome {
    let role = args.role.role();
    let mut operations = Vec::new();
    for op in &args.operations {
        match op.parse::<Operation>() {
            Ok(o) => operations.push(o),
            Err(e) => {
                output::stderr(&format!("error: --operation: {e}"));
                return Outcome::Invalid;
            }
        }
    }
    let scope = Scope {
        purposes: args.purposes.clone(),
        categories: args.categories.clone(),
        operations,
    };
    let expires = args
        .expires_in_days
        .map(|d| vault.clock().now() + time::Duration::days(i64::from(d)));
    let key = match vault
        .create_api_key(&cli_access(), role, scope, expires, &args.name)
        .await
    {
        Ok(k) => k,
        Err(e) => return fail(&e),
    };
    let expiry = expires.map_or_else(
        || "It does not expire".to_owned(),
        |t| format!("It expires on {}", t.date()),
    );
    output::stderr(&format!(
        "Created {} key {} (\"{}\"). {expiry}. It is shown once, below; only its hash is kept.\nUse it as `Authorization: Bearer <key>`; revoke it with `steward apikey revoke {}`.",
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

fn or_all(items: &[String]) -> String {
    if items.is_empty() {
        "all".to_owned()
    } else {
        items.join(",")
    }
}

async fn list<S: Store>(vault: &Vault<S>) -> Outcome {
    let keys = match vault.store().list_api_keys().await {
        Ok(k) => k,
        Err(e) => {
            output::stderr(&format!("error: {e}"));
            return Outcome::Unreadable;
        }
    };
    if keys.is_empty() {
        output::stderr("no API keys yet; create one with `steward apikey create --role service`");
        return Outcome::Ok;
    }
    let now = vault.clock().now();
    let mut out = String::from(
        "PREFIX        ROLE     STATE     EXPIRES     PURPOSES / CATEGORIES / OPERATIONS  NAME\n",
    );
    for k in keys {
        let state = if k.revoked_at.is_some() {
            "revoked"
        } else if k.expires_at.is_some_and(|t| t <= now) {
            "expired"
        } else {
            "active"
        };
        let ops: Vec<String> = k
            .scope
            .operations
            .iter()
            .map(|o| o.as_str().to_owned())
            .collect();
        out.push_str(&format!(
            "{:<13} {:<8} {:<9} {:<11} {} / {} / {}  {}\n",
            k.prefix,
            k.role.as_str(),
            state,
            k.expires_at
                .map_or_else(|| "never".to_owned(), |t| t.date().to_string()),
            or_all(&k.scope.purposes),
            or_all(&k.scope.categories),
            or_all(&ops),
            k.name
        ));
    }
    match output::stdout(out.as_bytes()) {
        Ok(()) => Outcome::Ok,
        Err(_) => Outcome::Unreadable,
    }
}
