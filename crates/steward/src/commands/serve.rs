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
            args
        )
        .await)
    })
}

async fn serve_with<S: steward_core::Store>(
    vault: steward_core::Vault<S>,
    declaration: &steward_policy::Declaration,
    args: &ServeArgs,
) -> Outcome {
    {
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
            "Steward is serving {} (declaration version {}):\n  http://{address}/privacy        the privacy notice\n  http://{address}/v1/…           the API (see /openapi.json; keys from `steward apikey create`)\nPress Ctrl-C to stop.",
            declaration.controller.name, declaration.policy.version
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
            },
            trust_forwarded: args.trust_forwarded_for,
        };
        match steward_server::serve(
            listener,
            declaration,
            std::sync::Arc::new(vault),
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
