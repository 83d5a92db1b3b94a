//! `steward incident …`, `steward disclosure …` and `steward aggregate`: the breach register,
//! the disclosure log and the aggregates that may be shared.

use std::sync::Arc;

use steward_core::Store;
use steward_core::disclosures::{
    AggregateQuery, DisclosureError, Disclosures, NewDisclosure, Tell,
};
use steward_core::incidents::{
    Derive, IncidentError, IncidentView, Incidents, NewAssessment, NewIncident, report::Report,
};
use steward_core::subject::SubjectId;
use time::OffsetDateTime;

use crate::cli::{
    AggregateArgs, AggregateFormat, Audience, DisclosureCommand, Global, IncidentCommand,
    ReportFormat, ViewFormat,
};
use crate::vault::{cli_access, with_vault};
use crate::{Outcome, output};

/// Reads a time: a date (midnight UTC) or an RFC 3339 instant.
fn instant(name: &str, text: Option<&str>) -> Result<Option<OffsetDateTime>, Outcome> {
    let Some(text) = text else { return Ok(None) };
    let text = text.trim();
    if let Ok(at) = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
        return Ok(Some(at));
    }
    // A date alone: its first moment, or for the end of a window (`--to`), its last.
    let end = name == "to";
    time::Date::parse(text, time::macros::format_description!("[year]-[month]-[day]"))
        .map(|d| {
            let start = d.midnight().assume_utc();
            Some(if end {
                start + time::Duration::days(1) - time::Duration::nanoseconds(1)
            } else {
                start
            })
        })
        .map_err(|_| {
            output::stderr(&format!(
                "error: --{name} `{text}` is not a time: write YYYY-MM-DD (2026-11-30) or RFC 3339 (2026-11-30T09:00:00Z)"
            ));
            Outcome::Invalid
        })
}

fn subject_id(text: &str) -> Result<SubjectId, Outcome> {
    text.trim()
        .parse::<uuid::Uuid>()
        .map(SubjectId)
        .map_err(|_| {
            output::stderr(&format!(
                "error: `{text}` is not a subject id (a UUID, as `steward subject find` prints)"
            ));
            Outcome::Invalid
        })
}

/// Subject ids from a file, one per line (blank lines and `#` comments skipped).
fn subjects_file(path: &std::path::Path) -> Result<Vec<SubjectId>, Outcome> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        output::stderr(&format!("error: cannot read {}: {e}", path.display()));
        Outcome::Unreadable
    })?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(line.parse::<uuid::Uuid>().map(SubjectId).map_err(|_| {
            output::stderr(&format!(
                "error: {}:{}: not a subject id (one UUID per line); nothing was changed",
                path.display(),
                n + 1
            ));
            Outcome::Invalid
        })?);
    }
    Ok(out)
}

fn print_json(value: &impl serde::Serialize) -> Outcome {
    let text = serde_json::to_string_pretty(value)
        .map(|s| s + "\n")
        .unwrap_or_default();
    print_text(&text)
}

fn print_text(text: &str) -> Outcome {
    match output::stdout(text.as_bytes()) {
        Ok(()) => Outcome::Ok,
        Err(_) => Outcome::Unreadable,
    }
}

fn incident_failed(e: &IncidentError) -> Outcome {
    output::stderr(&format!("error: {e} ({})", e.code()));
    match e {
        IncidentError::Store(_)
        | IncidentError::Vault(_)
        | IncidentError::Request(_)
        | IncidentError::Dataset(_) => Outcome::Unreadable,
        _ => Outcome::Invalid,
    }
}

fn disclosure_failed(e: &DisclosureError) -> Outcome {
    output::stderr(&format!("error: {e} ({})", e.code()));
    match e {
        DisclosureError::Store(_) | DisclosureError::Vault(_) => Outcome::Unreadable,
        _ => Outcome::Invalid,
    }
}

fn time_text(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// An incident for people to read.
fn describe(v: &IncidentView) -> String {
    let i = &v.incident;
    let mut out = format!(
        "Incident #{} — {}\n  state:      {}\n  detected:   {}\n  aware:      {}\n  categories: {}\n",
        i.number,
        i.title,
        i.state.as_str(),
        time_text(i.detected_at),
        time_text(i.aware_at),
        i.categories.join(", ")
    );
    if let Some(a) = &i.assessment {
        out.push_str(&format!(
            "  risk:       {} — {}\n",
            serde_json::to_value(a.risk)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            a.reason
        ));
    }
    if !i.description.is_empty() {
        out.push_str(&format!("  what:       {}\n", i.description));
    }
    match (i.occurred_from, i.occurred_to) {
        (None, None) => {}
        (f, t) => out.push_str(&format!(
            "  window:     {} to {}\n",
            f.map_or_else(|| "?".to_owned(), time_text),
            t.map_or_else(|| "?".to_owned(), time_text)
        )),
    }
    if !i.systems.is_empty() {
        out.push_str(&format!("  systems:    {}\n", i.systems.join(", ")));
    }
    if let Some(a) = &i.assessment
        && !a.exemptions.is_empty()
    {
        out.push_str(&format!(
            "  exemptions: {}\n",
            a.exemptions
                .iter()
                .filter_map(|e| serde_json::to_value(e).ok())
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out.push_str(&format!("  affected:   {} people", v.affected.total));
    if !v.affected.by_source.is_empty() {
        out.push_str(&format!(
            " ({})",
            v.affected
                .by_source
                .iter()
                .map(|(s, n)| format!("{n} {s}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out.push('\n');
    for c in &v.clocks {
        out.push_str(&format!(
            "  clock:      {} within {}: due {} — {}\n",
            c.audience,
            c.within,
            time_text(c.due),
            serde_json::to_value(c.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        ));
    }
    for n in &i.authority {
        out.push_str(&format!(
            "  authority:  {} notification {}{}\n",
            serde_json::to_value(n.phase)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            time_text(n.at),
            n.reference
                .as_ref()
                .map(|r| format!(", reference {r}"))
                .unwrap_or_default()
        ));
    }
    for d in &v.deliveries {
        out.push_str(&format!(
            "  notices:    {} {}: {}{}\n",
            d.channel,
            d.state,
            d.count,
            d.error
                .as_ref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        ));
    }
    if let (Some(at), Some(why)) = (i.closed_at, &i.closing) {
        out.push_str(&format!("  closed:     {} — {why}\n", time_text(at)));
    }
    if let Some(last) = i.timeline.last() {
        out.push_str(&format!(
            "  last step:  {} {} by {}: {}\n",
            time_text(last.at),
            last.action,
            last.by,
            last.detail
        ));
    }
    out
}

fn show(v: &IncidentView, format: ViewFormat) -> Outcome {
    match format {
        ViewFormat::Json => print_json(v),
        ViewFormat::Text => print_text(&describe(v)),
    }
}

/// `steward incident …`.
pub fn run(global: &Global, command: &IncidentCommand) -> Outcome {
    let (declaration, runtime) = match super::vault_command(global) {
        Ok(v) => v,
        Err(outcome) => return outcome,
    };
    let (smtp_url, mail_from) = match command {
        IncidentCommand::Notify(a) => (a.smtp_url.as_deref(), a.mail_from.as_deref()),
        _ => (None, None),
    };
    runtime.block_on(async {
        with_vault!(global, declaration.clone(), |vault| {
            // The register never needs the operator's own databases: it works while they are
            // down (or breached).
            match crate::vault::open_ledger_mailing(
                vault,
                &declaration,
                global,
                "http://127.0.0.1:8080",
                smtp_url,
                mail_from,
            )
            .await
            {
                Ok(ledger) => {
                    let webhooks = Arc::new(steward_server::requests::HttpNotifier::new());
                    // Only `affected --datasets` reaches them (and fails when one is down).
                    let sources = match command {
                        IncidentCommand::Affected(a) if a.datasets => {
                            match super::datasets::connectors(global, &declaration, false).await {
                                Ok(s) => s,
                                Err(o) => return o,
                            }
                        }
                        _ => Vec::new(),
                    };
                    let requests = steward_server::requests::workflow_with(
                        &Arc::new(ledger),
                        &webhooks,
                        &sources,
                    );
                    incident(&Incidents::new(Arc::new(requests)), command).await
                }
                Err(o) => o,
            }
        })
    })
}

async fn incident<S: Store>(incidents: &Incidents<S>, command: &IncidentCommand) -> Outcome {
    let access = cli_access();
    match command {
        IncidentCommand::Open(a) => {
            let times = (|| {
                Ok::<_, Outcome>((
                    instant("detected", a.detected.as_deref())?,
                    instant("aware", a.aware.as_deref())?,
                    instant("from", a.from.as_deref())?,
                    instant("to", a.to.as_deref())?,
                ))
            })();
            let (detected_at, aware_at, occurred_from, occurred_to) = match times {
                Ok(t) => t,
                Err(o) => return o,
            };
            let new = NewIncident {
                title: a.title.clone(),
                description: a.description.clone(),
                detected_at,
                aware_at,
                occurred_from,
                occurred_to,
                systems: a.systems.clone(),
                categories: a.categories.clone(),
                estimated_records: a.records,
            };
            match incidents.open(&access, new).await {
                Ok(v) => {
                    output::stderr(&format!(
                        "opened incident #{}; next: `steward incident affected {} --categories`, then `steward incident assess {} …`",
                        v.incident.number, v.incident.number, v.incident.number
                    ));
                    show(&v, a.format)
                }
                Err(e) => incident_failed(&e),
            }
        }
        IncidentCommand::Assess(a) => {
            let risk = match a.risk.parse() {
                Ok(r) => r,
                Err(e) => {
                    output::stderr(&format!("error: --risk: {e}"));
                    return Outcome::Invalid;
                }
            };
            let mut exemptions = Vec::new();
            for x in &a.exempt {
                match x.parse() {
                    Ok(e) => exemptions.push(e),
                    Err(e) => {
                        output::stderr(&format!("error: --exempt: {e}"));
                        return Outcome::Invalid;
                    }
                }
            }
            let new = NewAssessment {
                risk,
                reason: a.reason.clone(),
                consequences: a.consequences.clone(),
                measures: a.measures.clone(),
                exemptions,
                sealed_only: a.only_sealed,
            };
            match incidents.assess(&access, &a.incident, new).await {
                Ok(v) => show(&v, a.format),
                Err(e) => incident_failed(&e),
            }
        }
        IncidentCommand::Affected(a) => {
            let window = (|| {
                Ok::<_, Outcome>((
                    instant("from", a.from.as_deref())?,
                    instant("to", a.to.as_deref())?,
                ))
            })();
            let (from, to) = match window {
                Ok(w) => w,
                Err(o) => return o,
            };
            let subjects = match &a.subjects {
                Some(path) => match subjects_file(path) {
                    Ok(s) => s,
                    Err(o) => return o,
                },
                None => Vec::new(),
            };
            let actor = match (&a.key, &a.actor) {
                (Some(k), _) => Some(format!("key:{}", k.trim().trim_start_matches("key:"))),
                (None, Some(actor)) => Some(actor.clone()),
                (None, None) => None,
            };
            let derive = Derive {
                categories: a.categories,
                actor,
                from,
                to,
                subjects,
                datasets: a.datasets,
            };
            match incidents.derive(&access, &a.incident, derive).await {
                Ok(v) => show(&v, a.format),
                Err(e) => incident_failed(&e),
            }
        }
        IncidentCommand::Notify(a) => match a.audience {
            Audience::Authority => {
                let phase = match a.phase.parse() {
                    Ok(p) => p,
                    Err(e) => {
                        output::stderr(&format!("error: --phase: {e}"));
                        return Outcome::Invalid;
                    }
                };
                match incidents
                    .notify_authority(
                        &access,
                        &a.incident,
                        phase,
                        a.reference.clone(),
                        a.late_reason.clone(),
                    )
                    .await
                {
                    Ok(v) => {
                        output::stderr(
                            "recorded: submit the report (`steward incident report`) through the authority's own channel",
                        );
                        print_text(&describe(&v))
                    }
                    Err(e) => incident_failed(&e),
                }
            }
            Audience::Subjects => notify_people(incidents, &access, a).await,
        },
        IncidentCommand::Report(a) => match incidents.report(&access, &a.incident).await {
            Ok(report) => write_report(&report, a.format, a.output.as_deref()),
            Err(e) => incident_failed(&e),
        },
        IncidentCommand::Close(a) => match incidents.close(&access, &a.incident, &a.reason).await {
            Ok(v) => print_text(&describe(&v)),
            Err(e) => incident_failed(&e),
        },
        IncidentCommand::Show(a) => match incidents.find(&access, &a.incident).await {
            Ok(v) => show(&v, a.format),
            Err(e) => incident_failed(&e),
        },
        IncidentCommand::List(a) => {
            if a.due {
                return match incidents.due(&access).await {
                    Ok(due) => match a.format {
                        ViewFormat::Json => print_json(
                            &due.iter()
                                .map(|(n, c)| serde_json::json!({"incident": n, "clock": c}))
                                .collect::<Vec<_>>(),
                        ),
                        ViewFormat::Text => {
                            let mut out = String::new();
                            for (n, c) in &due {
                                out.push_str(&format!(
                                    "#{n}  {}  due {}  {}\n",
                                    c.audience,
                                    time_text(c.due),
                                    serde_json::to_value(c.status)
                                        .ok()
                                        .and_then(|v| v.as_str().map(str::to_owned))
                                        .unwrap_or_default()
                                ));
                            }
                            if due.is_empty() {
                                out.push_str("no clock is due soon or overdue\n");
                            }
                            print_text(&out)
                        }
                    },
                    Err(e) => incident_failed(&e),
                };
            }
            match incidents.list(&access, a.open).await {
                Ok(list) => match a.format {
                    ViewFormat::Json => print_json(&list),
                    ViewFormat::Text => {
                        let mut out = String::new();
                        for v in &list {
                            out.push_str(&describe(v));
                            out.push('\n');
                        }
                        if list.is_empty() {
                            out.push_str("the register holds no incident\n");
                        }
                        print_text(&out)
                    }
                },
                Err(e) => incident_failed(&e),
            }
        }
    }
}

async fn notify_people<S: Store>(
    incidents: &Incidents<S>,
    access: &steward_core::Access,
    a: &crate::cli::IncidentNotifyArgs,
) -> Outcome {
    if a.preview {
        return match incidents.preview(access, &a.incident).await {
            Ok(text) => print_text(&text),
            Err(e) => incident_failed(&e),
        };
    }
    if a.resend_uncertain {
        match incidents.resend_uncertain(access, &a.incident).await {
            Ok(n) => output::stderr(&format!("{n} uncertain notices queued again")),
            Err(e) => return incident_failed(&e),
        }
    }
    let (view, queued) = match incidents
        .notify_subjects(
            access,
            &a.incident,
            a.reset_passwords,
            a.late_reason.clone(),
        )
        .await
    {
        Ok(v) => v,
        Err(e) => return incident_failed(&e),
    };
    for (channel, n) in &queued.by_channel {
        output::stderr(&format!("queued {n} notices by {channel}"));
    }
    if a.no_send || (a.smtp_url.is_none() && !a.outbox) {
        output::stderr(
            "queued: `steward serve` sends them with its mail settings (50 a second), each once; `steward incident show` follows them (pass --smtp-url to send from here)",
        );
        return print_text(&describe(&view));
    }
    let rate = a.rate.clamp(1, 10_000);
    let pending: u64 = view
        .deliveries
        .iter()
        .filter(|d| d.channel != "in-app" && matches!(d.state.as_str(), "queued" | "claimed"))
        .map(|d| d.count)
        .sum();
    let bar = output::progress_bar(pending, "notices sent");
    let gap = std::time::Duration::from_secs_f64(1.0 / f64::from(rate));
    let mut waited = 0;
    loop {
        let progress = bar.clone();
        let base = bar.position();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let mut pace = move |n: u64| {
            progress.set_position(base + n);
            let _ = tx.send(n);
        };
        let run = incidents.deliver(rate.min(100), &mut pace);
        let done = match run.await {
            Ok(d) => d,
            Err(e) => {
                bar.finish_and_clear();
                return incident_failed(&e);
            }
        };
        // Throttle: at most `rate` a second, measured over the batch.
        let mut sent = 0;
        while rx.try_recv().is_ok() {
            sent += 1;
        }
        if sent > 0 {
            tokio::time::sleep(gap * sent).await;
        }
        if done.sent + done.failed + done.given_up == 0 {
            // Notices another run holds (one that was stopped, or `steward serve`) come back
            // when its hold lapses; wait for them rather than leave them behind.
            let held = match incidents.find(access, &a.incident).await {
                Ok(v) => v
                    .deliveries
                    .iter()
                    .filter(|d| d.channel == "email" && d.state == "claimed")
                    .map(|d| d.count)
                    .sum::<u64>(),
                Err(_) => 0,
            };
            if held == 0 || waited >= 45 {
                break;
            }
            if waited == 0 {
                output::stderr(&format!(
                    "{held} notices are held by another run (one that was stopped, or `steward serve`); waiting for its hold to lapse (at most 30 s)"
                ));
            }
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            waited += 3;
            continue;
        }
        if done.failed > 0 && done.sent == 0 {
            bar.finish_and_clear();
            output::stderr(
                "the mail server refused or could not be reached; the notices stay queued and are retried (by `steward serve`, or by running this again)",
            );
            break;
        }
    }
    bar.finish_and_clear();
    match incidents.find(access, &a.incident).await {
        Ok(v) => print_text(&describe(&v)),
        Err(e) => incident_failed(&e),
    }
}

fn write_report(report: &Report, format: ReportFormat, out: Option<&std::path::Path>) -> Outcome {
    let text = match format {
        ReportFormat::Md => report.markdown(),
        ReportFormat::Html => report.html(),
        ReportFormat::Json => serde_json::to_string_pretty(report).unwrap_or_default() + "\n",
    };
    match out {
        Some(path) => match std::fs::write(path, text) {
            Ok(()) => {
                output::stderr(&format!("wrote {}", path.display()));
                Outcome::Ok
            }
            Err(e) => {
                output::stderr(&format!("error: cannot write {}: {e}", path.display()));
                Outcome::Unreadable
            }
        },
        None => print_text(&text),
    }
}

async fn open_disclosures<S: Store>(
    vault: steward_core::Vault<S>,
    declaration: &steward_policy::Declaration,
    global: &Global,
) -> Result<Disclosures<S>, Outcome> {
    let ledger =
        crate::vault::open_ledger(vault, declaration, global, "http://127.0.0.1:8080").await?;
    Ok(Disclosures::new(Arc::new(ledger)))
}

/// `steward disclosure …`.
pub fn disclosure(global: &Global, command: &DisclosureCommand) -> Outcome {
    let (declaration, runtime) = match super::vault_command(global) {
        Ok(v) => v,
        Err(outcome) => return outcome,
    };
    runtime.block_on(async {
        with_vault!(global, declaration.clone(), |vault| {
            match open_disclosures(vault, &declaration, global).await {
                Ok(log) => disclose(&log, command).await,
                Err(o) => o,
            }
        })
    })
}

async fn disclose<S: Store>(log: &Disclosures<S>, command: &DisclosureCommand) -> Outcome {
    let access = cli_access();
    match command {
        DisclosureCommand::Record(a) => {
            let mut subjects = Vec::new();
            for s in &a.subjects {
                match subject_id(s) {
                    Ok(id) => subjects.push(id),
                    Err(o) => return o,
                }
            }
            if let Some(path) = &a.subjects_file {
                match subjects_file(path) {
                    Ok(more) => subjects.extend(more),
                    Err(o) => return o,
                }
            }
            let mut counterparts = Vec::new();
            for s in &a.counterparts {
                match subject_id(s) {
                    Ok(id) => counterparts.push(id),
                    Err(o) => return o,
                }
            }
            let basis = match &a.basis {
                Some(b) => match steward_policy::declaration::LawfulBasis::parse(b) {
                    Some(b) => Some(b),
                    None => {
                        output::stderr(&format!(
                            "error: --basis `{b}` is not a lawful basis; use consent, contract, legal-obligation, vital-interest, public-task or legitimate-interest"
                        ));
                        return Outcome::Invalid;
                    }
                },
                None => None,
            };
            let tell = if a.do_not_tell {
                Some(Tell::Never)
            } else {
                match instant("gag-until", a.gag_until.as_deref()) {
                    Ok(Some(t)) => Some(Tell::After(t)),
                    Ok(None) => None,
                    Err(o) => return o,
                }
            };
            let new = NewDisclosure {
                recipient: a.to.clone(),
                subjects,
                counterparts,
                categories: a.categories.clone(),
                purpose: a.purpose.clone(),
                basis,
                reference: a.reference.clone(),
                tell,
            };
            match log.record(&access, new).await {
                Ok(d) => match a.format {
                    ViewFormat::Json => print_json(&d),
                    ViewFormat::Text => print_text(&format!(
                        "recorded disclosure {} to {} ({} people, {})\n",
                        d.id,
                        d.recipient,
                        d.subjects,
                        d.categories.join(", ")
                    )),
                },
                Err(e) => disclosure_failed(&e),
            }
        }
        DisclosureCommand::Gag(a) => {
            let Ok(id) = a.id.trim().parse::<uuid::Uuid>() else {
                output::stderr(&format!(
                    "error: `{}` is not a disclosure id (a UUID, as `steward disclosure list` prints)",
                    a.id
                ));
                return Outcome::Invalid;
            };
            let tell = if a.lift {
                Tell::Yes
            } else if a.do_not_tell {
                Tell::Never
            } else {
                match instant("until", a.until.as_deref()) {
                    Ok(Some(t)) => Tell::After(t),
                    Ok(None) => {
                        output::stderr("error: give --lift, --until DATE or --do-not-tell");
                        return Outcome::Invalid;
                    }
                    Err(o) => return o,
                }
            };
            match log.regag(&access, id, tell).await {
                Ok(d) => print_text(&format!(
                    "disclosure {}: {}\n",
                    d.id,
                    match d.tell {
                        Tell::Yes => "the people may see it from now on".to_owned(),
                        Tell::After(t) => format!("gagged until {}", t.date()),
                        Tell::Never => "held back until lifted".to_owned(),
                    }
                )),
                Err(e) => disclosure_failed(&e),
            }
        }
        DisclosureCommand::List(a) => {
            let subject = match a.subject.as_deref().map(subject_id).transpose() {
                Ok(s) => s,
                Err(o) => return o,
            };
            let now = log.now();
            match log.list(&access, subject, a.to.as_deref(), 1000).await {
                Ok(list) => match a.format {
                    ViewFormat::Json => print_json(&list),
                    ViewFormat::Text => {
                        let mut out = String::new();
                        for d in &list {
                            out.push_str(&format!(
                                "{}  {}  to {}  {} people  {}  basis {}{}{}\n",
                                d.at.date(),
                                d.id,
                                d.recipient,
                                d.subjects,
                                d.categories.join(","),
                                d.basis,
                                d.reference
                                    .as_ref()
                                    .map(|r| format!("  ref {r}"))
                                    .unwrap_or_default(),
                                match d.tell {
                                    Tell::Yes => String::new(),
                                    Tell::After(t) if t <= now =>
                                        format!("  gag ended {}", t.date()),
                                    Tell::After(t) => format!("  gagged until {}", t.date()),
                                    Tell::Never => "  not to be told".to_owned(),
                                }
                            ));
                        }
                        if list.is_empty() {
                            out.push_str("no disclosure is recorded\n");
                        }
                        print_text(&out)
                    }
                },
                Err(e) => disclosure_failed(&e),
            }
        }
    }
}

/// `steward aggregate`.
pub fn aggregate(global: &Global, args: &AggregateArgs) -> Outcome {
    let mut by = Vec::new();
    for d in &args.by {
        match d.parse() {
            Ok(d) => by.push(d),
            Err(e) => {
                output::stderr(&format!("error: --by: {e}"));
                return Outcome::Invalid;
            }
        }
    }
    let (declaration, runtime) = match super::vault_command(global) {
        Ok(v) => v,
        Err(outcome) => return outcome,
    };
    let query = AggregateQuery {
        by,
        categories: args.categories.clone(),
        recipient: args.share_with.clone(),
        reference: args.reference.clone(),
    };
    runtime.block_on(async {
        with_vault!(global, declaration.clone(), |vault| {
            match open_disclosures(vault, &declaration, global).await {
                Ok(log) => match log.aggregate(&cli_access(), &query).await {
                    Ok(a) => {
                        if let Some(d) = a.disclosure {
                            output::stderr(&format!("logged as disclosure {d}"));
                        }
                        match args.format {
                            AggregateFormat::Json => print_json(&a),
                            AggregateFormat::Csv => {
                                let names: Vec<&str> = a.by.iter().map(|d| d.as_str()).collect();
                                let mut out = format!("{},people\n", names.join(","));
                                for g in &a.groups {
                                    let cells: Vec<String> = names
                                        .iter()
                                        .map(|n| {
                                            csv_cell(g.values.get(*n).map_or("", String::as_str))
                                        })
                                        .collect();
                                    out.push_str(&format!("{},{}\n", cells.join(","), g.count));
                                }
                                print_text(&out)
                            }
                            AggregateFormat::Text => {
                                let mut out = format!(
                                    "People by {} (groups under {} suppressed: {}):\n",
                                    a.by.iter()
                                        .map(|d| d.as_str())
                                        .collect::<Vec<_>>()
                                        .join(", "),
                                    a.k,
                                    a.suppressed
                                );
                                for g in &a.groups {
                                    out.push_str(&format!(
                                        "  {:>8}  {}\n",
                                        g.count,
                                        g.values
                                            .iter()
                                            .map(|(k, v)| format!("{k}={v}"))
                                            .collect::<Vec<_>>()
                                            .join("  ")
                                    ));
                                }
                                print_text(&out)
                            }
                        }
                    }
                    Err(e) => disclosure_failed(&e),
                },
                Err(o) => o,
            }
        })
    })
}

fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}
