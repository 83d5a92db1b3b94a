//! `steward audit verify|export`.

use std::io::Write as _;
use std::str::FromStr;

use indicatif::{ProgressBar, ProgressStyle};
use steward_core::audit::{AuditFilter, Outcome as AuditOutcome, SealedEntry};
use steward_core::{Store, SubjectId, Vault};
use steward_policy::spreadsheet::CsvWriter;

use crate::cli::{AuditCommand, AuditExportArgs, AuditFormat, Global};
use crate::commands::subject::fail;
use crate::vault::{cli_access, with_vault};
use crate::{Outcome, output};

pub fn run(global: &Global, command: &AuditCommand) -> Outcome {
    let (declaration, runtime) = match super::vault_command(global) {
        Ok(v) => v,
        Err(outcome) => return outcome,
    };
    runtime.block_on(async {
        with_vault!(global, declaration, |vault| match command {
            AuditCommand::Verify => verify(&vault).await,
            AuditCommand::Export(args) => export(&vault, args).await,
        })
    })
}

async fn verify<S: Store>(vault: &Vault<S>) -> Outcome {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} entries  {per_sec}  ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let result = vault
        .verify_audit(|done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })
        .await;
    bar.finish_and_clear();
    let access = cli_access();
    let mut entry = access.entry("audit.verify", vault.clock().now());
    let outcome = match &result {
        Ok(Ok(v)) => {
            entry.detail = Some(format!("{} entries intact", v.entries));
            output::stderr(&format!(
                "The audit trail is intact: {} entries, {} checkpoints, every hash and MAC verified.\nHead: {}\n(keep this head elsewhere; a later trail that does not reach it was cut)",
                v.entries, v.checkpoints, v.head
            ));
            Outcome::Ok
        }
        Ok(Err(b)) => {
            entry.outcome = AuditOutcome::Failed;
            entry.code = Some("audit-broken".to_owned());
            output::stderr(&format!(
                "error: the audit trail is broken: {b}.\n  = help: restore the audit tables from a backup taken before the break, and find out who had write access to the database"
            ));
            Outcome::Invalid
        }
        Err(e) => return fail(e),
    };
    // Verification is itself an audited act (it is appended after the walk). A broken chain
    // may refuse the append (a row pushed into the head's place); the verdict stands.
    if let Err(e) = vault.record(entry).await {
        if outcome == Outcome::Ok {
            return fail(&e);
        }
        output::stderr(&format!(
            "note: this verification could not be recorded: {e}"
        ));
    }
    outcome
}

fn time_arg(text: Option<&str>, flag: &str) -> Result<Option<time::OffsetDateTime>, Outcome> {
    text.map(|t| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).map_err(
            |_| {
                output::stderr(&format!(
                    "error: {flag} `{t}` is not an RFC 3339 time; write it like 2026-11-22T10:00:00Z"
                ));
                Outcome::Invalid
            },
        )
    })
    .transpose()
}

const CSV_HEADER: [&str; 15] = [
    "seq",
    "at",
    "request",
    "actor",
    "role",
    "action",
    "purpose",
    "subject",
    "categories",
    "outcome",
    "code",
    "ticket",
    "flagged",
    "detail",
    "hash",
];

fn csv_row(e: &SealedEntry) -> [String; 15] {
    let x = &e.entry;
    let at =
        x.at.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
    [
        e.seq.to_string(),
        at,
        x.request.to_string(),
        x.actor.clone(),
        x.role.clone(),
        x.action.clone(),
        x.purpose.clone().unwrap_or_default(),
        x.subject.map(|s| s.to_string()).unwrap_or_default(),
        x.categories.join(" "),
        x.outcome.as_str().to_owned(),
        x.code.clone().unwrap_or_default(),
        x.ticket.clone().unwrap_or_default(),
        x.flagged.to_string(),
        x.detail.clone().unwrap_or_default(),
        steward_core::audit::hex(&e.hash),
    ]
}

async fn export<S: Store>(vault: &Vault<S>, args: &AuditExportArgs) -> Outcome {
    let Ok(subject) = args.subject.as_deref().map(SubjectId::from_str).transpose() else {
        output::stderr(
            "error: --subject is a subject id (a UUID, as `steward subject find` prints)",
        );
        return Outcome::Invalid;
    };
    let (since, until) = match (
        time_arg(args.since.as_deref(), "--since"),
        time_arg(args.until.as_deref(), "--until"),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(o), _) | (_, Err(o)) => return o,
    };
    let filter = AuditFilter {
        subject,
        actor: args.actor.clone(),
        purpose: args.purpose.clone(),
        since,
        until,
    };
    let access = cli_access();
    let mut entry = access.entry("audit.export", vault.clock().now());
    entry.subject = subject;
    entry.purpose = args.purpose.clone();
    if let Err(e) = vault.record(entry).await {
        return fail(&e);
    }
    let mut buffer: Vec<u8> = Vec::new();
    let mut csv = CsvWriter::new(Vec::new());
    if matches!(args.format, AuditFormat::Csv) && csv.row(CSV_HEADER).is_err() {
        return Outcome::Unreadable;
    }
    let (mut after, mut count) = (0u64, 0u64);
    loop {
        let page = match vault.store().audit_search(&filter, after, 5000).await {
            Ok(p) => p,
            Err(e) => {
                output::stderr(&format!("error: {e}"));
                return Outcome::Unreadable;
            }
        };
        let Some(last) = page.last() else { break };
        after = last.seq;
        for e in &page {
            count += 1;
            match args.format {
                AuditFormat::Jsonl => {
                    if serde_json::to_writer(&mut buffer, e).is_err() || writeln!(buffer).is_err() {
                        return Outcome::Unreadable;
                    }
                }
                AuditFormat::Csv => {
                    if csv.row(csv_row(e)).is_err() {
                        return Outcome::Unreadable;
                    }
                }
            }
        }
    }
    if matches!(args.format, AuditFormat::Csv) {
        buffer = match csv.into_inner() {
            Ok(b) => b,
            Err(_) => return Outcome::Unreadable,
        };
    }
    let written = match &args.output {
        Some(path) => output::write_private_atomically(path, &buffer).map(|()| {
            output::stderr(&format!(
                "wrote {count} audit entries to {}",
                path.display()
            ));
        }),
        None => output::stdout(&buffer),
    };
    match written {
        Ok(()) => Outcome::Ok,
        Err(e) => {
            output::stderr(&format!("error: cannot write the export: {e}"));
            Outcome::Unreadable
        }
    }
}
