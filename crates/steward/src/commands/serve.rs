//! `steward serve`: publish the notice over HTTP until interrupted.

use crate::Outcome;
use crate::cli::{Global, ServeArgs};
use crate::output;

pub fn run(global: &Global, args: &ServeArgs) -> Outcome {
    let (_, declaration) = match super::valid_declaration(&global.declaration) {
        Ok(v) => v,
        Err(outcome) => return outcome,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            output::stderr(&format!("error: cannot start the server runtime: {e}"));
            return Outcome::Unreadable;
        }
    };
    runtime.block_on(async {
        crate::vault::with_vault!(global, declaration.clone(), |vault| serve_with(
            vault,
            &declaration,
            global,
            args
        )
        .await)
    })
}

/// The mailer `serve` was told to use: SMTP, or the outbox folder.
pub fn mailer(
    global: &Global,
    declaration: &steward_policy::Declaration,
    smtp_url: Option<&str>,
    mail_from: Option<&str>,
) -> Result<(std::sync::Arc<dyn steward_core::mail::Mailer>, String), String> {
    let from = mail_from.unwrap_or(&declaration.controller.email);
    match smtp_url {
        Some(url) => steward_server::mail::SmtpMailer::new(url, from)
            .map(|m| {
                (
                    std::sync::Arc::new(m) as std::sync::Arc<dyn steward_core::mail::Mailer>,
                    "over SMTP".to_owned(),
                )
            })
            .map_err(|e| e.0),
        None => {
            let dir = global.data_dir.join("outbox");
            let shown = format!("to {} (no --smtp-url)", dir.display());
            steward_server::mail::OutboxMailer::new(dir, from)
                .map(|m| {
                    (
                        std::sync::Arc::new(m) as std::sync::Arc<dyn steward_core::mail::Mailer>,
                        shown,
                    )
                })
                .map_err(|e| e.0)
        }
    }
}

async fn serve_with<S: steward_core::Store>(
    vault: steward_core::Vault<S>,
    declaration: &steward_policy::Declaration,
    global: &Global,
    args: &ServeArgs,
) -> Outcome {
    {
        let (mailer, mail_route) = match mailer(
            global,
            declaration,
            args.smtp_url.as_deref(),
            args.mail_from.as_deref(),
        ) {
            Ok(m) => m,
            Err(e) => {
                output::stderr(&format!("error: {e}"));
                return Outcome::Unreadable;
            }
        };
        let public_url = args
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", args.listen))
            .trim_end_matches('/')
            .to_owned();
        if !(public_url.starts_with("https://") || public_url.starts_with("http://")) {
            output::stderr(
                "error: --public-url must start with https:// (or http:// for a local test)",
            );
            return Outcome::Unreadable;
        }
        let options = steward_core::ledger::LedgerOptions {
            public_url: public_url.clone(),
            unsubscribe_mailto: args.unsubscribe_mailto.clone(),
        };
        let progress = crate::output::progress_bar(0, "loading the consent ledger");
        let ledger = match steward_core::ledger::Ledger::open(
            std::sync::Arc::new(vault),
            mailer,
            options,
            |seq| progress.set_position(seq),
        )
        .await
        {
            Ok(l) => l,
            Err(e) => {
                progress.finish_and_clear();
                output::stderr(&format!("error: {e}"));
                return Outcome::Unreadable;
            }
        };
        progress.finish_and_clear();
        let listener = match tokio::net::TcpListener::bind(args.listen).await {
            Ok(l) => l,
            Err(e) => {
                output::stderr(&format!(
                    "error: cannot listen on {}: {e}\n  = help: pass another address, e.g. --listen 127.0.0.1:8081",
                    args.listen
                ));
                return Outcome::Unreadable;
            }
        };
        let address = listener
            .local_addr()
            .map_or_else(|_| args.listen.to_string(), |a| a.to_string());
        output::stderr(&format!(
            "Steward is serving {} (declaration version {}):\n  http://{address}/privacy        the privacy notice\n  http://{address}/consent.js     the consent banner for your pages\n  http://{address}/v1/…           the API (see /openapi.json; keys from `steward apikey create`)\nConsent ledger: {} events. Mail goes {mail_route}; links point to {public_url}.\nPress Ctrl-C to stop.",
            declaration.controller.name,
            declaration.policy.version,
            ledger.seq()
        ));
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        let config = steward_server::ServerConfig {
            rates: steward_server::api::Rates {
                lookup_ip: args.lookup_rate_ip,
                lookup_identity: args.lookup_rate_identity,
                signin_ip: args.signin_rate_ip,
                signin_user: args.signin_rate_user,
                consent_ip: args.consent_rate_ip,
                ..steward_server::api::Rates::default()
            },
            trust_forwarded: args.trust_forwarded_for,
        };
        match steward_server::serve(
            listener,
            declaration,
            std::sync::Arc::new(ledger),
            &config,
            shutdown,
        )
        .await
        {
            Ok(()) => {
                output::stderr("stopped");
                Outcome::Ok
            }
            Err(e) => {
                output::stderr(&format!("error: the server stopped: {e}"));
                Outcome::Unreadable
            }
        }
    }
}
