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
            let summary = checked.declaration.as_ref().map(summarise);
            (checked.diagnostics, true, summary)
        }
        Err(fatal) => (vec![*fatal], false, None),
    };
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    let text = match args.format {
        CheckFormat::Text => {
            let mut report = text_report(&source, &diagnostics, errors, warnings);
            if let Some(summary) = summary {
                report.push_str(&format!("Declared: {summary}.\n"));
            }
            report
        }
        CheckFormat::Json => {
            let report = json!({
                "file": source.name(), "readable": readable,
                "errors": errors, "warnings": warnings, "diagnostics": diagnostics,
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
