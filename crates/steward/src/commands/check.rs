//! `steward check`: lint the declaration.

use serde_json::json;
use steward_policy::{Diagnostic, Severity};

use crate::Outcome;
use crate::cli::{CheckArgs, CheckFormat, Global};
use crate::output;

pub fn run(global: &Global, args: &CheckArgs) -> Outcome {
    let name = global.declaration.display().to_string();
    let source = match steward_policy::load(&global.declaration) {
        Ok(s) => s,
        Err(e) => {
            let help = (!global.declaration.exists()).then_some(
                "run `steward init` to write a starter privacy.toml, or pass --declaration FILE",
            );
            match args.format {
                CheckFormat::Text => {
                    output::stderr(&format!("error: {e}"));
                    if let Some(help) = help {
                        output::stderr(&format!("  = help: {help}"));
                    }
                }
                CheckFormat::Json => {
                    let report = json!({
                        "file": name, "readable": false, "errors": 1, "warnings": 0,
                        "diagnostics": [{"severity": "error", "code": "unreadable", "message": e.to_string(), "help": help}],
                    });
                    let _ = output::stdout(format!("{report:#}\n").as_bytes());
                }
            }
            return Outcome::Unreadable;
        }
    };
    let (diagnostics, readable, summary) = match steward_policy::check(&source) {
        Ok(checked) => {
            let summary = checked
                .declaration
                .as_ref()
                .map(|d| (summarise(d), recipients(d)));
            let mut diagnostics = checked.diagnostics;
            if let Some(d) = &checked.declaration {
                match against_data(global, &source, d) {
                    Ok(found) => diagnostics.extend(found),
                    Err(outcome) => return outcome,
                }
                diagnostics.extend(manifests(global, &source, d));
                diagnostics.extend(logo(global, &source, d));
            }
            (diagnostics, true, summary)
        }
        Err(fatal) => (vec![*fatal], false, None),
    };
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    let text = match args.format {
        CheckFormat::Text => {
            let mut report = text_report(&source, &diagnostics, errors, warnings);
            if let Some((summary, recipients)) = &summary {
                report.push_str(&format!("Declared: {summary}.\n"));
                report.push_str(&recipients_text(recipients));
            }
            report
        }
        CheckFormat::Json => {
            let report = json!({
                "file": source.name(), "readable": readable,
                "errors": errors, "warnings": warnings, "diagnostics": diagnostics,
                "recipients": summary.as_ref().map(|(_, r)| r),
            });
            format!("{report:#}\n")
        }
    };
    if let Err(e) = output::stdout(text.as_bytes()) {
        output::stderr(&format!("error: cannot write to standard output: {e}"));
        return Outcome::Unreadable;
    }
    match (readable, errors) {
        (false, _) => Outcome::Unreadable,
        (true, 0) => Outcome::Ok,
        (true, _) => Outcome::Invalid,
    }
}

/// The dataset manifests the declaration names, read and checked against it — what `steward
/// serve` checks before it starts, so that check and serve never disagree. (Their live schemas
/// are `steward datasets check`'s.)
fn manifests(
    global: &Global,
    source: &steward_policy::Source,
    declaration: &steward_policy::Declaration,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (i, d) in declaration.datasets.iter().enumerate() {
        let Some(file) = &d.manifest else { continue };
        let span = value_span(source.text(), "manifest", file);
        let path = format!("datasets[{i}].manifest");
        match steward_connect::Manifest::load(&super::datasets::manifest_path(global, file)) {
            Err(e) => out.push(
                Diagnostic::new(
                    Severity::Error,
                    "dataset-manifest-unusable",
                    format!("dataset `{}`: {e}", d.id),
                    source,
                    span,
                )
                .with_path(&path)
                .with_help("fix the manifest (docs/datasets.md), or write one: steward datasets template wordpress -o wordpress.toml"),
            ),
            Ok(manifest) => {
                for f in steward_connect::check::against_declaration(&manifest, declaration) {
                    out.push(
                        Diagnostic::new(
                            if f.error { Severity::Error } else { Severity::Warning },
                            "dataset-manifest",
                            format!("dataset `{}`: {}", d.id, f.message),
                            source,
                            span.clone(),
                        )
                        .with_path(&path),
                    );
                }
            }
        }
    }
    out
}

/// The centre's logo (`[centre] logo`), read as `steward serve` reads it: a file that is
/// missing, unreadable or too large is an error here rather than at start-up.
fn logo(
    global: &Global,
    source: &steward_policy::Source,
    declaration: &steward_policy::Declaration,
) -> Vec<Diagnostic> {
    let Some(file) = &declaration.centre.logo else {
        return Vec::new();
    };
    match super::serve::read_logo(&global.declaration, declaration) {
        Ok(_) => Vec::new(),
        Err(e) => vec![
            Diagnostic::new(
                Severity::Error,
                "bad-logo",
                e,
                source,
                value_span(source.text(), "logo", file),
            )
            .with_path(&"centre.logo".to_owned())
            .with_help("put the SVG or PNG beside privacy.toml, or give its path relative to it"),
        ],
    }
}

/// Where `KEY = "FILE"` (`manifest`, `logo`) stands in the declaration's text.
fn value_span(text: &str, key: &str, file: &str) -> Option<std::ops::Range<usize>> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with(key)
            && trimmed.contains(file)
            && let Some(at) = line.find(file)
        {
            return Some(offset + at..offset + at + file.len());
        }
        offset += line.len();
    }
    None
}

/// What the data already held make of the declaration, when there are data: given
/// `--database-url`, or a `--data-dir` that holds a store. Today: purposes whose terms changed
/// under a policy version already served (the server and every command would refuse it).
fn against_data(
    global: &Global,
    source: &steward_policy::Source,
    declaration: &steward_policy::Declaration,
) -> Result<Vec<Diagnostic>, Outcome> {
    Ok(drift_with_data(global, declaration)?
        .map(|drift| {
            Diagnostic::new(
                Severity::Error,
                "terms-changed-without-version",
                format!(
                    "{} {} changed under policy version `{}`, which {}",
                    if drift.purposes.len() == 1 { "purpose" } else { "purposes" },
                    drift
                        .purposes
                        .iter()
                        .map(|p| format!("`{p}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    drift.version,
                    match drift.consented {
                        0 => "was already served (nobody consented under it yet)".to_owned(),
                        1 => "1 person accepted".to_owned(),
                        n => format!("{n} people accepted"),
                    }
                ),
                source,
                policy_version_span(source.text()),
            )
            .with_help(
                "raise `version` in [policy] (for example to today's date): the change becomes a new version, and people who consented are asked again; until then a running `steward serve` keeps the declaration in force, and Steward refuses to start or take requests with this one",
            )
        })
        .into_iter()
        .collect())
}

/// Refuses (printing why) a declaration whose purposes' terms changed under a policy version
/// the data already hold, for commands that publish it without opening the ledger
/// (`steward notice`): the notice would show new terms under the old version.
pub(super) fn refuse_drift(
    global: &Global,
    declaration: &steward_policy::Declaration,
) -> Result<(), Outcome> {
    match drift_with_data(global, declaration)? {
        None => Ok(()),
        Some(drift) => {
            output::stderr(&format!("error: {drift}"));
            Err(Outcome::Invalid)
        }
    }
}

/// The terms drift the data hold against `declaration`, when there are data (a
/// `--database-url`, or a `--data-dir` holding a store); `None` when there are none.
fn drift_with_data(
    global: &Global,
    declaration: &steward_policy::Declaration,
) -> Result<Option<steward_core::ledger::TermsDrift>, Outcome> {
    if global.database_url.is_none() && !global.data_dir.join("steward.db").exists() {
        return Ok(None);
    }
    let runtime = crate::vault::runtime()?;
    runtime.block_on(async {
        let found = match crate::vault::open_store(global).await? {
            crate::vault::AnyStore::Sqlite(store) => drift_in(&store, declaration).await,
            crate::vault::AnyStore::Pg(store) => drift_in(&store, declaration).await,
        };
        found.map_err(|e| {
            output::stderr(&format!("error: {e}"));
            Outcome::Unreadable
        })
    })
}

async fn drift_in<S: steward_core::Store>(
    store: &S,
    declaration: &steward_policy::Declaration,
) -> Result<Option<steward_core::ledger::TermsDrift>, steward_core::StoreError> {
    let versions = store.policy_versions().await?;
    steward_core::ledger::terms_drift(store, declaration, &versions).await
}

/// The byte span of the value of `version` in the `[policy]` table, if it is written there.
fn policy_version_span(text: &str) -> Option<std::ops::Range<usize>> {
    let mut offset = 0;
    let mut in_policy = false;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            in_policy = trimmed.starts_with("[policy]");
        } else if in_policy
            && let Some(rest) = trimmed.strip_prefix("version")
            && let Some(value) = rest.trim_start().strip_prefix('=')
        {
            let value = value.trim();
            let start = offset + line.find(value).unwrap_or(0);
            let end = value
                .find(" #")
                .map_or(value.len(), |i| value[..i].trim_end().len());
            return Some(start..start + end);
        }
        offset += line.len();
    }
    None
}

/// A recipient as GDPR Art. 19 sees it: what it receives (declared, or from the purposes that
/// name it) and how it is told of corrections, erasures and restrictions.
#[derive(serde::Serialize)]
struct Recipient {
    id: String,
    categories: Vec<String>,
    categories_from_purposes: bool,
    /// `webhook`, `email`, or `None` when it has no `contact` and is not told.
    told_by: Option<&'static str>,
}

fn recipients(d: &steward_policy::Declaration) -> Vec<Recipient> {
    d.processors
        .iter()
        .map(|p| Recipient {
            id: p.id.clone(),
            categories: p.categories.clone(),
            categories_from_purposes: p.categories_from_purposes,
            told_by: p.contact.as_deref().map(|c| {
                if c.starts_with("http://") || c.starts_with("https://") {
                    "webhook"
                } else {
                    "email"
                }
            }),
        })
        .collect()
}

fn recipients_text(all: &[Recipient]) -> String {
    let mut out = String::new();
    let told: Vec<&Recipient> = all.iter().filter(|r| r.told_by.is_some()).collect();
    if !told.is_empty() {
        out.push_str("Told of corrections, erasures and restrictions (GDPR Art. 19):\n");
        for r in told {
            out.push_str(&format!(
                "  {} by {}: {}{}\n",
                r.id,
                r.told_by.unwrap_or_default(),
                if r.categories.is_empty() {
                    "no categories (name it in a purpose's `recipients`, or give it `categories`)"
                        .to_owned()
                } else {
                    r.categories.join(", ")
                },
                if r.categories_from_purposes {
                    " (from the purposes naming it)"
                } else {
                    ""
                }
            ));
        }
    }
    let silent: Vec<&str> = all
        .iter()
        .filter(|r| r.told_by.is_none())
        .map(|r| r.id.as_str())
        .collect();
    if !silent.is_empty() {
        out.push_str(&format!("Not told (no `contact`): {}\n", silent.join(", ")));
    }
    out
}

/// What the declaration covers, in one line.
fn summarise(d: &steward_policy::Declaration) -> String {
    [
        plural(d.purposes.len(), "purpose"),
        plural(d.processors.len(), "recipient"),
        plural(d.cookies.len(), "cookie"),
        plural(d.collected_categories().len(), "data category"),
    ]
    .join(", ")
}

fn plural(n: usize, word: &str) -> String {
    match (n, word.strip_suffix('y')) {
        (1, _) => format!("{n} {word}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        _ => format!("{n} {word}s"),
    }
}

fn text_report(
    source: &steward_policy::Source,
    diagnostics: &[Diagnostic],
    errors: usize,
    warnings: usize,
) -> String {
    let mut out = String::new();
    for d in diagnostics {
        out.push_str(&d.render(source));
        out.push('\n');
    }
    let verdict = match (errors, warnings) {
        (0, 0) => "no problems found".to_owned(),
        (0, w) => format!("no errors, {}", plural(w, "warning")),
        (e, 0) => plural(e, "error"),
        (e, w) => format!("{}, {}", plural(e, "error"), plural(w, "warning")),
    };
    out.push_str(&format!("{}: {verdict}\n", source.name()));
    if diagnostics.iter().any(|d| d.severity == Severity::Error) {
        out.push_str("Each message above says where the problem is and how to fix it.\n");
    }
    out
}
