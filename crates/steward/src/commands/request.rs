//! `steward request …` and `steward export`: the request workflow from the command line. Mail
//! is queued; `steward serve` sends it (and runs the rest of the queue).

use std::sync::Arc;

use steward_core::Store;
use steward_core::request::Status;
use steward_core::requests::{Intake, RequestError, Requests};
use steward_core::store::RequestFilter;
use uuid::Uuid;

use crate::cli::{ExportArgs, Global, RecipientCommand, RequestCommand};
use crate::vault::{cli_access, with_vault};
use crate::{Outcome, output};

pub fn run(global: &Global, command: &RequestCommand) -> Outcome {
    let (declaration, runtime) = match super::vault_command(global) {
        Ok(v) => v,
        Err(outcome) => return outcome,
    };
    let public_url = match command {
        RequestCommand::Create(a) => a.public_url.clone(),
        _ => "http://127.0.0.1:8080".to_owned(),
    };
    runtime.block_on(async {
        with_vault!(global, declaration.clone(), |vault| {
            match workflow(vault, &declaration, global, &public_url).await {
                Ok(requests) => request(&requests, command).await,
                Err(o) => o,
            }
        })
    })
}

/// `steward recipient list|secret`.
pub fn recipient(global: &Global, command: &RecipientCommand) -> Outcome {
    let (declaration, runtime) = match super::vault_command(global) {
        Ok(v) => v,
        Err(outcome) => return outcome,
    };
    runtime.block_on(async {
        with_vault!(global, declaration.clone(), |vault| {
            match workflow(vault, &declaration, global, "http://127.0.0.1:8080").await {
                Ok(requests) => match command {
                    RecipientCommand::List => list_recipients(&requests).await,
                    RecipientCommand::Secret(a) => {
                        match requests
                            .recipient_secret(&cli_access(), &a.id, a.rotate)
                            .await
                        {
                            Ok(shown) => {
                                output::stderr(&format!(
                                    "the signing secret of `{}` (generation {}); it is not shown again: hand it to the recipient now",
                                    shown.recipient, shown.generation
                                ));
                                match output::stdout(format!("{}\n", shown.secret).as_bytes()) {
                                    Ok(()) => Outcome::Ok,
                                    Err(_) => Outcome::Unreadable,
                                }
                            }
                            Err(RequestError::UnknownRecipient(id)) => {
                                output::stderr(&format!(
                                    "error: `{id}` is not a declared recipient; `steward recipient list` shows them"
                                ));
                                Outcome::Invalid
                            }
                            Err(e) => fail(&e),
                        }
                    }
                },
                Err(o) => o,
            }
        })
    })
}

async fn list_recipients<S: Store>(requests: &Requests<S>) -> Outcome {
    let declaration = requests.ledger().vault().declaration();
    let mut out = String::new();
    for p in &declaration.processors {
        let told = match p.contact.as_deref() {
            Some(c) if c.starts_with("http://") || c.starts_with("https://") => {
                let state = requests
                    .ledger()
                    .vault()
                    .store()
                    .recipient_secret(&p.id)
                    .await;
                match state {
                    Ok(Some(s)) if s.shown_at.is_some() => {
                        format!("webhook {c} (secret generation {}, shown)", s.generation)
                    }
                    Ok(_) => format!(
                        "webhook {c} (secret not shown yet: steward recipient secret {})",
                        p.id
                    ),
                    Err(e) => {
                        output::stderr(&format!("error: the database failed: {e}"));
                        return Outcome::Unreadable;
                    }
                }
            }
            Some(c) => format!("e-mail {c}"),
            None => "not told (no `contact`)".to_owned(),
        };
        out.push_str(&format!(
            "{}\t{}\t{}{}\n",
            p.id,
            told,
            p.categories.join(","),
            if p.categories_from_purposes {
                " (from its purposes)"
            } else {
                ""
            }
        ));
    }
    match output::stdout(out.as_bytes()) {
        Ok(()) => Outcome::Ok,
        Err(_) => Outcome::Unreadable,
    }
}

pub fn export(global: &Global, args: &ExportArgs) -> Outcome {
    let (declaration, runtime) = match super::vault_command(global) {
        Ok(v) => v,
        Err(outcome) => return outcome,
    };
    runtime.block_on(async {
        with_vault!(global, declaration.clone(), |vault| {
            match workflow(vault, &declaration, global, "http://127.0.0.1:8080").await {
                Ok(requests) => export_to(&requests, &declaration, args).await,
                Err(o) => o,
            }
        })
    })
}

pub(crate) async fn workflow<S: Store>(
    vault: steward_core::Vault<S>,
    declaration: &steward_policy::Declaration,
    global: &Global,
    public_url: &str,
) -> Result<Requests<S>, Outcome> {
    workflow_mailing(vault, declaration, global, public_url, None, None).await
}

/// The same, its mail sent through `smtp_url` (from `mail_from`) when given.
pub(crate) async fn workflow_mailing<S: Store>(
    vault: steward_core::Vault<S>,
    declaration: &steward_policy::Declaration,
    global: &Global,
    public_url: &str,
    smtp_url: Option<&str>,
    mail_from: Option<&str>,
) -> Result<Requests<S>, Outcome> {
    let ledger = crate::vault::open_ledger_mailing(
        vault,
        declaration,
        global,
        public_url,
        smtp_url,
        mail_from,
    )
    .await?;
    // A command queues work; the server's job queue delivers it (with its own --webhook-ca).
    let webhooks = Arc::new(steward_server::requests::HttpNotifier::new());
    // The operator's own databases join the vault's data in access packages.
    let sources = super::datasets::connectors(global, declaration, false).await?;
    Ok(steward_server::requests::workflow_with(
        &Arc::new(ledger),
        &webhooks,
        &sources,
    ))
}

fn fail(e: &RequestError) -> Outcome {
    output::stderr(&format!("error: {e} ({})", e.code()));
    if e.is_refusal() {
        Outcome::Invalid
    } else {
        Outcome::Unreadable
    }
}

fn print(value: &impl serde::Serialize) -> Outcome {
    let text = serde_json::to_string_pretty(value)
        .map(|s| s + "\n")
        .unwrap_or_default();
    match output::stdout(text.as_bytes()) {
        Ok(()) => Outcome::Ok,
        Err(_) => Outcome::Unreadable,
    }
}

fn id(text: &str) -> Result<Uuid, Outcome> {
    Uuid::parse_str(text).map_err(|_| {
        output::stderr(&format!(
            "error: `{text}` is not a request id (a UUID, as `steward request list` shows)"
        ));
        Outcome::Invalid
    })
}

async fn request<S: Store>(requests: &Requests<S>, command: &RequestCommand) -> Outcome {
    let access = cli_access();
    let result = match command {
        RequestCommand::Create(a) => {
            let mut changes = Vec::new();
            for c in &a.changes {
                let Some((category, value)) = c.split_once('=') else {
                    output::stderr(
                        "error: write each --change as CATEGORY=VALUE, e.g. --change user.name='Ana López'",
                    );
                    return Outcome::Invalid;
                };
                changes.push((category.trim().to_owned(), value.to_owned()));
            }
            let intake = Intake {
                kind: a.kind.clone(),
                email: a.email.clone(),
                purpose: a.purpose.clone(),
                changes,
                close_account: a.close_account,
                verification: a.verification.clone(),
            };
            requests
                .create(&access, intake, a.vouch)
                .await
                .map(|v| print(&v))
        }
        RequestCommand::List(a) => {
            let mut filter = RequestFilter::default();
            match Status::parse_list(a.status.as_deref().unwrap_or("open")) {
                Ok(statuses) => filter.statuses = statuses,
                Err(e) => {
                    output::stderr(&format!("error: {e}"));
                    return Outcome::Invalid;
                }
            }
            filter.kind = a.kind.clone();
            if let Some(t) = &a.due_before {
                match time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                {
                    Ok(t) => filter.due_before = Some(t),
                    Err(_) => {
                        output::stderr(
                            "error: --due-before is an RFC 3339 time, e.g. 2026-12-31T00:00:00Z",
                        );
                        return Outcome::Invalid;
                    }
                }
            }
            match requests.list(&access, filter, a.overdue, 1000).await {
                Ok(views) if a.ids => {
                    let out: String = views.iter().map(|v| format!("{}\n", v.id)).collect();
                    Ok(match output::stdout(out.as_bytes()) {
                        Ok(()) => Outcome::Ok,
                        Err(_) => Outcome::Unreadable,
                    })
                }
                Ok(views) => {
                    let mut out = format!(
                        "{:<36}  {:<18}  {:<21}  {:<10}  overdue\n",
                        "id", "kind", "status", "due"
                    );
                    for v in &views {
                        out.push_str(&format!(
                            "{:<36}  {:<18}  {:<21}  {:<10}  {}\n",
                            v.id,
                            v.kind.as_str(),
                            v.status.as_str(),
                            v.due_at.date(),
                            if v.overdue { "OVERDUE" } else { "" }
                        ));
                    }
                    out.push_str(&format!(
                        "{} request{}\n",
                        views.len(),
                        if views.len() == 1 { "" } else { "s" }
                    ));
                    Ok(match output::stdout(out.as_bytes()) {
                        Ok(()) => Outcome::Ok,
                        Err(_) => Outcome::Unreadable,
                    })
                }
                Err(e) => Err(e),
            }
        }
        RequestCommand::Show(a) => match id(&a.id) {
            Ok(i) => requests.get(&access, i).await.map(|(view, jobs)| {
                let mut shown = serde_json::to_value(&view).unwrap_or_default();
                shown["jobs"] = serde_json::to_value(&jobs).unwrap_or_default();
                print(&shown)
            }),
            Err(o) => return o,
        },
        RequestCommand::Approve(a) => match id(&a.id) {
            Ok(i) => requests.approve(&access, i).await.map(|v| print(&v)),
            Err(o) => return o,
        },
        RequestCommand::Deny(a) => match id(&a.id) {
            Ok(i) => requests
                .deny(&access, i, &a.reason)
                .await
                .map(|v| print(&v)),
            Err(o) => return o,
        },
        RequestCommand::Extend(a) => match id(&a.id) {
            Ok(i) => requests
                .extend(&access, i, &a.reason)
                .await
                .map(|v| print(&v)),
            Err(o) => return o,
        },
    };
    result.unwrap_or_else(|e| fail(&e))
}

async fn export_to<S: Store>(
    requests: &Requests<S>,
    declaration: &steward_policy::Declaration,
    args: &ExportArgs,
) -> Outcome {
    let access = cli_access();
    let subject = match requests.subject_of(&access, &args.email).await {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    if subject.is_none() && declaration.datasets.iter().all(|d| d.manifest.is_none()) {
        output::stderr("error: no subject has this e-mail address; nothing to export");
        return Outcome::Invalid;
    }
    // The operator's own databases are searched by the address too: a person they hold may
    // not be in the vault at all.
    let verified =
        match steward_core::Identity::parse(steward_core::IdentityKind::Email, &args.email) {
            Ok(i) => vec![("email".to_owned(), i.value().to_owned())],
            Err(e) => {
                output::stderr(&format!("error: {e}"));
                return Outcome::Invalid;
            }
        };
    let data = match requests.gather(&access, None, subject, &verified).await {
        Ok(d) => d,
        Err(e) => return fail(&e),
    };
    // Written next to the target and renamed, so a failed export leaves no partial file.
    // It holds personal data: readable by its owner only.
    let tmp = args.output.with_extension("zip.partial");
    let _ = std::fs::remove_file(&tmp);
    let written = steward_core::files::create_private(&tmp)
        .map_err(|e| e.to_string())
        .and_then(|f| {
            steward_export::write_package(std::io::BufWriter::new(f), declaration, &data)
                .map_err(|e| e.to_string())
                .and_then(|w| w.into_inner().map_err(|e| e.to_string()))
                .and_then(|f| f.sync_all().map_err(|e| e.to_string()))
        })
        .and_then(|()| std::fs::rename(&tmp, &args.output).map_err(|e| e.to_string()));
    match written {
        Ok(()) => {
            output::stderr(&format!(
                "wrote {} ({} fields, {} kept under a legal hold, {} consent events, {} rows from your own databases); it holds personal data: hand it over securely",
                args.output.display(),
                data.fields.len(),
                data.held.len(),
                data.consent.as_ref().map_or(0, |c| c.events.len()),
                data.groups.iter().map(|g| g.rows.len()).sum::<usize>()
            ));
            Outcome::Ok
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            output::stderr(&format!(
                "error: cannot write {}: {e}",
                args.output.display()
            ));
            Outcome::Unreadable
        }
    }
}
