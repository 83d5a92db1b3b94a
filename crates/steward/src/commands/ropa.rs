//! `steward ropa`: the record of processing activities.

use std::io::IsTerminal;

use crate::Outcome;
use crate::cli::{Global, RopaArgs, RopaFormat};
use crate::output;

pub fn run(global: &Global, args: &RopaArgs) -> Outcome {
    if matches!(args.format, RopaFormat::Xlsx)
        && args.output.is_none()
        && std::io::stdout().is_terminal()
    {
        output::stderr(
            "error: an XLSX workbook is binary and would garble the terminal\n  = help: add `-o record-of-processing.xlsx`, or redirect: `> record.xlsx`",
        );
        return Outcome::Invalid;
    }
    let (_, declaration) = match super::valid_declaration(&global.declaration) {
        Ok(v) => v,
        Err(outcome) => return outcome,
    };
    let record = steward_policy::ropa::build(&declaration);
    let bytes = match args.format {
        RopaFormat::Csv => record.to_csv().map_err(|e| e.to_string()),
        RopaFormat::Json => record
            .to_json()
            .map(|mut s| {
                s.push('\n');
                s.into_bytes()
            })
            .map_err(|e| e.to_string()),
        RopaFormat::Xlsx => record.to_xlsx().map_err(|e| e.to_string()),
    };
    match bytes {
        Ok(bytes) => super::emit(&bytes, args.output.as_deref()),
        Err(e) => {
            output::stderr(&format!("error: cannot render the record: {e}"));
            Outcome::Unreadable
        }
    }
}
