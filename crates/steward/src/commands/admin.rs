//! `steward admin create|list|unlock|disable`: staff accounts for the admin console.

use std::io::{BufRead as _, IsTerminal as _};

use steward_core::staff::{NewStaff, totp};
use steward_core::{Store, Vault};
use zeroize::Zeroizing;

use crate::cli::{AdminCommand, AdminCreateArgs, Global};
use crate::commands::subject::fail;
use crate::vault::{cli_access, with_vault};
use crate::{Outcome, output};

pub fn run(global: &Global, command: &AdminCommand) -> Outcome {
    let (declaration, runtime) = match super::vault_command(global) {
        Ok(v) => v,
        Err(outcome) => return outcome,
    };
    let issuer = declaration.controller.name.clone();
    runtime.block_on(async {
        with_vault!(global, declaration, |vault| match command {
            AdminCommand::Create(args) => create(&vault, args, &issuer).await,
            AdminCommand::List => list(&vault).await,
            AdminCommand::Unlock(a) => set_state(&vault, &a.username, false).await,
            AdminCommand::Disable(a) => set_state(&vault, &a.username, true).await,
        })
    })
}

/// The new password: STEWARD_ADMIN_PASSWORD, a prompt on a terminal (typed twice, not
/// echoed), or the first line of standard input.
fn password() -> Result<Zeroizing<String>, Outcome> {
    if let Ok(p) = std::env::var("STEWARD_ADMIN_PASSWORD") {
        return Ok(Zeroizing::new(p));
    }
    if std::io::stdin().is_terminal() {
        let first = Zeroizing::new(rpassword::prompt_password("Password: ").map_err(|e| {
            output::stderr(&format!("error: cannot read the password: {e}"));
            Outcome::Unreadable
        })?);
        let again = Zeroizing::new(rpassword::prompt_password("Again: ").map_err(|e| {
            output::stderr(&format!("error: cannot read the password: {e}"));
            Outcome::Unreadable
        })?);
        if *first != *again {
            output::stderr("error: the two passwords differ; nothing was created");
            return Err(Outcome::Invalid);
        }
        return Ok(first);
    }
    let mut line = Zeroizing::new(String::new());
    std::io::stdin().lock().read_line(&mut line).map_err(|e| {
        output::stderr(&format!(
            "error: cannot read the password from standard input: {e}"
        ));
        Outcome::Unreadable
    })?;
    let trimmed = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
    Ok(trimmed)
}

async fn create<S: Store>(vault: &Vault<S>, args: &AdminCreateArgs, issuer: &str) -> Outcome {
    let password = match password() {
        Ok(p) => p,
        Err(o) => return o,
    };
    let new = NewStaff {
        username: &args.username,
        role: args.role.role(),
        password: &password,
        totp: args.totp,
    };
    match vault.create_staff(&cli_access(), &new).await {
        Ok(secret) => {
            output::stderr(&format!(
                "Created staff account `{}` ({}). Sign in at /admin on `steward serve` (or POST /v1/session).",
                args.username,
                new.role.as_str()
            ));
            if let Some(secret) = secret {
                output::stderr(
                    "TOTP is on. Add this to an authenticator app now (it is shown once); sign-in asks for its 6-digit code:",
                );
                let uri = totp::uri(issuer, &args.username, &secret);
                if output::stdout(format!("{uri}\n").as_bytes()).is_err() {
                    return Outcome::Unreadable;
                }
            }
            Outcome::Ok
        }
        Err(e) => fail(&e),
    }
}

async fn list<S: Store>(vault: &Vault<S>) -> Outcome {
    let staff = match vault.store().list_staff().await {
        Ok(s) => s,
        Err(e) => {
            output::stderr(&format!("error: {e}"));
            return Outcome::Unreadable;
        }
    };
    if staff.is_empty() {
        output::stderr(
            "no staff accounts yet; create one with `steward admin create NAME --role admin`",
        );
        return Outcome::Ok;
    }
    let now = vault.clock().now();
    let mut out = String::from("USERNAME                  ROLE     TOTP  STATE\n");
    for s in staff {
        let state = if s.disabled {
            "disabled".to_owned()
        } else if let Some(t) = s.locked_until.filter(|t| *t > now) {
            format!("locked until {t}")
        } else {
            "active".to_owned()
        };
        out.push_str(&format!(
            "{:<25} {:<8} {:<5} {state}\n",
            s.username,
            s.role.as_str(),
            if s.totp.is_some() { "yes" } else { "no" }
        ));
    }
    match output::stdout(out.as_bytes()) {
        Ok(()) => Outcome::Ok,
        Err(_) => Outcome::Unreadable,
    }
}

async fn set_state<S: Store>(vault: &Vault<S>, username: &str, disable: bool) -> Outcome {
    match vault
        .set_staff_state(&cli_access(), username, disable)
        .await
    {
        Ok(()) => {
            output::stderr(&if disable {
                format!("disabled `{username}` and ended its sessions")
            } else {
                format!("unlocked `{username}`")
            });
            Outcome::Ok
        }
        Err(e) => fail(&e),
    }
}
