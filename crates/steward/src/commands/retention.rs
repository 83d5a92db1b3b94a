//! `steward retention rules|plan|run`: the declared periods as rules, a dry run, a sweep.

use std::sync::Arc;

use steward_core::Store;
use steward_core::retention::Dataset;
use steward_core::retention::{RetentionError, Sweep, Sweeper, rules};
use steward_policy::source::{Path, SpanIndex};
use steward_policy::{Declaration, Source};
use time::OffsetDateTime;

use crate::cli::{Global, RetentionCommand, ViewFormat};
use crate::vault::{cli_access, open_ledger, with_vault};
use crate::{Outcome, output};

pub fn run(global: &Global, command: &RetentionCommand) -> Outcome {
    match command {
        RetentionCommand::Rules(args) => {
            let (source, declaration) = match super::valid_declaration(&global.declaration) {
                Ok(v) => v,
                Err(o) => return o,
            };
            let datasets = match super::datasets::unconnected(global, &declaration) {
                Ok(d) => d,
                Err(o) => return o,
            };
            print_rules(&source, &declaration, &datasets, args.format)
        }
        RetentionCommand::Plan(args) => sweep(global, args.as_of.as_deref(), args.format, false),
        RetentionCommand::Run(args) => sweep(global, args.as_of.as_deref(), args.format, true),
    }
}

/// Where a rule's path (`purposes[3].retain."user.financial"`) is in the declaration: its
/// 1-based line.
fn line_of(source: &Source, index: &SpanIndex, at: &str) -> Option<usize> {
    let mut path = Path::root();
    let mut rest = at;
    while !rest.is_empty() {
        rest = rest.strip_prefix('.').unwrap_or(rest);
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"')?;
            path = path.key(&quoted[..end]);
            rest = &quoted[end + 1..];
            continue;
        }
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        path = path.key(&rest[..end]);
        rest = &rest[end..];
        while let Some(inner) = rest.strip_prefix('[') {
            let close = inner.find(']')?;
            path = path.index(inner[..close].parse().ok()?);
            rest = &inner[close + 1..];
        }
    }
    // A default is written nowhere: no line (never its section's, or the file's first).
    if !index.contains(&path) {
        return None;
    }
    let span = index.value(&path)?;
    Some(source.position(span.start).line)
}

fn print_rules(
    source: &Source,
    declaration: &Declaration,
    datasets: &[Arc<dyn Dataset>],
    format: ViewFormat,
) -> Outcome {
    let mut rules = rules(declaration);
    for d in datasets {
        rules.extend(d.retention_rules(declaration));
    }
    let index = toml::de::DeTable::parse(source.text())
        .ok()
        .map(|doc| SpanIndex::build(&doc));
    let located: Vec<(Option<usize>, &steward_core::retention::Rule)> = rules
        .iter()
        .map(|r| {
            let line = match (&index, &r.declared_at) {
                (Some(index), Some(at)) => line_of(source, index, at),
                _ => None,
            };
            (line, r)
        })
        .collect();
    let text = match format {
        ViewFormat::Json => {
            let items: Vec<serde_json::Value> = located
                .iter()
                .map(|(line, r)| {
                    let mut v = serde_json::to_value(r).unwrap_or_default();
                    v["line"] = serde_json::json!(line);
                    v
                })
                .collect();
            let mut text = serde_json::to_string_pretty(&items).unwrap_or_default();
            text.push('\n');
            text
        }
        ViewFormat::Text => {
            let mut out = format!(
                "Retention rules of {} (sweeps run {}):\n",
                source.name(),
                describe_schedule(&declaration.records.schedule)
            );
            for (line, r) in &located {
                let at = match line {
                    Some(n) => format!("{}:{n}", source.name()),
                    None => "default".to_owned(),
                };
                out.push_str(&format!(
                    "\n{}  [{at}]\n  covers: {}\n  keep:   {}\n  then:   {}{}\n",
                    r.id,
                    r.covers,
                    r.keep,
                    r.action,
                    if r.swept { "" } else { "  (no sweep)" }
                ));
                if let Some(n) = line {
                    out.push_str(&format!("  line:   {}\n", source.line_text(*n).trim()));
                }
            }
            out
        }
    };
    match output::stdout(text.as_bytes()) {
        Ok(()) => Outcome::Ok,
        Err(_) => Outcome::Unreadable,
    }
}

fn describe_schedule(cron: &str) -> String {
    match cron {
        steward_policy::declaration::DAILY => "daily at 03:00 UTC".to_owned(),
        "0 * * * *" => "hourly".to_owned(),
        other => format!("on the schedule `{other}` (UTC)"),
    }
}

/// Reads `--as-of`: a date (midnight UTC) or an RFC 3339 instant.
fn as_of(text: Option<&str>, now: OffsetDateTime) -> Result<OffsetDateTime, String> {
    let Some(text) = text else { return Ok(now) };
    let text = text.trim();
    if let Ok(at) = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
        return Ok(at);
    }
    time::Date::parse(text, time::macros::format_description!("[year]-[month]-[day]"))
        .map(|d| d.midnight().assume_utc())
        .map_err(|_| {
            format!("--as-of `{text}` is not a date: write YYYY-MM-DD (e.g. 2027-06-01) or an RFC 3339 instant (2027-06-01T12:00:00Z)")
        })
}

fn sweep(global: &Global, at: Option<&str>, format: ViewFormat, remove: bool) -> Outcome {
    let (declaration, runtime) = match super::vault_command(global) {
        Ok(v) => v,
        Err(outcome) => return outcome,
    };
    // A mistyped folder would plan over a new, empty vault and find nothing due: say so.
    if global.database_url.is_none() && !global.data_dir.join("steward.db").exists() {
        output::stderr(&format!(
            "note: {} held no Steward data: nothing of the vault can be due there\n  = help: if `steward serve` keeps its data elsewhere, name that folder with --data-dir (or STEWARD_DATA_DIR), or --database-url for PostgreSQL",
            global.data_dir.display()
        ));
    }
    let outbox = global.data_dir.join("outbox");
    runtime.block_on(async {
        // The operator's databases are swept too: one with a table to sweep that cannot be
        // reached stops the command before anything is changed; the others are not opened.
        let sources = match super::datasets::for_retention(global, &declaration).await {
            Ok(s) => s,
            Err(o) => return o,
        };
        with_vault!(global, declaration.clone(), |vault| {
            match open_ledger(vault, &declaration, global, "http://127.0.0.1:8080").await {
                Ok(ledger) => {
                    let sweeper = Sweeper::new(Arc::new(ledger), Some(outbox.clone()))
                        .with_sources(sources.clone());
                    sweep_with(&sweeper, at, format, remove).await
                }
                Err(o) => o,
            }
        })
    })
}

async fn sweep_with<S: Store>(
    sweeper: &Sweeper<S>,
    at: Option<&str>,
    format: ViewFormat,
    remove: bool,
) -> Outcome {
    let now = sweeper.now();
    let as_of = match as_of(at, now) {
        Ok(t) => t,
        Err(e) => {
            output::stderr(&format!("error: {e}"));
            return Outcome::Invalid;
        }
    };
    let access = cli_access();
    let result = if remove {
        let bar = output::progress_bar(0, "records removed");
        let progress_bar = bar.clone();
        let result = sweeper
            .run_now(&access, as_of, &mut move |n| progress_bar.set_position(n))
            .await;
        bar.finish_and_clear();
        result
    } else {
        sweeper.plan(&access, as_of).await
    };
    match result {
        Ok(sweep) => report(&sweep, format, remove),
        Err(e) => {
            output::stderr(&format!("error: {e}"));
            match e {
                RetentionError::Future(_) | RetentionError::Busy | RetentionError::Denied(_) => {
                    Outcome::Invalid
                }
                _ => Outcome::Unreadable,
            }
        }
    }
}

fn day(at: Option<OffsetDateTime>) -> String {
    at.map_or_else(|| "-".to_owned(), |t| t.date().to_string())
}

fn report(sweep: &Sweep, format: ViewFormat, removed: bool) -> Outcome {
    let text = match format {
        ViewFormat::Json => {
            let mut t = serde_json::to_string_pretty(sweep).unwrap_or_default();
            t.push('\n');
            t
        }
        ViewFormat::Text => {
            let mut out = format!(
                "{} as of {} ({}):\n",
                if removed {
                    "Retention sweep"
                } else {
                    "Retention plan"
                },
                if sweep.as_of.time() == time::Time::MIDNIGHT {
                    sweep.as_of.date().to_string()
                } else {
                    sweep
                        .as_of
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default()
                },
                if removed {
                    "done"
                } else {
                    "nothing was changed"
                }
            );
            if sweep.lines.is_empty() {
                out.push_str("  nothing is due\n");
            }
            for l in &sweep.lines {
                out.push_str(&format!(
                    "  {:<40} {:>9} {}  {} .. {}\n",
                    l.rule,
                    l.due,
                    if removed { "removed" } else { "due    " },
                    day(l.earliest),
                    day(l.latest)
                ));
                if l.kept > 0 {
                    out.push_str(&format!(
                        "  {:<40} {:>9} kept back: {}\n",
                        "",
                        l.kept,
                        l.kept_because.as_deref().unwrap_or("a legal hold")
                    ));
                }
            }
            if removed {
                out.push_str(&format!("  people erased: {}\n", sweep.subjects_erased));
            }
            out
        }
    };
    match output::stdout(text.as_bytes()) {
        Ok(()) => Outcome::Ok,
        Err(_) => Outcome::Unreadable,
    }
}
